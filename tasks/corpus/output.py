"""Stage 7: write the corpus (Parquet, with provenance) and the run report.

Every file goes into the run's own folder (``runs/<run_id>/``); nothing is visible to readers
until the run commits its manifest (``tasks.corpus.corpus_state``). A run writes one part per shard
of new inputs, and a replacement part for each committed part whose rows change.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import schema
from . import report_html
from .corpus_dedup import REPEATED_REASON, PartRewrite, ShardDecisions
from .corpus_state import RUNS_DIR, Part
from ..stages.dedup import KIND_NAMES
from .dedup_index import docs_path, filter_keys, write_decisions
from .shard import ShardResult, open_staged
from ..plumbing.stage import StageStats, clock

PARQUET_OPTIONS = {"compression": "zstd"}
CLEAN_TEXT_SEPARATOR = "\n\n"


@dataclass
class ShardSummary:
    index: int
    documents: int = 0
    paragraphs: int = 0
    kept: int = 0
    rejects: int = 0
    boilerplate: Counter = field(default_factory=Counter)  # reason -> paragraphs
    reject_reasons: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)  # document language -> documents
    chars_clean: int = 0
    stats: StageStats = field(default_factory=lambda: StageStats("write"))
    # The report's per-paragraph figures of the part's paragraphs file (report_html.add_figures),
    # computed while writing it, and that file's path.
    figures: dict | None = None
    figures_of: str = ""


def run_folder(out_dir: Path, run_id: str) -> Path:
    return out_dir / RUNS_DIR / run_id


def staging_folder(out_dir: Path, run_id: str) -> Path:
    return out_dir / f".staging-{run_id}"


def part_files(run_dir: Path, out_dir: Path, run_id: str, name: str, sources: list[str], dedup: bool) -> Part:
    """The files of one new part (``name`` like ``part-00003``), as the manifest will list them."""
    rel = run_dir.relative_to(out_dir).as_posix()
    return Part(
        run_id=run_id,
        documents=f"{rel}/documents/{name}.parquet",
        paragraphs=f"{rel}/paragraphs/{name}.parquet",
        rejects=f"{rel}/rejects/{name}.parquet",
        keys=f"{rel}/keys/{name}.arrow" if dedup else None,
        decisions=f"{rel}/decisions/{name}.arrow" if dedup else None,
        sources=list(sources),
    )


@dataclass
class RowDecisions:
    """The corpus-level decisions, per paragraph row of a shard or part."""

    keyed: np.ndarray  # bool: the row took part in dedup (it passed every boilerplate rule)
    chrome: np.ndarray  # bool: corpus-learned chrome (keyed rows only)
    is_dup: np.ndarray  # bool
    cluster: list[str | None]  # paragraph_id of the cluster's original
    kind: list[str | None]  # "exact" | "near" on duplicates

    @classmethod
    def of(cls, n: int, key_rows: np.ndarray, decisions: ShardDecisions | None) -> RowDecisions:
        d = cls(np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), [None] * n, [None] * n)
        if decisions is not None and len(key_rows):
            d.keyed[key_rows] = True
            d.is_dup[key_rows] = decisions.is_duplicate
            d.chrome[key_rows] = decisions.chrome
            for row, cid, code in zip(key_rows.tolist(), decisions.cluster, decisions.kind.tolist()):
                d.cluster[row] = cid
                d.kind[row] = KIND_NAMES[code]
        return d

    def __getitem__(self, rows: slice) -> RowDecisions:
        return RowDecisions(self.keyed[rows], self.chrome[rows], self.is_dup[rows], self.cluster[rows], self.kind[rows])


def _decided_paragraphs(paras: pa.RecordBatch | pa.Table, d: RowDecisions, run_id: str | None) -> pa.Table:
    """Paragraph rows (staged or committed) with the corpus-level decisions applied.

    Keyed rows passed every rule, so their boilerplate flag is exactly the learned-chrome one
    (which a later run may also take back); other rows keep theirs. ``run_id`` fills the
    column for new rows; committed rows (``None``) keep the run that ingested them.
    """
    columns = {name: paras.column(name) for name in paras.schema.names}
    old_flag = np.asarray(columns["is_boilerplate"].to_numpy(zero_copy_only=False), bool)
    flag = np.where(d.keyed, d.chrome, old_flag)
    changed = np.flatnonzero(flag != old_flag)
    if changed.size:
        reason = columns["boilerplate_reason"].to_pylist()
        for i in changed.tolist():
            reason[i] = REPEATED_REASON if flag[i] else None
        columns["is_boilerplate"] = pa.array(flag, pa.bool_())
        columns["boilerplate_reason"] = pa.array(reason, pa.string())
    columns["is_duplicate"] = pa.array(d.is_dup, pa.bool_())
    columns["duplicate_of"] = pa.array([c if dup else None for c, dup in zip(d.cluster, d.is_dup)], pa.string())
    columns["dup_cluster"] = pa.array(d.cluster, pa.string())
    columns["dup_kind"] = pa.array(d.kind, pa.string())
    if run_id is not None:
        columns["run_id"] = pa.array([run_id] * paras.num_rows, pa.string())
    return pa.table([columns[name] for name in schema.PARAGRAPHS.names], schema=schema.PARAGRAPHS)


def _array(column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _documents_by_arrays(docs: pa.RecordBatch | pa.Table, paras: pa.Table) -> dict[str, pa.Array] | None:
    """``_documents_from_paragraphs`` with Arrow and numpy (no Python step per paragraph), when the
    rows are simple: distinct document ids, every paragraph's document among them, in document
    order, and no null flag. None otherwise (the loop below then decides, and raises if it must)."""
    doc_ids = _array(docs.column("doc_id"))
    n_docs, total = len(doc_ids), paras.num_rows
    flags = [_array(paras.column(name)) for name in ("is_boilerplate", "is_duplicate")]
    if doc_ids.null_count or any(f.null_count for f in flags):
        return None
    if n_docs and pc.count_distinct(doc_ids).as_py() != n_docs:
        return None
    where = _array(pc.index_in(paras.column("doc_id"), value_set=doc_ids))
    if where.null_count:
        return None
    doc = where.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if total > 1 and bool(np.any(doc[1:] < doc[:-1])):
        return None
    chrome, dup = (np.asarray(f.to_numpy(zero_copy_only=False), bool) for f in flags)
    dup &= ~chrome  # a paragraph is counted once: boilerplate first
    kept = ~(chrome | dup)
    n_kept = np.bincount(doc[kept], minlength=n_docs)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(n_kept, out=offsets[1:])
    kept_text = _array(paras.column("text")).filter(pa.array(kept, pa.bool_()))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), kept_text)
    return {
        "text": pc.binary_join(lists, CLEAN_TEXT_SEPARATOR).cast(pa.string()),
        "n_paragraphs": pa.array(np.bincount(doc, minlength=n_docs), pa.int32()),
        "n_kept": pa.array(n_kept, pa.int32()),
        "n_boilerplate": pa.array(np.bincount(doc[chrome], minlength=n_docs), pa.int32()),
        "n_duplicate": pa.array(np.bincount(doc[dup], minlength=n_docs), pa.int32()),
    }


def _documents_from_paragraphs(docs: pa.RecordBatch | pa.Table, paras: pa.Table) -> dict[str, pa.Array]:
    """Each document's clean text and counts, from its final paragraph rows (grouped by document, in order)."""
    by_arrays = _documents_by_arrays(docs, paras)
    if by_arrays is not None:
        return by_arrays
    p_doc = paras.column("doc_id").to_pylist()
    p_text = paras.column("text").to_pylist()
    p_chrome = paras.column("is_boilerplate").to_pylist()
    p_dup = paras.column("is_duplicate").to_pylist()
    texts, n_par, n_kept, n_bp, n_dup = [], [], [], [], []
    i, total = 0, len(p_doc)
    for doc_id in docs.column("doc_id").to_pylist():
        kept_text: list[str] = []
        counts = [0, 0, 0]  # paragraphs, boilerplate, duplicate
        while i < total and p_doc[i] == doc_id:
            counts[0] += 1
            if p_chrome[i]:
                counts[1] += 1
            elif p_dup[i]:
                counts[2] += 1
            else:
                kept_text.append(p_text[i])
            i += 1
        texts.append(CLEAN_TEXT_SEPARATOR.join(kept_text))
        n_par.append(counts[0])
        n_kept.append(len(kept_text))
        n_bp.append(counts[1])
        n_dup.append(counts[2])
    if i != total:
        raise RuntimeError("paragraph rows are not grouped by document in document order")
    return {
        "text": pa.array(texts, pa.string()),
        "n_paragraphs": pa.array(n_par, pa.int32()),
        "n_kept": pa.array(n_kept, pa.int32()),
        "n_boilerplate": pa.array(n_bp, pa.int32()),
        "n_duplicate": pa.array(n_dup, pa.int32()),
    }


def finalize_shard(
    result: ShardResult, decisions: ShardDecisions, part: Part, out_dir: Path, run_id: str, pipeline_version: str
) -> ShardSummary:
    """Pass 3 for one shard: add the duplicate decisions and write its final files (as ``part`` names them)."""
    started = clock()
    summary = ShardSummary(result.index)
    for rel in part.files():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    dedup = part.keys is not None
    # Corpus-learned chrome and duplicates are decided over the whole corpus (corpus_dedup).
    decided = RowDecisions.of(result.n_paragraphs, result.key_rows, decisions if dedup else None)

    # Read, not memory-mapped: every page of a mapped file stays in the worker's RSS once touched,
    # so finalizing a shard of one 1 GB file held all of its staged text; a read batch is freed
    # once written.
    para_source, doc_source = pa.OSFile(str(result.paragraphs_path)), pa.OSFile(str(result.documents_path))
    para_file = pa.ipc.open_file(para_source)
    doc_file = pa.ipc.open_file(doc_source)
    para_writer = pq.ParquetWriter(out_dir / part.paragraphs, schema.PARAGRAPHS, **PARQUET_OPTIONS)
    doc_writer = pq.ParquetWriter(out_dir / part.documents, schema.DOCUMENTS, **PARQUET_OPTIONS)
    figures, site_of = report_html.empty_figures(), dict(zip(result.doc_ids, result.doc_sites))
    try:
        offset = 0
        # Staged files are written batch by batch, one record batch per batch on both sides.
        for group in range(doc_file.num_record_batches):
            docs = doc_file.get_batch(group)
            paras = para_file.get_batch(group)
            final = _decided_paragraphs(paras, decided[offset : offset + paras.num_rows], run_id)
            offset += paras.num_rows
            para_writer.write_table(final)
            report_html.add_figures(figures, final, site_of)
            doc_writer.write_table(_final_documents(docs, final, run_id, pipeline_version, summary))
    finally:
        para_writer.close()
        doc_writer.close()
        para_source.close()
        doc_source.close()
    rejects = open_staged(result.rejects_path).read_all()
    summary.rejects = rejects.num_rows
    summary.reject_reasons.update(rejects.column("reason").to_pylist())
    rejects = rejects.append_column("run_id", pa.array([run_id] * rejects.num_rows, pa.string()))
    pq.write_table(rejects.select(schema.REJECTS.names).cast(schema.REJECTS), out_dir / part.rejects, **PARQUET_OPTIONS)
    if dedup:
        os.replace(result.keys_path, out_dir / part.keys)
        os.replace(docs_path(result.keys_path), docs_path(out_dir / part.keys))
        write_decisions(out_dir / part.decisions, decisions.chrome, decisions.cluster, decisions.kind)
    summary.figures, summary.figures_of = figures, part.paragraphs
    summary.stats.add_time(started)
    summary.stats.chars_in = result.bytes_in
    summary.stats.lines_in = result.n_paragraphs
    return summary


def _final_documents(
    docs: pa.RecordBatch, paras: pa.Table, run_id: str, pipeline_version: str, summary: ShardSummary
) -> pa.Table:
    counted = _documents_from_paragraphs(docs, paras)
    chrome = _array(paras.column("is_boilerplate"))
    reasons = _array(paras.column("boilerplate_reason")).filter(chrome.fill_null(False))
    if reasons.null_count:  # (never written: a flagged row has its reason)
        summary.boilerplate.update(reasons.to_pylist())
    elif len(reasons):  # value_counts lists values in order of first appearance, as Counter.update counts them
        counts = pc.value_counts(reasons)
        summary.boilerplate.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
    summary.chars_clean += pc.sum(pc.utf8_length(counted["text"])).as_py() or 0
    summary.documents += docs.num_rows
    summary.paragraphs += paras.num_rows
    summary.kept += pc.sum(counted["n_kept"]).as_py() or 0
    summary.languages.update(docs.column("lang").to_pylist())
    columns = {name: docs.column(name) for name in docs.column_names}
    columns.update(
        counted,
        run_id=pa.array([run_id] * docs.num_rows, pa.string()),
        pipeline_version=pa.array([pipeline_version] * docs.num_rows, pa.string()),
    )
    return pa.table([columns[name] for name in schema.DOCUMENTS.names], schema=schema.DOCUMENTS)


def rewrite_part(out_dir: Path, part: Part, rewrite: PartRewrite, run_dir: Path) -> Part:
    """Write a replacement for a committed part: new duplicate decisions, superseded rows left out.

    Rows keep their ``run_id`` (the run that ingested them); the committed files are not touched.
    """
    rewrite = rewrite.load()  # its decisions, staged by the search
    old_run, name = part.paragraphs.split("/")[1], Path(part.paragraphs).stem
    new = part_files(run_dir, out_dir, part.run_id, f"from-{old_run}-{name}", part.sources, part.keys is not None)
    for rel in new.files():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    paras = pq.read_table(out_dir / part.paragraphs)
    docs = pq.read_table(out_dir / part.documents)
    rejects = pq.read_table(out_dir / part.rejects)
    doc_live = rewrite.doc_live
    para_live = np.repeat(doc_live, docs.column("n_paragraphs").to_numpy())

    # Committed rows keep their run_id. With dedup off (no decisions) every row is unkeyed.
    paras = _decided_paragraphs(paras, RowDecisions.of(paras.num_rows, rewrite.key_rows, rewrite.decisions), None)
    superseded = rewrite.superseded | {p for p, live in zip(docs.column("source_path").to_pylist(), doc_live) if not live}
    paras = paras.filter(pa.array(para_live, pa.bool_()))
    docs = docs.filter(pa.array(doc_live, pa.bool_()))
    for column, values in _documents_from_paragraphs(docs, paras).items():
        docs = docs.set_column(docs.schema.get_field_index(column), schema.DOCUMENTS.field(column), values)
    if superseded:
        rejects = rejects.filter(pa.array([p not in superseded for p in rejects.column("source_path").to_pylist()], pa.bool_()))
    pq.write_table(paras, out_dir / new.paragraphs, **PARQUET_OPTIONS)
    pq.write_table(docs, out_dir / new.documents, **PARQUET_OPTIONS)
    pq.write_table(rejects, out_dir / new.rejects, **PARQUET_OPTIONS)
    if part.keys is not None:
        if doc_live.all():
            new.keys = part.keys  # same rows: the committed keys stay valid
        else:
            filter_keys(out_dir / part.keys, out_dir / new.keys, doc_live, np.cumsum(para_live) - 1)
        d = rewrite.decisions
        write_decisions(out_dir / new.decisions, d.chrome, d.cluster, d.kind)
    return new
