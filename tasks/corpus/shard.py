"""Shards: the unit of parallel work (one Prefect task each).

A run is three passes, so that memory stays bounded whatever the corpus size:

1. ``clean_shard``: read a group of files in batches, run the per-batch stages
   (repair, paragraphs, boilerplate, language, sketch) and stage the result as Parquet
   next to the output. Only the dedup keys come back in memory.
2. ``dedup.find_duplicates`` over the keys of every shard (in ``run_dedup``), verifying
   candidate pairs against the staged text.
3. ``finalize_shard``: join the duplicate decisions to a shard's staged rows and write
   its final ``paragraphs``/``documents``/``rejects`` files.

Shards are contiguous runs of the sorted file list and batches keep file order, so
concatenating the shards' keys gives the global order (source_path, record_index,
paragraph_index) that decides which copy is the original.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from .. import schema
from ..stages.boilerplate import BoilerplateStage
from ..config import Config
from .dedup_index import KeysWriter, write_docs
from ..stages.language import LanguageStage
from ..plumbing.memory import release_memory
from ..stages.paragraphs import ParagraphStage
from ..plumbing.progress import ShardTicker
from ..stages.read import SourceFile, read_source
from ..plumbing.records import Batch, Document, Reject, make_paragraph_id
from ..stages.repair import RepairStage
from ..stages.sketch import DedupKeys, SketchStage, empty_keys, lsh_shape
from ..plumbing.stage import Stage, StageStats, clock, run_stages

# Staged paragraph rows: the final columns minus the decisions taken across the whole run.
_STAGED_PARAGRAPH_COLUMNS = [
    f for f in schema.PARAGRAPHS if f.name not in {"is_duplicate", "duplicate_of", "dup_cluster", "dup_kind", "run_id"}
]
STAGED_PARAGRAPHS = pa.schema(_STAGED_PARAGRAPH_COLUMNS)
STAGED_DOCUMENTS = pa.schema(
    [f for f in schema.DOCUMENTS if f.name not in {"text", "n_kept", "n_boilerplate", "n_duplicate", "n_paragraphs", "run_id", "pipeline_version"}]
)
STAGED_REJECTS = pa.schema([f for f in schema.REJECTS if f.name != "run_id"])


def plan_shards(files: list[SourceFile], shard_mb: float) -> list[list[SourceFile]]:
    """Group the sorted file list into contiguous shards of about ``shard_mb`` each."""
    limit = shard_mb * 1_000_000
    shards: list[list[SourceFile]] = []
    current: list[SourceFile] = []
    size = 0
    for f in files:
        if current and size + f.size > limit:
            shards.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        shards.append(current)
    return shards


def idle_workers_warning(shards: list[list[SourceFile]], shard_mb: float, workers: int, task_runner: str) -> str | None:
    """One line when a file too big for one shard leaves workers idle, else None: a file is never
    split across shards, so one large file (a single big JSON lines or WARC file, say) is cleaned
    by one core whatever ``run.workers`` says."""
    if task_runner == "threads" or workers < 2 or len(shards) >= workers:
        return None
    limit = shard_mb * 1_000_000
    big = [f for shard in shards for f in shard if f.size > limit]
    if not big:
        return None
    largest = max(big, key=lambda f: (f.size, f.rel))
    count = f"{len(shards)} shard" + ("s" if len(shards) > 1 else "")
    return (f"{count} for {workers} workers: {largest.rel} ({largest.size / 1e6:,.1f} MB) is cleaned by one core, "
            f"as a file is never split; split files larger than run.shard_mb ({shard_mb:g} MB) to use every worker")


@dataclass
class ShardResult:
    index: int
    paragraphs_path: Path
    documents_path: Path
    rejects_path: Path
    n_files: int = 0
    bytes_in: int = 0
    n_docs: int = 0
    n_paragraphs: int = 0
    n_rejects: int = 0
    doc_ids: list[str] = field(default_factory=list)  # staged document order
    doc_sites: list[str] = field(default_factory=list)  # site of each document (see document_site)
    key_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # staged paragraph row of each key
    key_doc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # index into doc_ids
    key_pidx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # paragraph_index
    key_len: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # paragraph length, chars
    keys: DedupKeys | None = None
    stats: dict[str, StageStats] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # source_path of every input file of the shard
    unverified: list[str] = field(default_factory=list)  # files that changed while read: no hash in the manifest
    # Per input file with rejects: (documents read, rejects, first reject reason). Files whose every
    # record was rejected are what the summary warns about; any reject makes a file worth reading
    # again when the read settings change (tasks.corpus.corpus_state.plan_inputs).
    file_rejects: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    @property
    def keys_path(self) -> Path:  # staged keys for the persistent index (see dedup_index)
        return self.paragraphs_path.with_name(self.paragraphs_path.name.replace(".paragraphs.arrow", ".keys.arrow"))


_URL_FIELDS = ("url", "link", "source_url", "href")


def document_site(doc: Document) -> str:
    """The site a document comes from: the host of its record's URL if it has one, else its folder."""
    if doc.metadata != "{}":
        try:
            fields = json.loads(doc.metadata)
        except ValueError:
            fields = {}
        for name in _URL_FIELDS:
            value = fields.get(name)
            if isinstance(value, str) and "//" in value:
                host = urlsplit(value).hostname
                if host:
                    return host.removeprefix("www.")
    return doc.source_path.rpartition("/")[0]


def build_stages(config: Config) -> list[Stage]:
    stages: list[Stage] = [
        RepairStage(use_ftfy=config.repair.ftfy, gate=not config.run.reference),
        ParagraphStage(),
        BoilerplateStage(config.boilerplate),
        LanguageStage(
            config.language.prefix_chars,
            config.language.paragraph_min_chars,
            fast=not config.run.reference,
            trials=config.language.trials,
        ),
    ]
    if config.dedup.enabled:
        stages.append(SketchStage(config.dedup, reference=config.run.reference))
    return stages


def iter_batches(
    files: list[SourceFile], config: Config, read_stats: StageStats,
    file_rejects: dict[str, tuple[int, int, str]] | None = None, position: list[int] | None = None,
) -> Iterator[Batch]:
    """Read files in order and yield batches of at most ``run.batch_docs`` documents and about
    ``run.batch_mb`` of text: a batch's working set follows its lines, and a real web page holds
    hundreds of short ones, so a count of documents alone does not bound it.

    A ``MemoryError`` while reading a file (under a memory cap) rejects that file's remaining
    records (``too_large``) and the shard goes on with the next file.

    ``position[0]`` follows the input bytes read so far, for progress: whole files read, plus the
    text characters of the current file's documents (an estimate: markup, headers and multi-byte
    characters make a file's bytes more than its text), so a single big file moves too."""
    docs: list[Document] = []
    rejects: list[Reject] = []
    chars = 0
    max_chars = config.run.batch_mb * 1_000_000
    position = position if position is not None else [0]
    files_done = 0
    for src in files:
        in_file = 0
        started = clock()
        read_stats.chars_in += src.size  # bytes, for the read stage
        n_docs = n_rejects = 0
        first_reason = ""
        skipped: Counter = Counter()  # records that are not documents by nature (WARC request, metadata...)
        items = read_source(src, config.read, skipped)
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except MemoryError:
                items.close()
                release_memory()
                item = Reject(src.rel, None, "too_large", "ran out of memory reading the file (lower read.max_record_mb)",
                              src.sha256)
                rejects.append(item)
                read_stats.counts["reject:too_large"] += 1
                n_rejects += 1
                first_reason = first_reason or item.reason
                break
            if isinstance(item, Reject):
                rejects.append(item)
                read_stats.counts[f"reject:{item.reason}"] += 1
                n_rejects += 1
                first_reason = first_reason or item.reason
            else:
                n_docs += 1
                docs.append(item)
                chars += len(item.text)
                in_file += len(item.text)
                read_stats.counts[f"encoding:{item.source_encoding}"] += 1
            del item
            if len(docs) >= config.run.batch_docs or chars >= max_chars:
                read_stats.add_time(started)
                position[0] = files_done + min(in_file, src.size)
                yield Batch(docs, rejects=rejects)
                docs, rejects = [], []
                chars = 0
                started = clock()
        read_stats.add_time(started)
        read_stats.counts["files"] += 1
        files_done += src.size
        position[0] = files_done
        for kind, n in skipped.items():
            read_stats.counts[f"skipped:{kind}"] += n
        if n_rejects and file_rejects is not None:
            file_rejects[src.rel] = (n_docs, n_rejects, first_reason)
    if docs or rejects:
        yield Batch(docs, rejects=rejects)


def run_stages_bounded(batch: Batch, stages: list[Stage]) -> Iterator[Batch]:
    """The cleaned batch; after a ``MemoryError`` (under a memory cap), its documents one by one,
    and a document that alone runs out of memory becomes a ``too_large`` reject."""
    try:
        yield run_stages(batch, stages)
        return
    except MemoryError:
        pass
    docs, rejects = batch.docs, batch.rejects
    batch = None  # let the failed batch's partial results go
    release_memory()
    if rejects:
        yield Batch([], rejects=rejects)
    for doc in docs:
        try:
            one = run_stages(Batch([doc]), stages)
        except MemoryError:
            one = None
        if one is None:
            release_memory()
            yield Batch([], rejects=[Reject(doc.source_path, doc.record_index, "too_large",
                                             f"record {doc.record_index}: ran out of memory cleaning it "
                                             "(lower read.max_record_mb)", doc.source_sha256)])
        else:
            yield one


def open_staged(path: Path) -> pa.ipc.RecordBatchFileReader:
    """A staged file, memory-mapped: one record batch per cleaned batch, read without copying."""
    return pa.ipc.open_file(pa.memory_map(str(path)))


def _paragraph_table(batch: Batch) -> pa.RecordBatch:
    paras = batch.paragraphs
    docs = batch.docs
    pos = paras.doc_pos
    return pa.RecordBatch.from_pydict(
        {
            "paragraph_id": [make_paragraph_id(docs[p].doc_id, i) for p, i in zip(pos, paras.paragraph_index)],
            "doc_id": [docs[p].doc_id for p in pos],
            "source_path": [docs[p].source_path for p in pos],
            "source_sha256": [docs[p].source_sha256 for p in pos],
            "record_index": [docs[p].record_index for p in pos],
            "paragraph_index": paras.paragraph_index,
            "char_start": paras.char_start,
            "char_end": paras.char_end,
            "text": paras.text,
            "lang": paras.lang,
            "is_boilerplate": paras.is_boilerplate,
            "boilerplate_reason": paras.boilerplate_reason,
        },
        schema=STAGED_PARAGRAPHS,
    )


def _records_table(records: list, table_schema: pa.Schema, attribute: dict[str, str] | None = None) -> pa.RecordBatch:
    """One column per schema field, read from the records' attribute of the same name (or as mapped)."""
    attribute = attribute or {}
    return pa.RecordBatch.from_pydict(
        {f.name: [getattr(r, attribute.get(f.name, f.name)) for r in records] for f in table_schema},
        schema=table_schema,
    )


def _document_table(docs: list[Document]) -> pa.RecordBatch:
    return _records_table(docs, STAGED_DOCUMENTS, {"source_text": "text"})


def reject_table(rejects: list[Reject]) -> pa.RecordBatch:
    return _records_table(rejects, STAGED_REJECTS)


def clean_shard(index: int, files: list[SourceFile], config: Config, staging_dir: Path) -> ShardResult:
    """Pass 1 for one shard: read, clean and stage; return the dedup keys and stage stats."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    result = ShardResult(
        index,
        staging_dir / f"shard-{index:05d}.paragraphs.arrow",
        staging_dir / f"shard-{index:05d}.documents.arrow",
        staging_dir / f"shard-{index:05d}.rejects.arrow",
        n_files=len(files),
        bytes_in=sum(f.size for f in files),
        sources=[f.rel for f in files],
    )
    read_stats = StageStats("read")
    stages = build_stages(config)
    n_bands = lsh_shape(config.dedup)[0] if config.dedup.enabled else None
    key_rows: list[np.ndarray] = []
    key_doc: list[np.ndarray] = []
    key_pidx: list[np.ndarray] = []
    key_len: list[np.ndarray] = []
    doc_sources: list[str] = []
    # Staged files are Arrow IPC (uncompressed, memory-mapped when read back): they live
    # for one run, so fast beats small. Paragraphs and documents get one record batch per
    # cleaned batch, so batch i of one file matches batch i of the other.
    writers = {
        "paragraphs": pa.ipc.new_file(str(result.paragraphs_path), STAGED_PARAGRAPHS),
        "documents": pa.ipc.new_file(str(result.documents_path), STAGED_DOCUMENTS),
        "rejects": pa.ipc.new_file(str(result.rejects_path), STAGED_REJECTS),
    }
    # This shard's share of the persistent dedup index, written as it is cleaned (moved into place at finalize).
    keys_writer = KeysWriter(result.keys_path, n_bands) if n_bands is not None else None
    ticker = ShardTicker(staging_dir, index)  # the run's progress display reads it back
    position = [0]  # input bytes read so far (iter_batches)
    try:
        for batch in (
            b for read in iter_batches(files, config, read_stats, result.file_rejects, position)
            for b in run_stages_bounded(read, stages)
        ):
            started = clock()
            keys: DedupKeys = batch.keys if batch.keys is not None else empty_keys(n_bands)
            doc_offset, row_offset = result.n_docs, result.n_paragraphs
            pos = np.asarray(batch.paragraphs.doc_pos, np.int32)
            pidx = np.asarray(batch.paragraphs.paragraph_index, np.int32)
            key_rows.append(keys.rows + row_offset)
            key_doc.append(pos[keys.rows] + doc_offset)
            key_pidx.append(pidx[keys.rows])
            key_len.append(np.fromiter((len(batch.paragraphs.text[i]) for i in keys.rows), np.int32, len(keys.rows)))
            if keys_writer is not None:
                keys_writer.write(key_rows[-1], key_doc[-1], key_pidx[-1], key_len[-1], keys)
            if batch.docs:
                writers["paragraphs"].write_batch(_paragraph_table(batch))
                writers["documents"].write_batch(_document_table(batch.docs))
            if batch.rejects:
                writers["rejects"].write_batch(reject_table(batch.rejects))
                result.unverified.extend(r.source_path for r in batch.rejects if r.reason == "changed_during_run")
            result.doc_ids.extend(d.doc_id for d in batch.docs)
            result.doc_sites.extend(document_site(d) for d in batch.docs)
            doc_sources.extend(d.source_path for d in batch.docs)
            result.n_docs += len(batch.docs)
            result.n_paragraphs += len(batch.paragraphs)
            result.n_rejects += len(batch.rejects)
            stage_write = result.stats.setdefault("stage_write", StageStats("stage_write"))
            stage_write.add_time(started)
            stage_write.lines_in += len(batch.paragraphs)
            ticker.tick(position[0], result.n_docs, read_stats.counts["files"])
        ticker.tick(result.bytes_in, result.n_docs, result.n_files, final=True)
    finally:
        for writer in writers.values():
            writer.close()
        if keys_writer is not None:
            keys_writer.close()
    result.key_rows = np.concatenate(key_rows) if key_rows else np.zeros(0, np.int64)
    result.key_doc = np.concatenate(key_doc) if key_doc else np.zeros(0, np.int32)
    result.key_pidx = np.concatenate(key_pidx) if key_pidx else np.zeros(0, np.int32)
    result.key_len = np.concatenate(key_len) if key_len else np.zeros(0, np.int32)
    if keys_writer is not None:
        write_docs(result.keys_path, result.doc_ids, result.doc_sites, doc_sources)
        result.keys = None  # the run-level dedup reads them from the file: none travel back in memory
    else:
        result.keys = empty_keys(None)  # dedup off: no sketch stage, so no paragraph has keys
    result.stats["read"] = read_stats
    for stage in stages:
        result.stats[stage.name] = stage.stats
    return result
