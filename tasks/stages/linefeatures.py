"""A line classifier with context: article text or site chrome, from the text alone.

The rule packs (``tasks/stages/boilerplate.py``) recognise chrome that says what it is ("Subscribe to
our newsletter"). Most chrome does not: menus, link lists, teasers of other articles, author
bios, footers. This module decides, for the lines no rule flagged, from evidence about each
line and about its neighbourhood, with two small logistic models:

1. **line model** (``line_vector`` . ``LINE_WEIGHTS``): one line on its own: length, words,
   density of function words of the document's language (``tasks/stages/lang/stopwords.toml``; the
   language is guessed per document from the same words), sentence punctuation, a teaser cut
   short ("…"), numbers, capitals, URLs/handles/e-mails, separators ("|", "·"), list markers,
   dates, words typical of site chrome (cookie, newsletter, Impressum...), words addressing the
   reader (you, vous, Sie...), whether the line is repeated in the document.
2. **context model** (``context_vectors`` . ``CONTEXT_WEIGHTS``): the line's score with those of
   its neighbours. Article bodies are contiguous blocks of long, function-word-dense lines and
   chrome clusters at the top and bottom, so: the scores of the lines just before and after
   and of a wider window; whether the line is in the **main content block** (the contiguous
   run of lines with the largest total evidence, a maximum-sum subarray in which short lines
   weigh little); its **segment** (a two-state smoothing of the scores, Viterbi) and how that
   segment compares with the best one; how much of the document's text evidence lies before
   and after it; whether its neighbours were flagged by a rule as page chrome (captions,
   credits and ads sit inside articles and do not count); and, for short lines, the
   neighbours' scores and the length of the run of short lines around it (menus come in runs).

Decisions (``ContentClassifier``): a line is kept when the context model's probability exceeds
``threshold`` plus ``outside_margin`` (0.5 + 0.1) outside the main block's core, or
``block_threshold`` (0.25) inside it, where only strong evidence removes a line. The core is the
main block cut where rules flagged page chrome between its lines (a comment section after the
article), the first part with at least ``_CORE_SHARE`` (0.4) of the evidence of the part with the most.
Inside an article, a short line between two kept lines (a section heading), a line between two
confident article lines, and the headline (first line of the main block, or the one before it,
if it reads like a title) are kept too, and so are short gaps in the core before the first comment
marker (``fill_article_gaps``: list items, table cells, one-line paragraphs between kept lines). Documents with fewer than ``min_lines`` unflagged
lines, or made mostly of sentences (running text, not a web page), are left to the rules.

Both models were fitted (logistic regression, L2) on a random half of a public set of ~1000
real web pages in many languages (``bench/eval_boilerplate.py --fit``) and checked on the other
half; nothing is specific to a page or a site. Every removed line gets a reason
(``CLASSIFIER_REASONS``).

Cost: the features are computed for a whole batch at once (``linematrix``, ``linekernels``:
compiled passes over the code points of the lines' first 100 characters), and so are the
decisions (``ContentClassifier.classify_many``: the documents' languages, the context model,
the comment markers and the reasons over arrays of all the lines of a chunk, with a short
Python step per page for the headline and the article's gaps). Deterministic: no randomness, no state.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .language import function_word_table, stopwords

#: Reasons the classifier gives (a rule's reason always takes priority).
CLASSIFIER_REASONS = (
    "navigation",  # a run of short lines outside the article: a menu
    "link_list",  # URLs, handles, or items separated by | · / >
    "short_outside_content",  # a short line away from the article text
    "low_text_density",  # a longer line that does not read like prose (few function words...)
    "outside_content",  # prose-like, but outside the article (teasers, bios, disclaimers)
    "comment_thread",  # reader comments after the article (tasks/stages/lang/comment_markers.toml)
)

_SAMPLE_CHARS = 100  # per-line evidence is taken on a line's first characters (bounded work)
_LANG_SAMPLE_TOKENS = 150
_MIN_LANG_WORDS = 5  # _language counts the words of lines with at least this many
_MIN_LANG_CHARS = 9  # a line of 5 words has at least 9 characters: shorter ones are skipped unsplit
SHORT_CHARS = 40  # "short line" for the context model and the reasons
FEATURE_CHUNK = 16_384  # lines whose features are computed together (arrays of ~100 code points each)
_LOG1P = [math.log1p(i) for i in range(1024)]
_LOG1P_ARRAY = np.array(_LOG1P)


def _log1p(i: int) -> float:
    return _LOG1P[i] if i < 1024 else math.log1p(i)


# Words typical of site chrome, in the languages of the stop-word lists (lower case, whole
# words). Evidence, not a rule: the line model weighs them with everything else.
CHROME_WORDS = frozenset(
    """
    cookie cookies privacy datenschutz datenschutzerklärung confidentialité privacidad
    newsletter newsletters subscribe subscribed subscription subscriber subscribers abonnieren
    abonnement abonnez abonner abonné abonnés suscríbete suscribirse suscripción
    login logout anmelden abmelden registrieren registrierung register inscription inscrivez
    connexion connectez password passwort iniciar sesión
    email e-mail mail
    comment comments kommentar kommentare kommentieren commentaire commentaires comentario
    comentarios reply antworten répondre responder
    share teilen partager compartir tweet twitter facebook instagram youtube whatsapp linkedin
    pinterest xing telegram tiktok rss
    follow folgen suivez síguenos
    copyright rights reserved vorbehalten réservés reservados impressum imprint disclaimer haftung
    mentions légales aviso legal
    terms agb conditions nutzungsbedingungen cgu términos
    advertisement advertising anzeige werbung publicité publicidad sponsored gesponsert partner
    affiliate provision
    click klicken klicke cliquez clic haga
    download herunterladen télécharger descargar app browser javascript
    website webseite homepage site sitio
    tags tag schlagworte schlagwörter mots-clés etiquetas kategorien categories catégories
    spende spenden donate donation soutenir unterstützen
    shop warenkorb cart panier carrito kaufen buy acheter comprar
    """.split()
)
# Words addressing the reader directly (calls to action, site notices).
ADDRESS_WORDS = frozenset("you your yours vous votre vos du dein deine deinen dich dir euch euer usted ustedes tu tus".split())
# German formal address inside a sentence ("Klicken Sie", "Ihre Daten"): capitalised, after a word.
_FORMAL_ADDRESS = frozenset("Sie Ihr Ihre Ihren Ihrem Ihrer Ihres".split())

_CLOSERS = "\"'»”’)] \u00a0\u202f"  # closing quotes and brackets, and the spaces French puts before »
_TERMINALS = frozenset(".!?…。！？")
_SENTENCE_BREAK = re.compile(r"[.!?…] ")
_TRUNCATED_ENDS = ("…", "...", "[…]", "[...]", "(…)", "(...)", "…»", "...»", "…\"", "…”")
_SEPARATOR = re.compile(r" [·•/>»›–—] |\|")
_DOMAIN = re.compile(r"\.(?:com|org|net|de|fr|es|io|html?|php|co\.uk)\b")
_LIST_MARKER = re.compile(r"(?:[-–—•*·▪►✓✔→]|\d{1,2}[.)](?!\d))\s")
_DIGIT = re.compile(r"\d")
_DATE = re.compile(r"\b(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2})\b")
_STARTS_DATE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{2,4}|\d{1,2}\.? \w+ \d{4}")


def _has_url(sample: str, lower: str) -> bool:
    """A URL, an e-mail address, an @handle or a domain name (cheap substring tests first)."""
    return "http" in lower or "www." in lower or "@" in sample or _DOMAIN.search(lower) is not None


def _tokens(text: str) -> list[str]:
    """Whitespace-separated words, punctuation included: several times cheaper than a \\w+ scan,
    and function words (the evidence that matters) sit between spaces."""
    return text.split()


def document_language(lines: Sequence[str]) -> str | None:
    """The language whose function words are most frequent in the document, or ``None``.

    Counted on lines of at least five words (chrome is mostly short lines), up to a bounded
    number of tokens. ``None`` when the evidence is thin: fewer than 8 function words, or
    fewer than one token in twenty (a language without a list, e.g. Polish or Russian).
    """
    return document_language_evidence(lines)[0]


def document_language_evidence(lines: Sequence[str]) -> tuple[str | None, list[int]]:
    """(``document_language(lines)``, the indexes of the lines whose words it counted).

    The language of any subset of the lines that keeps every counted line (in the same order)
    is the same: ``_language`` reads the same lines up to the same point. The stage guesses a
    page's language on all its lines (to pick the rule packs) and again, in the classifier, on
    the lines no rule flagged; when no counted line was flagged, the second guess is this one.
    """
    counted: list[int] = []

    def tokens():
        for i, line in enumerate(lines):
            if len(line) >= _MIN_LANG_CHARS:
                words = _tokens(line[:_SAMPLE_CHARS].lower())
                if len(words) >= _MIN_LANG_WORDS:
                    counted.append(i)
                yield words

    return _language(tokens()), counted


class BatchText:
    """The lines of a batch (none with a "\\n") joined into one array of code points (UTF-32), with
    each line's [start, end) in it: what the batch-wide steps read instead of a Python step per
    line (lengths, first and last characters, ":", the words of a line's first characters)."""

    def __init__(self, lines: Sequence[str]):
        self.lines = lines
        n = len(lines)
        self.units = np.frombuffer("\n".join(lines).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        newlines = np.flatnonzero(self.units == 10)
        if len(newlines) != max(n - 1, 0):
            raise ValueError("lines must not contain a newline")
        self.starts = np.concatenate(([0], newlines + 1))[:n].astype(np.int64)
        self.ends = np.concatenate((newlines, [len(self.units)]))[:n].astype(np.int64)
        self.lengths = self.ends - self.starts  # len(line): one code point per unit
        self._colon: np.ndarray | None = None

    @classmethod
    def of(cls, lines: Sequence[str]) -> "BatchText | None":
        """The joined lines, or ``None`` when a line holds a "\\n" (callers then go line by line)."""
        try:
            return cls(lines)
        except ValueError:
            return None

    def edges(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first, last) code point of each line of ``rows``; 0 for an empty line."""
        if not len(self.units):
            return np.zeros(len(rows), np.uint32), np.zeros(len(rows), np.uint32)
        empty = self.lengths[rows] == 0
        first = np.where(empty, 0, self.units[np.minimum(self.starts[rows], len(self.units) - 1)])
        last = np.where(empty, 0, self.units[np.maximum(self.ends[rows] - 1, 0)])
        return first, last

    def has_colon(self) -> np.ndarray:
        """Whether each line holds a ":"."""
        if self._colon is None:
            self._colon = np.zeros(len(self.lines), dtype=bool)
            self._colon[np.searchsorted(self.ends, np.flatnonzero(self.units == 58), side="right")] = True
        return self._colon


def document_language_evidence_many(
    lines: Sequence[str], ranges: Sequence[tuple[int, int]], usable: np.ndarray | None = None,
    text: BatchText | None = None,
) -> list[tuple[str | None, list[int]]]:
    """``document_language_evidence`` of each document of ``ranges`` (its [start, end) in ``lines``),
    of only the lines where ``usable`` (a bool per line of ``lines``) when given; the counted lines
    are given by their index in the document. ``text``: ``BatchText`` of ``lines``, when known.

    For ``COMPILED_MIN_ROWS`` lines or more, the lines whose words are counted are found for all
    the documents at once by a compiled pass over the code points
    (``tasks.stages.linekernels.language_lines_kernel``: the words of each line's first
    ``_SAMPLE_CHARS`` characters, up to ``_LANG_SAMPLE_TOKENS`` per document); only those lines
    are then split in Python. The same answers as one document at a time (tests)."""
    if len(lines) < COMPILED_MIN_ROWS or (text is None and (text := BatchText.of(lines)) is None):
        out = []
        for a, b in ranges:
            rows = range(a, b) if usable is None else [i for i in range(a, b) if usable[i]]
            lang, counted = document_language_evidence([lines[i] for i in rows])
            out.append((lang, counted if usable is None else [rows[k] - a for k in counted]))
        return out
    from .linekernels import language_lines_kernel
    from .linematrix import _SPACE

    counted = np.zeros(len(lines), dtype=bool)
    doc_starts = np.array([a for a, _ in ranges], dtype=np.int64)
    doc_ends = np.array([b for _, b in ranges], dtype=np.int64)
    language_lines_kernel(
        text.units, text.starts, text.ends, np.ones(len(lines), dtype=bool) if usable is None else usable,
        doc_starts, doc_ends, _SPACE, _SAMPLE_CHARS, _MIN_LANG_WORDS, _LANG_SAMPLE_TOKENS, counted,
    )
    found = np.flatnonzero(counted)
    cuts = np.searchsorted(found, doc_starts).tolist()
    stops = np.searchsorted(found, doc_ends).tolist()
    found = found.tolist()
    out = []
    for (a, _), i, j in zip(ranges, cuts, stops):
        rows = found[i:j]
        # one lower() and split() per document: the same words as line by line (" " stops
        # final sigma's context; whitespace splits either way)
        sample = " ".join([lines[r][:_SAMPLE_CHARS] for r in rows]).lower().split()
        out.append((_language_of(sample), [r - a for r in rows]))
    return out


def _language(lowered_lines) -> str | None:
    """``document_language`` on the lower-cased tokens of each line (an iterable, consumed lazily)."""
    sample: list[str] = []
    for tokens in lowered_lines:
        if len(tokens) >= _MIN_LANG_WORDS:
            sample.extend(tokens)
            if len(sample) >= _LANG_SAMPLE_TOKENS:
                break
    return _language_of(sample)


def _language_of(sample: list[str]) -> str | None:
    """The language of a sample of lower-cased words (``_language``)."""
    table = function_word_table()
    counts: dict[str, int] = {}
    for word, k in Counter(filter(table.__contains__, sample)).items():  # each distinct word once
        for lang in table[word]:
            counts[lang] = counts.get(lang, 0) + k
    if not counts:
        return None
    hits, lang = max((hits, lang) for lang, hits in counts.items())
    if hits < 8 or hits * 20 < len(sample):
        return None
    return lang


# ---------------------------------------------------------------------------------------------
# Stage 1: the line on its own

LINE_FEATURES = (
    "bias",
    "log_chars",  # log(1 + characters)
    "log_words",  # log(1 + whitespace-separated words)
    "stop_ratio",  # function words of the document's language / tokens
    "stop_ratio_x_words",  # ... times min(log_words, 3): dense AND long is prose
    "lang_unknown",  # no function-word list for this document (then stop_ratio is 0)
    "terminal",  # ends like a sentence: . ! ? … (possibly closed by a quote or bracket)
    "colon_end",  # ends with ":" (a label, or a lead-in to a list)
    "inner_sentences",  # sentence boundaries inside the line (at most 3)
    "commas",  # (at most 4)
    "truncated",  # ends with "…" / "...": a teaser cut short
    "digit_tokens",  # tokens that are numbers / tokens
    "caps_tokens",  # tokens in capitals / tokens
    "title_tokens",  # tokens capitalised, in capitals or numbers / tokens (at most 1)
    "url",  # a URL, an e-mail address, an @handle or a domain name
    "separators",  # " | ", " · ", " / ", " > " between items (at most 3)
    "list_marker",  # "- ", "• ", "1. " at the start
    "date",  # a numeric date or a time
    "repeated",  # the same line occurs elsewhere in the document
    "chrome_ratio",  # distinct CHROME_WORDS / tokens
    "chrome_short",  # a CHROME_WORDS token in a line of fewer than 80 characters
    "address_ratio",  # distinct words addressing the reader / tokens
    "starts_digit",
    "starts_date",
    "chars_lt10", "chars_lt20", "chars_lt40", "chars_lt80", "chars_lt150", "chars_ge300",
)


def line_vector(line: str, stop: frozenset[str] | None, repeated: bool = False) -> tuple[float, ...]:
    """The line model's features (``LINE_FEATURES``) of one stripped line.

    ``stop`` is the document language's function words (``None``: unknown language),
    ``repeated`` whether the same line occurs elsewhere in the document. Where the line is in
    the document is the context model's business, not this one's.
    """
    sample = line[:_SAMPLE_CHARS]
    tokens = _tokens(sample)
    lower = sample.lower()
    return _line_vector(line, sample, lower, tokens, lower.split(), stop, repeated)


def _line_vector(
    line: str, sample: str, lower: str, tokens: list[str], lowered: list[str], stop: frozenset[str] | None,
    repeated: bool,
) -> tuple[float, ...]:
    n = len(line)
    n_tokens = len(tokens) or 1
    stop_ratio = sum(map(stop.__contains__, lowered)) / n_tokens if stop is not None else 0.0
    # distinct words (set intersections are much cheaper than counting every token)
    chrome = len(CHROME_WORDS.intersection(lowered))
    address = len(ADDRESS_WORDS.intersection(lowered))
    if tokens and not _FORMAL_ADDRESS.isdisjoint(tokens):
        address += len(_FORMAL_ADDRESS.intersection(tokens[1:]))
    digits = sum(map(str.isdigit, tokens))
    caps = sum(map(str.isupper, tokens))
    title = caps + digits + sum(map(str.istitle, tokens))
    log_words = _log1p(line.count(" ") + 1)
    end = line.rstrip(_CLOSERS)[-1:]
    starts_digit = line[:1].isdigit()
    breaks = len(_SENTENCE_BREAK.findall(sample))
    commas = line.count(",")
    separators = len(_SEPARATOR.findall(sample))
    return (
        1.0,
        _log1p(n),
        log_words,
        stop_ratio,
        stop_ratio * (log_words if log_words < 3.0 else 3.0),
        1.0 if stop is None else 0.0,
        1.0 if end in _TERMINALS else 0.0,
        1.0 if line.endswith(":") else 0.0,
        breaks if breaks < 3 else 3,
        commas if commas < 4 else 4,
        1.0 if line.endswith(_TRUNCATED_ENDS) else 0.0,
        digits / n_tokens,
        caps / n_tokens,
        title / n_tokens if title < n_tokens else 1.0,
        1.0 if _has_url(sample, lower) else 0.0,
        separators if separators < 3 else 3,
        1.0 if _LIST_MARKER.match(line) else 0.0,
        1.0 if _DIGIT.search(sample) and _DATE.search(sample) else 0.0,
        1.0 if repeated else 0.0,
        chrome / n_tokens,
        1.0 if chrome and n < 80 else 0.0,
        address / n_tokens,
        1.0 if starts_digit else 0.0,
        1.0 if starts_digit and _STARTS_DATE.match(line) else 0.0,
        1.0 if n < 10 else 0.0,
        1.0 if n < 20 else 0.0,
        1.0 if n < 40 else 0.0,
        1.0 if n < 80 else 0.0,
        1.0 if n < 150 else 0.0,
        1.0 if n >= 300 else 0.0,
    )


def _probabilities(vectors: Sequence[Sequence[float]], weights: Sequence[float]) -> list[float]:
    """sigmoid(vector . weights) for each vector."""
    return _probability_array(vectors, weights).tolist()


def _probability_array(vectors, weights: Sequence[float]) -> np.ndarray:
    """``_probabilities`` as an array (the same floats)."""
    w = np.asarray(weights, dtype=np.float64)
    z = np.asarray(vectors, dtype=np.float64).reshape(-1, len(w)) @ w
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp(-z))
    p[z <= -500.0] = 0.0
    return p


# ---------------------------------------------------------------------------------------------
# Stage 2: the line in its neighbourhood

CONTEXT_FEATURES = (
    "bias",
    "z",  # the line model's score (log-odds)
    "prev1", "next1",  # line-model probability of the previous / next unflagged line (0 past the ends)
    "prev3", "next3",  # mean over the 2nd-3rd lines before / after
    "around7",  # mean over the 4th-7th lines on both sides
    "in_block",  # inside the main content block (maximum-sum run of evidence)
    "log_block_distance",  # log(1 + lines to the main block)
    "min_neighbour",  # min(prev1, next1)
    "position",  # index among unflagged lines / (count - 1)
    "in_segment",  # the two-state smoothing (Viterbi) says content
    "best_segment",  # ... and it is the segment with the most evidence
    "segment_share",  # evidence of the line's content segment / that of the best one
    "log_segment_lines",
    "top2_segment",  # one of the two content segments with the most evidence
    "log_good_before", "log_good_after",  # log(1 + lines to the nearest likely-content line before / after)
    "mass_before", "mass_after",  # share of the document's text evidence before / after the line
    "rule_prev", "rule_next",  # the line just before / after was flagged by a rule as page chrome
    "rules_near",  # lines flagged as page chrome within 3 lines
    "short",  # fewer than SHORT_CHARS characters
    "short_x_min_neighbour", "short_x_prev1", "short_x_next1", "short_x_in_block",
    "log_short_run",  # log(1 + consecutive short lines around a short line): menus come in runs,
                      # an article's headings alone
    "in_core",  # inside the main block's core: the block cut where a line flagged by a rule as page
                # chrome precedes a line with another such line near (e.g. "42 comments", "Leave a
                # reply" before a comment section), the first part with at least _CORE_SHARE of the
                # evidence of the part with the most
)

#: The fitted weights and decision constants: ``tasks/stages/models/content_classifier.json`` (feature name ->
#: weight for each model, the decision constants, and how they were fitted), written by
#: ``bench/eval_boilerplate.py --fit`` (``make fit``). Loaded once, at import.
MODEL_PATH = Path(__file__).resolve().parent / "models" / "content_classifier.json"


def load_model(path: Path = MODEL_PATH) -> tuple[tuple[float, ...], tuple[float, ...], dict[str, float]]:
    """(line weights, context weights, decision constants) from a model file, in feature order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, names in (("line_weights", LINE_FEATURES), ("context_weights", CONTEXT_FEATURES)):
        if list(data[key]) != list(names):
            raise ValueError(f"{path}: {key} does not list the features of this module, in order")
    return (
        tuple(float(data["line_weights"][n]) for n in LINE_FEATURES),
        tuple(float(data["context_weights"][n]) for n in CONTEXT_FEATURES),
        {k: float(v) for k, v in data.get("decision", {}).items()},
    )


LINE_WEIGHTS, CONTEXT_WEIGHTS, DECISION = load_model()

_WINDOW = 7
#: Rule reasons of chrome that sits inside article bodies (figures, ads): not evidence that the
#: neighbouring lines are page chrome.
IN_ARTICLE_REASONS = frozenset({"caption", "photo_credit", "image_placeholder", "media_pointer", "advert", "punctuation_only"})
_SWITCH_COST = 1.0  # Viterbi: cost of switching between content and chrome (in log-odds)
_EMISSION_FLOOR = 1.0  # ... and no single line counts for more than this against content
_SHORT_WEIGHT = 0.5  # weight of a short line in the main-block sum (long lines: 1 + log words)
_CORE_SHARE = 0.4  # the core: the first part of the block with at least this share of the best part's evidence


def _max_sum_run(values: Sequence[float]) -> tuple[int, int]:
    """[start, end] of the contiguous run with the largest sum (Kadane); (-1, -1) if empty."""
    best = -math.inf
    current = 0.0
    start = best_start = best_end = -1
    for i, v in enumerate(values):
        if current <= 0.0:
            current = v
            start = i
        else:
            current += v
        if current > best:
            best, best_start, best_end = current, start, i
    return best_start, best_end


def _smooth(z: Sequence[float], cost: float) -> list[int]:
    """Two-state Viterbi: 1 (content, emission z) or 0 (chrome, emission 0), switching costs ``cost``."""
    if not z:
        return []
    s0, s1 = 0.0, z[0]
    back: list[tuple[int, int]] = []
    for v in z[1:]:
        from0 = s0 >= s1 - cost  # best way into state 0
        from1 = s1 >= s0 - cost  # best way into state 1
        back.append((0 if from0 else 1, 1 if from1 else 0))
        s0, s1 = (s0 if from0 else s1 - cost), (s1 if from1 else s0 - cost) + v
    state = 1 if s1 > s0 else 0
    states = [state]
    for b0, b1 in reversed(back):
        state = b0 if state == 0 else b1
        states.append(state)
    states.reverse()
    return states


def _core(block_start: int, block_end: int, rule_prev, rules_near, evidence) -> tuple[int, int]:
    """[start, end] of the main block's core: the block cut before each line that follows page
    chrome flagged by a rule with at least one more such line near (a single "Share" line inside
    an article does not cut); the first part with at least ``_CORE_SHARE`` of the evidence of the
    part with the most (an article comes before the comment section under it, which can be longer)."""
    parts: list[tuple[int, int, float]] = []
    part_start, part_mass = block_start, 0.0
    for j in range(block_start, block_end + 2):
        if j > block_end or (j > part_start and rule_prev[j] and rules_near[j] >= 2):
            parts.append((part_start, j - 1, part_mass))
            part_start, part_mass = j, 0.0
        if j <= block_end:
            part_mass += evidence[j]
    bar = _CORE_SHARE * max(mass for _, _, mass in parts)
    # (no part passes only when the evidence is NaN: the whole block, as the compiled kernel gives)
    return next(((start, end) for start, end, mass in parts if mass >= bar), (block_start, block_end))


def context_vectors(
    z: Sequence[float], log_words: Sequence[float], short: Sequence[bool], rule_prev: Sequence[bool],
    rule_next: Sequence[bool], rules_near: Sequence[int],
) -> list[tuple[float, ...]]:
    """The context model's features (``CONTEXT_FEATURES``) of each unflagged line of a document.

    Arguments are per unflagged line, in document order: line-model score ``z``, ``log_words``,
    ``short``, whether the line just before / after (in the full document) was flagged by a
    rule as page chrome (``IN_ARTICLE_REASONS`` do not count), and how many such lines lie
    within 3 lines.
    """
    m = len(z)
    if m == 0:
        return []
    exp = math.exp
    p = [1.0 / (1.0 + exp(-v)) if v > -500.0 else 0.0 for v in z]
    # main content block: maximum-sum run of (p - 0.5) weighted by the line's words
    # (short lines weigh little: a heading inside an article does not split it)
    block_start, block_end = _max_sum_run(
        [(pi - 0.5) * (_SHORT_WEIGHT if sh else 1.0 + lw) for pi, lw, sh in zip(p, log_words, short)]
    )
    # windows over p, zero past the ends: padded[j + _WINDOW] is p[j]; prefix sums for the wide window
    padded = [0.0] * _WINDOW + p + [0.0] * _WINDOW
    prefix = [0.0]
    for v in padded:
        prefix.append(prefix[-1] + v)

    # segments of the smoothed sequence, their evidence and rank
    states = _smooth([v if v > -_EMISSION_FLOOR else -_EMISSION_FLOOR for v in z], _SWITCH_COST)
    evidence = [max(v, 0.0) * (1.0 + lw) for v, lw in zip(z, log_words)]
    seg_id = [0] * m
    seg_bounds: list[tuple[int, int]] = []
    seg_mass: list[float] = []
    i = 0
    while i < m:
        j = i
        mass = 0.0
        while j < m and states[j] == states[i]:
            mass += evidence[j]
            seg_id[j] = len(seg_bounds)
            j += 1
        seg_bounds.append((i, j))
        seg_mass.append(mass if states[i] == 1 else 0.0)
        i = j
    order = sorted(range(len(seg_mass)), key=lambda k: (-seg_mass[k], k))
    best_mass = seg_mass[order[0]]
    top2 = set(order[:2])
    # runs of consecutive short lines (0 for long lines)
    short_run = [0] * m
    j = 0
    while j < m:
        if not short[j]:
            j += 1
            continue
        k = j
        while k < m and short[k]:
            k += 1
        for t in range(j, k):
            short_run[t] = k - j
        j = k
    # distances to the nearest likely-content line before / after
    good_before = [50] * m
    last = -1
    for j in range(m):
        if last >= 0:
            good_before[j] = min(j - last, 50)
        if p[j] > 0.5:
            last = j
    good_after = [50] * m
    nxt = -1
    for j in range(m - 1, -1, -1):
        if nxt >= 0:
            good_after[j] = min(nxt - j, 50)
        if p[j] > 0.5:
            nxt = j
    total = sum(evidence) + 1e-9
    core_start, core_end = _core(block_start, block_end, rule_prev, rules_near, evidence)
    out: list[tuple[float, ...]] = []
    cumulative = 0.0
    last_index = max(1, m - 1)
    for j in range(m):
        c = j + _WINDOW  # j's position in padded
        prev1 = padded[c - 1]
        next1 = padded[c + 1]
        in_block = block_start <= j <= block_end
        distance = 0 if in_block else (block_start - j if j < block_start else j - block_end)
        k = seg_id[j]
        seg_start, seg_end = seg_bounds[k]
        content = states[j] == 1
        min_nb = prev1 if prev1 < next1 else next1
        is_short = 1.0 if short[j] else 0.0
        ev = evidence[j]
        out.append((
            1.0,
            z[j],
            prev1,
            next1,
            (padded[c - 3] + padded[c - 2]) / 2.0,
            (padded[c + 2] + padded[c + 3]) / 2.0,
            (prefix[c - 3] - prefix[c - 7] + prefix[c + 8] - prefix[c + 4]) / 8.0,
            1.0 if in_block else 0.0,
            _log1p(distance),
            min_nb,
            j / last_index,
            1.0 if content else 0.0,
            1.0 if content and order[0] == k else 0.0,
            seg_mass[k] / best_mass if best_mass > 0 else 0.0,
            _log1p(seg_end - seg_start),
            1.0 if content and k in top2 else 0.0,
            _LOG1P[good_before[j]],
            _LOG1P[good_after[j]],
            cumulative / total,
            (total - cumulative - ev) / total,
            1.0 if rule_prev[j] else 0.0,
            1.0 if rule_next[j] else 0.0,
            float(rules_near[j]),
            is_short,
            is_short * min_nb,
            is_short * prev1,
            is_short * next1,
            is_short if in_block else 0.0,
            _LOG1P[short_run[j]] if short_run[j] < 1024 else math.log1p(short_run[j]),
            1.0 if core_start <= j <= core_end else 0.0,
        ))
        cumulative += ev
    return out


def _log1p_of(counts: np.ndarray) -> np.ndarray:
    """log(1 + n) of non-negative integers, from the same table as ``_log1p``."""
    counts = np.asarray(counts, dtype=np.int64)
    out = _LOG1P_ARRAY[np.minimum(counts, 1023)]
    big = counts >= 1024
    if big.any():
        out[big] = [math.log1p(int(c)) for c in counts[big]]
    return out


def context_matrix(
    z: Sequence[float], log_words: Sequence[float], short: Sequence[bool], rule_prev: Sequence[bool],
    rule_next: Sequence[bool], rules_near: Sequence[int],
) -> np.ndarray:
    """``context_vectors`` of one document as the rows of an array (``context_matrix_many``)."""
    return context_matrix_many(z, log_words, short, rule_prev, rule_next, rules_near, [(0, len(z))])


def _log1p_table(size: int) -> np.ndarray:
    """log1p(k) for k < size, as ``_log1p_of`` gives it (the table, then ``math.log1p``)."""
    global _LOG1P_LONG
    if len(_LOG1P_LONG) < size:
        _LOG1P_LONG = np.concatenate((_LOG1P_ARRAY, [math.log1p(k) for k in range(1024, max(size, 2 * len(_LOG1P_LONG)))]))
    return _LOG1P_LONG


_LOG1P_LONG = _LOG1P_ARRAY


#: Fewer rows than this are computed by the numpy paths (the same numbers): a small run never
#: loads numba (~1 s per process from its cache, ~5 s of CPU to compile on a machine's first run).
COMPILED_MIN_ROWS = 4096


def context_matrix_many(
    z: Sequence[float], log_words: Sequence[float], short: Sequence[bool], rule_prev: Sequence[bool],
    rule_next: Sequence[bool], rules_near: Sequence[int], bounds: Sequence[tuple[int, int]],
    compiled: bool | None = None,
) -> np.ndarray:
    """``context_vectors`` of many documents at once, as the rows of one array (see
    ``context_matrix_many_numpy``, the reference): one compiled pass per document
    (``tasks.stages.linekernels.context_kernel``), bit-identical to the reference (tests).
    ``compiled``: whether to use the kernel (default: for ``COMPILED_MIN_ROWS`` rows or more)."""
    n = len(z)
    if not (compiled if compiled is not None else n >= COMPILED_MIN_ROWS):
        return context_matrix_many_numpy(z, log_words, short, rule_prev, rule_next, rules_near, bounds)
    from .linekernels import context_kernel

    z = np.ascontiguousarray(z, dtype=np.float64)
    X = np.zeros((n, len(CONTEXT_FEATURES)), dtype=np.float64)
    if n == 0:
        return X
    starts = np.array([a for a, _ in bounds], dtype=np.int64)
    ends = np.array([b for _, b in bounds], dtype=np.int64)
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp(-z))
    p[z <= -500.0] = 0.0
    context_kernel(
        z, p, np.ascontiguousarray(log_words, dtype=np.float64), np.ascontiguousarray(short, dtype=bool),
        np.ascontiguousarray(rule_prev, dtype=bool), np.ascontiguousarray(rule_next, dtype=bool),
        np.ascontiguousarray(rules_near, dtype=np.int64), starts, ends, _log1p_table(int((ends - starts).max()) + 2),
        _SHORT_WEIGHT, _EMISSION_FLOOR, _SWITCH_COST, _CORE_SHARE, X,
    )
    return X


def context_matrix_many_numpy(
    z: Sequence[float], log_words: Sequence[float], short: Sequence[bool], rule_prev: Sequence[bool],
    rule_next: Sequence[bool], rules_near: Sequence[int], bounds: Sequence[tuple[int, int]],
) -> np.ndarray:
    """``context_vectors`` of many documents at once, as the rows of one array, computed column by
    column: the arguments are the documents' unflagged lines one after the other, ``bounds``
    each document's [start, end) rows. Neighbourhoods stop at a document's edges; the sequential
    parts (main block, smoothing, segments, core) run per document. Equal to ``context_vectors``
    of each document up to rounding (window sums are added in another order, the sigmoid is
    numpy's)."""
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    X = np.zeros((n, len(CONTEXT_FEATURES)), dtype=np.float64)
    if n == 0:
        return X
    lw = np.asarray(log_words, dtype=np.float64)
    short_ = np.asarray(short, dtype=bool)
    starts = np.array([a for a, _ in bounds], dtype=np.int64)
    ends = np.array([b for _, b in bounds], dtype=np.int64)
    sizes = ends - starts
    index = np.arange(n)
    first_row = np.repeat(starts, sizes)
    end_row = np.repeat(ends, sizes)
    local = index - first_row
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp(-z))
    p[z <= -500.0] = 0.0

    def shifted(d: int) -> np.ndarray:
        """p of the line d rows away in the same document, 0 past its edges."""
        k = index + d
        inside = (k >= first_row) & (k < end_row)
        out = np.zeros(n)
        out[inside] = p[k[inside]]
        return out

    window = {d: shifted(d) for d in (-7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7)}
    prev1, next1 = window[-1], window[1]
    evidence = np.maximum(z, 0.0) * (1.0 + lw)
    ev = evidence.tolist()
    weights = ((p - 0.5) * np.where(short_, _SHORT_WEIGHT, 1.0 + lw)).tolist()
    floored = np.maximum(z, -_EMISSION_FLOOR).tolist()
    # the sequential parts, per document
    in_block = np.zeros(n, dtype=bool)
    in_core = np.zeros(n, dtype=bool)
    distance = np.zeros(n, dtype=np.int64)
    content = np.zeros(n, dtype=bool)
    best_segment = np.zeros(n, dtype=bool)
    top2_segment = np.zeros(n, dtype=bool)
    segment_share = np.zeros(n)
    segment_lines = np.zeros(n, dtype=np.int64)
    cumulative = np.zeros(n)
    totals = np.zeros(n)
    rule_prev_list, rules_near_list = list(rule_prev), list(rules_near)
    for a, b in bounds:
        m = b - a
        bs, be = _max_sum_run(weights[a:b])
        in_block[a + bs : a + be + 1] = True
        here = np.arange(m)
        distance[a:b] = np.where(here < bs, bs - here, np.where(here > be, here - be, 0))
        states = _smooth(floored[a:b], _SWITCH_COST)
        segs, j = [], 0
        while j < m:  # runs of equal states, their evidence (summed in order) and rank
            k = j
            while k < m and states[k] == states[j]:
                k += 1
            segs.append((j, k, float(sum(ev[a + j : a + k])) if states[j] == 1 else 0.0, states[j] == 1))
            j = k
        order = sorted(range(len(segs)), key=lambda s: (-segs[s][2], s))
        best_mass = segs[order[0]][2]
        for rank, s in enumerate(order):
            j, k, mass, is_content = segs[s]
            content[a + j : a + k] = is_content
            best_segment[a + j : a + k] = is_content and rank == 0
            top2_segment[a + j : a + k] = is_content and rank < 2
            segment_share[a + j : a + k] = mass / best_mass if best_mass > 0 else 0.0
            segment_lines[a + j : a + k] = k - j
        cs, ce = _core(bs, be, rule_prev_list[a:b], rules_near_list[a:b], ev[a:b])
        in_core[a + cs : a + ce + 1] = True
        running = np.cumsum(evidence[a:b])
        cumulative[a + 1 : b] = running[:-1]
        totals[a:b] = float(running[-1]) + 1e-9
    # runs of consecutive short lines within a document (0 for long lines)
    change = np.flatnonzero((short_[1:] != short_[:-1]) | (local[1:] == 0)) + 1
    run_start = np.concatenate(([0], change))
    run_end = np.concatenate((change, [n]))
    short_run = np.where(short_, np.repeat(run_end - run_start, run_end - run_start), 0)
    # distances to the nearest likely-content line before / after in the document (at most 50)
    good = p > 0.5
    last = np.maximum.accumulate(np.where(good, index, -1))
    before = np.concatenate(([-1], last[:-1]))
    before = np.where(before >= first_row, before, -1)
    good_before = np.where(before >= 0, np.minimum(index - before, 50), 50)
    nxt = np.minimum.accumulate(np.where(good, index, n)[::-1])[::-1]
    after = np.concatenate((nxt[1:], [n]))
    after = np.where(after < end_row, after, n)
    good_after = np.where(after < n, np.minimum(after - index, 50), 50)
    min_nb = np.minimum(prev1, next1)
    is_short = short_.astype(np.float64)
    f = _C
    X[:, f["bias"]] = 1.0
    X[:, f["z"]] = z
    X[:, f["prev1"]] = prev1
    X[:, f["next1"]] = next1
    X[:, f["prev3"]] = (window[-3] + window[-2]) / 2.0
    X[:, f["next3"]] = (window[2] + window[3]) / 2.0
    X[:, f["around7"]] = (window[-7] + window[-6] + window[-5] + window[-4] + window[4] + window[5] + window[6] + window[7]) / 8.0
    X[:, f["in_block"]] = in_block
    X[:, f["log_block_distance"]] = _log1p_of(distance)
    X[:, f["min_neighbour"]] = min_nb
    X[:, f["position"]] = local / np.maximum(1, np.repeat(sizes, sizes) - 1)
    X[:, f["in_segment"]] = content
    X[:, f["best_segment"]] = best_segment
    X[:, f["segment_share"]] = segment_share
    X[:, f["log_segment_lines"]] = _log1p_of(segment_lines)
    X[:, f["top2_segment"]] = top2_segment
    X[:, f["log_good_before"]] = _LOG1P_ARRAY[good_before]
    X[:, f["log_good_after"]] = _LOG1P_ARRAY[good_after]
    X[:, f["mass_before"]] = cumulative / totals
    X[:, f["mass_after"]] = (totals - cumulative - evidence) / totals
    X[:, f["rule_prev"]] = np.asarray(rule_prev, dtype=bool)
    X[:, f["rule_next"]] = np.asarray(rule_next, dtype=bool)
    X[:, f["rules_near"]] = np.asarray(rules_near, dtype=np.float64)
    X[:, f["short"]] = is_short
    X[:, f["short_x_min_neighbour"]] = is_short * min_nb
    X[:, f["short_x_prev1"]] = is_short * prev1
    X[:, f["short_x_next1"]] = is_short * next1
    X[:, f["short_x_in_block"]] = np.where(in_block, is_short, 0.0)
    X[:, f["log_short_run"]] = _log1p_of(short_run)
    X[:, f["in_core"]] = in_core
    return X


# ---------------------------------------------------------------------------------------------
# Decisions


@dataclass
class DocumentLines:
    """The line-model inputs of one document's unflagged lines (``index``: their positions)."""

    lang: str | None
    index: list[int]
    vectors: np.ndarray  # (unflagged lines x LINE_FEATURES)
    short: list[bool]
    rule_prev: list[bool]
    rule_next: list[bool]
    rules_near: list[int]


def line_features_reference(
    lines: Sequence[str], doc_index: Sequence[int], doc_stop: Sequence[frozenset[str] | None], repeated: Sequence[bool]
) -> np.ndarray:
    """``line_features_batch`` one line at a time with ``_line_vector`` (the definition; tests)."""
    out = np.empty((len(lines), len(LINE_FEATURES)), dtype=np.float64)
    for i, line in enumerate(lines):
        sample = line[:_SAMPLE_CHARS]
        lower = sample.lower()
        out[i] = _line_vector(line, sample, lower, sample.split(), lower.split(), doc_stop[doc_index[i]], bool(repeated[i]))
    return out


def line_features_batch(
    lines: Sequence[str], doc_index: Sequence[int], doc_stop: Sequence[frozenset[str] | None], repeated: Sequence[bool]
) -> np.ndarray:
    """``line_vector`` of many lines (of many documents) at once, as the rows of an array.

    ``doc_index[i]``: the document of line i, whose function words are ``doc_stop[doc_index[i]]``;
    ``repeated[i]``: the line occurs elsewhere in its document. Computed on arrays of code points
    (``tasks/stages/linematrix.py``), bit-identical to ``line_features_reference``.
    """
    from .linematrix import line_features_batch as vectorised  # it imports this module's constants

    return vectorised(lines, np.asarray(doc_index, dtype=np.int64), doc_stop, np.asarray(repeated, dtype=bool))


def repeated_in_document(lines: Sequence[str]) -> list[bool]:
    """Whether each line occurs more than once in the document."""
    counts = Counter(lines)
    return [counts[line] > 1 for line in lines]


def document_lines(lines: Sequence[str], reasons: Sequence[str | None], vectors=None) -> DocumentLines:
    """Line-model features of the lines no rule flagged (``reasons[i] is None``), and what the
    context model needs about the rules' decisions around them.

    ``vectors``: the unflagged lines' features when already computed (``line_features_batch``).
    """
    n = len(lines)
    index = [i for i in range(n) if reasons[i] is None]
    # page chrome flagged by rules (captions, credits, image placeholders, ads sit inside articles)
    chrome = [r is not None and r not in IN_ARTICLE_REASONS for r in reasons]
    near = [0] * (n + 1)  # prefix counts of page chrome
    for i, f in enumerate(chrome):
        near[i + 1] = near[i] + (1 if f else 0)
    if vectors is None:
        lang = document_language([lines[i] for i in index])
        stop = stopwords().get(lang) if lang else None
        repeated = repeated_in_document(lines)
        vectors = line_features_batch([lines[i] for i in index], [0] * len(index), [stop], [repeated[i] for i in index])
    else:
        lang = None  # the caller knows it
    return DocumentLines(
        lang=lang,
        index=index,
        vectors=vectors,
        short=[len(lines[i]) < SHORT_CHARS for i in index],
        rule_prev=[i > 0 and chrome[i - 1] for i in index],
        rule_next=[i + 1 < n and chrome[i + 1] for i in index],
        rules_near=[near[min(i + 4, n)] - near[max(0, i - 3)] for i in index],
    )


def document_context(doc: DocumentLines, line_weights: Sequence[float] = LINE_WEIGHTS) -> tuple[list[float], list[tuple[float, ...]]]:
    """(line-model scores, context-model features) of a document's unflagged lines."""
    vectors = np.asarray(doc.vectors, dtype=np.float64).reshape(-1, len(LINE_FEATURES))
    z = (vectors @ np.asarray(line_weights, dtype=np.float64)).tolist()
    log_words = vectors[:, _F["log_words"]].tolist()
    return z, context_matrix(z, log_words, doc.short, doc.rule_prev, doc.rule_next, doc.rules_near)


_IN_BLOCK = CONTEXT_FEATURES.index("in_block")
_IN_CORE = CONTEXT_FEATURES.index("in_core")
_C = {name: k for k, name in enumerate(CONTEXT_FEATURES)}
_F = {name: k for k, name in enumerate(LINE_FEATURES)}


def _headline(line: str, vector: Sequence[float]) -> bool:
    """A title: 3 to 25 words, at most 150 characters, some function words, no link,
    chrome word, date, trailing colon or ellipsis, at most one separator ("LIVE – Floods: ...")."""
    words = line.count(" ") + 1
    return (
        3 <= words <= 25
        and len(line) <= 150
        and vector[_F["stop_ratio"]] > 0
        and not (
            vector[_F["url"]] or vector[_F["separators"]] > 1 or vector[_F["chrome_ratio"]] or vector[_F["date"]]
            or vector[_F["truncated"]] or line.endswith(":")
        )
    )


def _running_text(lines: Sequence[str], reasons: Sequence[str | None]) -> tuple[str | None, float]:
    """(document language, share of sentence lines) without computing the features.

    The same as ``_sentence_fraction(document_lines(...).vectors)``: a line is a sentence when
    it ends like one (``terminal``) and has a function word of the document's language
    (``stop_ratio > 0``) or that language has no list (``lang_unknown``).
    """
    index = [i for i in range(len(lines)) if reasons[i] is None]
    lowered = [lines[i][:_SAMPLE_CHARS].lower().split() for i in index]
    lang = _language(lowered)
    stop = stopwords().get(lang) if lang else None
    sentences = 0
    for i, words in zip(index, lowered):
        if lines[i].rstrip(_CLOSERS)[-1:] in _TERMINALS and (stop is None or not stop.isdisjoint(words)):
            sentences += 1
    return lang, (sentences / len(index) if index else 0.0)


def _sentence_fraction(vectors) -> float:
    """Share of lines that are sentences: end like one and contain function words (or the
    document's language has no list)."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, len(LINE_FEATURES))
    if not len(vectors):
        return 0.0
    terminal, stop, unknown = _F["terminal"], _F["stop_ratio"], _F["lang_unknown"]
    sentences = np.count_nonzero((vectors[:, terminal] != 0) & ((vectors[:, stop] > 0) | (vectors[:, unknown] != 0)))
    return int(sentences) / len(vectors)


@dataclass(frozen=True)
class LineScores:
    """What the classifier saw for one document (``None`` for rule-flagged lines)."""

    lang: str | None
    line_z: list[float | None]  # line-model log-odds
    content_p: list[float | None]  # context-model probability of article text
    kept: list[bool]
    link_like: list[bool] | None = None  # a URL/handle, or 2+ separators (from the line features)


_MARKER_MEMO = 50_000


@dataclass(frozen=True)
class CommentThreads:
    """Where reader comments start under an article (``tasks/stages/lang/comment_markers.toml``)."""

    by_lines: re.Pattern  # lines ending in ":"
    stamps: re.Pattern  # other lines with a ":", of at most max_chars
    buttons: re.Pattern  # lines of at most button_chars
    min_markers: int = 3
    window: int = 40
    min_words_before: int = 300
    max_chars: int = 150
    button_chars: int = 60
    # is_marker of short lines (menus repeat from page to page), two generations of _MARKER_MEMO
    _memo: list = field(default_factory=lambda: [{}, {}], repr=False, compare=False, hash=False)

    def is_marker(self, line: str) -> bool:
        if ":" in line:
            if line.endswith(":"):
                return self.by_lines.fullmatch(line) is not None
            if len(line) <= self.max_chars and self.stamps.fullmatch(line) is not None:
                return True
        return len(line) <= self.button_chars and self.buttons.fullmatch(line) is not None

    def markers(self, lines: Sequence[str]) -> list[int]:
        """The indexes of the lines that are markers (``is_marker``): a line without ":" longer
        than ``button_chars`` is none; short lines' answers are remembered."""
        is_marker = self.is_marker
        memo, old = self._memo
        limit = max(self.button_chars, self.max_chars)
        found = []
        for i, line in enumerate(lines):
            if len(line) > limit:
                if ":" in line and line.endswith(":") and is_marker(line):
                    found.append(i)
                continue
            answer = memo.get(line)
            if answer is None:
                answer = old.get(line)
                if answer is None:
                    answer = is_marker(line)
                memo[line] = answer
            if answer:
                found.append(i)
        if len(memo) >= _MARKER_MEMO:
            self._memo[:] = [{}, memo]
        return found

    def marker_flags(self, lines: Sequence[str]) -> np.ndarray:
        """``is_marker`` of every line, as a bool array (the lines of many pages at once)."""
        is_marker = self.is_marker
        return np.fromiter(map(is_marker, lines), dtype=bool, count=len(lines))

    def marker_flags_at(self, text: BatchText, rows: np.ndarray) -> np.ndarray:
        """``marker_flags`` of the lines ``rows`` of a ``BatchText``: ``is_marker``'s tests in the
        same order, the cheap ones (":", at the end or not, the length) read off the code points
        for all the lines at once, then each regex on the lines that reach it and whose first and
        last characters a full match can start and end with (``_EdgeChars``: exact; most short
        lines start or end otherwise than "Reply" or "3 votes", and each regex call costs ~0.3 µs)."""
        lines = text.lines
        lengths = text.lengths[rows]
        first, last = text.edges(rows)
        colon = text.has_colon()[rows]
        ends_colon = colon & (last == 58)
        flags = np.zeros(len(rows), dtype=bool)
        # a line ending in ":" is a marker iff it is a by-line
        _fullmatch_where(self.by_lines, lines, rows, ends_colon, first, last, flags)
        # another line with a ":" is one if it is a stamp, else (as a line without one) if it is a button
        _fullmatch_where(self.stamps, lines, rows, colon & ~ends_colon & (lengths <= self.max_chars), first, last, flags)
        _fullmatch_where(self.buttons, lines, rows, ~flags & ~ends_colon & (lengths <= self.button_chars), first, last, flags)
        return flags

    def start(self, lines: Sequence[str], reasons: Sequence[str | None], found: Sequence[int] | None = None) -> int | None:
        """The first line of the comment thread of a page whose lines kept so far have
        ``reasons[i] is None``, or ``None``: the first marker with ``min_markers - 1`` more within
        ``window`` lines, after at least ``min_words_before`` kept words. A marker with too few
        words before it ends the search (a discussion: the page's first post is a comment too),
        unless at least ``min_words_before`` kept words follow it before the next marker: then it
        is the article's own by-line or date stamp ("Jane | June 25, 2012 7:53 am" above the
        story), and the thread is looked for after it. ``found``: the markers' indexes
        (``markers``), when known."""
        if found is None:
            found = self.markers(lines)
        if len(found) < self.min_markers:
            return None
        need, enough = self.min_markers - 1, self.min_words_before
        words, counted = 0, 0  # kept words of lines[:counted]
        for k, i in enumerate(found):
            if k + need < len(found) and found[k + need] - i <= self.window:
                words += sum(len(lines[j].split()) for j in range(counted, i) if reasons[j] is None)
                counted = i
                if words >= enough:
                    return i
                after = sum(len(lines[j].split()) for j in range(i + 1, found[k + 1]) if reasons[j] is None)
                if after < enough:
                    return None
                words += after + (len(lines[i].split()) if reasons[i] is None else 0)
                counted = found[k + 1]
        return None

    def drop(self, lines: Sequence[str], reasons: list[str | None], found: Sequence[int] | None = None) -> None:
        """Give the kept lines of the comment thread (if any) the reason ``comment_thread``."""
        start = self.start(lines, reasons, found)
        if start is not None:
            for j in range(start, len(lines)):
                if reasons[j] is None:
                    reasons[j] = "comment_thread"


def _fullmatch_where(pattern: re.Pattern, lines: Sequence[str], rows: np.ndarray, tried: np.ndarray, first: np.ndarray,
                     last: np.ndarray, flags: np.ndarray) -> None:
    """``flags[k] = pattern.fullmatch(lines[rows[k]]) is not None`` where ``tried``, given the first
    and last code points of each line (0 for an empty one)."""
    at = np.flatnonzero(tried)
    for edge, units in zip(_edge_filter(pattern), (first, last)):
        if edge is not None and len(at):
            at = at[edge.admitted(units[at])]
    fullmatch = pattern.fullmatch
    flags[at] = [fullmatch(lines[i]) is not None for i in rows[at].tolist()]


class _EdgeChars:
    """Whether a code point can be the first (last) character of a full match of a pattern: the
    pattern's own one-character items tested on it (``rulematch.edge_atoms``, exact), each code
    point of the BMP answered once; beyond it, and 0 (an empty line), the regex decides."""

    def __init__(self, admits) -> None:
        self.admits = admits
        self.known = np.zeros(0x10000, dtype=bool)
        self.answer = np.zeros(0x10000, dtype=bool)
        self.known[0] = self.answer[0] = True

    def admitted(self, units: np.ndarray) -> np.ndarray:
        """The answer for each code point of ``units``."""
        bmp = np.where(units < 0x10000, units, 0)
        new = np.unique(bmp[~self.known[bmp]])
        if len(new):
            self.answer[new] = [self.admits(chr(c)) for c in new.tolist()]
            self.known[new] = True
        return self.answer[bmp]


@lru_cache(maxsize=64)
def _edge_filter(pattern: re.Pattern) -> tuple[_EdgeChars | None, _EdgeChars | None]:
    """What the first and the last character of a full match of ``pattern`` can be (``None``: any)."""
    from .rulematch import edge_atoms

    edges = (edge_atoms(pattern.pattern, pattern.flags, last) for last in (False, True))
    return tuple(None if atoms is None else _EdgeChars(atoms.admits) for atoms in edges)


@lru_cache(maxsize=1)
def default_comment_threads() -> CommentThreads:
    """The built-in comment-thread markers."""
    data = tomllib.loads(resources.files(__package__).joinpath("lang/comment_markers.toml").read_text(encoding="utf-8"))

    def alternation(key: str) -> re.Pattern:
        return re.compile("|".join(f"(?:{p})" for p in data[key]), re.IGNORECASE)

    return CommentThreads(
        alternation("by_lines"), alternation("stamps"), alternation("buttons"), int(data["min_markers"]),
        int(data["window"]), int(data["min_words_before"]), int(data["max_chars"]), int(data["button_chars"]),
    )


class _BatchLines:
    """What the decisions need about every line of a batch, computed once."""

    def __init__(self, lines: Sequence[str], reasons: Sequence[str | None], text: BatchText | None = None):
        self.lines = lines
        self.text = text
        n = len(lines)
        given = np.empty(n, dtype=object)
        given[:] = reasons
        self.unflagged = np.equal(given, None).astype(bool)  # elementwise, no Python step per line
        # page chrome flagged by rules (captions, credits, image placeholders, ads sit inside articles)
        self.chrome = np.zeros(n, dtype=bool)
        flagged = np.flatnonzero(~self.unflagged)
        self.chrome[flagged] = [r not in IN_ARTICLE_REASONS for r in given[flagged].tolist()]
        self.chrome_before = np.concatenate(([0], np.cumsum(self.chrome)))  # prefix counts
        lengths = text.lengths if text is not None else np.fromiter(map(len, lines), dtype=np.int64, count=n)
        self.short = lengths < SHORT_CHARS


def _word_counts(matrix: np.ndarray) -> np.ndarray:
    """Each row's whitespace-separated words, read back from its ``log_words`` feature."""
    columns = np.asarray(matrix, dtype=np.float64).reshape(-1, len(LINE_FEATURES))
    return np.rint(np.expm1(columns[:, _F["log_words"]])).astype(np.int64)


def _first_true(flags: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per document (rows ``at[d]``..``at[d+1]``), the index of its first true flag, else 0."""
    hits = np.flatnonzero(flags)
    k = np.searchsorted(hits, at[:-1])
    found = np.full(len(at) - 1, 0, dtype=np.int64)
    ok = k < len(hits)
    ok[ok] = hits[k[ok]] < at[1:][ok]
    found[ok] = hits[k[ok]] - at[:-1][ok]
    return found


_REASON_NAMES = np.array(["link_list", "short_outside_content", "low_text_density", "outside_content"], dtype=object)
_LINK_LIST, _SHORT_OUTSIDE, _LOW_DENSITY, _OUTSIDE = range(4)


def fill_article_gaps(keep, in_core, probs, limit: int, max_gap: int, floor: float) -> None:
    """Keep the short gaps of an article: among the first ``limit`` rows (a page's unflagged lines
    before its first comment marker), a run of at most ``max_gap`` removed rows between two kept
    rows is article text (list items, table cells, short paragraphs between paragraphs) when its
    rows are in the main block's core and score at least ``floor``; such rows are set in ``keep``
    (in place). Comment sections are left out (their "Reply" and by-lines sit between kept
    comments), and so is everything outside the core."""
    last = -1
    for r in range(limit):
        if not keep[r]:
            continue
        if last >= 0 and 1 <= r - last - 1 <= max_gap:
            for t in range(last + 1, r):
                if in_core[t] and probs[t] >= floor:
                    keep[t] = True
        last = r


def drop_unrelated(keep, in_core, probs, terminal, lines: Sequence[str], pmax: float, share: float, min_words: int,
                   core_chars: int) -> None:
    """Remove (in place) kept lines outside the main block's core that share no vocabulary with it.

    A kept row outside the core (``in_core`` false) that does not end like a sentence (``terminal``
    false: teaser headlines, bylines, promotions; an isolated paragraph of the article is left
    alone) and scores under ``pmax`` is removed when it has at
    least ``min_words`` distinct content words (lower-cased ``\\w+`` words of 4+ characters, not
    digits, not a function word of any language) and at most ``share`` of them occur in the
    lower-cased text of the core's kept rows (its first ``_CORE_TEXT_CHARS``; a substring test: "elect"
    counts in "election"); only
    on pages whose kept core has at least ``core_chars`` characters. Related-story teasers, bios and
    promotions outside the article use other words than the story; a list, a caption or a subheading
    of it repeats them. ``lines``: each row's text."""
    candidates = [r for r in range(len(keep)) if keep[r] and not in_core[r] and not terminal[r] and probs[r] < pmax]
    if not candidates:
        return
    core_rows = [r for r in range(len(keep)) if keep[r] and in_core[r]]
    for r, gone in zip(candidates, _unrelated_rows(lines, core_rows, candidates, share, min_words, core_chars)):
        if gone:
            keep[r] = False


def _unrelated_rows(lines: Sequence[str], core_rows, candidates, share: float, min_words: int,
                    core_chars: int) -> list[bool]:
    """``_unrelated`` of each line of ``candidates`` against the text of ``core_rows`` (indexes
    into ``lines``, both); all false when that text is shorter than ``core_chars``."""
    core = _core_text(lines, core_rows)
    if len(core) < core_chars:
        return [False] * len(candidates)
    return [_unrelated(lines[r], core, share, min_words) for r in candidates]


_CORE_TEXT_CHARS = 8000  # the core's text read by drop_unrelated: its first characters (bounded work)


def _core_text(lines: Sequence[str], rows, limit: int = _CORE_TEXT_CHARS) -> str:
    """The lower-cased text of ``lines`` at ``rows`` (joined by newlines), its first ``limit`` characters."""
    parts, size = [], 0
    for r in rows:
        parts.append(lines[r])
        size += len(lines[r]) + 1
        if size >= limit:
            break
    return "\n".join(parts)[:limit].lower()


def _unrelated(line: str, core: str, share: float, min_words: int) -> bool:
    """Whether ``line`` has at least ``min_words`` distinct content words and at most ``share`` of
    them occur in ``core`` (lower-cased text), as ``drop_unrelated`` tests."""
    words = _content_words(line)
    if len(words) < min_words:
        return False
    allowed, found = share * len(words), 0
    for word in words:
        if word in core:
            found += 1
            if found > allowed:  # related: the other words need not be searched
                return False
    return True


_LONG_WORD = re.compile(r"\w{4,}")  # the ``\w+`` words of 4+ characters (a run is matched whole)


def _content_words(line: str) -> set[str]:
    """A line's distinct content words: lower-cased ``\\w+`` words of 4+ characters, not digits,
    not a function word of any language."""
    function_words = function_word_table()
    return {w for w in _LONG_WORD.findall(line.lower()) if not w.isdigit() and w not in function_words}


def keep_lead_lines(keep, in_core, texts: Sequence[str], words, start: int, window: int, share: float, min_words: int,
                    max_words: int, core_chars: int) -> None:
    """Keep (in place) the removed lines among the ``window`` rows before the core's first row
    ``start`` that restate the article: at most ``max_words`` words, at least ``min_words``
    content words (``_content_words``) of which at least ``share`` occur in the lower-cased text
    of the core's kept rows (its first ``core_chars`` characters; a substring test). The headline,
    the standfirst and the lead picture's caption repeat the story's words; the menus and other
    stories' teasers above it do not. ``texts``: each row's text; ``words``: its words (the
    ``log_words`` feature's count)."""
    if start <= 0 or window <= 0:
        return
    candidates = [j for j in range(max(0, start - window), start)
                  if not keep[j] and min_words <= words[j] <= max_words]
    if not candidates:
        return
    core = None
    for j in candidates:
        content = _content_words(texts[j])
        if len(content) < min_words:
            continue
        if core is None:
            core = _core_text(texts, [r for r in range(start, len(keep)) if keep[r] and in_core[r]], core_chars)
        if _restates(content, core, share):
            keep[j] = True


def _restates(content: set[str], core: str, share: float) -> bool:
    """Whether at least ``share`` of the content words ``content`` occur in ``core`` (``keep_lead_lines``);
    the search stops once the answer is known."""
    need = math.ceil(share * len(content) - 1e-9)  # words to find (0.4 × 5 is 2, not 3, despite float noise)
    spare = len(content) - need  # words that may be missing
    for w in content:
        if w in core:
            need -= 1
            if need <= 0:
                return True
        else:
            spare -= 1
            if spare < 0:
                return False
    return need <= 0


def keep_sandwiched(keep: list[bool], probs: Sequence[float], high: float, low: float) -> None:
    """Keep (in place) a removed line scoring at least ``low`` between two lines above ``high``."""
    for j in range(1, len(keep) - 1):
        if not keep[j] and probs[j] >= low and probs[j - 1] > high and probs[j + 1] > high:
            keep[j] = True


def keep_section_headings(keep: list[bool], short: Sequence[bool], in_block: Sequence[bool]) -> None:
    """Keep (in place) a short removed line of the block between two kept lines, the next one long."""
    for j in range(1, len(keep) - 1):
        if not keep[j] and short[j] and in_block[j] and keep[j - 1] and keep[j + 1] and not short[j + 1]:
            keep[j] = True


class ContentClassifier:
    """Decide, for the lines no rule flagged, which are article text; give the others a reason.

    ``threshold``: keep a line whose context-model probability exceeds it (lower keeps more).
    ``block_threshold``: the lower bar inside the main content block, where a line goes only on
    strong evidence. ``min_lines``: documents with fewer unflagged lines are left to the rules
    (no page structure to read in a few lines); so are documents in which at least
    ``prose_fraction`` of those lines are sentences (running text, not a web page).
    ``sandwich_high`` / ``sandwich_low``: a line below the bar is kept when the nearest unflagged
    lines on both sides are above ``sandwich_high`` and it is above ``sandwich_low``.
    ``outside_margin``: outside the main block (its core, with ``core``) the bar is ``threshold``
    plus this margin (pages are mostly chrome around the article). ``core``: the low bar only in
    the block's core (``in_core``), not in parts of the block after page chrome flagged by rules.
    ``comment_threads``: reader comments after the article are dropped (``CommentThreads``).
    ``headings``: inside the main block, a short line between two kept lines, the second one
    long, is kept (a section heading). The headline (first line of the main block, or the one
    before it) is kept when it reads like a title. ``gap_lines`` / ``gap_floor``: in the core,
    before the page's first comment marker, runs of at most ``gap_lines`` removed lines between
    kept lines are kept when they score at least ``gap_floor`` (``fill_article_gaps``; 0: off).
    ``unrelated_pmax`` / ``unrelated_share`` / ``unrelated_words`` / ``unrelated_core_chars``: a kept
    line outside the core, without a sentence end, scoring under ``unrelated_pmax`` whose content words (at least
    ``unrelated_words``) are at most ``unrelated_share`` in the core's text is removed, on pages whose
    kept core has at least ``unrelated_core_chars`` characters (``drop_unrelated``; pmax 0: off).
    ``lead_window`` / ``lead_share`` / ``lead_words`` / ``lead_max_words`` / ``lead_core_chars``: a
    removed line among the ``lead_window`` lines above the core that restates it (the headline, the
    standfirst) is kept (``keep_lead_lines``; window 0: off).
    """

    def __init__(
        self, threshold: float = DECISION.get("threshold", 0.5), min_lines: int = 5,
        block_threshold: float = DECISION.get("block_threshold", 0.3),
        sandwich_high: float = DECISION.get("sandwich_high", 0.75), sandwich_low: float = DECISION.get("sandwich_low", 0.1),
        headings: bool = True, prose_fraction: float = 0.6,
        outside_margin: float = DECISION.get("outside_margin", 0.0), core: bool = True,
        comment_threads: bool = True,
        gap_lines: int = int(DECISION.get("gap_lines", 4)), gap_floor: float = DECISION.get("gap_floor", 0.05),
        unrelated_pmax: float = DECISION.get("unrelated_pmax", 0.0),
        unrelated_share: float = DECISION.get("unrelated_share", 0.1),
        unrelated_words: int = int(DECISION.get("unrelated_words", 3)),
        unrelated_core_chars: int = int(DECISION.get("unrelated_core_chars", 300)),
        lead_window: int = int(DECISION.get("lead_window", 10)), lead_share: float = DECISION.get("lead_share", 0.4),
        lead_words: int = int(DECISION.get("lead_words", 3)), lead_max_words: int = int(DECISION.get("lead_max_words", 20)),
        lead_core_chars: int = int(DECISION.get("lead_core_chars", 1000)),
    ):
        self.outside_margin = max(0.0, outside_margin)
        self.core = core
        self.threshold = threshold
        self.block_threshold = min(block_threshold, threshold)
        self.min_lines = min_lines
        self.sandwich_high = sandwich_high
        self.sandwich_low = sandwich_low
        self.headings = headings
        self.prose_fraction = prose_fraction
        self.threads = default_comment_threads() if comment_threads else None
        self.gap_lines = int(gap_lines)
        self.gap_floor = gap_floor
        self.unrelated_pmax = unrelated_pmax
        self.unrelated_share = unrelated_share
        self.unrelated_words = int(unrelated_words)
        self.unrelated_core_chars = int(unrelated_core_chars)
        self.lead_window, self.lead_share, self.lead_words = int(lead_window), lead_share, int(lead_words)
        self.lead_max_words, self.lead_core_chars = int(lead_max_words), int(lead_core_chars)
        # the markers: where an article's gaps stop (the first one) and, with comment_threads, where a thread starts
        self.markers = default_comment_threads()

    @property
    def lead(self) -> tuple[int, float, int, int, int]:
        """``keep_lead_lines``'s constants, in its argument order."""
        return self.lead_window, self.lead_share, self.lead_words, self.lead_max_words, self.lead_core_chars

    def needs_features(self, lines: Sequence[str], reasons: Sequence[str | None]) -> tuple[bool, str | None]:
        """(whether the classifier reads this document, its language): documents with fewer than
        ``min_lines`` unflagged lines, or mostly sentences, are left to the rules."""
        if sum(1 for r in reasons if r is None) < self.min_lines:
            return False, None
        lang, prose = _running_text(lines, reasons)
        # mostly sentences: running text, not a web page with chrome (the models were fitted on
        # web pages, where sentences are a minority of lines); left to the rules. Decided before
        # any feature is computed: most documents of a news crawl stop here.
        return prose < self.prose_fraction, lang

    def score(
        self, lines: Sequence[str], reasons: Sequence[str | None], vectors=None, lang: str | None = None,
        prepared: tuple | None = None,
    ) -> LineScores:
        """Scores of every line no rule flagged (``reasons[i] is None``); ``kept`` says what stays.

        ``vectors`` (with ``lang``): the unflagged lines' features, computed by the caller for a
        document that ``needs_features``. ``prepared``: (``DocumentLines``, line scores, context
        features, probabilities), computed by the caller for many documents at once.
        """
        n = len(lines)
        line_z: list[float | None] = [None] * n
        content_p: list[float | None] = [None] * n
        kept = [False] * n
        if prepared is not None:
            doc, z, vectors, probs = prepared
        else:
            if vectors is None:
                needed, lang = self.needs_features(lines, reasons)
                if not needed:
                    for i in range(n):
                        kept[i] = reasons[i] is None
                    return LineScores(lang, line_z, content_p, kept)
            doc = document_lines(lines, reasons, vectors)
            if vectors is not None:
                doc.lang = lang
            z, vectors = document_context(doc)
            probs = _probabilities(vectors, CONTEXT_WEIGHTS)
        columns = np.asarray(vectors).reshape(-1, len(CONTEXT_FEATURES))
        in_main_block = (columns[:, _IN_BLOCK] != 0).tolist()
        # the low bar of the main block only in its core (with ``core``); the outside bar a margin
        # above the threshold
        in_block = (columns[:, _IN_CORE] != 0).tolist() if self.core else in_main_block
        block_threshold, outside = self.block_threshold, self.threshold + self.outside_margin
        keep = [p > (block_threshold if b else outside) for p, b in zip(probs, in_block)]
        # a line between two confident article lines is part of the article (heading, bullet)
        keep_sandwiched(keep, probs, self.sandwich_high, self.sandwich_low)
        # inside the main block, a short line between two kept lines, the second one long, is a
        # section heading of the article
        if self.headings:
            keep_section_headings(keep, doc.short, in_block)
        # the headline: the first line of the main content block, or the line just before it,
        # if it reads like a title
        start = next((j for j, b in enumerate(in_block) if b), 0)
        # the line just before the main block (a headline) is held to the plain threshold
        first = next((j for j, b in enumerate(in_main_block) if b), 0)
        if first > 0 and not keep[first - 1] and probs[first - 1] > self.threshold:
            keep[first - 1] = True
        for j in (start - 1, start) if start > 0 else (start,):
            if not keep[j] and _headline(lines[doc.index[j]], doc.vectors[j]):
                keep[j] = True
                break
        # the lines above the article that restate it (headline, standfirst)
        texts = [lines[i] for i in doc.index]
        keep_lead_lines(keep, in_block, texts, _word_counts(doc.vectors), start, *self.lead)
        if self.gap_lines > 0:
            found = self.markers.markers(lines)
            limit = bisect_left(doc.index, found[0]) if found else len(keep)
            fill_article_gaps(keep, in_block, probs, limit, self.gap_lines, self.gap_floor)
        matrix = np.asarray(doc.vectors, dtype=np.float64).reshape(-1, len(LINE_FEATURES))
        if self.unrelated_pmax > 0:
            drop_unrelated(keep, in_block, probs, (matrix[:, _F["terminal"]] != 0).tolist(), texts,
                           self.unrelated_pmax, self.unrelated_share, self.unrelated_words, self.unrelated_core_chars)
        links = ((matrix[:, _F["url"]] != 0) | (matrix[:, _F["separators"]] >= 2)).tolist()
        link_like: list[bool | None] = [None] * n
        for j, i in enumerate(doc.index):
            line_z[i] = z[j]
            content_p[i] = probs[j]
            kept[i] = keep[j]
            link_like[i] = links[j]
        return LineScores(doc.lang, line_z, content_p, kept, link_like)

    def classify_many(
        self, lines: Sequence[str], ranges: Sequence[tuple[int, int]], reasons: Sequence[str | None],
        languages: Sequence[tuple[str | None, list[int]] | None] | None = None, text: "BatchText | None" = None,
    ) -> list[str | None]:
        """``classify`` of many documents (``ranges``: each one's [start, end) in ``lines``, with
        the rules' ``reasons``), decided on arrays: the features of documents with ``min_lines``
        unflagged lines are computed together, ``FEATURE_CHUNK`` lines at a time (bounded
        memory); the running-text check is read off them (``_sentence_fraction``, the same answer
        as ``_running_text``); the context model and the decisions run over all the documents
        the classifier reads at once (``_decide``). The same answers as ``classify`` of each
        document alone (tests). ``languages``: each document's ``document_language_evidence``
        when known (``None``: not known), reused when no rule flagged a counted line; the other
        documents' languages are read on their unflagged lines, all at once
        (``document_language_evidence_many``). ``text``: the ``BatchText`` of ``lines``, when known."""
        total = len(lines)
        out = np.empty(total, dtype=object)
        out[:] = reasons
        if total == 0:
            return []
        if text is None and total >= COMPILED_MIN_ROWS:
            text = BatchText.of(lines)
        batch = _BatchLines(lines, reasons, text)
        todo: list[tuple[int, int, int]] = []  # (start, end, unflagged lines) of each document
        positions: list[np.ndarray] = []  # the unflagged lines of those documents
        feature_lines: list[str] = []
        doc_index: list[int] = []
        doc_stop: list[frozenset[str] | None] = []
        repeated: list[bool] = []

        def flush() -> None:
            matrix = line_features_batch(feature_lines, doc_index, doc_stop, repeated)
            self._decide(batch, matrix, np.concatenate(positions), todo, out)
            for pending in (todo, positions, feature_lines, doc_index, doc_stop, repeated):
                pending.clear()

        unflagged = batch.unflagged
        # the documents read (``min_lines`` unflagged lines) and their languages
        before = np.concatenate(([0], np.cumsum(unflagged)))
        read = [(k, start, end) for k, (start, end) in enumerate(ranges)
                if before[end] - before[start] >= max(self.min_lines, 1)]
        langs: dict[int, str | None] = {}
        for k, start, _ in read:
            evidence = languages[k] if languages is not None else None
            if evidence is not None and all(reasons[start + i] is None for i in evidence[1]):
                langs[k] = evidence[0]  # the same lines counted: the same guess
        guess = [(k, start, end) for k, start, end in read if k not in langs]
        if guess:  # the guess on the unflagged lines of each document
            found = document_language_evidence_many(lines, [(a, b) for _, a, b in guess], unflagged, text)
            langs.update((k, lang) for (k, _, _), (lang, _) in zip(guess, found))
        for k, start, end in read:
            index = np.flatnonzero(unflagged[start:end])
            m = len(index)
            doc = lines[start:end]
            chosen = index.tolist()
            chosen_lines = [doc[i] for i in chosen]
            lang = langs[k]
            counts = Counter(doc)
            feature_lines.extend(chosen_lines)
            repeated.extend([counts[line] > 1 for line in chosen_lines])
            doc_index.extend([len(todo)] * m)
            doc_stop.append(stopwords().get(lang) if lang else None)
            positions.append(index + start)
            todo.append((start, end, m))
            if len(feature_lines) >= FEATURE_CHUNK:
                flush()
        if todo:
            flush()
        return out.tolist()

    def _decide(
        self, batch: "_BatchLines", matrix: np.ndarray, where: np.ndarray, todo: list[tuple[int, int, int]], out: np.ndarray
    ) -> None:
        """The decisions of ``score`` and ``classify`` for the documents ``todo`` (start, end,
        unflagged lines), whose unflagged lines are at ``where`` with features ``matrix``:
        each removed line's reason is written into ``out``. Each step is ``score``'s loop over a
        document written over all documents at once (a line's neighbours stay in its document)."""
        scores = matrix @ np.asarray(LINE_WEIGHTS, dtype=np.float64)
        sizes = np.array([m for _, _, m in todo], dtype=np.int64)
        row_start = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        # running text (mostly sentences) is left to the rules
        sentence = (matrix[:, _F["terminal"]] != 0) & ((matrix[:, _F["stop_ratio"]] > 0) | (matrix[:, _F["lang_unknown"]] != 0))
        fraction = np.add.reduceat(sentence.astype(np.int64), row_start) / sizes
        pages = np.flatnonzero(fraction < self.prose_fraction)
        if not len(pages):
            return
        page_sizes = sizes[pages]
        rows = np.flatnonzero(np.repeat(fraction < self.prose_fraction, sizes))
        at = np.concatenate(([0], np.cumsum(page_sizes)))
        bounds = list(zip(at[:-1].tolist(), at[1:].tolist()))
        g = where[rows]  # each row's line in the batch
        doc_start = np.repeat(np.array([todo[k][0] for k in pages.tolist()], dtype=np.int64), page_sizes)
        doc_end = np.repeat(np.array([todo[k][1] for k in pages.tolist()], dtype=np.int64), page_sizes)
        chrome, near, short_all = batch.chrome, batch.chrome_before, batch.short
        last = len(chrome) - 1
        rule_prev = (g > doc_start) & chrome[np.maximum(g - 1, 0)]
        rule_next = (g + 1 < doc_end) & chrome[np.minimum(g + 1, last)]
        rules_near = near[np.minimum(g + 4, doc_end)] - near[np.maximum(doc_start, g - 3)]
        short = short_all[g]
        features = matrix[rows]
        z = scores[rows]
        context = context_matrix_many(z, features[:, _F["log_words"]], short, rule_prev, rule_next, rules_near, bounds)
        probs = _probability_array(context, CONTEXT_WEIGHTS)

        n = len(rows)
        local = np.arange(n) - np.repeat(at[:-1], page_sizes)
        interior = (local >= 1) & (local <= np.repeat(page_sizes, page_sizes) - 2)
        previous, following = np.roll(probs, 1), np.roll(probs, -1)
        in_main_block = context[:, _IN_BLOCK] != 0
        in_block = context[:, _IN_CORE] != 0 if self.core else in_main_block
        keep = probs > np.where(in_block, self.block_threshold, self.threshold + self.outside_margin)
        # a line between two confident article lines is part of the article (heading, bullet):
        # each line's test reads only scores, so all lines are tested at once
        high, low = self.sandwich_high, self.sandwich_low
        keep |= interior & (probs >= low) & (previous > high) & (following > high)
        if self.headings:
            # a short line between two kept lines, the second long, inside the block: a heading.
            # In ``score``'s loop a line kept here never changes the test of the next line (that
            # one needed it dropped), so all lines are tested on the same ``keep``.
            kept_before, kept_after = np.roll(keep, 1), np.roll(keep, -1)
            short_after = np.roll(short, -1)
            keep |= interior & short & in_block & kept_before & kept_after & ~short_after
        # the headline, per document: the first line of the block or the one before it
        first_core = _first_true(in_block, at)
        first_main = _first_true(in_main_block, at)
        lines = batch.lines
        # the comment markers of every page at once: where an article's gaps stop, where a thread starts
        spans = [todo[k][:2] for k in pages.tolist()]
        marker_at: list[list[int]] = [[] for _ in spans]
        if self.gap_lines > 0 or self.threads is not None:
            offsets = np.cumsum([0] + [end - start for start, end in spans])
            if batch.text is not None:
                rows = np.arange(offsets[-1]) + np.repeat(np.array([start for start, _ in spans]) - offsets[:-1],
                                                          np.diff(offsets))
                flags = self.markers.marker_flags_at(batch.text, rows)
            else:
                flags = self.markers.marker_flags([line for start, end in spans for line in lines[start:end]])
            counts = np.add.reduceat(flags.astype(np.int64), offsets[:-1]) if len(flags) else np.zeros(len(spans), np.int64)
            for d in np.flatnonzero(counts).tolist():
                marker_at[d] = np.flatnonzero(flags[offsets[d] : offsets[d + 1]]).tolist()
        # per page, in this order (each step touches only its own page's rows): the line just before
        # the main block is held to the plain threshold (all pages at once), the headline, the gaps
        before = (at[:-1] + first_main - 1)[first_main > 0]
        keep[before[~keep[before] & (probs[before] > self.threshold)]] = True
        at_list = at.tolist()
        for a, start in zip(at_list, first_core.tolist()):
            for j in (start - 1, start) if start > 0 else (start,):
                r = a + j
                if not keep[r] and _headline(lines[int(g[r])], features[r]):
                    keep[r] = True
                    break
        # the lines above the article that restate it (``keep_lead_lines``): only pages with a
        # removed line of 3 to ``lead_max_words`` words in the window above their core
        window, share, lead_words, lead_max, core_chars = self.lead
        if window > 0:
            top = np.repeat(first_core, page_sizes)
            words = _word_counts(features)
            near = (local < top) & (local >= top - window) & ~keep & (words >= lead_words) & (words <= lead_max)
            candidates = np.flatnonzero(near)
            page_of = np.searchsorted(at, candidates, side="right") - 1
            # each page's kept core rows (the lines above the core it keeps here are not among them)
            core_rows = np.flatnonzero(keep & in_block)
            core_from = np.searchsorted(core_rows, at[:-1] + first_core).tolist()
            core_to = np.searchsorted(core_rows, at[1:]).tolist()
            core, core_page = "", -1
            for r, d, i in zip(candidates.tolist(), page_of.tolist(), g[candidates].tolist()):
                content = _content_words(lines[i])
                if len(content) < lead_words:
                    continue
                if d != core_page:  # the page's core text, once (its rows read up to core_chars)
                    core = _core_text(lines, g[core_rows[core_from[d] : core_to[d]]].tolist(), core_chars)
                    core_page = d
                if _restates(content, core, share):
                    keep[r] = True
        if self.gap_lines > 0:
            limits = [
                int(np.searchsorted(g[a:b], int(doc_start[a]) + found[0])) if found else b - a
                for a, b, found in zip(at_list, at_list[1:], marker_at)
            ]
            if n >= COMPILED_MIN_ROWS:
                from .linekernels import gaps_kernel

                gaps_kernel(keep, in_block, probs, at, np.array(limits, dtype=np.int64), self.gap_lines, self.gap_floor)
            else:
                for a, b, limit in zip(at_list, at_list[1:], limits):
                    fill_article_gaps(keep[a:b], in_block[a:b], probs[a:b], limit, self.gap_lines, self.gap_floor)
        if self.unrelated_pmax > 0:
            # kept lines outside the core sharing no words with it; only pages with such a line
            # (``drop_unrelated`` of each page: its candidates never are core rows, so the order is free)
            candidates = np.flatnonzero(keep & ~in_block & (features[:, _F["terminal"]] == 0) & (probs < self.unrelated_pmax))
            if len(candidates):
                core_rows = np.flatnonzero(keep & in_block)
                core_at = np.searchsorted(core_rows, at).tolist()
                candidate_at = np.searchsorted(candidates, at).tolist()
                core_lines, candidate_lines = g[core_rows].tolist(), g[candidates].tolist()
                page_of = np.repeat(np.arange(len(page_sizes)), page_sizes)
                share, words, chars = self.unrelated_share, self.unrelated_words, self.unrelated_core_chars
                for d in np.unique(page_of[candidates]).tolist():
                    a, b = candidate_at[d], candidate_at[d + 1]
                    gone = _unrelated_rows(lines, core_lines[core_at[d] : core_at[d + 1]], candidate_lines[a:b],
                                           share, words, chars)
                    keep[candidates[a:b][np.array(gone, dtype=bool)]] = False
        # reasons of the removed lines (``_reason``)
        dropped = ~keep
        link_like = (features[:, _F["url"]] != 0) | (features[:, _F["separators"]] >= 2)
        code = np.select(
            [link_like, short, z < 0.0], [_LINK_LIST, _SHORT_OUTSIDE, _LOW_DENSITY], default=_OUTSIDE
        )
        out[g[dropped]] = _REASON_NAMES[code[dropped]]
        # a run of 3+ short removed lines (unflagged, in one document) is a menu; over the batch's
        # lines from the first to the last of these documents (``lo``..``hi``), not the whole batch
        lo, hi = int(doc_start.min()), int(doc_end.max())
        menu = np.zeros(hi - lo, dtype=bool)
        menu[g[dropped & short] - lo] = True
        first_of_doc = np.zeros(hi - lo, dtype=bool)
        first_of_doc[doc_start[local == 0] - lo] = True
        begins = menu & (first_of_doc | ~np.concatenate(([False], menu[:-1])))
        run = np.cumsum(begins)
        run_length = np.bincount(run[menu], minlength=int(run[-1]) + 1)
        long_run = np.zeros(hi - lo, dtype=bool)
        long_run[menu] = run_length[run[menu]] >= 3
        navigation = g[dropped & (code == _SHORT_OUTSIDE) & long_run[g - lo]]
        out[navigation] = "navigation"
        if self.threads is not None:  # reader comments under the article
            threads = self.threads
            for (start, end), found in zip(spans, marker_at):
                if len(found) >= threads.min_markers:  # fewer markers: no thread
                    decided = out[start:end].tolist()
                    threads.drop(lines[start:end], decided, found)
                    out[start:end] = decided

    def classify(
        self, lines: Sequence[str], reasons: Sequence[str | None], vectors=None, lang: str | None = None,
        prepared: tuple | None = None,
    ) -> list[str | None]:
        """Rule reasons stay; every other line is kept (``None``) or gets a classifier reason."""
        scores = self.score(lines, reasons, vectors, lang, prepared)
        out = list(reasons)
        n = len(lines)
        for i in range(n):
            if out[i] is None and not scores.kept[i]:
                out[i] = self._reason(lines, i, scores)
        # a run of 3+ short removed lines is a menu
        i = 0
        while i < n:
            j = i
            while j < n and reasons[j] is None and not scores.kept[j] and len(lines[j]) < SHORT_CHARS:
                j += 1
            if j - i >= 3:
                for k in range(i, j):
                    if out[k] == "short_outside_content":
                        out[k] = "navigation"
            i = max(j, i + 1)
        if self.threads is not None and any(z is not None for z in scores.line_z):
            self.threads.drop(lines, out)  # reader comments under the article
        return out

    @staticmethod
    def _reason(lines: Sequence[str], i: int, scores: LineScores) -> str:
        line = lines[i]
        if scores.link_like is not None and scores.link_like[i] is not None:
            link_like = scores.link_like[i]
        else:
            sample = line[:_SAMPLE_CHARS]
            link_like = _has_url(sample, sample.lower()) or len(_SEPARATOR.findall(sample)) >= 2
        if link_like:
            return "link_list"
        if len(line) < SHORT_CHARS:
            return "short_outside_content"
        z = scores.line_z[i]
        if z is not None and z < 0.0:
            return "low_text_density"
        return "outside_content"
