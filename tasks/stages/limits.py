"""Memory bounds for readers: bounded lines, limited decompression, hashed prefix reads.

Small building blocks every reader (txt, JSON lines, gzip, and the formats to come) uses so
that memory follows the configuration (``read.max_record_mb``, ``read.max_decompressed_mb``,
``read.max_decompression_ratio``), never the input: a 5 GB line is skipped in chunks, a gzip
bomb stops at its limit, and no read ever buffers more than one bounded record.
"""

from __future__ import annotations

import codecs
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


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
               (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def json_encoding(head: bytes) -> tuple[str, int]:
    """The encoding of JSON text from its first 4 bytes, and the length of its byte-order mark.

    JSON is UTF-8, -16 or -32 (RFC 4627 section 3, RFC 8259 section 8.1): a byte-order mark says
    which; without one, the first two characters are ASCII, so the zero bytes among the first four
    bytes do (the RFC 4627 table; any other pattern, a stray NUL included, is UTF-8). A UTF-8 BOM
    counts as UTF-8 (the readers decode it with ``utf-8-sig``).
    """
    for bom, codec in _WIDE_BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    if len(head) >= 4:  # the zero bytes of two (UTF-16) or one (UTF-32) ASCII characters, all four bytes
        zeros = tuple(b == 0 for b in head[:4])
        codec = _ZERO_PATTERNS.get(zeros)
        if codec is not None:
            return codec, 0
    return "utf-8", 0


_ZERO_PATTERNS = {(True, True, True, False): "utf-32-be", (False, True, True, True): "utf-32-le",
                  (True, False, True, False): "utf-16-be", (False, True, False, True): "utf-16-le"}


class Utf8Reader(io.RawIOBase):
    """``raw`` (text in a wider encoding) handed out as UTF-8, decoded incrementally: JSON lines in
    UTF-16 or -32 split into lines and parse as the UTF-8 ones do. An invalid code unit (a
    truncated file's half character) becomes U+FFFD."""

    def __init__(self, raw: BinaryIO, codec: str, chunk: int = CHUNK) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        self._chunk = chunk
        self._out = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out and not self._done:
            data = self._raw.read(self._chunk)
            self._done = not data
            self._out = self._decoder.decode(data, final=self._done).encode("utf-8", errors="surrogatepass")
        n = min(len(buffer), len(self._out))
        memoryview(buffer).cast("B")[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


def utf8_stream(stream: BinaryIO) -> tuple[BinaryIO, str]:
    """``stream`` (JSON text) as UTF-8 bytes, and the encoding it was in (``json_encoding``)."""
    head = b""
    while len(head) < 4:  # a raw stream may hand out fewer bytes than asked
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    codec, bom = json_encoding(head)
    rest: BinaryIO = _Prefixed(head, stream)  # type: ignore[assignment]
    if codec == "utf-8":
        return rest, codec
    rest.read(bom)
    return Utf8Reader(rest, codec), codec  # type: ignore[return-value]


class _Prefixed(io.RawIOBase):
    """``head`` (already read from ``raw``), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            memoryview(buffer).cast("B")[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
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
