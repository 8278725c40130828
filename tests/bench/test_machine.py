"""bench/machine.py: the machine check printed beside benchmark figures."""

from __future__ import annotations

import math

from bench.machine import describe, python_loop_seconds


def test_the_check_is_a_positive_cpu_time_and_is_printed_with_two_decimals():
    seconds = python_loop_seconds(repeat=1)
    assert 0 < seconds < 60 and math.isfinite(seconds)
    line = describe(1.234)
    assert line.startswith("machine check: 10^7 Python additions in 1.23 CPU s")
