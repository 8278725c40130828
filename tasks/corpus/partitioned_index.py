"""The committed parts' dedup keys persisted partitioned: what steps 1 and 3 of the partitioned search
(``dedup_partitions``) would scatter for them, kept on disk between runs.

    data/clean/_dedup_index/
      index.json               <- the commit point of the index: P, and its layers with the parts each holds
      L00000003/exact-00000.arrow (+ .off.npy)   a layer's exact rows of exact partition p (``exact_hi % P``)
      L00000003/band-00000.arrow  (+ .off.npy)   its band rows of band partition p (``key % P``), one batch per band
      L00000003/rep-00000.bits                   which keyed rows of its part (slot) 0 have band rows

A layer holds the rows of some committed parts (its *slots*), as ``slot << 40 | row``. Exact rows are
``(o, hi, lo, site, doc, len, node)``, exactly what ``scatter_exact`` writes for a committed part, and
its committed chrome; band rows are ``(o, key)`` of the rows that were their text's representative
when the layer was written (content as committed, no earlier content copy among the indexed parts),
all known.
A search maps each layer's slots to its segments, so the exact and band passes read the index's
partitions directly, and an indexed part only writes the few rows whose status differs this run
(``scatter_bands``: exceptions).

The index is a *derived cache*: every part in it is identified by its keys and decisions files (paths,
sizes, modification times), which the manifest names and which are never rewritten in place. A part
the manifest lists that no layer holds (a new part, or a rewritten one: new decisions file) is added
as a new layer by the next search, before it searches; a layer's slots no manifest part refers to are
skipped when read. Missing, unreadable (a partition file whose Arrow footer or offsets do not
parse included), of another layout, with too many layers or too many dead rows,
or with a P too small for the corpus now: rebuilt from the committed parts, in one layer. A layer is
written in a temporary folder, flushed, renamed, and only then named by ``index.json`` (replaced
atomically): a search killed while writing leaves the previous index as it was, and its leftovers
are removed by the next one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from .dedup_index import read_ipc
from .dedup_partitions import (PARALLEL_MIN_PARAGRAPHS, ROW_MASK, SEG_SHIFT, IndexLayers, Mapper, Segment,
                               _EXACT_COLUMNS, _band_slices, _column_positions, _file, _group_starts, _offsets_path,
                               _pread_range, _pread_slices, _scatter, _write_indexed, partitions_for, scatter_exact,
                               write_band_map)

INDEX_DIR = "_dedup_index"
LAYOUT = "corpusclean-dedup-partitions/2"
INDEX_NAME = "index.json"
#: Layers from which the next search rebuilds the index in one (each run adds one).
MAX_LAYERS = 8


@dataclass
class Prepared:
    """What ``prepare`` gives the search: the index to read and which committed parts (manifest
    positions) are read from it."""

    n_parts: int
    layers: list[tuple[str, int, dict[int, int]]]  # (layer folder, its slots, slot -> manifest position)
    indexed: set[int]
    built: str | None = None  # "full", "layer" or None (reused as it was)
    _rep_paths: dict[int, str] | None = None

    def rep_path(self, position: int) -> str:
        """Where the index says which rows of the part at ``position`` it holds as representatives."""
        if self._rep_paths is None:
            self._rep_paths = {pos: os.path.join(folder, f"rep-{slot:05d}.bits")
                               for folder, _, slots in self.layers for slot, pos in slots.items()}
        return self._rep_paths[position]

    def for_search(self, segment_of: dict[int, int]) -> IndexLayers:
        """The layers with each slot as the search's segment (``segment_of``: manifest position -> segment)."""
        out = []
        for folder, n_slots, slots in self.layers:
            lut = np.full(n_slots, -1, np.int64)
            for slot, position in slots.items():
                if position in segment_of:
                    lut[slot] = segment_of[position]
            out.append((folder, lut))
        return IndexLayers(self.n_parts, out)


def _stamp(out_dir: Path, part) -> list:
    """What identifies a committed part's index rows: its keys and decisions files as they are now."""
    out = []
    for rel in (part.keys, part.decisions):
        st = os.stat(out_dir / rel)
        out += [rel, st.st_size, st.st_mtime_ns]
    return out


def _key_rows(path: Path) -> int:
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def load(index_dir: Path, n_bands: int) -> dict | None:
    """The index's ``index.json`` when it is of this layout and every file it names is there and
    parses (``_readable``)."""
    try:
        state = json.loads((index_dir / INDEX_NAME).read_text(encoding="utf-8"))
        if state.get("layout") != LAYOUT or state.get("n_bands") != n_bands:
            return None
        P = int(state["n_parts"])
        for layer in state["layers"]:
            folder = index_dir / layer["name"]
            if not all((folder / f"rep-{slot:05d}.bits").is_file() for slot in range(len(layer["parts"]))):
                return None
            for p in range(P):
                for kind in ("exact", "band"):
                    if not _readable(folder / f"{kind}-{p:05d}.arrow"):
                        return None
        return state
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _readable(path: Path) -> bool:
    """Whether a partition's Arrow file and its offsets beside it parse (the Arrow footer, the
    ``.npy`` header): a file cut short or overwritten makes the index rebuilt, not read as rows."""
    try:
        with pa.memory_map(str(path)) as source:
            pa.ipc.open_file(source)
        np.load(_offsets_path(path), mmap_mode="r")
    except (OSError, ValueError, pa.ArrowException):
        return False
    return True


def prepare(out_dir: Path, committed: list, dedup, n_new: int, work: Path, mapper: Mapper,
            index_dir: Path | None = None, parallel: int = 1) -> Prepared | None:
    """The persisted index made current for ``committed`` (``CommittedPart``s; those with superseded
    inputs are not read from it this run) before a search: parts no layer holds are added as a new
    layer (or the whole index rebuilt, see the module's doc). None: nothing committed to index."""
    from ..stages.sketch import lsh_shape

    index_dir = Path(index_dir) if index_dir is not None else Path(out_dir) / INDEX_DIR
    n_bands = lsh_shape(dedup)[0]
    eligible = [c for c in committed if c.part.keys is not None and not c.superseded]
    if not eligible:
        return None
    stamps = {c.position: _stamp(out_dir, c.part) for c in eligible}
    key_of = {pos: json.dumps(stamp) for pos, stamp in stamps.items()}  # a part's stamp as a dict key
    by_stamp = {key: pos for pos, key in key_of.items()}
    state = load(index_dir, n_bands)
    if index_dir.is_dir():  # a killed build's folder, or a layer written but never named by index.json
        _remove_leftovers(index_dir, {layer["name"] for layer in state["layers"]} if state else set())
    held: dict[str, tuple[int, int]] = {}  # stamp -> (layer, slot)
    rows_of: dict[str, int] = {}
    dead = 0
    if state is not None:
        for li, layer in enumerate(state["layers"]):
            for slot, entry in enumerate(layer["parts"]):
                key = json.dumps(entry["stamp"])
                held[key] = (li, slot)
                rows_of[key] = entry["rows"]
        dead = sum(r for k, r in rows_of.items() if k not in by_stamp)
    missing = [c for c in eligible if key_of[c.position] not in held]
    rows = {c.position: rows_of.get(key_of[c.position]) for c in eligible}
    for c in missing:
        rows[c.position] = _key_rows(out_dir / c.part.keys)
    n_committed = sum(rows.values())
    n = n_committed + n_new
    P_want = partitions_for(n, dedup.partition_paragraphs)
    if n >= PARALLEL_MIN_PARAGRAPHS:
        P_want = max(P_want, parallel)
    built = None
    if (state is None or len(state["layers"]) >= MAX_LAYERS or dead > n_committed
            or P_want > 2 * int(state["n_parts"])):
        # (P is kept while the corpus is up to twice what it was chosen for: stable across runs)
        P = P_want if state is None or P_want > 2 * int(state["n_parts"]) else int(state["n_parts"])
        state = {"layout": LAYOUT, "n_bands": n_bands, "n_parts": P, "layers": [], "next": (state or {}).get("next", 0)}
        missing, built = eligible, "full"
        held = {}
    if missing:
        built = built or "layer"
        name = f"L{int(state.get('next', 0)):08d}"
        others = []  # the layers kept, each slot as its part's manifest position (-1: not a part now)
        for li, layer in enumerate(state["layers"]):
            lut = np.full(len(layer["parts"]), -1, np.int64)
            for slot, entry in enumerate(layer["parts"]):
                lut[slot] = by_stamp.get(json.dumps(entry["stamp"]), -1)
            others.append((str(index_dir / layer["name"]), lut))
        new_lut = np.array([c.position for c in missing], np.int64)
        _build_layer(out_dir, index_dir, name, missing, int(state["n_parts"]), n_bands, work, mapper, others, new_lut)
        state["layers"].append({"name": name, "parts": [{"stamp": stamps[c.position], "rows": rows[c.position]}
                                                         for c in missing]})
        state["next"] = int(state.get("next", 0)) + 1
        from .corpus_state import write_durable

        write_durable(index_dir / INDEX_NAME, json.dumps(state, indent=1) + "\n")
        held = {json.dumps(e["stamp"]): (li, slot) for li, layer in enumerate(state["layers"])
                for slot, e in enumerate(layer["parts"])}
    _remove_leftovers(index_dir, {layer["name"] for layer in state["layers"]})
    layers = []
    for li, layer in enumerate(state["layers"]):
        slots = {slot: by_stamp[k] for k, (l2, slot) in held.items() if l2 == li and k in by_stamp}
        layers.append((str(index_dir / layer["name"]), len(layer["parts"]), slots))
    return Prepared(int(state["n_parts"]), layers, {c.position for c in eligible}, built)


def _remove_leftovers(index_dir: Path, keep: set[str]) -> None:
    """Layers no longer named by ``index.json`` and folders of a build that was killed."""
    for entry in index_dir.iterdir():
        if entry.is_dir() and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def _build_layer(out_dir: Path, index_dir: Path, name: str, parts: list, P: int, n_bands: int, work: Path,
                 mapper: Mapper, others: list[tuple[str, np.ndarray]], new_lut: np.ndarray) -> None:
    """A layer of ``parts`` (``CommittedPart``s, in corpus order): each part's exact rows scattered as
    the search's step 1 would, gathered into one file per exact partition (so a pass reads one slice
    per layer, not per part), where its representatives are found among every indexed part's rows
    (``others``: the layers kept, slot -> manifest position); then each part's representatives' band
    keys scattered and gathered into one file per band partition."""
    index_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="index-maps-", dir=work))
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=index_dir))
    try:
        segments = [Segment(slot, out_dir / c.part.paragraphs, keys_path=out_dir / c.part.keys,
                            decisions_path=out_dir / c.part.decisions) for slot, c in enumerate(parts)]
        S = len(segments)
        mapper(index_part, [(seg, P, scratch) for seg in segments])
        mapper(index_exact_partition, [(scratch, S, p, tmp, others, new_lut) for p in range(P)])
        mapper(index_part_bands, [(seg, P, n_bands, scratch, tmp) for seg in segments])
        mapper(index_band_partition, [(scratch, S, p, n_bands, tmp) for p in range(P)])
        from .corpus_state import _fsync_dir, fsync_tree

        fsync_tree(tmp)
        os.rename(tmp, index_dir / name)
        _fsync_dir(index_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


_LAYER_EXACT = _EXACT_COLUMNS + ("ochrome",)  # + chrome as committed (content: a representative's candidates)


def index_part(seg: Segment, P: int, scratch: Path) -> int:
    """One part's exact map, as ``scatter_exact`` writes it, with its rows' chrome as committed."""
    chrome = read_ipc(seg.decisions_path).column("chrome").to_numpy(zero_copy_only=False)
    return scatter_exact(seg, P, scratch, {"ochrome": np.asarray(chrome, bool)})


def index_exact_partition(scratch: Path, n_slots: int, p: int, folder: Path, others: list[tuple[str, np.ndarray]],
                          new_lut: np.ndarray) -> int:
    """Exact partition ``p`` of a layer (``exact-p``), and which of its rows are not their text's
    representative: an earlier content row (by committed chrome, in corpus order) of the same text is
    in this layer or a kept one (``nonrep-p``: rows by slot, read by ``index_part_bands``)."""
    cols = _pread_slices(scratch, "exact-map", n_slots, p, _LAYER_EXACT)
    if cols["o"] is None:
        cols = {"o": np.zeros(0, np.int64), "hi": np.zeros(0, np.uint64), "lo": np.zeros(0, np.uint64),
                "site": np.zeros(0, np.uint64), "doc": np.zeros(0, np.int64), "len": np.zeros(0, np.int32),
                "node": np.zeros(0, np.int64), "ochrome": np.zeros(0, bool)}
    n = int(cols["o"].shape[0])
    _write_indexed(_file(folder, "exact", p), cols, np.array([0, n], np.int64))
    shift = np.int64(SEG_SHIFT)
    slot = cols["o"] >> shift
    mine = (new_lut[slot] << shift) | (cols["o"] & np.int64(ROW_MASK)) if n else np.zeros(0, np.int64)
    orders, his, los, content = [mine], [cols["hi"]], [cols["lo"]], [~cols["ochrome"]]
    for other, lut in others:
        got = _pread_range(os.path.join(other, f"exact-{p:05d}.arrow"), 0, ("o", "hi", "lo", "ochrome"))
        if got is None:
            continue
        pos = lut[got["o"] >> shift]
        keep = pos >= 0
        orders.append((pos[keep] << shift) | (got["o"][keep] & np.int64(ROW_MASK)))
        his.append(got["hi"][keep])
        los.append(got["lo"][keep])
        content.append(~got["ochrome"][keep])
    order, hi, lo, live = (np.concatenate(x) for x in (orders, his, los, content))
    c = np.flatnonzero(live)
    nonrep = np.zeros(order.shape[0], bool)
    if c.size:
        by = c[np.lexsort((order[c], lo[c], hi[c]))]  # content rows grouped by text, earliest first
        starts = _group_starts(np.stack((hi[by], lo[by]), axis=1))
        first = np.zeros(by.size, bool)
        first[starts] = True
        nonrep[by[~first]] = True
    nonrep = np.flatnonzero(nonrep[:n])  # this layer's rows only (the first n)
    _scatter(_file(scratch, "nonrep", p), slot[nonrep], n_slots,
             {"o": (cols["o"][nonrep] & np.int64(ROW_MASK)).astype(np.uint32)})
    return n


def index_part_bands(seg: Segment, P: int, n_bands: int, scratch: Path, folder: Path) -> int:
    """A part's representatives as the index holds them (``rep-slot.bits``: content rows as committed
    that no earlier indexed content row has the text of) and their band map."""
    rows = seg.meta()
    chrome = np.asarray(read_ipc(seg.decisions_path).column("chrome").to_numpy(zero_copy_only=False), bool)
    nonrep = [got["o"] for got in (_pread_range(str(_file(scratch, "nonrep", p)), seg.index, ("o",)) for p in range(P))
              if got is not None]
    rep = ~chrome
    if nonrep:
        rep[np.searchsorted(rows.key_rows, np.concatenate(nonrep).astype(np.int64))] = False
    with open(os.path.join(folder, f"rep-{seg.index:05d}.bits"), "wb") as f:
        f.write(np.packbits(rep, bitorder="little").tobytes())
    which = np.flatnonzero(rep)
    bands = seg.load_bands(rows, which)
    write_band_map(_file(scratch, "band-map", seg.index), rows.key_rows[which].astype(np.uint32),
                   (np.ascontiguousarray(bands[:, j]) for j in range(n_bands)), np.ones(which.size, bool), P)
    return int(which.size)


def index_band_partition(scratch: Path, n_slots: int, p: int, n_bands: int, folder: Path) -> int:
    """Band partition ``p`` of a layer (``band-p``): every part's representatives' band keys, one batch per band."""
    path = _file(folder, "band", p)
    schema = pa.schema([("o", pa.int64()), ("key", pa.uint64())])
    sizes = []
    with pa.ipc.new_file(str(path), schema) as writer:
        for o, key, _ in _band_slices(scratch, n_slots, p, n_bands):
            if o is None:
                o, key = np.zeros(0, np.int64), np.zeros(0, np.uint64)
            writer.write_batch(pa.record_batch([pa.array(o), pa.array(key)], schema=schema))
            sizes.append(o.shape[0])
    positions = _column_positions(path, n_bands)
    index = np.concatenate([np.stack([np.zeros(n_bands, np.int64), np.array(sizes, np.int64)], axis=1), positions], axis=1)
    np.save(_offsets_path(path), np.ascontiguousarray(index, np.int64).reshape(-1))
    return int(sum(sizes))
