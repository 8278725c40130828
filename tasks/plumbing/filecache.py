"""Small files that spare every worker process the same start-up work (the rule matchers' plans,
langdetect's profiles in compact form), kept between runs.

A file is named by a key the caller derives from everything its content depends on (code,
library versions, inputs), so a stale file is never read: a new key is simply missing. Files
are written whole or not at all (a temporary file, then a rename: workers may write the same
one at once), and any failure to read or write one only means the work is done again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def cache_dirs(beside: Path, kind: str) -> list[Path]:
    """Where files of ``kind`` are kept: ``__pycache__/kind`` beside the module ``beside`` (as
    numba keeps its compiled kernels), else the user's cache folder."""
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpusclean" / kind
    return [beside.resolve().parent / "__pycache__" / kind, user]


def read_cached(folders: list[Path], name: str) -> bytes | None:
    """The content of the first ``folder / name`` that can be read, or ``None``."""
    for folder in folders:
        try:
            return (folder / name).read_bytes()
        except OSError:
            continue
    return None


def write_cached(folders: list[Path], name: str, data: bytes, keep: int) -> None:
    """Write ``data`` as ``name`` in the first writable folder, keeping its ``keep`` newest
    files with the same suffix (older keys are dead weight)."""
    suffix = Path(name).suffix
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from the other users of the install
                os.replace(tmp, folder / name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            continue  # not writable: the next folder
        with contextlib.suppress(OSError):
            files = sorted(folder.glob(f"*{suffix}"), key=lambda p: p.stat().st_mtime)
            for old in files[:-keep]:
                old.unlink()
        return


def load_cached(folders: list[Path], name: str, decode: Callable[[bytes], T]) -> T | None:
    """``decode`` of the cached ``name``, or ``None`` when it is missing, damaged or foreign."""
    data = read_cached(folders, name)
    if data is None:
        return None
    try:
        return decode(data)
    except Exception:  # a damaged or foreign file: the caller builds it again (and replaces it)
        return None


def cached(folders: list[Path], name: str, decode: Callable[[bytes], T], build: Callable[[], T],
           encode: Callable[[T], bytes], keep: int) -> T:
    """The cached ``name`` decoded, else ``build()``, written for the next process when it encodes."""
    value = load_cached(folders, name, decode)
    if value is None:
        value = build()
        try:
            data = encode(value)
        except Exception:
            return value
        write_cached(folders, name, data, keep)
    return value
