"""The memory-bounding readers of tasks/stages/limits.py."""

from __future__ import annotations

import gzip
import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpusclean.tasks.stages.limits import (
    CountingReader,
    DecompressionLimit,
    HashingReader,
    LimitedDecompressor,
    TooLarge,
    Utf8Reader,
    iter_lines,
    json_encoding,
    read_bounded,
    utf8_stream,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.booleans(),
       st.integers(1, 30), st.integers(1, 17))
def test_iter_lines_is_splitlines_with_long_lines_replaced(lines, final_newline, limit, chunk):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = list(iter_lines(io.BytesIO(data), limit, chunk=chunk))
    expected = []
    for i, line in enumerate(data.split(b"\n")):
        last = i == data.count(b"\n")
        if last and not line:
            continue
        if len(line) > limit:
            expected.append(TooLarge(len(line)))
        else:
            expected.append(line if last else line + b"\n")
    assert got == expected


def test_a_huge_line_is_skipped_in_chunks_without_being_held():
    class Endless(io.RawIOBase):  # 200 MB of "a" then a newline and a short line, made on the fly
        def __init__(self):
            self.left = 200_000_000

        def readable(self):
            return True

        def readinto(self, b):
            if self.left > 0:
                n = min(len(b), self.left)
                b[:n] = b"a" * n
                self.left -= n
                return n
            if self.left == 0:
                self.left = -1
                b[:7] = b"\nshort\n"
                return 7
            return 0

    got = list(iter_lines(Endless(), 1000))
    assert got == [TooLarge(200_000_000), b"short\n"]


def test_hashing_reader_stops_at_its_limit_and_hashes_what_it_read():
    raw = io.BytesIO(b"0123456789appended")
    reader = HashingReader(raw, 10)
    assert reader.read(100) == b"0123456789"
    assert reader.read(100) == b""
    assert reader.sha256() == hashlib.sha256(b"0123456789").hexdigest() and reader.count == 10


def test_read_bounded_says_whether_more_followed():
    assert read_bounded(io.BytesIO(b"abcdef"), 6) == (b"abcdef", False)
    assert read_bounded(io.BytesIO(b"abcdefg"), 6) == (b"abcdef", True)


def _limited(data: bytes, max_bytes: int, ratio: float, floor: int = 1000) -> LimitedDecompressor:
    compressed = CountingReader(io.BytesIO(gzip.compress(data)))
    return LimitedDecompressor(gzip.GzipFile(fileobj=compressed), compressed, max_bytes, ratio, ratio_floor=floor)


def test_a_gzip_bomb_stops_at_the_ratio():
    with pytest.raises(DecompressionLimit, match="max_decompression_ratio"):
        list(iter_lines(_limited(b"a" * 50_000_000, 10**12, 100), 10**9, chunk=65536))


def test_decompression_stops_at_the_size_limit():
    with pytest.raises(DecompressionLimit, match="max_decompressed_mb"):
        list(iter_lines(_limited(b"line\n" * 100_000, 100_000, 10**9), 10**9, chunk=4096))


def test_ordinary_gzip_reads_whole():
    data = b"".join(b"record %d with some text\n" % i for i in range(10_000))
    assert b"".join(iter_lines(_limited(data, 10**9, 50), 10**6)) == data


@pytest.mark.parametrize(("head", "expected"), [
    (b'{"a', ("utf-8", 0)), (b"\xef\xbb\xbf{", ("utf-8", 0)), (b"\n{", ("utf-8", 0)), (b"", ("utf-8", 0)),
    (b"\xff\xfe{\x00", ("utf-16-le", 2)), (b"\xfe\xff\x00{", ("utf-16-be", 2)),
    (b"\xff\xfe\x00\x00", ("utf-32-le", 4)), (b"\x00\x00\xfe\xff", ("utf-32-be", 4)),
    (b"{\x00\"\x00", ("utf-16-le", 0)), (b"\x00{\x00\"", ("utf-16-be", 0)), (b"\n\x00{\x00", ("utf-16-le", 0)),
    (b"\x00\"te", ("utf-8", 0)), (b"{\x00\"t", ("utf-8", 0)), (b"\n\x00", ("utf-8", 0)),  # a stray NUL: not UTF-16
    (b"{\x00\x00\x00", ("utf-32-le", 0)), (b"\x00\x00\x00{", ("utf-32-be", 0)),
])
def test_json_encoding_rfc_8259(head, expected):
    assert json_encoding(head) == expected


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["utf-16", "utf-16-be", "utf-32", "utf-32-le"]), st.integers(1, 9))
def test_utf8_stream_transcodes_whatever_the_chunk_size(text, codec, chunk):
    # Code units split across reads (chunk 1..9 bytes) are put back together.
    body = "{\"" + text  # JSON starts with two ASCII characters: what lets the encoding be told without a BOM
    raw = body.encode(codec, errors="surrogatepass")
    stream, found = utf8_stream(io.BufferedReader(io.BytesIO(raw), buffer_size=max(chunk, 8)))
    assert found.startswith(codec[:6])
    if isinstance(stream, Utf8Reader):
        stream._chunk = chunk
    out = b"".join(iter(lambda: stream.read(chunk), b""))
    assert out == body.encode("utf-8", errors="surrogatepass")


def test_utf8_stream_passes_utf8_through():
    data = b'{"text": "d\xc3\xa9j\xc3\xa0"}\n' * 3
    stream, found = utf8_stream(io.BytesIO(data))
    assert found == "utf-8" and stream.read() == data
