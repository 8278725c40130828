"""A faster langdetect ``Detector`` that returns bit-identical results.

``FastDetector`` is a subclass of ``langdetect.detector.Detector`` built from the same
loaded ``DetectorFactory`` (same profiles, language list and seed). For the same text,
seed and parameters it gives exactly the languages and float probabilities of the stock
detector; only the work is organised differently:

* ``append`` / ``cleaning_text``: the same transformations with ``re``, ``str`` and numpy
  instead of character loops (``self.text`` ends up identical).
* n-grams: ``NGram.normalize`` is a pure function of one character, so it is tabulated
  (one-character results, checked). The ``NGram.add_char`` state machine resets at every
  space, so the n-grams of a text are the concatenation of those of its words (with the
  space that follows them); they are cached per word as indices of rows of a float64
  matrix holding the profile probabilities (a row is added the first time it is needed).
* random draws: langdetect reseeds its ``random.Random`` with the factory's seed for every
  text, so every detection reads the same Mersenne Twister outputs. They are generated once
  per seed, and ``gauss()`` and ``choice()`` are replayed from them the way CPython's
  ``random`` computes them (``choice`` = ``_randbelow_with_getrandbits``: ``k``-bit values,
  ``>= n`` rejected; ``random()`` = two 32-bit words; ``gauss`` keeps its second value).
* ``prob[l] *= weight + p[l]`` runs with numpy on all languages at once, with the same IEEE
  operations in the same order for each element: the products between two convergence
  checks are a ``multiply.reduce`` along axis 0 (sequential: ``((prob * f1) * f2) ...``),
  the normalisation sum is Python's ``sum`` over the same list, the divisions elementwise.

Unusual set-ups (no seed, verbose mode, a ``random`` that is not CPython's Mersenne
Twister) take the stock code path.
"""

from __future__ import annotations

import math
import random
import re
import threading
import weakref
from array import array

import numpy as np
from langdetect.detector import Detector
from langdetect.detector_factory import DetectorFactory
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram
from langdetect.utils.unicode_block import unicode_block

__all__ = ["FastDetector", "create_detector", "detect_many"]

_TWOPI = random.TWOPI
_INF = math.inf
_RANDOM_SCALE = 1.0 / 9007199254740992.0

# The replay assumes CPython's Random: C random()/getrandbits(), choice() through
# _randbelow_with_getrandbits. Otherwise: stock path.
_REPLAY_OK = (
    type(random.Random().random).__name__ == "builtin_function_or_method"
    and random.Random._randbelow is random.Random._randbelow_with_getrandbits
)

_MULTI_SPACE = re.compile(" {2,}")
_LATIN = re.compile("[A-z]")  # 'A' <= ch <= 'z', as in Detector.cleaning_text
_DMARKS = tuple(NGram.DMARK_CLASS)  # normalize_vi only matches before one of these
# Detector.cleaning_text counts ch >= U+0300 with unicode_block(ch) != 'Latin Extended
# Additional'; unicode_block returns ints in langdetect 1.0.9, so the test is always true.
_BLOCK_TEST_TRIVIAL = not isinstance(unicode_block("\u1e00"), str)
_WORD_CACHE_LIMIT = 100_000  # distinct words kept; the cache is emptied when full
_INITIAL_ROWS = 4096  # profile rows held at first; doubles when needed (87,598 at most)


# ---------------------------------------------------------------------------------------
# Characters


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


class _NormalizeTable(dict):
    """``ord(ch) -> NGram.normalize(ch)``, filled on demand, for ``str.translate``."""

    def __missing__(self, cp: int) -> str:
        out = NGram.normalize(chr(cp))
        if len(out) != 1:  # never with langdetect 1.0.9 (the tests check every code point)
            raise ValueError(f"NGram.normalize({chr(cp)!r}) is not one character")
        self[cp] = out
        return out


_NORMALIZE = _NormalizeTable()
_BMP_TABLE: np.ndarray | None = None  # ord(NGram.normalize(chr(c))) for c < 0x10000


def _bmp_table() -> np.ndarray:
    global _BMP_TABLE
    table = _BMP_TABLE
    if table is None:  # ~60 ms, once per process; a concurrent double build is harmless
        table = np.array([ord(_NORMALIZE[c]) for c in range(0x10000)], dtype="<u4")
        _BMP_TABLE = table
    return table


def normalize_text(text: str) -> str:
    """``''.join(NGram.normalize(ch) for ch in text)``."""
    if text.isascii():
        return text.translate(_NORMALIZE)  # CPython caches ASCII lookups
    cps = _codepoints(text)
    if int(cps.max()) > 0xFFFF:
        return text.translate(_NORMALIZE)
    return _bmp_table()[cps].tobytes().decode("utf-32-le", "surrogatepass")


def _non_latin(ch: str) -> bool:
    return ch >= "\u0300" and unicode_block(ch) != "Latin Extended Additional"


# ---------------------------------------------------------------------------------------
# Profiles as a matrix, n-grams of words as row indices


def _word_ngrams(key: str) -> list[str]:
    """N-grams of one normalised word (plus ' ' if a space follows it), from a reset
    ``NGram``: ``NGram.add_char`` without normalize, and the loop of ``_extract_ngrams``
    before its membership test."""
    if key[:1].strip() and " " not in key[:-1] and sum(map(str.isupper, key)) <= 1:
        # No space inside and no two capitals in a row (the only things that reset or mute
        # the state machine): after each character of " " + key come its last 1, 2 and 3
        # characters (only 1 and 2 for the first).
        s = " " + key
        out = [s[1], s[:2]]
        for p in range(2, len(s)):
            out += (s[p], s[p - 1 : p + 1], s[p - 2 : p + 1])
        return out
    out: list[str] = []
    grams = " "
    capitalword = False
    for ch in key:
        last_char = grams[-1]
        if last_char == " ":
            grams = " "
            capitalword = False
            if ch == " ":
                continue  # add_char returns early; grams == ' ' gives nothing
        elif len(grams) >= 3:
            grams = grams[1:]
        grams += ch
        if ch.isupper():
            if last_char.isupper():
                capitalword = True
        else:
            capitalword = False
        if capitalword:
            continue
        out.append(grams[-1:])
        if len(grams) >= 2:
            out.append(grams[-2:])
            if len(grams) >= 3:
                out.append(grams[-3:])
    return out


def _gram_code(gram: str) -> int:
    """An n-gram of 1 to 3 characters as one integer: each code point + 1 in 21 bits, the last lowest
    (``_word_codes`` computes the same codes with numpy)."""
    code = 0
    for ch in gram:
        code = (code << 21) | (ord(ch) + 1)
    return code


_SPACE_CODE = ord(" ") + 1  # the one-character n-gram " ", never a feature
_MIN_FILL = 16  # new words below which filling the cache word by word is as cheap


def _simple_word(word: str) -> bool:
    """``_word_ngrams(word + " ")`` takes its fast path (no state machine) for this word."""
    return word[:1].strip() != "" and " " not in word and sum(map(str.isupper, word)) <= 1


def _word_codes(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The n-gram codes of ``_word_ngrams(w + " ")`` for simple words (``_simple_word``), in the same
    order, without " ": ``(codes, counts)``, ``counts[i]`` codes for word i, laid end to end.

    For ``s = " " + w + " "`` the fast path gives ``s[1], s[:2]``, then ``s[p], s[p-1:p+1],
    s[p-2:p+1]`` for ``p`` from 2 to ``len(s) - 1``."""
    joined = "".join(" " + w + " " for w in words)
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64) + np.uint64(1)
    lengths = np.fromiter((len(w) + 2 for w in words), dtype=np.int64, count=len(words))
    starts = np.zeros(len(words), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    total = int(cps.shape[0])
    prev1 = np.zeros(total, dtype=np.uint64)
    prev1[1:] = cps[:-1]
    prev2 = np.zeros(total, dtype=np.uint64)
    prev2[2:] = cps[:-2]
    grams = np.empty((total, 3), dtype=np.uint64)
    grams[:, 0] = cps
    grams[:, 1] = (prev1 << np.uint64(21)) | cps
    grams[:, 2] = (prev2 << np.uint64(42)) | grams[:, 1]
    pos = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)  # p within its word's s
    take = np.empty((total, 3), dtype=bool)
    take[:, 0] = pos >= 1
    take[:, 1] = pos >= 1
    take[:, 2] = pos >= 2
    take[:, 0] &= cps != np.uint64(_SPACE_CODE)  # the trailing " " (rows_for drops the gram " ")
    codes = grams[take]
    counts = np.add.reduceat(take.sum(axis=1), starts) if total else np.zeros(len(words), np.int64)
    return codes, counts


class _Model:
    """A factory's profile probabilities as float64 rows, and a per-word cache."""

    def __init__(self, factory: DetectorFactory) -> None:
        self.word_lang_prob_map = factory.word_lang_prob_map
        self.nlang = len(factory.langlist)
        self.lock = threading.Lock()
        self.row_of: dict[str, int] = {}
        self.ngram_of_row: list[str] = []
        self.matrix = np.zeros((_INITIAL_ROWS, self.nlang), dtype=np.float64)
        self.words = _WordCache(self)
        # The profiles' n-grams by code (sorted), and the row each has (-1: none yet), for ``fill``.
        known = [g for g in self.word_lang_prob_map if 1 <= len(g) <= 3 and g != " "]
        codes = np.fromiter(map(_gram_code, known), dtype=np.uint64, count=len(known))
        order = np.argsort(codes, kind="stable")
        self.known_codes = codes[order]
        self.known_grams = [known[i] for i in order.tolist()]
        self.code_row = np.full(len(known), -1, dtype=np.int32)

    def _add_row(self, g: str, k: int | None = None) -> int:
        """A new row for the n-gram ``g`` (under ``self.lock``); ``k``: its position in
        ``known_codes``, if known."""
        r = len(self.ngram_of_row)
        if r >= self.matrix.shape[0]:
            bigger = np.zeros((2 * self.matrix.shape[0], self.nlang), dtype=np.float64)
            bigger[:r] = self.matrix[:r]
            self.matrix = bigger  # readers keep the old array, still valid for them
        fill_row = getattr(self.word_lang_prob_map, "fill_row", None)  # compact profiles (langprofiles.py)
        if fill_row is not None:
            fill_row(g, self.matrix[r])
        else:
            self.matrix[r] = self.word_lang_prob_map[g]  # float -> float64: exact
        self.ngram_of_row.append(g)
        self.row_of[g] = r
        if k is None and 1 <= len(g) <= 3:
            k = int(np.searchsorted(self.known_codes, np.uint64(_gram_code(g))))
        if k is not None and k < len(self.known_codes) and self.known_grams[k] == g:
            self.code_row[k] = r
        return r

    def fill(self, words) -> None:
        """Put ``rows_for(w + " ")`` of each of these words (not yet cached) in the word cache, the
        simple ones computed together with numpy: the same rows, in the same order."""
        cache = self.words
        simple = [w for w in words if _simple_word(w)]
        if len(simple) < _MIN_FILL:
            return
        if len(cache) + len(simple) > _WORD_CACHE_LIMIT:
            cache.clear()
            cache[""] = b""
            simple = simple[: _WORD_CACHE_LIMIT - 1]  # the cache's bound holds (the rest: one by one)
        codes, counts = _word_codes(simple)
        known = self.known_codes
        k = np.searchsorted(known, codes)
        np.minimum(k, len(known) - 1, out=k)
        hit = known[k] == codes
        k = k[hit]
        per_word = np.add.reduceat(hit, np.concatenate([[0], np.cumsum(counts)[:-1]])) if len(codes) else counts
        per_word[counts == 0] = 0
        with self.lock:
            rows = self.code_row[k]
            missing = np.flatnonzero(rows < 0)
            if missing.size:
                grams = self.known_grams
                for j in np.unique(k[missing]).tolist():
                    self._add_row(grams[j], j)
                rows = self.code_row[k]
        raw = rows.astype(np.int32).tobytes()
        ends = np.cumsum(per_word) * 4
        lo = 0
        for w, hi in zip(simple, ends.tolist()):
            cache[w] = raw[lo:hi]
            lo = hi

    def matches(self, detector: Detector) -> bool:
        return detector.word_lang_prob_map is self.word_lang_prob_map and len(detector.langlist) == self.nlang

    def rows_for(self, key: str) -> bytes:
        """Rows (int32 bytes) of the n-grams of ``key`` that are in the profiles."""
        known = self.word_lang_prob_map
        if " " in known:
            grams = [g for g in _word_ngrams(key) if g != " " and g in known]
        else:
            grams = list(filter(known.__contains__, _word_ngrams(key)))
        with self.lock:
            try:  # every n-gram already has a row (the usual case once warm)
                return array("i", map(self.row_of.__getitem__, grams)).tobytes()
            except KeyError:
                pass
            rows = array("i")
            row_of = self.row_of
            for g in grams:
                r = row_of.get(g)
                if r is None:
                    r = self._add_row(g)
                rows.append(r)
        return rows.tobytes()


class _WordCache(dict):
    """``normalised word -> rows bytes`` of that word followed by a space."""

    def __init__(self, model: _Model) -> None:
        super().__init__()
        self._model = weakref.proxy(model)
        self[""] = b""

    def __missing__(self, key: str) -> bytes:
        rows = self._model.rows_for(key + " ")
        if len(self) >= _WORD_CACHE_LIMIT:
            self.clear()
            self[""] = b""
        self[key] = rows
        return rows


_MODELS: "weakref.WeakKeyDictionary[DetectorFactory, _Model]" = weakref.WeakKeyDictionary()
_MODELS_LOCK = threading.Lock()


def _model_for(factory: DetectorFactory, detector: Detector) -> _Model:
    model = _MODELS.get(factory)
    if model is None or not model.matches(detector):
        with _MODELS_LOCK:
            model = _MODELS.get(factory)
            if model is None or not model.matches(detector):
                model = _Model(factory)
                _MODELS[factory] = model
    return model


# ---------------------------------------------------------------------------------------
# The seeded Mersenne Twister outputs


class _Stream:
    """The 32-bit outputs of a ``random.Random()`` after ``.seed(seed)``, grown on demand."""

    def __init__(self, seed) -> None:
        self._gen = random.Random()
        self._gen.seed(seed)
        self._lock = threading.Lock()
        self.words = np.empty(0, dtype="<u4")
        self.ensure(1 << 14)

    def ensure(self, size: int) -> np.ndarray:
        words = self.words
        if len(words) >= size:
            return words
        with self._lock:
            words = self.words
            if len(words) < size:
                more = max(size - len(words), len(words))
                # getrandbits(32 * m) packs m successive genrand_uint32() outputs, the
                # first in the lowest 32 bits.
                raw = self._gen.getrandbits(32 * more).to_bytes(4 * more, "little")
                words = np.concatenate([words, np.frombuffer(raw, dtype="<u4")])
                self.words = words
        return words


_STREAMS: dict = {}
_STREAMS_LOCK = threading.Lock()


def _stream_for(seed) -> _Stream | None:
    """The stream for ``seed``; None (stock path) for None (os.urandom) or an unusual seed
    type (float, bytearray: same results, just not worth a cache entry)."""
    if not isinstance(seed, (int, str, bytes)):
        return None
    key = (type(seed), seed)
    stream = _STREAMS.get(key)
    if stream is None:
        with _STREAMS_LOCK:
            stream = _STREAMS.get(key)
            if stream is None:
                stream = _Stream(seed)
                _STREAMS[key] = stream
    return stream


def _random_at(words: np.ndarray, pos: int) -> float:
    """``Random.random()`` from the two words at ``pos``."""
    a = int(words[pos]) >> 5
    b = int(words[pos + 1]) >> 6
    return (a * 67108864.0 + b) * _RANDOM_SCALE


# ---------------------------------------------------------------------------------------
# The detector


class FastDetector(Detector):
    """``langdetect.detector.Detector`` with the same results, computed faster."""

    _FIRST_CHUNK = 1 + 5 * 12  # choices gathered for a trial's first 13 checks
    _NEXT_CHUNK = 5 * 40

    def __init__(self, factory: DetectorFactory) -> None:
        # Detector.__init__, except that the random.Random (seeded from os.urandom, ~13 us)
        # is only built if the stock path needs it: detection reseeds it anyway.
        self.word_lang_prob_map = factory.word_lang_prob_map
        self.langlist = factory.langlist
        self.seed = factory.seed
        self._random = None
        self.text = ""
        self.langprob = None

        self.alpha = self.ALPHA_DEFAULT
        self.n_trial = 7
        self.max_text_length = 10000
        self.prior_map = None
        self.verbose = False
        self._factory = factory

    @property
    def random(self) -> random.Random:
        rnd = self._random
        if rnd is None:
            rnd = self._random = random.Random()
        return rnd

    @random.setter
    def random(self, value: random.Random) -> None:
        self._random = value

    # -- text ---------------------------------------------------------------------------

    def append(self, text):
        """``Detector.append``: URLs and e-mails blanked, Vietnamese normalised, cut to
        ``max_text_length``, runs of spaces collapsed (within this call)."""
        if "http" in text:  # URL_RE starts with https?://
            text = self.URL_RE.sub(" ", text)
        if "@" in text:  # MAIL_RE needs an @
            text = self.MAIL_RE.sub(" ", text)
        for mark in _DMARKS:
            if mark in text:
                text = NGram.normalize_vi(text)
                break
        text = text[: max(self.max_text_length, 0)]
        if "  " in text:
            text = _MULTI_SPACE.sub(" ", text)
        self.text += text

    def cleaning_text(self):
        """``Detector.cleaning_text``: drop Latin letters from mostly non-Latin text."""
        text = self.text
        if text.isascii():  # nothing >= U+0300: non_latin_count == 0
            return
        cps = _codepoints(text)
        if _BLOCK_TEST_TRIVIAL:
            non_latin_count = int(np.count_nonzero(cps >= 0x300))
        else:
            non_latin_count = sum(map(_non_latin, text))
        if not non_latin_count:
            return
        latin_count = int(np.count_nonzero((cps - np.uint32(65)) <= np.uint32(57)))  # A..z
        if latin_count * 2 < non_latin_count:
            self.text = _LATIN.sub("", text)

    # -- n-grams ------------------------------------------------------------------------

    def _model(self) -> _Model:
        return _model_for(self._factory, self)

    def _tokens(self) -> list[str]:
        """The normalised text split at spaces: each token but the last is followed by a space."""
        return normalize_text(self.text).split(" ")

    @staticmethod
    def _cached_parts(model: _Model, tokens: list[str]) -> list[bytes | None]:
        """The word cache's rows of each token but the last; None for words not cached yet."""
        return list(map(model.words.get, tokens[:-1]))

    @staticmethod
    def _rows_of(model: _Model, tokens: list[str], parts: list[bytes | None]) -> np.ndarray:
        """Profile rows of the n-grams of ``tokens``, from their ``_cached_parts`` (misses computed now)."""
        if None in parts:
            words = model.words
            parts = [words[t] if p is None else p for t, p in zip(tokens, parts)]
        buf = b"".join(parts)
        last = tokens[-1]  # the only token not followed by a space
        if last:
            buf += model.rows_for(last)
        return np.frombuffer(buf, dtype=np.int32)

    def _extract_rows(self, model: _Model) -> np.ndarray:
        """Profile rows of the text's n-grams, in ``Detector._extract_ngrams`` order."""
        tokens = self._tokens()
        parts = self._cached_parts(model, tokens)
        if None in parts:
            new = {t for t, p in zip(tokens, parts) if p is None}
            if len(new) >= _MIN_FILL:
                model.fill(new)
        return self._rows_of(model, tokens, parts)

    def _extract_ngrams(self):
        """The list of ``Detector._extract_ngrams`` (the fast path uses ``_extract_rows``)."""
        model = self._model()
        names = model.ngram_of_row
        return [names[r] for r in self._extract_rows(model).tolist()]

    # -- detection ----------------------------------------------------------------------

    def _detect_block(self):
        stream = None
        if _REPLAY_OK and not self.verbose and (self._random is None or type(self._random) is random.Random):
            stream = _stream_for(self.seed)
        if stream is None:
            return super()._detect_block()

        self.cleaning_text()
        model = self._model()
        rows = self._extract_rows(model)
        n = len(rows)
        if not n:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        matrix = model.matrix  # taken after extraction: holds every row in `rows`

        nlang = len(self.langlist)
        n_trial = self.n_trial
        conv_threshold = self.CONV_THRESHOLD
        iteration_limit = self.ITERATION_LIMIT
        init_prob = np.array(self._init_probability(), dtype=np.float64)
        langprob = np.zeros(nlang, dtype=np.float64)
        tmp = np.empty(nlang, dtype=np.float64)
        mul_reduce = np.multiply.reduce
        divide = np.divide

        # choice(ngrams) == ngrams[r], r = the first getrandbits(k) value below n, where
        # getrandbits(k) == genrand_uint32() >> (32 - k). Over a window of the stream:
        # which words are accepted draws, and the profile row each one picks.
        shift = np.uint32(32 - n.bit_length())
        words = stream.words
        window = 0
        accepted = chosen = None

        def draws(upto: int):
            nonlocal words, window, accepted, chosen
            window = max(2 * window, upto, 2048)
            words = stream.ensure(window)
            values = words[:window] >> shift
            accepted = np.flatnonzero(values < n)
            chosen = rows[values[accepted]]

        draws(2048)
        pos = 0  # next unread word (random.seed(seed) restarts the stream)
        gauss_next = None  # random.seed() resets it

        for _ in range(n_trial):
            # alpha = self.alpha + self.random.gauss(0.0, 1.0) * self.ALPHA_WIDTH
            z = gauss_next
            gauss_next = None
            if z is None:
                if pos + 4 > window:
                    draws(pos + 4)
                x2pi = _random_at(words, pos) * _TWOPI
                g2rad = math.sqrt(-2.0 * math.log(1.0 - _random_at(words, pos + 2)))
                pos += 4
                z = math.cos(x2pi) * g2rad
                gauss_next = math.sin(x2pi) * g2rad
            alpha = self.alpha + (0.0 + z * 1.0) * self.ALPHA_WIDTH
            weight = alpha / self.BASE_FREQ

            prob = init_prob
            first = int(np.searchsorted(accepted, pos))  # this trial's first draw
            i = 0  # iteration (draw) index within the trial
            chunk = self._FIRST_CHUNK
            while True:
                while first + i + chunk > len(accepted):
                    draws(2 * window)
                buf = np.empty((chunk + 1, nlang), dtype=np.float64)
                buf[0] = prob
                np.add(matrix[chosen[first + i : first + i + chunk]], weight, out=buf[1:])

                converged = False
                start = 0
                while start < chunk:
                    end = start + (1 if i == 0 else 5)
                    # prob[l] = ((prob[l] * f1[l]) * f2[l]) ..., rounded at each step
                    mul_reduce(buf[start : end + 1], axis=0, out=tmp)
                    i += end - start - 1  # the check's iteration index
                    # Detector._normalize_prob, into buf[end]
                    values = tmp.tolist()
                    sump = sum(values)  # Python's sequential sum, as langdetect
                    prob = buf[end]
                    if 0.0 < sump < _INF:
                        divide(tmp, sump, out=prob)
                        # x -> x / sump is monotonic (sump > 0): max(x / sump) == max(x) / sump
                        maxp = values[tmp.argmax()] / sump
                        if maxp < 0.0:  # langdetect starts from maxp = 0.0
                            maxp = 0.0
                    else:  # only reachable with a user alpha <= 0: langdetect's own code
                        maxp = Detector._normalize_prob(self, values)
                        prob[:] = values
                    if maxp > conv_threshold or i >= iteration_limit:
                        converged = True
                        break
                    i += 1
                    start = end
                if converged:
                    break
                chunk = self._NEXT_CHUNK

            pos = int(accepted[first + i]) + 1  # the word after this trial's last draw
            langprob += prob / n_trial

        self.langprob = langprob.tolist()


def create_detector(factory: DetectorFactory, alpha: float | None = None) -> FastDetector:
    """``factory.create(alpha)``, but a ``FastDetector``."""
    if not factory.langlist:
        raise LangDetectException(ErrorCode.NeedLoadProfileError, "Need to load profiles.")
    detector = FastDetector(factory)
    if alpha is not None:
        detector.set_alpha(alpha)
    return detector


# ---------------------------------------------------------------------------------------
# Many texts at once


_MANY_WINDOW = 2048  # stream words per text prepared for the lockstep (~1,000+ draws)
_MANY_MIN_ACTIVE = 8  # below this many unfinished texts, finish them one by one


def detect_many(detectors: list[FastDetector]) -> list[list[float] | None]:
    """``langprob`` of each detector's text (``append`` already called), or None where the
    caller must run ``get_probabilities()`` itself (stock path, no features, rare cases).

    The same computation as ``FastDetector._detect_block`` for each text, but the trials of
    all texts advance together, one convergence check per step, with numpy operations on a
    (texts, languages) array: for each text and language the same IEEE operations in the
    same order (products ``((prob * f1) * f2) ...``; the normalisation sum is a sequential
    ``np.add.accumulate``, like Python's ``sum``; a factor 1.0 pads the first check's single
    update to five, which leaves a product unchanged). Texts that would need draws beyond
    their prepared window, and the last few unfinished texts, are detected one by one.
    """
    out: list[list[float] | None] = [None] * len(detectors)
    if not detectors:
        return out
    first_det = detectors[0]
    stream = _stream_for(first_det.seed) if _REPLAY_OK else None
    if stream is None:
        return out
    model = first_det._model()
    nlang = len(first_det.langlist)
    todo: list[int] = []
    parts: list[np.ndarray] = []
    accs: list[np.ndarray] = []
    words = stream.ensure(_MANY_WINDOW + 64)
    shifted: dict[int, np.ndarray] = {}
    usable: list[tuple[int, FastDetector, list[str], list]] = []
    new: set[str] = set()
    for k, det in enumerate(detectors):
        if (
            det.verbose
            or det._random is not None
            or det.seed != first_det.seed
            or det.prior_map is not None
            or det.n_trial != first_det.n_trial
            or det.alpha != first_det.alpha
            or len(det.langlist) != nlang
            or det._factory is not first_det._factory
        ):
            continue
        det.cleaning_text()
        tokens = det._tokens()
        cached = det._cached_parts(model, tokens)
        if None in cached:
            new.update(t for t, p in zip(tokens, cached) if p is None)
        usable.append((k, det, tokens, cached))
    if len(new) >= _MIN_FILL:  # the words no text of the batch had met yet: their rows in bulk
        model.fill(new)
    for k, det, tokens, cached in usable:
        rows = det._rows_of(model, tokens, cached)
        n = len(rows)
        if not n:
            continue  # get_probabilities() raises CantDetectError, as langdetect does
        bits = n.bit_length()
        values = shifted.get(bits)
        if values is None:
            values = shifted[bits] = words[:_MANY_WINDOW] >> np.uint32(32 - bits)
        accepted = np.flatnonzero(values < n)
        todo.append(k)
        accs.append(accepted)
        parts.append(rows[values[accepted]])
    m = len(todo)
    if not m:
        return out
    matrix = model.matrix  # after every extraction: holds every row
    sizes = np.fromiter((len(a) for a in accs), dtype=np.int64, count=m)
    off = np.zeros(m, dtype=np.int64)
    np.cumsum(sizes[:-1], out=off[1:])
    end = off + sizes
    all_chosen = np.concatenate(parts)
    all_acc = np.concatenate(accs)

    n_trial = first_det.n_trial
    alpha0 = first_det.alpha
    alpha_width = first_det.ALPHA_WIDTH
    base_freq = first_det.BASE_FREQ
    conv_threshold = first_det.CONV_THRESHOLD
    iteration_limit = first_det.ITERATION_LIMIT
    init_prob = np.array(first_det._init_probability(), dtype=np.float64)
    prob = np.empty((m, nlang), dtype=np.float64)
    langprob = np.zeros((m, nlang), dtype=np.float64)
    weight = np.empty(m, dtype=np.float64)
    nxt = np.empty(m, dtype=np.int64)  # index in all_chosen of the next draw
    it = np.full(m, -1, dtype=np.int64)  # iteration index of the last check (-1: none yet)
    trial = [0] * m
    gauss_next: list[float | None] = [None] * m
    failed = np.zeros(m, dtype=bool)

    def start_trial(j: int, pos: int) -> None:
        z = gauss_next[j]
        gauss_next[j] = None
        if z is None:
            x2pi = _random_at(words, pos) * _TWOPI
            g2rad = math.sqrt(-2.0 * math.log(1.0 - _random_at(words, pos + 2)))
            pos += 4
            z = math.cos(x2pi) * g2rad
            gauss_next[j] = math.sin(x2pi) * g2rad
        alpha = alpha0 + (0.0 + z * 1.0) * alpha_width
        weight[j] = alpha / base_freq
        o = int(off[j])
        nxt[j] = o + int(np.searchsorted(all_acc[o : int(end[j])], pos))
        it[j] = -1
        prob[j] = init_prob

    for j in range(m):
        start_trial(j, 0)
    active = np.arange(m)
    steps = np.arange(5)
    while len(active) >= _MANY_MIN_ACTIVE:
        a_nxt = nxt[active]
        over = a_nxt + 5 > end[active]
        if over.any():
            failed[active[over]] = True
            active = active[~over]
            continue
        a_it = it[active]
        factors = matrix[all_chosen[a_nxt[:, None] + steps]]  # (A, 5, nlang)
        factors += weight[active][:, None, None]
        single = a_it < 0
        if single.any():
            factors[single, 1:, :] = 1.0
        p = prob[active]
        for s in range(5):
            p *= factors[:, s, :]
        sump = np.add.accumulate(p, axis=1)[:, -1]
        if not ((sump > 0.0) & (sump < _INF)).all():  # only with a user alpha <= 0
            failed[active] = True
            break
        maxp = p.max(axis=1) / sump
        np.divide(p, sump[:, None], out=p)
        prob[active] = p
        consumed = np.where(single, 1, 5)
        a_it = a_it + consumed
        it[active] = a_it
        a_nxt = a_nxt + consumed
        nxt[active] = a_nxt
        done = (maxp > conv_threshold) | (a_it >= iteration_limit)
        if done.any():
            keep = np.ones(len(active), dtype=bool)
            for q in np.flatnonzero(done).tolist():
                j = int(active[q])
                langprob[j] += prob[j] / n_trial
                trial[j] += 1
                if trial[j] >= n_trial:
                    keep[q] = False
                else:
                    start_trial(j, int(all_acc[int(a_nxt[q]) - 1]) + 1)
            active = active[keep]
    failed[active] = True
    for j, k in enumerate(todo):
        if not failed[j]:
            out[k] = langprob[j].tolist()
    return out
