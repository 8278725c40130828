"""Stage 6a: compute the dedup keys of a batch (exact hash and MinHash band keys).

Only kept-so-far paragraphs take part (chrome is never a duplicate or an original).
The keys are small (16 bytes + 8 per band per paragraph); the text stays on disk in the
shard's staged file, from where candidate pairs are verified later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DedupConfig
from .dedup import band_keys, exact_keys
from .minhash import choose_bands, normalize_for_dedup, shingle_hash32, signatures
from ..plumbing.records import Batch
from ..plumbing.stage import Stage


@dataclass
class DedupKeys:
    rows: np.ndarray  # int64: row of each keyed paragraph within its batch
    exact: np.ndarray  # (n, 2) uint64
    bands: np.ndarray | None  # (n, bands) uint64, None when near-dup search is off


def empty_keys(n_bands: int | None) -> DedupKeys:
    return DedupKeys(
        np.zeros(0, np.int64),
        np.zeros((0, 2), np.uint64),
        None if n_bands is None else np.zeros((0, n_bands), np.uint64),
    )


def lsh_shape(config: DedupConfig) -> tuple[int, int]:
    if config.bands is not None and config.rows is not None:
        return config.bands, config.rows
    return choose_bands(config.threshold, config.num_perm)


def reference_signatures(norm_texts: list[str], ngram: int, num_perm: int, seed: int) -> np.ndarray:
    """The unoptimised reference: one datasketch MinHash per paragraph, updated shingle by shingle."""
    from datasketch import MinHash

    rows = np.empty((len(norm_texts), num_perm), np.uint32)
    for k, text in enumerate(norm_texts):
        m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash32)
        for i in range(max(1, len(text) - ngram + 1)) if text else ():
            m.update(text[i : i + ngram])
        rows[k] = m.hashvalues
    return rows


class SketchStage(Stage):
    name = "sketch"

    def __init__(self, config: DedupConfig, reference: bool = False) -> None:
        super().__init__()
        self.config = config
        self.bands, self.rows = lsh_shape(config)
        self.signatures = reference_signatures if reference else signatures

    def process(self, batch: Batch) -> Batch:
        paras = batch.paragraphs
        rows = [i for i, chrome in enumerate(paras.is_boilerplate) if not chrome]
        norm = [normalize_for_dedup(paras.text[i]) for i in rows]
        exact = exact_keys(norm)
        if len(rows):
            sigs = self.signatures(norm, self.config.ngram, self.config.num_perm, self.config.seed)
            bands = band_keys(sigs, self.bands, self.rows)
        else:
            bands = np.zeros((0, self.bands), np.uint64)
        batch.keys = DedupKeys(np.asarray(rows, np.int64), exact, bands)
        self.stats.counts["keyed_paragraphs"] += len(rows)
        return batch
