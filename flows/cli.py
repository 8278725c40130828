"""The ``corpusclean`` command line.

Every failure is one line on stderr and a documented exit status (README, *exit statuses*):
2 a user mistake (missing folder, bad config, --task-runner dask without its extra), 3 no
usable input file in the raw folder, 4 a run whose files were mostly rejected (committed, with a
warning line), 69 the Dask scheduler cannot be reached, 73 the output cannot be created or
written (permissions, read-only, under a file), 74 an I/O error writing it (disk full), 75
another run is writing to the output folder, 1 a failed run (``--verbose`` shows Prefect's logs and the
traceback). Prefect is imported lazily, after its environment defaults are set, so
``--help`` is instant and a run prints no telemetry noise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from tasks import __version__
from tasks.config import ConfigError, config_to_toml, load_config
from tasks.faults import EXIT_CANTCREAT, EXIT_IOERR, describe_failure  # noqa: F401  (statuses 73, 74)
from tasks.runs import NoInput, OutputBusy, UsageError, check_inputs, check_paths, lock_output, unlock_output

EXIT_FAILED = 1  # the run failed
EXIT_USAGE = 2  # a user mistake: paths, options, config, a missing optional dependency
EXIT_NO_INPUT = 3  # the raw folder holds no file in a readable format: nothing run, nothing committed
EXIT_MOSTLY_REJECTED = 4  # the run committed, but more than half of the files it read gave no document
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the Dask scheduler given by --dask-address cannot be reached
EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the output folder; try again later

app = typer.Typer(
    name="corpusclean",
    help=(
        "Turn raw scraped text (txt/md in any encoding, HTML, WARC/WET, JSON lines, JSON, Parquet, CSV/TSV; "
        "gzip and zstd) into a clean, "
        "deduplicated Parquet corpus with provenance. Run from the project root so that "
        "prefect.toml applies."
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

RawOpt = Annotated[Path, typer.Option("--raw", help="Folder of raw input files (searched recursively).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder for documents/, paragraphs/, rejects/ and the report.")]
ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", help="TOML config file (see `corpusclean config` for every option).")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override one option, e.g. --set dedup.threshold=0.85 (repeatable)."),
]


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # "[dask]" is text
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"corpusclean {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def _prefect_environment(verbose: bool, level: str = "WARNING") -> None:
    # Defaults only: anything the user set (env or prefect.toml) wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", level)
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # Dask workers inherit it


def _check_task_runner(run_cfg) -> None:
    """Fail in one line, before Prefect starts, if the Dask runner cannot work."""
    if run_cfg.task_runner != "dask":
        return
    try:
        import prefect_dask  # noqa: F401  (the optional extra)
    except ImportError:
        _fail("--task-runner dask needs the optional prefect-dask package: "
              "pip install 'corpusclean[dask]' (or use --task-runner processes)")
    if run_cfg.dask_address:
        reason = _unreachable(run_cfg.dask_address)
        if reason:
            _fail(f"cannot reach the Dask scheduler at {run_cfg.dask_address}: {reason}", EXIT_UNAVAILABLE)


def _unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why a TCP connection to a Dask scheduler address fails (None: it connects, or is not TCP)."""
    import socket
    from urllib.parse import urlsplit

    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return None  # inproc://, ucx://...: left to distributed
    try:
        parts = urlsplit(f"tcp://{rest}")
        host, port = parts.hostname, parts.port or 8786
    except ValueError as exc:
        return f"not a host:port address ({exc})"
    if not host:
        return "not a host:port address"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


@app.command()
def run(
    raw: RawOpt = Path("data/raw"),
    out_dir: OutOpt = Path("data/clean"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Shards cleaned in parallel (run.workers).", min=1)] = None,
    task_runner: Annotated[
        Optional[str],
        typer.Option(
            "--task-runner",
            help="processes (default: every core), threads (no start-up cost, one core) or dask.",
            show_default=False,
        ),
    ] = None,
    dask_address: Annotated[
        Optional[str],
        typer.Option("--dask-address", help="With --task-runner dask: an existing cluster's scheduler (tcp://host:8786).",
                     show_default=False),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="If another run is writing to OUT, wait for it instead of stopping.")
    ] = False,
    retry_rejects: Annotated[
        bool,
        typer.Option("--retry-rejects", help="Read again the unchanged files that had rejects (they are anyway "
                     "when the [read] settings changed since); good files are not reprocessed."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's logs and tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run the cleaning flow once over RAW and write the corpus to OUT.

    Formats (by extension, else by content): .txt .md (and .gz), .html .htm (and .gz; trafilatura),
    .warc .warc.gz .warc.wet .warc.wet.gz, .jsonl .jsonl.gz .jsonl.zst, .json, .parquet, .csv .tsv.
    Exit 4 (after committing) when more than half of the files read gave no document.

    Stages: read and decode, repair encoding (ftfy), split paragraphs, flag boilerplate,
    detect language, find exact and near duplicates (MinHash), write Parquet + report.
    A local run starts Prefect's temporary API by itself (a few seconds); no server needed.
    """
    overrides = list(set_ or [])
    if workers is not None:
        overrides.append(f"run.workers={workers}")
    if task_runner is not None:
        overrides.append(f'run.task_runner="{task_runner}"')
    if dask_address is not None:
        overrides.append(f'run.dask_address="{dask_address}"')
    if wait:
        overrides.append("run.wait_for_lock=true")
    try:
        cfg = load_config(config, overrides)
        _, out_resolved = check_paths(raw, out_dir)
        if not cfg.run.wait_for_lock:  # refuse a busy output at once, before Prefect starts
            unlock_output(lock_output(out_resolved))
        check_inputs(raw)
    except OutputBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except NoInput as exc:
        _fail(str(exc), EXIT_NO_INPUT)
    except (ConfigError, UsageError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the output folder cannot be made: under a regular file, read-only, no permission
        described = describe_failure(exc, out_dir)
        _fail(described[0] if described else f"cannot use the output folder {out_dir}: {exc}",
              described[1] if described else EXIT_CANTCREAT)
    # Before anything imports Prefect (prefect_dask does). Not verbose: a failed run is our one
    # line, so Prefect's own error logs (with their traceback) stay quiet.
    _prefect_environment(verbose, level="CRITICAL")
    _check_task_runner(cfg.run)
    from flows.api import run_api
    from flows.clean_corpus import clean_corpus, make_task_runner
    from tasks import progress

    # A worker killed mid-run (OOM killer) makes multiprocessing's tracker warn about leaked
    # semaphores at exit: noise after our one line. The tracker is a child: it reads the environment.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning:multiprocessing.resource_tracker")
    flow = clean_corpus.with_options(task_runner=make_task_runner(cfg.run))
    try:
        with run_api():
            if quiet or not err.is_terminal:  # no bar in a log file (rich would leave a blank line there)
                report = flow(raw_dir=raw, out_dir=out_dir, config_path=config, overrides=overrides,
                              retry_rejects=retry_rejects)
            else:
                report = _run_with_progress(flow, progress, raw, out_dir, config, overrides, retry_rejects)
    except OutputBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except NoInput as exc:
        _fail(str(exc), EXIT_NO_INPUT)
    except (ConfigError, UsageError) as exc:
        _fail(str(exc))
    except Exception as exc:  # a failed run: one line, details on request
        if verbose:
            err.print_exception()
        described = describe_failure(exc, out_dir)  # disk full, permissions, a dead worker: path, cause, status
        if described:
            _fail(described[0], described[1])
        _fail(f"run failed: {type(exc).__name__}: {exc}" + ("" if verbose else " (rerun with --verbose for details)"),
              EXIT_FAILED)
    if not quiet:
        _print_summary(report, raw)
    from tasks.report import mostly_rejected, rejected_warning

    warning = rejected_warning(report)
    if warning and not quiet:  # one visible line, after the table (stderr: seen even when stdout is piped)
        from rich.markup import escape

        err.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if mostly_rejected(report):
        raise typer.Exit(EXIT_MOSTLY_REJECTED)


def _run_with_progress(flow, progress, raw, out_dir, config, overrides, retry_rejects=False) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as bar:
        starting = bar.add_task("starting Prefect", total=None)
        phases: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if starting in bar.task_ids:
                bar.remove_task(starting)
            if phase not in phases:
                label = {"clean": "cleaning shards", "dedup": "finding duplicates"}.get(phase, phase)
                phases[phase] = bar.add_task(label, total=total)
            bar.update(phases[phase], completed=done, total=total)

        progress.install(on_progress)
        try:
            return flow(raw_dir=raw, out_dir=out_dir, config_path=config, overrides=overrides,
                        retry_rejects=retry_rejects)
        finally:
            progress.install(None)


def _print_summary(report: dict, raw: Path) -> None:
    i = report["inputs"]
    if not i["files"] and not i.get("changed") and not report["dedup"].get("rewritten_parts"):
        out.print(f"nothing new in {raw}: all {i.get('unchanged', 0)} input files are already in the corpus "
                  f"({report['out_dir']}); nothing cleaned", highlight=False, soft_wrap=True)
        return
    c = report["counts"]
    table = Table(title=f"corpusclean run {report['run_id']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("input", f"{i['files']} files cleaned, {i['bytes'] / 1e6:.2f} MB")
    if i.get("unchanged"):
        table.add_row("  skipped", f"{i['unchanged']} unchanged files (already in the corpus)")
    if i.get("changed"):
        table.add_row("  changed", f"{i['changed']} files (their earlier rows are superseded)")
    if i.get("retried"):
        table.add_row("  retried", f"{i['retried']} unchanged files with rejects, read again")
    if report["dedup"].get("rewritten_parts"):
        table.add_row("  rewritten", f"{report['dedup']['rewritten_parts']} earlier parts (decisions changed)")
    table.add_row("documents", str(c["documents"]))
    table.add_row("paragraphs", str(c["paragraphs"]))
    table.add_row("  kept", str(c["kept"]))
    table.add_row("  boilerplate", str(c["boilerplate"]))
    table.add_row("  duplicate", str(c["duplicate"]))
    rejects = ", ".join(f"{k} {v}" for k, v in report["reject_reasons"].items())
    table.add_row("rejects", f"{c['rejects']}" + (f" ({rejects})" if rejects else ""))
    langs = ", ".join(f"{k} {v}" for k, v in list(report["languages"].items())[:8])
    table.add_row("languages", langs or "-")
    table.add_row("time", f"{report['wall_seconds']:.1f} s")
    table.add_row("output", report["out_dir"])
    out.print(table)
    out.print(f"report: {Path(report['out_dir']) / 'report.md'}", highlight=False, soft_wrap=True)  # one line, piped too


@app.command()
def serve(
    cron: Annotated[str, typer.Option("--cron", help='When to run, as a cron string, e.g. "0 3 * * *" (03:00 every day).')],
    raw: RawOpt = Path("data/raw"),
    out_dir: OutOpt = Path("data/clean"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    name: Annotated[str, typer.Option("--name", help="Deployment name (runs are 'clean-corpus/NAME').")] = "nightly",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's logs.")] = False,
) -> None:
    """Serve the flow as a scheduled deployment until interrupted (Ctrl-C).

    Needs a real Prefect server (schedules do not run on the temporary one): start one with
    `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api. One-off runs of
    the deployment: `prefect deployment run 'clean-corpus/NAME' --watch`. Run from the project
    root: the flow is loaded from flows/clean_corpus.py.
    """
    overrides = list(set_ or [])
    try:
        load_config(config, overrides)
        raw_path, out_path = check_paths(raw, out_dir)
    except (ConfigError, UsageError) as exc:
        _fail(str(exc))
    _prefect_environment(verbose)
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        _fail("serve needs a running Prefect server: start `prefect server start` and set "
              "PREFECT_API_URL=http://127.0.0.1:4200/api")
    from flows.clean_corpus import clean_corpus

    parameters = {"raw_dir": str(raw_path), "out_dir": str(out_path), "overrides": overrides}
    if config is not None:
        parameters["config_path"] = str(config.resolve())
    out.print(f"serving clean-corpus/{name} on {cron!r} ({PREFECT_API_URL.value()}); Ctrl-C to stop", highlight=False)
    try:
        clean_corpus.serve(name=name, cron=cron, parameters=parameters, print_starting_message=verbose)
    except KeyboardInterrupt:
        out.print("stopped")


@app.command()
def status(
    out_dir: OutOpt = Path("data/clean"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """List the runs committed to OUT (inputs, paragraphs kept/boilerplate/duplicate, rejects) and the corpus's totals."""
    from tasks.corpus_state import CorpusError, corpus_status

    if not out_dir.is_dir():
        _fail(f"output folder not found: {out_dir}")
    try:
        info = corpus_status(out_dir)
    except CorpusError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(data=info)
        return
    if not info["runs"]:
        out.print(f"{out_dir}: no run committed yet", soft_wrap=True, highlight=False)
        return
    from rich import box

    table = Table(title=f"{out_dir}: version {info['version']}, committed {info['committed_at']}",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    # new/chg/skip: input files new, changed (superseding their earlier rows), unchanged;
    # chrome: boilerplate paragraphs; rewr: earlier parts this run rewrote (decisions changed).
    # The run id starts with the run's start time (UTC); finished_at is in --json.
    for column in ("run", "new", "chg", "skip", "docs", "kept", "chrome", "dup", "rej", "rewr"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for r in info["runs"]:
        i, c = r["inputs"], r["counts"]
        table.add_row(r["run_id"], str(i["new"]), str(i["changed"]), str(i["unchanged"]),
                      str(c["documents"]), str(c["kept"]), str(c["boilerplate"]), str(c["duplicate"]),
                      str(c["rejects"]), str(r.get("rewritten_parts", 0)))
    t = info["totals"]
    table.add_section()
    table.add_row(f"corpus now ({info['sources']} inputs)", "", "", "", str(t["documents"]), str(t["kept"]), str(t["boilerplate"]),
                  str(t["duplicate"]), str(t["rejects"]), "", style="bold")
    # Never squeeze the table (80 columns when piped): a wider line beats elided numbers.
    Console(width=max(out.width, 100)).print(table)
    out.print("new/chg/skip: input files new, changed, unchanged; chrome: boilerplate; dup: duplicates; "
              "rej: rejects; rewr: earlier parts rewritten", highlight=False, style="dim")


@app.command()
def files(
    table: Annotated[str, typer.Argument(help="documents, paragraphs or rejects.")],
    out_dir: OutOpt = Path("data/clean"),
) -> None:
    """Print the Parquet files of TABLE in the committed corpus, one per line (for DuckDB, Spark, shell tools)."""
    from tasks.corpus_state import CorpusError, snapshot

    try:
        paths = snapshot(out_dir).files(table)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    except CorpusError as exc:
        _fail(str(exc))
    for path in paths:
        print(path)


@app.command("config")
def show_config(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the effective configuration as TOML, with a comment on every option."""
    try:
        cfg = load_config(config, list(set_ or []))
    except ConfigError as exc:
        _fail(str(exc))
    # Plain text, never rich: its wrapping at the terminal's (or a pipe's 80) columns broke the TOML.
    typer.echo(config_to_toml(cfg))


@app.command()
def schema() -> None:
    """Print the output schema: the columns of documents/, paragraphs/ and rejects/."""
    from tasks import schema as s

    for name, table_schema in s.TABLES.items():
        table = Table(title=f"{name}/", title_justify="left")
        table.add_column("column")
        table.add_column("type")
        table.add_column("nullable")
        for col, typ, nullable in s.describe(table_schema):
            table.add_row(col, typ, "yes" if nullable else "no")
        out.print(table)


_EXPLAIN_STYLES = {"keep": "green", "boilerplate": "yellow", "duplicate": "magenta"}


@app.command()
def explain(
    file: Annotated[
        Path,
        typer.Argument(
            help="One raw file: .txt/.md/.html (one document), or JSON lines, JSON, Parquet, CSV, WARC/WET (see --record).",
            metavar="FILE",
            show_default=False,
        ),
    ],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    record: Annotated[
        int,
        typer.Option("--record", min=0, help="Document to explain in a JSON-lines (line number), JSON/Parquet/CSV (row) "
                     "or WARC (record number) file, from 0."),
    ] = 0,
    only_removed: Annotated[bool, typer.Option("--only-removed", help="Hide the kept lines.")] = False,
) -> None:
    """Show why each line of one raw document is kept or removed.

    Runs the real stages in-process, without Prefect (read, repair,
    paragraphs, boilerplate, language, duplicates), with the same
    --config/--set as `run`. Prints a header (language, encoding, counts)
    and one line per paragraph: its line number in the repaired text, the
    decision (keep, boilerplate:REASON, duplicate_of:LINE (exact|near))
    and the text.

    Duplicates are only looked for WITHIN this document (for JSON lines and
    Parquet: this one record). The corpus is not read: a paragraph that
    `run` flags as a copy of another file's, or as a line repeated on the
    pages of one site (repeated_line), is shown as kept here.

    In a terminal, lines are coloured and cut to its width; piped or
    redirected, they are printed in full, without colours.
    """
    from tasks.explain import ExplainError, explain_file

    try:
        cfg = load_config(config, list(set_ or []))
        explanation = explain_file(file, cfg, record)
    except (ConfigError, ExplainError) as exc:
        _fail(str(exc))
    except Exception as exc:  # a bug, or an input nothing anticipated: one line, never a traceback
        _fail(f"explain failed: {type(exc).__name__}: {exc}", 1)
    _print_explanation(explanation, only_removed, out)


def _print_explanation(explanation, only_removed: bool, console: Console) -> None:
    """Plain full lines when ``console`` is not a terminal; else coloured lines cut to its width."""
    from rich.text import Text

    from tasks.explain import column_widths, format_row

    rows = [r for r in explanation.rows if r.removed] if only_removed else explanation.rows
    line_width, label_width = column_widths(explanation.rows)
    if not console.is_terminal:  # plain text, full lines: for files, pipes and grep
        typer.echo(explanation.header(), file=console.file)
        for row in rows:
            typer.echo(format_row(row, line_width, label_width), file=console.file)
        return
    console.print(Text(explanation.header(), style="bold"), highlight=False)  # the header may wrap
    for row in rows:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{row.line:>{line_width}}  ", style="dim")
        text.append(f"{row.label:<{label_width}}", style=_EXPLAIN_STYLES.get(row.decision, ""))
        text.append(" | ", style="dim")
        text.append(row.text, style="" if row.decision == "keep" else "dim")
        console.print(text, no_wrap=True, overflow="ellipsis", crop=True, highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
