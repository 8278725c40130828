"""HTML: main-content extraction with trafilatura (the optional ``html`` extra).

A page becomes one Document whose text is trafilatura's plain-text output: one line per
heading, paragraph, list item (``- item``) or table row, with tables laid out as lines by
``body_text`` (layout cells' blocks, data tables' cells) and the page's title first when
trafilatura left the headline out (``with_title_line``). That text is the document's
``source_text``: paragraph offsets and ``explain`` refer to it, not to the HTML. The page's
URL, title and date (when found), and ``extractor`` ("trafilatura X.Y.Z"), go into metadata.

Used for ``.html``/``.htm`` files (and their ``.gz``), WARC ``response`` records
(``tasks.stages.formats.warc``) and records of JSON lines/Parquet/CSV with HTML in
``read.html_field``.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from functools import lru_cache
from typing import Any

from ...config import ReadConfig
from ..read import DecodeError, SourceFile, _metadata_json, _one_line, codec_name, decode_bytes
from ...plumbing.records import Document, Reject, make_doc_id

EXTRA_HINT = "pip install 'corpusclean[html]'"

# Browsers read these labels as windows-1252 (WHATWG Encoding), and so do pages declaring them.
_WHATWG_CP1252 = {"latin_1", "iso8859_1", "ascii", "us_ascii", "cp1252"}
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", re.I)


class ExtractorMissing(RuntimeError):
    """trafilatura is not installed."""


@lru_cache(maxsize=1)
def extractor_name() -> str:
    """``trafilatura X.Y.Z``: stored with every document extracted from HTML."""
    try:
        from importlib.metadata import version

        return f"trafilatura {version('trafilatura')}"
    except Exception:
        raise ExtractorMissing(f"reading HTML needs trafilatura: {EXTRA_HINT}") from None


def _codec(label: str) -> str | None:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    name = codec_name(name)
    return "cp1252" if name.replace("-", "_") in _WHATWG_CP1252 else name


def decode_html(data: bytes, config: ReadConfig, http_content_type: str | None = None) -> tuple[str, str]:
    """HTML bytes to text: byte-order mark, then the HTTP charset, then ``<meta charset>``, then
    the detection of plain text (``decode_bytes``). Raises ``DecodeError``."""
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode_bytes(data, config.preferred_encodings)
    declared: list[str] = []
    if http_content_type:
        m = _HTTP_CHARSET.search(http_content_type)
        if m:
            declared.append(m.group(1))
    m = _META_CHARSET.search(data[:8192])
    if m:
        declared.append(m.group(1).decode("ascii"))
    for label in declared:
        codec = _codec(label)
        if codec is None or codec.startswith(("utf-16", "utf-32")):  # a meta tag read as ASCII cannot be UTF-16
            continue
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue  # a wrong declaration is common: fall through to detection
    return decode_bytes(data, config.preferred_encodings)


_FAVOR = {"balanced": {}, "precision": {"favor_precision": True}, "recall": {"favor_recall": True}}
# Date found from the page's markup only: htmldate's extensive search (scanning the text for
# dates) costs more than the extraction itself.
_DATE_PARAMS = {"extensive_search": False, "original_date": True}


def extract(html: str, config: ReadConfig, url: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """(text, metadata) of a page's main content, or None when trafilatura finds none.

    Raises ``ExtractorMissing`` without trafilatura; other exceptions are the page's fault.
    """
    name = extractor_name()
    import trafilatura

    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=config.html_comments,
        include_tables=True,
        date_extraction_params=_DATE_PARAMS,
        **_FAVOR[config.html_favor],
    )
    if doc is None or not (doc.text or "").strip():
        return None
    text = body_text(doc.body) if doc.body is not None and next(doc.body.iter("cell"), None) is not None else doc.text
    if config.html_comments and doc.comments:  # as trafilatura.extract joins them
        text = f"{text}\n{doc.comments}"
    if config.html_title:
        text = with_title_line(text, getattr(doc, "title", None))
    text = unicodedata.normalize("NFC", text)
    meta: dict[str, Any] = {"extractor": name}
    for key in ("url", "title", "date"):
        value = getattr(doc, key, None)
        if value:
            meta[key] = value
    if url and "url" not in meta:
        meta["url"] = url
    return text, meta


# A table cell holding any of these is a layout cell: its blocks are lines of their own.
_BLOCKS = frozenset(("p", "lb", "list", "item", "head", "quote", "table", "code"))
# What trafilatura writes for a table's header separator or an empty row ("|---|---|", "|  |  |").
_BARE_ROW = re.compile(r"^[\s|]*(?:-{3}\|[\s|]*)*$")


_SENTENCE_WORDS = 10  # a text run of this many words: the cell holds prose, not only short items


def _layout_cell(cell) -> bool:
    """A cell holding blocks (paragraphs, line breaks, lists...) and prose: a piece of page layout
    whose blocks are lines. A cell of short items only (a menu, a column of links) stays one line."""
    return any(e.tag in _BLOCKS for e in cell.iterdescendants()) and any(
        len(run.split()) >= _SENTENCE_WORDS for run in cell.itertext()
    )


def body_text(body) -> str:
    """trafilatura's plain text of an extracted body, with tables as lines:

    - a **layout cell** (one holding paragraphs, line breaks, lists, headings or tables, and some
      prose: old pages lay out the whole article in table cells) keeps its blocks as lines, instead
      of being flattened into one row line; a cell of short items only (a menu) is one line (in a
      row beside a layout cell: its own line);
    - the cells of a **data table with header cells** (``<th>``) are a line each (as a heading or
      list item is), instead of ``| a | b |`` rows, whose one-word cells no reader line matches;
    - other tables stay one line per row (``| a | b |``); the header separator (``|---|``) and
      empty rows are dropped.
    """
    from copy import deepcopy

    from trafilatura.xml import xmltotxt

    body = deepcopy(body)
    lines_of, flat = [], []
    for table in body.iter("table"):
        cells = list(table.iter("cell"))
        data = any(cell.get("role") == "head" for cell in cells)
        lines_of.extend(cell for cell in cells if data or _layout_cell(cell))
    marked = set(lines_of)
    for cell in lines_of:  # the other cells of a layout row: one line each (a menu beside the article)
        row = cell.getparent()
        if row is not None and row.tag == "row":
            flat.extend(c for c in row if c.tag == "cell" and c not in marked)
    for cell in flat:
        if cell in marked:
            continue
        marked.add(cell)
        text = " ".join(" ".join(cell.itertext()).split())
        for child in list(cell):
            cell.remove(child)
        cell.text = text
    for cell in marked:
        cell.tag = "p"  # trafilatura's paragraph: its own line, its inner blocks too
        cell.attrib.pop("role", None)
    text = xmltotxt(body, False)
    return "\n".join(line.rstrip() for line in text.splitlines() if "|" not in line or not _BARE_ROW.match(line))


def with_title_line(text: str, title: str | None) -> str:
    """The page's title (trafilatura's: the headline, else ``<title>``) as the first line when no
    line of the extracted text is that title: trafilatura leaves out a headline outside the
    article's container, and a page's headline is part of its content."""
    title = " ".join((title or "").split())
    if not title or any(" ".join(line.split()) == title for line in text.splitlines()):
        return text
    return f"{title}\n{text}"


def html_document(
    src: SourceFile, sha: str, index: int, html: str, encoding: str, config: ReadConfig,
    fields: dict[str, Any] | None = None, url: str | None = None,
) -> Document | Reject:
    """One Document from a page's HTML (``fields``: the record's other fields, kept in metadata)."""
    try:
        found = extract(html, config, url)
    except ExtractorMissing:
        raise
    except Exception as exc:  # lxml or trafilatura choking on one page: that page is rejected
        return Reject(src.rel, index, "no_content", f"record {index}: HTML extraction failed: {_one_line(exc)}", sha)
    if found is None:
        return Reject(src.rel, index, "no_content", f"record {index}: trafilatura found no main content in the HTML", sha)
    text, meta = found
    merged = dict(fields or {})
    merged["extractor"] = meta.pop("extractor")
    for key, value in meta.items():
        merged.setdefault(key, value)  # a record's own url/title/date win over the page's
    try:
        metadata = _metadata_json(merged)
    except (ValueError, TypeError, RecursionError) as exc:
        return Reject(src.rel, index, "invalid_json", f"record {index}: fields not serialisable: {_one_line(exc)}", sha)
    return Document(make_doc_id(src.rel, sha, index), src.rel, sha, index, text, encoding, metadata,
                    extractor=merged["extractor"])


def missing_extra_reject(src: SourceFile, sha: str | None, index: int | None = None) -> Reject:
    return Reject(src.rel, index, "missing_extra", f"reading HTML needs trafilatura: {EXTRA_HINT}", sha)


def read_html_file(src: SourceFile, config: ReadConfig):
    """One ``.html``/``.htm`` page (``.gz`` too, through the decompression limits: ``decompression_limit``):
    read whole up to ``read.max_record_mb``; a larger page is rejected ``too_large`` (never held whole)."""
    from .bounded import read_whole

    got = read_whole(src, config, gz=None, what="HTML", why="a page is parsed whole")
    if isinstance(got, Reject):
        yield got
        return
    raw, sha = got
    if not raw.strip():
        yield Reject(src.rel, None, "empty_file", f"{len(raw)} bytes, no HTML", sha)
        return
    try:
        html, encoding = decode_html(raw, config)
    except DecodeError as exc:
        yield Reject(src.rel, None, exc.reason, exc.detail, sha)
        return
    try:
        item = html_document(src, sha, 0, html, encoding, config)
    except ExtractorMissing:
        yield missing_extra_reject(src, sha)
        return
    if isinstance(item, Reject):
        item.record_index = None  # the whole file: one page
        item.detail = item.detail.removeprefix("record 0: ")
    yield item


def record_document(src: SourceFile, sha: str, index: int, record: dict[str, Any], config: ReadConfig,
                    encoding: str) -> Document | Reject:
    """A record of JSON lines, JSON, Parquet or CSV: from its HTML when ``read.html_field`` holds some
    (its text field is then dropped), else from its text field as usual."""
    from ..read import _record

    html = record.get(config.html_field) if config.html_field is not None else None
    if not isinstance(html, str) or not html.strip():
        return _record(src, sha, index, record, config.text_field, encoding)
    others = {k: v for k, v in record.items() if k not in (config.html_field, config.text_field)}
    url = others.get("url")
    try:
        return html_document(src, sha, index, html, encoding, config, others, url if isinstance(url, str) else None)
    except ExtractorMissing:
        return missing_extra_reject(src, sha, index)
