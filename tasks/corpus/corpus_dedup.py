"""Stage 6b: duplicates across the whole run, from the keys every shard returned.

The shards' keys are concatenated in shard order (= global order), clusters are found by
``dedup.find_duplicates``, and each shard gets back the decisions for its own rows only:
the rows that belong to a cluster, with the cluster original's ``paragraph_id``.
Candidate pairs are verified on the exact shingle sets, read back from the staged text.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import DedupConfig
from ..stages.dedup import KIND_NONE, exact_groups, find_duplicates
from ..stages.minhash import batch_shingle_hashes, normalize_for_dedup, unique_sorted
from ..plumbing.records import make_paragraph_id
from .shard import ShardResult, open_staged
from .dedup_index import docs_path, keys_of, read_ipc, read_keys
from .dedup_partitions import Mapper, Segment, local_map, search, take_rows
from ..stages.sketch import DedupKeys, lsh_shape
from ..plumbing.stage import StageStats, clock


# Candidate pairs verified per call: bounds the shingle sets held at once (~4k pairs, a few
# tens of MB) at no measurable cost in speed.
_VERIFY_CHUNK = 4096


@dataclass
class ShardDecisions:
    """Dedup decisions on the keyed rows of one shard or part, aligned with its ``key_rows``."""

    chrome: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # corpus-learned chrome
    cluster: list[str | None] = field(default_factory=list)  # paragraph_id of the cluster's original
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # KIND_* code; != 0 on duplicates

    @property
    def is_duplicate(self) -> np.ndarray:
        return self.kind != KIND_NONE

    def same_as(self, other: ShardDecisions) -> bool:
        return (
            np.array_equal(self.chrome, other.chrome)
            and np.array_equal(self.kind, other.kind)
            and self.cluster == other.cluster
        )


@dataclass
class RunDedup:
    decisions: list[ShardDecisions]  # for this run's shards, in shard order
    stats: StageStats
    # Committed parts whose decisions changed, or that lose superseded rows: written again as
    # replacement files by this run.
    rewrites: list[PartRewrite] = field(default_factory=list)
    # The persisted partitioned index, when the search read one: "full" (rebuilt), "layer" (this run's
    # new or rewritten parts added), "reused" (read as it was); "unusable" (it could not be read or
    # written: OSError, the committed keys scattered as without it); None: not used.
    index: str | None = None


@dataclass
class PartRewrite:
    position: int  # index of the part in the manifest
    key_rows: np.ndarray | None  # committed paragraph rows of the live keyed paragraphs (None: in ``staged``)
    decisions: ShardDecisions | None  # their new decisions, aligned with key_rows (None: dedup off, or in ``staged``)
    doc_live: np.ndarray  # per committed document: kept (False: its source is superseded)
    superseded: set[str] = field(default_factory=set)  # source paths whose rows (documents and rejects) leave
    # The partitioned search leaves the key rows and decisions in a file of the run's staging folder
    # (written where the part was decided): the flow process never holds a part's decisions.
    staged: Path | None = None

    def load(self) -> PartRewrite:
        """This rewrite with its key rows and decisions in memory (read from ``staged``)."""
        if self.staged is None:
            return self
        t = read_ipc(self.staged)
        decisions = ShardDecisions(t.column("chrome").to_numpy(zero_copy_only=False), t.column("cluster").to_pylist(),
                                   t.column("kind").to_numpy())
        return PartRewrite(self.position, t.column("row").to_numpy(), decisions, self.doc_live, self.superseded)


@dataclass
class CommittedKeys:
    """The dedup index of one committed part, as this run sees it."""

    position: int  # index of the part in the manifest
    result: ShardResult  # keyed rows of its live documents; rows index its committed paragraphs file
    decisions: ShardDecisions  # as committed, aligned with result.key_rows
    doc_live: np.ndarray  # per document of the part: False when its source is superseded
    dropped_clusters: set[str] = field(default_factory=set)  # clusters that lose superseded rows
    superseded: set[str] = field(default_factory=set)  # its inputs that changed (also those with only rejects)
    keys_file: Path | None = None  # its keys file in the index (the partitioned search reads it there)
    live: np.ndarray | None = None  # rows of the keys file still live (None: all)

    @property
    def loses_rows(self) -> bool:  # rewritten whatever the decisions
        return bool(self.superseded) or not bool(self.doc_live.all())


@dataclass
class CommittedPart:
    """A committed part as the run-level search is handed it: where its files are, nothing per
    paragraph (the partitioned search reads its keys, documents and decisions where it searches)."""

    out_dir: Path
    position: int  # index of the part in the manifest
    part: object  # corpus_state.Part
    superseded: set[str] = field(default_factory=set)  # its inputs that changed

    def load(self) -> CommittedKeys:
        """Its row metadata and committed decisions in memory (the single search)."""
        return load_committed(self.out_dir, self.position, self.part, self.superseded)


def committed_parts(out_dir: Path, parts, superseded: set[str]) -> list[CommittedPart]:
    return [CommittedPart(out_dir, i, p, superseded & set(p.sources)) for i, p in enumerate(parts)]


def load_committed(out_dir: Path, position: int, part, superseded: set[str]) -> CommittedKeys:
    """Load one committed part's keys and decisions, leaving out documents whose source is superseded."""
    paragraphs_path = out_dir / part.paragraphs
    changed = superseded & set(part.sources)
    # With dedup off there are no keys: the documents table gives what superseding needs.
    docs = (pq.read_table(out_dir / part.documents, columns=["doc_id", "source_path"]) if part.keys is None
            else read_ipc(docs_path(out_dir / part.keys)))
    doc_live = np.array([p not in changed for p in docs.column("source_path").to_pylist()], bool)
    result = ShardResult(-1 - position, paragraphs_path, out_dir / part.documents, out_dir / part.rejects,
                         n_docs=docs.num_rows)
    if part.keys is None:
        return CommittedKeys(position, result, ShardDecisions(), doc_live, superseded=changed)
    keys = read_ipc(out_dir / part.keys)
    decided = read_ipc(out_dir / part.decisions)
    key_doc = keys.column("doc").to_numpy()
    live = doc_live[key_doc] if len(key_doc) else np.zeros(0, bool)
    # Row metadata is copied (small); the keys stay views of the mapped file until the search
    # gathers them, after which nothing holds the mapping.
    pick = (lambda a: a) if live.all() else (lambda a: a[live])
    result.doc_ids = docs.column("doc_id").to_pylist()
    result.doc_sites = docs.column("site").to_pylist()
    result.key_rows = np.array(pick(keys.column("row").to_numpy()))
    result.key_doc = np.array(pick(key_doc))
    result.key_pidx = np.array(pick(keys.column("pidx").to_numpy()))
    result.key_len = np.array(pick(keys.column("length").to_numpy()))
    # The keys themselves are read where they are searched (see committed_keys): the partitioned
    # search reads them per segment, in the process that scatters them.
    cluster = decided.column("cluster").to_pylist()
    dropped = {c for c, k in zip(cluster, live) if c is not None and not k}
    decisions = ShardDecisions(
        decided.column("chrome").to_numpy(zero_copy_only=False)[live],
        [c for c, k in zip(cluster, live) if k],
        decided.column("kind").to_numpy()[live],
    )
    return CommittedKeys(position, result, decisions, doc_live, dropped, changed, out_dir / part.keys,
                         None if live.all() else live)


def committed_keys(c: CommittedKeys) -> DedupKeys:
    """A committed part's live keys (views of its mapped index file when every row is live)."""
    mapped = keys_of(read_ipc(c.keys_file))
    if c.live is None:
        return DedupKeys(c.result.key_rows, mapped.exact, mapped.bands)
    return DedupKeys(c.result.key_rows, mapped.exact[c.live], mapped.bands[c.live])


def _locate(offsets: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shard, index within the shard's keys) of global key indices; shards are laid end to end."""
    shard = np.searchsorted(offsets, indices, side="right") - 1
    return shard, indices - offsets[shard]


class _StagedShingles:
    """Fetch shingle sets of global key indices from the shards' staged text.

    Verification asks in chunks of candidate pairs; the text columns of the last few shards
    read stay cached so that consecutive chunks do not re-read the same files.
    """

    _CACHED_SHARDS = 2

    def __init__(self, results: list[ShardResult], offsets: np.ndarray, ngram: int) -> None:
        self.results = results
        self.offsets = offsets
        self.ngram = ngram
        self._texts: OrderedDict[int, pa.ChunkedArray] = OrderedDict()

    def _text_column(self, shard: int) -> pa.ChunkedArray:
        column = self._texts.pop(shard, None)
        if column is None:
            path = self.results[shard].paragraphs_path
            if path.suffix == ".parquet":  # a committed part
                column = pq.read_table(path, columns=["text"]).column("text")
            else:
                column = open_staged(path).read_all().column("text")
        self._texts[shard] = column
        if len(self._texts) > self._CACHED_SHARDS:
            self._texts.popitem(last=False)
        return column

    def clear(self) -> None:
        self._texts.clear()

    def __call__(self, indices: np.ndarray) -> list[np.ndarray]:
        indices = np.asarray(indices, np.int64)
        out: list[np.ndarray | None] = [None] * len(indices)
        shard_of, local_of = _locate(self.offsets, indices)
        for shard in np.unique(shard_of):
            where = np.nonzero(shard_of == shard)[0]
            rows = self.results[int(shard)].key_rows[local_of[where]]
            texts = take_rows(self._text_column(int(shard)), np.asarray(rows, np.int64))
            shingles = batch_shingle_hashes([normalize_for_dedup(text) for text in texts], self.ngram)
            for slot, hashes in zip(where, shingles):
                out[slot] = hashes
        return out  # type: ignore[return-value]


REPEATED_REASON = "repeated_line"


def find_run_duplicates(
    results: list[ShardResult],
    config: DedupConfig,
    reference: bool = False,
    committed: list[CommittedPart] | None = None,
    *,
    work_dir: Path | None = None,
    mapper: Mapper | None = None,
    partitioned: bool = True,
    index_dir: Path | None = None,
) -> RunDedup:
    """Decide duplicates and corpus-learned chrome over the committed corpus plus this run's shards.

    The committed parts' keys come first (corpus order: earlier runs first), so an original
    is always the earliest-seen copy and ``duplicate_of`` can point into any earlier run.
    Every decision is recomputed over the whole corpus, as if it had been cleaned in one run;
    committed parts whose decisions change are returned in ``rewrites``.

    ``index_dir``: the persisted partitioned index of the committed parts' keys (``partitioned_index``;
    the flow's is ``<out>/_dedup_index``), made current first and read by the partitioned search
    instead of scattering every committed part's keys again. Same decisions with or without it.
    """
    stats = StageStats("dedup")
    started = clock()
    committed = committed or []
    results = sorted(results, key=lambda r: r.index)
    if not config.enabled:
        stats.add_time(started)
        loaded = [c.load() for c in committed if c.superseded]  # (only parts with superseded inputs lose rows)
        rewrites = [PartRewrite(c.position, np.zeros(0, np.int64), None, c.doc_live, c.superseded)
                    for c in loaded if c.loses_rows]
        return RunDedup([ShardDecisions() for _ in results], stats, rewrites)
    if partitioned and not reference:  # the reference chain keeps the single all-pairs search
        return _find_partitioned(results, config, committed, work_dir, mapper or local_map, stats, started, index_dir)
    committed = [c.load() for c in committed]  # the single search: every part's rows in memory
    for c in committed:
        if c.result.keys is None and c.keys_file is not None:
            c.result.keys = committed_keys(c)
    segments = [c.result for c in committed] + results
    sizes = np.array([len(r.key_rows) for r in segments], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = int(offsets[-1])
    exact, bands = _gather_keys(segments, offsets, lsh_shape(config)[0])

    chrome = _repeated_lines(segments, exact, config.repeated_line_min_docs, config.repeated_line_max_chars)
    content = np.flatnonzero(~chrome)  # the rows that take part in the duplicate search
    known = None
    if committed and not reference:  # the reference chain verifies every pair again
        known = _known_originals(committed, offsets, chrome)[content]
        in_content = np.full(n, -1, np.int64)
        in_content[content] = np.arange(len(content))
        linked = known >= 0
        known[linked] = in_content[known[linked]]
        known[linked & (known < 0)] = -2  # (cannot happen: such a cluster is dirty) decide again
    staged = _StagedShingles(segments, offsets, config.ngram)
    everything = len(content) == n  # no chrome: no copy of the keys
    found = find_duplicates(
        exact if everything else exact[content],
        None if bands is None else bands if everything else bands[content],
        lambda rows: staged(content[rows]),
        config.threshold,
        all_pairs=reference,
        verify_chunk=_VERIFY_CHUNK,
        known_original=known,
    )
    del exact, bands  # the keys (most of the memory) are no longer needed
    staged.clear()
    original = np.full(n, -1, np.int64)
    clustered_content = found.original >= 0
    original[content[clustered_content]] = content[found.original[clustered_content]]
    kind = np.zeros(n, np.int8)
    kind[content] = found.kind_code

    # The paragraph_id of every cluster original, made once per original.
    clustered = np.flatnonzero(original >= 0)
    originals = np.unique(original[clustered])
    o_seg, o_local = _locate(offsets, originals)
    original_id = {
        int(g): make_paragraph_id(segments[s].doc_ids[segments[s].key_doc[k]], int(segments[s].key_pidx[k]))
        for g, s, k in zip(originals, o_seg, o_local)
    }
    decisions: list[ShardDecisions] = []
    for s in range(len(segments)):
        lo, hi = int(offsets[s]), int(offsets[s + 1])
        cluster: list[str | None] = [None] * (hi - lo)
        for g in clustered[(clustered >= lo) & (clustered < hi)].tolist():
            cluster[g - lo] = original_id[int(original[g])]
        decisions.append(ShardDecisions(chrome[lo:hi].copy(), cluster, kind[lo:hi].copy()))

    rewrites = [
        PartRewrite(c.position, c.result.key_rows, d, c.doc_live, c.superseded)
        for c, d in zip(committed, decisions[: len(committed)])
        if c.loses_rows or not d.same_as(c.decisions)
    ]
    members = clustered[original[clustered] != clustered]
    stats.counts.update(
        {
            "keyed_paragraphs": n,
            "committed_paragraphs": int(offsets[len(committed)]),
            "repeated_lines": int(np.count_nonzero(chrome)),
            "clusters": int(len(originals)),
            "duplicates": int(len(members)),
            "candidate_pairs": int(found.n_candidate_pairs),
            "verified_pairs": int(found.n_verified_pairs),
            "known_pairs_skipped": int(found.n_known_pairs),
            "rewritten_parts": len(rewrites),
        }
    )
    stats.lines_in = n  # keyed paragraphs, committed ones included
    stats.add_time(started)
    return RunDedup(decisions[len(committed) :], stats, rewrites)


def _find_partitioned(results: list[ShardResult], config: DedupConfig, committed: list[CommittedPart],
                      work_dir: Path | None, mapper: Mapper, stats: StageStats, started: float,
                      index_dir: Path | None = None) -> RunDedup:
    """The same decisions as the single search, from ``dedup_partitions.search`` (bounded memory:
    nothing per committed paragraph is held here; a committed part's new decisions, when they
    differ from its committed ones, are left in a staged file for its rewrite). With ``index_dir``
    the persisted index is made current first (``partitioned_index.prepare``) and read by the steps."""
    with tempfile.TemporaryDirectory(prefix="dedup-", dir=work_dir) as tmp:
        prepared, unusable = None, False
        if index_dir is not None and committed:
            from .partitioned_index import prepare

            try:
                prepared = prepare(committed[0].out_dir, committed, config, sum(len(r.key_rows) for r in results),
                                   Path(tmp), mapper, index_dir, getattr(mapper, "parallel", 1))
            except OSError:  # a cache: the search does without it (a full disk, a read-only folder)
                unusable = True
        found = _search_partitioned(results, config, committed, work_dir, mapper, stats, started, Path(tmp), prepared)
        if prepared is not None:
            found.index = prepared.built or "reused"
        elif unusable:
            found.index = "unusable"
        return found


def _search_partitioned(results: list[ShardResult], config: DedupConfig, committed: list[CommittedPart],
                        work_dir: Path | None, mapper: Mapper, stats: StageStats, started: float, tmp: Path,
                        prepared) -> RunDedup:
    segments: list[Segment] = []
    positions: list[int] = []
    rewrites: list[PartRewrite] = []
    for c in committed:
        if c.part.keys is None:  # written with dedup off: nothing to search, rewritten if it loses rows
            if c.superseded:
                k = c.load()
                rewrites.append(PartRewrite(c.position, k.result.key_rows, ShardDecisions(), k.doc_live, k.superseded))
            continue
        indexed = prepared is not None and c.position in prepared.indexed
        segments.append(Segment(len(segments), c.out_dir / c.part.paragraphs, keys_path=c.out_dir / c.part.keys,
                                decisions_path=c.out_dir / c.part.decisions, changed=frozenset(c.superseded),
                                indexed=indexed, index_rep_path=prepared.rep_path(c.position) if indexed else None))
        positions.append(c.position)
    n_committed = len(segments)
    for r in results:
        segments.append(Segment(len(segments), r.paragraphs_path, keys_path=r.keys_path, key_rows=r.key_rows,
                                key_doc=r.key_doc, key_len=r.key_len, key_pidx=r.key_pidx, doc_sites=r.doc_sites,
                                doc_ids=r.doc_ids, keys=r.keys))
    superseded = {c.position: c.superseded for c in committed}
    index = None if prepared is None else prepared.for_search({pos: s for s, pos in enumerate(positions)
                                                              if segments[s].indexed})
    # Rewritten parts' decisions stay in the run's staging folder until the parts are written.
    rewrite_dir = Path(tempfile.mkdtemp(prefix="dedup-rewrites-", dir=work_dir)) if work_dir else tmp / "rewrites"
    found = search(segments, config, tmp / "search", rewrite_dir, mapper=mapper,
                   per_partition=config.partition_paragraphs, verify_chunk=_VERIFY_CHUNK, index=index)
    for s in range(n_committed):
        a = found.segments[s]
        if a["rewrite"]:
            rw = PartRewrite(positions[s], None, None, a["doc_live"], superseded[positions[s]],
                             staged=found.rewrite_paths[s])
            rewrites.append(rw if work_dir else _detach(rw.load()))  # (no staging folder: in memory)
    for seg in segments:
        seg.keys = None
    for r in results:
        r.keys = None  # consumed: release the mapping, ship no keys to finalize
    rewrites.sort(key=lambda r: r.position)
    decisions = [ShardDecisions(a["chrome"], a["cluster"], a["kind"]) for a in found.segments[n_committed:]]
    counts = found.counts
    stats.counts.update(
        {
            "keyed_paragraphs": counts["keyed_paragraphs"],
            "committed_paragraphs": counts["committed_paragraphs"],
            "repeated_lines": counts["repeated_lines"],
            "clusters": counts["clusters"],
            "duplicates": counts["duplicates"],
            "candidate_pairs": counts["candidate_pairs"],
            "verified_pairs": counts["verified_pairs"],
            "known_pairs_skipped": counts["known_pairs_skipped"],
            "rewritten_parts": len(rewrites),
            "partitions": counts["partitions"],
            "touched_clusters": counts["touched_clusters"],  # committed clusters an edge of this run touches
            "index_exceptions": counts["index_exceptions"],  # (with the persisted index) rows it had otherwise
        }
    )
    stats.lines_in = counts["keyed_paragraphs"]
    stats.add_time(started)
    stats.cpu_seconds += getattr(mapper, "cpu_seconds", 0.0)  # the steps run in worker processes
    return RunDedup(decisions, stats, rewrites)


def _detach(r: PartRewrite) -> PartRewrite:
    """A copy of a rewrite's arrays (not views of a file about to be deleted)."""
    if r.decisions is None or r.key_rows is None:
        return r
    d = r.decisions
    return PartRewrite(r.position, np.array(r.key_rows), ShardDecisions(np.array(d.chrome), list(d.cluster), np.array(d.kind)),
                       r.doc_live, r.superseded)


def _gather_keys(segments: list[ShardResult], offsets: np.ndarray, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """All segments' keys in one pair of arrays, filled segment by segment from their key files
    (memory-mapped; a shard's staged file, a committed part's index file), each released once
    copied: the keys are held once, in this process only."""
    n = int(offsets[-1])
    exact = np.empty((n, 2), np.uint64)
    bands = np.empty((n, n_bands), np.uint64)
    for s, r in enumerate(segments):
        lo, hi = int(offsets[s]), int(offsets[s + 1])
        keys = r.keys if r.keys is not None else read_keys(r.keys_path)
        exact[lo:hi] = keys.exact
        bands[lo:hi] = keys.bands
        r.keys = keys = None  # consumed: release the mapping, ship no keys to finalize
    return exact, bands


def _known_originals(committed: list[CommittedKeys], offsets: np.ndarray, chrome: np.ndarray) -> np.ndarray:
    """Per keyed row: its committed original (global index; own index for an original, -1 for
    no cluster) where the committed decision still holds among committed rows, else -2.

    Committed clusters stand unless one of their rows left the duplicate search (its source
    superseded, or now learned chrome): those clusters are decided again from scratch, as are
    rows that come back from chrome. Everything this run adds is -2 (undecided).
    """
    n = int(offsets[-1])
    n_old = int(offsets[len(committed)])
    known = np.full(n, -2, np.int64)
    old_chrome = np.concatenate([c.decisions.chrome for c in committed]) if committed else np.zeros(0, bool)
    old_cluster = [cid for c in committed for cid in c.decisions.cluster]
    dirty = set().union(*(c.dropped_clusters for c in committed))
    dirty.update(old_cluster[i] for i in np.flatnonzero(~old_chrome & chrome[:n_old]) if old_cluster[i] is not None)
    own_index: dict[str, int] = {}  # paragraph_id -> global index, for committed cluster originals
    for s, c in enumerate(committed):
        r, base = c.result, int(offsets[s])
        for k, cid in enumerate(c.decisions.cluster):
            if cid is not None and cid not in dirty and make_paragraph_id(r.doc_ids[r.key_doc[k]], int(r.key_pidx[k])) == cid:
                own_index[cid] = base + k
    known[:n_old] = -1
    for i, cid in enumerate(old_cluster):
        if cid is not None:
            known[i] = own_index.get(cid, -2)  # dirty (or original gone): decide again
    known[:n_old][old_chrome & ~chrome[:n_old]] = -2  # back from chrome: its pairs were never verified
    return known


def _repeated_lines(results: list[ShardResult], exact: np.ndarray, min_docs: int, max_chars: int) -> np.ndarray:
    """Boolean mask of keyed rows that are corpus-learned chrome: a line of at most ``max_chars``
    on at least ``min_docs`` documents of one site (``min_docs = 0``: off).

    Lines that recur across a site's pages (menus, share bars, footers, slogans) are chrome even
    when no rule knows them. Longer lines are exempt: repeated prose is syndicated content,
    handled as duplicates (the first copy kept). Counted per site, so a headline syndicated by
    several sites is not chrome.
    """
    n = exact.shape[0]
    if min_docs <= 0 or n == 0:
        return np.zeros(n, bool)
    doc_offsets = np.cumsum([0] + [r.n_docs for r in results])[:-1]
    doc = np.concatenate([r.key_doc.astype(np.int64) + off for r, off in zip(results, doc_offsets)])
    _, site_of_doc = np.unique(np.array([s for r in results for s in r.doc_sites], dtype=object), return_inverse=True)
    site = site_of_doc[doc].astype(np.int64)
    length = np.concatenate([r.key_len for r in results])
    group, _ = exact_groups(exact)
    # (group, site) pairs numbered densely (0 .. pairs present - 1), then documents counted once
    # per pair. Numbering by the raw code group * sites + site instead would size the count
    # array by lines x sites: 3 GB for 276k keyed lines from 1,603 sites (100 MB of web pages).
    pair_code = group * (int(site.max()) + 1) + site
    pair_ids = unique_sorted(pair_code)
    pair = np.searchsorted(pair_ids, pair_code)
    del pair_code
    n_docs = int(doc.max()) + 1
    pair_doc = unique_sorted(pair * n_docs + doc)
    docs_per_pair = np.bincount(pair_doc // n_docs, minlength=pair_ids.shape[0])
    return (docs_per_pair[pair] >= min_docs) & (length <= max_chars)
