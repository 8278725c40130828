"""File-level fuzzing: random and mutated files of every supported format in a raw folder,
through discovery, planning and the real shard function (read + every cleaning stage).

Property: no exception, and every input file and every record lands in documents or
rejects (a file stopped by a file-level reject, e.g. a truncated archive, accounts for the
records after it). The real flow on the same kind of folder is in tests/flows/test_faults.py;
GB-sized cases are in bench/hostile.py.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusclean.tasks.config import Config, ReadConfig, RunConfig
from corpusclean.tasks.corpus.corpus_state import Manifest, plan_inputs
from corpusclean.tasks.stages.read import discover
from corpusclean.tasks.corpus.shard import clean_shard, open_staged

CONFIG = Config(read=ReadConfig(max_record_mb=0.002, max_decompression_ratio=20, max_decompressed_mb=0.05),
                run=RunConfig(batch_docs=7))

_words = st.sampled_from(["the", "council", "voted", "école", "Straße", "niño", "—", "“quoted”", "\t", "\n", "\n\n",
                          "\x00", "\x1b", "\ufffd", "\ud800", "🙂", " ", "<p>", "Ã©"])
texts = st.lists(_words, max_size=60).map(" ".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
records = st.one_of(
    st.builds(lambda t, extra: {"text": t, **extra}, texts, st.dictionaries(st.sampled_from(["url", "id", "n"]), json_values, max_size=2)),
    st.builds(lambda v: {"text": v}, json_values),  # wrong types
    st.builds(lambda v: {"body": v}, json_values),  # no text field
    json_values,  # not an object
)


def _line(record, kind: str) -> bytes:
    if kind == "invalid_json":
        return b"{ not json"
    if kind == "bad_utf8":
        return b'{"text": "caf\xe9 \xff"}'
    if kind == "huge":
        return json.dumps({"text": "word " * 1000}).encode()
    return json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass")


lines = st.lists(st.tuples(records, st.sampled_from(["ok"] * 6 + ["invalid_json", "bad_utf8", "huge"])), max_size=12)
mutations = st.one_of(
    st.just(("none", 0, 0)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("nul"), st.floats(0, 1), st.integers(1, 4000)),
)


def _mutate(data: bytes, mutation) -> bytes:
    kind, where, value = mutation
    if not data or kind == "none":
        return data
    at = min(len(data) - 1, int(where * len(data)))
    if kind == "truncate":
        return data[:at]
    if kind == "flip":
        return data[:at] + bytes([value]) + data[at + 1 :]
    return data[:at] + b"\x00" * value + data[at:]


@st.composite
def raw_files(draw) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i in range(draw(st.integers(1, 5))):
        fmt = draw(st.sampled_from(["txt", "md", "jsonl", "jsonl.gz", "parquet", "bin"]))
        if fmt in ("txt", "md"):
            text = draw(texts)
            encoding = draw(st.sampled_from(["utf-8", "utf-16", "cp1252", "latin-1"]))
            data = text.encode(encoding, "replace") if draw(st.booleans()) else draw(st.binary(max_size=300))
            if draw(st.integers(0, 9)) == 0:
                data = b"A long page. " * 400  # above max_record_mb
        elif fmt in ("jsonl", "jsonl.gz"):
            data = b"\n".join(_line(r, k) for r, k in draw(lines)) + (b"\n" if draw(st.booleans()) else b"")
            if fmt == "jsonl.gz":
                data = gzip.compress(data if draw(st.integers(0, 4)) else b'{"text": "' + b"a" * 200_000)
        elif fmt == "parquet":
            column = draw(st.one_of(st.lists(texts.map(lambda s: s.replace("\ud800", "?")), max_size=8),
                                    st.lists(st.none() | st.integers(-2**63, 2**63 - 1), max_size=8)))  # int64: pyarrow overflows beyond
            name = draw(st.sampled_from(["text", "text", "body"]))
            sink = io.BytesIO()
            pq.write_table(pa.table({name: column, "n": list(range(len(column)))}), sink)
            data = sink.getvalue()
        else:
            data = draw(st.binary(max_size=100))
        files[f"d{i % 2}/f{i}.{fmt}"] = _mutate(data, draw(mutations))
    return files


def _records_expected(data: bytes, rel: str) -> set[int] | None:
    """Record indexes a reader must account for (None: only the file itself)."""
    if rel.endswith(".jsonl"):
        return {i for i, line in enumerate(data.split(b"\n")) if line.strip()}
    return None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw_files())
def test_every_file_and_record_lands_in_documents_or_rejects(files):
    root = Path(tempfile.mkdtemp())
    try:
        raw = root / "raw"
        for rel, data in files.items():
            (raw / rel).parent.mkdir(parents=True, exist_ok=True)
            (raw / rel).write_bytes(data)
        plan = plan_inputs(discover(raw), Manifest())
        result = clean_shard(0, plan.process, CONFIG, root / "staging")
        docs = open_staged(result.documents_path).read_all().select(["source_path", "record_index"]).to_pylist()
        rejects = open_staged(result.rejects_path).read_all().select(["source_path", "record_index", "reason"]).to_pylist()
        seen: dict[str, set] = {rel: set() for rel in files}
        for row in docs + rejects:
            assert row["source_path"] in seen, row
            seen[row["source_path"]].add(row["record_index"])
        for rel, indexes in seen.items():
            assert indexes, f"{rel} is in neither documents nor rejects"
            expected = _records_expected(files[rel], rel)
            if expected is not None and None not in indexes:  # no file-level reject: every record accounted for
                assert expected <= indexes, (rel, expected - indexes)
        doc_keys = [(d["source_path"], d["record_index"]) for d in docs]
        assert len(doc_keys) == len(set(doc_keys))  # a record is cleaned once
    finally:
        shutil.rmtree(root, ignore_errors=True)
