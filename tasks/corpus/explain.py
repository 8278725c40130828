"""Explain one document: every paragraph with the decision the pipeline takes on it, and why.

``explain_file`` runs the real per-document stages in-process (no Prefect): read the file with
``tasks.stages.read.read_source``, then the stages of ``tasks.corpus.shard.build_stages`` up to and including
language (repair, paragraphs, boilerplate, language), then exact and near duplicates with the
same functions and parameters as a run (``tasks.stages.sketch`` / ``tasks.corpus.corpus_dedup``), but only
**within the document**: the rest of the file and the corpus are not read, so a paragraph that a
run flags as a copy of another document's, or as corpus-learned chrome (``repeated_line``: a
short line on several pages of one site), is kept here.

The result is plain data (``Explanation`` with one ``ExplainRow`` per paragraph);
``corpusclean explain`` (``flows/cli.py``) prints it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config
from ..stages.dedup import find_duplicates
from ..stages.minhash import batch_shingle_hashes, normalize_for_dedup
from ..stages.read import SourceFile, read_source
from ..plumbing.records import Batch, Document, Reject
from .shard import build_stages
from ..plumbing.stage import Stage, run_stages

KEEP = "keep"
BOILERPLATE = "boilerplate"
DUPLICATE = "duplicate"

_ONE_DOCUMENT_SUFFIXES = (".txt", ".md", ".txt.gz", ".md.gz", ".html", ".htm", ".html.gz", ".htm.gz")


class ExplainError(ValueError):
    """A file, record or configuration that cannot be explained: one line meant for a human."""


@dataclass(frozen=True)
class ExplainRow:
    """One paragraph and what the pipeline does with it."""

    line: int  # 1-based line number in the repaired text
    paragraph_index: int
    text: str
    decision: str  # KEEP | BOILERPLATE | DUPLICATE
    reason: str | None = None  # the boilerplate reason, or the duplicate kind ("exact" | "near")
    duplicate_of: int | None = None  # line number of the original, for duplicates
    lang: str | None = None

    @property
    def removed(self) -> bool:
        return self.decision != KEEP

    @property
    def label(self) -> str:
        """``keep``, ``boilerplate:newsletter`` or ``duplicate_of:3 (exact)``."""
        if self.decision == BOILERPLATE:
            return f"boilerplate:{self.reason}"
        if self.decision == DUPLICATE:
            return f"duplicate_of:{self.duplicate_of} ({self.reason})"
        return KEEP


@dataclass
class Explanation:
    """One document, explained paragraph by paragraph."""

    path: Path
    record_index: int
    single_document: bool  # a .txt/.md file (no record number to show)
    lang: str | None
    lang_prob: float | None
    encoding: str
    encoding_fixes: list[str] = field(default_factory=list)
    n_replacement_chars: int = 0
    rows: list[ExplainRow] = field(default_factory=list)
    extractor: str | None = None  # "trafilatura X.Y.Z" for HTML: the lines are its extracted text

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(row.decision for row in self.rows)
        return {decision: counted.get(decision, 0) for decision in (KEEP, BOILERPLATE, DUPLICATE)}

    def header(self) -> str:
        """One line: which document, its language, encoding and the counts."""
        where = str(self.path) if self.single_document else f"{self.path} record {self.record_index}"
        lang = self.lang or "unknown"
        if self.lang is not None and self.lang_prob is not None:
            lang += f" ({self.lang_prob:.2f})"
        c = self.counts
        parts = [
            where,
            f"language {lang}",
            f"encoding {self.encoding}" + (f", extracted by {self.extractor}" if self.extractor else ""),
            f"{len(self.rows)} paragraphs: {c[KEEP]} keep, {c[BOILERPLATE]} boilerplate, {c[DUPLICATE]} duplicate",
        ]
        if self.encoding_fixes:
            parts.append("repaired: " + ", ".join(self.encoding_fixes))
        if self.n_replacement_chars:
            parts.append(f"{self.n_replacement_chars} U+FFFD left")
        return " · ".join(parts)


def format_row(row: ExplainRow, line_width: int = 4, label_width: int = 25) -> str:
    """``  12  keep                      | text`` (plain text, not truncated)."""
    return f"{row.line:>{line_width}}  {row.label:<{label_width}} | {row.text}"


def column_widths(rows: list[ExplainRow]) -> tuple[int, int]:
    """Widths of the line-number and label columns that align every row."""
    line_width = max([4] + [len(str(r.line)) for r in rows])
    label_width = max([25] + [len(r.label) for r in rows])
    return line_width, label_width


# ---------------------------------------------------------------------------------------------


def _read_document(path: Path, config: Config, record: int | None) -> tuple[Document, bool]:
    if not path.exists():
        raise ExplainError(f"file not found: {path}")
    if path.is_dir():
        raise ExplainError(f"{path} is a folder: explain takes one file")
    single = path.name.lower().endswith(_ONE_DOCUMENT_SUFFIXES)
    if single and record not in (None, 0):
        raise ExplainError(f"{path} holds one document: --record must be 0 (it numbers the records of JSON lines, "
                           "JSON, Parquet, CSV and WARC files)")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ExplainError(f"cannot read {path}: {exc.strerror or exc}") from None
    items = read_source(SourceFile(path.resolve(), path.name, size), config.read)
    n_records = 0
    numbers: list[int] = []  # the first few record numbers, for the error (WARC ones need not start at 0)
    try:
        for item in items:
            if item.record_index is None:  # the whole file is unusable (or stopped being readable)
                assert isinstance(item, Reject)
                raise ExplainError(f"cannot read {path}: {item.reason}: {item.detail}")
            n_records += 1
            if len(numbers) < 5:
                numbers.append(item.record_index)
            if record is None:  # the file's first document (a WET file's record 0 is its warcinfo)
                if isinstance(item, Document):
                    return item, single
                continue
            if item.record_index != record:
                continue
            if isinstance(item, Reject):
                raise ExplainError(f"{path} record {record} is rejected: {item.reason}: {item.detail}")
            return item, single
    finally:
        items.close()
    if record is None:
        raise ExplainError(f"{path} has no document to explain ({n_records} records, each rejected or skipped: "
                           "`corpusclean run` lists them in the rejects table)")
    raise ExplainError(
        f"{path} has no record {record} ({n_records} records"
        + (f": {', '.join(map(str, numbers))}{', ...' if n_records > len(numbers) else ''}" if numbers else "")
        + "; --record is the line number in JSON lines, "
        "the row in JSON/Parquet/CSV, the record number in WARC, from 0)"
    )


def _stages(config: Config) -> list[Stage]:
    """The run's own per-batch stages, sketch included (its keys are what duplicates are found on)."""
    try:
        return build_stages(config)
    except ValueError as exc:  # a bad rule pack: the configuration's fault, one line
        raise ExplainError(str(exc)) from None


def _duplicates(batch: Batch, config: Config) -> dict[int, tuple[int, str]]:
    """Paragraph row -> (row of its original, "exact"|"near"), within the one document.

    Uses the sketch stage's keys, so a paragraph is matched exactly as a run matches it (only
    non-chrome paragraphs are keyed: chrome is never an original nor a copy).
    """
    keys = batch.keys
    if keys is None or len(keys.rows) < 2:
        return {}
    dedup = config.dedup
    norm = [normalize_for_dedup(batch.paragraphs.text[int(r)]) for r in keys.rows]

    def get_shingles(indices: np.ndarray) -> list[np.ndarray]:
        return batch_shingle_hashes([norm[int(i)] for i in indices], dedup.ngram)

    found = find_duplicates(keys.exact, keys.bands, get_shingles, dedup.threshold, all_pairs=config.run.reference)
    return {
        int(keys.rows[i]): (int(keys.rows[original]), str(kind))
        for i, (original, kind) in enumerate(zip(found.original, found.kind))
        if original >= 0 and original != i
    }


def explain_file(path: Path | str, config: Config, record: int | None = None) -> Explanation:
    """Run the pipeline's stages on one document of ``path`` and explain every paragraph.

    ``record`` picks the document of a JSON-lines (line number), JSON/Parquet/CSV (row) or WARC
    (record number) file, from 0; ``None``, the file's first document (rejected records and
    WARC records that are not documents skipped). A .txt/.md/.html file is one document. Raises
    ``ExplainError`` (one line) when the file, the record or the configuration cannot be used.
    """
    path = Path(path)
    doc, single = _read_document(path, config, record)
    batch = run_stages(Batch([doc]), _stages(config))
    if not batch.docs:  # repair left no text
        reject = batch.rejects[0]
        raise ExplainError(f"{path} record {doc.record_index} is rejected: {reject.reason}: {reject.detail}")
    doc = batch.docs[0]
    paras = batch.paragraphs

    newlines = [m.start() for m in re.finditer("\n", doc.text)]
    lines = [bisect_right(newlines, start) + 1 for start in paras.char_start]
    chrome = list(paras.is_boilerplate) or [False] * len(paras)
    duplicate_of = {row: (lines[original], kind) for row, (original, kind) in _duplicates(batch, config).items()}

    langs = paras.lang or [None] * len(paras)
    rows: list[ExplainRow] = []
    for i in range(len(paras)):
        common = dict(line=lines[i], paragraph_index=paras.paragraph_index[i], text=paras.text[i], lang=langs[i])
        if chrome[i]:
            rows.append(ExplainRow(decision=BOILERPLATE, reason=paras.boilerplate_reason[i], **common))
        elif i in duplicate_of:
            original_line, kind = duplicate_of[i]
            rows.append(ExplainRow(decision=DUPLICATE, reason=kind, duplicate_of=original_line, **common))
        else:
            rows.append(ExplainRow(decision=KEEP, **common))
    return Explanation(
        path=path,
        record_index=doc.record_index,
        single_document=single,
        lang=doc.lang,
        lang_prob=doc.lang_prob,
        encoding=doc.source_encoding,
        encoding_fixes=list(doc.encoding_fixes),
        n_replacement_chars=doc.n_replacement_chars,
        rows=rows,
        extractor=doc.extractor,
    )
