"""The #12 limits on the readers of tasks/stages/formats (#13): bombs, oversize records, hashing what is read.

Small real files: gzip/zstd bombs that expand to ~200 MB stop at a 5 MB limit (quickly, with memory
that does not follow the input), records above a tiny ``read.max_record_mb`` are ``too_large``
while the other records of the file still come through.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import tracemalloc
import zlib
from io import BytesIO
from pathlib import Path

import pytest

from corpusclean.tasks.config import ReadConfig
from corpusclean.tasks.stages.read import SourceFile, file_sha256, read_source
from corpusclean.tasks.plumbing.records import Document, Reject
from tests.tasks.stages.test_read import read

pytest.importorskip("trafilatura")

TINY = ReadConfig(max_record_mb=0.01)  # 10,000 bytes
BOMB = ReadConfig(max_decompressed_mb=5)
MB = 1_000_000
PAGE = ("<!DOCTYPE html><html><head><title>Bees</title></head><body><article><h1>Keeping bees</h1>"
        "<p>Our small office keeps two hives on the roof, and the bees have become an unexpected part of the "
        "working week. Every Friday somebody climbs the ladder with a smoker and checks the frames.</p>"
        "<p>By the end of the first summer the colony had filled eleven frames with honey, which we shared "
        "with the cleaners of the building and the bakery downstairs.</p></article></body></html>")


def write(tmp_path: Path, rel: str, data: bytes | str, planned: bool = True) -> SourceFile:
    path = tmp_path / rel
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    sha = file_sha256(path) if planned else None
    return SourceFile(path, rel, path.stat().st_size, sha)


def reasons(items) -> list[str | None]:
    return [item.reason if isinstance(item, Reject) else None for item in items]


def gzip_bomb(size: int, head: bytes = b"") -> bytes:
    """A gzip stream of ``head`` then ``size`` bytes of one repeated line, compressed chunk by chunk."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(head)]
    chunk = b"all work and no play makes a dull corpus\n" * 25_000  # ~1 MB
    for _ in range(size // len(chunk)):
        out.append(comp.compress(chunk))
    out.append(comp.flush())
    return b"".join(out)


def bounded(fn):
    """(result, seconds, peak MB of Python allocations) of ``fn()``."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = fn()
        return result, time.monotonic() - start, tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------- gzip'd text, HTML

@pytest.fixture(scope="module")
def bomb200() -> bytes:
    return gzip_bomb(200 * MB)


@pytest.mark.parametrize("name", ["bomb.txt.gz", "bomb.md.gz"])
def test_text_gzip_bomb_stops_at_the_limit(tmp_path: Path, bomb200: bytes, name: str) -> None:
    src = write(tmp_path, name, bomb200)
    items, seconds, peak = bounded(lambda: read(src, BOMB))
    assert reasons(items) == ["decompression_limit"]
    assert "read.max_decompressed_mb" in items[0].detail and items[0].source_sha256 == src.sha256
    assert seconds < 5 and peak < 40  # memory follows the 5 MB limit, not the 200 MB it expands to


def test_text_gzip_bomb_by_ratio(tmp_path: Path, bomb200: bytes) -> None:
    items = read(write(tmp_path, "r.txt.gz", bomb200), ReadConfig(max_decompression_ratio=10, max_record_mb=50))
    assert reasons(items) == ["decompression_limit"] and "read.max_decompression_ratio" in items[0].detail


def test_text_gzip_above_record_limit_is_too_large_or_cut(tmp_path: Path, bomb200: bytes) -> None:
    # default decompression limits (20 GB): the record limit stops the read first
    items, seconds, peak = bounded(lambda: read(write(tmp_path, "big.txt.gz", bomb200), ReadConfig(max_record_mb=1)))
    assert reasons(items) == ["too_large"] and seconds < 5 and peak < 40

    text = "".join(f"line {i} of a long text file about bees\n" for i in range(1000))
    src = write(tmp_path, "cut.txt.gz", gzip.compress(text.encode()))
    assert reasons(read(src, TINY)) == ["too_large"]
    doc = read(src, ReadConfig(max_record_mb=0.01, oversize="cut"))
    assert reasons(doc) == [None]
    kept = doc[0].text
    assert text.startswith(kept) and kept.endswith("\n") and len(kept) <= 10_000
    cut = json.loads(doc[0].metadata)["corpusclean_cut"]
    assert cut["kept_bytes"] == len(kept) and cut["file_bytes"] == src.size
    assert doc[0].source_sha256 == src.sha256


def test_small_gzip_text_still_reads(tmp_path: Path) -> None:
    src = write(tmp_path, "ok.txt.gz", gzip.compress(b"A short note about bees.\n"), planned=False)
    (doc,) = read(src, BOMB)
    assert doc.text == "A short note about bees.\n" and doc.source_sha256 == file_sha256(src.path)


def test_html_gzip_bomb_and_large_page(tmp_path: Path, bomb200: bytes) -> None:
    head = PAGE.encode()[:-len("</p></article></body></html>")]
    src = write(tmp_path, "bomb.html.gz", gzip_bomb(200 * MB, head))
    items, seconds, peak = bounded(lambda: read(src, BOMB))
    assert reasons(items) == ["decompression_limit"] and seconds < 5 and peak < 40
    ok = write(tmp_path, "ok.htm.gz", gzip.compress(PAGE.encode()))
    assert reasons(read(ok, BOMB)) == [None]

    big = PAGE.replace("</article>", "<p>" + "More about bees. " * 2000 + "</p></article>")
    assert reasons(read(write(tmp_path, "big.html", big), TINY)) == ["too_large"]
    assert reasons(read(write(tmp_path, "big.htm.gz", gzip.compress(big.encode())), TINY)) == ["too_large"]
    assert reasons(read(write(tmp_path, "page.html", PAGE), TINY)) == [None]


# ----------------------------------------------------------------------------- JSON, zstd JSON lines

def test_json_file_above_the_limit_is_too_large(tmp_path: Path) -> None:
    records = [{"text": f"record {i} about bees and their hives"} for i in range(400)]
    big = write(tmp_path, "big.json", json.dumps(records))
    items = read(big, TINY)
    assert reasons(items) == ["too_large"] and items[0].record_index is None and "parsed whole" in items[0].detail
    small = write(tmp_path, "small.json", json.dumps(records[:3]))
    assert [d.text for d in read(small, TINY)] == [r["text"] for r in records[:3]]


def test_jsonl_zst_bomb_keeps_the_records_before(tmp_path: Path) -> None:
    import zstandard

    comp = zstandard.ZstdCompressor(level=3).compressobj()
    parts = [comp.compress(b'{"text": "first record"}\n{"text": "second record"}\n')]
    filler = b'{"text": "' + b"a" * 1000 + b'"}\n'
    for _ in range(200):  # ~200 MB of lines
        parts.append(comp.compress(filler * 1000))
    parts.append(comp.flush())
    src = write(tmp_path, "bomb.jsonl.zst", b"".join(parts))
    items, seconds, peak = bounded(lambda: list(read_source(src, BOMB)))
    assert seconds < 10 and peak < 40
    assert [d.text for d in items[:2]] == ["first record", "second record"]
    assert items[-1].reason == "decompression_limit"
    assert all(isinstance(d, Document) for d in items[:-1])


def test_jsonl_zst_long_line_is_too_large(tmp_path: Path) -> None:
    import zstandard

    raw = b'{"text": "one"}\n{"text": "' + b"x" * 50_000 + b'"}\n{"text": "three"}\n'
    items = read(write(tmp_path, "l.jsonl.zst", zstandard.ZstdCompressor().compress(raw), planned=False), TINY)
    assert reasons(items) == [None, "too_large", None]
    assert items[1].record_index == 1 and items[2].text == "three"


# ----------------------------------------------------------------------------- CSV / TSV

def test_csv_row_above_the_limit(tmp_path: Path) -> None:
    huge = "word " * 4000  # 20,000 characters
    data = ('id,text\n1,first row\n2,"' + huge + '"\n3,"a quoted\n' + huge.replace(" ", "\n")
            + 'field, with ""quotes"" and\nlines"\n4,fourth row\n5,' + huge + "\n6,last row\n")
    items = read(write(tmp_path, "t.csv", data), TINY)
    assert reasons(items) == [None, "too_large", "too_large", None, "too_large", None]
    assert [i.record_index for i in items] == [0, 1, 2, 3, 4, 5]
    assert items[3].text == "fourth row" and items[5].text == "last row"
    assert reasons(read(write(tmp_path, "t2.csv", data), ReadConfig())) == [None] * 6


def test_csv_huge_single_line_is_not_held(tmp_path: Path) -> None:
    data = b'text\nfirst\n"' + b"x" * (30 * MB) + b'"\nlast\n'
    src = write(tmp_path, "h.csv", data)
    items, seconds, peak = bounded(lambda: read(src, ReadConfig(max_record_mb=1)))
    assert reasons(items) == [None, "too_large", None] and items[2].text == "last"
    assert peak < 20


def test_tsv_header_above_the_limit(tmp_path: Path) -> None:
    items = read(write(tmp_path, "h.tsv", "text\t" + "c" * 20_000 + "\nsome text\tx\n"), TINY)
    assert reasons(items) == ["too_large"]


# ----------------------------------------------------------------------------- WARC / WET

def write_warc(path: Path, bodies: list[bytes], gzipped: bool = True) -> None:
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=gzipped)
        for i, body in enumerate(bodies):
            writer.write_record(writer.create_warc_record(f"https://s.example/{i}", "conversion",
                                                          payload=BytesIO(body), warc_content_type="text/plain"))


@pytest.mark.parametrize("gzipped", [True, False])
def test_warc_record_above_the_limit(tmp_path: Path, gzipped: bool) -> None:
    name = "c.warc.wet.gz" if gzipped else "c.warc.wet"
    write_warc(tmp_path / name, [b"A first page of text.", b"Big page of text. " * 2000, b"A last page of text."], gzipped)
    src = SourceFile(tmp_path / name, name, (tmp_path / name).stat().st_size, file_sha256(tmp_path / name))
    items = read(src, TINY)
    assert reasons(items) == [None, "too_large", None]
    assert items[1].record_index == 1 and items[2].text == "A last page of text."


def test_warc_gz_decompression_limit_keeps_records_before(tmp_path: Path) -> None:
    body = b"Some text of a page, quite repetitive. " * 50_000  # ~2 MB, compresses well
    write_warc(tmp_path / "b.warc.gz", [b"A first page of text.", body, body, body, body])
    src = SourceFile(tmp_path / "b.warc.gz", "b.warc.gz", (tmp_path / "b.warc.gz").stat().st_size)
    items = read(src, ReadConfig(max_decompressed_mb=5, max_record_mb=3))
    assert reasons(items) == [None, None, None, "decompression_limit"]
    assert "record 3" in items[-1].detail


# ----------------------------------------------------------------------------- hashing what is read

@pytest.mark.parametrize("name,data", [
    ("a.txt.gz", gzip.compress(b"Some text.\n", mtime=0)),
    ("a.json", b'[{"text": "one"}]'),
    ("a.html", PAGE.encode()),
    ("a.csv", b"text\none\n"),
    ("a.jsonl.zst", None),
    ("a.warc.wet.gz", None),
])
def test_rewritten_during_the_run_is_changed(tmp_path: Path, name: str, data: bytes | None) -> None:
    if name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdCompressor().compress(b'{"text": "one"}\n')
    if data is None:
        write_warc(tmp_path / name, [b"A page of text."])
    else:
        (tmp_path / name).write_bytes(data)
    path = tmp_path / name
    wrong = hashlib.sha256(b"what was planned").hexdigest()
    items = read(SourceFile(path, name, path.stat().st_size, wrong))
    assert items[-1].reason == "changed_during_run"
    assert items[-1].source_sha256 == file_sha256(path)


def test_appended_after_planning_is_not_read(tmp_path: Path) -> None:
    src = write(tmp_path, "a.csv", "text\none\ntwo\n")
    with open(src.path, "a") as f:
        f.write("three\n")
    items = read(src)
    assert [d.text for d in items] == ["one", "two"] and all(d.source_sha256 == src.sha256 for d in items)


def test_warc_gz_decompression_ratio(tmp_path: Path) -> None:
    body = b"Some text of a page, quite repetitive. " * 50_000  # ~2 MB each, compresses ~500x
    write_warc(tmp_path / "r.warc.wet.gz", [b"A first page of text."] + [body] * 12)
    src = SourceFile(tmp_path / "r.warc.wet.gz", "r.warc.wet.gz", (tmp_path / "r.warc.wet.gz").stat().st_size)
    items = read(src, ReadConfig(max_decompression_ratio=10, max_record_mb=3))
    assert items[0].text == "A first page of text." and items[-1].reason == "decompression_limit"
    assert "read.max_decompression_ratio" in items[-1].detail and 1 < len(items) < 13


def test_warc_large_non_page_record_is_unsupported_not_too_large(tmp_path: Path) -> None:
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "m.warc.gz"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warc_record("https://s.example/a.pdf", "resource",
                                                      payload=BytesIO(b"%PDF-1.4 " + b"\0" * 50_000),
                                                      warc_content_type="application/pdf"))
        writer.write_record(writer.create_warc_record("https://s.example/t", "conversion",
                                                      payload=BytesIO(b"Some page text."), warc_content_type="text/plain"))
    items = read(SourceFile(path, "m.warc.gz", path.stat().st_size), TINY)
    assert reasons(items) == ["unsupported_format", None] and items[1].text == "Some page text."


def test_sniffed_warc_gz_counts_against_the_decompression_limit(tmp_path: Path) -> None:
    body = b"Some text of a page, quite repetitive. " * 50_000
    write_warc(tmp_path / "crawl.dat", [b"A first page of text.", body, body, body, body])
    src = SourceFile(tmp_path / "crawl.dat", "crawl.dat", (tmp_path / "crawl.dat").stat().st_size)
    assert reasons(read(src, ReadConfig(max_decompressed_mb=5, max_record_mb=3)))[-1] == "decompression_limit"
