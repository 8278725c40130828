"""End to end: a real Prefect server on loopback, `corpusclean serve`, a triggered run, completed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from corpusclean.tasks.corpus import corpus_state

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """One real server for the module's tests (starting one takes 15-30 s): each test reads back only
    the flow runs and artifacts of its own run."""
    tmp_path = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )  # the UI stays on: the dashboard must be reachable on a real server
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            pytest.fail(f"prefect server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    else:
        _stop(server)
        pytest.fail("prefect server did not become healthy in 120 s")
    yield dict(env, PREFECT_API_URL=api, UI_URL=f"http://127.0.0.1:{port}")
    _stop(server)
    log.close()


def test_served_deployment_runs_on_request(prefect_server, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    out = tmp_path / "clean"
    env = dict(prefect_server, PREFECT_RUNNER_POLL_FREQUENCY="2")
    serve_log = open(tmp_path / "serve.log", "w")
    serve = subprocess.Popen(
        [str(BIN / "corpusclean"), "serve", "--cron", "0 3 * * *", "--name", "e2e", "--raw", str(raw), "--out", str(out)],
        cwd=REPO, env=env, stdout=serve_log, stderr=subprocess.STDOUT,
    )
    try:
        run = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the deployment appears once serve has registered it
            run = subprocess.run(
                [str(BIN / "prefect"), "deployment", "run", "clean-corpus/e2e", "--watch", "--watch-timeout", "240"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
            )
            if run.returncode == 0 or "not found" not in (run.stdout + run.stderr).lower():
                break
            time.sleep(2)
        assert run is not None and run.returncode == 0, (run.stdout + run.stderr)[-3000:] + (tmp_path / "serve.log").read_text()[-3000:]
        assert "Completed" in run.stdout + run.stderr
        paragraphs = corpus_state.read_table(out, "paragraphs")
        assert paragraphs.num_rows > 50
        assert (out / "report.json").is_file()
    finally:
        _stop(serve)  # serve first: stopping the server first makes serve hang and print a traceback
        serve_log.close()


def test_a_run_shows_in_prefect_logs_artifacts_result_and_dashboard(prefect_server, tmp_path):
    """The command against a real server: INFO logs through `prefect flow-run logs`, the report and
    its tables as artifacts, the progress artifact at 100, the summary as the flow's result."""
    raw = tmp_path / "raw"
    shutil.copytree(REPO / "data" / "raw", raw)
    env = dict(prefect_server)
    env.pop("PREFECT_LOGGING_LEVEL")  # the command's own default: INFO to the API, nothing on the console
    run = subprocess.run([sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(tmp_path / "clean"),
                          "--task-runner", "threads"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == f"charts: {tmp_path / 'clean' / 'report.html'}"
    api = prefect_server["PREFECT_API_URL"]
    # the command's run: the only one not started from a deployment (the served test's run is)
    runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 5, "flow_runs": {"deployment_id": {"is_null_": True}}},
                      timeout=30).json()
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"]
    flow_run_id = runs[0]["id"]

    def prefect(*args: str) -> str:
        done = subprocess.run([str(BIN / "prefect"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    logs = prefect("flow-run", "logs", flow_run_id)
    n_files = sum(1 for p in raw.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert f"{n_files} input files: {n_files} new" in logs and "committed run" in logs, logs
    every = httpx.post(f"{api}/artifacts/filter", json={}, timeout=30).json()
    # this run's artifacts (a served run may have made the same keys before, on the same server)
    artifacts = {a["key"]: a for a in every if a["flow_run_id"] == flow_run_id}
    assert all(a["flow_run_id"] for a in every)  # every artifact belongs to a flow run
    assert {"corpusclean-report", "corpusclean-counts", "corpusclean-boilerplate-reasons",
            "corpusclean-languages", "corpusclean-progress"} <= set(artifacts)
    assert artifacts["corpusclean-report"]["type"] == "markdown" and "## Counts" in artifacts["corpusclean-report"]["data"]
    assert artifacts["corpusclean-counts"]["type"] == "table"
    assert artifacts["corpusclean-progress"]["type"] == "progress" and artifacts["corpusclean-progress"]["data"] == 100
    # The result: the report's summary, persisted as JSON (read back as a Prefect client would).
    code = ("import json\n"
            "from prefect.client.orchestration import get_client\n"
            "with get_client(sync_client=True) as c:\n"
            f"    state = c.read_flow_run('{flow_run_id}').state\n"
            "print(json.dumps(state.result()))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    report = json.loads((tmp_path / "clean" / "report.json").read_text(encoding="utf-8"))
    assert summary["counts"] == report["counts"] and summary["inputs"]["new"] == n_files and "config" not in summary
    # The dashboard of a real server (prefect.toml no longer turns it off).
    page = httpx.get(prefect_server["UI_URL"] + "/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
