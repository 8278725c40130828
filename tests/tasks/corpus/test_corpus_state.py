from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusclean.tasks import schema
from corpusclean.tasks.corpus.corpus_state import (
    CorpusError,
    Manifest,
    Part,
    collect_garbage,
    commit_manifest,
    load_manifest,
    plan_inputs,
    snapshot,
)
from corpusclean.tasks.stages.read import discover


def _part(run: str, name: str = "part-00000") -> Part:
    return Part(run, *(f"runs/{run}/{t}/{name}.parquet" for t in ("documents", "paragraphs", "rejects")),
                keys=f"runs/{run}/keys/{name}.arrow", decisions=f"runs/{run}/decisions/{name}.arrow", sources=["a.txt"])


def _touch(out, part: Part) -> None:
    for rel in part.files():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(b"x")


def test_manifest_round_trip_and_nothing_committed(tmp_path):
    assert load_manifest(tmp_path).version == 0 and snapshot(tmp_path).read("paragraphs").num_rows == 0
    m = Manifest(version=3, sources={"a.txt": {"sha256": "ab", "run_id": "r"}}, parts=[_part("r")], runs=[{"run_id": "r"}])
    commit_manifest(tmp_path, m)
    assert load_manifest(tmp_path) == m
    assert (tmp_path / "_manifests" / "v00000003.json").is_file()
    assert m.files("paragraphs") == ["runs/r/paragraphs/part-00000.parquet"]
    assert "runs/r/keys/part-00000.docs.arrow" in m.referenced()
    with pytest.raises(KeyError, match="unknown table"):
        m.files("nope")


def test_unreadable_or_foreign_manifests_are_one_line_errors(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CorpusError, match="not a corpusclean manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(CorpusError, match="unsupported manifest format"):
        load_manifest(tmp_path)


def test_garbage_keeps_the_previous_version_and_drops_uncommitted_runs(tmp_path):
    old, new, killed = _part("r1"), _part("r2", "from-r1-part-00000"), _part("r3")
    for p in (old, new, killed):
        _touch(tmp_path, p)
    commit_manifest(tmp_path, Manifest(version=1, parts=[old], runs=[{"run_id": "r1"}]))
    v2 = Manifest(version=2, parts=[new], runs=[{"run_id": "r1"}, {"run_id": "r2"}])
    commit_manifest(tmp_path, v2)
    removed = collect_garbage(tmp_path, v2)
    assert removed == ["runs/r3/"]  # r1's replaced part stays: a reader may still hold version 1
    assert all((tmp_path / f).is_file() for f in old.files() + new.files())
    v3 = Manifest(version=3, parts=[new], runs=v2.runs + [{"run_id": "r4"}])
    commit_manifest(tmp_path, v3)
    assert sorted(collect_garbage(tmp_path, v3)) == sorted(old.files())  # two commits later


def test_plan_inputs_by_content_hash(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, text in (("same.txt", "one"), ("edited.txt", "two"), ("new.txt", "three")):
        (raw / name).write_text(text)
    first = plan_inputs(discover(raw), Manifest())
    assert sorted(first.new) == ["edited.txt", "new.txt", "same.txt"] and not first.changed
    seen = {rel: {"sha256": sha, "run_id": "r1"} for rel, sha in first.sha256.items() if rel != "new.txt"}
    seen["gone.txt"] = {"sha256": "00", "run_id": "r1"}
    (raw / "edited.txt").write_text("two, edited")
    os.utime(raw / "same.txt", (0, 0))  # a new mtime alone is not a change
    plan = plan_inputs(discover(raw), Manifest(sources=seen))
    assert (plan.new, plan.changed, plan.unchanged, plan.removed) == (["new.txt"], ["edited.txt"], ["same.txt"], ["gone.txt"])
    assert [f.rel for f in plan.process] == ["edited.txt", "new.txt"] and plan.superseded == {"edited.txt"}


def test_snapshot_reads_the_listed_files_in_manifest_order(tmp_path):
    rows = []
    parts = []
    for k, run in enumerate(("r2", "r1")):  # corpus order is the manifest's, not the folders'
        part = _part(run)
        parts.append(part)
        for table, sch in schema.TABLES.items():
            path = tmp_path / getattr(part, table)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(sch.empty_table(), path)
        rejects = pa.table({"source_path": [f"f{k}"], "record_index": [None], "reason": ["binary"], "detail": ["d"],
                            "source_sha256": [None], "run_id": [run]}, schema=schema.REJECTS)
        pq.write_table(rejects, tmp_path / part.rejects)
        rows.append(f"f{k}")
    (tmp_path / "runs" / "stray").mkdir()
    pq.write_table(schema.REJECTS.empty_table(), tmp_path / "runs" / "stray" / "x.parquet")
    commit_manifest(tmp_path, Manifest(version=1, parts=parts))
    assert snapshot(tmp_path).read("rejects").column("source_path").to_pylist() == rows


def test_files_with_rejects_are_planned_again_when_the_read_settings_change(tmp_path):
    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.corpus.corpus_state import Manifest, plan_inputs
    from corpusclean.tasks.stages.read import SourceFile, file_sha256
    from corpusclean.tasks.corpus.runs import read_fingerprint

    files = []
    for name in ("good.txt", "bad.csv", "old.txt", "mostly.jsonl"):
        path = tmp_path / name
        path.write_text(f"content of {name}\n", encoding="utf-8")
        files.append(SourceFile(path, name, path.stat().st_size))
    key = read_fingerprint(load_config())
    sha = {f.rel: file_sha256(f.path) for f in files}
    manifest = Manifest(sources={
        "good.txt": {"sha256": sha["good.txt"], "run_id": "r", "read": key, "rejects": 0},
        "bad.csv": {"sha256": sha["bad.csv"], "run_id": "r", "read": key, "rejects": 3},
        "old.txt": {"sha256": sha["old.txt"], "run_id": "r"},  # ingested before rejects were recorded
        "mostly.jsonl": {"sha256": sha["mostly.jsonl"], "run_id": "r", "read": key, "rejects": 1, "documents": 87},
    })
    assert plan_inputs(files, manifest, key).unchanged == ["good.txt", "bad.csv", "old.txt", "mostly.jsonl"]
    other = read_fingerprint(load_config(None, ["read.text_field=content"]))
    assert other != key and read_fingerprint(load_config(None, ["dedup.threshold=0.9"])) == key
    plan = plan_inputs(files, manifest, other)
    # mostly.jsonl gave documents: new read settings (meant for bad.csv) must not turn them into rejects
    assert plan.retried == ["bad.csv"] and plan.changed == ["bad.csv"] and [f.rel for f in plan.process] == ["bad.csv"]
    assert plan_inputs(files, manifest, key, retry_rejects=True).retried == ["bad.csv", "mostly.jsonl"]
    assert plan.summary()["retried"] == 1
