"""Memory bounds for readers: bounded lines, limited decompression, hashed prefix reads.

Small building blocks every reader (txt, JSON lines, gzip, and the formats to come) uses so
that memory follows the configuration (``read.max_record_mb``, ``read.max_decompressed_mb``,
``read.max_decompression_ratio``), never the input: a 5 GB line is skipped in chunks, a gzip
bomb stops at its limit, and no read ever buffers more than one bounded record.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20  # bytes read at a time by the streaming helpers


class DecompressionLimit(Exception):
    """A compressed stream expanded past its size or ratio limit (reject reason ``decompression_limit``)."""


@dataclass(frozen=True, slots=True)
class TooLarge:
    """A line longer than the limit, skipped without being held in memory: ``size`` bytes, its newline excluded."""

    size: int


class HashingReader(io.RawIOBase):
    """Reads at most ``limit`` bytes of ``raw`` and hashes exactly the bytes it hands out.

    The limit is the size the file had when it was planned: bytes appended since are not read,
    so what is cleaned is what was hashed (``sha256()`` at the end); ``count`` is bytes read.
    """

    def __init__(self, raw: BinaryIO, limit: int | None = None) -> None:
        self._raw = raw
        self._left = limit
        self._hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = len(view) if self._left is None else min(len(view), self._left)
        if want <= 0:
            return 0
        data = self._raw.read(want)
        n = len(data)
        view[:n] = data
        self._hash.update(data)
        self.count += n
        if self._left is not None:
            self._left -= n
        return n

    def drain(self) -> None:
        """Read (and hash) the rest up to the limit: a reader that stopped early still gets the file's hash."""
        while self.read(CHUNK):
            pass

    def sha256(self) -> str:
        return self._hash.hexdigest()


class CountingReader(io.RawIOBase):
    """Passes ``raw`` through and counts the bytes read (compressed bytes consumed, for the ratio)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        self.count += n
        return n


class LimitedDecompressor(io.RawIOBase):
    """A decompressed stream that raises ``DecompressionLimit`` once it has produced more than
    ``max_bytes``, or more than ``max_ratio`` times the compressed bytes consumed (checked past
    ``ratio_floor`` bytes, so that a small, very repetitive file still reads).

    ``stream`` decompresses ``compressed`` (a ``CountingReader``), e.g. ``gzip.GzipFile(fileobj=compressed)``.
    """

    def __init__(self, stream: BinaryIO, compressed: CountingReader, max_bytes: int, max_ratio: float,
                 ratio_floor: int = 16 << 20) -> None:
        self._stream = stream
        self._compressed = compressed
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.ratio_floor = ratio_floor
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        # read1: what one step decompressed, so a truncated stream still hands out the lines before its end
        read1 = getattr(self._stream, "read1", None)
        if read1 is not None:
            data = read1(len(buffer))
            n = len(data)
            memoryview(buffer).cast("B")[:n] = data
        else:
            n = self._stream.readinto(buffer)
        self.count += n
        if self.count > self.max_bytes:
            raise DecompressionLimit(f"expands to more than {self.max_bytes / 1e6:,.0f} MB (read.max_decompressed_mb)")
        if self.count > self.ratio_floor and self.count > self.max_ratio * max(1, self._compressed.count):
            raise DecompressionLimit(
                f"expands more than {self.max_ratio:g}x ({self.count / 1e6:,.0f} MB from "
                f"{self._compressed.count / 1e6:,.1f} MB; read.max_decompression_ratio)"
            )
        return n


def iter_lines(stream: BinaryIO, max_bytes: int, chunk: int = CHUNK) -> Iterator[bytes | TooLarge]:
    """Lines of a binary stream (each with its ``\\n``, the last maybe without), never holding more
    than ``max_bytes`` + one chunk: a longer line is read through and yielded as ``TooLarge``."""
    pending: list[bytes] = []  # pieces of the current line
    pending_size = 0
    skipping = False  # the current line is over the limit: count it, keep nothing
    while True:
        block = stream.read(chunk)
        if not block:
            break
        start = 0
        while True:
            end = block.find(b"\n", start)
            if end < 0:
                piece = block[start:]
                pending_size += len(piece)
                if not skipping:
                    if pending_size > max_bytes:
                        skipping, pending = True, []
                    else:
                        pending.append(piece)
                break
            piece = block[start : end + 1]
            size = pending_size + len(piece) - 1  # without the newline
            if skipping or size > max_bytes:
                yield TooLarge(size)
            elif pending:
                pending.append(piece)
                yield b"".join(pending)
            else:
                yield piece
            pending, pending_size, skipping = [], 0, False
            start = end + 1
    if skipping:
        yield TooLarge(pending_size)
    elif pending_size:
        yield b"".join(pending)


def read_bounded(stream: BinaryIO, max_bytes: int) -> tuple[bytes, bool]:
    """Up to ``max_bytes`` of ``stream``, and whether more followed (the rest is left unread)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        return data[:max_bytes], True
    return data, False
