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
from tasks.dedup import find_duplicates
from tasks.minhash import batch_shingle_hashes, normalize_for_dedup
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


@dataclass
class RunDedup:
    decisions: list[ShardDecisions]
    stats: StageStats


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
        shard_of = np.searchsorted(self.offsets, indices, side="right") - 1
        for shard in np.unique(shard_of):
            result = self.results[int(shard)]
            where = np.nonzero(shard_of == shard)[0]
            local = indices[where] - self.offsets[shard]
            rows = result.key_rows[local]
            texts = self._text_column(int(shard)).take(rows).to_pylist()
            shingles = batch_shingle_hashes([normalize_for_dedup(text) for text in texts], self.ngram)
            for slot, hashes in zip(where, shingles):
                out[slot] = hashes
        return out  # type: ignore[return-value]


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
    found = find_duplicates(
        exact,
        bands,
        _StagedShingles(results, offsets, config.ngram),
        config.threshold,
        all_pairs=reference,
        verify_chunk=_VERIFY_CHUNK,
    )

    members = np.nonzero(found.original >= 0)[0]
    shard_of = np.searchsorted(offsets, members, side="right") - 1
    decisions = [ShardDecisions() for _ in results]
    originals = found.original[members]
    orig_shard = np.searchsorted(offsets, originals, side="right") - 1
    per_shard_rows: list[list[int]] = [[] for _ in results]
    for member, shard, original, o_shard in zip(members, shard_of, originals, orig_shard):
        o_local = original - offsets[o_shard]
        o_result = results[o_shard]
        cluster_id = make_paragraph_id(
            o_result.doc_ids[o_result.key_doc[o_local]], int(o_result.key_pidx[o_local])
        )
        local = member - offsets[shard]
        d = decisions[shard]
        per_shard_rows[shard].append(int(results[shard].key_rows[local]))
        d.cluster.append(cluster_id)
        is_dup = bool(member != original)
        d.is_duplicate.append(is_dup)
        d.kind.append(str(found.kind[member]) if is_dup else None)
    for d, rows in zip(decisions, per_shard_rows):
        d.rows = np.asarray(rows, np.int64)
    n_dup = int(np.count_nonzero(found.original[members] != members))
    stats.counts.update(
        {
            "keyed_paragraphs": int(len(exact)),
            "clusters": int(len(np.unique(found.original[members]))) if len(members) else 0,
            "duplicates": n_dup,
            "candidate_pairs": int(found.n_candidate_pairs),
            "verified_pairs": int(found.n_verified_pairs),
        }
    )
    stats.seconds = time.perf_counter() - started
    return RunDedup(decisions, stats)
