"""Exact and near-duplicate clusters over a whole run, with numpy sorts instead of Python dicts.

The caller computes, for every non-boilerplate paragraph in the run's global deterministic
order (sorted by source_path, record_index, paragraph_index, so index order is "first
occurrence" order):

* ``exact_keys(norm_texts)``: 128-bit xxh3 of the normalised text, shape (n, 2) uint64;
* ``band_keys(signatures(...), bands, rows)``: one 64-bit key per LSH band, shape (n, bands);

then calls ``find_duplicates`` once with both arrays and a ``get_shingles`` callback that
returns the unique shingle hashes (``tasks.stages.minhash.shingle_hashes``) of the rows it asks for,
used to verify every candidate pair with its exact Jaccard similarity.

Memory held for the whole run, per paragraph: 16 bytes of exact key + 8 * bands bytes of band
keys = 184 bytes with the defaults (threshold 0.8, 128 permutations -> 21 bands of 6 rows);
signatures (4 * num_perm = 512 bytes) are only needed per batch, to make the band keys.
``find_duplicates`` adds about 110 bytes per paragraph at its peak (index arrays for the
exact grouping and for one band at a time; measured with tracemalloc on 1M paragraphs), plus
16 bytes per candidate pair, and returns 17 bytes per paragraph (``original`` int64 +
``kind_code`` int8) + 8 for the ``kind`` object array.
So 10 million paragraphs need about 1.8 GB of keys and about 3 GB at the peak.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import xxhash

from .minhash import unique_sorted

__all__ = [
    "KIND_EXACT",
    "KIND_NEAR",
    "KIND_NONE",
    "KIND_NAMES",
    "SMALL_GROUP",
    "DuplicateResult",
    "band_keys",
    "exact_keys",
    "find_duplicates",
    "jaccard_pairs",
]

KIND_NONE, KIND_EXACT, KIND_NEAR = 0, 1, 2
KIND_NAMES = (None, "exact", "near")  # KIND_NAMES[code]

# Band groups up to this size emit all their pairs; larger ones a linear number of pairs.
SMALL_GROUP = 64
# Candidate pairs verified per call of get_shingles (bounds the shingle arrays held at once).
_VERIFY_CHUNK = 1 << 14
# Shingle hashes kept from one chunk of pairs to the next (uint32: 32 MiB). Families of similar
# texts (templates) give each row hundreds of candidates spread over every chunk; without it a
# row's shingles were computed again in each one (8.4 MB of such text: 38.6 s of search, over
# half of it recomputing shingles).
_SHINGLE_CACHE_HASHES = 8 << 20

_U64 = np.uint64
_M64 = 0xFFFFFFFFFFFFFFFF


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def exact_keys(norm_texts: Sequence[str]) -> np.ndarray:
    """xxh3-128 of each normalised text (UTF-8, lone surrogates passed through), shape (n, 2)
    uint64: column 0 the high 64 bits, column 1 the low 64 bits of the digest."""
    digest = xxhash.xxh3_128_digest
    raw = b"".join(digest(t.encode("utf-8", "surrogatepass")) for t in norm_texts)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(norm_texts), 2)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per LSH band, shape (n, bands) uint64.

    Band ``j`` covers signature columns ``[j*rows, (j+1)*rows)``. The key is a multiply/xor
    chain over the band's values seeded with the band index (equal values in different bands
    give different keys), finished with MurmurHash3's 64-bit finalizer. Two rows get the same
    key for band ``j`` iff their band values are equal, up to 64-bit hash collisions (which
    only add candidates; every candidate is verified).
    """
    sigs = np.asarray(sigs)
    if sigs.ndim != 2:
        raise ValueError("sigs must be a 2-D array (n, num_perm)")
    if bands < 1 or rows < 1 or bands * rows > sigs.shape[1]:
        raise ValueError(f"bands * rows ({bands} * {rows}) must be between 1 and num_perm ({sigs.shape[1]})")
    n = sigs.shape[0]
    vals = sigs[:, : bands * rows].astype(np.uint64).reshape(n, bands, rows)
    prime = _U64(0x100000001B3)  # FNV-1a 64-bit prime
    with np.errstate(over="ignore"):
        h = np.empty((n, bands), dtype=np.uint64)
        h[:] = _fmix64((np.arange(bands, dtype=np.uint64) + _U64(1)) * _U64(0x9E3779B97F4A7C15))
        for r in range(rows):
            h ^= vals[:, :, r]
            h *= prime
            h ^= h >> _U64(29)
        return _fmix64(h)


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------


@dataclass
class DuplicateResult:
    """Duplicate clusters of n paragraphs (index = the caller's global paragraph order).

    ``original[i]``: index of the original (lowest index) of i's cluster when the cluster has
    at least 2 members, **including on the original itself** (``original[i] == i``); -1 for
    paragraphs without duplicates. ``is_duplicate = original >= 0 & original != index``.
    ``kind[i]``: "exact" for a duplicate whose normalised text equals its original's (same
    exact key), "near" for other duplicates, None otherwise (object array: converts straight
    to an Arrow string column with nulls). ``kind_code`` is the same as int8 (KIND_*).
    """

    original: np.ndarray  # int64 (n,)
    kind_code: np.ndarray  # int8 (n,): KIND_NONE / KIND_EXACT / KIND_NEAR
    n_candidate_pairs: int  # distinct LSH candidate pairs (between exact-group representatives)
    n_verified_pairs: int  # candidate pairs whose exact Jaccard >= threshold
    n_exact_pairs: int = 0  # rows whose text equals a lower-index row's (exact-duplicate edges)
    n_clusters: int = 0  # clusters of size >= 2
    n_big_band_groups: int = 0  # band groups larger than SMALL_GROUP (only linear pairs emitted)
    n_known_pairs: int = 0  # candidate pairs between two ``known`` rows, not verified again
    max_band_group: int = 0  # largest band group seen (among exact-group representatives)
    near_pairs: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))  # verified (i < j)
    near_jaccard: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))  # their exact Jaccard
    kind: np.ndarray = field(init=False, repr=False)  # object (n,): "exact" / "near" / None, from kind_code

    def __post_init__(self) -> None:
        self.kind = np.asarray(KIND_NAMES, dtype=object)[self.kind_code]

    @property
    def is_duplicate(self) -> np.ndarray:
        return self.kind_code != KIND_NONE

    @property
    def n_exact_duplicates(self) -> int:
        return int(np.count_nonzero(self.kind_code == KIND_EXACT))

    @property
    def n_near_duplicates(self) -> int:
        return int(np.count_nonzero(self.kind_code == KIND_NEAR))

    def summary(self) -> dict[str, int]:
        """Counters for the run report."""
        return {
            "paragraphs": int(self.original.shape[0]),
            "clusters": self.n_clusters,
            "exact_duplicates": self.n_exact_duplicates,
            "near_duplicates": self.n_near_duplicates,
            "candidate_pairs": self.n_candidate_pairs,
            "verified_pairs": self.n_verified_pairs,
            "big_band_groups": self.n_big_band_groups,
            "max_band_group": self.max_band_group,
        }


# --------------------------------------------------------------------------------------
# Algorithm
# --------------------------------------------------------------------------------------


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start offsets of runs of equal values in a sorted 1-D array (or rows of a 2-D one)."""
    m = sorted_keys.shape[0]
    if m == 0:
        return np.empty(0, dtype=np.int64)
    change = sorted_keys[1:] != sorted_keys[:-1]
    if change.ndim == 2:
        change = change.any(axis=1)
    return np.concatenate(([0], np.flatnonzero(change) + 1)).astype(np.int64)


def _band_pairs(members: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Candidate pairs of one band.

    ``members``: row indices (ascending), ``keys``: their keys for this band. Returns
    ``(left, right)`` row arrays with ``left < right``, the number of groups bigger than
    SMALL_GROUP and the largest group size.
    """
    order = np.argsort(keys, kind="stable")  # stable: members stay ascending inside a group
    skeys = keys[order]
    starts = _group_starts(skeys)
    sizes = np.diff(np.append(starts, skeys.shape[0]))
    multi = sizes >= 2
    if not multi.any():
        return np.empty(0, np.int64), np.empty(0, np.int64), 0, int(sizes.max(initial=0))
    starts, sizes = starts[multi], sizes[multi]
    # Positions (in sorted order) of every entry of a group with >= 2 members.
    group_of = np.repeat(np.arange(starts.shape[0]), sizes)
    pos = np.arange(group_of.shape[0]) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # position in group
    rows = members[order[np.repeat(starts, sizes) + pos]]
    gsize = sizes[group_of]
    first = np.repeat(starts, sizes)  # index into `order` of the group's first member

    lefts: list[np.ndarray] = []
    rights: list[np.ndarray] = []
    small = gsize <= SMALL_GROUP
    # Small groups: all pairs (p, p+d) for d = 1 .. size-1, d looping up to the largest small size.
    if small.any():
        s_rows, s_pos, s_size = rows[small], pos[small], gsize[small]
        for d in range(1, int(s_size.max())):
            ok = s_pos + d < s_size
            if not ok.any():
                break
            idx = np.flatnonzero(ok)
            lefts.append(s_rows[idx])
            rights.append(s_rows[idx + d])  # same group: entries of a group are contiguous
    big = ~small
    n_big = int(np.count_nonzero(sizes > SMALL_GROUP))
    if big.any():
        b_rows, b_pos, b_first = rows[big], pos[big], first[big]
        head = members[order[b_first]]
        not_head = b_pos > 0
        lefts.append(head[not_head])  # every member with the group's first member
        rights.append(b_rows[not_head])
        nxt = np.flatnonzero(b_pos[:-1] + 1 == b_pos[1:])  # next member of the same group
        nxt = nxt[b_pos[nxt] > 0]  # (first, second) already emitted above
        lefts.append(b_rows[nxt])
        rights.append(b_rows[nxt + 1])
    left = np.concatenate(lefts) if lefts else np.empty(0, np.int64)
    right = np.concatenate(rights) if rights else np.empty(0, np.int64)
    return left, right, n_big, int(sizes.max())


def _as_set(hashes) -> np.ndarray:
    """A shingle-hash array as a sorted set of uint32 (``shingle_hashes`` output already is one)."""
    a = np.asarray(hashes, dtype=np.uint32)
    return a if a.shape[0] < 2 or bool(np.all(a[1:] > a[:-1])) else np.unique(a)


def _tagged_sets(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sets k = 0..m-1 (each sorted and unique: ``_as_set``) as one sorted array of
    ``k << 32 | hash``, and their sizes."""
    m = len(arrays)
    lens = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=m)
    values = np.concatenate(arrays).astype(np.uint64) if m else np.empty(0, np.uint64)
    keys = (np.repeat(np.arange(m, dtype=np.uint64), lens) << _U64(32)) | values
    return keys, lens


def jaccard_pairs(
    left: np.ndarray,
    right: np.ndarray,
    get_shingles: Callable[[np.ndarray], list[np.ndarray]],
    chunk: int = _VERIFY_CHUNK,
    cache_hashes: int = _SHINGLE_CACHE_HASHES,
    floor: float = 0.0,
) -> np.ndarray:
    """Exact Jaccard of the shingle sets of each pair (left[k], right[k]), float64.

    Vectorised per chunk of pairs: each side's sets are laid end to end, tagged with the pair
    number (``pair << 32 | hash``; sorted and deduplicated unless they already are, as
    ``shingle_hashes`` output is), and the intersection size of every pair is the number of
    tags both sides hold (adjacent once the two sorted sides are merged), counted per pair with
    ``np.bincount`` -- the same count as ``np.intersect1d(a, b, assume_unique=True).size`` per
    pair. Two empty sets have Jaccard 1.0.

    ``get_shingles`` is asked only for rows whose sets are not kept from an earlier chunk: the
    first ``cache_hashes`` hashes fetched are kept for the later chunks (the same sets, so the
    same figures, whatever the budget).

    ``floor``: a pair whose Jaccard cannot reach it is not compared and gets NaN. The bound is
    the sets' sizes: J <= |smaller| / |larger|, and the computed ``inter / union`` never exceeds
    the computed ``smaller / larger``, so ``result >= floor`` is the same with or without it.
    Families of similar texts of different lengths make many such candidates.
    """
    out = np.empty(left.shape[0], dtype=np.float64)
    kept: dict[int, np.ndarray] = {}
    room = cache_hashes
    for c0 in range(0, left.shape[0], chunk):
        lo, ro = left[c0 : c0 + chunk], right[c0 : c0 + chunk]
        m = lo.shape[0]
        need, inverse = np.unique(np.concatenate((lo, ro)), return_inverse=True)
        rows = need.tolist()
        missing = [r for r in rows if r not in kept] if kept else rows
        fetched = get_shingles(np.asarray(missing, dtype=np.int64)) if missing else []
        if len(fetched) != len(missing):
            raise ValueError(f"get_shingles returned {len(fetched)} arrays for {len(missing)} rows")
        found = dict(zip(missing, map(_as_set, fetched)))
        sets = [kept[r] if r in kept else found[r] for r in rows]
        for r, a in found.items():
            if a.shape[0] <= room:
                kept[r] = a.copy()  # not a view: that would hold the whole chunk's array
                room -= a.shape[0]
        li, ri = inverse[:m], inverse[m:]
        if floor > 0:
            size = np.fromiter(map(len, sets), dtype=np.int64, count=len(sets))
            small, large = np.minimum(size[li], size[ri]), np.maximum(size[li], size[ri])
            can = np.where(large > 0, small / np.maximum(large, 1), 1.0) >= floor
            out[c0 : c0 + m] = np.nan
            li, ri = li[can], ri[can]
            at = c0 + np.flatnonzero(can)
        else:
            at = slice(c0, c0 + m)
        k = li.shape[0]
        lkeys, lsize = _tagged_sets([sets[i] for i in li])
        rkeys, rsize = _tagged_sets([sets[i] for i in ri])
        if lkeys.shape[0] and rkeys.shape[0]:
            # both sides sorted and unique: a stable sort (timsort) of the two runs is one merge,
            # ~2x faster than searching one side in the other; a shared tag is then adjacent
            both = np.concatenate((lkeys, rkeys))
            both.sort(kind="stable")
            shared = both[1:][both[1:] == both[:-1]]
            inter = np.bincount((shared >> _U64(32)).astype(np.int64), minlength=k)
        else:
            inter = np.zeros(k, dtype=np.int64)
        union = lsize + rsize - inter
        out[at] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return out


def exact_groups(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows with equal exact keys: ``(group of each row, lowest row of each group)``.

    Groups are numbered in key order (lexsort, no per-row Python objects); inside a group rows
    stay in ascending index order, so a group's first row is its original.
    """
    n = exact.shape[0]
    order = np.lexsort(exact.T[::-1])  # by column 0, then 1; stable -> ascending index inside a group
    starts = _group_starts(exact[order])
    sizes = np.diff(np.append(starts, n))
    group = np.empty(n, dtype=np.int64)
    group[order] = np.repeat(np.arange(starts.shape[0]), sizes)
    return group, order[starts]


_MAX_ALL_PAIRS_ROWS = 20_000


def find_duplicates(
    exact: np.ndarray,
    bands: np.ndarray | None,
    get_shingles: Callable[[np.ndarray], list[np.ndarray]],
    threshold: float,
    *,
    verify_chunk: int = _VERIFY_CHUNK,
    all_pairs: bool = False,
    known_original: np.ndarray | None = None,
) -> DuplicateResult:
    """Exact and near-duplicate clusters; deterministic for given inputs.

    ``all_pairs=True`` is the unoptimised reference: every pair of representatives is a
    candidate (no LSH; quadratic, for small corpora and tests only).

    1. Exact: rows with equal ``exact`` keys (lexsort, no per-row Python objects) form an exact
       group; its lowest index is the representative, and only representatives take part in
       the near-duplicate search.
    2. Candidates: per band, representatives are sorted by band key; a group of equal keys of
       size <= SMALL_GROUP (64) yields all its pairs, a bigger group yields each member with
       the group's first (lowest-index) member and with its next member in index order.
       What the big-group rule misses: two members that are near duplicates of each other but
       not of the group's first member, and not adjacent in index order, are not paired *by
       that band*; they are still found if another band puts them in a smaller group or if a
       chain of verified pairs connects them. Big groups arise when many different paragraphs
       share a whole band, i.e. from families of mutually similar texts (templates).
    3. Verification: every distinct candidate pair is kept iff the exact Jaccard of the two
       shingle-hash sets (``get_shingles``) is >= threshold, so precision does not depend on
       MinHash estimation error.
    4. Clusters: connected components of exact edges (member -> representative) and verified
       near pairs; a cluster's original is its lowest index. Because clusters are transitive,
       a member can be less than ``threshold`` similar to its original (A~B, B~C, A!~C).

    ``exact``: (n, 2) uint64 from ``exact_keys``. ``bands``: (n, bands) uint64 from
    ``band_keys``, or None for exact deduplication only. ``get_shingles(rows)``: for an
    ascending int64 array of row indices, the list of their unique shingle-hash arrays; it is
    called once per ``verify_chunk`` (16384) candidate pairs, with at most twice as many rows.

    ``known_original`` (incremental runs): per row, -2 for a row not decided before, else the
    row's original as decided before among the known rows (its own index for an original, -1
    when it had no duplicate). Known rows' clusters are final among themselves: a candidate
    pair of two known rows is not verified again, and each known row is linked to its known
    original instead. The result is the same as without ``known_original`` when the known rows'
    earlier decisions were taken by this function over exactly those rows.
    """
    exact = np.asarray(exact)
    if exact.ndim != 2:
        raise ValueError("exact must be a 2-D array (n, 2)")
    n = exact.shape[0]
    if bands is not None:
        bands = np.asarray(bands)
        if bands.ndim != 2 or bands.shape[0] != n:
            raise ValueError(f"bands must have shape ({n}, bands), got {bands.shape}")
    if n == 0:
        return DuplicateResult(
            original=np.empty(0, np.int64), kind_code=np.empty(0, np.int8), n_candidate_pairs=0, n_verified_pairs=0
        )

    # 1. exact groups
    exact_group, group_rep = exact_groups(exact)
    rep_of = group_rep[exact_group]
    dup_rows = np.flatnonzero(rep_of != np.arange(n))
    reps = np.sort(group_rep)

    # 2. candidate pairs between representatives
    n_big = 0
    max_group = 1
    codes: list[np.ndarray] = []
    if bands is not None and reps.shape[0] >= 2:
        for j in range(bands.shape[1]):
            left, right, big, largest = _band_pairs(reps, bands[reps, j])
            n_big += big
            max_group = max(max_group, largest)
            if left.size:
                lo, hi = np.minimum(left, right), np.maximum(left, right)
                codes.append(unique_sorted(lo.astype(np.int64) * n + hi))
    if all_pairs and reps.shape[0] >= 2:
        if reps.shape[0] > _MAX_ALL_PAIRS_ROWS:
            raise ValueError(f"all_pairs is for small corpora: {reps.shape[0]} rows > {_MAX_ALL_PAIRS_ROWS}")
        i, j = np.triu_indices(reps.shape[0], 1)
        codes = [reps[i].astype(np.int64) * n + reps[j]]
    pair_codes = unique_sorted(np.concatenate(codes)) if codes else np.empty(0, np.int64)
    cand_left, cand_right = pair_codes // n, pair_codes % n
    n_known = 0
    star = np.empty(0, np.int64)
    if known_original is not None:
        known_original = np.asarray(known_original, np.int64)
        known = known_original >= -1
        both = known[cand_left] & known[cand_right]
        n_known = int(np.count_nonzero(both))
        pair_codes, cand_left, cand_right = pair_codes[~both], cand_left[~both], cand_right[~both]
        star = np.flatnonzero(known & (known_original >= 0) & (known_original != np.arange(n)))

    # 3. verification with the exact Jaccard
    if pair_codes.size:
        jac = jaccard_pairs(cand_left, cand_right, get_shingles, verify_chunk, floor=threshold)
        ok = jac >= threshold
    else:
        jac = np.empty(0)
        ok = np.empty(0, dtype=bool)
    near_left, near_right = cand_left[ok], cand_right[ok]

    # 4. connected components
    src = np.concatenate((dup_rows, near_left, star))
    dst = np.concatenate((rep_of[dup_rows], near_right, known_original[star] if star.size else star))
    # imported here: shard workers import this module for its keys only, and scipy.sparse costs
    # ~0.4 s of start-up in each of them
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(src.shape[0], dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="weak")
    comp_size = np.bincount(labels)
    comp_min = np.full(comp_size.shape[0], n, dtype=np.int64)
    np.minimum.at(comp_min, labels, np.arange(n, dtype=np.int64))
    in_cluster = comp_size[labels] >= 2
    original = np.where(in_cluster, comp_min[labels], -1).astype(np.int64)
    is_dup = in_cluster & (original != np.arange(n))
    kind_code = np.zeros(n, dtype=np.int8)
    if is_dup.any():
        same_text = exact_group == exact_group[np.where(is_dup, original, 0)]
        kind_code[is_dup & same_text] = KIND_EXACT
        kind_code[is_dup & ~same_text] = KIND_NEAR

    return DuplicateResult(
        original=original,
        kind_code=kind_code,
        n_candidate_pairs=int(pair_codes.shape[0]),
        n_known_pairs=n_known,
        n_verified_pairs=int(np.count_nonzero(ok)),
        n_exact_pairs=int(dup_rows.shape[0]),
        n_clusters=int(np.count_nonzero(comp_size >= 2)),
        n_big_band_groups=n_big,
        max_band_group=max_group,
        near_pairs=np.stack((near_left, near_right), axis=1).astype(np.int64),
        near_jaccard=jac[ok].astype(np.float32),
    )
