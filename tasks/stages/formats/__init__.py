"""Input formats beyond the original four (txt/md, JSON lines, Parquet).

Each format module has a reader ``read(src, config) -> Iterator[Document | Reject]`` with the
contract of ``tasks.stages.read.read_source``: one Document or Reject per input record, streamed,
never an exception; a record that is by nature not a document (a WARC ``request``...) is a
``Skipped``, which ``read_source`` counts instead of passing on. ``tasks.stages.read`` dispatches to them by suffix (``reader_for``) and, for a
file whose extension it does not know, by its first bytes (``sniff``).

This package's ``__init__`` imports nothing from ``tasks.stages.read`` (which imports it); the format
modules do, and are imported only when a file needs them.
"""

from __future__ import annotations

import gzip
import importlib
from collections.abc import Callable
from pathlib import Path

# Multi-part suffixes, longest first (``_suffix`` in tasks.stages.read matches these before the last dot).
COMPOUND_SUFFIXES = (
    ".warc.wet.gz",
    ".warc.wet",
    ".warc.gz",
    ".wet.gz",
    ".jsonl.zst",
    ".jsonl.gz",
    ".html.gz",
    ".htm.gz",
    ".txt.gz",
    ".md.gz",
    ".csv.gz",
    ".tsv.gz",
)

# suffix -> "module:function" (imported on first use: trafilatura, warcio and zstandard load lazily)
_READERS: dict[str, str] = {
    ".html": "html:read_html_file",
    ".htm": "html:read_html_file",
    ".html.gz": "html:read_html_file",
    ".htm.gz": "html:read_html_file",
    ".warc": "warc:read_warc",
    ".warc.gz": "warc:read_warc",
    ".warc.wet": "warc:read_warc",
    ".warc.wet.gz": "warc:read_warc",
    ".wet": "warc:read_warc",
    ".wet.gz": "warc:read_warc",
    ".txt.gz": "containers:read_gzip_text",
    ".md.gz": "containers:read_gzip_text",
    ".json": "containers:read_json",
    ".csv": "csvfile:read_csv",
    ".tsv": "csvfile:read_csv",
    ".csv.gz": "csvfile:read_csv",
    ".tsv.gz": "csvfile:read_csv",
}

# .jsonl.zst is read by tasks.stages.read's JSON-lines reader (a zstd stream instead of a gzip one)
EXTRA_SUFFIXES: tuple[str, ...] = (*_READERS, ".jsonl.zst")


def reader_for(suffix: str) -> Callable | None:
    """The reader of a suffix handled by this package, or None."""
    target = _READERS.get(suffix)
    if target is None:
        return None
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)


# ----------------------------------------------------------------------------- sniffing

_SNIFF_BYTES = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PARQUET_MAGIC = b"PAR1"
# Documents and media that are never read as text, even when their first bytes happen to decode.
_BINARY_MAGIC = (b"%PDF-", b"PK\x03\x04", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x7fELF", b"\xd0\xcf\x11\xe0")


def _looks_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    return start.startswith((b"<!doctype html", b"<html")) or (start.startswith(b"<") and b"<body" in head[:8192].lower())


def _looks_json_lines(head: bytes) -> bool:
    import json

    # parse_int=len: a sniff needs no integer's value (a 5,000-digit one would exceed Python's limit)
    lines = [line for line in head.split(b"\n")[:-1] if line.strip()]  # the last may be cut
    if not lines:
        lines = [head] if head.strip() else []
    try:
        return bool(lines) and all(isinstance(json.loads(line, parse_int=len), dict) for line in lines[:5])
    except ValueError:
        return False


def _sniff_inner(head: bytes) -> str | None:
    """The format of uncompressed content, from its first bytes."""
    from ..limits import json_encoding

    codec, bom = json_encoding(head)
    if codec != "utf-8":  # UTF-16/32 (JSON lines from Windows tools): sniff the same text in UTF-8
        kind = _sniff_inner_utf8(head[bom:].decode(codec, errors="replace").encode("utf-8"))
        return kind if kind in (".jsonl", ".json", ".html") else None
    return _sniff_inner_utf8(head)


def _sniff_inner_utf8(head: bytes) -> str | None:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"WARC/"):
        return ".warc"
    if _looks_html(head):
        return ".html"
    if stripped.startswith(b"{") and _looks_json_lines(stripped):
        return ".jsonl"
    if stripped.startswith((b"[", b"{")):
        return ".json"
    return None


def sniff(path: Path) -> str | None:
    """The suffix a file of unknown extension should be read as, from its first bytes; None when
    it looks like none of the readable formats (binary, or text in no known structure is ".txt")."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return None
    if not head or head.startswith(_BINARY_MAGIC):
        return None
    if head.startswith(_PARQUET_MAGIC):
        return ".parquet"
    if head.startswith(_GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as f:
                inner = f.read(_SNIFF_BYTES)
        except (OSError, EOFError):
            return None
        if inner.startswith(b"WARC/"):
            return ".warc.gz"
        kind = _sniff_inner(inner)
        if kind == ".html":
            return ".html.gz"
        if kind == ".jsonl":
            return ".jsonl.gz"
        if kind is None and _is_text(inner):
            return ".txt.gz"
        return None
    if head.startswith(_ZSTD_MAGIC):
        return ".jsonl.zst"  # the one zstd container read: a JSON-lines error names the problem
    kind = _sniff_inner(head)
    if kind is not None:
        return kind
    return ".txt" if _is_text(head) else None


def _is_text(head: bytes) -> bool:
    from ..read import DecodeError, decode_bytes

    try:
        decode_bytes(head)
    except DecodeError:
        return False
    return True
