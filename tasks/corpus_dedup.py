"""Stage 6b: duplicates across the whole run, from the keys every shard returned.

The shards' keys are concatenated in shard order (= global order), clusters are found by
``dedup.find_duplicates``, and each shard gets back the decisions for its own rows only:
the rows that belong to a cluster, with the cluster original's ``paragraph_id``.
Candidate pairs are verified on the exact shingle sets, read back from the staged text.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tasks.config import DedupConfig
from tasks.dedup import exact_groups, find_duplicates
from tasks.minhash import batch_shingle_hashes, normalize_for_dedup, unique_sorted
from tasks.records import make_paragraph_id
from tasks.shard import ShardResult, open_staged
from tasks.stage import StageStats


# Candidate pairs verified per call: bounds the shingle sets held at once (~4k pairs, a few
# tens of MB) at no measurable cost in speed.
_VERIFY_CHUNK = 4096


@dataclass
class ShardDecisions:
    """Duplicate decisions for the rows of one shard that belong to a cluster."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # staged paragraph rows
    cluster: list[str] = field(default_factory=list)  # paragraph_id of the cluster's original
    is_duplicate: list[bool] = field(default_factory=list)  # False for the original itself
    kind: list[str | None] = field(default_factory=list)  # "exact" | "near" on duplicates
    chrome_rows: list[int] = field(default_factory=list)  # staged rows that are corpus-learned chrome


@dataclass
class RunDedup:
    decisions: list[ShardDecisions]
    stats: StageStats


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
            column = open_staged(self.results[shard].paragraphs_path).read_all().column("text")
        self._texts[shard] = column
        if len(self._texts) > self._CACHED_SHARDS:
            self._texts.popitem(last=False)
        return column

    def __call__(self, indices: np.ndarray) -> list[np.ndarray]:
        indices = np.asarray(indices, np.int64)
        out: list[np.ndarray | None] = [None] * len(indices)
        shard_of, local_of = _locate(self.offsets, indices)
        for shard in np.unique(shard_of):
            where = np.nonzero(shard_of == shard)[0]
            rows = self.results[int(shard)].key_rows[local_of[where]]
            texts = self._text_column(int(shard)).take(rows).to_pylist()
            shingles = batch_shingle_hashes([normalize_for_dedup(text) for text in texts], self.ngram)
            for slot, hashes in zip(where, shingles):
                out[slot] = hashes
        return out  # type: ignore[return-value]


REPEATED_REASON = "repeated_line"


def find_run_duplicates(results: list[ShardResult], config: DedupConfig, reference: bool = False) -> RunDedup:
    stats = StageStats("dedup")
    started = time.perf_counter()
    results = sorted(results, key=lambda r: r.index)
    if not config.enabled:
        stats.seconds = time.perf_counter() - started
        return RunDedup([ShardDecisions() for _ in results], stats)
    sizes = np.array([len(r.key_rows) for r in results], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    exact = np.concatenate([r.keys.exact for r in results]) if results else np.zeros((0, 2), np.uint64)
    bands = np.concatenate([r.keys.bands for r in results]) if results else None
    for r in results:
        r.keys = None  # consumed: keep one copy of the keys in memory, and ship none to finalize

    chrome = _repeated_lines(results, exact, config.repeated_line_min_docs, config.repeated_line_max_chars)
    content = np.flatnonzero(~chrome)  # the rows that take part in the duplicate search
    staged = _StagedShingles(results, offsets, config.ngram)
    found = find_duplicates(
        exact[content],
        None if bands is None else bands[content],
        lambda rows: staged(content[rows]),
        config.threshold,
        all_pairs=reference,
        verify_chunk=_VERIFY_CHUNK,
    )

    decisions = [ShardDecisions() for _ in results]
    for shard, local in zip(*_locate(offsets, np.flatnonzero(chrome))):
        decisions[shard].chrome_rows.append(int(results[shard].key_rows[local]))
    in_cluster = np.flatnonzero(found.original >= 0)
    members = content[in_cluster]
    originals = content[found.original[in_cluster]]
    shard_of, local_of = _locate(offsets, members)
    orig_shard, orig_local = _locate(offsets, originals)
    per_shard_rows: list[list[int]] = [[] for _ in results]
    for k, member, shard, local, original, o_shard, o_local in zip(
        in_cluster, members, shard_of, local_of, originals, orig_shard, orig_local
    ):
        o_result = results[o_shard]
        cluster_id = make_paragraph_id(
            o_result.doc_ids[o_result.key_doc[o_local]], int(o_result.key_pidx[o_local])
        )
        d = decisions[shard]
        per_shard_rows[shard].append(int(results[shard].key_rows[local]))
        d.cluster.append(cluster_id)
        is_dup = bool(member != original)
        d.is_duplicate.append(is_dup)
        d.kind.append(str(found.kind[k]) if is_dup else None)
    for d, rows in zip(decisions, per_shard_rows):
        d.rows = np.asarray(rows, np.int64)
    n_dup = int(np.count_nonzero(members != originals))
    stats.counts.update(
        {
            "keyed_paragraphs": int(len(exact)),
            "repeated_lines": int(np.count_nonzero(chrome)),
            "clusters": int(len(np.unique(originals))) if len(members) else 0,
            "duplicates": n_dup,
            "candidate_pairs": int(found.n_candidate_pairs),
            "verified_pairs": int(found.n_verified_pairs),
        }
    )
    stats.seconds = time.perf_counter() - started
    return RunDedup(decisions, stats)


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
    # (group, site) pairs numbered, then documents counted once per pair
    pair = group * (int(site.max()) + 1) + site
    n_docs = int(doc.max()) + 1
    pair_doc = unique_sorted(pair * n_docs + doc)
    docs_per_pair = np.bincount(pair_doc // n_docs, minlength=int(pair.max()) + 1)
    return (docs_per_pair[pair] >= min_docs) & (length <= max_chars)
