import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpusclean.tasks.corpus.runs import OutputBusy, UsageError, check_paths, lock_output, remove_scratch, unlock_output

REPO = Path(__file__).resolve().parents[3]


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    fd = lock_output(tmp_path)
    os.pwrite(fd, b'{"run_id": "R1", "pid": 42, "started_at": "now"}', 0)
    with pytest.raises(OutputBusy, match="run R1 \\(pid 42"):
        lock_output(tmp_path)
    unlock_output(fd)
    unlock_output(lock_output(tmp_path))  # free again


def test_the_lock_dies_with_its_holder_even_on_sigkill(tmp_path):
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
        "from corpusclean.tasks.corpus.runs import lock_output; lock_output(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(REPO)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusy):
            lock_output(tmp_path)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        unlock_output(lock_output(tmp_path))
    finally:
        holder.kill()


def test_waiting_writer_gets_the_lock_when_it_is_released(tmp_path):
    fd = lock_output(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
        "from corpusclean.tasks.corpus.runs import lock_output; lock_output(Path(sys.argv[1]), wait=True); print('got it')"
    )
    waiter = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(REPO)], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert waiter.poll() is None  # still waiting
    unlock_output(fd)
    out, _ = waiter.communicate(timeout=20)
    assert out.strip() == "got it"


def test_scratch_of_an_interrupted_run_is_removed(tmp_path):
    from corpusclean.tasks.corpus.corpus_state import Manifest

    committed = Manifest(version=1, runs=[{"run_id": "done", "report": "runs/done/report.json"}])
    for name in (".staging-x", "runs/killed/paragraphs", "runs/done", "notes"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "runs" / "done" / "report.json").write_text("{}")
    assert sorted(remove_scratch(tmp_path, committed)) == [".staging-x", "runs/killed/"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "runs"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["done"]


def test_path_mistakes(tmp_path):
    with pytest.raises(UsageError, match="raw folder not found"):
        check_paths(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "raw").mkdir()
    with pytest.raises(UsageError, match="inside the raw folder"):
        check_paths(tmp_path / "raw", tmp_path / "raw" / "out")
