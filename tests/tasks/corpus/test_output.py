"""rewrite_part: a committed part written again with new decisions and without superseded rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusclean.tasks import schema
from corpusclean.tasks.corpus.corpus_dedup import PartRewrite, ShardDecisions
from corpusclean.tasks.corpus.corpus_state import Part
from corpusclean.tasks.stages.dedup import KIND_EXACT, KIND_NONE
from corpusclean.tasks.corpus.output import rewrite_part


def _committed_part(out):
    part = Part("r1", "runs/r1/documents/part-00000.parquet", "runs/r1/paragraphs/part-00000.parquet",
                "runs/r1/rejects/part-00000.parquet", sources=["a.txt", "b.txt"])
    texts = {"A": ["Menu", "First paragraph.", "Second paragraph."], "B": ["Other text."]}
    paras, docs = [], []
    for doc, path in (("A", "a.txt"), ("B", "b.txt")):
        for i, text in enumerate(texts[doc]):
            chrome = text == "Menu"
            paras.append({"paragraph_id": f"{doc}:{i}", "doc_id": doc, "source_path": path, "source_sha256": "s",
                          "record_index": 0, "paragraph_index": i, "char_start": 0, "char_end": len(text), "text": text,
                          "lang": "en", "is_boilerplate": chrome, "boilerplate_reason": "menu" if chrome else None,
                          "is_duplicate": False, "duplicate_of": None, "dup_cluster": None, "dup_kind": None, "run_id": "r1"})
        kept = [t for t in texts[doc] if t != "Menu"]
        docs.append({"doc_id": doc, "source_path": path, "source_sha256": "s", "record_index": 0,
                     "text": "\n\n".join(kept), "source_text": "\n".join(texts[doc]), "lang": "en", "lang_prob": 0.99,
                     "source_encoding": "utf-8", "encoding_fixes": [], "n_replacement_chars": 0,
                     "n_paragraphs": len(texts[doc]), "n_kept": len(kept), "n_boilerplate": len(texts[doc]) - len(kept),
                     "n_duplicate": 0, "metadata": "{}", "run_id": "r1", "pipeline_version": "v"})
    rejects = [{"source_path": "b.txt", "record_index": 3, "reason": "invalid_json", "detail": "d", "source_sha256": "s",
                "run_id": "r1"}]
    for table, rows in (("paragraphs", paras), ("documents", docs), ("rejects", rejects)):
        path = out / getattr(part, table)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema.TABLES[table]), path)
    return part


def test_rewrite_applies_new_decisions_and_drops_superseded_documents(tmp_path):
    part = _committed_part(tmp_path)
    # Keyed rows of A (1, 2): row 1 is now learned chrome, row 2 a duplicate of another part's row.
    decisions = ShardDecisions(np.array([True, False]), [None, "Z:0"], np.array([KIND_NONE, KIND_EXACT], np.int8))
    rewrite = PartRewrite(0, np.array([1, 2]), decisions, np.array([True, False]), {"b.txt"})  # b.txt superseded
    new = rewrite_part(tmp_path, part, rewrite, tmp_path / "runs" / "r2")

    assert new.paragraphs == "runs/r2/paragraphs/from-r1-part-00000.parquet" and new.run_id == "r1"
    paras = pq.read_table(tmp_path / new.paragraphs).to_pylist()
    assert [p["paragraph_id"] for p in paras] == ["A:0", "A:1", "A:2"]  # B's rows are gone
    assert [(p["is_boilerplate"], p["boilerplate_reason"]) for p in paras] == [
        (True, "menu"), (True, "repeated_line"), (False, None)]
    assert paras[2]["is_duplicate"] and paras[2]["duplicate_of"] == "Z:0" and paras[2]["dup_kind"] == "exact"
    assert all(p["run_id"] == "r1" for p in paras)  # rows keep the run that ingested them
    (doc,) = pq.read_table(tmp_path / new.documents).to_pylist()
    assert (doc["text"], doc["n_kept"], doc["n_boilerplate"], doc["n_duplicate"]) == ("", 0, 2, 1)
    assert pq.read_table(tmp_path / new.rejects).num_rows == 0  # b.txt's reject went with it
    # The committed files are untouched.
    assert pq.read_table(tmp_path / part.paragraphs).num_rows == 4


def test_documents_by_arrays_equal_the_loop(monkeypatch):
    # the vectorised per-document text and counts against the per-paragraph loop, on random rows
    # (documents without paragraphs, every flag combination, non-ASCII text) and on unusual ones
    import random

    import pyarrow as pa

    from corpusclean.tasks.corpus import output as out

    rng = random.Random(3)
    for trial in range(60):
        n_docs = rng.randint(0, 12)
        ids = [f"d{i}" for i in range(n_docs)]
        rows = [(d, rng.choice(["a", "é ü", "", "x" * rng.randint(1, 30), "中文"]), rng.random() < 0.5, rng.random() < 0.3)
                for d in ids for _ in range(rng.choice([0, 1, 3, 7]))]
        docs = pa.table({"doc_id": pa.array(ids, pa.string())})
        paras = pa.table({"doc_id": pa.array([r[0] for r in rows], pa.string()), "text": pa.array([r[1] for r in rows], pa.string()),
                          "is_boilerplate": pa.array([r[2] for r in rows]), "is_duplicate": pa.array([r[3] for r in rows])})
        fast = out._documents_by_arrays(docs, paras)
        assert fast is not None
        with monkeypatch.context() as m:
            m.setattr(out, "_documents_by_arrays", lambda docs, paras: None)
            slow = out._documents_from_paragraphs(docs, paras)
        assert fast.keys() == slow.keys()
        for name in fast:
            assert fast[name].equals(slow[name]), (trial, name)
    # out of document order, unknown or repeated documents, null flags: left to the loop
    docs = pa.table({"doc_id": pa.array(["a", "b"], pa.string())})
    mixed = pa.table({"doc_id": ["b", "a"], "text": ["x", "y"], "is_boilerplate": [False, False], "is_duplicate": [False, False]})
    assert out._documents_by_arrays(docs, mixed) is None
    unknown = pa.table({"doc_id": ["c"], "text": ["x"], "is_boilerplate": [False], "is_duplicate": [False]})
    assert out._documents_by_arrays(docs, unknown) is None
    nulls = pa.table({"doc_id": ["a"], "text": ["x"], "is_boilerplate": pa.array([None], pa.bool_()), "is_duplicate": [False]})
    assert out._documents_by_arrays(docs, nulls) is None
    twice = pa.table({"doc_id": pa.array(["a", "a"], pa.string())})
    assert out._documents_by_arrays(twice, unknown.slice(0, 0)) is None
