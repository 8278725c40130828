"""Plain containers: gzip'd text (``.txt.gz``/``.md.gz``) and JSON (``.json``: an array of records or
one object). Zstandard JSON lines (``.jsonl.zst``) are read by ``tasks.stages.read._read_jsonl``, as ``.jsonl.gz`` is."""

from __future__ import annotations

import json
from collections.abc import Iterator

from ...config import ReadConfig
from ..read import SourceFile, _one_line, json_int, text_document
from ...plumbing.records import Document, Reject

from ..limits import json_encoding
from .bounded import read_document, read_whole
from .html import record_document


def read_gzip_text(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """One document, like ``.txt``/``.md`` once decompressed: read whole up to ``read.max_record_mb``
    (decompressed), through the decompression limits (``decompression_limit``). A larger text is
    rejected ``too_large`` (the rest of the file is hashed, never decompressed), or with
    ``read.oversize = "cut"`` cut at its last line break before the limit, as a ``.txt`` is."""
    got = read_document(src, config, gz=True)
    if isinstance(got, Reject):
        yield got
        return
    data, more, sha, file_bytes = got
    yield from text_document(src, sha, data, more, file_bytes, config, compressed=True)


def read_json(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """A JSON array of objects (record i = element i) or one object (record 0).

    Parsed whole: JSON has no record boundaries to stream on, so the file is the record that
    ``read.max_record_mb`` bounds: a larger file is rejected ``too_large`` as a whole (hashed as
    it streams past, never held). Use JSON lines for big files.
    """
    got = read_whole(src, config, gz=False, what="JSON",
                     why="a .json file is parsed whole (JSON lines stream record by record)")
    if isinstance(got, Reject):
        yield got
        return
    raw, sha = got
    if not raw.strip():
        yield Reject(src.rel, None, "empty_file", f"{len(raw)} bytes, no JSON", sha)
        return
    encoding, bom = json_encoding(raw[:4])  # UTF-8, or UTF-16/32 with or without a byte-order mark
    try:
        value = json.loads(raw[bom:].decode("utf-8-sig" if encoding == "utf-8" else encoding), parse_int=json_int)
    except UnicodeDecodeError as exc:
        yield Reject(src.rel, None, "undecodable", f"not valid {encoding.upper()} ({_one_line(exc)})", sha)
        return
    except (ValueError, RecursionError) as exc:
        yield Reject(src.rel, None, "invalid_json", f"invalid JSON ({_one_line(exc)})", sha)
        return
    del raw
    if isinstance(value, dict):
        yield record_document(src, sha, 0, value, config, encoding)
        return
    if not isinstance(value, list):
        yield Reject(src.rel, None, "invalid_json", f"a JSON {type(value).__name__}: expected an array of objects or one object", sha)
        return
    if not value:
        yield Reject(src.rel, None, "empty_file", "an empty JSON array", sha)
        return
    for index, item in enumerate(value):
        if isinstance(item, dict):
            yield record_document(src, sha, index, item, config, encoding)
        else:
            yield Reject(src.rel, index, "invalid_json", f"element {index}: a JSON {type(item).__name__}, not an object", sha)
        value[index] = None  # each record's memory goes as soon as it is read
