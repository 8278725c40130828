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

from corpusclean.tasks.corpus import output, shard
from corpusclean.tasks.config import Config
from corpusclean.tasks.corpus.corpus_dedup import committed_parts, find_run_duplicates
from corpusclean.tasks.corpus.dedup_partitions import dask_map, local_map
from corpusclean.tasks.stages.read import discover

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
    rewrites = [r.load() for r in dedup.rewrites]
    return [(r.position, r.key_rows.tolist(), r.doc_live.tolist(), sorted(r.superseded),
             None if r.decisions is None else (r.decisions.chrome.tolist(), r.decisions.cluster, r.decisions.kind.tolist()))
            for r in rewrites]


def _counts(dedup):
    return {k: v for k, v in dedup.stats.counts.items() if k not in ("partitions", "touched_clusters", "index_exceptions")}


def _compare(results_fn, config, committed_fn, tmp_path, partitions=(1, 3, 7), touched=None, index_root=None,
             index_states=None):
    """The partitioned search at each P gives the single search's rows; with ``index_root``, also with
    a persisted index there (one per P, kept across calls: built, extended or rebuilt as it goes),
    twice: the second search reads the index as the first left it (``index_states``: what each did)."""
    single = find_run_duplicates(results_fn(), config.dedup, committed=committed_fn(), partitioned=False)
    for p in partitions:
        cfg = config.dedup.model_copy(update={"partition_paragraphs": max(1, single.stats.counts["keyed_paragraphs"] // p)})
        runs = [{}] + ([{"index_dir": index_root / f"p{p}"}] * 2 if index_root is not None else [])
        for how in runs:
            got = find_run_duplicates(results_fn(), cfg, committed=committed_fn(), work_dir=tmp_path, **how)
            if how and index_states is not None:
                index_states.append(got.index)
                index_states.append(got.stats.counts["index_exceptions"])
            assert _rows(got) == _rows(single), (p, how)
            assert _rewrites(got) == _rewrites(single), (p, how)
            assert _counts(got) == _counts(single), (p, how)
            if touched is not None:
                touched.append(got.stats.counts["touched_clusters"])
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
            return committed_parts(out, parts, superseded)

        states: list = []
        single = _compare(lambda: results, config, committed, tmp_path, index_root=tmp_path / "index",
                          index_states=states)
        # day 0: nothing committed, no index; day 1: built; day 2: day 1's parts added as a layer (the
        # parts of a00 and a01 lose rows this run: not read from it); the second search reuses it
        assert states[0::2] == [[None, None], ["full", "reused"], ["layer", "reused"]][day] * 3, states
        # indexed rows whose status this run is not the index's, read from their parts: none on day 1
        # (nothing committed changed), some on day 2 (chrome learned, clusters decided again)
        assert (min(states[1::2]) > 0) == (day == 2), states
        if day:
            assert single.stats.counts["committed_paragraphs"] > 0
            assert single.stats.counts["known_pairs_skipped"] > 0
        if day == 2:
            assert single.rewrites
        # commit what the single search decided (rewrites are not applied: later days see the
        # committed decisions as they were, which exercises clusters decided again)
        parts += _commit(results, single, out, f"r{day}", config)


@pytest.mark.parametrize("apply_rewrites", [False, True])
def test_incremental_overlapping_days_same_rows(tmp_path, apply_rewrites):
    """Later days repeat some committed documents (exact and near copies join committed clusters,
    more pages learn chrome) while other committed clusters are left alone: the partitioned search
    applies the committed decisions of the clusters no new edge touches and decides the others
    again, with the single search's rows. With ``apply_rewrites`` the committed decisions are kept
    current (as the flow does), else they stay as first written."""
    config = Config()
    out = tmp_path / "out"
    raw = tmp_path / "raw"
    parts: list = []
    write_corpus(raw, 21, n_files=4, name="a")
    days = [({f"a{i:02d}.jsonl" for i in range(4)}, set()),
            (set(), set()),  # b00: a copy of a00 (same seed), b01 new
            ({"a03.jsonl"}, {"a03.jsonl"})]  # a03 changed: its rows leave; c00 new
    clusters_so_far = 0
    for day, (new, superseded) in enumerate(days):
        if day == 1:
            write_corpus(raw, 21, n_files=1, name="b")
            write_corpus(raw / "x", 22, n_files=1, name="b")
            (raw / "x" / "b00.jsonl").rename(raw / "b01.jsonl")
            (raw / "x").rmdir()
            new = {"b00.jsonl", "b01.jsonl"}
        if day == 2:
            write_corpus(raw / "x", 23, n_files=4, name="a")
            (raw / "x" / "a03.jsonl").replace(raw / "a03.jsonl")
            write_corpus(raw / "x", 24, n_files=1, name="c")
            (raw / "x" / "c00.jsonl").rename(raw / "c00.jsonl")
            for f in (raw / "x").iterdir():
                f.unlink()
            (raw / "x").rmdir()
            new = {"a03.jsonl", "c00.jsonl"}
        results = _shards(raw, tmp_path / f"staging{day}", config, per_shard=1, only=new)
        touched: list[int] = []
        single = _compare(lambda: results, config, lambda: committed_parts(out, parts, superseded), tmp_path,
                          touched=touched, index_root=tmp_path / "index")
        assert len(set(touched)) == 1, touched  # the same for any P
        if day == 1:  # b00 repeats a00: its clusters are touched, those of a01-a03 are not
            assert 0 < touched[0] < clusters_so_far, (touched, clusters_so_far)
        if day == 2:
            assert single.rewrites
        clusters_so_far = single.stats.counts["clusters"]
        if apply_rewrites:
            run_dir = out / "runs" / f"r{day}"
            for r in single.rewrites:
                parts[r.position] = output.rewrite_part(out, parts[r.position], r, run_dir)
        parts += _commit(results, single, out, f"r{day}", config)


def synthetic_shards(staging: Path, segments: int, per_segment: int, planted: int = 3000, seed: int = 0):
    """Shards as the flow hands them to the search (keys in staged files, none in memory): random
    keys (never candidates) plus ``planted`` real paragraphs in near-copy families spread over
    the segments, and short lines repeated on one site's pages (chrome)."""
    from corpusclean.tasks.stages.dedup import band_keys, exact_keys
    from corpusclean.tasks.corpus.dedup_index import write_keys
    from corpusclean.tasks.stages.minhash import normalize_for_dedup, signatures
    from corpusclean.tasks.corpus.shard import ShardResult
    from corpusclean.tasks.stages.sketch import DedupKeys, lsh_shape

    cfg = Config().dedup
    n_bands, n_rows = lsh_shape(cfg)
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    base = [_sentence(prng, prng.randint(15, 30)) for _ in range(planted // 8)]
    texts = []
    for b in base:
        texts += [b, _near(prng, b, 1), _near(prng, b, 2), b, _near(prng, b, 1), _sentence(prng, 20)]
    texts += ["Une ligne de pied de page du site."] * (planted - len(texts))
    results = []
    staging.mkdir(parents=True, exist_ok=True)
    for s in range(segments):
        n = per_segment
        r = ShardResult(s, staging / f"shard-{s:05d}.paragraphs.arrow", staging / f"shard-{s:05d}.documents.arrow",
                        staging / f"shard-{s:05d}.rejects.arrow")
        para_text = np.array([f"r{s}-{i}" for i in range(n)], dtype=object)
        exact = rng.integers(0, 2**63, (n, 2), dtype=np.uint64)
        bands = rng.integers(0, 2**63, (n, n_bands), dtype=np.uint64)
        mine = list(range(s, len(texts), segments))
        where = np.sort(rng.choice(n, len(mine), replace=False))
        norms = [normalize_for_dedup(texts[i]) for i in mine]
        para_text[where] = [texts[i] for i in mine]
        exact[where] = exact_keys(norms)
        bands[where] = band_keys(signatures(norms, cfg.ngram, cfg.num_perm, cfg.seed), n_bands, n_rows)
        rows = np.arange(n, dtype=np.int64) * 2  # keyed rows: every other paragraph row
        doc = (np.arange(n) // 10).astype(np.int32)
        all_text = np.empty(2 * n, dtype=object)
        all_text[0::2] = para_text
        all_text[1::2] = "chrome"
        import pyarrow as pa

        with pa.ipc.new_file(str(r.paragraphs_path), pa.schema([("text", pa.string())])) as w:
            w.write_table(pa.table({"text": pa.array(all_text.tolist(), pa.string())}))
        r.n_docs = int(doc[-1]) + 1
        r.doc_ids = [f"{s:04d}{d:012x}" for d in range(r.n_docs)]
        r.doc_sites = [f"site{d % 3}.example" for d in range(r.n_docs)]
        r.key_rows, r.key_doc = rows, doc
        r.key_pidx = (np.arange(n) % 10).astype(np.int32)
        r.key_len = np.array([len(t) for t in para_text], np.int32)
        write_keys(r.keys_path, rows, doc, r.key_pidx, r.key_len, DedupKeys(rows, exact, bands), r.doc_ids,
                   r.doc_sites, [f"f{s}.jsonl"] * r.n_docs)
        results.append(r)
    return results


def _peak_rss() -> int:
    """This process's peak RSS (VmHWM: per process image, unlike ru_maxrss, which a spawned worker
    inherits from its parent)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def test_dask_local_cluster_same_rows(tmp_path):
    """600k keyed paragraphs in 12 shards: the single search needs ~330 MB for its keys and working
    arrays (553 B per paragraph) on top of a ~200 MB process; two Dask workers capped at 320 MiB
    each, process included (~175 MiB of it imports), search them in 24 partitions and give the
    local runner's rows. A worker over its cap is killed by its nanny, which fails the test."""
    distributed = pytest.importorskip("distributed")
    import dask

    results = synthetic_shards(tmp_path / "staging", segments=12, per_segment=50_000)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 25_000})
    local = find_run_duplicates(results, cfg, work_dir=tmp_path, mapper=local_map)
    assert local.stats.counts["duplicates"] > 1000 and local.stats.counts["repeated_lines"] > 0
    limit = 320 * 2**20
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.memory.pause": False,
                          "distributed.worker.memory.spill": False, "distributed.worker.memory.target": False}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                     memory_limit=limit) as cluster, distributed.Client(cluster) as client:
        got = find_run_duplicates(results, cfg, work_dir=tmp_path, mapper=dask_map(client))
        peaks = client.run(_peak_rss)
    assert _rows(got) == _rows(local) and _counts(got) == _counts(local)
    assert got.stats.counts["partitions"] == 24
    assert len(peaks) == 2 and max(peaks.values()) < limit, peaks


def test_take_rows_reads_chunk_by_chunk_and_matches_take():
    import pyarrow as pa

    from corpusclean.tasks.corpus.dedup_partitions import take_rows

    column = pa.chunked_array([[f"c{c} r{r}" for r in range(n)] for c, n in enumerate((3, 0, 5, 1, 4))])
    rows = np.array([12, 0, 2, 3, 7, 8, 8, 11], np.int64)  # any order, repeats, across chunks
    assert take_rows(column, rows) == column.take(pa.array(rows)).to_pylist()
    assert take_rows(column.combine_chunks(), rows) == column.take(pa.array(rows)).to_pylist()
    assert take_rows(column, np.zeros(0, np.int64)) == []


def test_pool_map_on_worker_processes_same_rows(tmp_path, monkeypatch):
    # the process runner's mapper: steps on a process pool, a partition per worker from
    # PARALLEL_MIN_PARAGRAPHS keyed paragraphs; the same rows as one partition in this process
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from corpusclean.tasks.corpus import dedup_partitions as dp

    config = Config()
    raw = tmp_path / "raw"
    write_corpus(raw, 1)
    results = _shards(raw, tmp_path / "staging", config)
    local = find_run_duplicates(results, config.dedup, work_dir=tmp_path, mapper=local_map)
    monkeypatch.setattr(dp, "PARALLEL_MIN_PARAGRAPHS", 1)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        mapper = dp.PoolMap(pool, 2)
        got = find_run_duplicates(results, config.dedup, work_dir=tmp_path, mapper=mapper)
    assert got.stats.counts["partitions"] == 2 and local.stats.counts["partitions"] == 1
    assert _rows(got) == _rows(local) and _counts(got) == _counts(local) and local.stats.counts["duplicates"] > 0
    assert mapper.cpu_seconds > 0 and got.stats.cpu_seconds >= mapper.cpu_seconds  # the workers' CPU is counted


def _fake_committed(out: Path, n_parts: int, per_part: int, seed: int = 0):
    """Committed parts of random keys (never candidates), 20% of them in committed clusters of two."""
    from corpusclean.tasks.corpus.corpus_state import Part
    from corpusclean.tasks.corpus.dedup_index import write_decisions, write_keys
    from corpusclean.tasks.stages.sketch import DedupKeys, lsh_shape

    n_bands, _ = lsh_shape(Config().dedup)
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_parts):
        d = f"runs/r{k}"
        part = Part(f"r{k}", f"{d}/documents/p.parquet", f"{d}/paragraphs/p.parquet", f"{d}/rejects/p.parquet",
                    keys=f"{d}/keys/p.arrow", decisions=f"{d}/decisions/p.arrow", sources=[f"f{k}.jsonl"])
        rows = np.arange(per_part, dtype=np.int64)
        doc_ids = [f"{k:04d}{i:012x}" for i in range(per_part // 10)]
        write_keys(out / part.keys, rows, (rows // 10).astype(np.int32), (rows % 10).astype(np.int32),
                   np.full(per_part, 300, np.int32),
                   DedupKeys(rows, rng.integers(0, 2**63, (per_part, 2), dtype=np.uint64),
                             rng.integers(0, 2**63, (per_part, n_bands), dtype=np.uint64)),
                   doc_ids, ["site.example"] * len(doc_ids), [f"f{k}.jsonl"] * len(doc_ids))
        cluster: list = [None] * per_part
        kind = np.zeros(per_part, np.int8)
        for i in range(0, per_part // 5, 2):
            cluster[i] = cluster[i + 1] = f"{doc_ids[i // 10]}:{i % 10}"
            kind[i + 1] = 2
        write_decisions(out / part.decisions, np.zeros(per_part, bool), cluster, kind)
        parts.append(part)
    return parts


def test_coordinator_exchanges_nothing_per_committed_paragraph(tmp_path):
    """What goes between the coordinating process and the steps (every argument and result, pickled as
    a worker would get them) does not grow with the committed corpus when no new edge touches it: the
    committed parts are read where they are searched and their decisions applied there. 4x the
    committed paragraphs, same partitions: the same bytes, give or take a few per part."""
    import pickle

    from corpusclean.tasks.corpus.shard import ShardResult
    from corpusclean.tasks.stages.sketch import DedupKeys, lsh_shape

    n_bands, _ = lsh_shape(Config().dedup)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 10**9})
    exchanged = {}
    for per_part in (5_000, 20_000):
        out = tmp_path / f"out{per_part}"
        parts = _fake_committed(out, 3, per_part)
        new = ShardResult(0, out / "new.arrow", out / "d.arrow", out / "r.arrow")
        new.keys = DedupKeys(np.zeros(0, np.int64), np.zeros((0, 2), np.uint64), np.zeros((0, n_bands), np.uint64))
        sizes = []

        def mapper(fn, argsets):
            results = local_map(fn, argsets)
            sizes.append(len(pickle.dumps(argsets)) + len(pickle.dumps(results)))
            return results

        got = find_run_duplicates([new], cfg, committed=committed_parts(out, parts, set()), work_dir=tmp_path,
                                  mapper=mapper)
        c = got.stats.counts
        assert c["committed_paragraphs"] == 3 * per_part and c["clusters"] == 3 * per_part // 10
        assert c["duplicates"] == 3 * per_part // 10 and c["touched_clusters"] == 0 and not got.rewrites
        exchanged[per_part] = sum(sizes)
    assert exchanged[20_000] < exchanged[5_000] + 3 * 200, exchanged
    assert exchanged[5_000] < 3 * 5_000, exchanged  # (less than a byte per committed paragraph)


def test_superseded_committed_part_rewritten_from_staged_decisions(tmp_path):
    """A committed part that loses a source (half its documents): the clusters of those documents
    leave, the rewrite is staged in the work folder, and its rows are those of the single search."""
    out = tmp_path / "out"
    parts = _fake_committed(out, 2, 2_000)
    from corpusclean.tasks.corpus.dedup_index import write_docs

    # part 0's documents come from two sources; the second changes
    keys = out / parts[0].keys
    n_docs = 200
    write_docs(keys, [f"0000{i:012x}" for i in range(n_docs)], ["site.example"] * n_docs,
               ["f0.jsonl" if i % 2 else "g0.jsonl" for i in range(n_docs)])
    parts[0].sources = ["f0.jsonl", "g0.jsonl"]
    cfg = Config().dedup
    single = find_run_duplicates([], cfg, committed=committed_parts(out, parts, {"g0.jsonl"}), partitioned=False)
    got = find_run_duplicates([], cfg, committed=committed_parts(out, parts, {"g0.jsonl"}), work_dir=tmp_path)
    assert [r.position for r in got.rewrites] == [0] and got.rewrites[0].staged is not None
    assert got.rewrites[0].staged.exists()
    assert _rewrites(got) == _rewrites(single) and _counts(got) == _counts(single)
    # clusters of two made of consecutive rows of one document: half of part 0's are kept whole
    assert single.stats.counts["clusters"] == 200 + 100


def test_nothing_to_search(tmp_path):
    """No segment at all (nothing committed, no keyed paragraph in this run): no partition has a
    producer, and the search returns nothing rather than failing."""
    got = find_run_duplicates([], Config().dedup, committed=[], work_dir=tmp_path)
    assert got.decisions == [] and got.rewrites == [] and got.stats.counts["keyed_paragraphs"] == 0


@pytest.mark.parametrize("n_parts", [1, 3, 7])
def test_band_slices_read_with_pread_match_arrow(tmp_path, n_parts):
    """A band pass reads its slices with pread at the column positions saved beside the offsets:
    the same rows as the Arrow file's record batches (bitmaps sliced off byte boundaries, empty
    slices and empty bands included)."""
    import pyarrow as pa

    from corpusclean.tasks.corpus import dedup_partitions as dp

    rng = np.random.default_rng(n_parts)
    n_bands, sizes = 4, [0, 1, 13, 1000]
    schema = pa.schema([("o", pa.uint32()), ("key", pa.uint64()), ("known", pa.bool_())])
    written = []
    for s, n in enumerate(sizes):
        path = dp._file(tmp_path, "band-map", s)
        offsets, bands = [], []
        with pa.ipc.new_file(str(path), schema) as writer:
            for j in range(n_bands):
                m = 0 if j == 2 else n  # an empty band
                key = rng.integers(0, 2**64 - 1, m, dtype=np.uint64)
                part = key % np.uint64(n_parts)
                order = np.argsort(part, kind="stable")
                o, k, known = np.arange(m, dtype=np.uint32), key[order], rng.random(m) < 0.5
                writer.write_batch(pa.record_batch([pa.array(o), pa.array(k), pa.array(known)], schema=schema))
                off = np.searchsorted(part[order], np.arange(n_parts + 1))
                offsets.append(off)
                bands.append((o, k, known, off))
        np.save(dp._offsets_path(path), np.concatenate([np.array(offsets, np.int64),
                                                        dp._column_positions(path, n_bands)], axis=1))
        written.append(bands)
    for p in range(n_parts):
        got = list(dp._band_slices(tmp_path, len(sizes), p, n_bands))
        assert len(got) == n_bands
        for j, (members, keys, known) in enumerate(got):
            want = [((np.int64(s) << np.int64(dp.SEG_SHIFT)) | w[j][0][w[j][3][p]:w[j][3][p + 1]].astype(np.int64),
                     w[j][1][w[j][3][p]:w[j][3][p + 1]], w[j][2][w[j][3][p]:w[j][3][p + 1]])
                    for s, w in enumerate(written) if w[j][3][p + 1] > w[j][3][p]]
            if not want:
                assert members is None and keys is None and known is None
                continue
            assert np.array_equal(members, np.concatenate([x[0] for x in want]))
            assert np.array_equal(keys, np.concatenate([x[1] for x in want]))
            assert known.dtype == bool and np.array_equal(known, np.concatenate([x[2] for x in want]))


@pytest.mark.parametrize("n_parts", [1, 3, 7])
def test_scattered_slices_read_with_pread_match_arrow(tmp_path, n_parts):
    """The exact pass and the verify pass read their slices of ``_scatter`` outputs with pread at the
    column positions saved beside the offsets: the same rows as the Arrow reader (every column type a
    map output has, bitmaps sliced off byte boundaries, empty files and empty slices included)."""
    from corpusclean.tasks.corpus import dedup_partitions as dp

    rng = np.random.default_rng(n_parts)
    sizes = [0, 1, 13, 1000]
    for s, n in enumerate(sizes):
        key = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
        dp._scatter(dp._file(tmp_path, "exact-map", s), key % np.uint64(n_parts), n_parts, {
            "o": rng.integers(0, 2**32 - 1, n, dtype=np.uint64).astype(np.uint32),
            "hi": key, "lo": rng.integers(0, 2**64 - 1, n, dtype=np.uint64),
            "site": rng.integers(0, 2**64 - 1, n, dtype=np.uint64),
            "doc": rng.integers(0, 2**32 - 1, n, dtype=np.uint64).astype(np.uint32),
            "len": rng.integers(-2**31, 2**31 - 1, n, dtype=np.int64).astype(np.int32),
            "node": rng.integers(-2**62, 2**62, n, dtype=np.int64),
        })
        pair = rng.integers(0, n_parts, n)
        dp._scatter(dp._file(tmp_path, "pair-map", s), pair, n_parts, {
            "lo": rng.integers(-2**62, 2**62, n, dtype=np.int64), "hi": rng.integers(-2**62, 2**62, n, dtype=np.int64),
            "known": rng.random(n) < 0.5})
    for p in range(n_parts):
        for kind, names, per_segment in (("exact-map", dp._EXACT_COLUMNS, True),
                                         ("pair-map", ("lo", "hi", "known"), False)):
            want = dp._read_slices(tmp_path, kind, len(sizes), p, names, per_segment=per_segment)
            got = dp._pread_slices(tmp_path, kind, len(sizes), p, names, per_segment=per_segment)
            assert set(got) == set(want)
            for k in names:
                if want[k] is None:
                    assert got[k] is None
                    continue
                assert got[k].dtype == want[k].dtype, k
                assert np.array_equal(got[k], want[k]), k


def test_exact_output_segment_rows_read_with_pread_match_arrow(tmp_path):
    """A segment step reads its rows of each exact pass output with pread at the positions the exact
    pass saved beside it: the same rows as searching the Arrow file's ``o`` (empty segments included)."""
    from corpusclean.tasks.corpus import dedup_partitions as dp

    rng = np.random.default_rng(0)
    S = 5
    seg = np.sort(rng.choice([0, 1, 3], 777))  # segments 2 and 4: no rows
    o = (seg.astype(np.int64) << np.int64(dp.SEG_SHIFT)) | rng.integers(0, 2**20, seg.size)
    o.sort()
    path = dp._file(tmp_path, "exact", 0)
    dp._write_indexed(path, {"o": o, "chrome": rng.random(o.size) < 0.3, "rep": rng.integers(-1, 2**40, o.size),
                             "inode": rng.integers(-5, 5, o.size)},
                      np.searchsorted(o, np.arange(S + 1, dtype=np.int64) << np.int64(dp.SEG_SHIFT)))
    table = dp.read_ipc(path)
    col = table.column("o").to_numpy()
    for s in range(S):
        a, b = (int(x) for x in np.searchsorted(col, [np.int64(s) << np.int64(dp.SEG_SHIFT),
                                                       np.int64(s + 1) << np.int64(dp.SEG_SHIFT)]))
        got = dp._pread_range(str(path), s, ("o", "chrome", "rep"))
        if b <= a:
            assert got is None
            continue
        part = table.slice(a, b - a)
        assert np.array_equal(got["o"], col[a:b])
        assert np.array_equal(got["chrome"], part.column("chrome").to_numpy(zero_copy_only=False))
        assert np.array_equal(got["rep"], part.column("rep").to_numpy())
    with pytest.raises(IndexError):
        dp._pread_range(str(path), S, ("o",))


@pytest.mark.parametrize("n", [1, 7, 30_000])
def test_load_index_matches_np_load(tmp_path, n):
    """The pread reader of a map output's index reads what ``np.load`` reads (and falls back to it on
    any other layout)."""
    from corpusclean.tasks.corpus import dedup_partitions as dp

    values = np.random.default_rng(n).integers(-2**62, 2**62, n, dtype=np.int64)
    np.save(tmp_path / "a.npy", values)
    got = dp._load_index(str(tmp_path / "a.npy"))
    assert got.dtype == np.int64 and np.array_equal(got, np.load(tmp_path / "a.npy"))
    np.save(tmp_path / "b.npy", values.astype(np.int32))
    assert np.array_equal(dp._load_index(str(tmp_path / "b.npy")), values.astype(np.int32))


def _new_shard(out: Path, parts, n: int, touch: int, seed: int = 1):
    """A new shard of ``n`` random keys, the first ``touch`` exact copies of committed clustered rows."""
    from corpusclean.tasks.corpus.dedup_index import read_exact
    from corpusclean.tasks.corpus.shard import ShardResult
    from corpusclean.tasks.stages.sketch import DedupKeys, lsh_shape

    n_bands, _ = lsh_shape(Config().dedup)
    rng = np.random.default_rng(seed)
    exact = rng.integers(0, 2**63, (n, 2), dtype=np.uint64)
    exact[:touch] = read_exact(out / parts[0].keys)[np.arange(0, 2 * touch, 2)]
    rows = np.arange(n, dtype=np.int64)
    new = ShardResult(0, out / "new.arrow", out / "d.arrow", out / "r.arrow")
    new.n_docs = -(-n // 10)
    new.doc_ids = [f"new{d:013x}" for d in range(new.n_docs)]
    new.doc_sites = ["site.example"] * new.n_docs
    new.key_rows, new.key_doc = rows, (rows // 10).astype(np.int32)
    new.key_pidx, new.key_len = (rows % 10).astype(np.int32), np.full(n, 300, np.int32)
    new.keys = DedupKeys(rows, exact, rng.integers(0, 2**63, (n, n_bands), dtype=np.uint64))
    return new


def _index_run(out, parts, cfg, tmp_path, index_dir, superseded=frozenset()):
    new = _new_shard(out, parts, 500, 40)
    single = find_run_duplicates([_new_shard(out, parts, 500, 40)], cfg, committed=committed_parts(out, parts, set(superseded)),
                                 partitioned=False)
    got = find_run_duplicates([new], cfg, committed=committed_parts(out, parts, set(superseded)), work_dir=tmp_path,
                              index_dir=index_dir)
    assert _rows(got) == _rows(single) and _rewrites(got) == _rewrites(single) and _counts(got) == _counts(single)
    assert single.stats.counts["duplicates"] > 0
    return got


def test_index_reused_steps_read_it_not_the_parts(tmp_path, monkeypatch):
    """A second search over the same committed parts reads the persisted index: no committed part's
    exact keys are scattered and only its exceptions' band keys are read (here the 40 rows whose
    committed cluster a new exact copy touches are not among them: their status is unchanged)."""
    from corpusclean.tasks.corpus import dedup_partitions as dp

    out = tmp_path / "out"
    parts = _fake_committed(out, 3, 3_000)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 2_000})
    index_dir = out / "_dedup_index"
    first = _index_run(out, parts, cfg, tmp_path, index_dir)
    assert first.index == "full" and first.stats.counts["partitions"] == 5
    exact_reads, band_rows = [], []
    load_exact, load_bands = dp.Segment.load_exact, dp.Segment.load_bands
    monkeypatch.setattr(dp.Segment, "load_exact", lambda self, rows: exact_reads.append(self.committed) or load_exact(self, rows))
    monkeypatch.setattr(dp.Segment, "load_bands",
                        lambda self, rows, which: band_rows.append((self.committed, len(which))) or load_bands(self, rows, which))
    second = _index_run(out, parts, cfg, tmp_path, index_dir)
    assert second.index == "reused" and second.stats.counts["touched_clusters"] == 40
    assert exact_reads == [False]  # the new shard only
    assert sorted(band_rows) == [(False, 460), (True, 0), (True, 0), (True, 0)], band_rows  # (its 40 copies: no bands)


def test_index_stale_after_manual_change_rebuilt(tmp_path):
    """The index is checked against the committed files: a part's decisions changed by hand (same
    paths) is indexed again as a new layer; an index.json that is not one, or a layer file gone, and
    the index is rebuilt whole; a part that loses superseded rows is read from its files meanwhile."""
    from corpusclean.tasks.corpus.dedup_index import read_ipc, write_decisions

    out = tmp_path / "out"
    parts = _fake_committed(out, 3, 3_000)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 2_000})
    index_dir = out / "_dedup_index"
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "full"
    # by hand: part 1's first clusters undone (its rows become unclustered content)
    d = read_ipc(out / parts[1].decisions)
    cluster = d.column("cluster").to_pylist()
    kind = d.column("kind").to_numpy().copy()
    for i in range(0, 200):
        cluster[i] = None
        kind[i] = 0
    write_decisions(out / parts[1].decisions, d.column("chrome").to_numpy(zero_copy_only=False), cluster, kind)
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "layer"
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "reused"
    assert len(json.loads((index_dir / "index.json").read_text())["layers"]) == 2
    (index_dir / "index.json").write_text("{not json")
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "full"
    layer = json.loads((index_dir / "index.json").read_text())["layers"][0]["name"]
    assert sorted(p.name for p in index_dir.iterdir()) == [layer, "index.json"]
    (index_dir / layer / "band-00002.arrow").unlink()
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "full"
    # a partition file overwritten (it does not parse) or cut short: rebuilt too, the same rows
    layer = json.loads((index_dir / "index.json").read_text())["layers"][0]["name"]
    want = _rows(_index_run(out, parts, cfg, tmp_path, index_dir))
    (index_dir / layer / "exact-00001.arrow").write_bytes(b"not an arrow file" * 50)
    again = _index_run(out, parts, cfg, tmp_path, index_dir)
    assert again.index == "full" and _rows(again) == want
    layer = json.loads((index_dir / "index.json").read_text())["layers"][0]["name"]
    band = index_dir / layer / "band-00000.arrow"
    band.write_bytes(band.read_bytes()[: band.stat().st_size // 2])
    again = _index_run(out, parts, cfg, tmp_path, index_dir)
    assert again.index == "full" and _rows(again) == want
    assert _index_run(out, parts, cfg, tmp_path, index_dir, superseded={"f2.jsonl"}).index == "reused"


@pytest.mark.parametrize("where", ["partition", "before_index_json"])
def test_index_killed_mid_write_next_run_correct(tmp_path, monkeypatch, where):
    """A search killed while writing a layer (mid-partitions, or after the layer's folder is in place
    but before index.json names it) leaves the previous index as it was; the next search gives the
    same rows and removes the leftovers."""
    from corpusclean.tasks.corpus import corpus_state, partitioned_index as pi

    out = tmp_path / "out"
    parts = _fake_committed(out, 3, 3_000)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 2_000})
    index_dir = out / "_dedup_index"
    assert _index_run(out, parts[:2], cfg, tmp_path, index_dir).index == "full"
    before = (index_dir / "index.json").read_text()

    class Killed(Exception):
        pass

    import types

    monkeypatch.setattr(pi, "shutil", types.SimpleNamespace(rmtree=lambda *a, **k: None))  # killed: no clean-up
    calls = []
    if where == "partition":
        real = pi.index_exact_partition

        def dying(*args):
            calls.append(args[2])
            if len(calls) == 3:
                raise Killed
            return real(*args)

        monkeypatch.setattr(pi, "index_exact_partition", dying)
    else:
        def dying(path, text):
            raise Killed

        monkeypatch.setattr(corpus_state, "write_durable", dying)
    with pytest.raises(Killed):
        _index_run(out, parts, cfg, tmp_path, index_dir)
    monkeypatch.undo()
    assert (index_dir / "index.json").read_text() == before
    assert len([p for p in index_dir.iterdir() if p.is_dir()]) == 2  # the old layer and what was being written
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "layer"
    assert _index_run(out, parts, cfg, tmp_path, index_dir).index == "reused"
    names = {layer["name"] for layer in json.loads((index_dir / "index.json").read_text())["layers"]}
    assert {p.name for p in index_dir.iterdir() if p.is_dir()} == names and len(names) == 2


def test_index_unusable_search_does_without(tmp_path):
    """The index is a cache: when its folder cannot be written (here a file is in its place) the
    search scatters the committed keys as without it, with the same rows."""
    out = tmp_path / "out"
    parts = _fake_committed(out, 2, 2_000)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 1_000})
    (out / "_dedup_index").write_text("not a folder")
    assert _index_run(out, parts, cfg, tmp_path, out / "_dedup_index").index == "unusable"


def test_index_with_pool_map_same_rows(tmp_path):
    """The index built and read by the process runner's worker processes (spawned: everything a step
    gets is pickled) gives the single search's rows."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from corpusclean.tasks.corpus import dedup_partitions as dp

    out = tmp_path / "out"
    parts = _fake_committed(out, 3, 3_000)
    cfg = Config().dedup.model_copy(update={"partition_paragraphs": 2_000})
    single = find_run_duplicates([_new_shard(out, parts, 500, 40)], cfg, committed=committed_parts(out, parts, set()),
                                 partitioned=False)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for want in ("full", "reused"):
            got = find_run_duplicates([_new_shard(out, parts, 500, 40)], cfg, committed=committed_parts(out, parts, set()),
                                      work_dir=tmp_path, mapper=dp.PoolMap(pool, 2), index_dir=out / "_dedup_index")
            assert got.index == want
            assert _rows(got) == _rows(single) and _rewrites(got) == _rewrites(single) and _counts(got) == _counts(single)
