"""Stage 1: discover raw input files and decode them into documents.

``discover`` lists the files of the raw folder (every file, supported or not, so nothing
is silently lost); ``read_source`` turns one file into a stream of ``Document`` and
``Reject`` records: exactly one of the two for every input record, never an exception.

Plain text (``.txt``/``.md``) is decoded by ``decode_bytes``: byte-order mark, then
strict UTF-8, then charset-normalizer (with a preference for the configured legacy
encodings, since detection is unreliable on short text). JSON lines are UTF-8 by
specification and are streamed line by line; Parquet is streamed batch by batch.

The other formats (HTML, WARC/WET, gzip'd text, JSON, zstd JSON lines, CSV/TSV) are read by
``tasks.formats``: ``read_source`` dispatches by suffix, and sniffs a file of unknown extension.

The reader only decodes: it never repairs text (mojibake, control characters...),
which is the repair stage's job.
"""

from __future__ import annotations

import codecs
import encodings
import gzip
import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

from tasks.config import ReadConfig
from tasks.records import Document, Reject, make_doc_id

from tasks.formats import COMPOUND_SUFFIXES, EXTRA_SUFFIXES, reader_for, sniff  # imports nothing from here

# The original four here; HTML, WARC/WET, gzip'd text, JSON, zstd JSON lines, CSV/TSV in tasks.formats.
SUPPORTED = (".txt", ".md", ".jsonl", ".jsonl.gz", ".parquet", *EXTRA_SUFFIXES)

_PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to the raw folder, "/" separated (used as source_path)
    size: int


class DecodeError(ValueError):
    """Bytes that are not text: ``reason`` is "binary" or "undecodable" (a REJECT_REASONS key)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- discovery


def _rel(path: Path, root: Path) -> str:
    """The path relative to the raw folder, as text that can always be stored.

    A file name that is not valid UTF-8 (possible on Linux) would carry surrogate escapes,
    which Parquet cannot hold; such bytes are shown as backslash escapes instead.
    """
    rel = path.relative_to(root).as_posix()
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def discover(raw_dir: Path) -> list[SourceFile]:
    """Every non-hidden file under ``raw_dir`` (recursive), sorted by relative path.

    Hidden files and folders (name starting with ".") are skipped. Unsupported files are
    listed too: ``read_source`` rejects them with a reason. A sub-folder that cannot be
    listed is returned as an entry of its own, which ``read_source`` rejects as unreadable.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.exists():
        raise FileNotFoundError(f"raw folder not found: {raw_dir}")
    if not raw_dir.is_dir():
        raise NotADirectoryError(f"raw folder is not a folder: {raw_dir}")
    root = Path(os.path.abspath(raw_dir))

    unlistable: list[str] = []
    root_error: list[OSError] = []

    def _on_error(err: OSError) -> None:
        if err.filename and os.path.abspath(err.filename) != str(root):
            unlistable.append(err.filename)
        else:
            root_error.append(err)

    found: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_on_error):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:  # e.g. a dangling symlink: listed, rejected as unreadable later
                found.append(SourceFile(path, _rel(path, root), 0))
                continue
            if stat.S_ISREG(st.st_mode):  # skip sockets, FIFOs (reading one would block)...
                found.append(SourceFile(path, _rel(path, root), st.st_size))
    if root_error:
        raise PermissionError(f"raw folder cannot be listed: {raw_dir} ({root_error[0].strerror})")
    for folder in unlistable:
        path = Path(folder)
        found.append(SourceFile(path, _rel(path, root), 0))
    found.sort(key=lambda f: f.rel)
    return found


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
        raise DecodeError("binary", "looks binary: contains NUL bytes and no UTF-16/UTF-32 byte-order mark")
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


def read_source(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """Documents and rejects of one file, streamed; never raises for bad input."""
    suffix = _suffix(src.rel)
    if src.path.is_dir():
        yield Reject(src.rel, None, "unreadable", "folder could not be listed")
        return
    if suffix not in SUPPORTED:
        sniffed = sniff(src.path)  # an unknown extension: read as what its first bytes look like
        if sniffed is None:
            try:
                sha: str | None = file_sha256(src.path)
            except OSError:
                sha = None
            shown = suffix or "(no extension)"
            yield Reject(src.rel, None, "unsupported_format",
                         f"extension {shown} is not supported and the content looks like none of the formats read "
                         f"({', '.join(SUPPORTED)})", sha)
            return
        suffix = sniffed
    reader = reader_for(suffix)
    if reader is not None:
        yield from reader(src, config)
    elif suffix in (".txt", ".md"):
        yield from _read_text(src, config)
    elif suffix == ".parquet":
        yield from _read_parquet(src, config)
    else:
        yield from _read_jsonl(src, config, gzipped=suffix == ".jsonl.gz")


def _read_text(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    try:
        data = src.path.read_bytes()
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    sha = hashlib.sha256(data).hexdigest()
    if not data.strip():
        yield Reject(src.rel, None, "empty_file", f"{len(data)} bytes, no text", sha)
        return
    try:
        text, encoding = decode_bytes(data, config.preferred_encodings)
    except DecodeError as exc:
        yield Reject(src.rel, None, exc.reason, exc.detail, sha)
        return
    if not text.strip():
        yield Reject(src.rel, None, "empty_file", f"decoded as {encoding}: whitespace only", sha)
        return
    yield Document(make_doc_id(src.rel, sha, 0), src.rel, sha, 0, text, encoding)


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
    src: SourceFile, sha: str, index: int, record: dict[str, Any], text_field: str, encoding: str
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
    return Document(make_doc_id(src.rel, sha, index), src.rel, sha, index, text, encoding, metadata)


def _record_or_html(
    src: SourceFile, sha: str, index: int, record: dict[str, Any], config: ReadConfig, encoding: str
) -> Document | Reject:
    """``_record``, or the page extracted from the record's HTML when ``read.html_field`` holds some."""
    if config.html_field is not None and config.html_field in record:
        from tasks.formats.html import record_document

        return record_document(src, sha, index, record, config, encoding)
    return _record(src, sha, index, record, config.text_field, encoding)


def _parse_line(raw: bytes, index: int) -> dict[str, Any] | tuple[str, str]:
    """The JSON object of one line, or (reason, detail)."""
    try:
        line = raw.decode("utf-8-sig" if index == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        return "undecodable", f"line {index}: not valid UTF-8 ({_one_line(exc)})"
    try:
        value = json.loads(line.rstrip("\r\n"))
    except (ValueError, RecursionError) as exc:
        return "invalid_json", f"line {index}: invalid JSON ({_one_line(exc)})"
    if not isinstance(value, dict):
        return "invalid_json", f"line {index}: a JSON {type(value).__name__}, not an object"
    return value


def _read_jsonl(src: SourceFile, config: ReadConfig, gzipped: bool) -> Iterator[Document | Reject]:
    try:
        sha = file_sha256(src.path)
        f = gzip.open(src.path, "rb") if gzipped else open(src.path, "rb")
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    n_records = 0
    index = -1
    with f:
        lines = iter(f)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                break
            except Exception as exc:  # corrupt or truncated gzip (OSError, EOFError, zlib.error), I/O error
                where = f"after line {index}" if index >= 0 else "at the start"
                yield Reject(src.rel, None, "unreadable", f"stopped reading {where}: {_one_line(exc)}", sha)
                return
            index += 1
            if not raw.strip():
                continue
            n_records += 1
            parsed = _parse_line(raw, index)
            if isinstance(parsed, tuple):
                yield Reject(src.rel, index, parsed[0], parsed[1], sha)
            else:
                yield _record_or_html(src, sha, index, parsed, config, "utf-8")
    if n_records == 0:
        yield Reject(src.rel, None, "empty_file", "no records (the file is empty or blank)", sha)


def _read_parquet(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    import pyarrow.parquet as pq

    try:
        sha = file_sha256(src.path)
        size = src.path.stat().st_size
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    if size == 0:
        yield Reject(src.rel, None, "empty_file", "0 bytes", sha)
        return
    try:
        pf = pq.ParquetFile(src.path)
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
    row = 0
    try:
        if text_field not in names and config.html_field not in names:
            yield Reject(src.rel, None, "missing_text", f"no {text_field!r} column (columns: {', '.join(names)})", sha)
            return
        for batch in pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            for record in batch.to_pylist():
                yield _record_or_html(src, sha, row, record, config, "utf-8")
                row += 1
    except Exception as exc:  # a corrupt row group, an unconvertible value...
        yield Reject(src.rel, None, "unreadable", f"stopped reading at row {row}: {_one_line(exc)}", sha)
        return
    finally:
        pf.close()
    if row != expected_rows:  # a corrupt footer or row group can make pyarrow stop early, silently
        yield Reject(src.rel, None, "unreadable", f"read {row} rows but the file declares {expected_rows}", sha)
    elif row == 0:
        yield Reject(src.rel, None, "empty_file", "no rows", sha)
