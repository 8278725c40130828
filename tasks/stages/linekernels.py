"""Compiled loops (numba) of the boilerplate stage's hot paths, each equal bit for bit to its
numpy/Python reference (kept beside it and compared in the tests).

* ``gaps_kernel``: the article gaps of every page of a decision chunk
  (``linefeatures.fill_article_gaps``, per page in Python for small chunks).
* ``language_lines_kernel``: the lines whose words pick each document's language
  (``linefeatures.document_language_evidence_many``), for all the documents of a batch at once.
* ``context_kernel``: the context model's features of many documents
  (``linefeatures.context_matrix_many``): windows, main block (Kadane), smoothing
  (Viterbi), segments, core, runs and distances in one pass per document instead of ~40 array
  passes plus Python loops per document. Floats are computed with the same operations in the
  same order as the reference (numba without ``fastmath``: IEEE, no contraction), and the only
  transcendental inputs (the sigmoid ``p``, ``log1p``) are computed by numpy / taken from the
  same table outside the kernel, so the features are identical, not merely close.

Compiled once per machine (``cache=True``: ``__pycache__`` beside this file); a process that finds
the cache loads the machine code instead of compiling.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# column indices of linefeatures.CONTEXT_FEATURES (checked by the tests)
_BIAS, _Z, _PREV1, _NEXT1, _PREV3, _NEXT3, _AROUND7, _IN_BLOCK, _LOG_BLOCK_DISTANCE, _MIN_NEIGHBOUR = range(10)
(_POSITION, _IN_SEGMENT, _BEST_SEGMENT, _SEGMENT_SHARE, _LOG_SEGMENT_LINES, _TOP2_SEGMENT, _LOG_GOOD_BEFORE,
 _LOG_GOOD_AFTER, _MASS_BEFORE, _MASS_AFTER) = range(10, 20)
(_RULE_PREV, _RULE_NEXT, _RULES_NEAR, _SHORT, _SHORT_X_MIN_NEIGHBOUR, _SHORT_X_PREV1, _SHORT_X_NEXT1,
 _SHORT_X_IN_BLOCK, _LOG_SHORT_RUN, _IN_CORE) = range(20, 30)
N_CONTEXT = 30


@njit(cache=True, nogil=True)
def context_kernel(z, p, lw, short, rule_prev, rule_next, rules_near, starts, ends, log1p_table, short_weight,
                   emission_floor, switch_cost, core_share, X):
    """Fill ``X`` (rows x N_CONTEXT, zeros) with the context features of the documents whose rows
    are [starts[d], ends[d]). ``p`` is the sigmoid of ``z`` (numpy's), ``log1p_table[k]`` is
    log1p(k) for every k up to the longest document."""
    n_docs = len(starts)
    # scratch, sized for the longest document
    longest = 0
    for d in range(n_docs):
        if ends[d] - starts[d] > longest:
            longest = ends[d] - starts[d]
    back0 = np.empty(longest, np.int8)
    back1 = np.empty(longest, np.int8)
    states = np.empty(longest, np.int8)
    evidence = np.empty(longest, np.float64)
    seg_start = np.empty(longest + 1, np.int64)
    seg_mass = np.empty(longest + 1, np.float64)
    w = np.zeros(15, np.float64)  # w[k + 7]: p of the line k rows away
    for d in range(n_docs):
        a = starts[d]
        b = ends[d]
        m = b - a
        if m <= 0:
            continue
        # windows over p, zero past the document's edges
        for j in range(m):
            r = a + j
            for k in range(-7, 8):
                t = j + k
                w[k + 7] = p[a + t] if k != 0 and 0 <= t < m else 0.0
            X[r, _BIAS] = 1.0
            X[r, _Z] = z[r]
            X[r, _PREV1] = w[6]
            X[r, _NEXT1] = w[8]
            X[r, _PREV3] = (w[4] + w[5]) / 2.0
            X[r, _NEXT3] = (w[9] + w[10]) / 2.0
            X[r, _AROUND7] = (w[0] + w[1] + w[2] + w[3] + w[11] + w[12] + w[13] + w[14]) / 8.0
            min_nb = w[6] if w[6] <= w[8] else w[8]
            if w[6] != w[6] or w[8] != w[8]:  # np.minimum propagates NaN
                min_nb = np.nan
            X[r, _MIN_NEIGHBOUR] = min_nb
            X[r, _POSITION] = j / (m - 1 if m - 1 > 1 else 1)
            X[r, _RULE_PREV] = 1.0 if rule_prev[r] else 0.0
            X[r, _RULE_NEXT] = 1.0 if rule_next[r] else 0.0
            X[r, _RULES_NEAR] = float(rules_near[r])
            s = 1.0 if short[r] else 0.0
            X[r, _SHORT] = s
            X[r, _SHORT_X_MIN_NEIGHBOUR] = s * min_nb
            X[r, _SHORT_X_PREV1] = s * w[6]
            X[r, _SHORT_X_NEXT1] = s * w[8]
            ev = z[r] if z[r] >= 0.0 else 0.0
            if z[r] != z[r]:
                ev = z[r]
            evidence[j] = ev * (1.0 + lw[r])
        # main block: maximum-sum run (Kadane) of (p - 0.5) weighted by the line's words
        best = -np.inf
        current = 0.0
        start = -1
        bs = -1
        be = -1
        for j in range(m):
            r = a + j
            v = (p[r] - 0.5) * (short_weight if short[r] else 1.0 + lw[r])
            if current <= 0.0:
                current = v
                start = j
            else:
                current += v
            if current > best:
                best = current
                bs = start
                be = j
        for j in range(m):
            r = a + j
            inside = bs <= j <= be
            X[r, _IN_BLOCK] = 1.0 if inside else 0.0
            distance = bs - j if j < bs else (j - be if j > be else 0)
            X[r, _LOG_BLOCK_DISTANCE] = log1p_table[distance]
            X[r, _SHORT_X_IN_BLOCK] = (1.0 if short[r] else 0.0) if inside else 0.0
        # two-state smoothing (Viterbi): 1 content (emission max(z, -floor)), 0 chrome
        s0 = 0.0
        s1 = z[a] if z[a] > -emission_floor else -emission_floor
        if z[a] != z[a]:
            s1 = z[a]
        for j in range(1, m):
            v = z[a + j] if z[a + j] > -emission_floor else -emission_floor
            if z[a + j] != z[a + j]:
                v = z[a + j]
            from0 = s0 >= s1 - switch_cost
            from1 = s1 >= s0 - switch_cost
            back0[j] = 0 if from0 else 1
            back1[j] = 1 if from1 else 0
            n0 = s0 if from0 else s1 - switch_cost
            n1 = (s1 if from1 else s0 - switch_cost) + v
            s0 = n0
            s1 = n1
        state = 1 if s1 > s0 else 0
        states[m - 1] = state
        for j in range(m - 1, 0, -1):
            state = back0[j] if state == 0 else back1[j]
            states[j - 1] = state
        # segments: runs of equal states, their evidence (summed in order) and rank
        n_segs = 0
        j = 0
        while j < m:
            k = j
            mass = 0.0
            while k < m and states[k] == states[j]:
                mass += evidence[k]
                k += 1
            seg_start[n_segs] = j
            seg_mass[n_segs] = mass if states[j] == 1 else 0.0
            n_segs += 1
            j = k
        seg_start[n_segs] = m
        first = 0  # sorted by (-mass, index): the first and the second
        for s in range(1, n_segs):
            if seg_mass[s] > seg_mass[first]:
                first = s
        second = -1
        for s in range(n_segs):
            if s != first and (second < 0 or seg_mass[s] > seg_mass[second]):
                second = s
        best_mass = seg_mass[first]
        for s in range(n_segs):
            content = states[seg_start[s]] == 1
            share = seg_mass[s] / best_mass if best_mass > 0 else 0.0
            size = seg_start[s + 1] - seg_start[s]
            for j in range(seg_start[s], seg_start[s + 1]):
                r = a + j
                X[r, _IN_SEGMENT] = 1.0 if content else 0.0
                X[r, _BEST_SEGMENT] = 1.0 if content and s == first else 0.0
                X[r, _TOP2_SEGMENT] = 1.0 if content and (s == first or s == second) else 0.0
                X[r, _SEGMENT_SHARE] = share
                X[r, _LOG_SEGMENT_LINES] = log1p_table[size]
        # the main block's core: cut before a line after rule-flagged chrome with more near; the
        # first part with at least core_share of the best part's evidence (two passes, the same sums)
        best_part = -1.0
        part_start = bs
        part_mass = 0.0
        for j in range(bs, be + 2):
            if j > be or (j > part_start and rule_prev[a + j] and rules_near[a + j] >= 2):
                if part_mass > best_part:
                    best_part = part_mass
                part_start = j
                part_mass = 0.0
            if j <= be:
                part_mass += evidence[j]
        bar = core_share * best_part
        core_start = bs
        core_end = be
        part_start = bs
        part_mass = 0.0
        for j in range(bs, be + 2):
            if j > be or (j > part_start and rule_prev[a + j] and rules_near[a + j] >= 2):
                if part_mass >= bar:
                    core_start = part_start
                    core_end = j - 1
                    break
                part_start = j
                part_mass = 0.0
            if j <= be:
                part_mass += evidence[j]
        # evidence before and after (running sums in order, as numpy's cumsum)
        total = 0.0
        for j in range(m):
            total += evidence[j]
        total += 1e-9
        cumulative = 0.0
        for j in range(m):
            r = a + j
            X[r, _IN_CORE] = 1.0 if core_start <= j <= core_end else 0.0
            X[r, _MASS_BEFORE] = cumulative / total
            X[r, _MASS_AFTER] = (total - cumulative - evidence[j]) / total
            cumulative += evidence[j]
        # runs of consecutive short lines (0 for long lines)
        j = 0
        while j < m:
            if not short[a + j]:
                X[a + j, _LOG_SHORT_RUN] = log1p_table[0]
                j += 1
                continue
            k = j
            while k < m and short[a + k]:
                k += 1
            for t in range(j, k):
                X[a + t, _LOG_SHORT_RUN] = log1p_table[k - j]
            j = k
        # distances to the nearest likely-content line before / after (at most 50)
        last = -1
        for j in range(m):
            X[a + j, _LOG_GOOD_BEFORE] = log1p_table[min(j - last, 50) if last >= 0 else 50]
            if p[a + j] > 0.5:
                last = j
        nxt = -1
        for j in range(m - 1, -1, -1):
            X[a + j, _LOG_GOOD_AFTER] = log1p_table[min(nxt - j, 50) if nxt >= 0 else 50]
            if p[a + j] > 0.5:
                nxt = j


# flags of linematrix._FLAGS (checked by the tests)
_F_BREAK, _F_SEPMID, _F_PIPE, _F_COMMA, _F_AT, _F_DATEDELIM, _F_DOT, _F_H, _F_FALLBACK = (
    1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9
)
_SPACE_UNIT, _T, _P, _W = 0x20, ord("t"), ord("p"), ord("w")


@njit(cache=True, nogil=True)
def scan_kernel(u, bounds, line_slot, space_t, lower_t, nondigit_t, upper_t, bad_t, cls_t, flags_t, decimal_t,
                domain_next_t, base, shift, hashes, word_of, units_of, word_len, bucket_start, bucket_size, member,
                is_chrome, is_address, formal, formal_len, counts):
    """Per-line counts of ``linematrix._scan_numpy`` in one pass over the joined samples ``u``
    (UTF-16 code units, "\\n" at every ``bounds``). ``counts`` (lines x 16, zeros) gets: tokens,
    digit tokens, upper-case tokens, title-case tokens, function words, distinct chrome words,
    distinct address words (formal ones included), spaces, commas, sentence breaks, separators,
    chained separators, url, url check, fallback, first date delimiter (-1: none). A token's
    hash ``h`` is looked up in bucket ``h >> shift`` of the sorted ``hashes``; ``units_of[w]``: the
    code units of word ``w`` (one row per word, so a hit is verified in one cache line or two)."""
    n = len(bounds) - 1
    total = len(u)
    seen = np.empty(128, np.int64)
    n_formal = len(formal_len)
    for i in range(n):
        first = bounds[i] + 1
        end = bounds[i + 1]  # u[end] is "\n": a space, without flags
        slot = line_slot[i]
        counts[i, 15] = -1
        n_seen = 0
        formal_seen = 0
        tokens = 0
        last_triple = -10
        in_token = False
        start = 0
        nondigit = 0
        upper = 0
        bad = 0
        violations = 0
        prev_cls = 0
        h = np.uint64(0)
        power = np.uint64(1)
        for pos in range(first, end + 1):
            unit = u[pos]
            f = flags_t[unit]
            if unit == _SPACE_UNIT:
                counts[i, 7] += 1
            if f != 0:
                nxt = u[pos + 1 if pos + 1 < total else total - 1]
                prv = u[pos - 1]
                if f & _F_COMMA:
                    counts[i, 8] += 1
                if f & _F_BREAK and nxt == _SPACE_UNIT:
                    counts[i, 9] += 1
                if f & _F_SEPMID and nxt == _SPACE_UNIT and prv == _SPACE_UNIT:
                    counts[i, 10] += 1
                    if pos - last_triple == 2:
                        counts[i, 11] = 1
                    last_triple = pos
                if f & _F_PIPE:
                    counts[i, 10] += 1
                if f & _F_AT:
                    counts[i, 12] = 1
                if f & _F_H:
                    if (lower_t[u[min(pos + 1, total - 1)]] == _T and lower_t[u[min(pos + 2, total - 1)]] == _T
                            and lower_t[u[min(pos + 3, total - 1)]] == _P):
                        counts[i, 12] = 1
                if f & _F_DOT:
                    if (lower_t[u[max(pos - 1, 0)]] == _W and lower_t[u[max(pos - 2, 0)]] == _W
                            and lower_t[u[max(pos - 3, 0)]] == _W):
                        counts[i, 12] = 1
                    if domain_next_t[lower_t[nxt]]:
                        counts[i, 13] = 1
                if f & _F_DATEDELIM and decimal_t[prv] and decimal_t[nxt] and counts[i, 15] < 0:
                    counts[i, 15] = max(pos - first - 4, 0)
                if f & _F_FALLBACK:
                    counts[i, 14] = 1
            if not space_t[unit]:
                if not in_token:  # a token starts
                    in_token = True
                    start = pos
                    nondigit = 0
                    upper = 0
                    bad = 0
                    violations = 0
                    prev_cls = 0
                    h = np.uint64(0)
                    power = np.uint64(1)
                c = cls_t[unit]
                if (c == 2 and prev_cls != 0) or (c == 1 and prev_cls == 0):
                    violations += 1  # title case: upper/title only after uncased, lower only after cased
                prev_cls = c
                if nondigit_t[unit]:
                    nondigit += 1
                if upper_t[unit]:
                    upper += 1
                if bad_t[unit]:
                    bad += 1
                h += lower_t[unit] * power
                power *= base
                continue
            if not in_token:
                continue
            # the token [start, pos) ends
            in_token = False
            length = pos - start
            if nondigit == 0:
                counts[i, 1] += 1
            if bad == 0 and upper > 0:
                counts[i, 2] += 1
            if violations == 0 and (upper > 0 or bad > 0):
                counts[i, 3] += 1
            # the word lists: the hash's bucket, then the word's code units
            bucket = h >> shift
            word = -1
            for at in range(bucket_start[bucket], bucket_start[bucket] + bucket_size[bucket]):
                if hashes[at] == h:
                    w = word_of[at]
                    if word_len[w] == length:
                        word = w
                        for j in range(length):
                            if lower_t[u[start + j]] != units_of[w, j]:
                                word = -1
                                break
                    break
            if word >= 0:
                if slot >= 0 and member[slot, word]:
                    counts[i, 4] += 1
                if is_chrome[word] or is_address[word]:
                    new = True
                    for k in range(n_seen):
                        if seen[k] == word:
                            new = False
                            break
                    if new:
                        seen[n_seen] = word
                        n_seen += 1
                        if is_chrome[word]:
                            counts[i, 5] += 1
                        if is_address[word]:
                            counts[i, 6] += 1
            # a capitalised formal address (Sie, Ihre...) after the first token, case-sensitive
            if tokens > 0:
                for k in range(n_formal):
                    if formal_len[k] == length:
                        same = True
                        for j in range(length):
                            if u[start + j] != formal[k, j]:
                                same = False
                                break
                        if same and not (formal_seen >> k) & 1:
                            formal_seen |= 1 << k
                            counts[i, 6] += 1
            tokens += 1
        counts[i, 0] = tokens


@njit(cache=True, nogil=True)
def language_lines_kernel(units, starts, ends, usable, doc_starts, doc_ends, space_t, sample_chars, min_words, enough,
                          counted):
    """The lines whose words ``linefeatures._language`` counts, for each document [doc_starts[d],
    doc_ends[d]) of lines: in order, the ``usable`` lines with at least ``min_words`` words
    (``str.split()``: runs of non-space code points, ``space_t`` over the BMP, nothing beyond it
    is a space) among their first ``sample_chars`` code points, until ``enough`` words are
    counted; ``counted[i]`` set for each."""
    for d in range(len(doc_starts)):
        total = 0
        for i in range(doc_starts[d], doc_ends[d]):
            if not usable[i]:
                continue
            a = starts[i]
            b = min(ends[i], a + sample_chars)
            words = 0
            inside = False
            for pos in range(a, b):
                c = units[pos]
                space = c < 65536 and space_t[c]
                if not space and not inside:
                    words += 1
                inside = not space
            if words >= min_words:
                counted[i] = True
                total += words
                if total >= enough:
                    break


@njit(cache=True, nogil=True)
def gaps_kernel(keep, in_core, probs, at, limits, max_gap, floor):
    """``linefeatures.fill_article_gaps`` of every page at once: page ``d`` is the rows
    [at[d], at[d + 1]), its first ``limits[d]`` rows are read; ``keep`` is set in place."""
    for d in range(len(at) - 1):
        a = at[d]
        last = -1
        for r in range(limits[d]):
            if not keep[a + r]:
                continue
            if last >= 0 and 1 <= r - last - 1 <= max_gap:
                for t in range(last + 1, r):
                    if in_core[a + t] and probs[a + t] >= floor:
                        keep[a + t] = True
            last = r
