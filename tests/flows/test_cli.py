"""The corpusclean command as a user meets it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpusclean.tasks.corpus import corpus_state
from typer.testing import CliRunner

from corpusclean.flows.cli import app

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
    """The installed entry point, in a subprocess, as `make run` calls it: summary, no traceback, no telemetry error.
    A new, empty Prefect home, as a user's first run (the other commands' tests get a migrated copy: prefect_home)."""
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"))
    cmd = [sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(tmp_path / "clean")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    combined = proc.stdout + proc.stderr
    assert "Traceback" not in combined and "telemetry" not in combined.lower()
    for label in ("documents", "kept", "boilerplate", "duplicate", "rejects", "languages", "output"):
        assert label in proc.stdout
    assert "1 WARC record skipped (warcinfo 1)" in proc.stdout  # the sample WET file's warcinfo record
    paragraphs = corpus_state.read_table(tmp_path / "clean", "paragraphs")
    assert paragraphs.num_rows > 50
    assert 0 < sum(paragraphs.column("is_duplicate").to_pylist()) < paragraphs.num_rows


@pytest.mark.slow
def test_a_real_run_of_mostly_rejected_files_exits_4(tmp_path, prefect_home):
    """The installed command, not CliRunner: the fast exit after a run (``main``) used to turn the
    committed-but-mostly-rejected status 4 into 0."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.txt").write_text(SAMPLE, encoding="utf-8")
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        (raw / name).write_bytes(b"%PDF-1.4 not text")
    env = dict(os.environ, PREFECT_HOME=str(prefect_home))
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(tmp_path / "clean"),
           "--task-runner", "threads"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 4, proc.stderr
    assert "warning: 3 of 4 files read by this run gave no document (unsupported_format 3)" in proc.stderr
    assert len(corpus_state.load_manifest(tmp_path / "clean").runs) == 1  # committed all the same
    (raw / "d.pdf").write_bytes(b"%PDF-1.4 not text either")
    quiet = subprocess.run([*cmd, "-q"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 4 and quiet.stdout == "", quiet.stderr
    # --quiet: no progress, no summary, but the one line that says why the status is not 0
    assert quiet.stderr.strip().splitlines() == [
        "warning: all files read by this run gave no document (unsupported_format 1): see the rejects table "
        "(`corpusclean files rejects`)"]


@pytest.mark.slow
def test_of_two_runs_started_together_one_is_refused_in_exactly_one_line(tmp_path, prefect_home):
    """Both start at once on one output folder: the lock is taken before Prefect starts, so the
    second is refused at once (exit 75) with one line, and never reaches Prefect."""
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    env = dict(os.environ, PREFECT_HOME=str(prefect_home))
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(tmp_path / "clean"),
           "--task-runner", "threads", "--verbose"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = sorted(((p.wait(timeout=300), *p.communicate()) for p in procs), key=lambda r: r[0])
    (ok, ok_out, ok_err), (busy, busy_out, busy_err) = results
    assert ok == 0, ok_err
    assert busy == 75, busy_err
    assert busy_out == "" and len(busy_err.strip().splitlines()) == 1, busy_err
    assert busy_err.startswith("error: another run (pid ") and "is writing to" in busy_err
    assert "Error logging to API" not in ok_err + busy_err


def test_a_busy_output_folder_is_refused_at_once(tmp_path):
    from corpusclean.tasks.corpus.runs import lock_output, unlock_output

    (tmp_path / "raw").mkdir()
    fd = lock_output(tmp_path / "out")
    try:
        result = runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out")])
        text = one_line_error(result, code=75)
        assert "is writing to" in text and "--wait" in text
    finally:
        unlock_output(fd)


def test_status_lists_the_committed_runs(tmp_path):
    from corpusclean.tasks.corpus.corpus_state import Manifest, commit_manifest

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
    missing = runner.invoke(app, ["files", "paragraphs", "--out", str(tmp_path / "missing")])
    assert missing.exit_code == 2 and "output folder not found" in one_line_error(missing)


# ------------------------------------------------------------------ issue 11, item 7: small things

SAMPLE = ("Le conseil municipal a voté lundi soir le budget de la nouvelle médiathèque, "
          "qui ouvrira ses portes au printemps prochain dans l'ancienne halle aux grains.\n")


def _cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command as a shell pipeline sees it: stdout and stderr are pipes, not a terminal."""
    cmd = [sys.executable, "-m", "corpusclean", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def test_config_through_a_pipe_is_valid_toml_that_loads_back(tmp_path):
    import tomllib

    from corpusclean.tasks.config import load_config

    proc = _cli("config", "--set", "dedup.threshold=0.85")
    assert proc.returncode == 0, proc.stderr
    tomllib.loads(proc.stdout)  # long comments are no longer wrapped at 80 columns
    saved = tmp_path / "my.toml"
    saved.write_text(proc.stdout, encoding="utf-8")
    assert load_config(saved) == load_config(None, ["dedup.threshold=0.85"])
    again = _cli("config", "--config", str(saved))
    assert again.returncode == 0 and again.stdout == proc.stdout
    # `run --config my.toml` gets past the config (it stops at the missing raw folder, before Prefect).
    run = _cli("run", "--config", str(saved), "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert run.returncode == 2 and "raw folder not found" in run.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["config"], ["schema"], ["explain"], ["status"], ["files"], ["serve"]])
def test_h_is_help_on_every_command(command):
    short, long = runner.invoke(app, [*command, "-h"]), runner.invoke(app, [*command, "--help"])
    assert short.exit_code == 0, short.output
    assert "Usage:" in short.output and short.output == long.output


@pytest.mark.parametrize(("args", "says"), [
    (["run", "--workers", "0"], "Invalid value for '--workers'"),
    (["run", "--bogus"], "No such option: --bogus"),
    (["explain", "x.txt", "--record", "-1"], "Invalid value for '--record'"),
    (["files"], "Missing argument 'table'"),
    (["bogus"], "No such command 'bogus'"),
])
def test_usage_errors_are_one_line_too(args, says):
    """typer drew these as a usage line, a hint and a boxed panel."""
    text = one_line_error(runner.invoke(app, args))
    assert says in text and "--help`)" in text


def test_dask_runner_without_its_extra_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text(SAMPLE, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "prefect_dask", None)  # `import prefect_dask` now fails
    result = runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o"),
                                 "--task-runner", "dask"])
    text = one_line_error(result, code=2)
    assert "prefect-dask" in text and "corpusclean[dask]" in text


def test_an_unreachable_dask_scheduler_is_one_line(tmp_path):
    pytest.importorskip("prefect_dask")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text(SAMPLE, encoding="utf-8")
    result = runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o"),
                                 "--task-runner", "dask", "--dask-address", "tcp://127.0.0.1:9"])
    text = one_line_error(result, code=69)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in text
    assert not corpus_state.load_manifest(tmp_path / "o").runs


def test_a_raw_folder_without_usable_input_is_refused_and_nothing_committed(tmp_path):
    raw = tmp_path / "raw"
    (raw / ".git").mkdir(parents=True)
    (raw / ".git" / "notes.txt").write_text(SAMPLE, encoding="utf-8")  # hidden folder: skipped
    (raw / ".draft.txt").write_text(SAMPLE, encoding="utf-8")  # hidden file: skipped
    (raw / "empty").mkdir()
    (raw / "scan.pdf").write_bytes(b"%PDF-1.4")  # not a supported format
    result = runner.invoke(app, ["run", "--raw", str(raw), "--out", str(tmp_path / "o")])
    text = one_line_error(result, code=3)
    assert "no usable input files found" in text and "no run committed" in text
    assert not corpus_state.load_manifest(tmp_path / "o").runs


@pytest.mark.slow
def test_verbose_run_ends_without_api_log_errors_and_a_second_run_says_nothing_new(tmp_path, prefect_home):
    """Prefect's temporary API is started and stopped by the command itself (no PREFECT_API_URL).

    On the sample corpus the last batch of run logs was still queued when the server stopped
    (a one-file folder ends too soon after the previous batch to show it).
    """
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    n_files = sum(1 for _ in raw.rglob("*") if _.is_file())
    env = dict(os.environ, PREFECT_HOME=str(prefect_home))
    # In-process CLI tests set the logging ones in this process's environment.
    for name in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"):
        env.pop(name, None)
    args = ("run", "--raw", str(raw), "--out", str(tmp_path / "clean"), "--task-runner", "threads")
    first = _cli(*args, "--verbose", env=env)
    assert first.returncode == 0, first.stderr
    assert "Finished in state Completed" in first.stderr  # --verbose shows Prefect's logs...
    assert "Error logging to API" not in first.stderr  # ...and none fails to reach the stopped API
    assert "All connection attempts failed" not in first.stderr
    second = _cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines() == [
        f"nothing new in {raw}: all {n_files} input files are already in the corpus ({tmp_path / 'clean'}); nothing cleaned"]
    # Answered before Prefect starts: no flow run, nothing committed, not even an empty run.
    assert len(corpus_state.load_manifest(tmp_path / "clean").runs) == 1
    assert "starting the Prefect API" not in second.stderr


@pytest.mark.slow
def test_a_run_that_fails_inside_prefect_is_one_line(tmp_path, prefect_home):
    """A 'scheduler' on loopback that hangs up on every connection: the run itself fails."""
    import socket
    import threading

    pytest.importorskip("prefect_dask")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text(SAMPLE, encoding="utf-8")
    env = dict(os.environ, PREFECT_HOME=str(prefect_home), DASK_DISTRIBUTED__COMMS__TIMEOUTS__CONNECT="3s")
    env.pop("PREFECT_API_URL", None)
    def hang_up(listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            conn.close()

    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        threading.Thread(target=hang_up, args=(mute,), daemon=True).start()
        address = "tcp://127.0.0.1:%d" % mute.getsockname()[1]
        proc = _cli("run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o"),
                    "--task-runner", "dask", "--dask-address", address, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    # Progress lines (stderr is not a terminal), then the error: one line, the last, no traceback.
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: run failed:") and "Traceback" not in proc.stderr, proc.stderr
    assert [line for line in lines if not line[:8].replace(":", "").isdigit()] == lines[-1:], proc.stderr
    assert "--verbose" in proc.stderr and proc.stdout == ""
    assert not corpus_state.load_manifest(tmp_path / "o").runs


def _fake_report(tmp_path, files: int, rejected: int) -> dict:
    return {"run_id": "r1", "out_dir": str(tmp_path / "o"), "wall_seconds": 1.0, "dedup": {},
            "inputs": {"files": files, "bytes": 10, "new": files, "changed": 0, "unchanged": 0, "removed": 0,
                       "retried": 0, "rejected_files": rejected,
                       "rejected_file_reasons": {"unsupported_format": rejected} if rejected else {}},
            "counts": {"documents": files - rejected, "paragraphs": 1, "kept": 1, "boilerplate": 0, "duplicate": 0,
                       "rejects": rejected},
            "reject_reasons": {"unsupported_format": rejected} if rejected else {}, "languages": {}}


@pytest.mark.parametrize(("files", "rejected", "code"), [(7, 6, 4), (3, 3, 4), (4, 2, 0), (5, 1, 0), (5, 0, 0)])
def test_mostly_rejected_files_are_one_warning_line_and_exit_4(tmp_path, monkeypatch, files, rejected, code):
    """The summary's warning and the exit status, from the run's report (the flow itself is faked here;
    tests/flows/test_formats_flow.py checks the report's counts on real runs)."""
    import contextlib

    import corpusclean.flows.api
    import corpusclean.flows.clean_corpus
    from corpusclean import flows

    calls = {}

    class FakeFlow:
        def with_options(self, **_):
            return self

        def __call__(self, **kwargs):
            calls.update(kwargs)
            return _fake_report(tmp_path, files, rejected)

    monkeypatch.setattr(flows.api, "run_api", contextlib.nullcontext)
    monkeypatch.setattr(flows.clean_corpus, "clean_corpus", FakeFlow())
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text(SAMPLE, encoding="utf-8")
    result = runner.invoke(app, ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o"), "--retry-rejects"])
    assert result.exit_code == code, result.output
    assert calls["retry_rejects"] is True
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    if rejected:
        share = "all" if rejected == files else f"{rejected} of {files}"
        assert warnings == [f"warning: {share} files read by this run gave no document (unsupported_format "
                            f"{rejected}): see the rejects table (`corpusclean files rejects`)"]
    else:
        assert not warnings


def test_a_file_that_leaves_a_worker_idle_is_one_warning_line(tmp_path, monkeypatch):
    """One file bigger than ``run.shard_mb`` for two workers: one shard, one core, and the user is
    told why after the summary (the flow itself is faked, as above)."""
    import contextlib

    import corpusclean.flows.api
    import corpusclean.flows.clean_corpus
    from corpusclean import flows

    class FakeFlow:
        def with_options(self, **_):
            return self

        def __call__(self, **kwargs):
            return _fake_report(tmp_path, 1, 0)

    monkeypatch.setattr(flows.api, "run_api", contextlib.nullcontext)
    monkeypatch.setattr(flows.clean_corpus, "clean_corpus", FakeFlow())
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "page.txt").write_text(SAMPLE, encoding="utf-8")
    args = ["run", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o"), "--workers", "2"]
    result = runner.invoke(app, [*args, "--set", "run.shard_mb=0.0001"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    size = len(SAMPLE.encode("utf-8")) / 1e6
    assert warnings == [f"warning: 1 shard for 2 workers: page.txt ({size:,.1f} MB) is cleaned by one core, as a "
                        "file is never split; split files larger than run.shard_mb (0.0001 MB) to use every worker"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o2")])  # the default 16 MB: nothing to say
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if line.startswith("warning:")]


def test_a_raw_folder_of_unknown_extensions_with_readable_content_is_input(tmp_path):
    from corpusclean.tasks.corpus.runs import NoInput, check_inputs

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "scan.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(NoInput):
        check_inputs(raw)
    (raw / "export.dat").write_text('{"text": "a record"}\n', encoding="utf-8")
    check_inputs(raw)  # sniffed: JSON lines
