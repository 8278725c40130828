"""A run's identity and folders: id, paths, timing, and the report written at its end."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from . import corpus_state, report as reporting
from ..config import Config
from .corpus_dedup import RunDedup
from .corpus_state import CorpusError, InputPlan, Manifest, Part
from .dedup_index import INDEX_FORMAT
from ..plumbing.faults import fault_point
from .output import ShardSummary, part_files, run_folder, staging_folder
from ..schema import SCHEMA_VERSION
from .shard import ShardResult
from ..stages.sketch import lsh_shape

PIPELINE_VERSION = f"{__version__}+schema{SCHEMA_VERSION}"


class UsageError(ValueError):
    """A user mistake about paths or options: the message is one line meant for a human."""


def check_paths(raw_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Resolve and validate the input and output folders before any work starts."""
    raw, out = Path(raw_dir).resolve(), Path(out_dir).resolve()
    if not raw.exists():
        raise UsageError(f"raw folder not found: {raw_dir}")
    if not raw.is_dir():
        raise UsageError(f"raw path is not a folder: {raw_dir}")
    if out == raw or out.is_relative_to(raw):
        raise UsageError(f"the output folder {out_dir} is inside the raw folder {raw_dir}: its files would be read as input")
    if raw.is_relative_to(out):
        raise UsageError(f"the raw folder {raw_dir} is inside the output folder {out_dir}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path exists and is not a folder: {out_dir}")
    return raw, out


class NoInput(UsageError):
    """The raw folder holds no file in a readable format (by extension, or sniffed): a run would clean nothing."""


def check_inputs(raw_dir: Path) -> None:
    """Raise ``NoInput`` unless some non-hidden file under ``raw_dir`` has a supported format (its
    extension, else its first bytes: ``tasks.stages.formats.sniff``).

    Stops at the first file with a known extension, so it costs next to nothing on a real raw folder. Unchanged
    files count: a run over an unchanged folder is "nothing new", not a mistake.
    """
    from ..stages.read import SUPPORTED, _suffix, sniff

    unknown: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(raw_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        names = [name for name in filenames if not name.startswith(".")]
        if any(_suffix(name) in SUPPORTED for name in names):
            return
        unknown += [Path(dirpath) / name for name in names]
    # no known extension: a file whose content is readable anyway (sniffed) is input too
    if any(path.is_file() and sniff(path) is not None for path in unknown):
        return
    raise NoInput(f"no usable input files found in {raw_dir} (no file in a format corpusclean reads, by extension "
                  "or content; hidden ones are skipped; `corpusclean run --help` lists the formats): "
                  "nothing cleaned, no run committed")


LOCK_NAME = ".corpusclean.lock"
_SCRATCH_PREFIXES = (".staging-",)
_held_locks: dict[str, int] = {}  # run_id -> lock file descriptor (kept out of the RunContext: not picklable)
_adopted_locks: dict[Path, int] = {}  # resolved output folder -> a lock the command took before the flow started
_active_runs: dict[str, "RunContext"] = {}  # started in this process and not cleaned up yet
_started_runs: list["RunContext"] = []  # every run started in this process
_commit_lock = threading.Lock()  # a stopping command and a commit never interleave
_stopping = False


class OutputBusy(UsageError):
    """Another run is writing to the same output folder."""


def lock_output(out_dir: Path, wait: bool = False) -> int:
    """Take the output folder's single-writer lock; returns the lock's file descriptor.

    ``flock`` is released by the kernel when its holder exits, even on ``kill -9``, so a
    crashed run never leaves a stale lock behind. Without ``wait`` a busy folder raises
    ``OutputBusy`` naming the holder.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        try:
            who = json.loads(holder)
            name = f"run {who['run_id']}" if who.get("run_id") else "another run"  # starting: no id yet
            detail = f"{name} (pid {who.get('pid')}, started {who.get('started_at')})"
        except ValueError:
            detail = "another run"
        raise OutputBusy(
            f"{detail} is writing to {out_dir}; wait for it to finish, or pass --wait to queue behind it"
        ) from None
    return fd


def note_starting(fd: int) -> None:
    """Say in a lock taken before the run has an id who holds it (for the refusal message)."""
    _note_holder(fd, None, datetime.now(timezone.utc).isoformat(timespec="seconds"))


def adopt_lock(out_dir: Path, fd: int) -> None:
    """Hand a lock taken with ``lock_output`` (by the command, before Prefect starts) to the next
    run started on ``out_dir`` in this process: a concurrent run is then refused before any
    Prefect work, and no other run can slip in between the check and the run."""
    _adopted_locks[Path(out_dir).resolve()] = fd


def release_adopted(out_dir: Path) -> None:
    """Release a lock ``adopt_lock`` still holds (the run never started)."""
    fd = _adopted_locks.pop(Path(out_dir).resolve(), None)
    if fd is not None:
        unlock_output(fd)


def active_runs() -> list["RunContext"]:
    return list(_active_runs.values())


def started_runs() -> list["RunContext"]:
    return list(_started_runs)


class RunStopped(RuntimeError):
    """The command is stopping: this run must not commit."""


def forbid_commits(timeout: float = 3.0) -> None:
    """No run of this process commits after this returns (a commit already under way finishes
    first, so the manifest then tells exactly what was committed)."""
    global _stopping
    got = _commit_lock.acquire(timeout=timeout)
    _stopping = True
    if got:
        _commit_lock.release()


def committed(run: "RunContext") -> bool:
    try:
        return any(r["run_id"] == run.run_id for r in corpus_state.load_manifest(run.out_dir).runs)
    except CorpusError:
        return False


def _note_holder(fd: int, run_id: str | None, started_at: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"run_id": run_id, "pid": os.getpid(), "started_at": started_at}).encode(), 0)


def unlock_output(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def remove_scratch(out_dir: Path, manifest: Manifest) -> list[str]:
    """Remove what an interrupted run left (staging, uncommitted run folders, files replaced
    long ago); call with the lock held."""
    removed = []
    for entry in out_dir.iterdir():
        if entry.is_dir() and entry.name.startswith(_SCRATCH_PREFIXES):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    (out_dir / (corpus_state.MANIFEST_NAME + ".tmp")).unlink(missing_ok=True)  # a commit killed mid-write
    return removed + corpus_state.collect_garbage(out_dir, manifest)


def dedup_fingerprint(config: Config) -> dict:
    """The settings the persistent dedup keys depend on: a corpus only grows with the same ones."""
    d = config.dedup
    if not d.enabled:
        return {"enabled": False}
    bands, rows = lsh_shape(d)
    return {"enabled": True, "ngram": d.ngram, "num_perm": d.num_perm, "seed": d.seed, "bands": bands, "rows": rows,
            "index_format": INDEX_FORMAT}


def _check_fingerprint(out_dir: Path, manifest: Manifest, config: Config) -> None:
    wanted = dedup_fingerprint(config)
    if manifest.parts and manifest.dedup != wanted:
        have = ", ".join(f"{k}={v}" for k, v in (manifest.dedup or {}).items())
        raise UsageError(
            f"the corpus in {out_dir} was deduplicated with {have}; these dedup settings differ, "
            "so new paragraphs could not be compared with it: keep its settings or write to a new output folder"
        )


def read_fingerprint(config: Config) -> str:
    """The settings that decide how raw files are read (``[read]``): a file that had rejects is read
    again when they change (``corpus_state.plan_inputs``)."""
    import hashlib

    return hashlib.sha256(config.read.model_dump_json().encode("utf-8")).hexdigest()[:16]


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time, then random hex (``20261121T131300Z-3fa9c2``)."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunContext:
    run_id: str
    raw_dir: Path
    out_dir: Path
    config: Config
    flow_run_id: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    started_monotonic: float = field(default_factory=time.monotonic)
    pipeline_version: str = PIPELINE_VERSION
    manifest: Manifest = field(default_factory=Manifest)  # the corpus as committed when the run started

    @property
    def staging_dir(self) -> Path:
        return staging_folder(self.out_dir, self.run_id)

    @property
    def run_dir(self) -> Path:
        return run_folder(self.out_dir, self.run_id)


def start_run(raw_dir: Path, out_dir: Path, config: Config, flow_run_id: str | None = None) -> RunContext:
    """Validate the folders, take the output's lock, clear an interrupted run's scratch, make ours."""
    raw, out = check_paths(raw_dir, out_dir)
    fd = _adopted_locks.pop(out, None)
    if fd is None:
        fd = lock_output(out, wait=config.run.wait_for_lock)
    try:
        try:
            manifest = corpus_state.load_manifest(out)
        except CorpusError as exc:
            raise UsageError(str(exc)) from None
        _check_fingerprint(out_dir, manifest, config)
        run = RunContext(new_run_id(), raw, out, config, flow_run_id, manifest=manifest)
        _note_holder(fd, run.run_id, run.started_at)
        remove_scratch(out, manifest)
        run.staging_dir.mkdir()
        run.run_dir.mkdir(parents=True)
    except BaseException:
        unlock_output(fd)
        raise
    _held_locks[run.run_id] = fd
    _active_runs[run.run_id] = run
    _started_runs.append(run)
    return run


def forget_unverified(plan: InputPlan, results: list[ShardResult]) -> None:
    """Files that changed while being read get no hash in the manifest: the next run cleans them
    again and supersedes this run's rows of them (see ``read.read_source``)."""
    for result in results:
        for rel in result.unverified:
            plan.sha256[rel] = None


def pending_inputs(raw_dir: Path, out_dir: Path, config: Config, retry_rejects: bool = False) -> InputPlan:
    """The run's input plan, computed without Prefect (call with the output's lock held).

    Lets the command say "nothing new" without starting Prefect at all, and size the run.
    Raises ``UsageError`` for a corpus the run would refuse anyway.
    """
    from ..stages.read import discover

    raw, out = check_paths(raw_dir, out_dir)
    try:
        manifest = corpus_state.load_manifest(out)
    except CorpusError as exc:
        raise UsageError(str(exc)) from None
    _check_fingerprint(out_dir, manifest, config)
    return corpus_state.plan_inputs(
        discover(raw, config.read.follow_symlinks), manifest, read_fingerprint(config), retry_rejects
    )


def new_parts(run: RunContext, results: list[ShardResult]) -> list[Part]:
    """The files each of this run's shards will be written to, as the manifest lists them."""
    return [
        part_files(run.run_dir, run.out_dir, run.run_id, f"part-{r.index:05d}", r.sources, run.config.dedup.enabled)
        for r in results
    ]


def write_report(
    run: RunContext, plan: InputPlan, results: list[ShardResult], dedup: RunDedup, summaries: list[ShardSummary]
) -> dict:
    data = reporting.build_report(
        plan=plan.summary(),
        run_id=run.run_id,
        pipeline_version=run.pipeline_version,
        raw_dir=run.raw_dir,
        out_dir=run.out_dir,
        config=run.config.model_dump(mode="json"),
        results=results,
        dedup=dedup,
        summaries=summaries,
        started_at=run.started_at,
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=time.monotonic() - run.started_monotonic,
        flow_run_id=run.flow_run_id,
    )
    # The run folder is invisible until the commit (which flushes it first): plain writes.
    (run.run_dir / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (run.run_dir / "report.md").write_text(reporting.render_markdown(data), encoding="utf-8")
    from . import report_html

    extra = report_html.gather(run, results, dedup, summaries)
    (run.run_dir / "report.html").write_text(report_html.render(data, extra), encoding="utf-8")
    return data


def commit_run(run: RunContext, plan: InputPlan, new: list[Part], rewritten: dict[int, Part], report: dict,
               file_rejects: dict[str, tuple[int, int]] | None = None) -> Manifest:
    """Commit the run: one new manifest that adds its parts and swaps in the rewritten ones.

    ``file_rejects``: (documents, rejects) of each file of the run that had rejects.

    Everything the manifest references is flushed to disk first; the commit itself is one
    atomic rename, so readers and the next run see the whole run or none of it.
    """
    old = run.manifest
    parts = [rewritten.get(i, part) for i, part in enumerate(old.parts)] + list(new)
    sources = dict(old.sources)
    read_key = read_fingerprint(run.config)
    for rel in plan.new + plan.changed:
        # "read", "rejects" and "documents": a file that gave no document is read again when the
        # read settings change (corpus_state.plan_inputs)
        n_docs, n_rejects = (file_rejects or {}).get(rel, (None, 0))
        sources[rel] = {"sha256": plan.sha256.get(rel), "run_id": run.run_id, "read": read_key, "rejects": n_rejects}
        if n_rejects:
            sources[rel]["documents"] = n_docs
        if rel in plan.problems:  # a link or FIFO: unchanged next time while it stays one (plan_inputs)
            sources[rel]["problem"] = plan.problems[rel]
    summary = {
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": report["finished_at"],
        "flow_run_id": run.flow_run_id,
        "inputs": plan.summary(),
        "counts": report["counts"],
        "rewritten_parts": len(rewritten),
        "report": f"{corpus_state.RUNS_DIR}/{run.run_id}/report.json",
    }
    manifest = Manifest(
        version=old.version + 1,
        committed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        pipeline_version=run.pipeline_version,
        dedup=dedup_fingerprint(run.config),
        sources=dict(sorted(sources.items())),
        parts=parts,
        runs=old.runs + [summary],
    )
    corpus_state.fsync_tree(run.run_dir)
    fault_point("before_commit")
    with _commit_lock:
        if _stopping:
            raise RunStopped("the command is stopping: run not committed")
        corpus_state.commit_manifest(run.out_dir, manifest)
    fault_point("after_commit")
    try:  # committed: a full disk now must not turn the run into a "failed" one (the next run tidies up)
        for name in ("report.json", "report.md", "report.html"):  # a copy of the latest report beside the manifest
            corpus_state.write_durable(run.out_dir / name, (run.run_dir / name).read_text(encoding="utf-8"))
        corpus_state.collect_garbage(run.out_dir, manifest)
    except OSError:
        pass
    return manifest


def remove_run_files(run: RunContext, attempts: int = 5) -> None:
    """Remove a run's staging and run folders that will not be committed. The run's flow thread
    may still be unwinding (its own ``cleanup``) while a stopping command removes them, and a
    removal that races with a write leaves a folder behind: try again until both are gone."""
    for attempt in range(attempts):
        for folder in (run.staging_dir, run.run_dir):
            shutil.rmtree(folder, ignore_errors=True)
        if not run.staging_dir.exists() and not run.run_dir.exists():
            return
        time.sleep(0.05 * (attempt + 1))


def cleanup(run: RunContext) -> None:
    """Remove the run's scratch (and its own files if it did not commit), then release the lock."""
    shutil.rmtree(run.staging_dir, ignore_errors=True)
    committed = corpus_state.load_manifest(run.out_dir)
    if all(r["run_id"] != run.run_id for r in committed.runs):
        shutil.rmtree(run.run_dir, ignore_errors=True)
    _active_runs.pop(run.run_id, None)
    fd = _held_locks.pop(run.run_id, None)
    if fd is not None:
        unlock_output(fd)
