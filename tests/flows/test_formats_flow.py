"""Every input format through the real flow, and rejected files read again when the read settings change."""

from __future__ import annotations

import gzip
import json
import shutil
from io import BytesIO
from pathlib import Path

import pytest
import zstandard
from prefect.task_runners import ThreadPoolTaskRunner

from corpusclean.flows.clean_corpus import clean_corpus as deployed_flow
from corpusclean.tasks.corpus import corpus_state
from corpusclean.tasks.corpus.report import mostly_rejected, rejected_warning

clean_corpus = deployed_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]  # one API per session (conftest)

pytest.importorskip("trafilatura")


TEXT = ("The harbour committee met on Tuesday to discuss the winter mooring fees for the small fishing boats "
        "that stay in the inner basin, and agreed to keep them at last year's level.")


def make_raw(raw: Path) -> None:
    from warcio.warcwriter import WARCWriter

    raw.mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / "web" / "rooftop-garden.html", raw / "page.html")
    shutil.copy(REPO / "data" / "raw" / "web" / "crawl-sample.warc.wet.gz", raw / "crawl.warc.wet.gz")
    (raw / "data.csv").write_text(f'id,content\n1,"{TEXT}\nA second line of the first row."\n', encoding="utf-8")
    (raw / "data.json").write_text(json.dumps([{"text": "A JSON array record about tide tables and ferries."}]))
    (raw / "notes.txt.gz").write_bytes(gzip.compress(b"Notes, gzipped: the lighthouse keeper retired in May."))
    (raw / "feed.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "From a zstd stream."}\n'))
    (raw / "table.tsv.gz").write_bytes(gzip.compress(b"id\ttext\n1\tA gzipped TSV row about the harbour ferry timetable.\n"))
    with open(raw / "pages.warc.gz", "wb") as f:
        writer = WARCWriter(f, gzip=True)
        html = (REPO / "data" / "raw" / "web" / "rooftop-garden.html").read_bytes()
        from warcio.statusandheaders import StatusAndHeaders

        request = StatusAndHeaders("GET /roof HTTP/1.1", [("Host", "garden.example")], is_http_request=True)
        writer.write_record(writer.create_warc_record("https://garden.example/roof", "request",
                                                      payload=BytesIO(b""), http_headers=request))
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("https://garden.example/roof", "response",
                                                      payload=BytesIO(html), http_headers=http))
        writer.write_record(writer.create_warc_record("https://garden.example/roof", "metadata",
                                                      payload=BytesIO(b"via: https://garden.example/\n"),
                                                      warc_content_type="application/warc-fields"))
        writer.write_record(writer.create_warc_record("https://garden.example/notes.txt", "resource",
                                                      payload=BytesIO(b"Garden notes: the beans went in on Sunday."),
                                                      warc_content_type="text/plain"))


def test_every_format_then_rejected_files_retried(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "clean"
    make_raw(raw)

    first = clean_corpus(raw_dir=raw, out_dir=out)
    docs = corpus_state.read_table(out, "documents").to_pylist()
    by_path: dict[str, list[dict]] = {}
    for d in docs:
        by_path.setdefault(d["source_path"], []).append(d)
    assert set(by_path) == {"page.html", "crawl.warc.wet.gz", "data.json", "notes.txt.gz", "feed.jsonl.zst",
                            "pages.warc.gz", "table.tsv.gz"}
    page = by_path["page.html"][0]
    meta = json.loads(page["metadata"])
    assert meta["extractor"].startswith("trafilatura") and meta["title"]
    warc, notes = by_path["pages.warc.gz"]  # the response (after the request) and the text/plain resource
    assert warc["record_index"] == 1 and json.loads(warc["metadata"])["url"] == "https://garden.example/roof"
    assert notes["record_index"] == 3 and notes["source_text"] == "Garden notes: the beans went in on Sunday."
    assert [d["source_text"] for d in by_path["table.tsv.gz"]] == ["A gzipped TSV row about the harbour ferry timetable."]
    # the request and metadata records, and the WET file's warcinfo, are not documents: counted, not rejected
    assert first["inputs"]["skipped_records"] == {"metadata": 1, "request": 1, "warcinfo": 1}
    assert "| non-document records skipped (metadata 1, request 1, warcinfo 1) | 3 |" in (out / "report.md").read_text(encoding="utf-8")
    assert len(by_path["crawl.warc.wet.gz"]) >= 2
    # provenance: offsets index the (extracted, repaired) source text of every document
    source = {d["doc_id"]: d["source_text"] for d in docs}
    for p in corpus_state.read_table(out, "paragraphs").to_pylist():
        assert source[p["doc_id"]][p["char_start"]:p["char_end"]] == p["text"]
    rejects = corpus_state.read_table(out, "rejects").to_pylist()
    assert [(r["source_path"], r["reason"]) for r in rejects] == [("data.csv", "missing_text")]
    assert first["inputs"]["rejected_files"] == 1 and not mostly_rejected(first)
    assert "1 of 8 files" in rejected_warning(first) and "missing_text 1" in rejected_warning(first)

    # the column named: the CSV is read again (its reject superseded), the good files are not
    second = clean_corpus(raw_dir=raw, out_dir=out, overrides=["read.text_field=content"])
    assert second["inputs"]["retried"] == 1 and second["inputs"]["unchanged"] == 7 and second["inputs"]["files"] == 1
    assert rejected_warning(second) is None
    docs2 = corpus_state.read_table(out, "documents").to_pylist()
    csv_docs = [d for d in docs2 if d["source_path"] == "data.csv"]
    assert len(csv_docs) == 1 and csv_docs[0]["source_text"].startswith(TEXT)
    assert not corpus_state.read_table(out, "rejects").num_rows
    assert {d["run_id"] for d in docs2 if d["source_path"] != "data.csv"} == {first["run_id"]}

    # same settings again: nothing to do; --retry-rejects has no rejected file left to read
    third = clean_corpus(raw_dir=raw, out_dir=out, overrides=["read.text_field=content"], retry_rejects=True)
    assert third["inputs"]["files"] == 0 and third["inputs"]["unchanged"] == 8


def test_new_read_settings_leave_a_file_that_gave_documents_alone(tmp_path):
    """`--set read.text_field=content` for a CSV that gave no document: a JSON-lines file that gave
    documents and one reject is not read again with it (its documents would become missing_text
    rejects); --retry-rejects still reads it again."""
    raw, out = tmp_path / "raw", tmp_path / "clean"
    raw.mkdir()
    (raw / "data.csv").write_text(f'id,content\n1,"{TEXT}"\n', encoding="utf-8")
    (raw / "feed.jsonl").write_text(json.dumps({"text": TEXT}) + "\nnot json\n"
                                    + json.dumps({"text": "A second record about the winter ferry timetable."}) + "\n",
                                    encoding="utf-8")
    first = clean_corpus(raw_dir=raw, out_dir=out)
    reasons = sorted((r["source_path"], r["reason"]) for r in corpus_state.read_table(out, "rejects").to_pylist())
    assert reasons == [("data.csv", "missing_text"), ("feed.jsonl", "invalid_json")]
    second = clean_corpus(raw_dir=raw, out_dir=out, overrides=["read.text_field=content"])
    assert second["inputs"]["retried"] == 1 and second["inputs"]["files"] == 1  # the CSV only
    docs = corpus_state.read_table(out, "documents").to_pylist()
    assert sorted(d["source_path"] for d in docs) == ["data.csv", "feed.jsonl", "feed.jsonl"]
    assert {d["run_id"] for d in docs if d["source_path"] == "feed.jsonl"} == {first["run_id"]}
    again = clean_corpus(raw_dir=raw, out_dir=out, retry_rejects=True)  # asked for: the file with a reject left
    assert again["inputs"]["retried"] == 1
    docs = corpus_state.read_table(out, "documents").to_pylist()
    assert {d["run_id"] for d in docs if d["source_path"] == "feed.jsonl"} == {again["run_id"]}


def test_a_run_of_mostly_rejected_files(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "clean"
    raw.mkdir()
    (raw / "good.txt").write_text(TEXT, encoding="utf-8")
    (raw / "a.csv").write_text("body\nno text column here\n", encoding="utf-8")
    (raw / "scan.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    report = clean_corpus(raw_dir=raw, out_dir=out)
    assert report["inputs"]["rejected_files"] == 2 and mostly_rejected(report)
    assert report["inputs"]["rejected_file_reasons"] == {"missing_text": 1, "unsupported_format": 1}
    assert "warning" in (out / "report.md").read_text(encoding="utf-8")
    # the same bytes, the same settings: retried only on request
    again = clean_corpus(raw_dir=raw, out_dir=out, retry_rejects=True)
    assert again["inputs"]["retried"] == 2 and again["inputs"]["unchanged"] == 1
