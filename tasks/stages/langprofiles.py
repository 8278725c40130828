"""langdetect's language profiles in compact form, for the fast detector.

langdetect keeps its profiles as one dict: each of 87,598 n-grams maps to a list of 55 Python
floats, of which 96% are zero. That is ~60 MB in every process that detects languages (each
worker), and ~0.3 CPU s to parse from its JSON files. ``compact_factory`` gives a
``DetectorFactory`` whose ``word_lang_prob_map`` holds the same n-grams, in the same order,
with the same probabilities (``1.0 * freq / n_words`` exactly as ``DetectorFactory.add_profile``
computes them), stored sparse: ``map[ngram]`` builds the list of 55 floats when asked, and the
fast detector fills its float64 row of an n-gram straight from the sparse arrays (``fill_row``). The arrays are kept on disk
(``tasks.plumbing.filecache``) and read in a few milliseconds, keyed by langdetect's version and
its profile files, so a process never parses the JSON again and never holds the dict.

Results are bit-identical to the stock factory (tests); the reference chain keeps the stock one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

import numpy as np
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.utils.lang_profile import LangProfile

from ..plumbing.filecache import cache_dirs, cached

_FORMAT = 1
_LOCK = threading.Lock()
_LOADED: DetectorFactory | None = None


class CompactProfiles(dict):
    """n-gram -> its probability in each language (a list of floats, as langdetect's dict holds),
    from sparse rows: ``ptr[r]:ptr[r + 1]`` of ``cols`` (language index) and ``vals``.

    A dict of n-gram -> row underneath, so that ``in``, ``len`` and iteration (the n-grams, in
    langdetect's order) run at dict speed; only reading an n-gram's list builds it."""

    def __init__(self, keys: list[str], ptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_langs: int):
        super().__init__(zip(keys, range(len(keys))))
        self._ptr = ptr.tolist()  # Python ints: a row's span is read without numpy scalars
        self._cols = cols
        self._vals = vals
        self._n_langs = n_langs

    def _span(self, ngram: str) -> tuple[int, int]:
        r = dict.__getitem__(self, ngram)
        return self._ptr[r], self._ptr[r + 1]

    def __getitem__(self, ngram: str) -> list[float]:
        a, b = self._span(ngram)
        out = [0.0] * self._n_langs
        for lang, prob in zip(self._cols[a:b].tolist(), self._vals[a:b].tolist()):
            out[lang] = prob
        return out

    def fill_row(self, ngram: str, row: np.ndarray) -> None:
        """``row[:] = self[ngram]`` (a float64 row of ``n_langs``) without building the list."""
        a, b = self._span(ngram)
        row[:] = 0.0
        row[self._cols[a:b]] = self._vals[a:b]

    def get(self, ngram, default=None):
        return self[ngram] if ngram in self else default

    def values(self):
        return [self[g] for g in self]

    def items(self):
        return [(g, self[g]) for g in self]

    def __eq__(self, other):
        return isinstance(other, Mapping) and len(self) == len(other) and all(g in other and self[g] == other[g] for g in self)


def _profile_files(directory: str) -> list[str]:
    """The profile folder's entries in the order ``DetectorFactory.load_profile`` reads them (its
    language indexes follow ``os.listdir``; its lists have one slot per entry)."""
    return os.listdir(directory)


def parse_profiles(directory: str = PROFILES_DIRECTORY) -> tuple[list[str], int, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(languages, list size, n-grams, ptr, cols, vals): ``DetectorFactory.load_profile`` and
    ``add_profile``'s result, sparse. The list size is the number of directory entries, as there."""
    names = _profile_files(directory)
    langs: list[str] = []
    entries: dict[str, list[tuple[int, float]]] = {}
    index = 0
    for filename in names:
        path = os.path.join(directory, filename)
        if filename.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            profile = LangProfile(**json.load(f))
        if profile.name in langs:
            raise ValueError(f"duplicate language profile {profile.name!r} in {directory}")
        langs.append(profile.name)
        for ngram in profile.freq:
            probs = entries.setdefault(ngram, [])
            length = len(ngram)
            if 1 <= length <= 3:
                probs.append((index, 1.0 * profile.freq.get(ngram) / profile.n_words[length - 1]))
        index += 1
    counts = np.fromiter(map(len, entries.values()), dtype=np.int64, count=len(entries))
    ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    total = int(ptr[-1])
    cols = np.fromiter((i for probs in entries.values() for i, _ in probs), dtype=np.int16, count=total)
    vals = np.fromiter((p for probs in entries.values() for _, p in probs), dtype=np.float64, count=total)
    return langs, len(names), list(entries), ptr, cols, vals


def _cache_key(directory: str) -> str:
    digest = hashlib.sha256(f"{_FORMAT} langdetect {version('langdetect')} {directory}".encode())
    for name in sorted(_profile_files(directory)):
        stat = os.stat(os.path.join(directory, name))
        digest.update(f"\0{name} {stat.st_size} {stat.st_mtime_ns}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:40]


def _dump(langs: list[str], size: int, keys: list[str], ptr, cols, vals) -> bytes:
    encoded = [k.encode("utf-8", "surrogatepass") for k in keys]
    offsets = np.concatenate(([0], np.cumsum([len(k) for k in encoded]))).astype(np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, langs=np.array(langs), size=np.int64(size), keys=np.frombuffer(b"".join(encoded), np.uint8),
             offsets=offsets, ptr=ptr, cols=cols, vals=vals)
    return buffer.getvalue()


def _load(data: bytes) -> tuple[list[str], int, list[str], np.ndarray, np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        blob = z["keys"].tobytes()
        offsets = z["offsets"].tolist()
        keys = [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(offsets, offsets[1:])]
        return [str(x) for x in z["langs"]], int(z["size"]), keys, z["ptr"], z["cols"], z["vals"]


def _folders() -> list[Path]:
    return cache_dirs(Path(__file__), "langprofiles")


def compact_factory() -> DetectorFactory:
    """A seeded ``DetectorFactory`` over ``CompactProfiles`` of langdetect's bundled profiles
    (loaded once per process)."""
    global _LOADED
    with _LOCK:
        if _LOADED is None:
            # the arrays from the cache, else (missing, damaged or foreign) parsed from the JSON and cached
            langs, size, keys, ptr, cols, vals = cached(
                _folders(), f"{_cache_key(PROFILES_DIRECTORY)}.profiles", _load,
                lambda: parse_profiles(PROFILES_DIRECTORY), lambda parsed: _dump(*parsed), keep=4)
            factory = DetectorFactory()
            factory.langlist = langs
            factory.word_lang_prob_map = CompactProfiles(keys, ptr, cols, vals, size)
            factory.seed = 0
            _LOADED = factory
        return _LOADED
