"""Stage 7: write the corpus (Parquet, with provenance) and the run report.

Files are written into a hidden run folder next to the output and only moved into place
once every shard is complete, so a crash never leaves a half-written file where readers
look. A run replaces the previous run's tables: running twice over the same input gives
the same rows, not twice as many.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks import schema
from tasks.corpus_dedup import REPEATED_REASON, ShardDecisions
from tasks.shard import ShardResult, open_staged
from tasks.stage import StageStats

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


def run_folder(out_dir: Path, run_id: str) -> Path:
    return out_dir / f".run-{run_id}"


def staging_folder(out_dir: Path, run_id: str) -> Path:
    return out_dir / f".staging-{run_id}"


def _part_path(run_dir: Path, table: str, index: int) -> Path:
    return run_dir / table / f"part-{index:05d}.parquet"


def finalize_shard(
    result: ShardResult, decisions: ShardDecisions, run_dir: Path, run_id: str, pipeline_version: str
) -> ShardSummary:
    """Pass 3 for one shard: add the duplicate decisions and write its final files."""
    started = time.perf_counter()
    summary = ShardSummary(result.index)
    for table in schema.TABLES:
        (run_dir / table).mkdir(parents=True, exist_ok=True)

    n = result.n_paragraphs
    is_dup = np.zeros(n, bool)
    cluster: list[str | None] = [None] * n
    kind: list[str | None] = [None] * n
    for row, cid, dup, k in zip(decisions.rows.tolist(), decisions.cluster, decisions.is_duplicate, decisions.kind):
        cluster[row] = cid
        is_dup[row] = dup
        kind[row] = k
    learned_chrome = np.zeros(n, bool)  # corpus-learned chrome, decided over the whole run
    learned_chrome[decisions.chrome_rows] = True

    para_file = open_staged(result.paragraphs_path)
    doc_file = open_staged(result.documents_path)
    para_writer = pq.ParquetWriter(_part_path(run_dir, "paragraphs", result.index), schema.PARAGRAPHS, **PARQUET_OPTIONS)
    doc_writer = pq.ParquetWriter(_part_path(run_dir, "documents", result.index), schema.DOCUMENTS, **PARQUET_OPTIONS)
    try:
        offset = 0
        # Staged files are written batch by batch, one record batch per batch on both sides.
        for group in range(doc_file.num_record_batches):
            docs = doc_file.get_batch(group)
            paras = para_file.get_batch(group)
            rows = slice(offset, offset + paras.num_rows)
            offset += paras.num_rows
            paras = _with_learned_chrome(paras, learned_chrome[rows])
            para_writer.write_table(_final_paragraphs(paras, is_dup[rows], cluster[rows], kind[rows], run_id))
            doc_writer.write_table(_final_documents(docs, paras, is_dup[rows], run_id, pipeline_version, summary))
    finally:
        para_writer.close()
        doc_writer.close()
    rejects = open_staged(result.rejects_path).read_all()
    summary.rejects = rejects.num_rows
    summary.reject_reasons.update(rejects.column("reason").to_pylist())
    rejects = rejects.append_column("run_id", pa.array([run_id] * rejects.num_rows, pa.string()))
    pq.write_table(rejects.select(schema.REJECTS.names).cast(schema.REJECTS), _part_path(run_dir, "rejects", result.index), **PARQUET_OPTIONS)
    summary.stats.seconds = time.perf_counter() - started
    summary.stats.chars_in = result.bytes_in
    return summary


def _with_learned_chrome(paras: pa.RecordBatch, learned: np.ndarray) -> pa.RecordBatch:
    if not learned.any():
        return paras
    chrome = np.asarray(paras.column("is_boilerplate").to_numpy(zero_copy_only=False)) | learned
    reasons = [REPEATED_REASON if new else old for new, old in zip(learned, paras.column("boilerplate_reason").to_pylist())]
    columns = {name: paras.column(name) for name in paras.schema.names}
    columns["is_boilerplate"] = pa.array(chrome, pa.bool_())
    columns["boilerplate_reason"] = pa.array(reasons, pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=paras.schema)


def _final_paragraphs(paras: pa.RecordBatch, is_dup: np.ndarray, cluster: list, kind: list, run_id: str) -> pa.Table:
    columns = {name: paras.column(name) for name in paras.column_names}
    columns["is_duplicate"] = pa.array(is_dup, pa.bool_())
    columns["duplicate_of"] = pa.array([c if d else None for c, d in zip(cluster, is_dup)], pa.string())
    columns["dup_cluster"] = pa.array(cluster, pa.string())
    columns["dup_kind"] = pa.array(kind, pa.string())
    columns["run_id"] = pa.array([run_id] * paras.num_rows, pa.string())
    return pa.table([columns[name] for name in schema.PARAGRAPHS.names], schema=schema.PARAGRAPHS)


def _final_documents(
    docs: pa.RecordBatch, paras: pa.RecordBatch, is_dup: np.ndarray, run_id: str, pipeline_version: str, summary: ShardSummary
) -> pa.Table:
    doc_ids = docs.column("doc_id").to_pylist()
    p_doc = paras.column("doc_id").to_pylist()
    p_text = paras.column("text").to_pylist()
    p_chrome = paras.column("is_boilerplate").to_pylist()
    p_reason = paras.column("boilerplate_reason").to_pylist()
    texts, n_par, n_kept, n_bp, n_dup = [], [], [], [], []
    i, total = 0, len(p_doc)
    for doc_id in doc_ids:
        kept_text: list[str] = []
        counts = [0, 0, 0, 0]  # paragraphs, kept, boilerplate, duplicate
        while i < total and p_doc[i] == doc_id:
            counts[0] += 1
            if p_chrome[i]:
                counts[2] += 1
                summary.boilerplate[p_reason[i]] += 1
            elif is_dup[i]:
                counts[3] += 1
            else:
                counts[1] += 1
                kept_text.append(p_text[i])
            i += 1
        text = CLEAN_TEXT_SEPARATOR.join(kept_text)
        summary.chars_clean += len(text)
        texts.append(text)
        n_par.append(counts[0])
        n_kept.append(counts[1])
        n_bp.append(counts[2])
        n_dup.append(counts[3])
    if i != total:
        raise RuntimeError("staged paragraphs are not grouped by document in document order")
    summary.documents += len(doc_ids)
    summary.paragraphs += total
    summary.kept += sum(n_kept)
    summary.languages.update(docs.column("lang").to_pylist())
    columns = {name: docs.column(name) for name in docs.column_names}
    columns.update(
        text=pa.array(texts, pa.string()),
        n_paragraphs=pa.array(n_par, pa.int32()),
        n_kept=pa.array(n_kept, pa.int32()),
        n_boilerplate=pa.array(n_bp, pa.int32()),
        n_duplicate=pa.array(n_dup, pa.int32()),
        run_id=pa.array([run_id] * len(doc_ids), pa.string()),
        pipeline_version=pa.array([pipeline_version] * len(doc_ids), pa.string()),
    )
    return pa.table([columns[name] for name in schema.DOCUMENTS.names], schema=schema.DOCUMENTS)


def commit_output(out_dir: Path, run_dir: Path, run_id: str) -> None:
    """Move a complete run folder into place, replacing the previous run's tables."""
    trash = out_dir / f".trash-{run_id}"
    trash.mkdir(exist_ok=True)
    for table in schema.TABLES:
        final = out_dir / table
        if final.exists():
            final.rename(trash / table)
        (run_dir / table).rename(final)
    for name in ("report.json", "report.md"):
        if (run_dir / name).exists():
            os.replace(run_dir / name, out_dir / name)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
