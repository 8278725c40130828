"""The #12 memory rules for the readers of this package (``tasks.stages.limits`` building blocks).

A file is opened once (``open_regular``) and read through a ``HashingReader`` stopped at the
planned size, so what is cleaned is what was hashed; a compressed stream goes through a
``LimitedDecompressor`` (``read.max_decompressed_mb``, ``read.max_decompression_ratio``).
"""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO

from ...config import ReadConfig
from ..limits import CHUNK, CountingReader, DecompressionLimit, HashingReader, LimitedDecompressor
from ..read import SourceFile, _changed, _limit_bytes, _mb, _one_line, file_sha256, open_regular
from ...plumbing.records import Reject


def open_hashed(src: SourceFile) -> tuple[BinaryIO, HashingReader]:
    """The open file and a ``HashingReader`` over it, stopped at the planned size (raises ``OSError``)."""
    f = open_regular(src.path)
    return f, HashingReader(f, src.size if src.sha256 else None)


def open_records(src: SourceFile) -> tuple[BinaryIO, HashingReader, str]:
    """``open_hashed``, and the hash a file's records carry before it is read through: the planned
    one, or (a file read outside a run) the file's own, hashed first (raises ``OSError``)."""
    sha = src.sha256 or file_sha256(src.path)
    f, reader = open_hashed(src)
    return f, reader, sha


def limited(stream_of, raw: BinaryIO, config: ReadConfig) -> LimitedDecompressor:
    """``stream_of(compressed)`` (a decompressing stream) bounded by the decompression limits."""
    compressed = CountingReader(raw)  # type: ignore[arg-type]
    return LimitedDecompressor(stream_of(compressed), compressed, int(config.max_decompressed_mb * 1_000_000),
                               config.max_decompression_ratio)


def gunzip(raw: BinaryIO, config: ReadConfig) -> LimitedDecompressor:
    return limited(lambda c: gzip.GzipFile(fileobj=c, mode="rb"), raw, config)


def read_upto(stream: BinaryIO, max_bytes: int) -> tuple[bytes, bool]:
    """Up to ``max_bytes`` of ``stream`` (reads that may come short, e.g. decompressed ones, are
    repeated), and whether more followed: at most ``max_bytes`` + one chunk is ever held."""
    parts: list[bytes] = []
    size = 0
    while size <= max_bytes:
        block = stream.read(min(CHUNK, max_bytes + 1 - size))
        if not block:
            break
        parts.append(block)
        size += len(block)
    data = b"".join(parts)
    if size > max_bytes:
        return data[:max_bytes], True
    return data, False


def read_document(src: SourceFile, config: ReadConfig, gz: bool | None, what: str = "text"):
    """The bytes of a one-document file (``.txt.gz``, ``.html``...), read up to ``read.max_record_mb``.

    ``gz``: True for gzip, False for plain, None to decide on the first bytes (gzip magic).
    Returns ``(data, more, sha, file_bytes)`` (``more``: the content goes on past the limit; the
    rest is hashed, never decompressed nor held) or the ``Reject`` of the file: ``unreadable``,
    ``decompression_limit``, ``changed_during_run`` (the bytes read are not the planned ones).
    """
    try:
        f, reader = open_hashed(src)
    except OSError as exc:
        return Reject(src.rel, None, "unreadable", _one_line(exc))
    with f:
        buffered = io.BufferedReader(reader)  # type: ignore[arg-type]
        failure: tuple[str, str] | None = None
        data, more = b"", False
        try:
            if gz is None:
                gz = buffered.peek(2)[:2] == b"\x1f\x8b"
            stream: BinaryIO = gunzip(buffered, config) if gz else buffered  # type: ignore[assignment]
            data, more = read_upto(stream, _limit_bytes(config))
        except DecompressionLimit as exc:
            failure = ("decompression_limit", f"stopped reading the {what}: {exc}")
        except Exception as exc:  # a corrupt or truncated gzip (OSError, EOFError, zlib.error), an I/O error
            failure = ("unreadable", f"not a readable gzip file: {_one_line(exc)}" if gz else _one_line(exc))
        try:
            while buffered.read(CHUNK):  # the rest of the file is hashed, not decompressed
                pass
        except OSError as exc:
            return Reject(src.rel, None, "unreadable", _one_line(exc))
    sha = reader.sha256()
    if src.sha256 and sha != src.sha256:
        return _changed(src, sha)
    if failure is not None:
        return Reject(src.rel, None, failure[0], failure[1], sha)
    return data, more, sha, reader.count


def read_whole(src: SourceFile, config: ReadConfig, gz: bool | None, what: str, why: str):
    """``read_document`` for a file that can only be parsed whole (a JSON document, an HTML page):
    ``(data, sha)``, or a ``Reject``, ``too_large`` when it goes on past ``read.max_record_mb``
    (``why`` says why it is not streamed)."""
    got = read_document(src, config, gz=gz, what=what)
    if isinstance(got, Reject):
        return got
    data, more, sha, file_bytes = got
    if more:
        return Reject(src.rel, None, "too_large",
                      f"{_mb(file_bytes)}, above read.max_record_mb ({_mb(_limit_bytes(config))}): {why}", sha)
    return data, sha
