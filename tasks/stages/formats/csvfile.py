"""CSV and TSV: a header row, then one record per row; ``read.text_field`` names the text column
(``read.html_field`` a column of HTML). Quoted fields may hold newlines. Streamed row by row,
each row bounded by ``read.max_record_mb`` (``too_large``).

The encoding is decided on the first megabyte (``decode_bytes``); record i is data row i (the
header is not counted). Every other column goes into metadata, as strings.

``.csv.gz``/``.tsv.gz`` (any CSV file that starts with the gzip magic) are decompressed as they
are read, through the decompression limits (``read.max_decompressed_mb``,
``read.max_decompression_ratio``: ``decompression_limit``, the rows before it kept).
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterator

from ...config import ReadConfig
from ..limits import CHUNK, DecompressionLimit
from ..read import DecodeError, SourceFile, _limit_bytes, _mb, _one_line, decode_bytes, stream_end
from ...plumbing.records import Document, Reject

from .bounded import gunzip, open_records
from .html import record_document

_HEAD_BYTES = 1 << 20
# The csv module refuses fields over 128 KiB by default; a web page's text can be longer.
# (The limit is process-wide; raising it changes nothing for other readers.)
_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


class _RowTooLarge(Exception):
    """The row being parsed went past the limit (raised by ``_Lines`` through the csv reader)."""


class _Lines:
    """The lines of a text stream for ``csv.reader``, none longer than the limit and no row (its
    lines together) longer than it either: past it, ``_RowTooLarge`` is raised, and ``skip_row``
    reads the rest of the row through (by the parity of its quotes) without keeping it."""

    def __init__(self, text: io.TextIOBase, limit: int) -> None:
        self._text = text
        self.limit = limit
        self.row_chars = 0  # characters of the row being parsed
        self._quotes = 0  # quote characters in it
        self._ended = True  # the last line read ended with a line break

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self._text.readline(self.limit + 1 - self.row_chars if self.row_chars <= self.limit else 1)
        if not line:
            raise StopIteration
        self.row_chars += len(line)
        self._quotes += line.count('"')
        self._ended = line.endswith(("\n", "\r"))
        if self.row_chars > self.limit:
            raise _RowTooLarge
        return line

    def row_done(self) -> None:
        self.row_chars = 0
        self._quotes = 0

    def skip_row(self) -> int:
        """Read the rest of the row over the limit (its line break ends it outside quotes); its size in characters."""
        while not (self._ended and self._quotes % 2 == 0):
            line = self._text.readline(CHUNK)
            if not line:
                break
            self.row_chars += len(line)
            self._quotes += line.count('"')
            self._ended = line.endswith(("\n", "\r"))
        size = self.row_chars
        self.row_done()
        return size


def _gzip_head(f, n: int) -> bytes:
    """Up to ``n`` decompressed bytes of the gzip file ``f`` (a truncated file: what precedes the cut)."""
    unzipped = gzip.GzipFile(fileobj=f, mode="rb")
    parts: list[bytes] = []
    size = 0
    try:
        while size < n:
            block = unzipped.read1(min(CHUNK, n - size))
            if not block:
                break
            parts.append(block)
            size += len(block)
    except EOFError:  # cut short: the rows before the cut are read, and the cut rejected, by the main pass
        if not parts:
            raise
    return b"".join(parts)


def read_csv(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    """Rows streamed; a row (its fields together, in characters) above ``read.max_record_mb`` is
    rejected ``too_large`` and read through without being held. The open file is hashed as it is
    read, up to the planned size (a rewrite during the run: ``changed_during_run`` after the records)."""
    delimiter = "\t" if src.rel.lower().endswith((".tsv", ".tsv.gz")) else ","
    limit = _limit_bytes(config)
    try:
        f, reader, sha = open_records(src)
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    with f:
        gz = False
        try:
            gz = f.read(2) == b"\x1f\x8b"  # by content, as the WARC reader: .csv.gz, or a gzip'd .csv
            f.seek(0)
            if gz:  # the first MB once decompressed (bounded: never more is decompressed here)
                head = _gzip_head(f, _HEAD_BYTES)
            else:
                head = f.read(min(_HEAD_BYTES, src.size) if src.sha256 else _HEAD_BYTES)  # to decide the encoding
            f.seek(0)
        except (OSError, EOFError, zlib.error) as exc:
            yield Reject(src.rel, None, "unreadable", ("not a readable gzip file: " if gz else "") + _one_line(exc), sha)
            return
        if not head.strip():
            yield Reject(src.rel, None, "empty_file", f"{len(head)} bytes, no rows", sha)
            return
        try:
            encoding = decode_bytes(head, config.preferred_encodings)[1]
        except DecodeError as exc:
            yield Reject(src.rel, None, exc.reason, exc.detail, sha)
            return
        del head
        codec = "utf-8-sig" if encoding == "utf-8" else encoding
        # newline="": the csv module sees the row ends itself, so quoted newlines stay in the field
        stream = gunzip(io.BufferedReader(reader), config) if gz else reader  # type: ignore[arg-type]
        text = io.TextIOWrapper(io.BufferedReader(stream), encoding=codec, errors="strict", newline="")  # type: ignore[arg-type]
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        lines = _Lines(text, limit)
        rows = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(rows, None)
        except _RowTooLarge:
            yield Reject(src.rel, None, "too_large", f"a header row of more than {_mb(limit)}, above read.max_record_mb", sha)
            return
        except DecompressionLimit as exc:
            yield Reject(src.rel, None, "decompression_limit", f"header row: {exc}", sha)
            return
        except (csv.Error, UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
            yield Reject(src.rel, None, "unreadable", f"header row: {_one_line(exc)}", sha)
            return
        lines.row_done()
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
            except _RowTooLarge:
                try:
                    size = lines.skip_row()
                except DecompressionLimit as exc:
                    yield Reject(src.rel, None, "decompression_limit", f"stopped reading after row {index}: {exc}", sha)
                    return
                except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
                    yield Reject(src.rel, None, "unreadable", f"stopped reading after row {index}: {_one_line(exc)}", sha)
                    return
                index += 1
                yield Reject(src.rel, index, "too_large",
                             f"row {index}: {_mb(size)} (characters), above read.max_record_mb ({_mb(limit)})", sha)
                continue
            except DecompressionLimit as exc:
                yield Reject(src.rel, None, "decompression_limit", f"stopped reading after row {index}: {exc}", sha)
                return
            except (csv.Error, UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:  # bad quoting, a byte
                # the encoding cannot read, a truncated or corrupt gzip
                where = f"after row {index}" if index >= 0 else "at the first row"
                reason = "undecodable" if isinstance(exc, UnicodeDecodeError) else "unreadable"
                yield Reject(src.rel, None, reason, f"stopped reading {where}: {_one_line(exc)}", sha)
                return
            lines.row_done()
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line between rows
            index += 1
            if len(row) != len(header):
                yield Reject(src.rel, index, "invalid_csv",
                             f"row {index}: {len(row)} fields, the header has {len(header)}", sha)
                continue
            yield record_document(src, sha, index, dict(zip(header, row)), config, encoding)
            del row
        if not (yield from stream_end(src, sha, reader, f"row {index}")):
            return
    if index < 0:
        yield Reject(src.rel, None, "empty_file", "a header row and no data rows", sha)
