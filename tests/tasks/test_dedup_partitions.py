"""The partitioned run-level search gives the single search's decisions, row for row.

Real shards (``shard.clean_shard``, no Prefect) of generated corpora with exact copies, near
copies (chains), site chrome and syndicated lines; committed parts written by the real
``output.finalize_shard``; then incremental days with new, changed (superseded) files. Every
search is run with the single search and with the partitioned one at several P.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tasks import output, shard
from tasks.config import Config
from tasks.corpus_dedup import find_run_duplicates, load_committed
from tasks.dedup_partitions import dask_map, local_map
from tasks.read import discover

WORDS = ("maison jardin rivière montagne village école marché route forêt soleil pluie vent livre table porte "
         "fenêtre chemin pont ville campagne train gare musée théâtre hôpital mairie bibliothèque festival").split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _near(rng: random.Random, text: str, edits: int) -> str:
    words = text.split(" ")
    for _ in range(edits):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def write_corpus(raw: Path, seed: int, n_files: int = 6, docs: int = 25, name: str = "f") -> None:
    rng = random.Random(seed)
    pool = [_sentence(rng, rng.randint(18, 40)) for _ in range(40)]
    chains = []
    for base in pool[:10]:  # chains of near copies: clusters by transitivity
        a = _near(rng, base, 1)
        chains += [a, _near(rng, a, 1)]
    chrome = {f"site{s}.example": [f"La gazette numéro {s} du plateau et des vallées.", "Le journal des villages depuis mille neuf cent douze."]
              for s in range(3)}
    raw.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        lines = []
        for d in range(docs):
            site = f"site{rng.randrange(3)}.example"
            paras = []
            for _ in range(rng.randint(2, 6)):
                r = rng.random()
                if r < 0.3:
                    paras.append(rng.choice(pool))
                elif r < 0.5:
                    paras.append(rng.choice(chains))
                elif r < 0.6:
                    paras.append(rng.choice(chrome[site]))
                else:
                    paras.append(_sentence(rng, rng.randint(12, 35)))
            lines.append(json.dumps({"text": "\n\n".join(paras), "url": f"https://{site}/{f}/{d}"}))
        (raw / f"{name}{f:02d}.jsonl").write_text("\n".join(lines) + "\n")


def _shards(raw: Path, staging: Path, config: Config, per_shard: int = 2, only: set[str] | None = None):
    files = [f for f in discover(raw) if only is None or f.rel in only]
    groups = [files[i : i + per_shard] for i in range(0, len(files), per_shard)]
    return [shard.clean_shard(i, g, config, staging) for i, g in enumerate(groups)]


def _rows(dedup):
    return [(d.chrome.tolist(), d.cluster, d.kind.tolist()) for d in dedup.decisions]


def _rewrites(dedup):
    return [(r.position, r.key_rows.tolist(), r.doc_live.tolist(), sorted(r.superseded),
             None if r.decisions is None else (r.decisions.chrome.tolist(), r.decisions.cluster, r.decisions.kind.tolist()))
            for r in dedup.rewrites]


def _counts(dedup):
    return {k: v for k, v in dedup.stats.counts.items() if k != "partitions"}


def _compare(results_fn, config, committed_fn, tmp_path, partitions=(1, 3, 7)):
    single = find_run_duplicates(results_fn(), config.dedup, committed=committed_fn(), partitioned=False)
    for p in partitions:
        cfg = config.dedup.model_copy(update={"partition_paragraphs": max(1, single.stats.counts["keyed_paragraphs"] // p)})
        got = find_run_duplicates(results_fn(), cfg, committed=committed_fn(), work_dir=tmp_path)
        assert _rows(got) == _rows(single), p
        assert _rewrites(got) == _rewrites(single), p
        assert _counts(got) == _counts(single), p
    return single


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_shot_same_rows(tmp_path, seed):
    config = Config()
    raw = tmp_path / "raw"
    write_corpus(raw, seed)
    results = _shards(raw, tmp_path / "staging", config)
    single = _compare(lambda: results, config, lambda: None, tmp_path)
    c = single.stats.counts
    assert c["duplicates"] > 0 and c["repeated_lines"] > 0 and c["verified_pairs"] > 0


def test_repeated_lines_off_and_exact_only(tmp_path):
    raw = tmp_path / "raw"
    write_corpus(raw, 5)
    for overrides in ({"repeated_line_min_docs": 0}, {"threshold": 0.5}, {"repeated_line_min_docs": 2, "threshold": 0.95}):
        config = Config().model_copy(update={"dedup": Config().dedup.model_copy(update=overrides)})
        results = _shards(raw, tmp_path / f"staging-{len(overrides)}-{overrides.get('threshold')}", config)
        _compare(lambda: results, config, lambda: None, tmp_path)


def _commit(results, dedup, out: Path, run: str, config: Config):
    run_dir = out / "runs" / run
    parts = []
    for r, d in zip(results, dedup.decisions):
        part = output.part_files(run_dir, out, run, f"part-{r.index:05d}", r.sources, True)
        output.finalize_shard(r, d, part, out, run, "test")
        parts.append(part)
    return parts


def test_incremental_same_rows(tmp_path):
    """Three days: new files, then a changed file (superseded rows) and chrome learned late."""
    config = Config()
    out = tmp_path / "out"
    parts: list = []
    raw = tmp_path / "raw"
    write_corpus(raw, 11, n_files=4, name="a")
    for day in range(3):
        if day == 1:
            write_corpus(raw, 12, n_files=3, name="b")
        if day == 2:
            write_corpus(raw, 13, n_files=2, name="a")  # a00, a01 change: their committed rows leave
            write_corpus(raw, 14, n_files=2, name="c")
        new = {f.rel for f in discover(raw)} if day == 0 else (
            {f"b{i:02d}.jsonl" for i in range(3)} if day == 1 else {"a00.jsonl", "a01.jsonl", "c00.jsonl", "c01.jsonl"})
        superseded = {"a00.jsonl", "a01.jsonl"} if day == 2 else set()
        staging = tmp_path / f"staging{day}"
        results = _shards(raw, staging, config, only=new)

        def committed():
            return [load_committed(out, i, p, superseded) for i, p in enumerate(parts)]

        single = _compare(lambda: results, config, committed, tmp_path)
        print(day, single.stats.counts)
        if day:
            assert single.stats.counts["committed_paragraphs"] > 0
            assert single.stats.counts["known_pairs_skipped"] > 0
        if day == 2:
            assert single.rewrites
        # commit what the single search decided (rewrites are not applied: later days see the
        # committed decisions as they were, which exercises clusters decided again)
        parts += _commit(results, single, out, f"r{day}", config)


def test_dask_local_cluster_same_rows(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = Config()
    raw = tmp_path / "raw"
    write_corpus(raw, 3)
    results = _shards(raw, tmp_path / "staging", config)
    cfg = config.dedup.model_copy(update={"partition_paragraphs": 200})
    local = find_run_duplicates(results, cfg, work_dir=tmp_path, mapper=local_map)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  memory_limit="400MiB") as cluster, distributed.Client(cluster) as client:
        got = find_run_duplicates(results, cfg, work_dir=tmp_path, mapper=dask_map(client))
    assert _rows(got) == _rows(local) and _counts(got) == _counts(local)
