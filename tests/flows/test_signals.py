"""Stopping a real run: Ctrl-C, SIGTERM and kill -9 on the command, with real worker processes and
the temporary API server. Checked on the process tree (/proc): nothing of the run may outlive it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpusclean.flows.lifecycle import _alive, descendants
from corpusclean.tasks.corpus import corpus_state

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WORDS = ("council budget school repair debate opposition schedule spring city centre lesson builder site "
         "library winter hours committee report street museum river bridge market train station").split()


def make_corpus(raw: Path, files: int = 4, kb: int = 700) -> None:
    """Plain prose in several files: enough shards (with shard_mb=0.5) to keep two workers busy."""
    rnd = random.Random(7)
    raw.mkdir(parents=True)
    for f in range(files):
        paragraphs, size = [], 0
        while size < kb * 1000:
            p = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(20, 60))).capitalize() + "."
            paragraphs.append(p)
            size += len(p) + 2
        (raw / f"doc-{f:02d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


def start(raw: Path, out: Path, home: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PREFECT_HOME=str(home))
    for name in ("PREFECT_API_URL", "PREFECT_LOGGING_LEVEL"):
        env.pop(name, None)  # the command's own temporary server, as a user's first run
    cmd = [sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(out),
           "--task-runner", "processes", "--workers", "2", "--set", "run.shard_mb=0.5", *extra]
    # A session of its own, like a terminal's job: a Ctrl-C goes to its whole process group.
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for_workers(proc: subprocess.Popen, out: Path, timeout: float = 150) -> list[int]:
    """The run's process tree once the server runs and both pool workers are cleaning shards
    (each shard's staged files exist from its first moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        tree = descendants(proc.pid)
        commands = [_cmdline(pid) for pid in tree]
        shards = list(out.glob(".staging-*/shard-*.paragraphs.arrow"))
        if sum("spawn_main" in c for c in commands) >= 2 and any("uvicorn" in c for c in commands) and len(shards) >= 2:
            return tree
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no worker processes after {timeout} s: {proc.communicate()}")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def assert_gone(pids: list[int], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if _alive(pid)]
    assert not alive, [(pid, _cmdline(pid)) for pid in alive]


def assert_no_staging(out: Path) -> None:
    left = {p.name: sorted(q.name for q in p.iterdir()) for p in out.iterdir() if p.name.startswith(".staging")}
    assert left == {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("signals") / "raw"
    make_corpus(raw)
    return raw


@pytest.mark.parametrize("how, code, name", [("sigterm", 143, "SIGTERM"), ("ctrl-c", 130, "Ctrl-C")])
def test_a_signal_stops_a_real_run_within_5_s_in_one_line_and_leaves_no_process(corpus, tmp_path, prefect_home, how,
                                                                                code, name):
    out = tmp_path / "clean"
    proc = start(corpus, out, prefect_home)
    tree = wait_for_workers(proc, out)
    sent = time.monotonic()
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:  # what a terminal does on Ctrl-C: SIGINT to every process of the foreground job
        os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == code, stderr
    assert took <= 5.0, f"stopped after {took:.1f} s"
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == f"stopped ({name}); nothing committed", stderr
    assert [line for line in stderr.splitlines() if "stopped" in line] == [f"stopped ({name}); nothing committed"]
    assert "corpusclean: reading and cleaning:" in stderr  # plain progress lines: stderr is not a terminal
    assert stdout == ""
    assert_gone(tree)
    assert not corpus_state.load_manifest(out).runs
    assert_no_staging(out)


def test_a_killed_command_leaves_no_process_and_the_next_run_proceeds(corpus, tmp_path, prefect_home):
    out, home = tmp_path / "clean", prefect_home
    proc = start(corpus, out, home)
    tree = wait_for_workers(proc, out)
    proc.kill()  # kill -9: no handler runs; the children must notice by themselves
    proc.communicate(timeout=30)
    assert_gone(tree, within=3.0)
    assert not corpus_state.load_manifest(out).runs
    # The next run takes the lock (released by the kernel), clears the scratch and commits.
    again = start(corpus, out, home, "-q")
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert len(corpus_state.load_manifest(out).runs) == 1
    assert_no_staging(out)


@pytest.mark.parametrize("stop", ["sigterm", "kill"])
def test_a_dask_local_cluster_ends_with_its_run(corpus, tmp_path, prefect_home, stop):
    pytest.importorskip("prefect_dask")
    out = tmp_path / "clean"
    proc = start(corpus, out, prefect_home, "--task-runner", "dask")  # the last --task-runner wins
    tree = wait_for_workers(proc, out)
    if stop == "kill":
        proc.kill()
    else:
        proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == (-9 if stop == "kill" else 143)
    assert_gone(tree)
