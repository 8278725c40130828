"""Compiled loops (numba) of the boilerplate stage's hot paths, each equal bit for bit to its
numpy/Python reference (kept beside it and compared in the tests).

* ``context_kernel``: the context model's features of many documents
  (``tasks.linefeatures.context_matrix_many``): windows, main block (Kadane), smoothing
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

# column indices of tasks.linefeatures.CONTEXT_FEATURES (checked at import by linefeatures)
_BIAS, _Z, _PREV1, _NEXT1, _PREV3, _NEXT3, _AROUND7, _IN_BLOCK, _LOG_BLOCK_DISTANCE, _MIN_NEIGHBOUR = range(10)
(_POSITION, _IN_SEGMENT, _BEST_SEGMENT, _SEGMENT_SHARE, _LOG_SEGMENT_LINES, _TOP2_SEGMENT, _LOG_GOOD_BEFORE,
 _LOG_GOOD_AFTER, _MASS_BEFORE, _MASS_AFTER) = range(10, 20)
(_RULE_PREV, _RULE_NEXT, _RULES_NEAR, _SHORT, _SHORT_X_MIN_NEIGHBOUR, _SHORT_X_PREV1, _SHORT_X_NEXT1,
 _SHORT_X_IN_BLOCK, _LOG_SHORT_RUN, _IN_CORE) = range(20, 30)
N_CONTEXT = 30


@njit(cache=True, nogil=True)
def context_kernel(z, p, lw, short, rule_prev, rule_next, rules_near, starts, ends, log1p_table, short_weight,
                   emission_floor, switch_cost, X):
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
        # the main block's core: cut before a line after rule-flagged chrome with more near
        core_start = bs
        core_end = be
        part_start = bs
        part_mass = 0.0
        core_mass = -1.0
        for j in range(bs, be + 2):
            if j > be or (j > part_start and rule_prev[a + j] and rules_near[a + j] >= 2):
                if part_mass > core_mass:
                    core_start = part_start
                    core_end = j - 1
                    core_mass = part_mass
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
