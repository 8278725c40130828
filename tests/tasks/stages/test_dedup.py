"""tasks.stages.dedup: exact keys, band keys, candidate generation, verification and clusters."""

from __future__ import annotations

import random

import numpy as np
import pytest
import xxhash

from corpusclean.tasks.stages.dedup import (
    KIND_EXACT,
    KIND_NEAR,
    KIND_NONE,
    SMALL_GROUP,
    DuplicateResult,
    band_keys,
    exact_keys,
    find_duplicates,
    jaccard_pairs,
)
from corpusclean.tasks.stages.minhash import batch_shingle_hashes, choose_bands, normalize_for_dedup, signatures

WORDS = (
    "le la les un une des et est dans pour que qui sur pas plus avec ce il elle nous vous sont "
    "été être avoir fait comme mais aussi très bien où leur cette entre après avant depuis sans "
    "ville pays année gouvernement président société économie région politique développement "
    "travail enfant école musique histoire forêt château élève garçon cœur œuvre façon reçu "
    "rivière montagne village marché boulanger fromage journal théâtre voyage lumière silence"
).split()


def paragraph(rng: random.Random, chars: int = 400) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS) + str(rng.randrange(1000)))  # numbered: unrelated texts differ
    return " ".join(words).capitalize() + "."


def run(texts: list[str], threshold: float = 0.8, ngram: int = 5) -> DuplicateResult:
    norms = [normalize_for_dedup(t) for t in texts]
    bands, rows = choose_bands(threshold, 128)
    sigs = signatures(norms, ngram, 128, 1)
    return find_duplicates(
        exact_keys(norms),
        band_keys(sigs, bands, rows),
        lambda idx: batch_shingle_hashes([norms[i] for i in idx], ngram),
        threshold,
    )


def set_shingles(sets: list[set[int]]):
    arrays = [np.array(sorted(s), dtype=np.uint32) for s in sets]

    def get(idx: np.ndarray) -> list[np.ndarray]:
        assert np.all(np.diff(idx) > 0)  # ascending, unique
        return [arrays[i] for i in idx]

    return get


def distinct_exact(n: int) -> np.ndarray:
    return exact_keys([f"text {i}" for i in range(n)])


# ---------------------------------------------------------------- keys


def test_exact_keys() -> None:
    keys = exact_keys(["abc", "abd", "abc", "", "x\udc80"])
    assert keys.shape == (5, 2) and keys.dtype == np.uint64
    assert np.array_equal(keys[0], keys[2]) and not np.array_equal(keys[0], keys[1])
    full = xxhash.xxh3_128_intdigest(b"abc")
    assert (int(keys[0, 0]) << 64) | int(keys[0, 1]) == full
    assert exact_keys([]).shape == (0, 2)


def test_band_keys() -> None:
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, size=(50, 128), dtype=np.uint64).astype(np.uint32)
    sigs[1, :6] = sigs[0, :6]  # band 0 shared
    sigs[2, 6:12] = sigs[0, :6]  # same values as row 0's band 0, but in band 1
    keys = band_keys(sigs, 21, 6)
    assert keys.shape == (50, 21) and keys.dtype == np.uint64
    assert keys[0, 0] == keys[1, 0] and keys[0, 1] != keys[1, 1]
    assert keys[2, 1] != keys[0, 0]
    assert len(np.unique(keys[:, 5])) == 50
    same = np.tile(sigs[:1], (2, 1))
    assert np.array_equal(band_keys(same, 21, 6)[0], band_keys(same, 21, 6)[1])
    assert len(set(band_keys(np.zeros((1, 128), np.uint32), 21, 6)[0].tolist())) == 21
    with pytest.raises(ValueError):
        band_keys(sigs, 22, 6)


# ---------------------------------------------------------------- end to end on text


def test_exact_duplicates_after_normalisation() -> None:
    rng = random.Random(1)
    base = paragraph(rng)
    variants = [
        base,
        paragraph(rng),
        base.upper(),
        base.replace(" ", "  \n ").replace(".", " !"),
        "« " + base.replace("e", "e,") + " »",
    ]
    res = run(variants)
    assert res.original.tolist() == [0, -1, 0, 0, 0]
    assert res.kind.tolist() == [None, None, "exact", "exact", "exact"]
    assert res.n_exact_duplicates == 3 and res.n_near_duplicates == 0
    assert res.is_duplicate.tolist() == [False, False, True, True, True]


def edit_words(rng: random.Random, text: str, k: int) -> str:
    words = text.split(" ")
    for pos in rng.sample(range(len(words)), k):
        words[pos] = rng.choice(WORDS)
    return " ".join(words)


def jaccard5(a: str, b: str) -> float:
    sa = {normalize_for_dedup(a)[i : i + 5] for i in range(len(normalize_for_dedup(a)) - 4)}
    sb = {normalize_for_dedup(b)[i : i + 5] for i in range(len(normalize_for_dedup(b)) - 4)}
    return len(sa & sb) / len(sa | sb)


def test_planted_near_duplicates_found() -> None:
    rng = random.Random(2)
    texts, pairs = [], []
    for _ in range(30):
        base = paragraph(rng, 400)
        near = edit_words(rng, base, 2)
        assert jaccard5(base, near) >= 0.85
        pairs.append((len(texts), len(texts) + 1))
        texts += [base, near]
    texts += [paragraph(rng) for _ in range(100)]
    res = run(texts)
    for i, j in pairs:
        assert res.original[i] == i and res.original[j] == i
        assert res.kind[j] == "near" and res.kind[i] is None
    assert res.n_near_duplicates == 30 and res.n_clusters == 30
    assert res.n_verified_pairs == 30 and res.near_pairs.tolist() == [list(p) for p in pairs]
    assert np.all(res.near_jaccard >= 0.8)
    assert np.all(res.original[60:] == -1)  # background stays alone


def test_unrelated_and_below_threshold_never_merged() -> None:
    rng = random.Random(3)
    a, b = paragraph(rng), paragraph(rng)
    far = edit_words(rng, a, 20)  # same topic words, J well below 0.8
    assert jaccard5(a, far) < 0.7
    res = run([a, b, far])
    assert res.original.tolist() == [-1, -1, -1]
    assert res.kind.tolist() == [None, None, None]


def test_kind_near_when_equal_to_a_near_duplicate_not_the_original() -> None:
    rng = random.Random(4)
    base = paragraph(rng, 400)
    near = edit_words(rng, base, 2)
    res = run([base, near, near.upper()])
    assert res.original.tolist() == [0, 0, 0]
    assert res.kind.tolist() == [None, "near", "near"]
    assert res.n_exact_pairs == 1  # row 2 equals row 1


def test_original_is_lowest_index_and_clusters_are_transitive() -> None:
    # A ~ B (J=0.82), B ~ C (J=0.82), A !~ C (J=0.67): one cluster, original = lowest index.
    sets = {"A": set(range(0, 100)), "B": set(range(10, 110)), "C": set(range(20, 120)), "D": set(range(500, 600))}
    order = ["D", "C", "A", "B"]  # A is not first: original must be min index among A, B, C
    res = find_duplicates(
        distinct_exact(4),
        np.zeros((4, 3), dtype=np.uint64),  # every band equal: all pairs are candidates
        set_shingles([sets[k] for k in order]),
        0.8,
    )
    assert res.n_candidate_pairs == 6 and res.n_verified_pairs == 2
    assert res.original.tolist() == [-1, 1, 1, 1]
    assert res.kind.tolist() == [None, None, "near", "near"]
    assert res.near_pairs.tolist() == [[1, 3], [2, 3]]


def test_determinism() -> None:
    rng = random.Random(5)
    texts = []
    for _ in range(20):
        base = paragraph(rng, 300)
        texts += [base, edit_words(rng, base, 1), base.lower()]
    texts += [paragraph(rng) for _ in range(30)]
    rng.shuffle(texts)
    r1, r2 = run(texts), run(list(texts))
    assert np.array_equal(r1.original, r2.original)
    assert np.array_equal(r1.kind_code, r2.kind_code)
    assert np.array_equal(r1.near_pairs, r2.near_pairs)
    assert r1.summary() == r2.summary()
    # every duplicate points to a lower index, originals point to themselves
    idx = np.arange(len(texts))
    dup = r1.is_duplicate
    assert np.all(r1.original[dup] < idx[dup])
    orig = np.unique(r1.original[r1.original >= 0])
    assert np.all(r1.original[orig] == orig) and not dup[orig].any()


def test_empty_and_trivial_inputs() -> None:
    res = find_duplicates(np.empty((0, 2), np.uint64), np.empty((0, 21), np.uint64), set_shingles([]), 0.8)
    assert res.original.shape == (0,) and res.kind.shape == (0,)
    assert res.n_candidate_pairs == 0 and res.n_verified_pairs == 0
    res = run([])
    assert res.original.size == 0
    res = run(["seul paragraphe"])
    assert res.original.tolist() == [-1] and res.kind.tolist() == [None]
    # bands=None: exact duplicates only
    norms = ["a b c", "x y z", "a b c"]
    res = find_duplicates(exact_keys(norms), None, set_shingles([]), 0.8)
    assert res.original.tolist() == [0, -1, 0] and res.kind.tolist() == [None, None, "exact"]
    # empty paragraphs are exact duplicates of each other
    res = run(["", "...", "!"])
    assert res.original.tolist() == [0, 0, 0]


# ---------------------------------------------------------------- candidate groups


def test_big_band_group_pairs_first_and_neighbours() -> None:
    n = SMALL_GROUP + 36  # one band group of 100 members
    sets = [set(range(1000 * i, 1000 * i + 100)) for i in range(n)]
    sets[50] = set(range(0, 100)) | {99999}  # near the group's first member: found
    sets[71] = set(range(70_000, 70_100)) | {88888}  # near its neighbour 70: found
    sets[90] = set(range(30_000, 30_100))  # exact copy of 30's set, far apart, not first: missed
    bands = np.zeros((n, 1), dtype=np.uint64)
    res = find_duplicates(distinct_exact(n), bands, set_shingles(sets), 0.8)
    assert res.n_big_band_groups == 1 and res.max_band_group == n
    assert res.n_candidate_pairs == (n - 1) + (n - 2)  # with the first; with the next (minus (0,1))
    assert res.original[50] == 0 and res.original[71] == 70
    assert res.original[90] == -1 and res.original[30] == -1


def test_small_band_group_all_pairs() -> None:
    n = SMALL_GROUP
    sets = [set(range(1000 * i, 1000 * i + 100)) for i in range(n)]
    sets[40] = set(sets[20]) | {7}
    res = find_duplicates(distinct_exact(n), np.zeros((n, 2), np.uint64), set_shingles(sets), 0.8)
    assert res.n_big_band_groups == 0
    assert res.n_candidate_pairs == n * (n - 1) // 2  # both bands give the same pairs: counted once
    assert res.original[40] == 20 and res.n_verified_pairs == 1


def test_only_exact_group_representatives_are_compared() -> None:
    exact = exact_keys(["a", "b", "a", "a"])
    sets = [{1, 2, 3}, {1, 2, 3, 4}, {1, 2, 3}, {1, 2, 3}]
    res = find_duplicates(exact, np.zeros((4, 1), np.uint64), set_shingles(sets), 0.7)
    assert res.n_candidate_pairs == 1  # (0, 1): rows 2 and 3 are represented by 0
    assert res.original.tolist() == [0, 0, 0, 0]
    assert res.kind.tolist() == [None, "near", "exact", "exact"]


# ---------------------------------------------------------------- verification


def test_jaccard_pairs_matches_sets() -> None:
    rng = np.random.default_rng(6)
    sets = [rng.integers(0, 300, size=int(rng.integers(0, 200)), dtype=np.uint64).astype(np.uint32) for _ in range(60)]
    left = rng.integers(0, 60, size=500)
    right = rng.integers(0, 60, size=500)

    def get(idx: np.ndarray) -> list[np.ndarray]:
        return [sets[i] for i in idx]  # unsorted, with repeats: must still be exact

    got = jaccard_pairs(left, right, get, chunk=37)
    for k in range(500):
        a, b = set(sets[left[k]].tolist()), set(sets[right[k]].tolist())
        want = len(a & b) / len(a | b) if a | b else 1.0
        assert got[k] == pytest.approx(want)


def test_jaccard_pairs_asks_again_only_for_rows_not_kept() -> None:
    """Rows seen in an earlier chunk are not fetched again while the budget holds them; a budget
    too small for some rows fetches those again; the figures are the same either way."""
    rng = np.random.default_rng(7)
    sets = [np.unique(rng.integers(0, 500, size=int(rng.integers(1, 120)))).astype(np.uint32) for _ in range(40)]
    left = rng.integers(0, 40, size=400)
    right = rng.integers(0, 40, size=400)
    results = {}
    for budget in (10**6, 300, 0):
        asked: list[int] = []

        def get(idx: np.ndarray) -> list[np.ndarray]:
            assert np.all(np.diff(idx) > 0)  # ascending, as the contract says
            asked.extend(idx.tolist())
            return [sets[i] for i in idx]

        results[budget] = jaccard_pairs(left, right, get, chunk=50, cache_hashes=budget)
        if budget == 10**6:
            assert sorted(asked) == sorted(set(asked))  # every row fetched once
        else:
            assert len(asked) > len(set(asked))
    assert np.array_equal(results[10**6], results[300]) and np.array_equal(results[10**6], results[0])


def test_jaccard_pairs_floor_skips_only_pairs_that_cannot_reach_it() -> None:
    """With ``floor``, pairs whose sizes rule the floor out get NaN; every other pair, and every
    ``>= floor`` decision, is as without it (sets with repeats too: sizes are counted unique)."""
    rng = np.random.default_rng(8)
    base = np.unique(rng.integers(0, 10**6, size=400)).astype(np.uint32)
    sets = [base[: int(rng.integers(0, len(base)))] for _ in range(50)]  # nested: J = |small| / |large|
    sets += [np.concatenate((s, s[: len(s) // 2])) for s in sets[:10]]  # repeats inside a set
    left = rng.integers(0, len(sets), size=600)
    right = rng.integers(0, len(sets), size=600)
    get = lambda idx: [sets[i] for i in idx]  # noqa: E731
    exact = jaccard_pairs(left, right, get, chunk=64)
    for floor in (0.5, 0.8, 0.95):
        got = jaccard_pairs(left, right, get, chunk=64, floor=floor)
        skipped = np.isnan(got)
        assert skipped.any() and (~skipped).any()
        assert np.array_equal(got[~skipped], exact[~skipped])
        assert np.all(exact[skipped] < floor)
        assert np.array_equal(got >= floor, exact >= floor)


def test_kind_codes() -> None:
    assert (KIND_NONE, KIND_EXACT, KIND_NEAR) == (0, 1, 2)


def test_known_originals_give_the_same_clusters_without_verifying_known_pairs() -> None:
    """Incremental use: decide the first rows, then all rows with those decisions as known."""
    rng = random.Random(7)
    texts: list[str] = []
    for _ in range(40):  # families of 1-4 mutually near texts (some exact), spread over the whole list
        base = paragraph(rng, 300)
        texts += [base] + [edit_words(rng, base, rng.randrange(0, 4)) for _ in range(rng.randrange(0, 4))]
    rng.shuffle(texts)
    norms = [normalize_for_dedup(t) for t in texts]
    bands, rows = choose_bands(0.8, 128)
    exact, keys = exact_keys(norms), band_keys(signatures(norms, 5, 128, 1), bands, rows)

    def decide(n: int, known=None, asked=None) -> DuplicateResult:
        def shingles(idx):
            if asked is not None:
                asked.update(idx.tolist())
            return batch_shingle_hashes([norms[i] for i in idx], 5)
        return find_duplicates(exact[:n], keys[:n], shingles, 0.8, known_original=known)

    full = decide(len(texts))
    for n_old in (0, len(texts) // 3, len(texts) - 5, len(texts)):
        earlier = decide(n_old)
        known = np.full(len(texts), -2, np.int64)
        known[:n_old] = earlier.original
        asked: set[int] = set()
        again = decide(len(texts), known, asked)
        assert np.array_equal(again.original, full.original) and np.array_equal(again.kind_code, full.kind_code)
        assert again.n_known_pairs + again.n_candidate_pairs == full.n_candidate_pairs
        if n_old == len(texts):
            assert again.n_candidate_pairs == 0 and not asked and again.n_known_pairs == full.n_candidate_pairs
