"""A run's identity and folders: id, paths, timing, and the report written at its end."""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tasks import __version__, report as reporting
from tasks.config import Config
from tasks.corpus_dedup import RunDedup
from tasks.output import ShardSummary, run_folder, staging_folder, write_json_atomic
from tasks.schema import SCHEMA_VERSION
from tasks.shard import ShardResult

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

    @property
    def staging_dir(self) -> Path:
        return staging_folder(self.out_dir, self.run_id)

    @property
    def run_dir(self) -> Path:
        return run_folder(self.out_dir, self.run_id)


def start_run(raw_dir: Path, out_dir: Path, config: Config, flow_run_id: str | None = None) -> RunContext:
    raw, out = check_paths(raw_dir, out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = RunContext(new_run_id(), raw, out, config, flow_run_id)
    run.staging_dir.mkdir()
    run.run_dir.mkdir()
    return run


def write_report(run: RunContext, results: list[ShardResult], dedup: RunDedup, summaries: list[ShardSummary]) -> dict:
    data = reporting.build_report(
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
    write_json_atomic(run.run_dir / "report.json", data)
    (run.run_dir / "report.md").write_text(reporting.render_markdown(data), encoding="utf-8")
    return data


def cleanup(run: RunContext) -> None:
    """Remove the run's scratch folders (after a commit, or after a failure)."""
    shutil.rmtree(run.staging_dir, ignore_errors=True)
    shutil.rmtree(run.run_dir, ignore_errors=True)
