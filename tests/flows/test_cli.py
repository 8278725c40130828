"""The corpusclean command as a user meets it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import corpus_state
from typer.testing import CliRunner

from flows.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("error:")
    return text


def test_help_explains_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("run", "config", "schema"):
        assert word in result.output
    result = runner.invoke(app, ["run", "--help"])
    assert result.exit_code == 0 and "--raw" in result.output and "--set" in result.output


def test_missing_raw_folder_is_one_line(tmp_path):
    text = one_line_error(runner.invoke(app, ["run", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]))
    assert "raw folder not found" in text


def test_output_inside_raw_is_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    text = one_line_error(runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "raw" / "clean")]))
    assert "inside the raw folder" in text


def test_bad_config_is_one_line(tmp_path):
    (tmp_path / "raw").mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dedup]\nthreshold = 7\n")
    text = one_line_error(runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--config", str(cfg)]))
    assert "dedup.threshold" in text
    text = one_line_error(runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--set", "dedup.nope=1"]))
    assert "unknown option" in text


def test_config_command_prints_every_option(tmp_path):
    result = runner.invoke(app, ["config", "--set", "dedup.threshold=0.9"])
    assert result.exit_code == 0
    assert "threshold = 0.9" in result.output and "[boilerplate]" in result.output


def test_schema_command_lists_the_contract():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    for column in ("paragraph_id", "duplicate_of", "source_encoding", "reason"):
        assert column in result.output


@pytest.mark.slow
def test_real_command_on_the_sample_corpus(tmp_path):
    """The installed entry point, in a subprocess, as `make run` calls it: summary, no traceback, no telemetry error."""
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"))
    cmd = [sys.executable, "-m", "flows.cli", "run", "--raw", str(raw), "--out", str(tmp_path / "clean")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    combined = proc.stdout + proc.stderr
    assert "Traceback" not in combined and "telemetry" not in combined.lower()
    for label in ("documents", "kept", "boilerplate", "duplicate", "rejects", "languages", "output"):
        assert label in proc.stdout
    paragraphs = corpus_state.read_table(tmp_path / "clean", "paragraphs")
    assert paragraphs.num_rows > 50
    assert 0 < sum(paragraphs.column("is_duplicate").to_pylist()) < paragraphs.num_rows


def test_a_busy_output_folder_is_refused_at_once(tmp_path):
    from tasks.runs import lock_output, unlock_output

    (tmp_path / "raw").mkdir()
    fd = lock_output(tmp_path / "out")
    try:
        result = runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out")])
        text = one_line_error(result, code=75)
        assert "is writing to" in text and "--wait" in text
    finally:
        unlock_output(fd)


def test_status_lists_the_committed_runs(tmp_path):
    from tasks.corpus_state import Manifest, commit_manifest

    out = tmp_path / "clean"
    result = runner.invoke(app, ["status", "--out", str(tmp_path / "missing")])
    assert "output folder not found" in one_line_error(result)
    out.mkdir()
    assert "no run committed yet" in runner.invoke(app, ["status", "--out", str(out)]).output
    run = {"run_id": "20261121T030000Z-abcdef", "finished_at": "2026-11-21T03:00:09+00:00", "report": None,
           "inputs": {"new": 3, "changed": 1, "unchanged": 7, "removed": 0},
           "counts": {"documents": 4, "kept": 21, "boilerplate": 9, "duplicate": 2, "rejects": 1}, "rewritten_parts": 1}
    commit_manifest(out, Manifest(version=1, committed_at="2026-11-21T03:00:09+00:00", runs=[run]))
    text = runner.invoke(app, ["status", "--out", str(out)], terminal_width=120).output
    row = next(line for line in text.splitlines() if "20261121T030000Z-abcdef" in line)
    assert row.split()[1:] == ["3", "1", "7", "4", "21", "9", "2", "1", "1"]
    assert '"run_id": "20261121T030000Z-abcdef"' in runner.invoke(app, ["status", "--out", str(out), "--json"]).output
    assert "unknown table" in one_line_error(runner.invoke(app, ["files", "tables", "--out", str(out)]))
