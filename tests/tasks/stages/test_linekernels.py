"""The compiled kernels (tasks/stages/linekernels.py) give bit for bit what their numpy references give,
on random documents and on the real pages of ../shared/eval."""

from __future__ import annotations

import random

import numpy as np

from corpusclean.tasks.stages import linefeatures as lf
from corpusclean.tasks.stages import linekernels as lk
from tests.conftest import require_shared
from tests.tasks.stages.test_linefeatures import _context_inputs


def _bits_equal(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and bool((got.view(np.uint64) == want.view(np.uint64)).all())


def test_context_columns_are_the_features_of_linefeatures():
    for k, name in enumerate(lf.CONTEXT_FEATURES):
        assert getattr(lk, "_" + name.upper()) == k, name
    assert lk.N_CONTEXT == len(lf.CONTEXT_FEATURES)


def _joined(docs):
    joined = [sum((list(d[k]) for d in docs), []) for k in range(6)]
    bounds, at = [], 0
    for d in docs:
        bounds.append((at, at + len(d[0])))
        at += len(d[0])
    return joined, bounds


def test_context_kernel_equals_the_numpy_reference_on_random_documents():
    rng = random.Random(5)
    for _ in range(150):
        sizes = [rng.choice([1, 2, 3, 4, 7, 8, 15, 40, 200, 1300]) for _ in range(rng.randrange(1, 8))]
        joined, bounds = _joined([_context_inputs(rng, m) for m in sizes])
        assert _bits_equal(lf.context_matrix_many(*joined, bounds, compiled=True), lf.context_matrix_many_numpy(*joined, bounds))
    # ties everywhere: equal scores, all short, all long, equal segment masses
    for z in ([0.0] * 9, [1.0, -1.0] * 6, [2.0] * 3 + [-3.0] * 3 + [2.0] * 3, [-600.0, 600.0, 0.0]):
        for short in (True, False):
            m = len(z)
            args = (z, [1.0] * m, [short] * m, [False, True] * (m // 2) + [False] * (m % 2), [False] * m, [2] * m)
            assert _bits_equal(lf.context_matrix_many(*args, [(0, m)], compiled=True), lf.context_matrix_many_numpy(*args, [(0, m)]))
    empty = ([], [], [], [], [], [], [])
    assert lf.context_matrix_many(*empty, compiled=True).shape == lf.context_matrix_many_numpy(*empty).shape


def test_context_kernel_equals_the_numpy_reference_on_real_pages(monkeypatch):
    """The inputs the classifier gives the context model on real pages: same matrix bit for bit."""
    from corpusclean.tasks.stages.boilerplate import BoilerplateClassifier, load_rule_packs

    calls = []
    kernel = lf.context_matrix_many

    def record(*args, **kwargs):
        calls.append(args)
        return kernel(*args, **kwargs)

    monkeypatch.setattr(lf, "context_matrix_many", record)
    pages = require_shared("eval", "boilerplate", "pages")
    paths = sorted(pages.glob("*.raw.txt"))[::6]
    lines, ranges = [], []
    for path in paths:
        page = [line.strip() for line in path.read_text(encoding="utf-8").split("\n")]
        page = [line for line in page if line]
        ranges.append((len(lines), len(lines) + len(page)))
        lines += page
    BoilerplateClassifier(load_rule_packs(["common", "en", "fr"]), lf.ContentClassifier()).classify_batch(lines, ranges)
    assert calls and sum(len(c[0]) for c in calls) > 10_000
    for args in calls:
        assert _bits_equal(kernel(*args, compiled=True), lf.context_matrix_many_numpy(*args))


def test_scan_flags_are_those_of_linematrix():
    from corpusclean.tasks.stages import linematrix as lm

    for name in ("BREAK", "SEPMID", "PIPE", "COMMA", "AT", "DATEDELIM", "DOT", "H", "FALLBACK"):
        assert getattr(lk, "_F_" + name) == getattr(lm, "_F_" + name), name
    assert lm._FLAGS[ord("\n")] == 0 and lm._SPACE[ord("\n")] and lm._CLS[lm._SPACE].max() == 0


def test_compiled_scan_equals_the_array_passes_on_real_pages():
    """line_features_batch with the compiled scan and with the numpy passes: the same matrix bit
    for bit, on every eval page (the per-line definition itself is test_linematrix's)."""
    from pathlib import Path

    from corpusclean.tasks.stages.linematrix import line_features_batch
    from tests.tasks.stages.test_linematrix import _page_batch

    paths: list[Path] = []
    for name in ("boilerplate", "boilerplate-gold"):
        paths += sorted(require_shared("eval", name, "pages").glob("*.raw.txt"))
    for k in range(0, len(paths), 800):
        lines, doc_index, doc_stop, repeated = _page_batch(paths[k : k + 800])
        args = (lines, np.asarray(doc_index), doc_stop, np.asarray(repeated, dtype=bool))
        assert _bits_equal(line_features_batch(*args, compiled=True), line_features_batch(*args, compiled=False))


def test_compiled_scan_equals_the_array_passes_on_hostile_lines():
    from corpusclean.tasks.stages.language import stopwords
    from corpusclean.tasks.stages.linematrix import line_features_batch

    de, en = stopwords()["de"], stopwords()["en"]
    lines = [
        "x", "1", "a b", " | ", "www.", "http", "Sie", "Klicken Sie hier", "Ihre Ihre Sie Ihr", "ab · cd · ef / gh",
        "1.2.2024", "12:30 Uhr", "a.com b.de", "@x", "ΣΑΣ", "İstanbul", "𝔘nicode 😀 and more", "\ud800 lone", "ſ ß ﬁ",
        "Ǆemal ǅemal ǆ", "x" * 99 + " y", "x" * 100, "word " * 30, "…", "a...", "«quoted.»", "Mehr | Weniger | Alle",
        "THE END.", "Title Case Words Here", "mIxEd", "123 456", "1) item", "– dash item", "Home > News > World",
        "du bist dir dich", "the and of to", "cookie cookie Cookie COOKIE", "e-mail E-Mail", "\u00a0nbsp\u202fx",
    ]
    doc_index = np.arange(len(lines)) % 3
    repeated = np.arange(len(lines)) % 2 == 0
    for stops in ([de, en, None], [None, None, None], [en, en, de]):
        args = (lines, doc_index, stops, repeated)
        assert _bits_equal(line_features_batch(*args, compiled=True), line_features_batch(*args, compiled=False))
        assert _bits_equal(line_features_batch(*args, compiled=True), lf.line_features_reference(*args))


def _language_pages(rng: random.Random) -> list[list[str]]:
    """Pages of menus and prose in several languages, hostile lines among them."""
    from tests.tasks.stages.test_linefeatures import DE_PROSE, EN_PROSE, ES_PROSE, FR_PROSE, PL_PROSE

    odd = ["a b c d e", "a\u00a0b\u2003c\u3000d e f", "\u0130stanbul i\u0307 \u03a3 \u1e9e x y", "\U0001F600 one two three four",
           "\ud800 lone surrogate a b c", "x " * 80, "y" * 300, "mot " * 30 + "fin", "\t tab\x0bvt\x1cfs a b", "short"]
    menu = ["Home", "News", "Sport", "Contact", "Sign up for our daily newsletter and more", "À la une"]
    pages = []
    for _ in range(700):
        prose = rng.choice([EN_PROSE, FR_PROSE, DE_PROSE, ES_PROSE, PL_PROSE, []])
        parts = menu[: rng.randrange(len(menu) + 1)] + [rng.choice(odd) for _ in range(rng.randrange(4))]
        parts += [line[: rng.choice([9, 40, 99, 100, 101, 500])] for line in prose] + menu[: rng.randrange(3)]
        rng.shuffle(parts) if rng.random() < 0.3 else None
        pages.append(parts)
    return pages


def test_language_lines_kernel_gives_each_documents_evidence():
    """document_language_evidence_many (the compiled pass over a batch's code points) equals
    document_language_evidence of each document, and of each document's usable lines alone."""
    rng = random.Random(11)
    pages = _language_pages(rng)
    lines, ranges = [], []
    for page in pages:
        ranges.append((len(lines), len(lines) + len(page)))
        lines += page
    assert len(lines) >= lf.COMPILED_MIN_ROWS
    assert lf.document_language_evidence_many(lines, ranges) == [lf.document_language_evidence(p) for p in pages]
    usable = np.array([rng.random() < 0.7 for _ in lines])
    got = lf.document_language_evidence_many(lines, ranges, usable)
    for (a, b), (lang, counted) in zip(ranges, got):
        rows = [i for i in range(a, b) if usable[i]]
        want_lang, want_counted = lf.document_language_evidence([lines[i] for i in rows])
        assert lang == want_lang and counted == [rows[k] - a for k in want_counted]
    # the few-lines path (no kernel) answers the same, and so does a subset of the documents
    small = ranges[:30]
    assert lf.document_language_evidence_many(lines[: small[-1][1]], small, usable) == got[:30]
    assert lf.document_language_evidence_many(lines, ranges[::3], usable) == got[::3]


def test_batch_text_reads_lengths_edges_and_colons():
    lines = ["Reply", "", "a:b", "\U0001F600 x:", "\ud800", "é" * 3, ":"]
    text = lf.BatchText(lines)
    assert text.lengths.tolist() == [len(line) for line in lines]
    first, last = text.edges(np.arange(len(lines)))
    assert first.tolist() == [ord(line[0]) if line else 0 for line in lines]
    assert last.tolist() == [ord(line[-1]) if line else 0 for line in lines]
    assert text.has_colon().tolist() == [":" in line for line in lines]
    assert lf.BatchText.of(["a\nb"]) is None
    assert lf.BatchText([]).lengths.tolist() == [] and lf.BatchText([""]).lengths.tolist() == [0]


def test_gaps_kernel_is_fill_article_gaps_of_each_page():
    rng = random.Random(9)
    for _ in range(300):
        sizes = [rng.randrange(0, 40) for _ in range(rng.randrange(1, 6))]
        at = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        n = int(at[-1])
        keep = np.array([rng.random() < 0.4 for _ in range(n)], dtype=bool)
        in_core = np.array([rng.random() < 0.7 for _ in range(n)], dtype=bool)
        probs = np.array([rng.choice([0.0, 0.05, 0.049999, 0.3, rng.random()]) for _ in range(n)])
        limits = np.array([rng.randrange(0, m + 1) for m in sizes], dtype=np.int64)
        max_gap, floor = rng.choice([1, 2, 4]), 0.05
        want = keep.copy()
        for d, limit in enumerate(limits.tolist()):
            a, b = int(at[d]), int(at[d + 1])
            view = want[a:b]
            lf.fill_article_gaps(view, in_core[a:b], probs[a:b], limit, max_gap, floor)
        lk.gaps_kernel(keep, in_core, probs, at, limits, max_gap, floor)
        assert keep.tolist() == want.tolist()
