"""Stage 5: language identification with langdetect, deterministic.

langdetect is seeded (``DetectorFactory.seed = 0``), otherwise it answers differently from
run to run. Its detector runs through ``tasks.stages.fastlangdetect.FastDetector``, a subclass that
gives bit-identical results ~5x faster (stock langdetect in the reference chain). It is
still the most expensive stage per call and unreliable on short text, so:

* each document is detected once, on a bounded prefix of its kept (non-chrome) text;
* a paragraph gets its own detection only when it is long enough to be trusted
  (``language.paragraph_min_chars``) *and* its function words point to another language
  than its document's (a cheap count against ``lang/stopwords.toml``); then on a bounded
  prefix, cached by its text hash;
* every other paragraph, and chrome, inherits the document's language.

``lang`` is an ISO 639-1 code (langdetect's "zh-cn"/"zh-tw" become "zh"), or None when
nothing could be detected (empty, digits or symbols only).
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections import Counter, OrderedDict
from functools import cache
from itertools import chain
from importlib import resources

import xxhash
from langdetect import DetectorFactory
from langdetect.detector_factory import init_factory
from langdetect.lang_detect_exception import LangDetectException

from .fastlangdetect import create_detector, detect_many
from .langprofiles import compact_factory
from ..plumbing.records import Batch
from ..plumbing.stage import Stage

_PARAGRAPH_PREFIX = 600  # characters: enough for a confident guess, bounded cost
_CACHE_SIZE = 50_000


_FACTORY_LOCK = threading.Lock()
_LOADED: DetectorFactory | None = None


def _factory() -> DetectorFactory:
    """langdetect's factory with its bundled profiles, loaded once per process.

    ``init_factory`` publishes the global factory *before* loading its profiles, so two
    threads starting at once (a thread or Dask task runner) could get a half-loaded one:
    load under a lock, and hand out the factory only when it is complete.
    """
    global _LOADED
    with _FACTORY_LOCK:
        if _LOADED is None:
            DetectorFactory.seed = 0
            init_factory()
            from langdetect import detector_factory

            _LOADED = detector_factory._factory
        return _LOADED


_WORD = re.compile(r"\w+")
_MAX_TOKENS = 60  # function-word evidence saturates quickly; bound the work per paragraph
_EVIDENCE_CHARS = 400


@cache
def stopwords() -> dict[str, frozenset[str]]:
    """Function words per language, from ``tasks/stages/lang/stopwords.toml``."""
    data = tomllib.loads(resources.files(__package__).joinpath("lang/stopwords.toml").read_text(encoding="utf-8"))
    return {lang: frozenset(words.split()) for lang, words in data["stopwords"].items()}


@cache
def function_word_table() -> dict[str, tuple[str, ...]]:
    """Each function word and the languages it belongs to (a word can be in several lists)."""
    table: dict[str, list[str]] = {}
    for lang, words in stopwords().items():
        for word in words:
            table.setdefault(word, []).append(lang)
    return {word: tuple(langs) for word, langs in table.items()}


# \w in a str pattern is ``ch.isalnum() or ch == "_"``: Latin-1 text (most Western European
# text) is tokenised as bytes instead, each non-word byte turned into a space, then split.
_LATIN1_WORDS = bytes(b if chr(b).isalnum() or b == 0x5F else 0x20 for b in range(256))


@cache
def _latin1_function_word_table() -> dict[bytes, tuple[str, ...]]:
    """``function_word_table`` keyed by the Latin-1 bytes of the words that have them."""
    out = {}
    for word, langs in function_word_table().items():
        try:
            out[word.encode("latin-1")] = langs
        except UnicodeEncodeError:
            pass
    return out


def function_word_counts(text: str) -> Counter:
    """How many of the text's first words are function words of each language."""
    lowered = text[:_EVIDENCE_CHARS].lower()
    try:
        raw = lowered.encode("latin-1")
    except UnicodeEncodeError:
        table = function_word_table()
        words = _WORD.findall(lowered)[:_MAX_TOKENS]
    else:  # the same tokens as _WORD.findall, as bytes
        table = _latin1_function_word_table()
        words = raw.translate(_LATIN1_WORDS).split()[:_MAX_TOKENS]
    return Counter(chain.from_iterable(map(table.__getitem__, filter(table.__contains__, words))))


def points_elsewhere(text: str, lang: str | None) -> bool:
    """True when the text's function words clearly point to a language other than ``lang``."""
    counts = function_word_counts(text)
    if not counts:
        return False
    best, hits = max(counts.items(), key=_COUNT_THEN_LANG)
    return best != lang and hits >= 3 and hits >= 1.5 * counts.get(lang or "", 0)


def _COUNT_THEN_LANG(item: tuple[str, int]) -> tuple[int, str]:
    return item[1], item[0]


def _iso639_1(code: str) -> str:
    return code.split("-", 1)[0]


class LanguageDetector:
    """A loaded langdetect model with a small cache; ``detect`` never raises."""

    def __init__(self, fast: bool = True, trials: int = 7) -> None:
        # the fast detector reads langdetect's profiles in compact form (bit-identical, ~40 MiB less
        # per process: tasks/stages/langprofiles.py); the reference chain, the stock factory
        self._factory = compact_factory() if fast else _factory()
        self._create = create_detector if fast else (lambda factory: factory.create())
        self.trials = trials
        self._cache: OrderedDict[int, tuple[str | None, float | None]] = OrderedDict()

    def detect(self, text: str) -> tuple[str | None, float | None]:
        key, hit = self._cached(text)
        if hit is not None:
            return hit
        result = self._result(self._prepared(text))
        self._remember(key, result)
        return result

    def detect_many(self, texts: list[str]) -> list[tuple[str | None, float | None]]:
        """``[self.detect(t) for t in texts]``; the fast detector runs the texts' trials together."""
        results: list[tuple[str | None, float | None] | None] = [None] * len(texts)
        pending: dict[int, list[int]] = {}  # text hash -> positions, for texts not in the cache
        for pos, text in enumerate(texts):
            key, hit = self._cached(text)
            if hit is not None:
                results[pos] = hit
            else:
                pending.setdefault(key, []).append(pos)
        if pending:
            fast = self._create is create_detector
            detectors = [self._prepared(texts[where[0]]) if fast else None for where in pending.values()]
            langprobs = detect_many(detectors) if fast else [None] * len(detectors)
            for (key, where), detector, langprob in zip(pending.items(), detectors, langprobs):
                if langprob is None:  # the one-by-one path, on a fresh detector
                    result = self._result(self._prepared(texts[where[0]]))
                else:
                    detector.langprob = langprob
                    result = self._result(detector)
                self._remember(key, result)
                for pos in where:
                    results[pos] = result
        return results  # type: ignore[return-value]

    def _cached(self, text: str) -> tuple[int, tuple[str | None, float | None] | None]:
        """The text's cache key, and its cached result (None on a miss)."""
        key = xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
        return key, hit

    def _prepared(self, text: str):
        detector = self._create(self._factory)
        detector.n_trial = self.trials  # langdetect reads it in _detect_block; no setter exists
        detector.append(text)
        return detector

    @staticmethod
    def _result(detector) -> tuple[str | None, float | None]:
        try:
            best = detector.get_probabilities()[0]
            return _iso639_1(best.lang), round(float(best.prob), 6)
        except (LangDetectException, IndexError):
            return None, None

    def _remember(self, key: int, result: tuple[str | None, float | None]) -> None:
        self._cache[key] = result
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)


class LanguageStage(Stage):
    name = "language"

    def __init__(
        self, prefix_chars: int = 1000, paragraph_min_chars: int = 200, fast: bool = True, trials: int = 3
    ) -> None:
        super().__init__()
        self.prefix_chars = prefix_chars
        self.paragraph_min_chars = paragraph_min_chars
        self.detector = LanguageDetector(fast, trials)

    def _document_sample(self, texts: list[str], flags: list[bool]) -> str:
        parts, size = [], 0
        for text, is_chrome in zip(texts, flags):
            if is_chrome:
                continue
            parts.append(text)
            size += len(text) + 1
            if size >= self.prefix_chars:
                break
        return "\n".join(parts)[: self.prefix_chars]

    def process(self, batch: Batch) -> Batch:
        paras = batch.paragraphs
        langs: list[str | None] = [None] * len(paras)
        ranges = batch.doc_ranges()
        doc_flags = [paras.is_boilerplate[start:end] or [False] * (end - start) for start, end in ranges]
        samples = [
            self._document_sample(paras.text[start:end], flags) or doc.text[: self.prefix_chars]
            for (start, end), flags, doc in zip(ranges, doc_flags, batch.docs)
        ]
        detected = self.detector.detect_many(samples)
        for pos, ((start, end), flags) in enumerate(zip(ranges, doc_flags)):
            doc = batch.docs[pos]
            doc.lang, doc.lang_prob = detected[pos]
            self.stats.counts[f"doc_lang:{doc.lang}"] += 1
            for i in range(start, end):
                text = paras.text[i]
                if (
                    len(text) >= self.paragraph_min_chars
                    and not flags[i - start]
                    and points_elsewhere(text[:_PARAGRAPH_PREFIX], doc.lang)
                ):
                    lang, _ = self.detector.detect(text[:_PARAGRAPH_PREFIX])
                    langs[i] = lang or doc.lang
                    self.stats.counts["paragraphs_detected"] += 1
                else:
                    langs[i] = doc.lang
        paras.lang = langs
        return batch
