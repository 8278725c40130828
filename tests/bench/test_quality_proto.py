"""The decoders of ``bench/quality_proto.py decode`` (issue 9's structured-decoder experiment):
checked against brute force on short sequences, and against the plain threshold they reduce to."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

qp = pytest.importorskip("bench.quality_proto")


def _path_score(states, e, switch, edge):
    score = sum(e[j] for j, s in enumerate(states) if s)
    score -= sum(switch[j] for j in range(1, len(states)) if states[j] != states[j - 1])
    score -= edge * (states[0] + states[-1])
    return score


@pytest.mark.parametrize("seed", range(30))
def test_viterbi_is_the_best_segmentation(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 9))
    e = rng.normal(0, 2, m)
    switch = rng.choice([0.0, 0.5, 1.5, 3.0], m)
    edge = float(rng.choice([0.0, 1.0]))
    got = qp.viterbi_keep(e, switch, edge)
    best = max(_path_score(s, e, switch, edge) for s in itertools.product((0, 1), repeat=m))
    assert _path_score(got.astype(int).tolist(), e, switch, edge) == pytest.approx(best)


def test_viterbi_without_switch_cost_is_the_threshold():
    e = np.array([1.0, -0.5, 2.0, -3.0, 0.2, 0.0])
    assert qp.viterbi_keep(e, np.zeros(6), 0.0).tolist() == [True, False, True, False, True, False]
    # a cost of switching fills the short dip and drops the lone weak line at the end
    assert qp.viterbi_keep(e, np.full(6, 1.0), 0.0).tolist() == [True, True, True, False, False, False]


@pytest.mark.parametrize("seed", range(10))
def test_posterior_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 8))
    e = rng.normal(0, 2, m)
    s1, s0 = 0.85, 0.7
    weights = {}
    for states in itertools.product((0, 1), repeat=m):
        w = sum(e[j] for j in range(m) if states[j])
        for a, b in zip(states, states[1:]):
            w += np.log((s1 if b else 1 - s1) if a else (s0 if not b else 1 - s0))
        weights[states] = np.exp(w)
    total = sum(weights.values())
    expected = [sum(w for s, w in weights.items() if s[j]) / total for j in range(m)]
    assert qp.posterior_content(e, s1, s0) == pytest.approx(expected, rel=1e-9)


def test_posterior_without_transitions_is_the_emission():
    e = np.array([-2.0, 0.0, 3.0])
    assert qp.posterior_content(e, 0.5, 0.5) == pytest.approx(1 / (1 + np.exp(-e)))
