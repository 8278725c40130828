from __future__ import annotations

import numpy as np

from corpusclean.tasks.corpus.dedup_index import DECISIONS_SCHEMA, docs_path, filter_keys, read_ipc, write_decisions, write_keys
from corpusclean.tasks.stages.sketch import DedupKeys


def _keys(tmp_path):
    rng = np.random.default_rng(0)
    keys = DedupKeys(np.array([0, 2, 3, 5]), rng.integers(0, 2**63, (4, 2), dtype=np.uint64),
                     rng.integers(0, 2**63, (4, 3), dtype=np.uint64))
    path = tmp_path / "keys" / "part-00000.arrow"
    write_keys(path, keys.rows, np.array([0, 0, 1, 2]), np.array([0, 2, 1, 0]), np.array([50, 60, 70, 80]), keys,
               ["d0", "d1", "d2"], ["s", "s", "t"], ["a.txt", "b.txt", "c.txt"])
    return path, keys


def test_keys_round_trip(tmp_path):
    path, keys = _keys(tmp_path)
    table = read_ipc(path)
    assert table.column("row").to_pylist() == [0, 2, 3, 5]
    bands = table.column("bands").combine_chunks()
    assert np.array_equal(bands.flatten().to_numpy().reshape(-1, 3), keys.bands)
    assert np.array_equal(np.stack([table.column("exact_hi").to_numpy(), table.column("exact_lo").to_numpy()], 1), keys.exact)
    assert read_ipc(docs_path(path)).column("source_path").to_pylist() == ["a.txt", "b.txt", "c.txt"]


def test_filter_keys_drops_superseded_documents_and_renumbers(tmp_path):
    path, keys = _keys(tmp_path)
    # Paragraph rows 0-2 belong to d0, 3-4 to d1, 5 to d2; d1 is superseded.
    doc_live = np.array([True, False, True])
    para_live = np.array([1, 1, 1, 0, 0, 1], bool)
    dst = tmp_path / "new" / "part.arrow"
    filter_keys(path, dst, doc_live, np.cumsum(para_live) - 1)
    table = read_ipc(dst)
    assert table.column("row").to_pylist() == [0, 2, 3]
    assert table.column("doc").to_pylist() == [0, 0, 1]
    assert read_ipc(docs_path(dst)).column("doc_id").to_pylist() == ["d0", "d2"]
    bands = table.column("bands").combine_chunks().flatten().to_numpy().reshape(-1, 3)
    assert np.array_equal(bands, keys.bands[[0, 1, 3]])


def test_decisions_round_trip(tmp_path):
    path = tmp_path / "d.arrow"
    write_decisions(path, np.array([False, True, False]), [None, None, "x:0"], np.array([0, 0, 2], np.int8))
    table = read_ipc(path)
    assert table.schema == DECISIONS_SCHEMA and table.column("cluster").to_pylist() == [None, None, "x:0"]
