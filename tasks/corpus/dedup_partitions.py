"""The run-level duplicate search, partitioned: memory per process bounded by a partition, not the corpus.

Same decisions as ``corpus_dedup.find_run_duplicates`` over one array of keys (tested row for
row), computed as a sequence of independent steps over P partitions, exchanging Arrow files in
a work folder (the run's staging folder: on a shared file system under Dask):

1. **Scatter exact** (per segment = committed part or new shard): each keyed paragraph's
   ``(order, exact key, site hash, document, length)`` goes to partition ``exact_hi % P``. A
   segment writes one file sorted by partition (a "map output" with P+1 offsets), so the
   number of files is the number of segments, not segments x partitions.
2. **Exact pass** (per partition): every copy of one text is in one partition, so corpus-learned
   chrome (documents per (text, site)) and the exact groups (representative = earliest copy
   among content) are decided there. Output sorted by order: ``(order, chrome, representative)``.
3. **Gather + scatter bands** (per segment): a segment reads its rows' status back (a binary
   search in each partition's output), writes the ``(order, band, band key, known)`` entries of
   its content representatives to partition ``band_key % P`` and the edges that keep committed
   clusters (``order -> cluster``) that this run does not decide again.
4. **Band pass** (per partition): every member of a band group is in one partition, so the
   candidate pairs are those of the single search (same small/big group rules); pairs go to
   pair partition ``hash(pair) % P``.
5. **Verify** (per pair partition): distinct pairs, both-known pairs skipped, the others
   verified on the exact Jaccard of the texts, read for the rows needed only.
6. **Clusters**: connected components over the edges (exact copies, verified pairs, kept
   committed clusters), which only clustered paragraphs have; the original of a cluster is its
   earliest member, ``kind`` exact when the member's text is the original's.

``order`` = ``segment << 40 | paragraph row``: corpus order (a segment's key rows ascend), so
"lowest index" in the single search is "lowest order" here. Memory per step is a partition's
share (about ``keyed paragraphs / P``); P comes from the corpus size (``partition_paragraphs``
per partition). Any P gives the same decisions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from ..stages.dedup import KIND_EXACT, KIND_NEAR, _band_pairs, _group_starts, jaccard_pairs
from .dedup_index import read_bands, read_exact, read_ipc
from ..stages.minhash import batch_shingle_hashes, normalize_for_dedup, unique_sorted
from ..stages.sketch import DedupKeys

SEG_SHIFT = 40
ROW_MASK = (1 << SEG_SHIFT) - 1
_MIX = np.uint64(0x9E3779B97F4A7C15)

Mapper = Callable[[Callable, list[tuple]], list]


def local_map(fn: Callable, argsets: list[tuple]) -> list:
    """The local runner: one partition (or segment) at a time, in this process."""
    return [fn(*args) for args in argsets]


def _call(fn, args):
    return fn(*args)


class PoolMap:
    """Each step's calls on a ``concurrent.futures`` executor: the run's worker processes, idle while
    the flow process searches. ``parallel``: how many run at once (``search`` makes at least that
    many partitions of a large run, so that every step has work for each of them)."""

    def __init__(self, executor, parallel: int) -> None:
        self.executor, self.parallel = executor, parallel
        self.cpu_seconds = 0.0  # CPU time of the calls run in the workers (the stage's report counts it)

    def __call__(self, fn: Callable, argsets: list[tuple]) -> list:
        if len(argsets) < 2:
            return local_map(fn, argsets)
        futures = [self.executor.submit(_timed_call, fn, args) for args in argsets]
        out = []
        for f in futures:
            value, cpu = f.result()
            self.cpu_seconds += cpu
            out.append(value)
        return out


def _timed_call(fn, args):
    import time

    started = time.thread_time()
    value = fn(*args)
    return value, time.thread_time() - started


#: Keyed paragraphs from which a parallel mapper gets one partition per worker (below, one).
PARALLEL_MIN_PARAGRAPHS = 50_000


def dask_map(client) -> Mapper:
    """Each step's partitions as Dask futures on ``client``'s workers (results gathered back: small).

    A ``Segment`` (its key rows, documents and sites: ~20 bytes per keyed paragraph) is sent to
    the cluster once, with ``scatter``, and referred to by its future in every step that reads
    it, rather than embedded in each step's task graph."""
    shipped: dict[int, tuple] = {}  # id(segment) -> (future, segment): the segment is kept so its id stays its own

    def ship(arg):
        if not isinstance(arg, Segment):
            return arg
        if id(arg) not in shipped:
            shipped[id(arg)] = (client.scatter(arg, hash=False), arg)
        return shipped[id(arg)][0]

    def run(fn: Callable, argsets: list[tuple]) -> list:
        argsets = [tuple(ship(a) for a in args) for args in argsets]
        futures = client.map(_call, [fn] * len(argsets), argsets, pure=False)
        return client.gather(futures)

    return run


def partitions_for(n: int, per_partition: int) -> int:
    return max(1, -(-n // max(1, per_partition)))


# --------------------------------------------------------------------------------------
# Segment inputs (small and picklable: what a worker needs to read one segment)
# --------------------------------------------------------------------------------------


@dataclass
class Segment:
    index: int  # position in corpus order
    key_rows: np.ndarray  # paragraph row of each keyed row (ascending)
    key_doc: np.ndarray
    key_len: np.ndarray
    doc_sites: list[str]
    text_path: Path  # the paragraphs (staged Arrow, or a committed part's Parquet)
    keys_path: Path | None = None  # keys file (staged or committed index), read when keys is None
    live: np.ndarray | None = None  # committed: keyed rows of the keys file that are still live
    keys: DedupKeys | None = None  # keys already in memory (tests, in-process runs)
    # Committed decisions (None for this run's shards), aligned with key_rows.
    old_chrome: np.ndarray | None = None
    old_cluster: list[str | None] | None = None

    def _superseded_in_file(self) -> bool:
        """Whether the keys file also holds rows that are no longer live (see ``live``)."""
        return self.live is not None and not self.live.all()

    def _file_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the keys file of the given keyed rows."""
        return np.flatnonzero(self.live)[rows] if self._superseded_in_file() else rows

    def load_exact(self) -> np.ndarray:
        """The exact keys of the keyed rows, (n, 2), without reading the band keys."""
        if self.keys is not None:
            return np.asarray(self.keys.exact)
        exact = read_exact(self.keys_path)
        return exact[self.live] if self._superseded_in_file() else exact

    def load_bands(self, rows: np.ndarray) -> np.ndarray:
        """The band keys of the given keyed rows (ascending) only."""
        if self.keys is not None:
            return np.asarray(self.keys.bands)[rows]
        return read_bands(self.keys_path, self._file_rows(rows))

    def order(self) -> np.ndarray:
        return (np.int64(self.index) << np.int64(SEG_SHIFT)) | self.key_rows.astype(np.int64)


def _site_hash(sites: Sequence[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(s.encode("utf-8", "surrogatepass")) for s in sites), np.uint64,
                       count=len(sites))


# --------------------------------------------------------------------------------------
# Map outputs: one file per producer, rows sorted by destination partition
# --------------------------------------------------------------------------------------


def _write(path: Path, columns: dict[str, np.ndarray]) -> None:
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)  # one record batch: columns read back as zero-copy views


def _scatter(path: Path, part: np.ndarray, n_parts: int, columns: dict[str, np.ndarray]) -> list[int]:
    """Write ``columns`` sorted (stably) by ``part``; return the P+1 offsets of the partitions."""
    order = np.argsort(part, kind="stable")
    _write(path, {k: v[order] for k, v in columns.items()})
    return np.searchsorted(part[order], np.arange(n_parts + 1)).tolist()


# (file, first row, end row, producing segment[, record batch]) of one partition in one map output
Slice = tuple

# Columns of a segment's map output that hold segment-local numbers (uint32 on disk: the segment is
# the file's), read back as orders ``segment << 40 | number``.
_LOCAL = ("o", "doc")


def _read_slices(slices: Sequence[Slice], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The partition's rows from every map output, concatenated (in producer order)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for path, lo, hi, seg, *batch in slices:
        if hi <= lo:
            continue
        if batch:
            table = pa.ipc.open_file(pa.memory_map(str(path))).get_batch(batch[0]).slice(lo, hi - lo)
        else:
            table = read_ipc(Path(path)).select(list(names)).slice(lo, hi - lo)
        for k in names:
            col = table.column(k).to_numpy(zero_copy_only=False)
            if seg >= 0 and k in _LOCAL:
                col = (np.int64(seg) << np.int64(SEG_SHIFT)) | col.astype(np.int64)
            parts[k].append(col)
    return {k: (np.concatenate(v) if v else None) for k, v in parts.items()}


def _slices(paths: Sequence[Path], offsets: Sequence[Sequence[int]], p: int, per_segment: bool = True) -> list[Slice]:
    return [(str(path), off[p], off[p + 1], s if per_segment else -1)
            for s, (path, off) in enumerate(zip(paths, offsets))]


def _local(values: np.ndarray) -> np.ndarray:
    if values.size and int(values.max()) > np.iinfo(np.uint32).max:
        raise ValueError("more than 2**32 paragraph rows in one segment")
    return values.astype(np.uint32)


# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


def scatter_exact(seg: Segment, n_parts: int, path: Path) -> list[int]:
    exact = seg.load_exact()
    return _scatter(path, exact[:, 0] % np.uint64(n_parts), n_parts, {
        "o": _local(seg.key_rows),
        "hi": np.ascontiguousarray(exact[:, 0]),
        "lo": np.ascontiguousarray(exact[:, 1]),
        "site": _site_hash(seg.doc_sites)[seg.key_doc] if len(seg.key_doc) else np.zeros(0, np.uint64),
        "doc": _local(seg.key_doc),
        "len": seg.key_len.astype(np.int32),
    })


_EXACT_COLUMNS = ("o", "hi", "lo", "site", "doc", "len")


def exact_pass(slices: list[Slice], min_docs: int, max_chars: int, path: Path) -> dict[str, int]:
    """Chrome and exact groups of one exact partition; writes ``(o, chrome, rep)`` sorted by o
    (rep: the earliest content copy of the row's text; -1 on chrome)."""
    cols = _read_slices(slices, _EXACT_COLUMNS)
    o = cols["o"] if cols["o"] is not None else np.zeros(0, np.int64)
    n = o.shape[0]
    chrome = np.zeros(n, bool)
    rep = np.full(n, -1, np.int64)
    if n:
        hi, lo = cols["hi"], cols["lo"]
        key_order = np.lexsort((lo, hi))  # stable: ascending o inside a group
        starts = _group_starts(np.stack((hi[key_order], lo[key_order]), axis=1))
        sizes = np.diff(np.append(starts, n))
        group = np.empty(n, np.int64)
        group[key_order] = np.repeat(np.arange(starts.shape[0]), sizes)
        if min_docs > 0:
            _, site = np.unique(cols["site"], return_inverse=True)
            site = site.astype(np.int64).reshape(-1)
            pair_code = group * (int(site.max()) + 1) + site
            pair_ids = unique_sorted(pair_code)
            pair = np.searchsorted(pair_ids, pair_code)
            _, doc = np.unique(cols["doc"], return_inverse=True)
            doc = doc.astype(np.int64).reshape(-1)
            n_docs = int(doc.max()) + 1
            pair_doc = unique_sorted(pair * n_docs + doc)
            docs_per_pair = np.bincount(pair_doc // n_docs, minlength=pair_ids.shape[0])
            chrome = (docs_per_pair[pair] >= min_docs) & (cols["len"] <= max_chars)
        # The representative of each exact group among content rows: its earliest content row.
        content = np.flatnonzero(~chrome[key_order])
        c_rows = key_order[content]  # content rows, grouped by text, ascending o inside
        c_group = group[c_rows]
        first = np.concatenate(([True], c_group[1:] != c_group[:-1])) if c_rows.size else np.zeros(0, bool)
        first_row = c_rows[first]
        rep[c_rows] = o[np.repeat(first_row, np.diff(np.append(np.flatnonzero(first), c_rows.size)))]
    _write(path, {"o": o, "chrome": chrome, "rep": rep})
    return {"rows": n, "chrome": int(chrome.sum()), "exact_edges": int(np.count_nonzero((rep >= 0) & (rep != o)))}


def _gather_status(seg: Segment, exact_out: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(chrome, rep) of a segment's keyed rows, from every exact partition's output."""
    n = len(seg.key_rows)
    chrome = np.zeros(n, bool)
    rep = np.full(n, -1, np.int64)
    lo_o, hi_o = np.int64(seg.index) << np.int64(SEG_SHIFT), np.int64(seg.index + 1) << np.int64(SEG_SHIFT)
    for path in exact_out:
        table = read_ipc(path)
        o = table.column("o").to_numpy()  # a view of the mapped file: the search touches log n pages
        a, b = (int(x) for x in np.searchsorted(o, [lo_o, hi_o]))
        if b <= a:
            continue
        k = np.searchsorted(seg.key_rows, o[a:b] & ROW_MASK)
        part = table.slice(a, b - a)
        chrome[k] = part.column("chrome").to_numpy(zero_copy_only=False)
        rep[k] = part.column("rep").to_numpy()
    return chrome, rep


def segment_status(seg: Segment, exact_out: list[Path]) -> tuple[np.ndarray, set[str]]:
    """The segment's chrome now, and (committed) the clusters broken by rows that became chrome."""
    chrome, _ = _gather_status(seg, exact_out)
    dirty: set[str] = set()
    if seg.old_cluster is not None:
        for i in np.flatnonzero(~seg.old_chrome & chrome).tolist():
            if seg.old_cluster[i] is not None:
                dirty.add(seg.old_cluster[i])
    return chrome, dirty


def _cluster_node(cids: Sequence[str]) -> np.ndarray:
    """A negative node id per committed cluster (never an order, so never a cluster's original)."""
    h = np.fromiter((xxhash.xxh3_64_intdigest(c.encode()) & ((1 << 62) - 1) for c in cids), np.int64, count=len(cids))
    return -1 - h


def scatter_bands(seg: Segment, exact_out: list[Path], dirty: set[str], n_parts: int, path: Path,
                  star_path: Path, n_bands: int) -> list[int]:
    chrome, rep = _gather_status(seg, exact_out)
    o = seg.order()
    is_rep = (rep >= 0) & (rep == o)
    known = np.zeros(len(o), bool)
    star_src = np.zeros(0, np.int64)
    star_dst = np.zeros(0, np.int64)
    if seg.old_cluster is not None:
        # Committed rows keep their decisions among themselves unless their cluster is broken
        # (a row superseded or now chrome) or they come back from chrome (never verified).
        cl = seg.old_cluster
        broken = np.fromiter((c is not None and c in dirty for c in cl), bool, count=len(cl))
        known = ~chrome & ~(seg.old_chrome & ~chrome) & ~broken
        linked = np.flatnonzero(known & np.fromiter((c is not None for c in cl), bool, count=len(cl)))
        star_src = o[linked]
        star_dst = _cluster_node([cl[i] for i in linked.tolist()])
    _write(star_path, {"src": star_src, "dst": star_dst})
    reps = np.flatnonzero(is_rep)
    bands = seg.load_bands(reps)  # the representatives' band keys only
    rows = _local(seg.key_rows[reps])
    known = known[reps]
    # One record batch per band, each sorted by partition: a band partition reads one band at a
    # time, and this holds one band's entries at a time.
    offsets: list[list[int]] = []
    schema = pa.schema([("o", pa.uint32()), ("key", pa.uint64()), ("known", pa.bool_())])
    with pa.ipc.new_file(str(path), schema) as writer:
        for j in range(n_bands):
            key = np.ascontiguousarray(bands[:, j])
            part = key % np.uint64(n_parts)
            order = np.argsort(part, kind="stable")
            writer.write_batch(pa.record_batch([pa.array(rows[order]), pa.array(key[order]), pa.array(known[order])],
                                               schema=schema))
            offsets.append(np.searchsorted(part[order], np.arange(n_parts + 1)).tolist())
    return offsets


def _pair_partition(lo: np.ndarray, hi: np.ndarray, n_parts: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = (lo.astype(np.uint64) * _MIX) ^ hi.astype(np.uint64)
        h ^= h >> np.uint64(31)
        h *= _MIX
        h ^= h >> np.uint64(29)
    return h % np.uint64(n_parts)


def _unique_pairs(lo: np.ndarray, hi: np.ndarray, *extra: np.ndarray):
    if lo.size == 0:
        return (lo, hi, *extra)
    order = np.lexsort((hi, lo))
    lo, hi = lo[order], hi[order]
    keep = np.concatenate(([True], (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])))
    return (lo[keep], hi[keep], *(e[order][keep] for e in extra))


def band_pass(files: list[str], offsets: list[list[int]], p: int, n_bands: int, n_parts: int,
              path: Path) -> tuple[list[int], dict[str, int]]:
    """Candidate pairs of one band partition, one band at a time (the single search's rules: every
    group of equal keys of a band is here whole)."""
    los, his, boths = [], [], []
    n_big = 0
    largest = 0
    for j in range(n_bands):
        cols = _read_slices([(f, off[j][p], off[j][p + 1], s, j) for s, (f, off) in enumerate(zip(files, offsets))],
                            ("o", "key", "known"))
        if cols["o"] is None or cols["o"].size < 2:
            continue
        members, known = cols["o"], cols["known"]  # members ascend (segments in order, rows ascending)
        left, right, big, lg = _band_pairs(members, cols["key"])
        del cols
        n_big += big
        largest = max(largest, lg)
        if left.size:
            lo, hi = np.minimum(left, right), np.maximum(left, right)
            lo, hi = _unique_pairs(lo, hi)
            los.append(lo)
            his.append(hi)
            boths.append(known[np.searchsorted(members, lo)] & known[np.searchsorted(members, hi)])
    lo = np.concatenate(los) if los else np.zeros(0, np.int64)
    hi = np.concatenate(his) if his else np.zeros(0, np.int64)
    both = np.concatenate(boths) if boths else np.zeros(0, bool)
    lo, hi, both = _unique_pairs(lo, hi, both)
    offsets_out = _scatter(path, _pair_partition(lo, hi, n_parts), n_parts, {"lo": lo, "hi": hi, "known": both})
    return offsets_out, {"big_band_groups": n_big, "max_band_group": largest}


class _Texts:
    """Texts of given orders, reading from each segment only the rows (row groups) needed."""

    def __init__(self, text_paths: Sequence[str]) -> None:
        self.text_paths = text_paths

    def read(self, orders: np.ndarray) -> list[str]:
        out: list[str | None] = [None] * len(orders)
        seg = orders >> SEG_SHIFT
        rows = orders & ROW_MASK
        for s in np.unique(seg).tolist():
            where = np.flatnonzero(seg == s)
            want = rows[where]
            path = Path(self.text_paths[s])
            if path.suffix == ".parquet":
                pf = pq.ParquetFile(path)
                sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
                starts = np.concatenate(([0], np.cumsum(sizes)))
                groups = np.unique(np.searchsorted(starts, want, side="right") - 1)
                column = pf.read_row_groups(groups.tolist(), columns=["text"]).column("text")
                base = np.concatenate(([0], np.cumsum(np.asarray(sizes)[groups])))
                g = np.searchsorted(groups, np.searchsorted(starts, want, side="right") - 1)
                local = base[g] + (want - starts[groups[g]])
            else:
                column = pa.ipc.open_file(pa.memory_map(str(path))).read_all().column("text")
                local = want
            for slot, t in zip(where.tolist(), take_rows(column, np.asarray(local, np.int64))):
                out[slot] = t
        return out  # type: ignore[return-value]


def take_rows(column: pa.ChunkedArray, rows: np.ndarray) -> list:
    """``column.take(rows)`` chunk by chunk: a chunked ``take`` first concatenates every chunk,
    i.e. copies a whole staged text column (~1 GB for a 1 GB shard) to read a few thousand rows."""
    if isinstance(column, pa.Array):
        return column.take(pa.array(rows)).to_pylist()
    ends = np.cumsum([len(c) for c in column.chunks])
    which = np.searchsorted(ends, rows, side="right")
    out: list = [None] * len(rows)
    for c in np.unique(which).tolist():
        at = np.flatnonzero(which == c)
        local = rows[at] - (ends[c - 1] if c else 0)
        for slot, value in zip(at.tolist(), column.chunk(c).take(pa.array(local)).to_pylist()):
            out[slot] = value
    return out


def verify_pass(slices: list[Slice], text_paths: list[str], ngram: int, threshold: float, chunk: int,
                path: Path) -> dict[str, int]:
    cols = _read_slices(slices, ("lo", "hi", "known"))
    if cols["lo"] is None:
        _write(path, {"src": np.zeros(0, np.int64), "dst": np.zeros(0, np.int64)})
        return {"candidate_pairs": 0, "known_pairs": 0, "verified_pairs": 0}
    lo, hi, known = _unique_pairs(cols["lo"], cols["hi"], cols["known"])
    n_cand, n_known = int(lo.size), int(known.sum())
    lo, hi = lo[~known], hi[~known]
    texts = _Texts(text_paths)

    def shingles(orders: np.ndarray) -> list[np.ndarray]:
        return batch_shingle_hashes([normalize_for_dedup(t) for t in texts.read(orders)], ngram)

    ok = jaccard_pairs(lo, hi, shingles, chunk) >= threshold if lo.size else np.zeros(0, bool)
    _write(path, {"src": lo[ok], "dst": hi[ok]})
    # (as the single search counts them: distinct pairs left to verify)
    return {"candidate_pairs": n_cand - n_known, "known_pairs": n_known, "verified_pairs": int(ok.sum())}


def exact_edges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = read_ipc(path)
    o, rep = table.column("o").to_numpy(), table.column("rep").to_numpy()
    dup = np.flatnonzero((rep >= 0) & (rep != o))
    return o[dup].copy(), rep[dup].copy()


def read_edges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = read_ipc(path)
    return table.column("src").to_numpy().copy(), table.column("dst").to_numpy().copy()


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


@dataclass
class Clusters:
    """Result of the partitioned search, per segment (aligned with each segment's key_rows)."""

    chrome: list[np.ndarray]
    clustered: list[np.ndarray]  # key indices of the segment's rows in a cluster (ascending)
    original: list[np.ndarray]  # order of their cluster's original (aligned with clustered)
    kind: list[np.ndarray]  # KIND_* codes of every keyed row
    counts: dict[str, int] = field(default_factory=dict)


def search(segments: list[Segment], dedup, work: Path, *, dropped: set[str] | None = None,
           mapper: Mapper = local_map, per_partition: int = 500_000, n_parts: int | None = None,
           verify_chunk: int = 4096) -> Clusters:
    """Chrome and duplicate clusters over ``segments`` (corpus order), partitioned. ``dropped``:
    committed clusters that lose rows (decided again)."""
    from ..stages.sketch import lsh_shape

    from ..plumbing.timeline import span

    inner = mapper

    def mapper(fn: Callable, argsets: list[tuple]) -> list:  # each step on the run's timeline
        with span(f"dedup:{fn.__name__}", n=len(argsets)):
            return inner(fn, argsets)

    n_bands = lsh_shape(dedup)[0]
    n = sum(len(s.key_rows) for s in segments)
    P = n_parts or partitions_for(n, per_partition)
    if not n_parts and n >= PARALLEL_MIN_PARAGRAPHS:  # any P gives the same decisions
        P = max(P, getattr(inner, "parallel", 1))
    work.mkdir(parents=True, exist_ok=True)
    S = len(segments)
    for s in segments:
        if len(s.key_rows) > 1 and not bool(np.all(s.key_rows[1:] > s.key_rows[:-1])):
            raise ValueError("key rows of a segment must ascend")
    # 1-2. exact
    ex_map = [work / f"exact-map-{s:05d}.arrow" for s in range(S)]
    ex_off = mapper(scatter_exact, [(seg, P, p) for seg, p in zip(segments, ex_map)])
    ex_out = [work / f"exact-{p:05d}.arrow" for p in range(P)]
    ex_stats = mapper(exact_pass, [(_slices(ex_map, ex_off, p), dedup.repeated_line_min_docs,
                                    dedup.repeated_line_max_chars, ex_out[p]) for p in range(P)])
    _unlink(ex_map)
    # 3. status back to segments; committed clusters broken by new chrome
    status = mapper(segment_status, [(seg, ex_out) for seg in segments])
    chrome = [c for c, _ in status]
    dirty = set(dropped or ())
    for _, d in status:
        dirty |= d
    band_map = [work / f"band-map-{s:05d}.arrow" for s in range(S)]
    star = [work / f"star-{s:05d}.arrow" for s in range(S)]
    band_off = mapper(scatter_bands, [(seg, ex_out, dirty, P, band_map[i], star[i], n_bands)
                                      for i, seg in enumerate(segments)])
    # 4. candidate pairs per band partition
    pair_map = [work / f"pair-map-{p:05d}.arrow" for p in range(P)]
    bp = mapper(band_pass, [([str(f) for f in band_map], band_off, p, n_bands, P, pair_map[p]) for p in range(P)])
    _unlink(band_map)
    # 5. verification per pair partition
    text_paths = [str(seg.text_path) for seg in segments]
    near = [work / f"near-{p:05d}.arrow" for p in range(P)]
    vp = mapper(verify_pass, [(_slices(pair_map, [o for o, _ in bp], p, per_segment=False), text_paths, dedup.ngram, dedup.threshold,
                               verify_chunk, near[p]) for p in range(P)])
    _unlink(pair_map)
    # 6. connected components over the edges (clustered paragraphs only)
    with span("dedup:clusters"):
        return _clusters(segments, ex_out, near, star, P, ex_stats, bp, vp, chrome)


def _clusters(segments, ex_out, near, star, P, ex_stats, bp, vp, chrome):
    src_parts, dst_parts = [], []
    ex_src_parts, ex_dst_parts = [], []
    for path in ex_out:
        a, b = exact_edges(path)
        ex_src_parts.append(a)
        ex_dst_parts.append(b)
    for path in near + star:
        a, b = read_edges(path)
        src_parts.append(a)
        dst_parts.append(b)
    _unlink(ex_out + near + star)
    ex_src = np.concatenate(ex_src_parts) if ex_src_parts else np.zeros(0, np.int64)
    ex_dst = np.concatenate(ex_dst_parts) if ex_dst_parts else np.zeros(0, np.int64)
    src = np.concatenate([ex_src] + src_parts)
    dst = np.concatenate([ex_dst] + dst_parts)
    nodes, inv = np.unique(np.concatenate((src, dst)), return_inverse=True)
    inv = inv.reshape(-1)
    m = nodes.shape[0]
    comp_min = np.zeros(0, np.int64)
    labels = np.zeros(0, np.int64)
    if m:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        e = src.shape[0]
        graph = coo_matrix((np.ones(e, np.int8), (inv[:e], inv[e:])), shape=(m, m)).tocsr()
        _, labels = connected_components(graph, directed=True, connection="weak")
        real = nodes >= 0
        comp_min = np.full(int(labels.max()) + 1, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(comp_min, labels[real], nodes[real])
        comp_real = np.bincount(labels[real], minlength=comp_min.shape[0])
    # Per segment: original and kind of each clustered row.
    in_cluster = [np.zeros(0, np.int64) for _ in segments]
    original = [np.zeros(0, np.int64) for _ in segments]
    kind = [np.zeros(len(seg.key_rows), np.int8) for seg in segments]
    n_clusters = n_dups = 0
    if m:
        real_nodes = np.flatnonzero(nodes >= 0)
        clustered = real_nodes[comp_real[labels[real_nodes]] >= 2]
        c_order = nodes[clustered]
        c_orig = comp_min[labels[clustered]]
        # exact representative of each clustered row (own order for a representative)
        c_rep = c_order.copy()
        if ex_src.size:
            pos = np.searchsorted(nodes, ex_src)
            where = np.searchsorted(clustered, pos)
            ok = (where < clustered.size) & (clustered[np.minimum(where, clustered.size - 1)] == pos)
            c_rep[where[ok]] = ex_dst[ok]
        c_kind = np.where(c_orig == c_order, 0, np.where(c_rep == c_orig, KIND_EXACT, KIND_NEAR)).astype(np.int8)
        n_clusters = int(np.count_nonzero(c_orig == c_order))
        n_dups = int(np.count_nonzero(c_orig != c_order))
        c_seg = c_order >> SEG_SHIFT
        for s in np.unique(c_seg).tolist():
            w = np.flatnonzero(c_seg == s)
            k = np.searchsorted(segments[s].key_rows, c_order[w] & ROW_MASK)  # ascending, as c_order
            in_cluster[s], original[s] = k, c_orig[w]
            kind[s][k] = c_kind[w]
    counts = {
        "partitions": P,
        "repeated_lines": int(sum(c.sum() for c in chrome)),
        "clusters": n_clusters,
        "duplicates": n_dups,
        "candidate_pairs": sum(v["candidate_pairs"] for v in vp),
        "verified_pairs": sum(v["verified_pairs"] for v in vp),
        "known_pairs_skipped": sum(v["known_pairs"] for v in vp),
        "big_band_groups": sum(b["big_band_groups"] for _, b in bp),
        "exact_edges": sum(x["exact_edges"] for x in ex_stats),
    }
    return Clusters(chrome, in_cluster, original, kind, counts)


def _unlink(paths: Sequence[Path]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
