"""Faults end in one line and a safe state: disk full, an unwritable output, a dead worker;
and a hostile raw folder through the real flow."""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from typer.testing import CliRunner

from corpusclean.flows.cli import app
from corpusclean.flows.clean_corpus import clean_corpus as deployed_flow
from corpusclean.tasks.corpus import corpus_state
from corpusclean.tasks.plumbing.faults import describe_failure

clean_corpus = deployed_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
REPO = Path(__file__).resolve().parents[2]
TEXT = ("The harbour master said on Monday that the new breakwater would be finished before the winter storms, "
        "two years after the old one was washed away.\n")


# ------------------------------------------------------------------ the one line (no Prefect)


def test_faults_are_described_with_path_cause_and_status(tmp_path):
    arrow_style = OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
    line, code = describe_failure(arrow_style, tmp_path)
    assert code == 74 and str(tmp_path) in line and "disk full" in line and "nothing committed" in line
    line, code = describe_failure(OSError(errno.EROFS, os.strerror(errno.EROFS), "/out/x"), tmp_path)
    assert code == 73 and "/out/x" in line and "Read-only" in line
    wrapped = RuntimeError("task failed")
    wrapped.__cause__ = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/out/y")
    assert describe_failure(wrapped, tmp_path)[1] == 73
    line, code = describe_failure(BrokenProcessPool("A process in the process pool was terminated abruptly"), tmp_path)
    assert code == 1 and "worker process died" in line
    assert describe_failure(ValueError("a bug"), tmp_path) is None


def test_an_output_folder_under_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "file").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "file" / "out")])
    assert result.exit_code == 73, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text
    assert str(tmp_path / "file" / "out") in text and "Not a directory" in text


# ------------------------------------------------------------------ real runs

def _cli_run(raw: Path, out: Path, home: Path, fault: str | None = None, runner: str = "threads", *extra: str):
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_API_URL=PREFECT_API_URL.value())
    env.pop("CORPUSCLEAN_FAULT", None)
    if fault:
        env["CORPUSCLEAN_FAULT"] = fault
    cmd = [sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(out), "--task-runner", runner, "-q", *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, start_new_session=True)


def _corpus(out: Path) -> dict:
    snap = corpus_state.snapshot(out)
    return {t: snap.read(t).to_pylist() for t in ("documents", "paragraphs", "rejects")}


def _raw(tmp_path: Path, n: int, name: str = "raw") -> Path:
    raw = tmp_path / name
    raw.mkdir(exist_ok=True)
    for i in range(n):
        (raw / f"a{i}.jsonl").write_text(json.dumps({"text": f"Story {i}. {TEXT}"}) + "\n", encoding="utf-8")
    return raw


def _assert_one_line(proc, code: int, *words: str) -> str:
    assert proc.returncode == code, proc.stderr[-3000:]
    text = proc.stderr.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid_write:enospc"])  # clean_shard:enospc (staging) behaves the same
def test_disk_full_is_one_line_and_the_corpus_is_untouched(point, tmp_path, prefect_api):
    raw, out = _raw(tmp_path, 2), tmp_path / "out"
    clean_corpus(raw_dir=raw, out_dir=out)  # the runs around the faulty one in-process: the command's line is the point
    before = _corpus(out)
    _raw(tmp_path, 4)
    proc = _cli_run(raw, out, tmp_path / "home", fault=point)
    _assert_one_line(proc, 74, "No space left on device", str(out))
    assert _corpus(out) == before
    assert not [p.name for p in out.iterdir() if p.name.startswith(".staging")]
    clean_corpus(raw_dir=raw, out_dir=out)  # the cause gone, the next run commits
    assert len(_corpus(out)["documents"]) == 4


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a small tmpfs needs root")
def test_a_real_full_filesystem(tmp_path, prefect_api):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        raw, out = _raw(tmp_path, 2), small / "out"
        assert _cli_run(raw, out, tmp_path / "home").returncode == 0
        before = _corpus(out)
        big = "\n".join(json.dumps({"text": f"Record {i}: {os.urandom(300).hex()}"}) for i in range(3000))
        (raw / "big.jsonl").write_text(big, encoding="utf-8")  # ~2 MB of incompressible text: more than fits
        proc = _cli_run(raw, out, tmp_path / "home")
        _assert_one_line(proc, 74, "No space left on device")
        assert _corpus(out) == before
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        assert _cli_run(raw, out, tmp_path / "home").returncode == 0
        assert len(_corpus(out)["documents"]) == 3002
    finally:
        subprocess.run(["umount", "-l", str(small)])


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_in_one_line(tmp_path, prefect_api):
    raw, out = _raw(tmp_path, 2), tmp_path / "out"
    # one file per shard: a one-shard run would use threads (the killed "worker" would be the command)
    proc = _cli_run(raw, out, tmp_path / "home", "clean_shard:kill_worker", "processes", "--set", "run.shard_mb=0.0001")
    _assert_one_line(proc, 1, "worker process died")
    assert not corpus_state.load_manifest(out).runs
    assert not [p.name for p in out.iterdir() if p.name.startswith(".staging")]


@pytest.mark.slow
def test_a_hostile_raw_folder_through_the_real_flow(tmp_path, prefect_api):
    outside = tmp_path / "outside.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    raw, out = tmp_path / "raw", tmp_path / "out"
    (raw / "sub").mkdir(parents=True)
    (raw / "ok.txt").write_text(TEXT, encoding="utf-8")
    (raw / "passwd.txt").symlink_to(outside)
    os.mkfifo(raw / "pipe.jsonl")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(raw / "sub" / "sock.txt"))
    (raw / os.fsdecode(b"caf\xe9.txt")).write_text("Bytes name. " + TEXT, encoding="utf-8")
    (raw / "caf\\xe9.txt").write_text("Literal name. " + TEXT, encoding="utf-8")
    (raw / "big.jsonl").write_text(json.dumps({"text": "x " * 1_500_000}) + "\n" + json.dumps({"text": TEXT}) + "\n",
                                   encoding="utf-8")  # one 3 MB record
    (raw / "bomb.jsonl.gz").write_bytes(gzip.compress(b'{"text": "' + b"a" * 100_000_000))
    (raw / "nul.txt").write_bytes(b"\x00" * 5000)
    (raw / "trunc.jsonl.gz").write_bytes(gzip.compress((json.dumps({"text": TEXT}) + "\n").encode() * 50)[:200])
    try:
        overrides = ["read.max_record_mb=1"]
        clean_corpus(raw_dir=raw, out_dir=out, overrides=overrides)
        corpus = _corpus(out)
        rejects = {(r["source_path"], r["record_index"]): r["reason"] for r in corpus["rejects"]}
        docs = {(d["source_path"], d["record_index"]) for d in corpus["documents"]}
        assert rejects[("passwd.txt", None)] == "symlink"
        assert rejects[("pipe.jsonl", None)] == "not_regular" and rejects[("sub/sock.txt", None)] == "not_regular"
        assert rejects[("big.jsonl", 0)] == "too_large" and ("big.jsonl", 1) in docs
        assert rejects[("bomb.jsonl.gz", None)] == "decompression_limit"
        assert rejects[("nul.txt", None)] == "binary"
        assert ("ok.txt", 0) in docs and ("caf\\xe9.txt", 0) in docs and ("caf\\\\xe9.txt", 0) in docs
        assert not any("root:x" in d["text"] for d in corpus["documents"])
        n_docs = len(corpus["documents"])
        clean_corpus(raw_dir=raw, out_dir=out, overrides=overrides)  # nothing changed: nothing reported as changed, nothing lost
        last = corpus_state.load_manifest(out).runs[-1]["inputs"]
        assert last["changed"] == 0 and last["new"] == 0  # links, FIFO, socket: the same rejects stand
        assert len(_corpus(out)["documents"]) == n_docs
        assert _corpus(out)["rejects"] == corpus["rejects"]
    finally:
        sock.close()


@pytest.mark.slow
def test_a_file_appended_during_the_run_keeps_its_provenance(tmp_path, prefect_api, monkeypatch):
    """Appended right after planning (the worst moment): rows, manifest and cleaned bytes agree."""
    import hashlib

    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    grow = raw / "grow.jsonl"
    first = "".join(json.dumps({"text": f"Record {i}. {TEXT}"}) + "\n" for i in range(40))
    grow.write_text(first, encoding="utf-8")
    real_plan = corpus_state.plan_inputs

    def plan_then_append(files, manifest, *args):
        plan = real_plan(files, manifest, *args)
        with open(grow, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps({"text": f"Late {i}. {TEXT}"}) + "\n" for i in range(30)))
        return plan

    monkeypatch.setattr(corpus_state, "plan_inputs", plan_then_append)
    clean_corpus(raw_dir=raw, out_dir=out)
    monkeypatch.setattr(corpus_state, "plan_inputs", real_plan)
    planned = hashlib.sha256(first.encode()).hexdigest()
    docs = _corpus(out)["documents"]
    assert {d["source_sha256"] for d in docs} == {planned} and len(docs) == 40
    assert corpus_state.load_manifest(out).sources["grow.jsonl"]["sha256"] == planned
    clean_corpus(raw_dir=raw, out_dir=out)  # the next run sees the appended file as changed: all 70 records
    docs = _corpus(out)["documents"]
    assert len(docs) == 70 and {d["source_sha256"] for d in docs} == {hashlib.sha256(grow.read_bytes()).hexdigest()}
