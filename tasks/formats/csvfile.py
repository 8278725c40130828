"""CSV and TSV: a header row, then one record per row; ``read.text_field`` names the text column
(``read.html_field`` a column of HTML). Quoted fields may hold newlines. Streamed row by row.

The encoding is decided on the first megabyte (``decode_bytes``); record i is data row i (the
header is not counted). Every other column goes into metadata, as strings.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator

from tasks.config import ReadConfig
from tasks.read import DecodeError, SourceFile, _one_line, decode_bytes, file_sha256
from tasks.records import Document, Reject

from tasks.formats.html import record_document

_HEAD_BYTES = 1 << 20
# The csv module refuses fields over 128 KiB by default; a web page's text can be longer.
# (The limit is process-wide; raising it changes nothing for other readers.)
_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


def read_csv(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    delimiter = "\t" if src.rel.lower().endswith(".tsv") else ","
    try:
        sha = file_sha256(src.path)
        f = open(src.path, "rb")
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    with f:
        head = f.read(_HEAD_BYTES)
        if not head.strip():
            yield Reject(src.rel, None, "empty_file", f"{len(head)} bytes, no rows", sha)
            return
        try:
            encoding = decode_bytes(head, config.preferred_encodings)[1]
        except DecodeError as exc:
            yield Reject(src.rel, None, exc.reason, exc.detail, sha)
            return
        f.seek(0)
        codec = "utf-8-sig" if encoding == "utf-8" else encoding
        # newline="": the csv module sees the row ends itself, so quoted newlines stay in the field
        text = io.TextIOWrapper(f, encoding=codec, errors="strict", newline="")
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        rows = csv.reader(text, delimiter=delimiter)
        try:
            header = next(rows, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            yield Reject(src.rel, None, "unreadable", f"header row: {_one_line(exc)}", sha)
            return
        if not header or not any(h.strip() for h in header):
            yield Reject(src.rel, None, "empty_file", "no header row", sha)
            return
        header = [h.strip() for h in header]
        wanted = {config.text_field} | ({config.html_field} if config.html_field else set())
        if not wanted & set(header):
            yield Reject(src.rel, None, "missing_text",
                         f"no {config.text_field!r} column (columns: {', '.join(header)})", sha)
            return
        index = -1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:  # bad quoting, a byte the encoding cannot read
                where = f"after row {index}" if index >= 0 else "at the first row"
                reason = "undecodable" if isinstance(exc, UnicodeDecodeError) else "unreadable"
                yield Reject(src.rel, None, reason, f"stopped reading {where}: {_one_line(exc)}", sha)
                return
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line between rows
            index += 1
            if len(row) != len(header):
                yield Reject(src.rel, index, "invalid_csv",
                             f"row {index}: {len(row)} fields, the header has {len(header)}", sha)
                continue
            yield record_document(src, sha, index, dict(zip(header, row)), config, encoding)
        if index < 0:
            yield Reject(src.rel, None, "empty_file", "a header row and no data rows", sha)
