"""How fast this machine's cores are right now, as one number to print beside a benchmark's figures.

The machines here are shared: the same commit has run the 100 MB real-page benchmark at 5.7 MB/s
one night and at 2.8 MB/s the next morning, in CPU time too (each core simply did half the work
per second). A figure is only comparable with another measured at the same machine speed, so the
benchmarks print this check before and after their runs: the CPU seconds of a fixed pure-Python
loop (the interpreter's own work, as most of the pipeline's stages do), the best of a few tries.
"""

from __future__ import annotations

import time

LOOP = 10**7


def python_loop_seconds(repeat: int = 3) -> float:
    """CPU seconds (``time.process_time``) of ``LOOP`` additions in a Python loop: the fastest of
    ``repeat`` tries (another process taking the core only makes a try slower)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        total = 0
        for i in range(LOOP):
            total += i
        best = min(best, time.process_time() - start)
    return best


def describe(seconds: float) -> str:
    """One line for a benchmark's output."""
    return (f"machine check: 10^7 Python additions in {seconds:.2f} CPU s (lower is faster; "
            "compare figures only between runs with similar checks)")
