"""Give freed memory back to the operating system between shards.

Worker processes stay alive for the whole run; after a shard, the Python heap, glibc's malloc
arenas and Arrow's memory pool keep the pages of the shard's peak, so an idle worker would
hold hundreds of MB while the run-level dedup peaks in the flow process. Returning them keeps
the run's peak memory near the sum of what is really in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

_libc = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):  # not glibc: nothing to trim
    _libc = None


def release_memory() -> None:
    # No gc.collect(): the stages make no reference cycles worth it, and it costs ~0.1 s per call.
    pa.default_memory_pool().release_unused()
    if _libc is not None:
        _libc.malloc_trim(0)
