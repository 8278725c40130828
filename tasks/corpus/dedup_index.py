"""The persistent dedup index: each committed part's keys and decisions, beside its Parquet files.

Keeping the keys lets a later run deduplicate new paragraphs against the whole corpus
without recomputing anything for the paragraphs already committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ..stages.sketch import DedupKeys

# Bumped whenever keys computed from the same text and settings would differ (normalisation,
# hashing): a corpus's committed keys are only comparable with keys of the same format.
INDEX_FORMAT = 1

# Beside each part's Parquet files, three Arrow IPC files hold its share of the dedup index:
#   keys/part-N.arrow       one row per keyed paragraph: row, doc, pidx, length, exact key, band keys
#   keys/part-N.docs.arrow  one row per document: doc_id, site, source_path
#   decisions/part-N.arrow  one row per keyed paragraph: chrome, cluster, kind (as last committed)
# Per keyed paragraph that is 16 + 8 * bands + 20 bytes of keys (204 B with the defaults) and
# about 10 bytes of decisions (plus the original's id on cluster members).


def _keys_schema(n_bands: int) -> pa.Schema:
    return pa.schema(
        [
            ("row", pa.int64()),
            ("doc", pa.int32()),
            ("pidx", pa.int32()),
            ("length", pa.int32()),
            ("exact_hi", pa.uint64()),
            ("exact_lo", pa.uint64()),
            ("bands", pa.list_(pa.uint64(), n_bands)),
        ]
    )


DOCS_SCHEMA = pa.schema([("doc_id", pa.string()), ("site", pa.string()), ("source_path", pa.string())])
DECISIONS_SCHEMA = pa.schema([("chrome", pa.bool_()), ("cluster", pa.string()), ("kind", pa.int8())])


def docs_path(keys_path: Path) -> Path:
    return keys_path.with_name(keys_path.name.removesuffix(".arrow") + ".docs.arrow")


def write_ipc(path: Path, table: pa.Table) -> None:
    """``table`` as an Arrow IPC file (its folder made if missing); ``read_ipc`` reads it back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)


def _keys_batch(key_rows, key_doc, key_pidx, key_len, keys: DedupKeys) -> pa.RecordBatch:
    n_bands = keys.bands.shape[1]
    return pa.record_batch(
        [
            pa.array(np.asarray(key_rows, np.int64)),
            pa.array(np.asarray(key_doc, np.int32)),
            pa.array(np.asarray(key_pidx, np.int32)),
            pa.array(np.asarray(key_len, np.int32)),
            pa.array(np.ascontiguousarray(keys.exact[:, 0])),
            pa.array(np.ascontiguousarray(keys.exact[:, 1])),
            pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(keys.bands).reshape(-1)), n_bands),
        ],
        schema=_keys_schema(n_bands),
    )


def write_docs(keys_path: Path, doc_ids: list[str], doc_sites: list[str], source_paths: list[str]) -> None:
    write_ipc(docs_path(keys_path), pa.table([doc_ids, doc_sites, source_paths], schema=DOCS_SCHEMA))


def write_keys(
    path: Path,
    key_rows: np.ndarray,
    key_doc: np.ndarray,
    key_pidx: np.ndarray,
    key_len: np.ndarray,
    keys: DedupKeys,
    doc_ids: list[str],
    doc_sites: list[str],
    source_paths: list[str],
) -> None:
    """Write a new part's share of the index: per keyed paragraph and per document (in order)."""
    batch = _keys_batch(key_rows, key_doc, key_pidx, key_len, keys)
    write_ipc(path, pa.Table.from_batches([batch]))
    write_docs(path, doc_ids, doc_sites, source_paths)


class KeysWriter:
    """A shard's keys written batch by batch as it is cleaned (then its documents, with ``write_docs``):
    a shard's keys (204 bytes per keyed paragraph) are never all in memory, whatever its size.
    Readers get one record batch per cleaned batch: ``read_keys`` copies them into one array,
    ``read_exact`` and ``read_bands`` read only what a step needs."""

    def __init__(self, path: Path, n_bands: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pa.ipc.new_file(str(path), _keys_schema(n_bands))

    def write(self, key_rows, key_doc, key_pidx, key_len, keys: DedupKeys) -> None:
        self._writer.write_batch(_keys_batch(key_rows, key_doc, key_pidx, key_len, keys))

    def close(self) -> None:
        self._writer.close()


def filter_keys(src: Path, dst: Path, doc_live: np.ndarray, row_map: np.ndarray) -> None:
    """Copy a part's keys without its superseded documents: docs and paragraph rows renumbered."""
    keys = read_ipc(src)
    docs = read_ipc(docs_path(src))
    key_doc = keys.column("doc").to_numpy()
    live = doc_live[key_doc] if len(key_doc) else np.zeros(0, bool)
    keys = keys.filter(pa.array(live))
    new_doc = (np.cumsum(doc_live) - 1).astype(np.int32)
    keys = keys.set_column(0, "row", pa.array(row_map[keys.column("row").to_numpy()], pa.int64()))
    keys = keys.set_column(1, "doc", pa.array(new_doc[keys.column("doc").to_numpy()], pa.int32()))
    write_ipc(dst, keys)
    write_ipc(docs_path(dst), docs.filter(pa.array(doc_live)))


def write_decisions(path: Path, chrome: np.ndarray, cluster: list[str | None], kind: np.ndarray) -> None:
    columns = [pa.array(chrome, pa.bool_()), pa.array(cluster, pa.string()), pa.array(kind, pa.int8())]
    write_ipc(path, pa.table(columns, schema=DECISIONS_SCHEMA))


def read_ipc(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def read_keys(path: Path) -> DedupKeys:
    """A part's keys as views of the memory-mapped file (rows, exact (n, 2), bands (n, bands))."""
    return keys_of(read_ipc(path))


def read_exact(path: Path) -> np.ndarray:
    """A keys file's exact keys only, (n, 2) uint64 (16 bytes per row, copied; the bands stay on disk)."""
    keys = read_ipc(path).select(["exact_hi", "exact_lo"])
    return np.stack([keys.column(0).to_numpy(), keys.column(1).to_numpy()], axis=1)


def read_bands(path: Path, rows: np.ndarray) -> np.ndarray:
    """The band keys of the given rows (ascending) of a keys file, (len(rows), bands) uint64: read
    record batch by record batch from the memory-mapped file, so only those rows are copied."""
    column = read_ipc(path).column("bands")
    n_bands = column.type.list_size
    out, start = [], 0
    for chunk in column.chunks:
        end = start + len(chunk)
        lo, hi = np.searchsorted(rows, [start, end])
        if hi > lo:
            view = chunk.flatten().to_numpy().reshape(-1, n_bands)  # zero-copy: a view of the mapped file
            out.append(view[rows[lo:hi] - start])
        start = end
    return np.concatenate(out) if out else np.zeros((0, n_bands), np.uint64)


def keys_of(keys: pa.Table) -> DedupKeys:
    """The ``DedupKeys`` of a keys table (views of its buffers)."""
    bands = keys.column("bands").combine_chunks()
    return DedupKeys(
        keys.column("row").to_numpy(),
        np.stack([keys.column("exact_hi").to_numpy(), keys.column("exact_lo").to_numpy()], axis=1),
        bands.flatten().to_numpy().reshape(-1, bands.type.list_size),
    )
