"""The line model's features (``tasks.stages.linefeatures.LINE_FEATURES``) of a whole batch of lines at once.

``line_features_batch`` returns, for tens of thousands of lines, exactly (bit for bit) the rows
``tasks.stages.linefeatures._line_vector`` gives one line at a time, several times faster: the samples
(first ``_SAMPLE_CHARS`` characters) of all lines are joined with "\\n" into one array of UTF-16
code units, and every feature is a few array operations over that array:

* character classes from lookup tables built once from Python's own ``str`` methods (``isspace``
  as ``str.split`` uses it, ``isdigit``, ``isupper``/``islower``/``istitle`` of one character,
  the one-character lower-case mapping);
* tokens are the runs of non-space code units (``str.split()``); per-token counts (digits,
  capitals, title-case violations, following CPython's ``isdigit``/``isupper``/``istitle``) with
  ``np.add.reduceat`` over token starts, per-line counts with ``np.bincount``;
* word lists (the document's function words, ``CHROME_WORDS``, ``ADDRESS_WORDS``): a polynomial
  hash (uint64, wrapping) of each lower-cased token, looked up among the hashes of the words,
  every hit verified character by character (exact: a collision can only cost a comparison);
  ``_FORMAL_ADDRESS`` (case-sensitive, short ASCII words) by direct comparison;
* punctuation features (sentence breaks, separators, commas, "@", "http", "www.", dates) from
  the sparse positions of the few characters that matter, and their neighbours.

Regular expressions that are hard to reproduce exactly (``_DATE``, ``_STARTS_DATE``, ``_DOMAIN``,
``_LIST_MARKER``, chains of separators) run per line, on the few lines that pass a necessary
condition. Lines longer than the sample get their whole-line features (spaces, commas, how the
line ends) in Python. Lines whose sample holds a character the tables cannot reproduce (beyond
U+FFFF, or lone surrogates; "İ", whose lower case is two characters; "Σ", lower-cased by context)
are computed by ``_line_vector`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .linefeatures import (
    _CLOSERS,
    _DATE,
    _DIGIT,
    _FORMAL_ADDRESS,
    _LIST_MARKER,
    _SAMPLE_CHARS,
    _STARTS_DATE,
    _TERMINALS,
    _TRUNCATED_ENDS,
    ADDRESS_WORDS,
    CHROME_WORDS,
    COMPILED_MIN_ROWS,
    LINE_FEATURES,
    _has_url,
    _log1p_of,
    _line_vector,
    _SEPARATOR,
)

__all__ = ["line_features_batch"]

_NF = len(LINE_FEATURES)
_BMP = 0x10000

# ---------------------------------------------------------------------------------------------
# Character tables (one entry per UTF-16 code unit)

# sparse-position flags
_F_BREAK = 1 << 1  # [.!?…] followed by " " is a sentence break
_F_SEPMID = 1 << 2  # the middle of " · " etc.
_F_PIPE = 1 << 3
_F_COMMA = 1 << 4
_F_AT = 1 << 5
_F_DATEDELIM = 1 << 6  # [./-:] after a digit: a date or a time may start there
_F_DOT = 1 << 7  # "www." and domain names
_F_H = 1 << 8  # lower case "h": "http"
_F_FALLBACK = 1 << 9  # computed by _line_vector


def _build_tables():
    chars = [chr(c) for c in range(_BMP)]
    space = np.fromiter((c.isspace() for c in chars), dtype=bool, count=_BMP)
    lower = np.fromiter((ord(c.lower()) if len(c.lower()) == 1 else 0 for c in chars), dtype=np.uint64, count=_BMP)
    digit = np.fromiter((c.isdigit() for c in chars), dtype=bool, count=_BMP)
    decimal = np.fromiter((c.isdecimal() or c.isdigit() for c in chars), dtype=bool, count=_BMP)
    # CPython: isupper = no ISLOWER/ISTITLE character and at least one ISUPPER; istitle = upper or
    # title-case characters (UT) only after uncased ones, lower-case ones (LO) only after cased ones
    upper = np.fromiter((c.isupper() for c in chars), dtype=bool, count=_BMP)
    bad = np.fromiter((not (c + "A").isupper() for c in chars), dtype=bool, count=_BMP)  # ISLOWER or ISTITLE
    ut = np.fromiter((c.istitle() for c in chars), dtype=bool, count=_BMP)  # one character: ISTITLE or ISUPPER
    lo = np.fromiter((c.islower() for c in chars), dtype=bool, count=_BMP) & ~ut
    assert not (upper & bad).any()  # a one-character token's isupper() is then the loop's verdict too
    # packed per-token counters (8 bits each; a token has at most _SAMPLE_CHARS characters)
    weight = (~digit).astype(np.uint32) | (upper.astype(np.uint32) << 8) | (bad.astype(np.uint32) << 16)
    weight[space] = 0
    cls = np.where(ut, 2, np.where(lo, 1, 0)).astype(np.uint8)
    # title-case violations by (class of this character, class of the previous one)
    violation = np.zeros(9, dtype=np.uint32)
    violation[2 * 3 + 1] = violation[2 * 3 + 2] = 1 << 24  # UT after a cased character
    violation[1 * 3 + 0] = 1 << 24  # LO after an uncased one
    hash_value = lower.copy()
    hash_value[space] = 0
    flags = np.zeros(_BMP, dtype=np.uint16)
    for c in ".!?…":
        flags[ord(c)] |= _F_BREAK
    for c in "·•/>»›–—":
        flags[ord(c)] |= _F_SEPMID
    flags[ord("|")] |= _F_PIPE
    flags[ord(",")] |= _F_COMMA
    flags[ord("@")] |= _F_AT
    for c in "./-:":
        flags[ord(c)] |= _F_DATEDELIM
    flags[ord(".")] |= _F_DOT
    flags[lower == ord("h")] |= _F_H
    flags[0xD800:0xE000] |= _F_FALLBACK  # beyond U+FFFF (surrogate pairs) or lone surrogates
    flags[[c for c in range(_BMP) if len(chars[c].lower()) != 1]] |= _F_FALLBACK
    flags[0x03A3] |= _F_FALLBACK  # Σ: str.lower() gives ς at the end of a word
    return space, hash_value, digit, decimal, weight, cls, violation, flags


_SPACE, _HASH_VALUE, _DIGIT_T, _DECIMAL_T, _WEIGHT, _CLS, _VIOLATION, _FLAGS = _build_tables()
_LOWER = _HASH_VALUE  # lower-case code unit (0 for spaces, never looked at inside a token)
_TERMINAL_T = np.zeros(_BMP, dtype=bool)
_TERMINAL_T[[ord(c) for c in _TERMINALS]] = True
_CLOSER_T = np.zeros(_BMP, dtype=bool)
_CLOSER_T[[ord(c) for c in _CLOSERS]] = True
_TRUNC_LAST_T = np.zeros(_BMP, dtype=bool)  # last characters of _TRUNCATED_ENDS
_TRUNC_LAST_T[[ord(e[-1]) for e in _TRUNCATED_ENDS]] = True
_TRUNC_PREV_T = np.zeros(_BMP, dtype=bool)  # their second-to-last characters
_TRUNC_PREV_T[[ord(e[-2]) for e in _TRUNCATED_ENDS if len(e) > 1]] = True
assert all(len(e) == 1 or e[-1] != "…" for e in _TRUNCATED_ENDS) and "…" in _TRUNCATED_ENDS
_MARKER_T = np.zeros(_BMP, dtype=bool)  # a _LIST_MARKER match starts with one of these (or digits)
_MARKER_T[[ord(c) for c in "-–—•*·▪►✓✔→"]] = True
_DOT_PAREN_T = np.zeros(_BMP, dtype=bool)
_DOT_PAREN_T[[ord("."), ord(")")]] = True
_DOT_SPACE_T = np.zeros(_BMP, dtype=bool)
_DOT_SPACE_T[[ord("."), ord(" ")]] = True
_DOMAIN_NEXT_T = np.zeros(_BMP, dtype=bool)  # lower-case first letters after the dot of _DOMAIN
_DOMAIN_NEXT_T[[ord(c) for c in "condfeihp"]] = True
_SP, _NL, _COLON, _ELLIPSIS = ord(" "), ord("\n"), ord(":"), ord("…")

# ---------------------------------------------------------------------------------------------
# Hashes of words

_BASES = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
_MASK = (1 << 64) - 1
_BUCKET_BITS = 12  # buckets of the hash index: ~4k, small enough to stay in cache


class _Vocabulary:
    """Every word looked up so far (chrome, address and the function-word lists seen), with the
    hash of each (all distinct: the base changes if two words collide) and its code units."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.ids: dict[str, int] = {}
        self.sets: dict[frozenset[str], np.ndarray] = {}
        self.base_index = 0
        self._index = None
        self.chrome = self.add(CHROME_WORDS)
        self.address = self.add(ADDRESS_WORDS)

    def add(self, words) -> np.ndarray:
        out = []
        for w in words:
            # a token is non-empty, has no space and no more than _SAMPLE_CHARS code units
            units = len(w.encode("utf-16-le", "surrogatepass")) // 2
            if not w or units > _SAMPLE_CHARS or any(c.isspace() for c in w):
                continue
            i = self.ids.get(w)
            if i is None:
                i = self.ids[w] = len(self.words)
                self.words.append(w)
                self._index = None
            out.append(i)
        return np.array(sorted(out), dtype=np.int64)

    def stop_ids(self, stop: frozenset[str]) -> np.ndarray:
        ids = self.sets.get(stop)
        if ids is None:
            if len(self.sets) > 64:
                self.sets.clear()
            ids = self.sets[stop] = self.add(stop)
        return ids

    def index(self):
        """(base, sorted hashes, word id of each, code units matrix, lengths)."""
        if self._index is None:
            units = [np.frombuffer(w.encode("utf-16-le", "surrogatepass"), dtype=np.uint16) for w in self.words]
            lengths = np.array([len(u) for u in units], dtype=np.int64)
            width = int(lengths.max())
            columns = np.zeros((width, len(units)), dtype=np.uint64)  # columns[j][w]: code unit j of word w
            for i, u in enumerate(units):
                columns[: len(u), i] = u
            while True:
                base = _BASES[self.base_index % len(_BASES)] + 2 * (self.base_index // len(_BASES))
                hashes = np.array([_hash_units(u, base) for u in units], dtype=np.uint64)
                if len(np.unique(hashes)) == len(hashes):
                    break
                self.base_index += 1
            order = np.argsort(hashes, kind="stable")
            hashes = hashes[order]
            tops = np.arange(1 << _BUCKET_BITS, dtype=np.uint64) << np.uint64(64 - _BUCKET_BITS)
            bucket_start = np.append(np.searchsorted(hashes, tops), len(hashes))
            bucket_size = np.diff(bucket_start).astype(np.int32)
            is_chrome = np.zeros(len(self.words), dtype=bool)
            is_chrome[self.chrome] = True
            is_address = np.zeros(len(self.words), dtype=bool)
            is_address[self.address] = True
            self._index = (
                base, hashes, order.astype(np.int64), columns, lengths, bucket_start[:-1], bucket_size, is_chrome,
                is_address,
            )
        return self._index


def _hash_units(units: np.ndarray, base: int) -> int:
    h, p = 0, 1
    for u in units.tolist():
        h = (h + u * p) & _MASK
        p = (p * base) & _MASK
    return h


_VOCAB: _Vocabulary | None = None
_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _powers(base: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(base**j, base**-j) mod 2**64 for j < n."""
    cached = _POWERS.get(base)
    if cached is None or len(cached[0]) < n:
        size = max(n, 1 << 16, 2 * len(cached[0]) if cached else 0)
        cached = _POWERS[base] = (_power_table(base, size), _power_table(pow(base, -1, 1 << 64), size))
    return cached


def _power_table(base: int, size: int) -> np.ndarray:
    """base**j mod 2**64 for j < size: (base**4096)**k * base**j, one product per entry."""
    block = 4096
    with np.errstate(over="ignore"):
        low = np.full(block, base, dtype=np.uint64)
        low[0] = 1
        high = np.full(size // block + 1, pow(base, block, 1 << 64), dtype=np.uint64)
        high[0] = 1
        return (np.cumprod(high, dtype=np.uint64)[:, None] * np.cumprod(low, dtype=np.uint64)[None, :]).ravel()[:size]


# ---------------------------------------------------------------------------------------------


def _distinct_per_line(lines: np.ndarray, words: np.ndarray, n: int) -> np.ndarray:
    """How many distinct words each line has among the (line, word) hits."""
    if len(lines) == 0:
        return np.zeros(n, dtype=np.int64)
    keys = np.unique(lines * (int(words.max()) + 1) + words)
    return np.bincount(keys // (int(words.max()) + 1), minlength=n)


def line_features_batch(
    lines: Sequence[str], doc_index: np.ndarray, doc_stop: Sequence[frozenset[str] | None], repeated: np.ndarray,
    compiled: bool | None = None,
) -> np.ndarray:
    """The line model's features of many lines at once: a float64 array of shape
    ``(len(lines), len(LINE_FEATURES))`` whose row ``i`` is exactly
    ``_line_vector(lines[i], s, s.lower(), s.split(), s.lower().split(), doc_stop[doc_index[i]], bool(repeated[i]))``
    with ``s = lines[i][:_SAMPLE_CHARS]``.

    ``lines``: stripped lines without "\\n"; ``doc_index[i]``: the document of line ``i``, an index
    into ``doc_stop`` (that document's function words, ``None`` for an unknown language);
    ``repeated[i]``: whether the line occurs elsewhere in its document.
    The array is in Fortran order (one contiguous column per feature); ``np.ascontiguousarray``
    if rows are wanted contiguous. Not thread-safe on first use (builds a shared word index).
    ``compiled``: the per-character counts by one compiled pass (``tasks.stages.linekernels.scan_kernel``)
    rather than array passes (``_scan_numpy``); the same numbers either way (tests). By default,
    compiled for ``linefeatures.COMPILED_MIN_ROWS`` lines or more.
    """
    global _VOCAB
    n = len(lines)
    if n == 0:
        return np.zeros((0, _NF), dtype=np.float64)
    if _VOCAB is None:
        _VOCAB = _Vocabulary()
    vocab = _VOCAB
    doc_index = np.asarray(doc_index, dtype=np.int64)
    repeated = np.asarray(repeated, dtype=bool)

    lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    long_lines = np.flatnonzero(lens > _SAMPLE_CHARS).tolist()
    samples = list(lines)
    for i in long_lines:
        samples[i] = lines[i][:_SAMPLE_CHARS]
    joined = "\n" + "\n".join(samples) + "\n"
    u = np.frombuffer(joined.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    total = len(u)
    bounds = np.flatnonzero(u == _NL)
    if len(bounds) != n + 1:
        raise ValueError("lines must not contain a newline")
    first = bounds[:-1] + 1  # first code unit of each sample
    end = bounds[1:]  # one past its last
    short = lens <= _SAMPLE_CHARS

    # --- the documents' function-word lists (slots of a membership table)
    slots = {}
    doc_slot = np.zeros(len(doc_stop), dtype=np.int64)
    stop_ids = []
    for d, stop in enumerate(doc_stop):
        if stop is None:
            doc_slot[d] = -1
            continue
        k = slots.get(id(stop))
        if k is None:
            k = slots[id(stop)] = len(stop_ids)
            stop_ids.append(vocab.stop_ids(stop))
        doc_slot[d] = k
    member = np.zeros((max(len(stop_ids), 1), len(vocab.words)), dtype=bool)
    for k, ids in enumerate(stop_ids):
        member[k, ids] = True
    if compiled is None:
        compiled = n >= COMPILED_MIN_ROWS
    scan = _scan_compiled if compiled else _scan_numpy
    (n_tokens_raw, digits, caps, titles, stop_count, chrome, address, spaces, commas, breaks, separators, chained, url,
     url_check, fallback, date_lines, date_from) = scan(u, bounds, first, doc_index, doc_slot, member, vocab)
    n_tokens = np.maximum(n_tokens_raw, 1)

    # --- first and last characters
    first_char = u[first]
    second_char = u[np.minimum(first + 1, total - 1)]  # "\n" after a one-character sample
    third_char = u[np.minimum(first + 2, total - 1)]
    starts_digit = _DIGIT_T[first_char] & (end > first)
    # necessary for _LIST_MARKER: a marker and a space, or one or two digits and "." or ")"
    number = _DECIMAL_T[first_char] & (_DOT_PAREN_T[second_char] | (_DECIMAL_T[second_char] & _DOT_PAREN_T[third_char]))
    marker_check = (_MARKER_T[first_char] & _SPACE[second_char]) | number
    # necessary for _STARTS_DATE: one or two digits, then "." or " "
    date_start = _DECIMAL_T[first_char] & (_DOT_SPACE_T[second_char] | (_DECIMAL_T[second_char] & _DOT_SPACE_T[third_char]))
    starts_digit_date = starts_digit & date_start
    last_char = u[end - 1]
    prev_char = u[np.maximum(end - 2, 0)]
    colon_end = last_char == _COLON
    terminal = _TERMINAL_T[last_char]
    truncated = last_char == _ELLIPSIS
    trunc_check = _TRUNC_LAST_T[last_char] & _TRUNC_PREV_T[prev_char] & ~truncated
    closer_check = _CLOSER_T[last_char]

    # --- per line, in Python: long lines' whole-line features, and the few candidates
    # (comprehensions, then one assignment per feature: no per-item numpy indexing)
    spaces = spaces.astype(np.int64)
    commas = commas.astype(np.int64)
    if long_lines:
        whole = [lines[i] for i in long_lines]
        spaces[long_lines] = [line.count(" ") for line in whole]
        commas[long_lines] = [line.count(",") for line in whole]
        colon_end[long_lines] = [line.endswith(":") for line in whole]
        truncated[long_lines] = [line.endswith(_TRUNCATED_ENDS) for line in whole]
        terminal[long_lines] = [line.rstrip(_CLOSERS)[-1:] in _TERMINALS for line in whole]
    some = np.flatnonzero(closer_check & short)
    terminal[some] = [lines[i].rstrip(_CLOSERS)[-1:] in _TERMINALS for i in some.tolist()]
    some = np.flatnonzero(trunc_check & short)
    truncated[some] = [lines[i].endswith(_TRUNCATED_ENDS) for i in some.tolist()]
    some = np.flatnonzero(url_check & ~url)
    url[some] = [_has_url(samples[i], samples[i].lower()) for i in some.tolist()]
    date = np.zeros(n, dtype=bool)
    date[date_lines] = [
        _DIGIT.search(samples[i]) is not None and _DATE.search(samples[i], start) is not None
        for i, start in zip(date_lines, date_from)
    ]
    list_marker = np.zeros(n, dtype=bool)
    some = np.flatnonzero(marker_check)
    list_marker[some] = [_LIST_MARKER.match(lines[i]) is not None for i in some.tolist()]
    starts_date = np.zeros(n, dtype=bool)
    some = np.flatnonzero(starts_digit_date)
    starts_date[some] = [_STARTS_DATE.match(lines[i]) is not None for i in some.tolist()]
    separators[chained] = [len(_SEPARATOR.findall(samples[i])) for i in chained.tolist()]

    # --- the matrix
    log_chars = _log1p_of(lens)
    log_words = _log1p_of(spaces + 1)
    has_stop = doc_slot[doc_index] >= 0
    stop_ratio = np.where(has_stop, stop_count / n_tokens, 0.0)
    title = caps + digits + titles

    features = np.empty((_NF, n), dtype=np.float64)
    features[0] = 1.0
    features[1] = log_chars
    features[2] = log_words
    features[3] = stop_ratio
    features[4] = stop_ratio * np.minimum(log_words, 3.0)
    features[5] = ~has_stop
    features[6] = terminal
    features[7] = colon_end
    features[8] = np.minimum(breaks, 3)
    features[9] = np.minimum(commas, 4)
    features[10] = truncated
    features[11] = digits / n_tokens
    features[12] = caps / n_tokens
    features[13] = np.where(title < n_tokens, title / n_tokens, 1.0)
    features[14] = url
    features[15] = np.minimum(separators, 3)
    features[16] = list_marker
    features[17] = date
    features[18] = repeated
    features[19] = chrome / n_tokens
    features[20] = (chrome > 0) & (lens < 80)
    features[21] = address / n_tokens
    features[22] = starts_digit
    features[23] = starts_digit & starts_date
    features[24] = lens < 10
    features[25] = lens < 20
    features[26] = lens < 40
    features[27] = lens < 80
    features[28] = lens < 150
    features[29] = lens >= 300

    out = features.T  # (n, features), Fortran order
    for i in np.flatnonzero(fallback).tolist():
        line = lines[i]
        s = samples[i]
        lower = s.lower()
        stop = doc_stop[doc_index[i]]
        out[i] = _line_vector(line, s, lower, s.split(), lower.split(), stop, bool(repeated[i]))
    return out


def _scan_numpy(u, bounds, first, doc_index, doc_slot, member, vocab):
    """The per-line counts that need the code units (tokens, word lists, punctuation), as array
    passes over the joined samples ``u`` (the reference of ``_scan_compiled``)."""
    n = len(bounds) - 1
    total = len(u)
    # --- tokens
    space = _SPACE.take(u)
    token_start = np.flatnonzero(space[:-1] & ~space[1:]) + 1
    token_end = np.flatnonzero(~space[:-1] & space[1:]) + 1
    n_tokens_raw = np.diff(np.searchsorted(token_start, bounds))
    token_line = np.repeat(np.arange(n), n_tokens_raw)
    n_tokens = np.maximum(n_tokens_raw, 1)
    token_len = token_end - token_start

    # per-token counters: non-digits, upper, lower/title, cased, title-case violations
    cls = _CLS.take(u)
    counters = _WEIGHT.take(u)
    counters[1:] += _VIOLATION.take(cls[1:] * np.uint8(3) + cls[:-1])
    sums = np.add.reduceat(counters, token_start) if len(token_start) else np.zeros(0, dtype=np.uint32)
    nondigit = sums & 0xFF
    upper = (sums >> 8) & 0xFF
    bad = (sums >> 16) & 0xFF
    violations = sums >> 24
    is_digit = nondigit == 0
    is_upper = (bad == 0) & (upper > 0)
    is_title = (violations == 0) & ((upper | bad) > 0)  # at least one cased character
    digits = np.bincount(token_line, weights=is_digit, minlength=n)
    caps = np.bincount(token_line, weights=is_upper, minlength=n)
    titles = np.bincount(token_line, weights=is_title, minlength=n)

    # --- word lists: hash of each lower-cased token, verified on hits
    base, hashes, word_of, columns, word_len, bucket_start, bucket_size, is_chrome, is_address = vocab.index()
    powers, inverses = _powers(base, total)
    lowered = _HASH_VALUE.take(u)
    with np.errstate(over="ignore"):
        h = np.add.reduceat(lowered * powers[:total], token_start) if len(token_start) else np.zeros(0, np.uint64)
        h *= inverses[token_start]
    # buckets by the top bits of the hash: almost all hold at most one word
    bucket = (h >> np.uint64(64 - _BUCKET_BITS)).astype(np.intp)
    size = bucket_size[bucket]
    single = np.flatnonzero(size == 1)
    pos_single = bucket_start[bucket[single]]
    found = hashes[pos_single] == h[single]
    single, pos_single = single[found], pos_single[found]
    multi = np.flatnonzero(size > 1)
    pos_multi = np.minimum(np.searchsorted(hashes, h[multi]), len(hashes) - 1)
    found = hashes[pos_multi] == h[multi]
    cand = np.concatenate([single, multi[found]])
    words = word_of[np.concatenate([pos_single, pos_multi[found]])]
    # verified code unit by code unit (longest first: column j compares the tokens longer than j)
    length = token_len[cand]
    keep = word_len[words] == length
    order = np.argsort(-length[keep], kind="stable")
    cand, words, length = cand[keep][order], words[keep][order], length[keep][order]
    starts = token_start[cand]
    wrong = np.zeros(len(cand), dtype=bool)
    longer = np.searchsorted(-length, -np.arange(int(length[0]) if len(cand) else 0), side="left")
    for j, m in enumerate(longer.tolist()):  # m: tokens longer than j
        wrong[:m] |= lowered[starts[:m] + j] != columns[j][words[:m]]
    hit_token, hit_word = cand[~wrong], words[~wrong]
    hit_line = token_line[hit_token]

    hit_slot = doc_slot[doc_index[hit_line]]
    is_stop = (hit_slot >= 0) & member[np.maximum(hit_slot, 0), hit_word]
    stop_count = np.bincount(hit_line[is_stop], minlength=n)
    sel = is_chrome[hit_word]
    chrome = _distinct_per_line(hit_line[sel], hit_word[sel], n)
    sel = is_address[hit_word]
    address = _distinct_per_line(hit_line[sel], hit_word[sel], n)

    # _FORMAL_ADDRESS among tokens[1:] (case-sensitive, ASCII words of 3 to 5 letters)
    formal_words = sorted(_FORMAL_ADDRESS)
    f_width = max(map(len, formal_words))
    f_matrix = np.zeros((len(formal_words), f_width), dtype=np.uint16)
    for k, w in enumerate(formal_words):
        f_matrix[k, : len(w)] = [ord(c) for c in w]
    f_len = np.array([len(w) for w in formal_words])
    initials = np.zeros(_BMP, dtype=bool)
    initials[[ord(w[0]) for w in formal_words]] = True
    not_first = np.zeros(len(token_start), dtype=bool)
    not_first[1:] = token_line[1:] == token_line[:-1]
    fc = np.flatnonzero(initials[u[token_start]] & not_first & (token_len >= f_len.min()) & (token_len <= f_width))
    if len(fc):
        fidx = np.minimum(token_start[fc][:, None] + np.arange(f_width), total - 1)
        chars = u[fidx]
        fcols = np.arange(f_width)
        eq = ((chars[:, None, :] == f_matrix[None, :, :]) | (fcols >= f_len[None, :, None])).all(axis=2)
        eq &= token_len[fc][:, None] == f_len[None, :]
        ti, wi = np.nonzero(eq)
        address += _distinct_per_line(token_line[fc[ti]], wi.astype(np.int64), n)

    # --- sparse punctuation
    flags = _FLAGS.take(u)
    sp_pos = np.flatnonzero(flags)
    sp_flags = flags[sp_pos]
    sp_line = np.repeat(np.arange(n), np.diff(np.searchsorted(sp_pos, bounds)))
    nxt = u[np.minimum(sp_pos + 1, total - 1)]
    prv = u[sp_pos - 1]  # position 0 is "\n", never flagged

    fallback = np.zeros(n, dtype=bool)
    fallback[sp_line[(sp_flags & _F_FALLBACK) != 0]] = True

    spaces = np.add.reduceat((u == _SP).view(np.int8), bounds[:-1], dtype=np.int64)
    commas = np.bincount(sp_line[(sp_flags & _F_COMMA) != 0], minlength=n)
    breaks = np.bincount(sp_line[((sp_flags & _F_BREAK) != 0) & (nxt == _SP)], minlength=n)
    triple = ((sp_flags & _F_SEPMID) != 0) & (nxt == _SP) & (prv == _SP)
    triple_pos = sp_pos[triple]
    separators = np.bincount(sp_line[triple], minlength=n) + np.bincount(sp_line[(sp_flags & _F_PIPE) != 0], minlength=n)
    chained = np.unique(sp_line[triple][1:][np.diff(triple_pos) == 2]) if len(triple_pos) > 1 else np.zeros(0, np.int64)

    url = np.zeros(n, dtype=bool)
    url[sp_line[(sp_flags & _F_AT) != 0]] = True
    hp = sp_pos[(sp_flags & _F_H) != 0]
    if len(hp):
        w = _LOWER[u[np.minimum(hp[:, None] + np.arange(1, 4), total - 1)]]
        http = (w[:, 0] == ord("t")) & (w[:, 1] == ord("t")) & (w[:, 2] == ord("p"))
        url[sp_line[(sp_flags & _F_H) != 0][http]] = True
    dots = (sp_flags & _F_DOT) != 0
    dp = sp_pos[dots]
    url_check = np.zeros(n, dtype=bool)
    if len(dp):
        w = _LOWER[u[np.maximum(dp[:, None] - np.arange(1, 4), 0)]]
        www = (w[:, 0] == ord("w")) & (w[:, 1] == ord("w")) & (w[:, 2] == ord("w"))
        url[sp_line[dots][www]] = True
        url_check[sp_line[dots][_DOMAIN_NEXT_T[_LOWER[nxt[dots]]]]] = True
    # a date or a time has a delimiter between digits; its match starts at most 4 code units before
    # the first such delimiter of the line (searching from there, \b still sees the character before)
    delim = ((sp_flags & _F_DATEDELIM) != 0) & _DECIMAL_T[prv] & _DECIMAL_T[nxt]
    date_line = sp_line[delim]
    date_first = np.ones(len(date_line), dtype=bool)
    date_first[1:] = date_line[1:] != date_line[:-1]
    date_lines = date_line[date_first].tolist()
    date_from = np.maximum(sp_pos[delim][date_first] - first[date_line[date_first]] - 4, 0).tolist()
    return (n_tokens_raw, digits, caps, titles, stop_count, chrome, address, spaces, commas, breaks, separators,
            chained, url, url_check, fallback, date_lines, date_from)


_FORMAL_WORDS = sorted(_FORMAL_ADDRESS)
_FORMAL_MATRIX = np.zeros((len(_FORMAL_WORDS), max(map(len, _FORMAL_WORDS))), dtype=np.uint16)
for _k, _w in enumerate(_FORMAL_WORDS):
    _FORMAL_MATRIX[_k, : len(_w)] = [ord(c) for c in _w]
_FORMAL_LEN = np.array([len(w) for w in _FORMAL_WORDS], dtype=np.int64)
_UPPER_T = (_WEIGHT >> 8) & 1 != 0
_BAD_T = (_WEIGHT >> 16) & 1 != 0
_NONDIGIT_T = (_WEIGHT & 1 != 0) | _SPACE  # weight 0 for spaces, never inside a token


def _scan_compiled(u, bounds, first, doc_index, doc_slot, member, vocab):
    """``_scan_numpy``'s counts by one pass over the code units (``tasks.stages.linekernels.scan_kernel``)."""
    from .linekernels import scan_kernel

    n = len(bounds) - 1
    base, hashes, word_of, columns, word_len, bucket_start, bucket_size, is_chrome, is_address = vocab.index()
    line_slot = doc_slot[doc_index]
    counts = np.zeros((n, 16), dtype=np.int64)
    scan_kernel(
        u, bounds, line_slot, _SPACE, _HASH_VALUE, _NONDIGIT_T, _UPPER_T, _BAD_T, _CLS, _FLAGS, _DECIMAL_T, _DOMAIN_NEXT_T,
        np.uint64(base), np.uint64(64 - _BUCKET_BITS), hashes, word_of, np.ascontiguousarray(columns.T), word_len,
        bucket_start.astype(np.int64), bucket_size.astype(np.int64), member, is_chrome, is_address, _FORMAL_MATRIX,
        _FORMAL_LEN, counts,
    )
    c = counts.T
    date_lines = np.flatnonzero(c[15] >= 0)
    return (
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10].copy(), np.flatnonzero(c[11]), c[12] != 0,
        c[13] != 0, c[14] != 0, date_lines.tolist(), c[15][date_lines].tolist(),
    )
