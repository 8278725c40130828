"""Incremental runs: a corpus grown day by day equals one run over every day at once.

The real flow (threads runner) under a test Prefect API; kill -9 tests run the CLI in a
subprocess of its own process group.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from corpusclean.flows.clean_corpus import clean_corpus as deployed_flow
from corpusclean.tasks.corpus import corpus_state
from corpusclean.tasks.stages.dedup import jaccard_pairs
from corpusclean.tasks.plumbing.faults import POINTS
from corpusclean.tasks.stages.minhash import batch_shingle_hashes, normalize_for_dedup

clean_corpus = deployed_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]  # one API per session (conftest)


# ------------------------------------------------------------------ a corpus in three days

CHROME = "La rédaction vous remercie de votre fidélité chaque matin."  # a short line of site A, on 2 pages by day 1
BASE = (
    "La communauté de communes a présenté jeudi son plan pour les pistes cyclables du plateau, "
    "qui doit relier les huit villages au collège et à la gare d'ici trois ans, pour un coût "
    "estimé à quatre millions d'euros partagés avec le département et la région."
)


def _edit(text: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


# X and Y are each close to BASE but not to each other: BASE arriving on day 3 joins their clusters.
X = _edit(BASE, [("jeudi", "mardi"), ("huit", "neuf")])
Y = _edit(BASE, [("collège", "lycée"), ("quatre", "cinq")])


def _story(site: str, n: int, day: int) -> str:
    return (f"Le {day} mars, la rédaction de {site} publie son article numéro {n} sur la vie locale, "
            f"avec des témoignages d'habitants, des chiffres de la mairie et le détail des travaux prévus "
            f"dans le quartier numéro {n * 7 + day}.")


def _write_day(raw: Path, day: int) -> None:
    folder = raw / f"day{day}"
    folder.mkdir(parents=True)
    records: list[dict | str] = []
    if day == 1:
        records += [
            {"url": "https://a.example/1", "text": f"{_story('A', 1, 1)}\n{CHROME}\n{X}"},
            {"url": "https://a.example/2", "text": f"{_story('A', 2, 1)}\n{CHROME}"},
            {"url": "https://b.example/1", "text": f"{_story('B', 1, 1)}\n\n{_story('B', 2, 1)}"},
            "{ broken json",
        ]
    elif day == 2:
        records += [
            {"url": "https://a.example/3", "text": f"{_story('A', 3, 2)}\n{CHROME}"},  # CHROME becomes chrome
            {"url": "https://b.example/2", "text": f"{Y}\n\n{_story('B', 3, 2)}"},
            {"url": "https://b.example/3", "text": ""},
        ]
    else:
        records += [
            # Day 1's paragraphs again with small edits, and day 2's verbatim.
            {"url": "https://c.example/1", "text": _story("A", 1, 1).replace("témoignages", "récits")},
            {"url": "https://c.example/2", "text": f"{BASE}\n\n{_story('B', 3, 2)}"},
        ]
    with open(folder / "feed.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write((json.dumps(r, ensure_ascii=False) if isinstance(r, dict) else r) + "\n")
    (folder / f"note-{day}.txt").write_text(f"{_story('D', day, day)}\n\nPartager sur Facebook\n", encoding="utf-8")


def _rows(out: Path, table: str) -> list[dict]:
    return corpus_state.read_table(out, table).drop_columns(["run_id"]).to_pylist()


def _corpus(out: Path) -> dict[str, list[dict]]:
    """Every table, read from one snapshot (one manifest) as readers are told to."""
    snap = corpus_state.snapshot(out)
    return {t: snap.read(t).drop_columns(["run_id"]).to_pylist() for t in ("documents", "paragraphs", "rejects")}


def _file_hashes(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (out / "runs").rglob("*") if p.is_file()}


def test_the_planted_clusters_are_what_the_test_needs():
    sets = batch_shingle_hashes([normalize_for_dedup(t) for t in (X, Y, BASE)], 5)
    jac = jaccard_pairs(np.array([0, 0, 1]), np.array([1, 2, 2]), lambda rows: [sets[i] for i in rows])
    assert jac[0] < 0.8 <= min(jac[1], jac[2]), jac  # X !~ Y, X ~ BASE, Y ~ BASE


def test_three_daily_runs_give_the_same_corpus_as_one_run(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "daily"
    reports = []
    seen: dict[str, str] = {}
    for day in (1, 2, 3):
        _write_day(raw, day)
        reports.append(clean_corpus(raw_dir=raw, out_dir=out))
        now = _file_hashes(out)
        # Earlier runs' files are never rewritten in place (replaced ones may be deleted later).
        assert all(now.get(name, sha) == sha for name, sha in seen.items())
        seen.update(now)

    one_shot = tmp_path / "once"
    clean_corpus(raw_dir=raw, out_dir=one_shot)
    assert _corpus(out) == _corpus(one_shot)

    # Each day cleaned only its own files, and the later days changed earlier decisions.
    assert [r["inputs"]["new"] for r in reports] == [2, 2, 2]
    assert [r["inputs"]["unchanged"] for r in reports] == [0, 2, 4]
    assert reports[1]["dedup"]["rewritten_parts"] >= 1  # CHROME learned on day 2: day 1 rewritten
    assert reports[2]["dedup"]["rewritten_parts"] >= 1  # BASE joins X's and Y's clusters
    assert reports[2]["dedup"]["known_pairs_skipped"] >= 1  # committed pairs were not verified again

    paras = corpus_state.read_table(out, "paragraphs").to_pylist()
    by_text = {}
    for p in paras:
        by_text.setdefault(p["text"], []).append(p)
    assert all(p["boilerplate_reason"] == "repeated_line" for p in by_text[CHROME])
    x, y, base = by_text[X][0], by_text[Y][0], by_text[BASE][0]
    assert not x["is_duplicate"] and x["run_id"] == reports[0]["run_id"]  # the earliest seen stays the original
    assert y["is_duplicate"] and y["duplicate_of"] == x["paragraph_id"] and y["run_id"] == reports[1]["run_id"]
    assert base["duplicate_of"] == x["paragraph_id"] and base["dup_kind"] == "near"
    edited = [p for p in paras if p["source_path"] == "day3/feed.jsonl" and "récits" in p["text"]][0]
    assert edited["dup_kind"] == "near" and edited["duplicate_of"].split(":")[0] in {
        d["doc_id"] for d in corpus_state.read_table(out, "documents").to_pylist() if d["source_path"] == "day1/feed.jsonl"}

    # Every input record ends up in documents or rejects, once.
    assert len(_rows(out, "documents")) + len(_rows(out, "rejects")) == (4 + 1) + (3 + 1) + (2 + 1)  # records + one note per day


OTHER = ("Le marché couvert rouvrira samedi après huit mois de travaux : les commerçants ont retrouvé "
         "leurs étals, et la halle a gagné une verrière, des toilettes publiques et un local à vélos.")
THIRD = ("À la piscine intercommunale, les bassins extérieurs ouvriront dès le premier juin cette année, "
         "avec des horaires élargis le soir pour les habitants qui travaillent en journée.")
FOURTH = ("Le conseil des jeunes a présenté ses projets pour l'été : un tournoi de basket sur la place, "
          "deux soirées de cinéma en plein air et un chantier de nettoyage des berges de la rivière.")


def test_a_changed_file_supersedes_its_rows_and_a_removed_one_keeps_them(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "clean"
    raw.mkdir()
    (raw / "a.txt").write_text(f"{BASE}\n\n{OTHER}\n", encoding="utf-8")
    (raw / "b.txt").write_text(f"{BASE}\n", encoding="utf-8")
    (raw / "c.txt").write_text(f"{THIRD}\n", encoding="utf-8")
    (raw / "d.txt").write_bytes(b"")  # rejected: empty
    clean_corpus(raw_dir=raw, out_dir=out)
    (raw / "a.txt").write_text(f"{OTHER}\n\n{FOURTH}\n", encoding="utf-8")  # BASE removed, FOURTH added
    (raw / "c.txt").unlink()
    (raw / "d.txt").write_text("Le texte est arrivé le lendemain, complet cette fois.\n", encoding="utf-8")
    report = clean_corpus(raw_dir=raw, out_dir=out)

    counts = {k: report["inputs"][k] for k in ("new", "changed", "unchanged", "removed")}
    assert counts == {"new": 0, "changed": 2, "unchanged": 1, "removed": 1}
    snap = corpus_state.snapshot(out)
    docs = {d["source_path"]: d for d in snap.read("documents").to_pylist()}
    assert sorted(docs) == ["a.txt", "b.txt", "c.txt", "d.txt"]  # one row per source: the old a.txt is gone
    assert snap.read("rejects").num_rows == 0  # d.txt's reject left with its old version
    assert docs["a.txt"]["text"] == f"{OTHER}\n\n{FOURTH}" and docs["c.txt"]["text"] == THIRD
    assert snap.manifest.sources["a.txt"]["run_id"] == report["run_id"]
    # b.txt's BASE was a duplicate of a.txt's; with a.txt's copy gone it is the original.
    b = [p for p in snap.read("paragraphs").to_pylist() if p["source_path"] == "b.txt"]
    assert b[0]["text"] == BASE and not b[0]["is_duplicate"] and docs["b.txt"]["text"] == BASE


def test_a_run_with_nothing_new_changes_nothing(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "clean"
    _write_day(raw, 1)
    clean_corpus(raw_dir=raw, out_dir=out)
    before = _corpus(out)
    report = clean_corpus(raw_dir=raw, out_dir=out)
    assert report["inputs"]["files"] == 0 and report["inputs"]["unchanged"] == 2
    assert _corpus(out) == before
    assert len(corpus_state.load_manifest(out).runs) == 2


def test_changing_the_dedup_settings_of_a_corpus_is_refused(tmp_path):
    from corpusclean.tasks.corpus.runs import UsageError

    raw, out = tmp_path / "raw", tmp_path / "clean"
    _write_day(raw, 1)
    clean_corpus(raw_dir=raw, out_dir=out)
    with pytest.raises(UsageError, match="dedup settings differ"):
        clean_corpus(raw_dir=raw, out_dir=out, overrides=["dedup.num_perm=64"])


def test_an_old_layout_output_folder_is_refused_with_a_clear_message(tmp_path):
    from corpusclean.tasks.corpus.runs import UsageError

    (tmp_path / "raw").mkdir()
    (tmp_path / "clean" / "paragraphs").mkdir(parents=True)
    with pytest.raises(UsageError, match="old layout"):
        clean_corpus(raw_dir=tmp_path / "raw", out_dir=tmp_path / "clean")


# ------------------------------------------------------------------ kill -9 at any point


def _cli_run(raw: Path, out: Path, home: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    # The test server's API: the CLI then starts no temporary server of its own (seconds each).
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_API_URL=PREFECT_API_URL.value())
    env.pop("CORPUSCLEAN_FAULT", None)
    if fault:
        env["CORPUSCLEAN_FAULT"] = fault
    cmd = [sys.executable, "-m", "corpusclean", "run", "--raw", str(raw), "--out", str(out), "--task-runner", "threads", "-q"]
    # A process group of its own: the fault point kills the run's whole group, not pytest.
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, start_new_session=True)


@pytest.fixture(scope="module")
def day_states(tmp_path_factory):
    """The corpus after day 1, and after day 1 + 2 run without interruption."""
    base = tmp_path_factory.mktemp("days")
    raw, out = base / "raw", base / "out"
    _write_day(raw, 1)
    clean_corpus(raw_dir=raw, out_dir=out)
    shutil.copytree(out, base / "after-day1", symlinks=True)
    day1 = _corpus(out)
    _write_day(raw, 2)
    clean_corpus(raw_dir=raw, out_dir=out)
    return base, day1, _corpus(out)


@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_at_any_point_leaves_the_corpus_whole(point, day_states, tmp_path):
    base, day1, day2 = day_states
    raw, out = base / "raw", tmp_path / "out"
    shutil.copytree(base / "after-day1", out, symlinks=True)

    killed = _cli_run(raw, out, tmp_path / "prefect", fault=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    # Readers see the corpus from before the run, or (killed after the commit) the whole run.
    assert _corpus(out) == (day2 if point == "after_commit" else day1)
    for table in ("documents", "paragraphs", "rejects"):
        assert all(p.is_file() for p in corpus_state.table_files(out, table))

    # The next run completes the work: the same corpus as a run never interrupted.
    clean_corpus(raw_dir=raw, out_dir=out)
    assert _corpus(out) == day2
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".corpusclean.lock"]
    assert leftovers == []
    committed = {r["run_id"] for r in corpus_state.load_manifest(out).runs}
    assert {p.name for p in (out / "runs").iterdir()} == committed  # the killed run's files are gone


def test_a_reader_never_sees_a_half_written_run(day_states, tmp_path):
    base, day1, day2 = day_states
    out = tmp_path / "out"
    shutil.copytree(base / "after-day1", out, symlinks=True)
    seen: list[str] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            corpus = _corpus(out)
            seen.append("day1" if corpus == day1 else "day2" if corpus == day2 else "PARTIAL")

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        proc = _cli_run(base / "raw", out, tmp_path / "prefect")
    finally:
        stop.set()
        reader.join()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(seen) > 3 and "PARTIAL" not in seen and seen[-1] == "day2"
