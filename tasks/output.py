"""Stage 7: write the corpus (Parquet, with provenance) and the run report.

Every file goes into the run's own folder (``runs/<run_id>/``); nothing is visible to readers
until the run commits its manifest (``tasks.corpus_state``). A run writes one part per shard
of new inputs, and a replacement part for each committed part whose rows change.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks import schema
from tasks.corpus_dedup import REPEATED_REASON, PartRewrite, ShardDecisions
from tasks.corpus_state import RUNS_DIR, Part
from tasks.dedup import KIND_NAMES
from tasks.dedup_index import docs_path, filter_keys, write_decisions
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


def _per_row(n: int, key_rows: np.ndarray, decisions: ShardDecisions | None):
    """Per paragraph row: duplicate flag, cluster id, dup kind name, corpus-learned chrome."""
    is_dup = np.zeros(n, bool)
    cluster: list[str | None] = [None] * n
    kind: list[str | None] = [None] * n
    chrome = np.zeros(n, bool)
    if decisions is not None and len(key_rows):
        is_dup[key_rows] = decisions.is_duplicate
        chrome[key_rows] = decisions.chrome
        names = KIND_NAMES
        for row, cid, code in zip(key_rows.tolist(), decisions.cluster, decisions.kind.tolist()):
            cluster[row] = cid
            kind[row] = names[code]
    return is_dup, cluster, kind, chrome


def finalize_shard(
    result: ShardResult, decisions: ShardDecisions, part: Part, out_dir: Path, run_id: str, pipeline_version: str
) -> ShardSummary:
    """Pass 3 for one shard: add the duplicate decisions and write its final files (as ``part`` names them)."""
    started = time.perf_counter()
    summary = ShardSummary(result.index)
    for rel in part.files():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    dedup = part.keys is not None
    # Corpus-learned chrome and duplicates are decided over the whole corpus (corpus_dedup).
    is_dup, cluster, kind, learned_chrome = _per_row(result.n_paragraphs, result.key_rows, decisions if dedup else None)

    para_file = open_staged(result.paragraphs_path)
    doc_file = open_staged(result.documents_path)
    para_writer = pq.ParquetWriter(out_dir / part.paragraphs, schema.PARAGRAPHS, **PARQUET_OPTIONS)
    doc_writer = pq.ParquetWriter(out_dir / part.documents, schema.DOCUMENTS, **PARQUET_OPTIONS)
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
    pq.write_table(rejects.select(schema.REJECTS.names).cast(schema.REJECTS), out_dir / part.rejects, **PARQUET_OPTIONS)
    if dedup:
        os.replace(result.keys_path, out_dir / part.keys)
        os.replace(docs_path(result.keys_path), docs_path(out_dir / part.keys))
        write_decisions(out_dir / part.decisions, decisions.chrome, decisions.cluster, decisions.kind)
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


def rewrite_part(out_dir: Path, part: Part, rewrite: PartRewrite, run_dir: Path) -> Part:
    """Write a replacement for a committed part: new duplicate decisions, superseded rows left out.

    Rows keep their ``run_id`` (the run that ingested them); the committed files are not touched.
    """
    old_run, name = part.paragraphs.split("/")[1], Path(part.paragraphs).stem
    new = part_files(run_dir, out_dir, part.run_id, f"from-{old_run}-{name}", part.sources, part.keys is not None)
    for rel in new.files():
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    paras = pq.read_table(out_dir / part.paragraphs)
    docs = pq.read_table(out_dir / part.documents)
    rejects = pq.read_table(out_dir / part.rejects)
    doc_live = rewrite.doc_live
    para_live = np.repeat(doc_live, docs.column("n_paragraphs").to_numpy())

    if rewrite.decisions is not None:
        key_rows = rewrite.key_rows
        is_dup, cluster, kind, chrome = _per_row(paras.num_rows, key_rows, rewrite.decisions)
        keyed = np.zeros(paras.num_rows, bool)
        keyed[key_rows] = True
        # Keyed rows passed every rule, so their boilerplate flag is exactly the learned-chrome one.
        old_flag = paras.column("is_boilerplate").to_numpy(zero_copy_only=False)
        old_reason = paras.column("boilerplate_reason").to_pylist()
        flag = np.where(keyed, chrome, old_flag)
        reason = [(REPEATED_REASON if c else None) if k else r for k, c, r in zip(keyed, chrome, old_reason)]
        old_is_dup = paras.column("is_duplicate").to_numpy(zero_copy_only=False)
        updates = {
            "is_boilerplate": pa.array(flag, pa.bool_()),
            "boilerplate_reason": pa.array(reason, pa.string()),
            "is_duplicate": pa.array(np.where(keyed, is_dup, old_is_dup), pa.bool_()),
            "duplicate_of": pa.array([c if d else None for c, d in zip(cluster, is_dup)], pa.string()),
            "dup_cluster": pa.array(cluster, pa.string()),
            "dup_kind": pa.array(kind, pa.string()),
        }
        for column, values in updates.items():
            paras = paras.set_column(paras.schema.get_field_index(column), schema.PARAGRAPHS.field(column), values)
    superseded = rewrite.superseded | {p for p, live in zip(docs.column("source_path").to_pylist(), doc_live) if not live}
    paras = paras.filter(pa.array(para_live, pa.bool_()))
    docs = _recount_documents(docs.filter(pa.array(doc_live, pa.bool_())), paras)
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


def _recount_documents(docs: pa.Table, paras: pa.Table) -> pa.Table:
    """Recompute each document's clean text and counts from its (final) paragraph rows."""
    n_par = docs.column("n_paragraphs").to_numpy()
    text = paras.column("text").to_pylist()
    chrome = paras.column("is_boilerplate").to_pylist()
    dup = paras.column("is_duplicate").to_pylist()
    texts, n_kept, n_bp, n_dup = [], [], [], []
    start = 0
    for count in n_par.tolist():
        rows = range(start, start + count)
        start += count
        kept = [text[i] for i in rows if not chrome[i] and not dup[i]]
        texts.append(CLEAN_TEXT_SEPARATOR.join(kept))
        n_kept.append(len(kept))
        n_bp.append(sum(chrome[i] for i in rows))
        n_dup.append(sum(dup[i] and not chrome[i] for i in rows))
    if start != paras.num_rows:
        raise RuntimeError("paragraph rows do not match the documents' paragraph counts")
    for column, values in (("text", pa.array(texts, pa.string())), ("n_kept", pa.array(n_kept, pa.int32())),
                           ("n_boilerplate", pa.array(n_bp, pa.int32())), ("n_duplicate", pa.array(n_dup, pa.int32()))):
        docs = docs.set_column(docs.schema.get_field_index(column), schema.DOCUMENTS.field(column), values)
    return docs


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
