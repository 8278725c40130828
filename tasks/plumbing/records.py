"""The records that flow between stages.

A shard is cleaned in batches: a ``Batch`` holds a list of ``Document`` and the columnar
``Paragraphs`` of those documents. Stages fill in fields; nothing is ever dropped from a
batch — a paragraph that is chrome or a duplicate is *flagged*, so the output keeps a
reason for every decision. Records that cannot be used at all become ``Reject`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xxhash


def make_doc_id(source_path: str, source_sha256: str, record_index: int) -> str:
    """Stable document id: the same file content at the same path gives the same id anywhere."""
    key = f"{source_path}\x00{source_sha256}\x00{record_index}".encode("utf-8", "surrogatepass")
    return xxhash.xxh3_128_hexdigest(key)


def make_paragraph_id(doc_id: str, paragraph_index: int) -> str:
    return f"{doc_id}:{paragraph_index}"


@dataclass(slots=True)
class Document:
    """One input document: a txt/md file or HTML page, or one record of a JSON-lines, Parquet, CSV or WARC file."""

    doc_id: str
    source_path: str  # relative to the raw folder, "/" separated
    source_sha256: str  # of the whole raw file's bytes
    record_index: int  # 0 for txt/md; the record's position in jsonl/parquet files
    text: str  # decoded text; replaced by the repaired text in the repair stage
    source_encoding: str
    metadata: str = "{}"  # JSON object with the record's other fields
    encoding_fixes: list[str] = field(default_factory=list)
    n_replacement_chars: int = 0
    lang: str | None = None
    lang_prob: float | None = None
    extractor: str | None = None  # "trafilatura X.Y.Z" when the text was extracted from HTML


@dataclass(slots=True)
class Reject:
    """An input file or record that could not be used, and why (reasons: ``schema.REJECT_REASONS``)."""

    source_path: str
    record_index: int | None
    reason: str
    detail: str
    source_sha256: str | None = None


@dataclass(slots=True)
class Skipped:
    """An input record that is by nature not a document (a WARC ``request``, ``metadata``, ``warcinfo``
    or ``revisit`` record): neither a document nor a reject. ``read_source`` does not pass it on; it
    counts it by ``kind`` (the read stage's ``skipped:KIND`` counts, the report's ``skipped_records``)."""

    source_path: str
    record_index: int
    kind: str


@dataclass(slots=True)
class Paragraphs:
    """Paragraphs of a batch, column by column (row i of every list is paragraph i).

    ``doc_pos`` is the position of the paragraph's document in ``Batch.docs``.
    Invariant: ``docs[doc_pos[i]].text[char_start[i]:char_end[i]] == text[i]``.
    """

    doc_pos: list[int] = field(default_factory=list)
    paragraph_index: list[int] = field(default_factory=list)
    char_start: list[int] = field(default_factory=list)
    char_end: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    is_boilerplate: list[bool] = field(default_factory=list)
    boilerplate_reason: list[str | None] = field(default_factory=list)
    lang: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.text)


@dataclass(slots=True)
class Batch:
    docs: list[Document]
    paragraphs: Paragraphs = field(default_factory=Paragraphs)
    rejects: list[Reject] = field(default_factory=list)
    keys: Any = None  # dedup keys of the batch (tasks.stages.sketch.DedupKeys), set by the sketch stage

    def doc_ranges(self) -> list[tuple[int, int]]:
        """[start, end) rows of ``paragraphs`` for each document (paragraphs are grouped by doc)."""
        ranges = [(0, 0)] * len(self.docs)
        pos = np.asarray(self.paragraphs.doc_pos, dtype=np.int64)
        if len(pos):  # a run of equal doc_pos is one document's rows: cut where it changes
            cut = np.flatnonzero(pos[1:] != pos[:-1]) + 1
            starts = [0, *cut.tolist()]
            ends = [*cut.tolist(), len(pos)]
            for d, start, end in zip(pos[starts].tolist(), starts, ends):
                ranges[d] = (start, end)
        return ranges
