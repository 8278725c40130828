"""Stage 1: discover raw input files and decode them into documents.

``discover`` lists the files of the raw folder (every file, supported or not, so nothing
is silently lost); ``read_source`` turns one file into a stream of ``Document`` and
``Reject`` records: exactly one of the two for every input record, never an exception.

Plain text (``.txt``/``.md``) is decoded by ``decode_bytes``: byte-order mark, then
strict UTF-8, then charset-normalizer (with a preference for the configured legacy
encodings, since detection is unreliable on short text). JSON lines are UTF-8 by
specification and are streamed line by line; Parquet is streamed batch by batch.

The other formats (HTML, WARC/WET, gzip'd text, JSON, CSV/TSV) are read by
``tasks.stages.formats``: ``read_source`` dispatches by suffix, and sniffs a file of unknown extension.

The reader only decodes: it never repairs text (mojibake, control characters...),
which is the repair stage's job.
"""

from __future__ import annotations

import codecs
import encodings
import errno
import gzip
import hashlib
import json
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from charset_normalizer import from_bytes

from ..config import ReadConfig
from .limits import (CountingReader, DecompressionLimit, HashingReader, LimitedDecompressor, TooLarge, iter_lines,
                     read_bounded, utf8_stream)
from ..plumbing.records import Document, Reject, Skipped, make_doc_id

from .formats import COMPOUND_SUFFIXES, EXTRA_SUFFIXES, reader_for, sniff  # imports nothing from here

# These five and .jsonl.zst here; HTML, WARC/WET, gzip'd text, JSON, CSV/TSV in tasks.stages.formats.
SUPPORTED = (".txt", ".md", ".jsonl", ".jsonl.gz", ".parquet", *EXTRA_SUFFIXES)

_PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to the raw folder, "/" separated (used as source_path; see encode_source_path)
    size: int  # bytes; once planned, the bytes hashed: only these are read (a later append waits for the next run)
    sha256: str | None = None  # set by planning: the hash the cleaned bytes must have
    problem: tuple[str, str] | None = None  # (reason, detail): found unusable at discovery (link, FIFO...), never opened


class DecodeError(ValueError):
    """Bytes that are not text: ``reason`` is "binary" or "undecodable" (a REJECT_REASONS key)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- discovery


_ESCAPE_LIKE = re.compile(r"\\x[0-9a-f]{2}")


def encode_source_path(raw: bytes) -> str:
    """A relative path's bytes as text that Parquet can store, losslessly and uniquely.

    Valid UTF-8 without the text ``\\xHH`` is unchanged (every ordinary name). Otherwise each
    undecodable byte becomes ``\\xHH`` and each literal backslash ``\\\\``: an escaped name
    always contains ``\\xHH`` and an unchanged one never does, so two names cannot collide. A
    name with undecodable bytes and no backslash is encoded as earlier versions did (the old
    ``backslashreplace``), so existing manifests keep matching.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not _ESCAPE_LIKE.search(text):
        return text
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def decode_source_path(text: str) -> bytes:
    """The bytes of the path ``encode_source_path`` turned into ``text``."""
    if not _ESCAPE_LIKE.search(text):
        return text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] == "\\":
            out += b"\\"
            i += 2
        elif c == "\\" and text[i + 1 : i + 2] == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out += c.encode("utf-8")
            i += 1
    return bytes(out)


def _rel(path: Path, root: Path) -> str:
    """The path relative to the raw folder, as text that can always be stored (``encode_source_path``)."""
    return encode_source_path(os.fsencode(path.relative_to(root).as_posix()))


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def discover(raw_dir: Path, follow_symlinks: str = "inside") -> list[SourceFile]:
    """Every non-hidden entry under ``raw_dir`` (recursive), sorted by relative path.

    Hidden files and folders (name starting with ".") are skipped. Unsupported files are
    listed too: ``read_source`` rejects them with a reason. Entries that must not be read are
    listed with their ``problem`` (never opened, so a FIFO cannot block discovery): a FIFO,
    socket or device (``not_regular``), a symbolic link not followed (``symlink``: by default
    a link whose target leaves the raw folder, or a link to a folder), a dangling link or a
    sub-folder that cannot be listed (``unreadable``).
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.exists():
        raise FileNotFoundError(f"raw folder not found: {raw_dir}")
    if not raw_dir.is_dir():
        raise NotADirectoryError(f"raw folder is not a folder: {raw_dir}")
    root = Path(os.path.abspath(raw_dir))
    real_root = os.path.realpath(root)

    unlistable: list[str] = []
    root_error: list[OSError] = []

    def _on_error(err: OSError) -> None:
        if err.filename and os.path.abspath(err.filename) != str(root):
            unlistable.append(err.filename)
        else:
            root_error.append(err)

    found: list[SourceFile] = []

    def _problem(path: Path, reason: str, detail: str) -> None:
        found.append(SourceFile(path, _rel(path, root), 0, problem=(reason, detail)))

    def _link_problem(path: Path) -> str | None:
        """Why the link at ``path`` is not followed (None: follow it)."""
        if follow_symlinks == "all":
            return None
        target = os.path.realpath(path)
        if follow_symlinks == "none":
            return f"symbolic link to {target}: not followed (read.follow_symlinks = \"none\")"
        if target != real_root and not target.startswith(real_root.rstrip("/") + "/"):
            return f"symbolic link to {target}, outside the raw folder: not followed (read.follow_symlinks = \"all\" reads it)"
        return None

    seen_dirs: set[tuple[int, int]] = set()  # with follow_symlinks = "all": a link loop is walked once
    for dirpath, dirnames, filenames in os.walk(root, onerror=_on_error, followlinks=follow_symlinks == "all"):
        if follow_symlinks == "all":
            try:
                st = os.stat(dirpath)
            except OSError:
                dirnames[:] = []
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:
                dirnames[:] = []
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
        kept = []
        for d in dirnames:
            if d.startswith("."):
                continue
            path = Path(dirpath) / d
            if follow_symlinks != "all" and path.is_symlink():
                why = _link_problem(path) or (f"symbolic link to the folder {os.path.realpath(path)}: not followed "
                                              "(its files are read at their own path; read.follow_symlinks = \"all\" follows it)")
                _problem(path, "symlink", why)
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                lst = path.lstat()
            except OSError as exc:  # vanished since the listing
                _problem(path, "unreadable", _one_line(exc))
                continue
            if stat.S_ISLNK(lst.st_mode):
                why = _link_problem(path)
                if why is not None:
                    _problem(path, "symlink", why)
                    continue
            try:
                st = path.stat()
            except OSError as exc:  # a dangling symlink
                _problem(path, "unreadable", f"symbolic link to a missing file: {_one_line(exc)}")
                continue
            if stat.S_ISREG(st.st_mode):
                found.append(SourceFile(path, _rel(path, root), st.st_size))
            elif not stat.S_ISDIR(st.st_mode):  # a FIFO, socket or device: opening one could block or never end
                _problem(path, "not_regular", f"{_kind(st.st_mode)}, not a regular file")
    if root_error:
        raise PermissionError(f"raw folder cannot be listed: {raw_dir} ({root_error[0].strerror})")
    for folder in unlistable:
        path = Path(folder)
        _problem(path, "unreadable", "folder could not be listed")
    found.sort(key=lambda f: f.rel)
    return found


def open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (``O_NONBLOCK``: a FIFO put in its
    place since discovery does not block the open); raises ``OSError`` otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    return file_fingerprint(path)[0]


def file_fingerprint(path: Path) -> tuple[str, int]:
    """(SHA-256, size) of the bytes of a regular file as read now, from one read of them."""
    with open_regular(path) as f:
        reader = HashingReader(f)
        reader.drain()
        return reader.sha256(), reader.count


def _suffix(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1].lower()
    for compound in COMPOUND_SUFFIXES:
        if name.endswith(compound):
            return compound
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


# --------------------------------------------------------------------------- decoding

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16"),
)

# C0 control characters that do not belong in text (everything below 0x20 but \t \n \r \f).
_CONTROL_CHARS = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r\f")
_CONTROL_BYTES = _CONTROL_CHARS.encode("ascii")
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_CONTROL_RE = re.compile(f"[{re.escape(_CONTROL_CHARS)}]")
_MAX_CONTROL_SHARE = 0.05  # more than this share of control characters (and at least
_MIN_CONTROLS = 3  # this many) means binary

# NUL bytes in text without a byte-order mark: UTF-16/32 when they fall on every other (fourth)
# byte, else a few stray ones are tolerated (a scraper's glitch must not reject a whole file).
_MAX_STRAY_NULS = 2
_MAX_NUL_SHARE = 0.001
_WIDE_MIN_ZERO_SHARE = 0.3  # of the high bytes of UTF-16 code units (mostly Latin text: ~0.9+)
_WIDE_MAX_LOW_ZERO_SHARE = 0.01  # of the low bytes (a zero there is U+0000 or U+xx00)

# A file that fails strict UTF-8 but is overwhelmingly valid UTF-8 (a truncated last
# character, a stray byte) is UTF-8 with a few U+FFFD: detection would otherwise read
# the whole file as some legacy code page and garble every accented letter.
_MOSTLY_UTF8_MIN_VALID = 8
_MOSTLY_UTF8_MAX_BAD_RATIO = 0.05


def codec_name(name: str) -> str:
    """Python codec name for an encoding name ("windows-1252" -> "cp1252", "UTF8" -> "utf-8")."""
    norm = encodings.normalize_encoding(name).lower()
    norm = encodings.aliases.aliases.get(norm, norm)
    if norm.startswith("utf_"):
        return norm.replace("_", "-")
    return norm


def _too_many_controls(n_controls: int, n_total: int) -> bool:
    return n_controls >= _MIN_CONTROLS and n_controls > n_total * _MAX_CONTROL_SHARE


def _check_controls(text: str) -> None:
    n = len(_CONTROL_RE.findall(text))
    if _too_many_controls(n, len(text)):
        raise DecodeError("binary", f"looks binary: {n} control characters in {len(text)}")


def _decode_mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with U+FFFD for a few invalid bytes, if the rest has plenty of valid multi-byte UTF-8."""
    text = data.decode("utf-8", errors="replace")
    n_fffd = text.count("\ufffd")
    n_bad = n_fffd - data.count("\ufffd".encode("utf-8"))
    n_non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    n_valid = n_non_ascii - n_fffd
    if n_valid >= _MOSTLY_UTF8_MIN_VALID and n_bad <= n_valid * _MOSTLY_UTF8_MAX_BAD_RATIO:
        return text
    return None


def _decode_mostly(data: bytes, codec: str) -> str | None:
    """Text announced by a byte-order mark with a few invalid units (e.g. truncated): U+FFFD for those."""
    if codec == "utf-8-sig":
        return _decode_mostly_utf8(data[len(codecs.BOM_UTF8) :])
    text = data.decode(codec, errors="replace")
    n_fffd = text.count("\ufffd")
    n_valid = len(text) - n_fffd
    if n_valid >= _MOSTLY_UTF8_MIN_VALID and n_fffd <= max(1, n_valid * _MOSTLY_UTF8_MAX_BAD_RATIO):
        return text
    return None


def _decode_wide_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 or UTF-32 text without a byte-order mark, told by where its zero bytes fall (the
    high bytes of Latin-script code units): ``(text, encoding)``, or None if it is not that."""
    for width, codec, high, low in ((4, "utf-32-le", (2, 3), (0,)), (4, "utf-32-be", (0, 1), (3,)),
                                    (2, "utf-16-le", (1,), (0,)), (2, "utf-16-be", (0,), (1,))):
        units = len(data) // width
        if units < 2:
            continue
        zeros_high = min(data[i::width].count(0) for i in high) / units
        zeros_low = max(data[i::width].count(0) for i in low) / units
        if zeros_high >= _WIDE_MIN_ZERO_SHARE and zeros_low <= _WIDE_MAX_LOW_ZERO_SHARE:
            text = _strict(data, codec)
            if text is None:
                text = _decode_mostly(data, codec)
            if text is not None:
                return text, codec
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _detect(data: bytes, preferred: Sequence[str]) -> tuple[str, str] | None:
    try:
        results = from_bytes(data)
        best = results.best()
        matches = list(results)
    except Exception:  # detection is best effort: a crash in it means "no idea"
        return None
    if best is None:
        return None
    preferred_names = [codec_name(p) for p in preferred]
    for wanted in preferred_names:
        for match in matches:
            if match.chaos > best.chaos + 0.1:
                continue
            names = {codec_name(match.encoding)} | {codec_name(c) for c in match.could_be_from_charset}
            if wanted in names:
                text = _strict(data, wanted)
                if text is not None:
                    return text, wanted
    for match in matches:
        name = codec_name(match.encoding)
        text = _strict(data, name)
        if text is not None:
            return text, name
    return None


def decode_bytes(data: bytes, preferred: Sequence[str] = ("cp1252",)) -> tuple[str, str]:
    """Decode raw bytes to text; return ``(text, encoding_name)``.

    Order: byte-order mark; strict UTF-8; mostly-UTF-8 (a few invalid bytes become
    U+FFFD); charset-normalizer, preferring an encoding of ``preferred`` when it is about
    as plausible as the best guess. Raises ``DecodeError`` for binary or undecodable bytes.
    """
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            text = _strict(data, codec)
            if text is None:
                text = _decode_mostly(data, codec)
            if text is None and name == "utf-32":
                continue  # FF FE 00 00 may also be a UTF-16 BOM followed by U+0000
            if text is None:
                raise DecodeError("undecodable", f"starts with a {name} byte-order mark but is not valid {name}")
            _check_controls(text)
            return text, name
    if b"\x00" in data:
        wide = _decode_wide_without_bom(data)
        if wide is not None:
            _check_controls(wide[0])
            return wide
        n_nul = data.count(b"\x00")
        if n_nul > max(_MAX_STRAY_NULS, len(data) * _MAX_NUL_SHARE):
            raise DecodeError("binary", f"looks binary: {n_nul} NUL bytes in {len(data)} and no UTF-16/UTF-32 byte-order mark")
        # a few stray NULs (a scraper's glitch) in text: the repair stage removes them ("control_chars")
    n_controls = len(data.translate(None, _NOT_CONTROL_BYTES))
    if _too_many_controls(n_controls, len(data)):
        raise DecodeError("binary", f"looks binary: {n_controls} control bytes in {len(data)}")
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    text = _decode_mostly_utf8(data)
    if text is not None:
        return text, "utf-8"
    found = _detect(data, preferred)
    if found is None:
        raise DecodeError("undecodable", "no text encoding decodes the bytes plausibly")
    _check_controls(found[0])
    return found


# --------------------------------------------------------------------------- reading


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _limit_bytes(config: ReadConfig) -> int:
    return int(config.max_record_mb * 1_000_000)


def _changed(src: SourceFile, sha: str) -> Reject:
    """The bytes read are not the ones planned: the file was rewritten during the run."""
    return Reject(src.rel, None, "changed_during_run",
                  f"the file changed while the run read it (planned SHA-256 {src.sha256[:12]}..., read {sha[:12]}...): "
                  "the next run reads it again", sha)


def read_source(src: SourceFile, config: ReadConfig, skipped: Counter | None = None) -> Iterator[Document | Reject]:
    """Documents and rejects of one file, streamed; never raises for bad input.

    Records that are by nature not documents (WARC ``request``, ``metadata``, ``warcinfo``,
    ``revisit``) are neither: they are counted in ``skipped`` by record type, when given.

    A planned file (``src.sha256`` set) is read up to the planned size, hashing exactly the
    bytes decoded: if they do not match the plan, the file changed during the run, and a
    ``changed_during_run`` reject says so (see ``_read_jsonl`` for what was already yielded).
    """
    if src.problem is not None:
        yield Reject(src.rel, None, src.problem[0], src.problem[1])
        return
    suffix = _suffix(src.rel)
    if src.path.is_dir():
        yield Reject(src.rel, None, "unreadable", "folder could not be listed")
        return
    if suffix not in SUPPORTED:
        sniffed = sniff(src.path)  # an unknown extension: read as what its first bytes look like
        if sniffed is None:
            try:
                sha: str | None = src.sha256 or file_sha256(src.path)
            except OSError:
                sha = None
            shown = suffix or "(no extension)"
            yield Reject(src.rel, None, "unsupported_format",
                         f"extension {shown} is not supported and the content looks like none of the formats read "
                         f"({', '.join(SUPPORTED)})", sha)
            return
        suffix = sniffed
    reader = reader_for(suffix)
    if reader is not None:  # HTML, WARC/WET, gzip'd text, JSON, CSV/TSV (tasks.stages.formats)
        for item in reader(src, config):
            if isinstance(item, Skipped):
                if skipped is not None:
                    skipped[item.kind] += 1
                continue
            yield item
        return
    try:
        f = open_regular(src.path)
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    with f:
        if suffix in (".txt", ".md"):
            yield from _read_text(src, config, f)
        elif suffix == ".parquet":
            yield from _read_parquet(src, config, f)
        else:
            yield from _read_jsonl(src, config, f, gzipped=suffix == ".jsonl.gz", zstd=suffix == ".jsonl.zst")


def _read_text(src: SourceFile, config: ReadConfig, f: BinaryIO) -> Iterator[Document | Reject]:
    """One document. Charset detection needs the whole text, so a file is read whole up to
    ``read.max_record_mb``; a larger one is rejected (``too_large``, hashed without being held)
    or, with ``read.oversize = "cut"``, cut at its last line break before the limit."""
    reader = HashingReader(f, src.size if src.sha256 else None)
    limit = _limit_bytes(config)
    try:
        data, more = read_bounded(reader, limit)
        if more:
            reader.drain()
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    sha = reader.sha256()
    if src.sha256 and sha != src.sha256:
        yield _changed(src, sha)
        return
    yield from text_document(src, sha, data, more, reader.count, config)


def text_document(
    src: SourceFile, sha: str, data: bytes, more: bool, file_bytes: int, config: ReadConfig, compressed: bool = False
) -> Iterator[Document | Reject]:
    """The one document of a text file from its first ``read.max_record_mb`` bytes (``more``: the
    file goes on; ``file_bytes``: its size, ``compressed``: it was decompressed): a larger file is
    ``too_large``, or with ``read.oversize = "cut"`` cut at its last line break before the limit."""
    limit = _limit_bytes(config)
    metadata = "{}"
    where = " once decompressed" if compressed else ""
    if more:
        if config.oversize != "cut":
            size = f"more than {_mb(limit)}{where}" if compressed else _mb(file_bytes)
            yield Reject(src.rel, None, "too_large",
                         f"{size}, above read.max_record_mb ({_mb(limit)}; read.oversize = \"cut\" keeps its start)", sha)
            return
        newline = data.rfind(b"\n")
        if newline > 0:
            data = data[: newline + 1]
        cut = {"kept_bytes": len(data), "file_bytes": file_bytes, **({"compressed": True} if compressed else {})}
        metadata = json.dumps({"corpusclean_cut": cut})
    if not data.strip():
        yield Reject(src.rel, None, "empty_file", f"{len(data)} bytes{where}, no text", sha)
        return
    try:
        text, encoding = decode_bytes(data, config.preferred_encodings)
    except DecodeError as exc:
        yield Reject(src.rel, None, exc.reason, exc.detail, sha)
        return
    del data
    if not text.strip():
        yield Reject(src.rel, None, "empty_file", f"decoded as {encoding}: whitespace only", sha)
        return
    yield Document(make_doc_id(src.rel, sha, 0), src.rel, sha, 0, text, encoding, metadata)


def stream_end(src: SourceFile, sha: str, reader: HashingReader, after: str) -> Iterator[Reject]:
    """The end of a file read record by record: the rest of it drained into the hash. A read error,
    or a hash other than the one its records carry (the file was rewritten during the run: they are
    superseded by the next run), is a reject; returns whether the records stand."""
    try:
        reader.drain()
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", f"stopped reading after {after}: {_one_line(exc)}", sha)
        return False
    if reader.sha256() != sha:
        yield _changed(SourceFile(src.path, src.rel, src.size, sha), reader.sha256())
        return False
    return True


def _finite(value: Any) -> Any:
    """Replace NaN/Infinity (not JSON) by null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _metadata_json(fields: dict[str, Any]) -> str:
    """The record's other fields as a JSON object string (always valid UTF-8, valid JSON)."""
    if not fields:
        return "{}"
    try:
        out = json.dumps(fields, ensure_ascii=False, sort_keys=True, allow_nan=False, default=str)
    except ValueError:  # NaN / Infinity
        out = json.dumps(_finite(fields), ensure_ascii=False, sort_keys=True, allow_nan=False, default=str)
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from \ud800 escapes): keep them escaped
        out = json.dumps(_finite(fields), ensure_ascii=True, sort_keys=True, allow_nan=False, default=str)
    return out


def _record(
    src: SourceFile, sha: str, index: int, record: dict[str, Any], text_field: str, encoding: str,
    limit: int | None = None,
) -> Document | Reject:
    """A Document from a record (a dict), or the Reject saying why not."""
    if text_field not in record:
        return Reject(src.rel, index, "missing_text", f"record {index}: no {text_field!r} field", sha)
    text = record[text_field]
    if not isinstance(text, str):
        kind = "null" if text is None else type(text).__name__
        return Reject(src.rel, index, "text_not_string", f"record {index}: {text_field!r} is {kind}, not a string", sha)
    if not text.strip():
        return Reject(src.rel, index, "empty_text", f"record {index}: {text_field!r} is empty or whitespace", sha)
    others = {k: v for k, v in record.items() if k != text_field}
    try:
        metadata = _metadata_json(others)
    except (ValueError, TypeError, RecursionError) as exc:
        return Reject(src.rel, index, "invalid_json", f"record {index}: fields not serialisable: {_one_line(exc)}", sha)
    if limit is not None and len(text) + len(metadata) > limit:  # characters: at least as many bytes
        return Reject(src.rel, index, "too_large", f"record {index}: {_mb(len(text) + len(metadata))} (characters), "
                      f"above read.max_record_mb ({_mb(limit)})", sha)
    return Document(make_doc_id(src.rel, sha, index), src.rel, sha, index, text, encoding, metadata)


def _record_or_html(
    src: SourceFile, sha: str, index: int, record: dict[str, Any], config: ReadConfig, encoding: str,
    limit: int | None = None,
) -> Document | Reject:
    """``_record``, or the page extracted from the record's HTML when ``read.html_field`` holds some."""
    if config.html_field is not None and config.html_field in record:
        from .formats.html import record_document

        return record_document(src, sha, index, record, config, encoding)
    return _record(src, sha, index, record, config.text_field, encoding, limit)


_INT_DIGITS = 4000  # under Python's int-from-string limit (4,300 digits): a longer integer is kept as its digits


def json_int(digits: str) -> int | str:
    """``json.loads``'s ``parse_int``: valid JSON with a huge integer (a 5,000-digit id) was
    rejected ``invalid_json`` with Python's int-limit message; its digits are kept as a string."""
    return int(digits) if len(digits) <= _INT_DIGITS else digits


def _parse_line(raw: bytes, index: int) -> dict[str, Any] | tuple[str, str]:
    """The JSON object of one line, or (reason, detail)."""
    try:
        line = raw.decode("utf-8-sig" if index == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        return "undecodable", f"line {index}: not valid UTF-8 ({_one_line(exc)})"
    try:
        value = json.loads(line.rstrip("\r\n"), parse_int=json_int)
    except (ValueError, RecursionError) as exc:
        return "invalid_json", f"line {index}: invalid JSON ({_one_line(exc)})"
    if not isinstance(value, dict):
        return "invalid_json", f"line {index}: a JSON {type(value).__name__}, not an object"
    return value


def _read_jsonl(src: SourceFile, config: ReadConfig, f: BinaryIO, gzipped: bool,
                zstd: bool = False) -> Iterator[Document | Reject]:
    """Records streamed line by line, each line bounded by ``read.max_record_mb`` (a longer one
    is read through, never held, and rejected ``too_large``); a .jsonl.gz (or, ``zstd``, a
    .jsonl.zst) stops at the decompression limits
    (``decompression_limit``), keeping the records before it.

    Records carry the hash of the file before it is read: the planned one, or one pass of
    hashing first when the file was not planned. The reading pass hashes the same bytes
    again; if they differ (the file was rewritten, not just appended to, during the run), a
    ``changed_during_run`` reject follows the records, and the run leaves the file's hash out
    of the manifest so the next run cleans it again and supersedes them.
    """
    try:
        sha = src.sha256 or file_sha256(src.path)
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    reader = HashingReader(f, src.size if src.sha256 else None)
    stream: BinaryIO = reader  # type: ignore[assignment]
    if gzipped:
        compressed = CountingReader(reader)  # type: ignore[arg-type]
        stream = LimitedDecompressor(gzip.GzipFile(fileobj=compressed, mode="rb"), compressed,  # type: ignore[assignment]
                                     int(config.max_decompressed_mb * 1_000_000), config.max_decompression_ratio)
    elif zstd:
        import zstandard

        compressed = CountingReader(reader)  # type: ignore[arg-type]
        # read_across_frames: files written as several frames (zstd --long, concatenated) read whole
        stream = LimitedDecompressor(  # type: ignore[assignment]
            zstandard.ZstdDecompressor().stream_reader(compressed, read_across_frames=True, closefd=False), compressed,
            int(config.max_decompressed_mb * 1_000_000), config.max_decompression_ratio)
    limit = _limit_bytes(config)
    n_records = 0
    index = -1
    try:
        stream, encoding = utf8_stream(stream)  # UTF-16/32 JSON lines are read as UTF-8
    except DecompressionLimit as exc:
        yield Reject(src.rel, None, "decompression_limit", f"stopped at the start: {exc}", sha)
        return
    except Exception as exc:  # corrupt or truncated gzip, I/O error
        yield Reject(src.rel, None, "unreadable", f"stopped reading at the start: {_one_line(exc)}", sha)
        return
    lines = iter_lines(stream, limit)
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            break
        except DecompressionLimit as exc:
            yield Reject(src.rel, None, "decompression_limit", f"stopped after line {index}: {exc}", sha)
            return
        except Exception as exc:  # corrupt or truncated gzip (OSError, EOFError, zlib.error), I/O error
            where = f"after line {index}" if index >= 0 else "at the start"
            yield Reject(src.rel, None, "unreadable", f"stopped reading {where}: {_one_line(exc)}", sha)
            return
        index += 1
        if isinstance(raw, TooLarge):
            n_records += 1
            yield Reject(src.rel, index, "too_large",
                         f"line {index}: {_mb(raw.size)}, above read.max_record_mb ({_mb(limit)})", sha)
            continue
        if not raw.strip():
            continue
        n_records += 1
        parsed = _parse_line(raw, index)
        del raw
        if isinstance(parsed, tuple):
            yield Reject(src.rel, index, parsed[0], parsed[1], sha)
        else:
            yield _record_or_html(src, sha, index, parsed, config, encoding, limit)
    if not (yield from stream_end(src, sha, reader, f"line {index}")):
        return
    if n_records == 0:
        yield Reject(src.rel, None, "empty_file", "no records (the file is empty or blank)", sha)


def _read_parquet(src: SourceFile, config: ReadConfig, f: BinaryIO) -> Iterator[Document | Reject]:
    """Rows streamed batch by batch (a row group at a time); a text value above
    ``read.max_record_mb`` is rejected ``too_large`` before it is converted. Parquet is read
    by offset (footer first), so the file is hashed first, from the same open file, and its
    modification time checked after reading: a rewrite in between is ``changed_during_run``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        before = os.fstat(f.fileno())
        hasher = HashingReader(f, src.size if src.sha256 else None)
        hasher.drain()
        f.seek(0)
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    sha = hasher.sha256()
    if src.sha256 and sha != src.sha256:
        yield _changed(src, sha)
        return
    if hasher.count == 0:
        yield Reject(src.rel, None, "empty_file", "0 bytes", sha)
        return
    try:
        pf = pq.ParquetFile(f)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ValueError... on corrupt files
        yield Reject(src.rel, None, "unreadable", f"not a readable Parquet file: {_one_line(exc)}", sha)
        return
    try:
        names = pf.schema_arrow.names
        expected_rows = pf.metadata.num_rows
    except Exception as exc:
        pf.close()
        yield Reject(src.rel, None, "unreadable", f"not a readable Parquet file: {_one_line(exc)}", sha)
        return
    text_field = config.text_field
    limit = _limit_bytes(config)
    row = 0
    try:
        if text_field not in names and config.html_field not in names:
            yield Reject(src.rel, None, "missing_text", f"no {text_field!r} column (columns: {', '.join(names)})", sha)
            return
        checked = [name for name in (text_field, config.html_field) if name is not None and name in names]
        for batch in pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            too_big: set[int] = set()
            sizes = [0] * len(batch)
            for name in checked:  # the text and the HTML column
                column = batch.column(name)
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_binary(column.type):
                    for i, n in enumerate(pc.binary_length(column).to_pylist()):
                        if n is not None and n > limit:
                            too_big.add(i)
                            sizes[i] = max(sizes[i], n)
            if too_big:  # drop the huge values before they become Python strings
                mask = pa.array([i not in too_big for i in range(len(batch))])
                kept = batch.filter(mask).to_pylist()
            else:
                kept = batch.to_pylist()
            it = iter(kept)
            for i in range(len(batch)):
                if i in too_big:
                    yield Reject(src.rel, row, "too_large",
                                 f"row {row}: a value of {_mb(sizes[i])}, above read.max_record_mb ({_mb(limit)})", sha)
                else:
                    yield _record_or_html(src, sha, row, next(it), config, "utf-8", limit)
                row += 1
            del kept, it
    except Exception as exc:  # a corrupt row group, an unconvertible value...
        yield Reject(src.rel, None, "unreadable", f"stopped reading at row {row}: {_one_line(exc)}", sha)
        return
    finally:
        pf.close()
    if row != expected_rows:  # a corrupt footer or row group can make pyarrow stop early, silently
        yield Reject(src.rel, None, "unreadable", f"read {row} rows but the file declares {expected_rows}", sha)
        return
    try:
        after = os.fstat(f.fileno())
        if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
            f.seek(0)
            again = HashingReader(f, src.size if src.sha256 else None)
            again.drain()
            if again.sha256() != sha:
                yield _changed(SourceFile(src.path, src.rel, src.size, sha), again.sha256())
                return
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc), sha)
        return
    if row == 0:
        yield Reject(src.rel, None, "empty_file", "no rows", sha)
