"""The formats of tasks/stages/formats: real small files of each (WARC written with warcio's own writer)."""

from __future__ import annotations

import gzip
import json
from io import BytesIO
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusclean.tasks.config import BoilerplateConfig, ReadConfig, load_config
from corpusclean.tasks.stages.formats import sniff
from corpusclean.tasks.stages.read import SUPPORTED, SourceFile, _suffix, file_sha256
from corpusclean.tasks.plumbing.records import Batch, Document, Reject
from corpusclean.tasks.stages.read import read_source
from tests.tasks.stages.test_read import read as read_checked, write

pytest.importorskip("trafilatura")

CONFIG = ReadConfig()

PAGE = """<!DOCTYPE html>
<html><head><meta charset="{charset}"><title>Keeping bees on an office roof</title>
<link rel="canonical" href="https://bees.example.org/roof">
<meta property="article:published_time" content="2026-05-02"></head>
<body><nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop</a></li></ul></nav>
<article><h1>Keeping bees on an office roof</h1>
<p>Our small office keeps two hives on the roof, and the bees have become an unexpected part of the
working week. Every Friday somebody climbs the ladder with a smoker and checks the frames.</p>
<h2>What we learned in the first year</h2>
<ul><li>Bees dislike strong perfume and loud radios.</li>
<li>A calm and slow approach keeps everyone from getting stung.</li></ul>
<p>By the end of the first summer the colony had filled eleven frames with honey, which we shared
with the cleaners of the building and the bakery downstairs. {extra}</p>
</article><footer>Copyright 2026 Example Office. All rights reserved.</footer></body></html>
"""


def page(charset: str = "utf-8", extra: str = "") -> str:
    return PAGE.format(charset=charset, extra=extra)


def read(src: SourceFile, config: ReadConfig = CONFIG) -> list[Document | Reject]:
    """``test_read.read`` (every item a document or a reject with a known reason and a one-line
    detail), and every document carries the file's hash and JSON metadata."""
    out = read_checked(src, config)
    for item in out:
        if isinstance(item, Document):
            assert item.source_sha256 == file_sha256(src.path)
            json.loads(item.metadata)
    return out


def only(items):
    assert len(items) == 1, items
    return items[0]


# --------------------------------------------------------------------------- suffixes and sniffing


@pytest.mark.parametrize(("name", "suffix"), [
    ("a.warc.wet.gz", ".warc.wet.gz"), ("CC.WARC.GZ", ".warc.gz"), ("x.html.gz", ".html.gz"), ("n.txt.gz", ".txt.gz"),
    ("d.jsonl.zst", ".jsonl.zst"), ("t.tsv", ".tsv"), ("p.htm", ".htm"), ("j.json", ".json"), ("old.gz", ".gz"),
])
def test_suffix(name: str, suffix: str) -> None:
    assert _suffix(name) == suffix


def test_every_issue_format_is_supported() -> None:
    for suffix in (".html", ".htm", ".html.gz", ".warc", ".warc.gz", ".warc.wet", ".warc.wet.gz", ".txt.gz",
                   ".md.gz", ".json", ".jsonl.zst", ".csv", ".tsv"):
        assert suffix in SUPPORTED


@pytest.mark.parametrize(("data", "kind"), [
    (page().encode(), ".html"),
    (b'{"text": "a"}\n{"text": "b"}\n', ".jsonl"),
    (b'[{"text": "a"}]', ".json"),
    ('{"text": "a"}\n{"text": "b"}\n'.encode("utf-16"), ".jsonl"),
    ('{"text": "a"}\n{"text": "b"}\n'.encode("utf-16-le"), ".jsonl"),
    ('[{"text": "a"}]'.encode("utf-32-be"), ".json"),
    ("Quelques mots en UTF-16.\n".encode("utf-16"), ".txt"),
    (('{"text": "a", "id": %s}\n' % ("9" * 5000)).encode(), ".jsonl"),  # an int over Python's digit limit
    (b"Just a few words of plain text.\n", ".txt"),
    (gzip.compress(b"Plain words, gzipped.\n", mtime=0), ".txt.gz"),
    (gzip.compress(page().encode(), mtime=0), ".html.gz"),
    (b"%PDF-1.4 plain-looking start", None),
    (bytes(range(256)) * 8, None),
])
def test_sniff(tmp_path: Path, data: bytes, kind: str | None) -> None:
    assert sniff(write(tmp_path, "blob.bin", data).path) == kind


def test_unknown_extension_is_read_by_content(tmp_path: Path) -> None:
    doc = only(read(write(tmp_path, "page.aspx", page())))
    assert isinstance(doc, Document) and doc.extractor and "eleven frames" in doc.text
    docs = read(write(tmp_path, "dump.data", '{"text": "first"}\n{"text": "second"}\n'))
    assert [d.text for d in docs] == ["first", "second"]


# --------------------------------------------------------------------------- HTML


def test_html_page_main_content_as_lines(tmp_path: Path) -> None:
    doc = only(read(write(tmp_path, "site/roof.html", page())))
    assert isinstance(doc, Document) and doc.record_index == 0
    lines = doc.text.splitlines()
    # headings, paragraphs and list items each a line; the menu and the footer are gone
    assert "What we learned in the first year" in lines
    assert "- Bees dislike strong perfume and loud radios." in lines
    assert any(line.startswith("Our small office keeps two hives") for line in lines)
    assert "Shop" not in doc.text and "All rights reserved" not in doc.text
    meta = json.loads(doc.metadata)
    assert meta["extractor"].startswith("trafilatura ") and doc.extractor == meta["extractor"]
    assert meta["title"] == "Keeping bees on an office roof"
    assert meta["url"] == "https://bees.example.org/roof"
    assert meta["date"] == "2026-05-02"
    assert doc.source_encoding == "utf-8"


def test_html_meta_charset_and_gzip(tmp_path: Path) -> None:
    data = page("windows-1252", "Café crème à volonté.").encode("cp1252")
    doc = only(read(write(tmp_path, "legacy.htm.gz", gzip.compress(data))))
    assert isinstance(doc, Document) and doc.source_encoding == "cp1252"
    assert "Café crème à volonté." in doc.text
    # iso-8859-1 is read as windows-1252, as browsers do
    doc = only(read(write(tmp_path, "latin.html", page("iso-8859-1", "Prix : 5 €.").encode("cp1252"))))
    assert doc.source_encoding == "cp1252" and "5 €" in doc.text


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty_file"),
    (b"<html><body><script>var x = 1;</script></body></html>", "no_content"),
    (b"\x1f\x8b\x08\x00broken", "unreadable"),
])
def test_html_rejects(tmp_path: Path, data: bytes, reason: str) -> None:
    reject = only(read(write(tmp_path, "bad.html", data)))
    assert isinstance(reject, Reject) and reject.reason == reason and reject.record_index is None


def test_html_field_of_json_lines_and_parquet(tmp_path: Path) -> None:
    config = ReadConfig(html_field="html")
    lines = [
        {"html": page(), "text": "ignored when there is HTML", "url": "https://record.example/1", "lang_hint": "en"},
        {"text": "A record without HTML stays a text record."},
        {"html": "<html><body></body></html>"},
    ]
    items = read(write(tmp_path, "pages.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n"), config)
    first, second, third = items
    assert isinstance(first, Document) and "eleven frames" in first.text and first.extractor
    meta = json.loads(first.metadata)
    assert meta["url"] == "https://record.example/1"  # the record's own URL wins over the page's
    assert meta["lang_hint"] == "en" and "text" not in meta and "html" not in meta
    assert isinstance(second, Document) and second.extractor is None and second.text.startswith("A record")
    assert isinstance(third, Reject) and third.reason == "no_content" and third.record_index == 2
    # without html_field the same file is read as text records: the first has its text
    assert isinstance(read(write(tmp_path, "p2.jsonl", json.dumps(lines[0]) + "\n"))[0], Document)

    table = pa.table({"html": [page()], "id": [7]})
    path = tmp_path / "pages.parquet"
    pq.write_table(table, path)
    doc = only(read(SourceFile(path, "pages.parquet", path.stat().st_size), config))
    assert isinstance(doc, Document) and "eleven frames" in doc.text and json.loads(doc.metadata)["id"] == 7


# --------------------------------------------------------------------------- WARC / WET


def write_warc(path: Path, records: list[tuple], gzipped: bool = True) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=gzipped)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "corpusclean tests"}))
        for kind, uri, body, content_type in records:
            if kind in ("response", "request"):
                http = StatusAndHeaders("200 OK" if kind == "response" else "GET / HTTP/1.1",
                                        [("Content-Type", content_type)], protocol="HTTP/1.1",
                                        is_http_request=kind == "request")
                record = writer.create_warc_record(uri, kind, payload=BytesIO(body), http_headers=http)
            else:
                record = writer.create_warc_record(uri, kind, payload=BytesIO(body), warc_content_type=content_type)
            writer.write_record(record)


@pytest.mark.parametrize("gzipped", [True, False])
def test_warc_responses(tmp_path: Path, gzipped: bool) -> None:
    name = "crawl.warc.gz" if gzipped else "crawl.warc"
    write_warc(tmp_path / name, [
        ("request", "https://bees.example.org/roof", b"", "text/plain"),
        ("response", "https://bees.example.org/roof", page().encode(), "text/html; charset=utf-8"),
        ("response", "https://bees.example.org/hive.pdf", b"%PDF-1.4 ...", "application/pdf"),
        ("response", "https://bees.example.org/legacy", page("x", "Crème brûlée.").encode("cp1252"),
         "text/html; charset=windows-1252"),
    ], gzipped)
    src = SourceFile(tmp_path / name, name, (tmp_path / name).stat().st_size)
    doc, pdf, legacy = read(src)
    # record_index: the ordinal in the file, warcinfo (0) and request (1) included
    assert isinstance(doc, Document) and doc.record_index == 2
    meta = json.loads(doc.metadata)
    assert meta["url"] == "https://bees.example.org/roof" and meta["warc_type"] == "response"
    assert meta["warc_record_id"].startswith("<urn:uuid:") and meta["warc_date"]
    assert meta["extractor"].startswith("trafilatura") and meta["title"] == "Keeping bees on an office roof"
    assert "eleven frames" in doc.text
    assert isinstance(pdf, Reject) and pdf.reason == "unsupported_format" and pdf.record_index == 3
    assert isinstance(legacy, Document) and legacy.source_encoding == "cp1252" and "Crème brûlée." in legacy.text


def test_wet_conversion_records(tmp_path: Path) -> None:
    texts = ["Converted text of a page.\nIts second line, with an accent: é.", "Another page.", ""]
    write_warc(tmp_path / "c.warc.wet.gz", [
        ("conversion", f"https://site.example/{i}", t.encode(), "text/plain") for i, t in enumerate(texts)
    ])
    src = SourceFile(tmp_path / "c.warc.wet.gz", "c.warc.wet.gz", 1)
    a, b, empty = read(src)
    assert (a.text, a.record_index, b.record_index) == (texts[0], 1, 2)
    assert a.extractor is None and json.loads(a.metadata)["url"] == "https://site.example/0"
    assert isinstance(empty, Reject) and empty.reason == "empty_text" and empty.record_index == 3


def test_warc_resource_records_and_non_document_records(tmp_path: Path) -> None:
    """``resource`` records are pages stored as they are: HTML through trafilatura, text/plain as text (as a
    WET conversion); request, metadata, warcinfo and revisit records are not documents: counted, not rejected."""
    from collections import Counter

    notes = "Hive notes for May: the second colony swarmed on Tuesday and settled in the lime tree.\nCaught it at dusk."
    write_warc(tmp_path / "r.warc.gz", [
        ("request", "https://bees.example.org/roof", b"", "text/plain"),
        ("resource", "https://bees.example.org/roof", page().encode(), "text/html"),
        ("resource", "https://bees.example.org/notes.txt", notes.encode("cp1252"), "text/plain; charset=windows-1252"),
        ("metadata", "https://bees.example.org/roof", b"via: https://bees.example.org/\n", "application/warc-fields"),
        ("resource", "https://bees.example.org/logo.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        ("revisit", "https://bees.example.org/roof", b"", "application/http; msgtype=response"),
    ])
    src = SourceFile(tmp_path / "r.warc.gz", "r.warc.gz", (tmp_path / "r.warc.gz").stat().st_size)
    html, text, png = read(src)
    assert isinstance(html, Document) and html.record_index == 2 and "eleven frames" in html.text
    assert json.loads(html.metadata)["warc_type"] == "resource" and html.extractor.startswith("trafilatura")
    assert isinstance(text, Document) and text.record_index == 3 and text.text == notes and text.extractor is None
    meta = json.loads(text.metadata)
    assert meta["warc_type"] == "resource" and meta["content_type"] == "text/plain"
    assert meta["url"] == "https://bees.example.org/notes.txt"
    assert isinstance(png, Reject) and png.reason == "unsupported_format" and png.record_index == 5
    skipped: Counter = Counter()
    assert len(list(read_source(src, CONFIG, skipped))) == 3
    assert skipped == {"warcinfo": 1, "request": 1, "metadata": 1, "revisit": 1}
    # a text/plain response (a .txt fetched over HTTP) is a text document too
    write_warc(tmp_path / "t.warc", [("response", "https://s.example/a.txt", notes.encode(), "text/plain")], False)
    doc = only(read(SourceFile(tmp_path / "t.warc", "t.warc", (tmp_path / "t.warc").stat().st_size)))
    assert isinstance(doc, Document) and doc.text == notes
    # records, none of them a document: the file says so (one reject), its records are still counted
    write_warc(tmp_path / "m.warc", [("metadata", "https://s.example/", b"a: b\n", "application/warc-fields")], False)
    src = SourceFile(tmp_path / "m.warc", "m.warc", (tmp_path / "m.warc").stat().st_size)
    skipped = Counter()
    reject = only(list(read_source(src, CONFIG, skipped)))
    assert reject.reason == "empty_file" and "none with a document" in reject.detail
    assert skipped == {"warcinfo": 1, "metadata": 1}


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty_file"),
    (b"this is not a WARC file at all\n", "unreadable"),
])
def test_warc_rejects(tmp_path: Path, data: bytes, reason: str) -> None:
    reject = read(write(tmp_path, "x.warc", data))[-1]
    assert isinstance(reject, Reject) and reject.reason == reason and reject.record_index is None


def test_warc_truncated_keeps_what_was_read(tmp_path: Path) -> None:
    write_warc(tmp_path / "full.warc.gz", [("conversion", f"https://s.example/{i}", b"Some text." * 50, "text/plain")
                                           for i in range(5)])
    data = (tmp_path / "full.warc.gz").read_bytes()
    items = read(write(tmp_path, "cut.warc.gz", data[: len(data) - 40]))
    assert all(isinstance(i, Document) for i in items[:-1]) and len(items) >= 2
    assert isinstance(items[-1], Reject) and items[-1].reason == "unreadable"


# --------------------------------------------------------------------------- plain containers


def test_gzipped_text_and_markdown(tmp_path: Path) -> None:
    doc = only(read(write(tmp_path, "notes.txt.gz", gzip.compress("Ça coûte 5 €.".encode("cp1252")))))
    assert isinstance(doc, Document) and doc.text == "Ça coûte 5 €." and doc.source_encoding == "cp1252"
    assert only(read(write(tmp_path, "r.md.gz", gzip.compress(b"# Title\n\nBody.")))).text == "# Title\n\nBody."
    reject = only(read(write(tmp_path, "bad.txt.gz", b"\x1f\x8b\x08\x00\x00")))
    assert isinstance(reject, Reject) and reject.reason == "unreadable"


def test_json_array_and_object(tmp_path: Path) -> None:
    items = read(write(tmp_path, "a.json", json.dumps([{"text": "One.", "id": 1}, 5, {"body": "x"}, {"text": "Two."}])))
    assert [type(i).__name__ for i in items] == ["Document", "Reject", "Reject", "Document"]
    assert [i.record_index for i in items] == [0, 1, 2, 3]
    assert items[1].reason == "invalid_json" and items[2].reason == "missing_text"
    assert json.loads(items[0].metadata) == {"id": 1}
    doc = only(read(write(tmp_path, "o.json", '{"text": "Single object.", "n": 2}')))
    assert doc.text == "Single object." and doc.record_index == 0
    for data, reason in (("[", "invalid_json"), ('"str"', "invalid_json"), ("[]", "empty_file"), ("", "empty_file")):
        reject = only(read(write(tmp_path, "bad.json", data)))
        assert isinstance(reject, Reject) and reject.reason == reason and reject.record_index is None


def test_jsonl_zst(tmp_path: Path) -> None:
    import zstandard

    raw = b'{"text": "first line"}\n\n{"text": 3}\nnot json\n{"text": "last", "k": "v"}\n'
    items = read(write(tmp_path, "d.jsonl.zst", zstandard.ZstdCompressor().compress(raw)))
    assert [(type(i).__name__, i.record_index) for i in items] == [
        ("Document", 0), ("Reject", 2), ("Reject", 3), ("Document", 4)]
    assert items[-1].text == "last" and json.loads(items[-1].metadata) == {"k": "v"}
    # streamed: a multi-frame file (as written in chunks) reads across frames
    frames = b"".join(zstandard.ZstdCompressor().compress(b'{"text": "t%d"}\n' % i) for i in range(3))
    assert [d.text for d in read(write(tmp_path, "m.jsonl.zst", frames))] == ["t0", "t1", "t2"]
    reject = read(write(tmp_path, "bad.jsonl.zst", b"\x28\xb5\x2f\xfd garbage"))[-1]
    assert isinstance(reject, Reject) and reject.reason == "unreadable"


def test_csv_quoted_newlines_and_columns(tmp_path: Path) -> None:
    data = ('id,text,author\r\n1,"First line.\nSecond line, with a comma and ""quotes"".",ann\r\n'
            '2,Plain,bob\r\n\r\n3,too,many,fields\r\n4,"",carl\r\n')
    items = read(write(tmp_path, "d.csv", data))
    assert [(type(i).__name__, i.record_index) for i in items] == [
        ("Document", 0), ("Document", 1), ("Reject", 2), ("Reject", 3)]
    assert items[0].text == 'First line.\nSecond line, with a comma and "quotes".'
    assert json.loads(items[0].metadata) == {"author": "ann", "id": "1"}
    assert items[2].reason == "invalid_csv" and items[3].reason == "empty_text"


def test_csv_with_a_stray_nul_keeps_every_row(tmp_path: Path) -> None:
    """One NUL byte (a scraper's glitch) made the whole file a ``binary`` reject."""
    rows = "".join(f"{i},Ligne numéro {i} d'un export de tableur.\n" for i in range(200))
    data = ("id,text\n" + rows).replace("numéro 7 ", "numéro 7\x00 ").encode("utf-8")
    items = read(write(tmp_path, "d.csv", data))
    assert [i.record_index for i in items if isinstance(i, Document)] == list(range(200))
    assert items[7].text == "Ligne numéro 7\x00 d'un export de tableur."  # the repair stage removes the NUL


def test_csv_in_utf16_without_bom(tmp_path: Path) -> None:
    doc = only(read(write(tmp_path, "d.csv", "id,text\n1,Crème brûlée à 5 €\n".encode("utf-16-le"))))
    assert doc.text == "Crème brûlée à 5 €" and doc.source_encoding == "utf-16-le"


def test_tsv_text_field_and_missing_column(tmp_path: Path) -> None:
    src = write(tmp_path, "d.tsv", "title\tcontent\nA\tTab separated body.\n")
    reject = only(read(src))
    assert reject.reason == "missing_text" and "content" in reject.detail and reject.record_index is None
    doc = only(read(src, ReadConfig(text_field="content")))
    assert doc.text == "Tab separated body." and json.loads(doc.metadata) == {"title": "A"}


def test_csv_long_field_and_legacy_encoding(tmp_path: Path) -> None:
    long = "word " * 60_000  # over the csv module's default 128 KiB field limit
    doc = only(read(write(tmp_path, "big.csv", f'text\n"{long}"\n')))
    assert doc.text == long
    doc = only(read(write(tmp_path, "w.csv", "text\nCrème brûlée à 5 €\n".encode("cp1252"))))
    assert doc.text == "Crème brûlée à 5 €" and doc.source_encoding == "cp1252"


@pytest.mark.parametrize("name", ["d.csv.gz", "d.tsv.gz"])
def test_gzipped_csv_and_tsv_are_read_as_csv(tmp_path: Path, name: str) -> None:
    sep = "\t" if ".tsv" in name else ","
    data = f'id{sep}text\n1{sep}"First row,\nwith a quoted newline."\n2{sep}Crème brûlée à 5 €\n'
    assert _suffix(name) == name[1:] and name[1:] in SUPPORTED
    items = read(write(tmp_path, name, gzip.compress(data.encode("cp1252"))))
    assert [(type(i).__name__, i.record_index) for i in items] == [("Document", 0), ("Document", 1)]
    assert items[0].text == "First row,\nwith a quoted newline." and json.loads(items[0].metadata) == {"id": "1"}
    assert items[1].text == "Crème brûlée à 5 €" and items[1].source_encoding == "cp1252"
    # a truncated gzip: the rows before the cut are kept, the cut is one reject
    rows = "text\n" + "".join(f"Row number {i} of a long table about tides.\n" for i in range(20000))
    cut = gzip.compress(rows.encode())
    items = read(write(tmp_path, "cut.csv.gz", cut[: len(cut) // 2]))
    assert len(items) > 100 and all(isinstance(i, Document) for i in items[:-1])
    assert isinstance(items[-1], Reject) and items[-1].reason == "unreadable" and items[-1].record_index is None
    reject = only(read(write(tmp_path, "bad.csv.gz", b"\x1f\x8b\x08\x00\x00")))
    assert isinstance(reject, Reject) and reject.reason == "unreadable"


def test_gzipped_csv_stops_at_the_decompression_limit(tmp_path: Path) -> None:
    rows = "text\n" + "A row of a table that repeats.\n" * 200_000  # 5.6 MB once decompressed
    items = read(write(tmp_path, "big.csv.gz", gzip.compress(rows.encode())), ReadConfig(max_decompressed_mb=2))
    assert 1000 < len(items) < 200_000 and all(isinstance(i, Document) for i in items[:-1])
    assert isinstance(items[-1], Reject) and items[-1].reason == "decompression_limit"


def test_csv_html_field(tmp_path: Path) -> None:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows([["url", "html"], ["https://c.example/p", page()]])
    doc = only(read(write(tmp_path, "pages.csv", buf.getvalue()), ReadConfig(html_field="html")))
    assert doc.extractor and "eleven frames" in doc.text and json.loads(doc.metadata)["url"] == "https://c.example/p"


# --------------------------------------------------------------------------- the chain on HTML documents


def test_html_documents_skip_the_line_classifier_by_default(tmp_path: Path) -> None:
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage
    from corpusclean.tasks.stages.paragraphs import ParagraphStage
    from corpusclean.tasks.plumbing.stage import run_stages

    # lines a classifier removes (short, link-like, no sentence) but no rule names
    text = "\n".join(["Weather", "Quiz", "Puzzles", "Crossword", "Horoscopes", "Obituaries",
                      "A long sentence of real article text that talks about the roof and the bees at length."])

    def flagged(extractor: str | None, **options) -> int:
        doc = Document("d", "p.html", "0" * 64, 0, text, "utf-8", extractor=extractor)
        batch = run_stages(Batch([doc]), [ParagraphStage(), BoilerplateStage(BoilerplateConfig(**options))])
        return sum(batch.paragraphs.is_boilerplate)

    assert flagged(None) > 0  # a text document: the classifier decides
    assert flagged("trafilatura 2") == 0
    assert flagged("trafilatura 2", html_classifier=True) == flagged(None)


def test_explain_html(tmp_path: Path) -> None:
    from corpusclean.tasks.corpus.explain import explain_file

    path = write(tmp_path, "roof.html", page()).path
    explanation = explain_file(path, load_config())
    assert "extracted by trafilatura" in explanation.header()
    texts = [r.text for r in explanation.rows]
    assert "What we learned in the first year" in texts and texts[0] == "Keeping bees on an office roof"
