"""What a run shows in Prefect's UI and API: a progress artifact while it runs, then the report
as a markdown artifact and its counts, reasons and languages as table artifacts.

Artifacts are a view: a failure to create one is logged and never fails a run whose corpus
is already committed.
"""

from __future__ import annotations

from pathlib import Path

# Share of the progress artifact each phase has finished by (reading dominates a run's time).
READING_SHARE = 80.0
DEDUP_SHARE = 88.0
WRITE_SHARE = 97.0

KEY = "corpusclean"  # artifact keys: lowercase letters, digits and dashes


class ProgressArtifact:
    """One progress artifact per flow run (0-100), created at the first update."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.artifact_id = None
        self.failed = False

    def update(self, percent: float) -> None:
        if self.failed:
            return
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        try:
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(
                    progress=percent, key=f"{KEY}-progress", description=f"corpusclean run {self.run_id}")
            else:
                update_progress_artifact(artifact_id=self.artifact_id, progress=percent)
        except Exception as exc:  # a view only
            self.failed = True
            _warn(f"progress artifact not updated: {type(exc).__name__}: {exc}")


def report_tables(report: dict) -> dict[str, list[dict]]:
    """The report's tables, as rows for ``create_table_artifact`` (key suffix -> rows)."""
    c = report["counts"]
    tables = {
        "counts": [{"what": k, "count": c[k]}
                   for k in ("documents", "paragraphs", "kept", "boilerplate", "duplicate", "rejects")],
        "boilerplate-reasons": [{"reason": k, "paragraphs": v} for k, v in report["boilerplate_reasons"].items()],
        "reject-reasons": [{"reason": k, "files": v} for k, v in report["reject_reasons"].items()],
        "languages": [{"language": k, "documents": v} for k, v in report["languages"].items()],
    }
    return {k: rows for k, rows in tables.items() if rows}


def publish_report(report: dict, out_dir: Path) -> None:
    """The committed run's report as artifacts of the current flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    try:
        markdown = (Path(out_dir) / "report.md").read_text(encoding="utf-8")
        markdown += f"\n\nCharts: `{Path(out_dir) / 'report.html'}`\n"
        create_markdown_artifact(markdown=markdown, key=f"{KEY}-report",
                                 description=f"corpusclean run {report['run_id']}: the run report")
        for name, rows in report_tables(report).items():
            create_table_artifact(table=rows, key=f"{KEY}-{name}", description=f"corpusclean run {report['run_id']}: {name}")
    except Exception as exc:  # the corpus is committed: a missing view is a warning
        _warn(f"report artifacts not created: {type(exc).__name__}: {exc}")


def _warn(message: str) -> None:
    from prefect import get_run_logger

    try:
        get_run_logger().warning(message)
    except Exception:
        pass
