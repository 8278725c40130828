"""The corpus on disk: which files make it up, which inputs it has seen, and how readers find it.

An output folder is a log of runs plus one manifest:

    data/clean/
      manifest.json            <- the commit point: the files that make up the corpus now
      _manifests/v00000003.json  (every committed version, for ``status`` and time travel)
      runs/<run_id>/documents/part-00000.parquet, paragraphs/…, rejects/…, keys/…, decisions/…
      runs/<run_id>/report.json, report.md
      report.json, report.md   (a copy of the latest run's report)

A run writes only new files, inside its own ``runs/<run_id>/`` folder, then commits by
atomically replacing ``manifest.json``. Until that rename nothing it wrote is referenced, so
a run killed at any point leaves the corpus exactly as it was. Files are never rewritten in
place: when a later run changes an earlier part (a changed input supersedes its rows, or a
new paragraph changes a cluster's decisions) it writes a replacement file in its own folder
and the manifest swaps the reference. Replaced files are deleted two commits later, so a
reader that loaded the previous manifest can finish reading.

Readers must list files through the manifest (``table_files``/``read_table`` here, or the
JSON directly): a folder glob also sees uncommitted and replaced files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.dataset as ds

from .. import schema
from .dedup_index import docs_path
from ..stages.read import SourceFile, file_fingerprint

MANIFEST_NAME = "manifest.json"
HISTORY_DIR = "_manifests"
RUNS_DIR = "runs"
FORMAT = "corpusclean-manifest/1"
# Commits whose files are kept: the current one and the previous one (a reader may still hold it).
KEEP_VERSIONS = 2


class CorpusError(ValueError):
    """The output folder's state does not allow this run; the message is one line for a human."""


@dataclass
class Part:
    """One unit of the corpus: the rows of one shard of one run (or their replacement)."""

    run_id: str  # the run that first ingested these rows
    documents: str  # paths relative to the output folder
    paragraphs: str
    rejects: str
    keys: str | None = None  # dedup index: keys of the part's keyed paragraphs (see dedup_index)
    decisions: str | None = None  # dedup decisions on those keys, as of the last commit
    sources: list[str] = field(default_factory=list)  # source_path of every input in the part

    def files(self) -> list[str]:
        names = [p for p in (self.documents, self.paragraphs, self.rejects, self.keys, self.decisions) if p]
        if self.keys:
            names.append(docs_path(Path(self.keys)).as_posix())
        return names


@dataclass
class Manifest:
    version: int = 0  # commits so far; 0 = nothing committed yet
    committed_at: str | None = None
    pipeline_version: str | None = None
    dedup: dict | None = None  # the dedup settings the keys were made with (must match to append)
    sources: dict[str, dict] = field(default_factory=dict)  # source_path -> {sha256, size, run_id}
    parts: list[Part] = field(default_factory=list)  # in corpus order
    runs: list[dict] = field(default_factory=list)  # one summary per committed run, oldest first
    format: str = FORMAT

    def files(self, table: str) -> list[str]:
        """Relative paths of a table's files, in corpus order."""
        if table not in schema.TABLES:
            raise KeyError(f"unknown table {table!r}: expected one of {', '.join(schema.TABLES)}")
        return [getattr(part, table) for part in self.parts]

    def referenced(self) -> set[str]:
        names = {f for part in self.parts for f in part.files()}
        names.update(r["report"] for r in self.runs if r.get("report"))
        return names

    def to_json(self) -> str:
        data = asdict(self)
        data = {"format": data.pop("format"), **data}
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise CorpusError(f"unsupported manifest format {data.get('format')!r} (this corpusclean reads {FORMAT})")
        data["parts"] = [Part(**p) for p in data.get("parts", [])]
        return cls(**data)


def load_manifest(out_dir: Path) -> Manifest:
    """The committed state of an output folder (an empty manifest when nothing is committed)."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        legacy = [t for t in schema.TABLES if (out_dir / t).is_dir()]
        if legacy:
            raise CorpusError(
                f"{out_dir} holds a corpus in the old layout ({', '.join(legacy)}/ without {MANIFEST_NAME}); "
                "move it away or delete it, then run again"
            )
        return Manifest()
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, CorpusError):
            raise
        raise CorpusError(f"{path} is not a corpusclean manifest: {exc}") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, flushed to disk (file and folder) before it returns."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def fsync_tree(root: Path) -> None:
    """Flush a run folder's files to disk before the manifest that references them is committed."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def commit_manifest(out_dir: Path, manifest: Manifest) -> None:
    """Make ``manifest`` the corpus: history copy first, then one atomic rename of manifest.json."""
    history = out_dir / HISTORY_DIR
    history.mkdir(exist_ok=True)
    text = manifest.to_json()
    write_durable(history / f"v{manifest.version:08d}.json", text)
    write_durable(out_dir / MANIFEST_NAME, text)


def collect_garbage(out_dir: Path, manifest: Manifest) -> list[str]:
    """Delete run files no recent commit references; call with the output lock held.

    Kept: every file of the current and previous committed versions, and every committed
    run's report. Deleted: files of runs that never committed (killed) and files replaced
    more than one commit ago.
    """
    keep = manifest.referenced()
    for version in range(max(1, manifest.version - KEEP_VERSIONS + 1), manifest.version):
        old = out_dir / HISTORY_DIR / f"v{version:08d}.json"
        if old.exists():
            keep |= Manifest.from_json(old.read_text(encoding="utf-8")).referenced()
    committed_runs = {r["run_id"] for r in manifest.runs}
    removed: list[str] = []
    runs_root = out_dir / RUNS_DIR
    if not runs_root.is_dir():
        return removed
    for run_dir in sorted(runs_root.iterdir()):
        if not run_dir.is_dir():
            continue
        if run_dir.name not in committed_runs:
            shutil.rmtree(run_dir, ignore_errors=True)
            removed.append(f"{RUNS_DIR}/{run_dir.name}/")
            continue
        for dirpath, _, filenames in os.walk(run_dir):
            for name in filenames:
                rel = Path(dirpath, name).relative_to(out_dir).as_posix()
                if rel not in keep and not name.startswith("report."):
                    os.remove(os.path.join(dirpath, name))
                    removed.append(rel)
    return removed


# ------------------------------------------------------------------------------ readers


class Snapshot:
    """One committed version of a corpus: every table read from it is consistent with the others.

    Take one snapshot per consistent read; a run committing meanwhile does not change it (its
    files are kept until two commits later).
    """

    def __init__(self, out_dir: Path, manifest: Manifest | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.manifest = manifest if manifest is not None else load_manifest(self.out_dir)

    @property
    def version(self) -> int:
        return self.manifest.version

    def files(self, table: str) -> list[Path]:
        return [self.out_dir / rel for rel in self.manifest.files(table)]

    def dataset(self, table: str) -> ds.Dataset:
        return ds.dataset([str(p) for p in self.files(table)], format="parquet", schema=schema.TABLES[table])

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        return self.dataset(table).to_table(columns=columns)


def snapshot(out_dir: Path) -> Snapshot:
    """The corpus as committed now (empty when nothing is committed yet)."""
    return Snapshot(out_dir)


def table_files(out_dir: Path, table: str) -> list[Path]:
    """The Parquet files of ``table`` (documents, paragraphs, rejects) in the committed corpus."""
    return snapshot(out_dir).files(table)


def read_table(out_dir: Path, table: str, columns: list[str] | None = None) -> pa.Table:
    """One table of the committed corpus, in corpus order. For several tables use one ``snapshot``."""
    return snapshot(out_dir).read(table, columns)


# ------------------------------------------------------------------------------ input planning


@dataclass
class InputPlan:
    """Which raw files this run cleans, by content hash against what the corpus has ingested."""

    process: list[SourceFile]  # new and changed files, in path order
    sha256: dict[str, str | None]  # source_path -> hash of every file found (None: unreadable)
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # their committed rows are superseded
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # ingested earlier, gone from raw now: rows kept
    problems: dict[str, str] = field(default_factory=dict)  # source_path -> a stable discovery reject (symlink...)
    retried: list[str] = field(default_factory=list)  # same bytes, but rejects and new read settings (also in changed)

    @property
    def superseded(self) -> set[str]:
        return set(self.changed)

    def summary(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("new", "changed", "unchanged", "removed", "retried")}


# Discovery rejects that stay true until the entry itself changes kind: not re-run every time
# (an unreadable file is: its permissions may be fixed without anything else changing).
STABLE_PROBLEMS = ("symlink", "not_regular")


def plan_inputs(
    files: list[SourceFile], manifest: Manifest, read_key: str | None = None, retry_rejects: bool = False
) -> InputPlan:
    """Split the raw folder's files into new, changed and unchanged ones (by SHA-256 of their bytes).

    A file that could not be hashed (unreadable) is always processed again: its reject row is
    superseded each time until it can be read. A file with the same bytes is read again (as
    changed, listed in ``retried`` too) when it gave rejects and no document and ``read_key`` (the
    read settings' fingerprint, ``runs.read_fingerprint``) differs from the one it was read with,
    or, when it gave any reject, with ``retry_rejects``. (A file that gave documents too is not
    re-read for new settings: a ``--set read.text_field=...`` meant for another file would turn
    its documents into rejects.)
    """
    plan = InputPlan(process=[], sha256={})
    for src in files:
        sha: str | None = None
        if src.problem is None:  # a FIFO, a link not followed...: never opened, rejected when read
            try:
                sha, size = file_fingerprint(src.path)
            except OSError:
                pass
            else:  # the reader reads exactly these bytes and checks their hash (read_source)
                src = dataclasses.replace(src, sha256=sha, size=size)
        plan.sha256[src.rel] = sha
        seen = manifest.sources.get(src.rel)
        if src.problem is not None and src.problem[0] in STABLE_PROBLEMS:
            plan.problems[src.rel] = src.problem[0]
            if seen is not None and seen.get("sha256") is None and seen.get("problem") == src.problem[0]:
                plan.unchanged.append(src.rel)  # the same link or FIFO as last run: its reject row stands
                continue
        if seen is None:
            plan.new.append(src.rel)
            plan.process.append(src)
        elif sha is None or seen.get("sha256") != sha:
            plan.changed.append(src.rel)
            plan.process.append(src)
        elif seen.get("rejects") and (retry_rejects or (
                read_key is not None and seen.get("read") != read_key and not seen.get("documents"))):
            plan.changed.append(src.rel)
            plan.retried.append(src.rel)
            plan.process.append(src)
        else:
            plan.unchanged.append(src.rel)
    found = set(plan.sha256)
    plan.removed = sorted(p for p in manifest.sources if p not in found)
    return plan


# ------------------------------------------------------------------------------ status


def corpus_status(out_dir: Path) -> dict:
    """What ``corpusclean status`` shows: the committed runs and the corpus's totals now.

    A run's counts are as of that run (what it added); the totals are read from the current
    documents table, so they include later changes (superseded rows, learned chrome).
    """
    snap = snapshot(out_dir)
    totals = {"documents": 0, "paragraphs": 0, "kept": 0, "boilerplate": 0, "duplicate": 0, "rejects": 0}
    if snap.manifest.parts:
        docs = snap.read("documents", ["n_paragraphs", "n_kept", "n_boilerplate", "n_duplicate"])
        totals.update(
            documents=docs.num_rows,
            paragraphs=int(pa.compute.sum(docs.column("n_paragraphs")).as_py() or 0),
            kept=int(pa.compute.sum(docs.column("n_kept")).as_py() or 0),
            boilerplate=int(pa.compute.sum(docs.column("n_boilerplate")).as_py() or 0),
            duplicate=int(pa.compute.sum(docs.column("n_duplicate")).as_py() or 0),
            rejects=snap.dataset("rejects").count_rows(),
        )
    return {
        "out_dir": str(out_dir),
        "version": snap.manifest.version,
        "committed_at": snap.manifest.committed_at,
        "sources": len(snap.manifest.sources),
        "parts": len(snap.manifest.parts),
        "runs": snap.manifest.runs,
        "totals": totals,
    }
