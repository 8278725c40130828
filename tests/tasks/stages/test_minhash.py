"""tasks.stages.minhash: normalisation, shingle hashes and datasketch-identical affine32 signatures."""

from __future__ import annotations

import datasketch
import numpy as np
import pytest
from datasketch.minhash import _fmix
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corpusclean.tasks.stages.minhash as mh
from corpusclean.tasks.stages.minhash import (
    EMPTY_HASH,
    batch_shingle_hashes,
    candidate_probability,
    choose_bands,
    fmix32,
    normalize_for_dedup,
    permutations,
    shingle_hash32,
    shingle_hashes,
    signatures,
    unique_sorted,
)

FRENCH = [
    "L’État, c’est moi — aurait dit Louis XIV « en 1655 ».",
    "Les élèves de l’école Saint‑Exupéry ont reçu leurs bulletins : très bien !",
    "Où est passé le cœur de la forêt ? Déjà là, près du château.",
    "Œuvre naïve de Noël\u00a0: 12\u202f€ seulement, façon garçon.",
    "Ça",
    "",
    "a",
    "abcd",
    "abcde",
    "😀 emoji 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001d11e",
]

# Text with accents, emoji, astral characters, combining marks, whitespace.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list("aàâeéèêëiîoôuùûçœæ’'«» \u00a0\u202f\n\t.,;:!?-😀🎉𝔘\U0001d11e\u0301")),
    ),
    max_size=120,
)


def shingles_of(text: str, n: int) -> list[str]:
    if not text:
        return []
    if len(text) < n:
        return [text]
    return [text[i : i + n] for i in range(len(text) - n + 1)]


def reference_minhash(text: str, n: int, num_perm: int, seed: int) -> datasketch.MinHash:
    m = datasketch.MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash32)
    for s in shingles_of(text, n):
        m.update(s)
    return m


# ---------------------------------------------------------------- permutations and fmix


@pytest.mark.parametrize("num_perm", [16, 128, 256])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_permutations_equal_datasketch(num_perm: int, seed: int) -> None:
    a, b = permutations(num_perm, seed)
    ref = datasketch.MinHash(num_perm=num_perm, seed=seed).permutations
    assert ref.dtype == np.uint32 and a.dtype == np.uint32 and b.dtype == np.uint32
    assert np.array_equal(np.array([a, b]), ref)
    assert np.all(a & 1 == 1)


def test_fmix32_equals_datasketch() -> None:
    x = np.random.default_rng(0).integers(0, 2**32, 10_000, dtype=np.uint64).astype(np.uint32)
    assert np.array_equal(fmix32(x), _fmix(x, 32))


# ---------------------------------------------------------------- shingles


def test_shingle_hash_is_fnv1a_over_code_points() -> None:
    # byte-wise FNV-1a 32 of b"a" is 0xE40C292C; code points < 256 behave like Latin-1 bytes
    assert shingle_hash32("a") == 0xE40C292C
    assert shingle_hash32("") == mh.FNV_OFFSET
    assert shingle_hash32("😀") != shingle_hash32("\ud83d\ude00")  # one code point vs two


def test_shingle_hashes_edge_cases() -> None:
    assert shingle_hashes("", 5).dtype == np.uint32 and shingle_hashes("", 5).size == 0
    assert shingle_hashes("abc", 5).tolist() == [shingle_hash32("abc")]
    assert shingle_hashes("abcde", 5).tolist() == [shingle_hash32("abcde")]
    assert shingle_hashes("aaaaaaaa", 5).tolist() == [shingle_hash32("aaaaa")]
    assert shingle_hashes("abc", 1).tolist() == sorted(shingle_hash32(c) for c in "abc")
    lone = "x\udc80yz\ud800w"  # lone surrogates (e.g. from surrogateescape) pass through
    assert shingle_hashes(lone, 3).tolist() == sorted({shingle_hash32(s) for s in shingles_of(lone, 3)})
    with pytest.raises(ValueError):
        shingle_hashes("abc", 0)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(TEXT, max_size=6), n=st.sampled_from([1, 3, 5, 7]))
def test_shingle_hashes_match_python(texts: list[str], n: int) -> None:
    batch = batch_shingle_hashes(texts, n)
    assert len(batch) == len(texts)
    for text, got in zip(texts, batch):
        want = sorted({shingle_hash32(s) for s in shingles_of(text, n)})
        assert shingle_hashes(text, n).tolist() == want
        assert got.dtype == np.uint32 and got.tolist() == want


def test_unique_sorted() -> None:
    x = np.array([5, 1, 5, 3, 1, 9], dtype=np.uint64)
    assert unique_sorted(x).tolist() == [1, 3, 5, 9]
    assert unique_sorted(np.empty(0, np.uint32)).size == 0


# ---------------------------------------------------------------- signatures


@pytest.mark.parametrize("num_perm", [16, 128])
@pytest.mark.parametrize("seed", [1, 7])
def test_signatures_french_examples(num_perm: int, seed: int) -> None:
    texts = [normalize_for_dedup(t) for t in FRENCH] + FRENCH  # normalised and raw both work
    sigs = signatures(texts, 5, num_perm, seed)
    assert sigs.shape == (len(texts), num_perm) and sigs.dtype == np.uint32
    for text, row in zip(texts, sigs):
        assert np.array_equal(row, reference_minhash(text, 5, num_perm, seed).hashvalues), text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(TEXT, max_size=5),
    num_perm=st.sampled_from([16, 128]),
    seed=st.sampled_from([1, 7]),
    n=st.sampled_from([2, 5]),
)
def test_signatures_equal_datasketch(texts: list[str], num_perm: int, seed: int, n: int) -> None:
    sigs = signatures(texts, n, num_perm, seed)
    assert sigs.shape == (len(texts), num_perm)
    for text, row in zip(texts, sigs):
        assert np.array_equal(row, reference_minhash(text, n, num_perm, seed).hashvalues)


def test_signatures_lone_surrogates_across_texts() -> None:
    # a surrogate pair split over two texts must not fuse when the batch is concatenated
    texts = ["ab\ud83d", "\ude00cd", "\ud83d\ude00xyz", "😀"]
    sigs = signatures(texts, 2, 16, 1)
    for text, row in zip(texts, sigs):
        assert np.array_equal(row, reference_minhash(text, 2, 16, 1).hashvalues)
    assert normalize_for_dedup("A\ud800B. c") == "a\ud800b c"


def test_empty_text_is_datasketch_empty_value() -> None:
    sigs = signatures(["", "abcdef", ""], 5, 16, 1)
    assert np.all(sigs[0] == EMPTY_HASH) and np.all(sigs[2] == EMPTY_HASH)
    assert np.array_equal(sigs[0], datasketch.MinHash(num_perm=16, seed=1).hashvalues)
    assert signatures([], 5, 16, 1).shape == (0, 16)


def test_signatures_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Texts split across permutation chunks and text batches give the same rows."""
    rng = np.random.default_rng(3)
    words = ["le", "chat", "été", "forêt", "😀", "naïve", "œuvre", "x"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 40)))) for _ in range(40)] + ["", "ab"]
    want = signatures(texts, 5, 32, 1)
    monkeypatch.setattr(mh, "_PERM_CHUNK", 7)
    monkeypatch.setattr(mh, "_TEXT_CHUNK_CHARS", 50)
    got = signatures(texts, 5, 32, 1)
    assert np.array_equal(got, want)
    for text, row in zip(texts, got):
        assert np.array_equal(row, reference_minhash(text, 5, 32, 1).hashvalues)
    batch = batch_shingle_hashes(texts, 5)
    assert [b.tolist() for b in batch] == [shingle_hashes(t, 5).tolist() for t in texts]


def test_lean_minhash_interop() -> None:
    a = normalize_for_dedup(FRENCH[1])
    b = normalize_for_dedup(FRENCH[1].replace("bulletins", "carnets"))
    sigs = signatures([a, b], 5, 128, 1)
    ref_a, ref_b = reference_minhash(a, 5, 128, 1), reference_minhash(b, 5, 128, 1)
    lean_a = datasketch.LeanMinHash(seed=1, hashvalues=sigs[0], scheme="affine32")
    lean_b = datasketch.LeanMinHash(seed=1, hashvalues=sigs[1], scheme="affine32")
    assert lean_a.jaccard(lean_b) == ref_a.jaccard(ref_b)
    assert lean_a.jaccard(ref_b) == ref_a.jaccard(ref_b)
    assert np.array_equal(datasketch.LeanMinHash(ref_a).hashvalues, sigs[0])
    assert 0.5 < lean_a.jaccard(lean_b) < 1.0
    # round trip through the byte format
    buf = bytearray(lean_a.bytesize())
    lean_a.serialize(buf)
    assert np.array_equal(datasketch.LeanMinHash.deserialize(buf).hashvalues, sigs[0])


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "raw, want",
    [
        ("L’homme", "lhomme"),
        ("L'homme", "lhomme"),
        ("« Bonjour »", "bonjour"),
        ("\u00abBonjour\u00a0!\u00bb", "bonjour"),
        ("deux\u00a0mots\u202fici", "deux mots ici"),  # NBSP, narrow NBSP
        ("  Plusieurs   espaces\t\net\r\nlignes  ", "plusieurs espaces et lignes"),
        ("ÉCOLE École école", "école école école"),
        ("Straße", "strasse"),
        ("ﬁn ｆｕｌｌ", "fin full"),  # NFKC: ligature, full width
        ("e\u0301te\u0301", "été"),  # combining accents composed
        ("100 € + 5 $ = ©", "100 5"),
        ("emoji 😀🎉 ok", "emoji ok"),
        ("𝔘𝔫𝔦 \U0001d11e x", "uni x"),  # astral letters NFKC to ASCII, astral symbol removed
        ("e.\u0301", "é"),  # removal exposes a composable pair: normalised again
        ("!!!", ""),
        ("", ""),
    ],
)
def test_normalize_examples(raw: str, want: str) -> None:
    assert normalize_for_dedup(raw) == want


def test_normalize_quotes_and_case_equal() -> None:
    assert normalize_for_dedup("« L’État, c’est moi ! »") == normalize_for_dedup("l'état c'est MOI")


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_normalize_idempotent_and_clean(text: str) -> None:
    import unicodedata

    once = normalize_for_dedup(text)
    assert normalize_for_dedup(once) == once
    assert once == once.strip() and "  " not in once
    assert not any(unicodedata.category(c)[0] in "PS" for c in once)
    assert unicodedata.is_normalized("NFKC", once)


# ---------------------------------------------------------------- banding


def test_choose_bands_default() -> None:
    bands, rows = choose_bands(0.8, 128)
    assert (bands, rows) == (21, 6)
    assert candidate_probability(0.8, bands, rows) >= 0.995
    assert candidate_probability(0.8, 128 // 7, 7) < 0.995  # rows=7 would miss too often


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9, 0.95, 1.0])
@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
def test_choose_bands_is_largest_rows(threshold: float, num_perm: int) -> None:
    bands, rows = choose_bands(threshold, num_perm)
    assert bands == num_perm // rows and bands * rows <= num_perm
    ok = [r for r in range(1, num_perm + 1) if candidate_probability(threshold, num_perm // r, r) >= 0.995]
    assert rows == (max(ok) if ok else 1)


def _normalize_plain(text: str, table: dict) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKC", text).casefold()
    for _ in range(4):
        s = s.translate(table)
        if unicodedata.is_normalized("NFKC", s):
            break
        s = unicodedata.normalize("NFKC", s)
    return " ".join(s.split())


def test_normalize_fast_paths_match_plain_definition():
    # ASCII (bytes.translate), BMP and astral (regex removal) paths against the plain definition,
    # on random strings mixing punctuation, symbols, combining marks, compatibility characters,
    # Hangul jamo, lone surrogates and emoji.
    import random
    import unicodedata

    table = {cp: None for cp in range(0x110000) if unicodedata.category(chr(cp))[0] in "PS"}
    rng = random.Random(5)
    pools = [
        list(range(0x20, 0x7F)), list(range(0x80, 0x800)), list(range(0x300, 0x370)), list(range(0x2000, 0x2100)),
        list(range(0x1F300, 0x1F700)), [0xD800, 0xDFFF, 0xFB01, 0x2126, 0x212B, 0x1E9E, 0x130, 0xFF01, 0x3000, 0x301, 0x327],
        list(range(0xAC00, 0xAC40)) + list(range(0x1100, 0x1120)) + list(range(0x1160, 0x1180)),
        list(range(0x10000, 0x110000, 997)), [0x9, 0xA, 0x20, 0xA0, 0x2028, 0x85, 0x1C, 0x2E, 0x2D],
    ]
    for _ in range(20000):
        text = "".join(chr(rng.choice(rng.choice(pools))) for _ in range(rng.randint(0, 14)))
        assert normalize_for_dedup(text) == _normalize_plain(text, table), repr(text)
    for text in FRENCH + ["L’État  «moderne»", "e.\u0301", "ﬁ ½ Ⅻ ＡＢＣ", "Straße İstanbul ΣΑΣ", "x\U0001F600y"]:
        assert normalize_for_dedup(text) == _normalize_plain(text, table)
