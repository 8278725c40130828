"""Plain containers: gzip'd text (``.txt.gz``/``.md.gz``), JSON (``.json``: an array of records or
one object) and zstandard-compressed JSON lines (``.jsonl.zst``)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator

from tasks.config import ReadConfig
from tasks.read import DecodeError, SourceFile, _one_line, _parse_line, decode_bytes, file_sha256
from tasks.records import Document, Reject, make_doc_id

from tasks.formats.html import record_document


def read_gzip_text(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """One document, like ``.txt``/``.md`` once decompressed (the whole text is one document, so it
    is held in memory as a plain file's is)."""
    try:
        raw = src.path.read_bytes()
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    sha = hashlib.sha256(raw).hexdigest()
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, ValueError) as exc:
        yield Reject(src.rel, None, "unreadable", f"not a readable gzip file: {_one_line(exc)}", sha)
        return
    del raw
    if not data.strip():
        yield Reject(src.rel, None, "empty_file", f"{len(data)} bytes once decompressed, no text", sha)
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


def read_json(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """A JSON array of objects (record i = element i) or one object (record 0).

    Parsed whole: JSON has no record boundaries to stream on. Use JSON lines for big files.
    """
    try:
        raw = src.path.read_bytes()
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    sha = hashlib.sha256(raw).hexdigest()
    if not raw.strip():
        yield Reject(src.rel, None, "empty_file", f"{len(raw)} bytes, no JSON", sha)
        return
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        yield Reject(src.rel, None, "undecodable", f"not valid UTF-8 ({_one_line(exc)})", sha)
        return
    except (ValueError, RecursionError) as exc:
        yield Reject(src.rel, None, "invalid_json", f"invalid JSON ({_one_line(exc)})", sha)
        return
    del raw
    if isinstance(value, dict):
        yield record_document(src, sha, 0, value, config, "utf-8")
        return
    if not isinstance(value, list):
        yield Reject(src.rel, None, "invalid_json", f"a JSON {type(value).__name__}: expected an array of objects or one object", sha)
        return
    if not value:
        yield Reject(src.rel, None, "empty_file", "an empty JSON array", sha)
        return
    for index, item in enumerate(value):
        if isinstance(item, dict):
            yield record_document(src, sha, index, item, config, "utf-8")
        else:
            yield Reject(src.rel, index, "invalid_json", f"element {index}: a JSON {type(item).__name__}, not an object", sha)
        value[index] = None  # each record's memory goes as soon as it is read


def read_jsonl_zst(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """JSON lines in a zstandard stream, decompressed as it is read (one line in memory at a time)."""
    import zstandard

    try:
        sha = file_sha256(src.path)
        f = open(src.path, "rb")
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    n_records = 0
    index = -1
    with f:
        # read_across_frames: files written as several frames (zstd --long, concatenated) read whole
        stream = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True))
        lines = iter(stream)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                break
            except Exception as exc:  # zstd.ZstdError on corrupt or truncated data, I/O errors
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
                yield record_document(src, sha, index, parsed, config, "utf-8")
    if n_records == 0:
        yield Reject(src.rel, None, "empty_file", "no records (the file is empty or blank)", sha)
