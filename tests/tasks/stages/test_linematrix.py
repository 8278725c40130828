"""line_features_batch (tasks/stages/linematrix.py) gives exactly the rows of the per-line reference
(tasks.stages.linefeatures._line_vector), on real pages and on random lines that stress Unicode."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusclean.tasks.stages import linefeatures as lf
from corpusclean.tasks.stages.language import stopwords
from corpusclean.tasks.stages.linematrix import line_features_batch
from tests.conftest import require_shared


def _reference(lines, doc_index, doc_stop, repeated) -> np.ndarray:
    rows = []
    for i, line in enumerate(lines):
        s = line[: lf._SAMPLE_CHARS]
        lower = s.lower()
        rows.append(lf._line_vector(line, s, lower, s.split(), lower.split(), doc_stop[doc_index[i]], bool(repeated[i])))
    return np.array(rows, dtype=np.float64).reshape(len(lines), len(lf.LINE_FEATURES))


def _assert_same(lines, doc_index, doc_stop, repeated) -> None:
    got = line_features_batch(lines, np.asarray(doc_index), doc_stop, np.asarray(repeated, dtype=bool))
    want = _reference(lines, doc_index, doc_stop, repeated)
    assert got.shape == want.shape and got.dtype == np.float64
    same = got.view(np.uint64) == want.view(np.uint64)  # bit for bit
    if not same.all():
        i = int(np.flatnonzero(~same.all(axis=1))[0])
        diff = [(lf.LINE_FEATURES[k], want[i, k], got[i, k]) for k in np.flatnonzero(~same[i])]
        raise AssertionError(f"line {lines[i]!r}: (feature, expected, got) {diff}")


def _page_batch(paths):
    sw = stopwords()
    lines, doc_index, doc_stop, repeated = [], [], [], []
    for path in paths:
        page = [line.strip() for line in path.read_text(encoding="utf-8").split("\n")]
        page = [line for line in page if line]
        if not page:
            continue
        lang = lf.document_language(page)
        counts: dict[str, int] = {}
        for line in page:
            counts[line] = counts.get(line, 0) + 1
        doc_index += [len(doc_stop)] * len(page)
        doc_stop.append(sw.get(lang) if lang else None)
        lines += page
        repeated += [counts[line] > 1 for line in page]
    return lines, doc_index, doc_stop, repeated


def test_real_pages_exact():
    paths = []
    for name in ("boilerplate", "boilerplate-gold"):
        pages = require_shared("eval", name, "pages")
        paths += sorted(pages.glob("*.raw.txt"))[::12]  # a deterministic sample, in two batches
    assert len(paths) > 100
    half = len(paths) // 2
    for batch in (paths[:half], paths[half:]):
        lines, doc_index, doc_stop, repeated = _page_batch(batch)
        assert any(stop is None for stop in doc_stop) and any(stop is not None for stop in doc_stop)
        _assert_same(lines, doc_index, doc_stop, repeated)


def test_small_batches_and_edges():
    de = stopwords()["de"]
    lines = [
        "Klicken Sie hier, um Ihre Daten zu ändern.",
        "Sie und Ihr Team: Ihre Ihre Sie",
        "İstanbul İST · ΟΔΟΣ ΟΔΟΣ.",
        "😀 Emoji line 😀 with www.example.com",
        "x",
        ":",
        "…",
        "a" * 1500 + " b",
        " ".join(["w"] * 1100),
        "- item",
        "12) Punkt",
        "3.4.2020 Termin",
        "12 März 2021 um 10:30",
        "Home | News | Kontakt | Impressum",
        "a / b / c / d",
        "Read more...",
        "Weiter […]",
        "»Ende.«",
        "„Zitat…“",
    ]
    _assert_same(lines, [0] * len(lines), [de], [False] * len(lines))
    _assert_same(lines, [0] * len(lines), [None], [True] * len(lines))
    _assert_same(lines[:1], [0], [None], [False])
    assert line_features_batch([], np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=bool)).shape == (0, len(lf.LINE_FEATURES))


# Pieces of lines: words of every list the features look up, Unicode traps (dotted capital I,
# final sigma, sharp s, title-case digraphs, the Kelvin sign, superscript and Arabic-Indic
# digits, characters beyond U+FFFF), URLs, dates, list markers, ellipses and quotes.
_WORDS = sorted(lf.CHROME_WORDS)[:40] + sorted(lf.ADDRESS_WORDS) + sorted(lf._FORMAL_ADDRESS) + [
    "der", "die", "und", "the", "of", "le", "la", "de", "Der", "DIE", "Und", "The", "Cookies", "NEWSLETTER",
    "İstanbul", "İ", "ı", "ΟΔΟΣ", "Σ", "σς", "ß", "STRASSE", "ǅemal", "ǅ", "ǈ", "ǲ", "\u212a", "\u212b", "\u212alicken", "\u212aLICKEN",
    "²", "١٢٣", "٣", "12", "2020", "3.4.2020", "12:30", "2021-01-31", "1/2/99", "10.", "3)", "7.5",
    "http://x.com", "https", "HTTP", "www.", "WWW.X", "a@b", "@handle", "example.de", "site.html", "x.co.uk",
    "-", "–", "—", "•", "*", "▪", "→", "|", "·", "/", ">", "»", "«", "›", "…", "...", "[…]", "(...)",
    "!", "?", ".", ",", ":", "\"", "”", "’", ")", "]", "。", "！", "😀", "𝔘𝔫𝔦", "é", "Éte", "ÀB",
]
_SEPARATORS = [" ", "  ", "\u2003", "\u3000", "\u00a0", "\u202f", "\t", "", " | ", " · ", " / ", ", ", ". ", ": "]
_ALPHABET = "aAbBzZéÉüÜßİıΣσςǅǆǄ\u212a²٣0129 \u2003\u3000\u00a0.!?…:,|·/>«»\"-😀"
_piece = st.one_of(st.sampled_from(_WORDS), st.sampled_from(_WORDS), st.text(alphabet=_ALPHABET, min_size=1, max_size=6))
_line = st.builds(
    lambda pieces, seps: "".join(p + s for p, s in zip(pieces, seps)).strip(),
    st.lists(_piece, min_size=1, max_size=40),
    st.lists(st.sampled_from(_SEPARATORS), min_size=40, max_size=40),
).filter(bool)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(_line, st.integers(0, 2), st.booleans()), min_size=5, max_size=40))
def test_random_lines_exact(rows):
    lines = [line for line, _, _ in rows]
    doc_index = [d for _, d, _ in rows]
    repeated = [r for _, _, r in rows]
    _assert_same(lines, doc_index, [None, _STOP, stopwords()["de"]], repeated)


_STOP = frozenset(
    ["der", "die", "und", "the", "of", "le", "la", "de", "ß", "İstanbul".lower(), "σς", "οδος", "ǆemal", "\u212a", "²", "😀"]
)


def test_many_random_lines_exact():
    """The same pieces, many more lines (seeded): one large batch, as in the pipeline."""
    rng = np.random.default_rng(7)
    alphabet = list(_ALPHABET)
    lines = []
    while len(lines) < 20000:
        parts = []
        for _ in range(int(rng.integers(1, 30))):
            if rng.random() < 0.7:
                parts.append(_WORDS[int(rng.integers(len(_WORDS)))])
            else:
                parts.append("".join(rng.choice(alphabet, size=int(rng.integers(1, 7)))))
            parts.append(_SEPARATORS[int(rng.integers(len(_SEPARATORS)))])
        line = "".join(parts).strip()
        if line:
            lines.append(line)
    doc_index = rng.integers(0, 3, size=len(lines))
    repeated = rng.random(len(lines)) < 0.2
    _assert_same(lines, doc_index, [None, _STOP, stopwords()["de"]], repeated)
