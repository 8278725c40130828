"""The run-level duplicate search, partitioned: memory per process bounded by a partition, not the corpus.

Same decisions as ``corpus_dedup.find_run_duplicates`` over one array of keys (tested row for
row), computed as a sequence of independent steps over P partitions, exchanging Arrow files in
a work folder (the run's staging folder: on a shared file system under Dask):

0. **Info** (per segment): a committed part is handed to the steps as its files only; each step
   reads the columns it needs there. This one counts its live keyed rows and lists the committed
   clusters that lose superseded rows.
1. **Scatter exact** (per segment = committed part or new shard): each keyed paragraph's
   ``(order, exact key, site hash, document, length, committed cluster node)`` goes to partition
   ``exact_hi % P``. A segment writes one file sorted by partition (a "map output", its P+1
   offsets in a ``.off.npy`` beside it), so the number of files is the number of segments, not
   segments x partitions, and the coordinating process never holds offsets.
2. **Exact pass** (per partition): every copy of one text is in one partition, so corpus-learned
   chrome (documents per (text, site)) and the exact groups (representative = earliest copy
   among content) are decided there. Output sorted by order: ``(order, chrome, representative,
   inode)``, inode marking an exact copy whose representative is in its own committed cluster;
   returns the committed clusters that lose a row to chrome (dirty).
3. **Gather + scatter bands** (per segment): a segment reads its rows' status back (a binary
   search in each partition's output), writes the ``(order, band, band key, known)`` entries of
   its content representatives to partition ``band_key % P`` and the edges that keep committed
   clusters (``order -> cluster``) that this run does not decide again (the "star" file).
4. **Band pass** (per partition): every member of a band group is in one partition, so the
   candidate pairs are those of the single search (same small/big group rules); pairs go to
   pair partition ``hash(pair) % P``.
5. **Verify** (per pair partition): distinct pairs, both-known pairs skipped, the others
   verified on the exact Jaccard of the texts, read for the rows needed only.
6. **Clusters** (the coordinating process): connected components over the edges this run adds
   (exact copies but those inside a committed cluster that stands, verified pairs) and the star
   edges of the committed clusters those edges touch (two segment steps find them); committed
   clusters no edge touches are not read at all. The original of a cluster is its earliest member.
7. **Ids** (per segment holding originals): the originals' paragraph ids.
8. **Apply** (per segment): chrome, cluster and kind of every row (``kind`` exact when the row's
   exact representative is the original), committed decisions kept for untouched clusters. A
   committed part compares them with its committed decisions there and, when they differ, stages
   them for its rewrite: what comes back is a few counts per part.

``order`` = ``segment << 40 | paragraph row``: corpus order (a segment's key rows ascend), so
"lowest index" in the single search is "lowest order" here. Memory per step is a partition's
share (about ``keyed paragraphs / P``); P comes from the corpus size (``partition_paragraphs``
per partition). Any P gives the same decisions. The coordinating process holds this run's shards'
row metadata and decisions, the edges of the clusters this run touches, and a few numbers per
segment and partition: nothing per committed paragraph.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from ..stages.dedup import KIND_EXACT, KIND_NEAR, _band_pairs, _group_starts, jaccard_pairs
from .dedup_index import docs_path, read_bands, read_exact, read_ipc, write_ipc
from ..plumbing.records import make_paragraph_id
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
    """One segment of the corpus (a committed part or a new shard), as small as a step's argument can be.

    A new shard's row metadata is in memory (this run's paragraphs). A committed part's is not:
    ``key_rows`` etc. are None and every step reads what it needs from the part's index files
    (``keys_path``, its ``.docs.arrow``, ``decisions_path``), in the process that runs the step,
    so the coordinating process holds nothing per committed paragraph."""

    index: int  # position in corpus order
    text_path: Path  # the paragraphs (staged Arrow, or a committed part's Parquet)
    keys_path: Path | None = None  # keys file (staged or committed index), read when keys is None
    key_rows: np.ndarray | None = None  # paragraph row of each keyed row (ascending); None: read from the files
    key_doc: np.ndarray | None = None
    key_len: np.ndarray | None = None
    key_pidx: np.ndarray | None = None
    doc_sites: list[str] | None = None
    doc_ids: list[str] | None = None
    keys: DedupKeys | None = None  # keys already in memory (tests, in-process runs)
    decisions_path: Path | None = None  # a committed part: its committed decisions
    changed: frozenset[str] = frozenset()  # a committed part: its inputs superseded by this run
    # A committed part whose keys are in the persisted partitioned index (``partitioned_index``): its
    # exact and band rows are read there by the exact and band passes, not scattered by this run.
    indexed: bool = False
    index_rep_path: str | None = None  # indexed: its rows the index holds as representatives (a bitmap)

    @property
    def committed(self) -> bool:
        return self.decisions_path is not None

    def meta(self) -> SegmentRows:
        """The segment's live keyed rows (a committed part's read from its index files)."""
        if self.key_rows is not None:
            return SegmentRows(self.key_rows, self.key_doc, self.key_len, None, None)
        keys = read_ipc(self.keys_path)
        key_doc = keys.column("doc").to_numpy()
        doc_live = live = None
        if self.changed:
            sources = read_ipc(docs_path(self.keys_path)).column("source_path")
            doc_live = ~np.asarray(pc.is_in(sources, value_set=pa.array(sorted(self.changed), pa.string()))
                                   .to_numpy(zero_copy_only=False), bool)
            if not doc_live.all():
                live = doc_live[key_doc]
        pick = (lambda a: np.array(a)) if live is None else (lambda a: a[live])
        return SegmentRows(pick(keys.column("row").to_numpy()), pick(key_doc), pick(keys.column("length").to_numpy()),
                           live, doc_live)

    def sites(self) -> list[str]:
        return self.doc_sites if self.doc_sites is not None else read_ipc(docs_path(self.keys_path)).column("site").to_pylist()

    def old_decisions(self, rows: SegmentRows) -> tuple[np.ndarray, list[str | None], np.ndarray]:
        """A committed part's decisions as committed (chrome, cluster, kind), on its live keyed rows."""
        decided = read_ipc(self.decisions_path)
        chrome = decided.column("chrome").to_numpy(zero_copy_only=False)
        kind = decided.column("kind").to_numpy()
        cluster = decided.column("cluster")
        if rows.live is not None:
            keep = pa.array(rows.live)
            chrome, kind, cluster = chrome[rows.live], kind[rows.live], cluster.filter(keep)
        return np.asarray(chrome, bool), cluster.to_pylist(), np.array(kind)

    def paragraph_ids(self, orders: np.ndarray) -> list[str]:
        """The paragraph_id of the given orders (rows of this segment, ascending)."""
        rows = self.meta()
        k = np.searchsorted(rows.key_rows, orders & ROW_MASK)
        if self.key_rows is not None:
            doc, pidx, ids = self.key_doc[k], self.key_pidx[k], self.doc_ids
            return [make_paragraph_id(ids[d], int(i)) for d, i in zip(doc.tolist(), pidx.tolist())]
        keys = read_ipc(self.keys_path)
        file_rows = k if rows.live is None else np.flatnonzero(rows.live)[k]
        doc = keys.column("doc").to_numpy()[file_rows]
        pidx = keys.column("pidx").to_numpy()[file_rows]
        ids = read_ipc(docs_path(self.keys_path)).column("doc_id").take(pa.array(doc)).to_pylist()
        return [make_paragraph_id(d, int(i)) for d, i in zip(ids, pidx.tolist())]

    def load_exact(self, rows: SegmentRows) -> np.ndarray:
        """The exact keys of the keyed rows, (n, 2), without reading the band keys."""
        if self.keys is not None:
            return np.asarray(self.keys.exact)
        exact = read_exact(self.keys_path)
        return exact if rows.live is None else exact[rows.live]

    def load_bands(self, rows: SegmentRows, which: np.ndarray) -> np.ndarray:
        """The band keys of the given keyed rows (ascending) only."""
        if self.keys is not None:
            return np.asarray(self.keys.bands)[which]
        return read_bands(self.keys_path, which if rows.live is None else np.flatnonzero(rows.live)[which])

    def order(self, rows: SegmentRows) -> np.ndarray:
        return (np.int64(self.index) << np.int64(SEG_SHIFT)) | rows.key_rows.astype(np.int64)


@dataclass
class IndexLayers:
    """The persisted partitioned index as a search reads it (``partitioned_index``): its P and, per
    layer, its folder and which segment of this search each of its parts (slots) is (-1: not read,
    e.g. the part was rewritten since, or loses superseded rows this run). Small: a few numbers per part."""

    n_parts: int
    layers: list[tuple[str, np.ndarray]]  # (layer folder, slot -> segment index or -1)


def _layer_segments(o: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray | int, np.ndarray | slice]:
    """The segment of this search of each row of a layer (``o = slot << 40 | row``), and which are read.
    When every slot is read and slot i is segment ``lut[0] + i`` (the usual case): that shift and all rows."""
    if lut.size and lut[0] >= 0 and (lut.size == 1 or bool(np.all(np.diff(lut) == 1))):
        return int(lut[0]), slice(None)
    seg = lut[(o >> np.int64(SEG_SHIFT)).astype(np.int64)] if lut.size else np.full(o.shape, -1, np.int64)
    keep = seg >= 0
    return seg[keep], keep


def _as_search(seg: np.ndarray | int, values: np.ndarray) -> np.ndarray:
    """A layer's ``slot << 40 | local`` numbers (rows kept) as this search's ``segment << 40 | local``."""
    if isinstance(seg, int):
        return values + np.int64(seg << SEG_SHIFT) if seg else values
    return (seg.astype(np.int64) << np.int64(SEG_SHIFT)) | (values & np.int64(ROW_MASK))


def _layer_exact(index: IndexLayers, p: int, names: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """Exact partition ``p``'s rows of every layer (``o`` and ``doc`` as this search's orders)."""
    out = []
    for folder, lut in index.layers:
        got = _pread_range(os.path.join(folder, f"exact-{p:05d}.arrow"), 0, names)
        if got is None:
            continue
        seg, keep = _layer_segments(got["o"], lut)
        out.append({k: _as_search(seg, v[keep]) if k in _LOCAL else v[keep] for k, v in got.items()})
    return out


def _layer_bands(folder: str, p: int, n_bands: int, lut: np.ndarray):
    """Band partition ``p`` of one layer, one band at a time: ``(o, key)`` as this search's orders."""
    path = os.path.join(folder, f"band-{p:05d}.arrow")
    index = _load_index(path[:-len(".arrow")] + ".off.npy").reshape(n_bands, 4)  # [0, n, position of o, of key]
    fd = os.open(path, os.O_RDONLY)
    try:
        for j in range(n_bands):
            n = int(index[j, 1])
            if not n:
                yield None, None
                continue
            o = _pread_column(fd, int(index[j, 2]), np.int64, 0, n)
            key = _pread_column(fd, int(index[j, 3]), np.uint64, 0, n)
            seg, keep = _layer_segments(o, lut)
            yield _as_search(seg, o[keep]), key[keep]
    finally:
        os.close(fd)


@dataclass
class SegmentRows:
    key_rows: np.ndarray
    key_doc: np.ndarray
    key_len: np.ndarray
    live: np.ndarray | None  # committed: keyed rows of the keys file still live (None: all)
    doc_live: np.ndarray | None  # committed with superseded inputs: per document, still live


def _site_hash(sites: Sequence[str]) -> np.ndarray:
    return np.fromiter((xxhash.xxh3_64_intdigest(s.encode("utf-8", "surrogatepass")) for s in sites), np.uint64,
                       count=len(sites))


# --------------------------------------------------------------------------------------
# Map outputs: one file per producer, rows sorted by destination partition
# --------------------------------------------------------------------------------------


def _write(path: Path, columns: dict[str, np.ndarray]) -> None:
    write_ipc(path, pa.table({k: pa.array(v) for k, v in columns.items()}))  # one record batch: zero-copy views on read


def _file(work: Path, kind: str, i: int) -> Path:
    """A step's file in the work folder: every step finds its inputs by name, so what the coordinating
    process hands a step is a few numbers, not a list per segment or partition."""
    return Path(work) / f"{kind}-{i:05d}.arrow"


def _offsets_path(path: Path) -> Path:
    return path.with_suffix(".off.npy")


def _scatter(path: Path, part: np.ndarray, n_parts: int, columns: dict[str, np.ndarray]) -> int:
    """Write ``columns`` sorted (stably) by ``part``, and beside them the P+1 offsets of the partitions
    (read by the consumers, never by the coordinating process: S x P numbers in all)."""
    order = np.argsort(part, kind="stable")
    _write_indexed(path, {k: v[order] for k, v in columns.items()},
                   np.searchsorted(part[order], np.arange(n_parts + 1)))
    return int(part.shape[0])


def _write_indexed(path: Path, columns: dict[str, np.ndarray], offsets: np.ndarray) -> None:
    """``_write``, and beside it (``.off.npy``) ``offsets`` (the rows' ranges, a consumer reads one) and
    where each column's data starts in the file, so a consumer reads its range with pread (see
    ``_pread_slices``): ``[offsets, (name, position, dtype) per column, columns]``."""
    _write(path, columns)
    offsets = np.asarray(offsets, np.int64)
    # (an empty table is written with no record batch: no positions to read, no slice to read)
    positions = _column_positions(path, 1)[0] if offsets[-1] else np.zeros(len(columns), np.int64)
    index = [[_name_code(k), int(at), ord(np.dtype(v.dtype).char)] for (k, v), at in zip(columns.items(), positions)]
    np.save(_offsets_path(path), np.concatenate([offsets, np.array(index, np.int64).reshape(-1), [len(index)]]))


def _name_code(name: str) -> int:
    """A column name (up to 8 ASCII characters) as one int64, for the index beside a map output."""
    raw = name.encode("ascii")
    if len(raw) > 8:
        raise ValueError(f"map output column names have at most 8 characters: {name!r}")
    return int(np.frombuffer(raw.ljust(8, b"\0"), np.int64)[0])


def _scattered_columns(index: np.ndarray) -> tuple[int, dict[str, tuple[int, np.dtype]]]:
    """A ``_scatter`` output's index (``.off.npy``): ``[P+1 offsets, (name, position, dtype) per column,
    columns]`` -> (P, {name: (byte position of its data in the Arrow file, dtype)})."""
    n_cols = int(index[-1])
    n_parts = index.shape[0] - 2 - 3 * n_cols
    cols = np.asarray(index[n_parts + 1:-1]).reshape(n_cols, 3)
    return n_parts, {np.int64(c[0]).tobytes().rstrip(b"\0").decode("ascii"): (int(c[1]), np.dtype(chr(int(c[2]))))
                     for c in cols}

# Columns of a segment's map output that hold segment-local numbers (uint32 on disk: the segment is
# the file's), read back as orders ``segment << 40 | number``.
_LOCAL = ("o", "doc")


def _ranges(work: Path, kind: str, producers: int, p: int) -> np.ndarray:
    """Where partition ``p`` is in each map output of ``kind``: (producers, batches, 2) row ranges."""
    if not producers:
        return np.zeros((0, 1, 2), np.int64)
    out = [np.load(_offsets_path(_file(work, kind, s)), mmap_mode="r") for s in range(producers)]
    return np.array([np.atleast_2d(off)[:, p:p + 2] for off in out], np.int64).reshape(producers, -1, 2)


def _read_slices(work: Path, kind: str, producers: int, p: int, names: Sequence[str], per_segment: bool = True,
                 batch: int | None = None, ranges: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Partition ``p``'s rows from every map output of ``kind`` (``producers`` files), concatenated (in
    producer order). ``batch``: in that record batch of each file (its offsets are that row);
    ``ranges``: ``_ranges`` of the partition (read once by a caller that reads several batches)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    if ranges is None:
        ranges = _ranges(work, kind, producers, p)
    for producer in range(producers):
        path = _file(work, kind, producer)
        lo, hi = (int(x) for x in ranges[producer, batch or 0])
        seg = producer if per_segment else -1
        if hi <= lo:
            continue
        # Each slice is copied and the file unmapped before the next one: with a view of every
        # producer's mapping alive until the concatenation, the kernel's fault-around and
        # readahead mapped ~half of each file (a 500k-paragraph exact partition read from 200
        # segments peaked at +550 MB of mapped file pages; grown with the number of segments).
        table = pa.ipc.open_file(pa.memory_map(str(path))).get_batch(batch or 0)
        for k in names:
            col = _column_slice(table.column(k), lo, hi)
            if seg >= 0 and k in _LOCAL:
                col = (np.int64(seg) << np.int64(SEG_SHIFT)) | col.astype(np.int64)
            else:
                col = np.array(col)
            parts[k].append(col)
        del table
    return {k: (np.concatenate(v) if v else None) for k, v in parts.items()}


def _pread_slices(work: Path, kind: str, producers: int | Sequence[int], p: int, names: Sequence[str],
                  per_segment: bool = True) -> dict[str, np.ndarray]:
    """``_read_slices`` of a ``_scatter`` output (one record batch), read with pread at the column
    positions saved beside its offsets: no Arrow file opened, no mapping (as ``_band_slices``).
    ``producers``: their number (all of 0..n-1), or which ones (the others wrote no map)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for producer in (range(producers) if isinstance(producers, int) else producers):
        got = _pread_range(str(_file(work, kind, producer)), p, names)
        if got is None:
            continue
        for k in names:
            col = got[k]
            if per_segment and k in _LOCAL:
                col = (np.int64(producer) << np.int64(SEG_SHIFT)) | col.astype(np.int64)
            parts[k].append(col)
    return {k: (np.concatenate(v) if v else None) for k, v in parts.items()}


def _load_index(path: str) -> np.ndarray:
    """A ``_write_indexed`` index (a 1-D int64 ``.npy``), read with one pread: ``np.load`` spent ~45 µs
    of the ~100 µs fixed cost of a slice parsing the header; S x P of them per step."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        buf = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    head = int.from_bytes(buf[8:10], "little") if len(buf) >= 10 else 0
    header = buf[10:10 + head]
    if (len(buf) != size or buf[:7] != b"\x93NUMPY\x01" or b"'descr': '<i8'" not in header
            or b"'fortran_order': False" not in header or b"'shape': (" + str((size - 10 - head) // 8).encode() + b",)" not in header):
        return np.load(path)  # not the layout np.save writes for a 1-D int64 array here
    return np.frombuffer(buf, np.int64, offset=10 + head)


def _pread_range(path: str, i: int, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Range ``i`` (rows ``offsets[i]:offsets[i+1]``) of the columns ``names`` of a ``_write_indexed``
    file, read with pread; None when the range is empty."""
    index = _load_index(path[:-len(".arrow")] + ".off.npy")
    n, columns = _scattered_columns(index)
    if not 0 <= i < n:
        raise IndexError(f"range {i} of {n} in {path}")
    lo, hi = int(index[i]), int(index[i + 1])
    del index
    if hi <= lo:
        return None
    out = {}
    fd = os.open(path, os.O_RDONLY)
    try:
        for k in names:
            at, dtype = columns[k]
            out[k] = _pread_column(fd, at, dtype, lo, hi)
    finally:
        os.close(fd)
    return out


def _column_slice(column: pa.Array, lo: int, hi: int) -> np.ndarray:
    """Rows lo:hi of a column without nulls, as numpy (a view of the file, bools copied)."""
    if pa.types.is_boolean(column.type):
        return column.slice(lo, hi - lo).to_numpy(zero_copy_only=False)
    return column.to_numpy()[lo:hi]


def _local(values: np.ndarray) -> np.ndarray:
    if values.size and int(values.max()) > np.iinfo(np.uint32).max:
        raise ValueError("more than 2**32 paragraph rows in one segment")
    return values.astype(np.uint32)


# --------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------


def segment_info(seg: Segment) -> dict:
    """A segment's keyed rows now, and (committed, with superseded inputs) the committed clusters
    that lose rows (decided again) and which documents stay."""
    rows = seg.meta()
    out = {"n": int(rows.key_rows.shape[0]), "dropped": np.zeros(0, np.int64), "doc_live": rows.doc_live}
    if seg.committed and rows.live is not None:
        cluster = read_ipc(seg.decisions_path).column("cluster").filter(pa.array(~rows.live)).to_pylist()
        out["dropped"] = np.unique(_nodes(cluster))
        out["dropped"] = out["dropped"][out["dropped"] != 0]
    return out


def _nodes(cids: Sequence[str | None]) -> np.ndarray:
    """A negative node id per committed cluster id (never an order, so never a cluster's original);
    0 where a row is in no cluster."""
    h = np.fromiter((-1 - (xxhash.xxh3_64_intdigest(c.encode()) & ((1 << 62) - 1)) if c is not None else 0
                     for c in cids), np.int64, count=len(cids))
    return h


def _committed_nodes(seg: Segment, rows: SegmentRows) -> np.ndarray:
    """Per keyed row: the node of its committed cluster (0: none, or a new shard's row)."""
    if not seg.committed:
        return np.zeros(rows.key_rows.shape[0], np.int64)
    return _nodes(seg.old_decisions(rows)[1])


def scatter_exact(seg: Segment, n_parts: int, work: Path, extra: dict[str, np.ndarray] | None = None) -> int:
    rows = seg.meta()
    exact = seg.load_exact(rows)
    sites = seg.sites()
    return _scatter(_file(work, "exact-map", seg.index), exact[:, 0] % np.uint64(n_parts), n_parts, {
        "o": _local(rows.key_rows),
        "hi": np.ascontiguousarray(exact[:, 0]),
        "lo": np.ascontiguousarray(exact[:, 1]),
        "site": _site_hash(sites)[rows.key_doc] if len(rows.key_doc) else np.zeros(0, np.uint64),
        "doc": _local(rows.key_doc),
        "len": rows.key_len.astype(np.int32),
        "node": _committed_nodes(seg, rows),
        **(extra or {}),
    })


_EXACT_COLUMNS = ("o", "hi", "lo", "site", "doc", "len", "node")


def exact_pass(work: Path, n_segments: int, p: int, min_docs: int, max_chars: int,
               scattered: Sequence[int] | None = None, index: IndexLayers | None = None) -> dict:
    """Chrome and exact groups of one exact partition; writes ``(o, chrome, rep, inode)`` sorted by o
    (rep: the earliest content copy of the row's text, -1 on chrome; inode: on an exact copy whose
    representative is in the same committed cluster, that cluster's node, else 0). Returns its
    counts and the committed clusters that lose a row to chrome (``dirty``). With ``index``: the
    indexed parts' rows are read from the persisted index's layers, the others (``scattered``) from
    this run's maps."""
    cols = _pread_slices(work, "exact-map", n_segments if scattered is None else scattered, p, _EXACT_COLUMNS)
    if index is not None:
        pieces = [c for c in [cols] if c["o"] is not None] + _layer_exact(index, p, _EXACT_COLUMNS)
        if pieces:  # (one piece: not copied)
            cols = {k: np.concatenate([c[k] for c in pieces]) if len(pieces) > 1 else pieces[0][k] for k in _EXACT_COLUMNS}
            if not _ascending(cols["o"]):  # corpus order, as the maps' concatenation is
                by_order = np.argsort(cols["o"], kind="stable")
                cols = {k: v[by_order] for k, v in cols.items()}
    o = cols["o"] if cols["o"] is not None else np.zeros(0, np.int64)
    n = o.shape[0]
    chrome = np.zeros(n, bool)
    rep = np.full(n, -1, np.int64)
    inode = np.zeros(n, np.int64)
    dirty = np.zeros(0, np.int64)
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
        rep_row = np.repeat(first_row, np.diff(np.append(np.flatnonzero(first), c_rows.size)))
        rep[c_rows] = o[rep_row]
        node = cols["node"]
        # A committed clustered row's node implies it was content when committed (chrome rows are
        # in no cluster): now chrome, its cluster is broken.
        dirty = np.unique(node[chrome & (node != 0)])
        same = (node[c_rows] != 0) & (node[c_rows] == node[rep_row]) & (c_rows != rep_row)
        inode[c_rows[same]] = node[c_rows[same]]
    # beside it, where each segment's rows are (o ascends): a segment step reads its rows with pread
    seg_starts = np.arange(n_segments + 1, dtype=np.int64) << np.int64(SEG_SHIFT)
    _write_indexed(_file(work, "exact", p), {"o": o, "chrome": chrome, "rep": rep, "inode": inode},
                   np.searchsorted(o, seg_starts))
    return {"rows": n, "chrome": int(chrome.sum()), "exact_edges": int(np.count_nonzero((rep >= 0) & (rep != o))),
            "dirty": dirty}


def _gather_status(seg: Segment, rows: SegmentRows, work: Path, n_parts: int) -> tuple[np.ndarray, np.ndarray]:
    """(chrome, rep) of a segment's keyed rows, from every exact partition's output."""
    n = len(rows.key_rows)
    chrome = np.zeros(n, bool)
    rep = np.full(n, -1, np.int64)
    # Each partition's rows of this segment, read with pread at the positions the exact pass saved
    # beside its output (no Arrow file opened, no mapping: S x P reads per search).
    for p in range(n_parts):
        part = _pread_range(str(_file(work, "exact", p)), seg.index, ("o", "chrome", "rep"))
        if part is None:
            continue
        k = np.searchsorted(rows.key_rows, part["o"] & ROW_MASK)
        chrome[k] = part["chrome"]
        rep[k] = part["rep"]
    return chrome, rep


def _in(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin`` against an ascending array (a view of a mapped file: searched, not copied)."""
    if sorted_set.shape[0] == 0 or values.shape[0] == 0:
        return np.zeros(values.shape[0], bool)
    at = np.minimum(np.searchsorted(sorted_set, values), sorted_set.shape[0] - 1)
    return sorted_set[at] == values


def scatter_bands(seg: Segment, work: Path, dirty: np.ndarray, n_parts: int, n_bands: int) -> int | None:
    rows = seg.meta()
    chrome, rep = _gather_status(seg, rows, work, n_parts)
    o = seg.order(rows)
    is_rep = (rep >= 0) & (rep == o)
    known = np.zeros(len(o), bool)
    star_src = np.zeros(0, np.int64)
    star_dst = np.zeros(0, np.int64)
    if seg.committed:
        # Committed rows keep their decisions among themselves unless their cluster is broken
        # (a row superseded or now chrome) or they come back from chrome (never verified).
        old_chrome, cluster, old_kind = seg.old_decisions(rows)
        node = _nodes(cluster)
        broken = (node != 0) & _in(node, dirty)
        known = ~chrome & ~(old_chrome & ~chrome) & ~broken
        linked = np.flatnonzero(known & (node != 0))
        star_src = o[linked]
        star_dst = node[linked]
        _write(_file(work, "star", seg.index), {"src": star_src, "dst": star_dst})  # sorted by src
        if seg.indexed:
            # The persisted index holds the band keys of the rows that were representatives when it
            # was built (``index_rep_path``), all known: only the rows that differ now go to the band pass.
            differ = np.flatnonzero((is_rep != read_rep_bits(seg.index_rep_path, len(is_rep))) | (is_rep & ~known))
            bands = seg.load_bands(rows, differ)
            write_band_map(_file(work, "bandx-map", seg.index), _local(rows.key_rows[differ]),
                           (np.ascontiguousarray(bands[:, j]) for j in range(n_bands)), known[differ], n_parts,
                           rep=is_rep[differ])
            return int(differ.size)
    reps = np.flatnonzero(is_rep)
    bands = seg.load_bands(rows, reps)  # the representatives' band keys only
    local_rows = _local(rows.key_rows[reps])
    known = known[reps]
    write_band_map(_file(work, "band-map", seg.index), local_rows,
                   (np.ascontiguousarray(bands[:, j]) for j in range(n_bands)), known, n_parts)


_BAND_COLUMNS = (("o", np.uint32), ("key", np.uint64), ("known", np.bool_))  # known: a bitmap
# An indexed part's band exceptions: rows whose status differs from the index's (rep False: leaves).
_BANDX_COLUMNS = _BAND_COLUMNS + (("rep", np.bool_),)


def read_rep_bits(path: str, n: int) -> np.ndarray:
    """A part's rows (keyed rows, in order) whose band keys the persisted index holds: the rows that
    were their text's representative among the indexed parts when its layer was written. A row for
    which this is no longer true in a run is an exception that run (its keys read from its part),
    so any such set gives the same answers; this one is right unless something changed."""
    with open(path, "rb") as f:
        bits = np.frombuffer(f.read(), np.uint8)
    return np.unpackbits(bits, bitorder="little")[:n].astype(bool)


def write_band_map(path: Path, local_rows: np.ndarray, band_keys: Iterable[np.ndarray], known: np.ndarray,
                   n_parts: int, rep: np.ndarray | None = None) -> None:
    """A segment's band map: one record batch per band (``band_keys``, one array per band), rows
    sorted by partition (``key % n_parts``), so a band partition reads one band at a time and this
    holds one band's entries at a time; beside it each band's P+1 offsets and where its columns'
    data start in the file (a band pass reads its slices with pread, see ``_band_slices``)."""
    offsets: list[np.ndarray] = []
    fields = [("o", pa.uint32()), ("key", pa.uint64()), ("known", pa.bool_())] + ([("rep", pa.bool_())] if rep is not None else [])
    schema = pa.schema(fields)
    extra = [rep] if rep is not None else []
    with pa.ipc.new_file(str(path), schema) as writer:
        for key in band_keys:
            part = key % np.uint64(n_parts)
            order = np.argsort(part, kind="stable")
            writer.write_batch(pa.record_batch([pa.array(local_rows[order]), pa.array(key[order]), pa.array(known[order])]
                                               + [pa.array(e[order]) for e in extra], schema=schema))
            offsets.append(np.searchsorted(part[order], np.arange(n_parts + 1)))
    n_bands = len(offsets)
    offsets_ = np.array(offsets, np.int64).reshape(n_bands, n_parts + 1)
    np.save(_offsets_path(path), np.concatenate([offsets_, _column_positions(path, n_bands)], axis=1))


def _column_positions(path: Path, n_batches: int) -> np.ndarray:
    """(batches, columns): the byte position in the Arrow file of each record batch's column data
    (the columns are fixed-width or boolean, without nulls)."""
    mm = pa.memory_map(str(path))
    try:
        base = mm.read_buffer().address  # (a view of the whole mapping: its start)
        reader = pa.ipc.open_file(mm)
        out = np.zeros((n_batches, len(reader.schema)), np.int64)
        for j in range(n_batches):
            batch = reader.get_batch(j)
            for i, column in enumerate(batch.columns):
                validity, data = column.buffers()[:2]
                if column.offset or column.null_count or validity is not None:
                    raise ValueError("map output columns have no nulls and no offset")
                out[j, i] = data.address - base if data is not None and data.size else 0
            del batch
        del reader
    finally:
        mm.close()
    return out


def _pread(fd: int, position: int, count: int, dtype) -> np.ndarray:
    out = np.empty(count, dtype)
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], position + done)
        if got <= 0:
            raise EOFError(f"map output shorter than its offsets say (at byte {position + done})")
        done += got
    return out


def _pread_column(fd: int, at: int, dtype, lo: int, hi: int) -> np.ndarray:
    """Rows lo:hi of an Arrow column whose data starts at byte ``at``: fixed-width values, or a
    boolean bitmap (bit i of the column is row i, least significant bit first)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        first = lo // 8
        bits = _pread(fd, at + first, (hi + 7) // 8 - first, np.uint8)
        return np.unpackbits(bits, bitorder="little")[lo - 8 * first:hi - 8 * first].astype(bool)
    return _pread(fd, at + dtype.itemsize * lo, hi - lo, dtype)


def _band_slices(work: Path, n_segments: int | Sequence[int], p: int, n_bands: int, kind: str = "band-map",
                 columns: Sequence[tuple[str, type]] = _BAND_COLUMNS):
    """Band partition ``p``'s rows, one band at a time: ``(o, key, known)`` of band j from every
    segment's band-map, concatenated in segment order. Each slice is read with pread at the byte
    positions the producer saved beside its offsets: no Arrow file opened, no mapping (a file opened,
    its footer and the batch's metadata read and the slice faulted in through a mapping cost
    ~0.4 ms per slice, i.e. 21 x S x P times per step), and one band's rows in memory at a time.
    ``n_segments``: their number (all of 0..n-1) or which segments (the others wrote no map);
    ``kind``/``columns``: another map of the same layout (the indexed parts' band exceptions)."""
    segments = list(range(n_segments)) if isinstance(n_segments, int) else list(n_segments)
    n_cols = len(columns)
    ranges = np.zeros((len(segments), n_bands, 2), np.int64)
    positions = np.zeros((len(segments), n_bands, n_cols), np.int64)
    paths = [_file(work, kind, s) for s in segments]
    for i, path in enumerate(paths):
        index = np.load(_offsets_path(path), mmap_mode="r")
        n_parts = index.shape[1] - 1 - n_cols
        ranges[i] = index[:, p:p + 2]
        positions[i] = index[:, n_parts + 1:]
        del index
    paths = [str(path) for path in paths]  # (a Path built per slice cost a quarter of the read)
    for j in range(n_bands):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_cols)]
        for i, s in enumerate(segments):
            lo, hi = (int(x) for x in ranges[i, j])
            if hi <= lo:
                continue
            fd = os.open(paths[i], os.O_RDONLY)
            try:
                got = [_pread_column(fd, int(positions[i, j, c]), dtype, lo, hi) for c, (_, dtype) in enumerate(columns)]
            finally:
                os.close(fd)
            got[0] = (np.int64(s) << np.int64(SEG_SHIFT)) | got[0].astype(np.int64)
            for c in range(n_cols):
                parts[c].append(got[c])
        yield tuple(np.concatenate(v) if v else None for v in parts)


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


def _indexed_bands(work: Path, n_segments: int, p: int, n_bands: int, index: IndexLayers,
                   scattered: Sequence[int], excepted: Sequence[int]):
    """``_band_slices`` with the persisted index: band j of the scattered segments' maps, of the
    index's layers (known) but the rows an indexed part lists as exceptions, and those exceptions
    that are representatives; in corpus order."""
    maps = _band_slices(work, scattered, p, n_bands)
    exceptions = _band_slices(work, excepted, p, n_bands, "bandx-map", _BANDX_COLUMNS) if excepted else None
    layers = [_layer_bands(folder, p, n_bands, lut) for folder, lut in index.layers]
    for j in range(n_bands):
        members, keys, known = next(maps)
        got = []  # (layers first: usually the committed parts, in order; then this run's maps)
        layer_o = [x for x in (next(layer) for layer in layers) if x[0] is not None and x[0].size]
        exc = next(exceptions) if exceptions is not None else (None,) * 4
        if layer_o:
            o = np.concatenate([x[0] for x in layer_o]) if len(layer_o) > 1 else layer_o[0][0]
            key = np.concatenate([x[1] for x in layer_o]) if len(layer_o) > 1 else layer_o[0][1]
            if exc[0] is not None:
                keep = ~_in(o, np.sort(exc[0]))
                o, key = o[keep], key[keep]
            got.append((o, key, np.ones(o.shape[0], bool)))
        if members is not None:
            got.append((members, keys, known))
        if exc[0] is not None:
            rep = exc[3]
            got.append((exc[0][rep], exc[1][rep], exc[2][rep]))
        got = [g for g in got if g[0].size]
        if not got:
            yield None, None, None
            continue
        o, key, kn = (np.concatenate([g[c] for g in got]) if len(got) > 1 else got[0][c] for c in range(3))
        if _ascending(o):
            yield o, key, kn
            continue
        by_order = np.argsort(o, kind="stable")
        yield o[by_order], key[by_order], kn[by_order]


def _ascending(o: np.ndarray) -> bool:
    return o.shape[0] < 2 or bool(np.all(o[1:] >= o[:-1]))


def band_pass(work: Path, n_segments: int, p: int, n_bands: int, n_parts: int, index: IndexLayers | None = None,
              scattered: Sequence[int] = (), excepted: Sequence[int] = ()) -> dict[str, int]:
    """Candidate pairs of one band partition, one band at a time (the single search's rules: every
    group of equal keys of a band is here whole). With ``index``: the indexed parts' band rows come
    from the persisted index, corrected by their exceptions of this run (``_indexed_bands``)."""
    los, his, boths = [], [], []
    n_big = 0
    largest = 0
    slices = (_band_slices(work, n_segments, p, n_bands) if index is None
              else _indexed_bands(work, n_segments, p, n_bands, index, scattered, excepted))
    for members, keys, known in slices:
        if members is None or members.size < 2:
            continue
        # members ascend (segments in order, rows ascending)
        left, right, big, lg = _band_pairs(members, keys)
        del keys
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
    _scatter(_file(work, "pair-map", p), _pair_partition(lo, hi, n_parts), n_parts, {"lo": lo, "hi": hi, "known": both})
    return {"big_band_groups": n_big, "max_band_group": largest}


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


def verify_pass(work: Path, n_parts: int, p: int, ngram: int, threshold: float, chunk: int) -> dict[str, int]:
    cols = _pread_slices(work, "pair-map", n_parts, p, ("lo", "hi", "known"), per_segment=False)
    path = _file(work, "near", p)
    if cols["lo"] is None:
        _write(path, {"src": np.zeros(0, np.int64), "dst": np.zeros(0, np.int64)})
        return {"candidate_pairs": 0, "known_pairs": 0, "verified_pairs": 0}
    lo, hi, known = _unique_pairs(cols["lo"], cols["hi"], cols["known"])
    n_cand, n_known = int(lo.size), int(known.sum())
    lo, hi = lo[~known], hi[~known]
    texts = _Texts(json.loads((Path(work) / "texts.json").read_text(encoding="utf-8")))

    def shingles(orders: np.ndarray) -> list[np.ndarray]:
        return batch_shingle_hashes([normalize_for_dedup(t) for t in texts.read(orders)], ngram)

    ok = jaccard_pairs(lo, hi, shingles, chunk, floor=threshold) >= threshold if lo.size else np.zeros(0, bool)
    _write(path, {"src": lo[ok], "dst": hi[ok]})
    # (as the single search counts them: distinct pairs left to verify)
    return {"candidate_pairs": n_cand - n_known, "known_pairs": n_known, "verified_pairs": int(ok.sum())}


def exact_touching(work: Path, p: int, dirty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An exact partition's edges (copy -> representative) for the connected components: all but
    those inside a committed cluster that stands (same cluster on both ends, not dirty)."""
    table = read_ipc(_file(work, "exact", p))
    o, rep, inode = (table.column(k).to_numpy() for k in ("o", "rep", "inode"))
    edge = (rep >= 0) & (rep != o)
    keep = np.flatnonzero(edge & ((inode == 0) | _in(inode, dirty)))
    return o[keep].copy(), rep[keep].copy()


def read_edges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = read_ipc(path)
    return table.column("src").to_numpy().copy(), table.column("dst").to_numpy().copy()


def _range(sorted_orders: np.ndarray, seg: int) -> tuple[int, int]:
    a, b = np.searchsorted(sorted_orders, [np.int64(seg) << np.int64(SEG_SHIFT), np.int64(seg + 1) << np.int64(SEG_SHIFT)])
    return int(a), int(b)


def star_touched(work: Path, seg_index: int) -> np.ndarray:
    """The committed clusters (nodes) of a part's rows that are an end of an edge."""
    star = read_ipc(_file(work, "star", seg_index))
    src, dst = star.column("src").to_numpy(), star.column("dst").to_numpy()
    ends = read_ipc(Path(work) / "endpoints.arrow").column("o").to_numpy()
    a, b = _range(ends, seg_index)
    return np.unique(dst[_in(src, ends[a:b])])


def star_edges(work: Path, seg_index: int) -> tuple[np.ndarray, np.ndarray]:
    """A part's edges row -> committed cluster, for the clusters an edge touches only."""
    star = read_ipc(_file(work, "star", seg_index))
    src, dst = star.column("src").to_numpy(), star.column("dst").to_numpy()
    keep = np.flatnonzero(_in(dst, read_ipc(Path(work) / "touched.arrow").column("node").to_numpy()))
    return src[keep].copy(), dst[keep].copy()


def segment_ids(seg: Segment, orders: np.ndarray) -> list[str]:
    return seg.paragraph_ids(orders)


def apply_segment(seg: Segment, work: Path, n_parts: int, dirty: np.ndarray, rewrite_path: Path) -> dict:
    """The decisions of one segment: chrome from the exact partitions, cluster and kind from the
    connected components (``clusters_path``: clustered rows of the clusters this run touched, with
    their original), committed decisions where the cluster stands untouched.

    A new shard gets its decisions back (``chrome``, ``cluster``, ``kind``). A committed part's are
    compared with the committed ones here: when they differ (or rows leave), they are written to
    ``rewrite_path`` (its live keyed ``row`` and the decisions) for the part's replacement, and only
    ``rewrite`` (True) comes back, with the counts. ``clusters.arrow``: clustered rows of the clusters
    this run touched, with their original."""
    rows = seg.meta()
    n = rows.key_rows.shape[0]
    chrome, rep = _gather_status(seg, rows, work, n_parts)
    o = seg.order(rows)
    clusters = read_ipc(Path(work) / "clusters.arrow")
    c_o = clusters.column("o").to_numpy()
    a, b = _range(c_o, seg.index)
    k = np.searchsorted(rows.key_rows, c_o[a:b] & ROW_MASK)
    c_orig = clusters.column("orig").to_numpy()[a:b]
    c_ids = clusters.column("id").slice(a, b - a).to_pylist()
    kind = np.zeros(n, np.int8)
    cluster: list[str | None]
    if seg.committed:
        old_chrome, old_cluster, old_kind = seg.old_decisions(rows)
        node = _nodes(old_cluster)
        # A committed cluster stands as committed when every row of it is still in the search (not
        # dirty) and no edge of this run touches it; the rows of a touched one are all in the
        # components (through their star edges) and take their decisions from there, below.
        stands = (node != 0) & ~chrome & ~old_chrome & ~_in(node, dirty)
        cluster = [c if s else None for c, s in zip(old_cluster, stands.tolist())]
        kind[stands] = old_kind[stands]
    else:
        cluster = [None] * n
    for i, cid in zip(k.tolist(), c_ids):
        cluster[i] = cid
    kind[k] = np.where(c_orig == o[k], 0, np.where(rep[k] == c_orig, KIND_EXACT, KIND_NEAR))
    has = np.fromiter((c is not None for c in cluster), bool, count=n)
    counts = {"clusters": int(np.count_nonzero(has & (kind == 0))), "duplicates": int(np.count_nonzero(kind != 0))}
    if not seg.committed:
        return {**counts, "chrome": chrome, "cluster": cluster, "kind": kind}
    same = np.array_equal(chrome, old_chrome) and np.array_equal(kind, old_kind) and cluster == old_cluster
    rewrite = bool(seg.changed) or not same
    if rewrite:
        write_ipc(rewrite_path, pa.table({"row": pa.array(rows.key_rows, pa.int64()), "chrome": pa.array(chrome),
                                             "cluster": pa.array(cluster, pa.string()), "kind": pa.array(kind)}))
    doc_live = rows.doc_live
    if rewrite and doc_live is None:
        doc_live = np.ones(read_ipc(docs_path(seg.keys_path)).num_rows, bool)
    return {**counts, "rewrite": rewrite, "doc_live": doc_live if rewrite else None}


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the partitioned search returns, per segment (``apply_segment``) and in all."""

    segments: list[dict]  # per segment: counts; a new shard its decisions, a committed part whether it is rewritten
    rewrite_paths: list[Path]  # per segment: where a committed part's new decisions are, when rewritten
    counts: dict[str, int] = field(default_factory=dict)


def search(segments: list[Segment], dedup, work: Path, rewrite_dir: Path, *, mapper: Mapper = local_map,
           per_partition: int = 500_000, n_parts: int | None = None, verify_chunk: int = 4096,
           index: IndexLayers | None = None) -> Outcome:
    """Chrome and duplicate clusters over ``segments`` (corpus order), partitioned; every segment's
    decisions applied where the segment is read (``apply_segment``): the coordinating process holds
    this run's shards' decisions, the edges of the clusters this run touches, and a few numbers per
    committed part."""
    from ..stages.sketch import lsh_shape

    from ..plumbing.timeline import span

    inner = mapper

    def mapper(fn: Callable, argsets: list[tuple]) -> list:  # each step on the run's timeline
        with span(f"dedup:{fn.__name__}", n=len(argsets)):
            return inner(fn, argsets)

    n_bands = lsh_shape(dedup)[0]
    info = mapper(segment_info, [(seg,) for seg in segments])
    n = sum(i["n"] for i in info)
    P = n_parts or partitions_for(n, per_partition)
    if not n_parts and n >= PARALLEL_MIN_PARAGRAPHS:  # any P gives the same decisions
        P = max(P, getattr(inner, "parallel", 1))
    if index is not None:  # the persisted index's partitions (its P was chosen when it was built)
        P = index.n_parts
    scattered = None if index is None else [s.index for s in segments if not s.indexed]
    excepted = [] if index is None else [s.index for s in segments if s.indexed]
    work.mkdir(parents=True, exist_ok=True)
    S = len(segments)
    for s in segments:
        if s.key_rows is not None and len(s.key_rows) > 1 and not bool(np.all(s.key_rows[1:] > s.key_rows[:-1])):
            raise ValueError("key rows of a segment must ascend")
    # 1-2. exact
    mapper(scatter_exact, [(seg, P, work) for seg in segments if not seg.indexed])
    ex_stats = mapper(exact_pass, [(work, S, p, dedup.repeated_line_min_docs, dedup.repeated_line_max_chars,
                                    scattered, index) for p in range(P)])
    _unlink_maps(work, "exact-map", S)
    # 3. committed clusters decided again: those that lose a row (superseded, or now chrome)
    dirty = np.unique(np.concatenate([np.zeros(0, np.int64)] + [i["dropped"] for i in info] + [x["dirty"] for x in ex_stats]))
    exceptions = mapper(scatter_bands, [(seg, work, dirty, P, n_bands) for seg in segments])
    # 4. candidate pairs per band partition
    bp = mapper(band_pass, [(work, S, p, n_bands, P, index, scattered or (), excepted) for p in range(P)])
    _unlink_maps(work, "band-map", S)
    _unlink_maps(work, "bandx-map", S)
    # 5. verification per pair partition
    (work / "texts.json").write_text(json.dumps([str(seg.text_path) for seg in segments]), encoding="utf-8")
    vp = mapper(verify_pass, [(work, P, p, dedup.ngram, dedup.threshold, verify_chunk) for p in range(P)])
    _unlink_maps(work, "pair-map", P)
    # 6. connected components over the edges this run adds, and the committed clusters they touch
    committed = [i for i, seg in enumerate(segments) if seg.committed]
    edges = mapper(exact_touching, [(work, p, dirty) for p in range(P)])
    edges += [read_edges(_file(work, "near", p)) for p in range(P)]
    _unlink([_file(work, "near", p) for p in range(P)])
    src = np.concatenate([np.zeros(0, np.int64)] + [e[0] for e in edges])
    dst = np.concatenate([np.zeros(0, np.int64)] + [e[1] for e in edges])
    del edges
    _write(work / "endpoints.arrow", {"o": np.unique(np.concatenate((src, dst)))})
    # (no edge: no committed cluster touched, the star files are not read)
    starred = committed if src.size else []
    touched = mapper(star_touched, [(work, i) for i in starred])
    touched = np.unique(np.concatenate([np.zeros(0, np.int64)] + touched))
    n_touched = int(touched.shape[0])
    _write(work / "touched.arrow", {"node": touched})
    del touched
    kept = mapper(star_edges, [(work, i) for i in starred])
    _unlink([work / "endpoints.arrow", work / "touched.arrow"] + [_file(work, "star", i) for i in range(S)])
    src = np.concatenate([src] + [e[0] for e in kept])
    dst = np.concatenate([dst] + [e[1] for e in kept])
    del kept
    with span("dedup:clusters"):
        c_order, c_orig = _components(src, dst)
    del src, dst
    # 7. the originals' paragraph ids, read where their segment is
    originals = np.unique(c_orig)
    o_seg = originals >> SEG_SHIFT
    seg_of = np.unique(o_seg)
    ids = mapper(segment_ids, [(segments[s], originals[o_seg == s]) for s in seg_of.tolist()])
    id_array = pa.array([i for part in ids for i in part], pa.string())
    del ids
    write_ipc(work / "clusters.arrow", pa.table({"o": pa.array(c_order), "orig": pa.array(c_orig),
                                                    "id": id_array.take(pa.array(np.searchsorted(originals, c_orig)))}))
    del c_order, c_orig, id_array
    # 8. each segment's decisions, applied (and compared with the committed ones) where it is read
    rewrite_dir.mkdir(parents=True, exist_ok=True)
    rewrite_paths = [rewrite_dir / f"decisions-{s:05d}.arrow" for s in range(S)]
    applied = mapper(apply_segment, [(seg, work, P, dirty, rewrite_paths[i]) for i, seg in enumerate(segments)])
    _unlink_maps(work, "exact", P)
    _unlink([work / "clusters.arrow", work / "texts.json"])
    counts = {
        "partitions": P,
        "keyed_paragraphs": n,
        "committed_paragraphs": sum(info[i]["n"] for i in committed),
        "repeated_lines": sum(x["chrome"] for x in ex_stats),
        "clusters": sum(a["clusters"] for a in applied),
        "duplicates": sum(a["duplicates"] for a in applied),
        "candidate_pairs": sum(v["candidate_pairs"] for v in vp),
        "verified_pairs": sum(v["verified_pairs"] for v in vp),
        "known_pairs_skipped": sum(v["known_pairs"] for v in vp),
        "big_band_groups": sum(b["big_band_groups"] for b in bp),
        "exact_edges": sum(x["exact_edges"] for x in ex_stats),
        "touched_clusters": n_touched,
        "index_exceptions": sum(e for e in exceptions if e is not None),  # indexed parts' rows not as the index says
    }
    return Outcome(applied, rewrite_paths, counts)


def _components(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components over the edges: every clustered row (order, ascending) and its cluster's
    original (the earliest order of its component; committed cluster nodes are negative, never one)."""
    nodes, inv = np.unique(np.concatenate((src, dst)), return_inverse=True)
    inv = inv.reshape(-1)
    m = nodes.shape[0]
    if not m:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = src.shape[0]
    graph = coo_matrix((np.ones(e, np.int8), (inv[:e], inv[e:])), shape=(m, m)).tocsr()
    del inv
    _, labels = connected_components(graph, directed=True, connection="weak")
    del graph
    real = nodes >= 0
    comp_min = np.full(int(labels.max()) + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(comp_min, labels[real], nodes[real])
    comp_real = np.bincount(labels[real], minlength=comp_min.shape[0])
    real_nodes = np.flatnonzero(real)
    clustered = real_nodes[comp_real[labels[real_nodes]] >= 2]
    return nodes[clustered], comp_min[labels[clustered]]


def _unlink_maps(work: Path, kind: str, n: int) -> None:
    for i in range(n):
        path = _file(work, kind, i)
        _unlink([path, _offsets_path(path)])


def _unlink(paths: Sequence[Path]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
