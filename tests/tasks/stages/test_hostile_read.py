"""Inputs that are not what they claim: oversize records, bombs, links, FIFOs, odd names, files
that change while read. Each ends as a reject row with a reason, never an exception."""

from __future__ import annotations

import gzip
import json
import os
import socket
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusclean.tasks.config import ConfigError, ReadConfig, load_config
from corpusclean.tasks.corpus.corpus_state import Manifest, plan_inputs
from corpusclean.tasks.stages.read import decode_source_path, discover, encode_source_path, read_source
from corpusclean.tasks.plumbing.records import Document, Reject
from corpusclean.tasks import schema

SMALL = ReadConfig(max_record_mb=0.001)  # 1000 bytes


def read_all(raw: Path, config: ReadConfig = ReadConfig(), follow: str = "inside") -> list[Document | Reject]:
    plan = plan_inputs(discover(raw, follow), Manifest())
    return [item for src in plan.process for item in read_source(src, config)]


def by_path(items) -> dict[str, list]:
    out: dict[str, list] = {}
    for item in items:
        out.setdefault(item.source_path, []).append(item)
    return out


def reasons(items) -> list[str]:
    return [i.reason for i in items if isinstance(i, Reject)]


# ------------------------------------------------------------------ size limits


def test_a_txt_above_the_limit_is_rejected_or_cut(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "big.txt").write_text("A line of ordinary words.\n" * 100, encoding="utf-8")  # 2600 bytes
    (raw / "small.txt").write_text("A short note.\n", encoding="utf-8")
    got = by_path(read_all(raw, SMALL))
    assert reasons(got["big.txt"]) == ["too_large"] and got["big.txt"][0].source_sha256
    assert isinstance(got["small.txt"][0], Document)
    cut = by_path(read_all(raw, ReadConfig(max_record_mb=0.001, oversize="cut")))["big.txt"]
    assert len(cut) == 1 and isinstance(cut[0], Document)
    assert cut[0].text.endswith("words.\n") and len(cut[0].text) <= 1000
    assert json.loads(cut[0].metadata)["corpusclean_cut"] == {"kept_bytes": len(cut[0].text), "file_bytes": 2600}


def test_a_json_line_above_the_limit_is_rejected_and_the_others_read(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [{"text": "before"}, {"text": "x" * 5000}, {"text": "after"}]
    (raw / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    got = read_all(raw, SMALL)
    assert [(type(i).__name__, i.record_index) for i in got] == [("Document", 0), ("Reject", 1), ("Document", 2)]
    assert got[1].reason == "too_large"


def test_a_gzip_bomb_is_a_decompression_limit_reject(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "bomb.jsonl.gz").write_bytes(gzip.compress(b'{"text": "' + b"a" * 40_000_000))
    (raw / "ok.jsonl.gz").write_bytes(gzip.compress(b'{"text": "fine"}\n'))
    got = by_path(read_all(raw, ReadConfig(max_decompression_ratio=100)))
    assert reasons(got["bomb.jsonl.gz"]) == ["decompression_limit"]
    assert [i.text for i in got["ok.jsonl.gz"]] == ["fine"]


def test_a_huge_parquet_value_is_rejected_before_conversion(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    pq.write_table(pa.table({"text": ["small one", "y" * 5000, "small two"]}), raw / "p.parquet")
    got = read_all(raw, SMALL)
    assert [(type(i).__name__, i.record_index) for i in got] == [("Document", 0), ("Reject", 1), ("Document", 2)]
    assert got[1].reason == "too_large"


def test_every_reject_reason_is_documented():
    for reason in ("too_large", "decompression_limit", "symlink", "not_regular", "changed_during_run"):
        assert reason in schema.REJECT_REASONS


# ------------------------------------------------------------------ entries that are not files


def test_a_symlink_out_of_raw_is_rejected_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.txt").write_text("outside text\n", encoding="utf-8")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "real.txt").write_text("A real article.\n", encoding="utf-8")
    (raw / "passwd.txt").symlink_to(secret)
    (raw / "inside.txt").symlink_to(raw / "real.txt")
    (raw / "dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    got = by_path(read_all(raw))
    assert reasons(got["passwd.txt"]) == ["symlink"] and "outside the raw folder" in got["passwd.txt"][0].detail
    assert reasons(got["dir"]) == ["symlink"]
    assert [i.text for i in got["inside.txt"]] == ["A real article.\n"]  # a link inside raw is read
    assert not any("root:x" in getattr(i, "text", "") for i in sum(got.values(), []))
    every = by_path(read_all(raw, follow="all"))
    assert "root:x" in every["passwd.txt"][0].text and "dir/x.txt" in every
    none = by_path(read_all(raw, follow="none"))
    assert reasons(none["inside.txt"]) == ["symlink"]


def test_a_symlink_loop_with_follow_all_ends(tmp_path):
    raw = tmp_path / "raw"
    (raw / "a").mkdir(parents=True)
    (raw / "a" / "t.txt").write_text("text\n", encoding="utf-8")
    (raw / "a" / "loop").symlink_to(raw, target_is_directory=True)
    paths = [s.rel for s in discover(raw, "all")]
    assert "a/t.txt" in paths and len(paths) < 10


def test_fifo_socket_and_dangling_link_are_rejects_and_discovery_does_not_block(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    os.mkfifo(raw / "pipe.txt")  # opening it would block forever: it must never be opened
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(raw / "sock.jsonl"))
    (raw / "gone.txt").symlink_to(raw / "missing.txt")
    result: list = []
    worker = threading.Thread(target=lambda: result.append(by_path(read_all(raw))), daemon=True)
    worker.start()
    worker.join(20)
    sock.close()
    assert result, "discovery or reading blocked"
    got = result[0]
    assert reasons(got["pipe.txt"]) == ["not_regular"] and "FIFO" in got["pipe.txt"][0].detail
    assert reasons(got["sock.jsonl"]) == ["not_regular"]
    assert reasons(got["gone.txt"]) == ["unreadable"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_reject(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "locked.txt").write_text("secret\n", encoding="utf-8")
    (raw / "locked.txt").chmod(0)
    assert reasons(read_all(raw)) == ["unreadable"]


# ------------------------------------------------------------------ names


def test_two_names_differing_only_in_undecodable_bytes_stay_two(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / os.fsdecode(b"caf\xe9.txt")).write_text("first file\n", encoding="utf-8")
    (raw / "caf\\xe9.txt").write_text("second file\n", encoding="utf-8")
    (raw / "plain.txt").write_text("third file\n", encoding="utf-8")
    got = by_path(read_all(raw))
    assert len(got) == 3
    assert [i.text for i in got["caf\\xe9.txt"]] == ["first file\n"]  # as earlier versions named it
    assert [i.text for i in got["caf\\\\xe9.txt"]] == ["second file\n"]
    assert "plain.txt" in got


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=30).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")),
       st.binary(max_size=30).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")))
def test_source_path_encoding_is_lossless_unique_and_storable(a, b):
    ea, eb = encode_source_path(a), encode_source_path(b)
    assert decode_source_path(ea) == a
    assert (ea == eb) == (a == b)
    ea.encode("utf-8")  # storable in Parquet: no surrogates
    try:
        text = a.decode("utf-8")
    except UnicodeDecodeError:
        return
    if "\\x" not in text:
        assert ea == text  # ordinary names unchanged


# ------------------------------------------------------------------ files that change while read


def test_a_file_appended_after_planning_is_cleaned_as_planned(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    path = raw / "grow.jsonl"
    path.write_text("".join(json.dumps({"text": f"record {i}"}) + "\n" for i in range(5)), encoding="utf-8")
    plan = plan_inputs(discover(raw), Manifest())
    with open(path, "a", encoding="utf-8") as f:  # appended between planning and reading
        f.write("".join(json.dumps({"text": f"late {i}"}) + "\n" for i in range(3)))
    got = [i for src in plan.process for i in read_source(src, ReadConfig())]
    assert [i.text for i in got] == [f"record {i}" for i in range(5)]
    assert {i.source_sha256 for i in got} == {plan.sha256["grow.jsonl"]}


@pytest.mark.parametrize("name", ["t.txt", "r.jsonl", "p.parquet"])
def test_a_file_rewritten_after_planning_is_changed_during_run(tmp_path, name):
    raw = tmp_path / "raw"
    raw.mkdir()

    def write(word: str) -> None:
        if name.endswith(".parquet"):
            pq.write_table(pa.table({"text": [f"{word} one", f"{word} two"]}), raw / name)
        elif name.endswith(".jsonl"):
            (raw / name).write_text(json.dumps({"text": f"{word} one"}) + "\n", encoding="utf-8")
        else:
            (raw / name).write_text(f"{word} one\n", encoding="utf-8")

    write("first")
    plan = plan_inputs(discover(raw), Manifest())
    write("other")  # same size, other bytes
    got = [i for src in plan.process for i in read_source(src, ReadConfig())]
    assert "changed_during_run" in reasons(got)


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("override, words", [
    ('boilerplate.rule_packs=["../rules/en"]', "unknown rule pack"),
    ('boilerplate.rule_packs=["/etc/passwd"]', "unknown rule pack"),
    ("boilerplate.classifier=false", None),
    ('run.dask_address="tcp://h:1"', "run.task_runner"),
    ("read.max_record_mb=0", "read.max_record_mb"),
    ('read.oversize="truncate"', "read.oversize"),
    ('read.follow_symlinks="yes"', "read.follow_symlinks"),
    ('read.text_field=""', "read.text_field"),
])
def test_bad_option_combinations_fail_at_load(override, words):
    if words is None:
        load_config(None, [override])
        with pytest.raises(ConfigError, match="classifier_threshold"):
            load_config(None, [override, "boilerplate.classifier_threshold=0.5"])
        return
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert words in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------ out of memory inside a shard


def test_memory_errors_in_a_shard_become_rejects_of_that_file_or_record(tmp_path, monkeypatch):
    from corpusclean.tasks.corpus import shard
    from corpusclean.tasks.config import Config
    from corpusclean.tasks.stages.repair import RepairStage
    from corpusclean.tasks.corpus.shard import clean_shard, open_staged

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("A first ordinary article about the harbour.\n", encoding="utf-8")
    (raw / "b.txt").write_text("EXPLODE when read.\n", encoding="utf-8")
    lines = ["An ordinary record about the market.", "BOOM when cleaned.", "Another ordinary record."]
    (raw / "c.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    real_read, real_call = shard.read_source, RepairStage.__call__

    def read_source(src, config, skipped=None):  # a generator, like the real one: the error comes while iterating
        if src.rel == "b.txt":
            raise MemoryError
        yield from real_read(src, config, skipped)

    def repair(self, batch):
        if any("BOOM" in d.text for d in batch.docs):
            raise MemoryError
        return real_call(self, batch)

    monkeypatch.setattr(shard, "read_source", read_source)
    monkeypatch.setattr(RepairStage, "__call__", repair)
    plan = plan_inputs(discover(raw), Manifest())
    result = clean_shard(0, plan.process, Config(), tmp_path / "staging")
    docs = open_staged(result.documents_path).read_all().select(["source_path", "record_index"]).to_pylist()
    rejects = open_staged(result.rejects_path).read_all().select(["source_path", "record_index", "reason"]).to_pylist()
    assert sorted((d["source_path"], d["record_index"]) for d in docs) == [("a.txt", 0), ("c.jsonl", 0), ("c.jsonl", 2)]
    assert sorted((r["source_path"], r["record_index"], r["reason"]) for r in rejects) == [
        ("b.txt", None, "too_large"), ("c.jsonl", 1, "too_large")]
