"""Planted-pairs quality benchmark for near-duplicate detection.

Plants pairs of paragraphs whose *exact* Jaccard similarity of normalised character 5-gram
sets falls in a known bucket, mixes them (shuffled) with unrelated background paragraphs, runs
the real pipeline functions with the default dedup config (threshold 0.8, 5-grams, 128
permutations, seed 1, ``choose_bands``) and reports:

* recall per bucket: share of planted pairs that end up in the same duplicate cluster
  (for buckets below the threshold this is the share wrongly merged, which should be ~0);
* LSH candidate rate per bucket (the pair shares at least one band) next to the theoretical
  1 - (1 - J^rows)^bands at the bucket's mean J;
* precision: a reported pair (duplicate, its original) is correct iff the true Jaccard of
  their normalised 5-gram string sets is >= 0.8.

Acceptance: recall >= 0.98 for J >= 0.85, >= 0.90 in [0.8, 0.85), precision >= 0.99.
Exit status 1 when a criterion fails.

    .venv/bin/python bench/dedup_quality.py [--pairs N] [--background N] [--seed S] [--speed]

``--speed`` also times ``signatures`` against datasketch's ``MinHash.update`` loop (default
sha1 hash function) on ~2 MB of paragraphs of 100-1000 characters.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpusclean.tasks.config import DedupConfig  # noqa: E402
from corpusclean.tasks.stages.dedup import band_keys, exact_keys, find_duplicates  # noqa: E402
from corpusclean.tasks.stages.minhash import (  # noqa: E402
    batch_shingle_hashes,
    candidate_probability,
    choose_bands,
    normalize_for_dedup,
    signatures,
)

BUCKETS = [(0.5, 0.7), (0.7, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 1.0)]  # last one includes 1.0
REQUIRED_RECALL = {(0.8, 0.85): 0.90, (0.85, 0.9): 0.98, (0.9, 1.0): 0.98}
REQUIRED_PRECISION = 0.99

FUNCTION_WORDS = (
    "le la les un une des et est dans pour que qui sur pas plus avec ce il elle nous vous ils "
    "sont être avoir fait comme mais aussi très bien où leur cette entre après avant depuis sans "
    "sous chez l’homme d’après aujourd’hui qu’il déjà près the of and to in is was for on that "
    "with as by at from his her an which be this are or has had were not but they have one"
).split()
ONSETS = "b c d f g h j l m n p r s t v ch br cr dr fr gr pl pr tr st qu".split()
VOWELS = "a e i o u é è ê à â î ô û ou ai au eu oi an en on in".split()
CODAS = ["", "", "", "n", "r", "s", "l", "x", "t", "m"]
PUNCT = [",", ",", ".", ";", ":", " —", " «", " »", "!", "?", "(", ")"]


def make_word(rng: random.Random) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.randint(1, 3))) + rng.choice(CODAS)


class Generator:
    def __init__(self, seed: int, vocab_size: int = 20000) -> None:
        self.rng = random.Random(seed)
        self.vocab = sorted({make_word(self.rng) for _ in range(vocab_size)})

    def word(self) -> str:
        rng = self.rng
        w = rng.choice(FUNCTION_WORDS) if rng.random() < 0.35 else rng.choice(self.vocab)
        if rng.random() < 0.08:
            w = w.capitalize()
        if rng.random() < 0.07:
            w += rng.choice(PUNCT)
        return w

    def paragraph(self, lo: int, hi: int) -> str:
        target = self.rng.randint(lo, hi)
        words: list[str] = []
        size = 0
        while size < target:
            w = self.word()
            words.append(w)
            size += len(w) + 1
        return " ".join(words).capitalize() + "."


def shingle_set(text: str, n: int = 5) -> set[str]:
    norm = normalize_for_dedup(text)
    if not norm:
        return set()
    if len(norm) < n:
        return {norm}
    return {norm[i : i + n] for i in range(len(norm) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def cosmetic(rng: random.Random, text: str) -> str:
    """Changes that vanish under normalisation: case, punctuation, spacing, quote style."""
    words = text.split(" ")
    for _ in range(rng.randint(0, 4)):
        k = rng.randrange(len(words))
        op = rng.random()
        if op < 0.4:
            words[k] = words[k].upper()
        elif op < 0.8:
            words[k] = words[k] + rng.choice([",", ";", " ", "  ", " :"])
        else:
            words[k] = words[k].replace("’", "'")
    return " ".join(words)


def edit(gen: Generator, text: str, fine: bool) -> str:
    rng = gen.rng
    if fine:  # one character replaced/inserted/deleted
        k = rng.randrange(len(text))
        op = rng.random()
        ch = rng.choice("abcdefghijklmnopqrstuvwxyzéèàç ")
        if op < 0.5:
            return text[:k] + ch + text[k + 1 :]
        if op < 0.75:
            return text[:k] + ch + text[k:]
        return text[:k] + text[k + 1 :]
    words = text.split(" ")
    k = rng.randrange(len(words))
    op = rng.random()
    if op < 0.6:
        words[k] = gen.word()
    elif op < 0.8:
        words.insert(k, gen.word())
    elif len(words) > 5:
        del words[k]
    return " ".join(words)


def make_variant(gen: Generator, base: str, lo: float, hi: float, include_hi: bool) -> tuple[str, float] | None:
    """Edit ``base`` until the 5-gram Jaccard drops into [lo, hi) (or [lo, hi] when include_hi)."""
    rng = gen.rng
    if include_hi and hi >= 1.0 and rng.random() < 0.1:  # identical after normalisation
        v = cosmetic(rng, base)
        j = jaccard(shingle_set(base), shingle_set(v))
        return (v, j) if j >= lo else None
    base_set = shingle_set(base)
    target = rng.uniform(lo, hi)
    text = base
    j = 1.0
    for _ in range(2000):
        if j < hi and j <= target + 0.02:
            break
        text = edit(gen, text, fine=(j - target) < 0.06)
        j = jaccard(base_set, shingle_set(text))
    text = cosmetic(rng, text)
    j = jaccard(base_set, shingle_set(text))
    ok = lo <= j < hi or (include_hi and j == hi)
    return (text, j) if ok else None


def bucket_of(j: float) -> int:
    for b, (lo, hi) in enumerate(BUCKETS):
        if lo <= j < hi or (b == len(BUCKETS) - 1 and j >= lo):
            return b
    return -1


def build(pairs_per_bucket: int, background: int, seed: int):
    gen = Generator(seed)
    texts: list[str] = []
    planted: list[tuple[int, int, int, float]] = []  # (i, j, bucket, true J)
    for b, (lo, hi) in enumerate(BUCKETS):
        made = 0
        while made < pairs_per_bucket:
            base = gen.paragraph(250, 900)
            got = make_variant(gen, base, lo, hi, include_hi=b == len(BUCKETS) - 1)
            if got is None:
                continue
            variant, j = got
            texts.extend((base, variant))
            planted.append((len(texts) - 2, len(texts) - 1, b, j))
            made += 1
    for _ in range(background):
        texts.append(gen.paragraph(100, 1000))
    # shuffle so pair members are far apart and the lower index is random
    perm = list(range(len(texts)))
    gen.rng.shuffle(perm)
    new_pos = {old: new for new, old in enumerate(perm)}
    texts = [texts[old] for old in perm]
    planted = [(new_pos[i], new_pos[j], b, jac) for i, j, b, jac in planted]
    return texts, planted


def quality(pairs_per_bucket: int, background: int, seed: int) -> bool:
    cfg = DedupConfig()
    n_bands, rows = (cfg.bands, cfg.rows) if cfg.bands else choose_bands(cfg.threshold, cfg.num_perm)
    t0 = time.perf_counter()
    texts, planted = build(pairs_per_bucket, background, seed)
    t1 = time.perf_counter()
    norms = [normalize_for_dedup(t) for t in texts]
    ex = exact_keys(norms)
    sigs = signatures(norms, cfg.ngram, cfg.num_perm, cfg.seed)
    bk = band_keys(sigs, n_bands, rows)
    result = find_duplicates(
        ex, bk, lambda idx: batch_shingle_hashes([norms[i] for i in idx], cfg.ngram), cfg.threshold
    )
    t2 = time.perf_counter()

    print(
        f"config: threshold={cfg.threshold} ngram={cfg.ngram} num_perm={cfg.num_perm} seed={cfg.seed} "
        f"bands={n_bands} rows={rows}"
    )
    print(
        f"{len(texts)} paragraphs ({len(planted)} planted pairs, {background} background), "
        f"generated in {t1 - t0:.1f}s, deduplicated in {t2 - t1:.2f}s"
    )
    print("run counters:", result.summary())

    orig = result.original
    ok_all = True
    print(f"\n{'bucket':<12}{'pairs':>7}{'mean J':>9}{'cand.rate':>11}{'theory':>9}{'recall':>9}  required")
    for b, (lo, hi) in enumerate(BUCKETS):
        rows_b = [(i, j, jac) for i, j, bb, jac in planted if bb == b]
        if not rows_b:
            continue
        ii = np.array([r[0] for r in rows_b])
        jj = np.array([r[1] for r in rows_b])
        found = (orig[ii] >= 0) & (orig[ii] == orig[jj])
        cand = (bk[ii] == bk[jj]).any(axis=1) | (ex[ii] == ex[jj]).all(axis=1)
        mean_j = float(np.mean([r[2] for r in rows_b]))
        theory = candidate_probability(mean_j, n_bands, rows)
        recall = float(found.mean())
        need = REQUIRED_RECALL.get((lo, hi))
        label = f"[{lo:.2f},{hi:.2f}{']' if b == len(BUCKETS) - 1 else ')'}"
        verdict = ""
        if need is not None:
            passed = recall >= need
            ok_all &= passed
            verdict = f">= {need:.2f} {'PASS' if passed else 'FAIL'}"
        else:
            verdict = "(below threshold: should stay unmerged)"
        print(f"{label:<12}{len(rows_b):>7}{mean_j:>9.3f}{cand.mean():>11.3f}{theory:>9.3f}{recall:>9.3f}  {verdict}")

    # precision over reported (duplicate, original) pairs, with true J on 5-gram string sets
    dups = np.flatnonzero(result.is_duplicate)
    cache: dict[int, set[str]] = {}

    def sset(k: int) -> set[str]:
        if k not in cache:
            cache[k] = shingle_set(texts[k], cfg.ngram)
        return cache[k]

    true_j = np.array([jaccard(sset(int(d)), sset(int(orig[d]))) for d in dups])
    correct = int(np.count_nonzero(true_j >= cfg.threshold))
    precision = correct / len(dups) if len(dups) else 1.0
    edge_j = np.array([jaccard(sset(int(a)), sset(int(b))) for a, b in result.near_pairs])
    edge_ok = int(np.count_nonzero(edge_j >= cfg.threshold))
    passed = precision >= REQUIRED_PRECISION
    ok_all &= passed
    print(
        f"\nprecision: {correct}/{len(dups)} reported (duplicate, original) pairs have true J >= "
        f"{cfg.threshold} -> {precision:.4f} (>= {REQUIRED_PRECISION} {'PASS' if passed else 'FAIL'})"
    )
    print(f"verified near pairs with true J >= {cfg.threshold}: {edge_ok}/{len(edge_j)}")
    planted_set = {(min(i, j), max(i, j)) for i, j, _, _ in planted}
    extra = [(int(a), int(b)) for a, b in result.near_pairs if (int(a), int(b)) not in planted_set]
    print(f"verified near pairs that were not planted: {len(extra)}")
    print("\nALL PASS" if ok_all else "\nSOME CRITERIA FAILED")
    return ok_all


def speed(seed: int, mb: float = 2.0) -> None:
    import datasketch

    gen = Generator(seed + 1)
    texts: list[str] = []
    size = 0
    while size < mb * 1e6:
        t = gen.paragraph(100, 1000)
        texts.append(t)
        size += len(t.encode("utf-8"))
    t0 = time.perf_counter()
    norms = [normalize_for_dedup(t) for t in texts]
    t1 = time.perf_counter()
    signatures(norms, 5, 128, 1)
    t2 = time.perf_counter()
    norm_mb = sum(len(t.encode("utf-8")) for t in norms) / 1e6
    n_sh = sum(max(len(t) - 4, 1) for t in norms if t)
    print(f"\nspeed on {len(texts)} paragraphs, {size / 1e6:.2f} MB raw / {norm_mb:.2f} MB normalised, {n_sh} shingles:")
    print(f"  normalize_for_dedup: {t1 - t0:.3f}s = {size / 1e6 / (t1 - t0):.1f} MB/s")
    ours = norm_mb / (t2 - t1)
    print(f"  signatures (P=128):  {t2 - t1:.3f}s = {ours:.1f} MB/s")
    t3 = time.perf_counter()
    for t in norms:
        m = datasketch.MinHash(num_perm=128, seed=1)
        for i in range(max(len(t) - 4, 1)):
            m.update(t[i : i + 5].encode("utf-8"))
    t4 = time.perf_counter()
    theirs = norm_mb / (t4 - t3)
    print(f"  datasketch MinHash.update loop (sha1): {t4 - t3:.2f}s = {theirs:.3f} MB/s")
    print(f"  ratio: {ours / theirs:.0f}x (signatures only), {(t4 - t3) / (t2 - t0):.0f}x including normalisation")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=400, help="planted pairs per bucket (default 400)")
    ap.add_argument("--background", type=int, default=6000, help="unrelated background paragraphs (default 6000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", action="store_true", help="also time signatures against datasketch (~20 s)")
    args = ap.parse_args(argv)
    ok = quality(args.pairs, args.background, args.seed)
    if args.speed:
        speed(args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
