"""WARC and WET files (``.warc``, ``.warc.gz``, ``.warc.wet``, ``.warc.wet.gz``) with warcio.

Records are read one at a time from the (per-record gzip) stream, and at most
``read.max_record_mb`` + 1 byte of a record's content is read (a larger record is ``too_large``,
the rest skipped a block at a time), so memory follows the limit, not the file. In a ``.gz``,
the records' declared lengths count against ``read.max_decompressed_mb`` (checked before a
record is decompressed) and, past 16 MB, ``read.max_decompression_ratio`` against the
compressed bytes consumed: ``decompression_limit``, the records before it kept. warcio reads
the same open file that is hashed (up to the planned size): a rewrite during the run is a
``changed_during_run`` reject after the records. ``record_index`` is the record's ordinal in the file, counting every record
(``warcinfo`` included), so it finds the record again with any WARC tool.

* ``response`` and ``resource`` records whose payload is HTML go through trafilatura
  (``tasks.stages.formats.html``); a ``text/plain`` payload is a text document, as a
  ``conversion`` is; other payloads (PDF, images...) are rejected as ``unsupported_format``.
* ``conversion`` records (WET: the text of a page) are text documents.
* ``warcinfo``, ``request``, ``metadata`` and ``revisit`` records are not documents by nature
  (a crawl's bookkeeping, not a page): neither documents nor rejects, they are yielded as
  ``Skipped`` and counted by ``read_source`` (the report's ``skipped_records``). A file with
  records but no document at all is rejected as ``empty_file``.

Metadata: ``url`` (WARC-Target-URI), ``warc_date``, ``warc_record_id``, ``warc_type``, the
payload's ``content_type``, and for HTML the extractor, title and date.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...config import ReadConfig
from ..limits import CountingReader
from ..read import (DecodeError, SourceFile, _limit_bytes, _mb, _metadata_json, _one_line, decode_bytes,
                        stream_end)
from ...plumbing.records import Document, Reject, Skipped, make_doc_id

from . import _looks_html
from .bounded import open_records, read_upto
from . import html as html_format

SKIPPED_TYPES = frozenset({"warcinfo", "request", "metadata", "revisit"})
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("text/plain",)
_PAYLOAD_TYPES = ("response", "resource")  # a page fetched (response) or stored as it is (resource)
_RATIO_FLOOR = 16 << 20  # as LimitedDecompressor: a small, very repetitive file still reads


def _payload_type(record) -> str:
    """The payload's media type: the HTTP Content-Type of a response, else the record's own."""
    value = None
    if record.http_headers is not None:
        value = record.http_headers.get_header("Content-Type")
    if value is None:
        value = record.rec_headers.get_header("Content-Type")
    return (value or "").split(";", 1)[0].strip().lower()


def _is_html(media_type: str, body: bytes) -> bool:
    if media_type:
        return media_type in _HTML_TYPES
    return _looks_html(body[:8192])


def read_warc(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject | Skipped]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    limit = _limit_bytes(config)
    max_bytes = int(config.max_decompressed_mb * 1_000_000)
    try:
        f, reader, sha = open_records(src)
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    try:
        gzipped = f.read(2) == b"\x1f\x8b"  # by content: a sniffed file may have any name
        f.seek(0)  # before anything is hashed
    except OSError as exc:
        f.close()
        yield Reject(src.rel, None, "unreadable", _one_line(exc), sha)
        return
    compressed = CountingReader(reader)  # type: ignore[arg-type]  # bytes warcio consumed, for the ratio
    expanded = 0  # declared bytes of the records read so far (headers apart): what the gzip expanded to
    index = -1
    n_pages = 0
    with f:
        records = iter(ArchiveIterator(compressed))
        while True:
            try:
                record = next(records)  # warcio skips the rest of the previous record, a block at a time
                index += 1
                if not str(record.format).startswith("warc"):  # warcio also parses ARC, and any text line as ARC
                    raise ValueError(f"record {index} is not a WARC record ({record.format})")
                length = record.rec_headers.get_header("Content-Length")
                if length is None:
                    raise EOFError(f"record {index} is truncated")
                declared = int(length)
                if gzipped:  # checked before warcio decompresses this record
                    if expanded > _RATIO_FLOOR and expanded > config.max_decompression_ratio * max(1, compressed.count):
                        yield Reject(src.rel, None, "decompression_limit",
                                     f"stopped before record {index}: expands more than {config.max_decompression_ratio:g}x "
                                     f"({_mb(expanded)} from {_mb(compressed.count)}; read.max_decompression_ratio)", sha)
                        return
                    if expanded + declared > max_bytes:
                        yield Reject(src.rel, None, "decompression_limit",
                                     f"stopped before record {index}: expands to more than {_mb(max_bytes)} "
                                     "(read.max_decompressed_mb)", sha)
                        return
                expanded += declared
                rec_type = record.rec_type
                meta = body = None
                more = False
                media_type = ""
                if rec_type not in SKIPPED_TYPES:
                    headers = record.rec_headers
                    meta = {
                        "url": headers.get_header("WARC-Target-URI"),
                        "warc_date": headers.get_header("WARC-Date"),
                        "warc_record_id": headers.get_header("WARC-Record-ID"),
                        "warc_type": rec_type,
                    }
                    media_type = _payload_type(record)
                    if media_type:
                        meta["content_type"] = media_type
                    # at most limit + 1 bytes of the content (decompressed/de-chunked); warcio skips the rest
                    body, more = read_upto(record.content_stream(), limit)
                    # fewer bytes than Content-Length: the file ends mid-record
                    if not more and getattr(record.raw_stream, "limit", 0) > 0:
                        raise EOFError(f"record {index} is truncated")
            except StopIteration:
                break
            except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:  # not WARC, truncated, corrupt gzip
                where = f"after record {index - 1}" if index > 0 else "at the start"  # records before it are kept
                yield Reject(src.rel, None, "unreadable", f"not a readable WARC file ({where}): {_one_line(exc)}", sha)
                return
            if meta is None:  # a crawl's bookkeeping (request, metadata, warcinfo, revisit): counted, not a reject
                yield Skipped(src.rel, index, rec_type)
                continue
            meta = {k: v for k, v in meta.items() if v is not None}
            n_pages += 1
            payload = rec_type in _PAYLOAD_TYPES
            html = payload and _is_html(media_type, body)
            text = rec_type == "conversion" or (payload and not html and media_type in _TEXT_TYPES)
            if (html or text) and more:
                del body
                yield Reject(src.rel, index, "too_large",
                             f"record {index}: {rec_type} record of more than {_mb(limit)}, above read.max_record_mb", sha)
            elif text:
                yield _text_document(src, sha, index, body, meta, config, _charset(record))
            elif html:
                yield _html_document(src, sha, index, body, meta, record, config)
            else:
                shown = media_type or "no content type"
                yield Reject(src.rel, index, "unsupported_format", f"record {index}: {rec_type} record of {shown}, not HTML or text", sha)
        if not (yield from stream_end(src, sha, reader, f"record {index}")):
            return
    if index < 0:
        yield Reject(src.rel, None, "empty_file", "no WARC records", sha)
    elif n_pages == 0:
        yield Reject(src.rel, None, "empty_file", f"{index + 1} WARC records, none with a document (an HTML or text response, resource or conversion)", sha)


def _charset(record) -> str | None:
    """The charset its Content-Type declares for a record's payload (the HTTP header's, else the record's)."""
    for headers in (record.http_headers, record.rec_headers):
        value = headers.get_header("Content-Type") if headers is not None else None
        if value:
            for param in value.split(";")[1:]:
                name, _, charset = param.partition("=")
                if name.strip().lower() == "charset" and charset.strip(' "\''):
                    return charset.strip(' "\'')
            return None
    return None


def _text_document(src: SourceFile, sha: str, index: int, body: bytes, meta: dict, config: ReadConfig,
                   charset: str | None = None) -> Document | Reject:
    if not body.strip():
        return Reject(src.rel, index, "empty_text", f"record {index}: no text", sha)
    preferred = (charset, *config.preferred_encodings) if charset else config.preferred_encodings
    try:
        text, encoding = decode_bytes(body, preferred)  # WET text is UTF-8; checked, not assumed
    except DecodeError as exc:
        return Reject(src.rel, index, exc.reason, f"record {index}: {exc.detail}", sha)
    if not text.strip():
        return Reject(src.rel, index, "empty_text", f"record {index}: whitespace only", sha)
    return Document(make_doc_id(src.rel, sha, index), src.rel, sha, index, text, encoding, _metadata_json(meta))


def _html_document(src: SourceFile, sha: str, index: int, body: bytes, meta: dict, record, config: ReadConfig) -> Document | Reject:
    if not body.strip():
        return Reject(src.rel, index, "empty_text", f"record {index}: empty HTML", sha)
    http_type = record.http_headers.get_header("Content-Type") if record.http_headers is not None else None
    try:
        html, encoding = html_format.decode_html(body, config, http_type)
    except DecodeError as exc:
        return Reject(src.rel, index, exc.reason, f"record {index}: {exc.detail}", sha)
    try:
        return html_format.html_document(src, sha, index, html, encoding, config, meta, meta.get("url"))
    except html_format.ExtractorMissing:
        return html_format.missing_extra_reject(src, sha, index)
