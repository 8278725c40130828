"""``bench/whatif.py grid``'s leave-one-source-out choice: each source is scored with the constants the
other sources prefer, never with the ones it prefers itself."""

from __future__ import annotations

import pytest

whatif = pytest.importorskip("bench.whatif")


def test_each_source_is_scored_with_the_others_choice():
    results = {
        (0.1,): {"a": 0.9, "b": 0.5, "c": 0.5},
        (0.2,): {"a": 0.1, "b": 0.6, "c": 0.6},
    }
    left = whatif.left_out_choices(results, today=(0.1,), sources=("a", "b", "c"))
    # a prefers 0.1 by far, but b and c prefer 0.2: left out, a gets 0.2's score
    assert left["a"] == ((0.2,), 0.1)
    # b left out: a + c favour 0.1 (1.4 against 0.7)
    assert left["b"] == ((0.1,), 0.5)
    assert left["c"] == ((0.1,), 0.5)


def test_a_tie_keeps_today():
    results = {(0.1,): {"a": 0.5, "b": 0.5}, (0.2,): {"a": 0.5, "b": 0.5}}
    assert whatif.left_out_choices(results, today=(0.2,), sources=("a", "b"))["a"][0] == (0.2,)
    assert whatif.left_out_choices(results, today=(0.1,), sources=("a", "b"))["a"][0] == (0.1,)
