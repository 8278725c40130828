"""WARC and WET files (``.warc``, ``.warc.gz``, ``.warc.wet``, ``.warc.wet.gz``) with warcio.

Records are read one at a time from the (per-record gzip) stream, so memory follows the largest
record, not the file. ``record_index`` is the record's ordinal in the file, counting every record
(``warcinfo`` included), so it finds the record again with any WARC tool.

* ``response`` (and ``resource``) records whose payload is HTML go through trafilatura
  (``tasks.formats.html``); other payloads (PDF, images...) are rejected as ``unsupported_format``.
* ``conversion`` records (WET: the text of a page) are text documents.
* ``warcinfo``, ``request``, ``metadata`` and ``revisit`` records carry no page of their own:
  skipped (a file with records but no page at all is rejected as ``empty_file``).

Metadata: ``url`` (WARC-Target-URI), ``warc_date``, ``warc_record_id``, ``warc_type``, the
payload's ``content_type``, and for HTML the extractor, title and date.
"""

from __future__ import annotations

from collections.abc import Iterator

from tasks.config import ReadConfig
from tasks.read import DecodeError, SourceFile, _metadata_json, _one_line, decode_bytes, file_sha256
from tasks.records import Document, Reject, make_doc_id

from tasks.formats import _looks_html
from tasks.formats import html as html_format

SKIPPED_TYPES = frozenset({"warcinfo", "request", "metadata", "revisit"})
_HTML_TYPES = ("text/html", "application/xhtml+xml")


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


def read_warc(src: SourceFile, config: ReadConfig) -> Iterator[Document | Reject]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    try:
        sha = file_sha256(src.path)
        f = open(src.path, "rb")
    except OSError as exc:
        yield Reject(src.rel, None, "unreadable", _one_line(exc))
        return
    index = -1
    n_pages = 0
    with f:
        records = iter(ArchiveIterator(f))
        while True:
            try:
                record = next(records)
                index += 1
                if not str(record.format).startswith("warc"):  # warcio also parses ARC, and any text line as ARC
                    raise ValueError(f"record {index} is not a WARC record ({record.format})")
                rec_type = record.rec_type
                if rec_type in SKIPPED_TYPES:
                    continue
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
                body = record.content_stream().read()  # one record in memory, decompressed/de-chunked
                # fewer bytes than Content-Length, or headers cut before it: the file ends mid-record
                if record.rec_headers.get_header("Content-Length") is None or getattr(record.raw_stream, "limit", 0) > 0:
                    raise EOFError(f"record {index} is truncated")
            except StopIteration:
                break
            except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:  # not WARC, truncated, corrupt gzip
                where = f"after record {index - 1}" if index > 0 else "at the start"  # records before it are kept
                yield Reject(src.rel, None, "unreadable", f"not a readable WARC file ({where}): {_one_line(exc)}", sha)
                return
            meta = {k: v for k, v in meta.items() if v is not None}
            n_pages += 1
            if rec_type == "conversion":
                yield _text_document(src, sha, index, body, meta, config)
            elif rec_type in ("response", "resource") and _is_html(media_type, body):
                yield _html_document(src, sha, index, body, meta, record, config)
            else:
                shown = media_type or "no content type"
                yield Reject(src.rel, index, "unsupported_format", f"record {index}: {rec_type} record of {shown}, not HTML or text", sha)
    if index < 0:
        yield Reject(src.rel, None, "empty_file", "no WARC records", sha)
    elif n_pages == 0:
        yield Reject(src.rel, None, "empty_file", f"{index + 1} WARC records, none with a page (response or conversion)", sha)


def _text_document(src: SourceFile, sha: str, index: int, body: bytes, meta: dict, config: ReadConfig) -> Document | Reject:
    if not body.strip():
        return Reject(src.rel, index, "empty_text", f"record {index}: no text", sha)
    try:
        text, encoding = decode_bytes(body, config.preferred_encodings)  # WET text is UTF-8; checked, not assumed
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
