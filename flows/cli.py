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
import typer.rich_utils
from rich.console import Console
from rich.table import Table

from corpusclean.tasks.plumbing.imports import arrow_without_pandas

arrow_without_pandas()  # before the imports below reach pyarrow.dataset: see tasks/plumbing/imports.py

from corpusclean.tasks import __version__  # noqa: E402
from corpusclean.tasks.config import ConfigError, config_to_toml, load_config  # noqa: E402
from corpusclean.tasks.plumbing.faults import EXIT_CANTCREAT, EXIT_IOERR, describe_failure  # noqa: F401, E402  (statuses 73, 74)
from corpusclean.tasks.corpus.runs import NoInput, OutputBusy, UsageError, check_inputs, check_paths, lock_output, unlock_output  # noqa: E402

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


def _usage_error_in_one_line(exc) -> None:
    """A usage error (an unknown option, ``--workers 0``...) as one line, like every other error:
    typer draws it as a usage line, a hint and a boxed panel. (``NoArgsIsHelpError``: the help was
    printed already, as typer does.)"""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return
    from rich.markup import escape

    ctx = getattr(exc, "ctx", None)
    hint = f" (`{ctx.command_path} --help`)" if ctx is not None else ""
    err.print(f"error: {escape(exc.format_message())}{hint}", highlight=False, soft_wrap=True)


typer.rich_utils.rich_format_error = _usage_error_in_one_line  # looked up at each error by typer's core

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


def _prefect_environment(verbose: bool) -> None:
    # Defaults only: anything the user set (env or prefect.toml) wins.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # the client's first-run telemetry notice would break the display
    # Flow and task logs at INFO go to the API (the UI, `prefect flow-run logs`); the console
    # shows them only with --verbose (the progress display and the summary say it otherwise).
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # Dask workers inherit it
    # After a stop, multiprocessing's resource tracker releases what the ended workers held and would
    # say so on stderr ("leaked semaphore objects"), after the run's one line.
    quiet_tracker = "ignore::UserWarning:multiprocessing.resource_tracker"
    if quiet_tracker not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet_tracker]))
    # A busy machine is slow, not broken: give the temporary API server time (also outside the repo root).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


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
            help="processes (default: one process per worker, --workers), threads (no start-up cost, one core) or dask.",
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
        lock = _take_lock(out_resolved, cfg.run.wait_for_lock, quiet)
        try:
            check_inputs(raw)
        except NoInput:
            unlock_output(lock)
            raise
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
    # The lock is held from here to the end of the run (the flow adopts it): a second run on the
    # same folder is refused above, in one line, before it starts anything.
    from corpusclean.flows import lifecycle
    from corpusclean.tasks.plumbing import progress
    from corpusclean.tasks.corpus.runs import adopt_lock, pending_inputs, release_adopted

    # Before anything imports Prefect (prefect_dask does) or starts its server. Not verbose: a
    # failed run is our one line, so Prefect's console logs stay quiet; INFO still goes to the
    # API (the UI, `prefect flow-run logs`).
    _prefect_environment(verbose)
    try:
        _check_task_runner(cfg.run)
    except typer.Exit:
        unlock_output(lock)
        raise
    adopt_lock(out_resolved, lock)  # the run started below takes it over; released below if none does
    lifecycle.take_interrupts()  # before any child process: see flows/lifecycle.py
    state = progress.RunProgress()
    display = _Display(state, quiet, live=not verbose)  # --verbose: Prefect's log lines would tear a live line
    servers: list = []  # the temporary API server once started (stopped by this thread at the end)
    workers: list = []  # a task runner whose workers started before the flow (ended here if no flow took them)
    after_summary: list[str] = []  # warning lines for after the summary

    def body() -> dict | _NothingNew:
        """Everything after the lock, in a thread: the main thread stays free for the signals."""
        from corpusclean.tasks.plumbing.timeline import event

        event("command_body")
        plan = pending_inputs(raw, out_dir, cfg, retry_rejects)
        if not plan.process:  # nothing new: answered without starting Prefect at all
            return _NothingNew(len(plan.unchanged))
        from corpusclean.flows.api import confirm_api, in_api, start_api

        display.update("starting", detail="starting the Prefect API")
        server = start_api()  # in the background from now on, while this process imports and warms up
        if server is not None:
            servers.append(server)
        from corpusclean.tasks.corpus.shard import idle_workers_warning, plan_shards

        shards = plan_shards(plan.process, cfg.run.shard_mb)
        n_shards = len(shards)
        idle = idle_workers_warning(shards, cfg.run.shard_mb, cfg.run.workers, cfg.run.task_runner)
        if idle:
            after_summary.append(idle)
        from corpusclean.flows.clean_corpus import clean_corpus, make_task_runner
        from prefect.task_runners import ThreadPoolTaskRunner

        server = confirm_api(server)
        task_runner = make_task_runner(cfg.run, n_shards, cfg)
        flow = clean_corpus.with_options(task_runner=task_runner)
        early = getattr(task_runner, "start_workers", None)
        if early is not None:
            early()  # worker processes import and set up the stages while the server starts
            workers.append(task_runner)
        if server is not None and isinstance(task_runner, ThreadPoolTaskRunner):
            from corpusclean.tasks.plumbing.warmup import warm_up

            warm_up(cfg)  # shards run in this process: set up the stages while the server starts
        event("wait_api", "B")
        url = server.wait() if server is not None else None
        event("wait_api", "E")
        if url is not None:
            # Also for what runs outside the flow's settings context: Prefect's thread that forwards
            # the pool workers' events reads the global settings, and without an API URL there it
            # started a temporary server of its own (seconds of CPU, an orphan after kill -9).
            from prefect.context import refresh_global_settings_context

            os.environ["PREFECT_API_URL"] = url
            refresh_global_settings_context()
        display.update("starting", detail="starting the flow run")
        event("flow_call")
        return in_api(url, lambda: flow(raw_dir=raw, out_dir=out_dir, config_path=config, overrides=overrides,
                                         retry_rejects=retry_rejects))

    progress.install(display.update)
    api_env = os.environ.get("PREFECT_API_URL")  # body() may set it: restored below (in-process callers)
    try:
        report = lifecycle.run_stoppable(body)
        from corpusclean.tasks.plumbing.timeline import event

        event("body_returned")
    except lifecycle.Stopped as stop:
        display.close()
        _stop(stop)
    except OutputBusy as exc:
        display.close()
        _fail(str(exc), EXIT_BUSY)
    except NoInput as exc:
        display.close()
        _fail(str(exc), EXIT_NO_INPUT)
    except (ConfigError, UsageError) as exc:
        display.close()
        _fail(str(exc))
    except typer.Exit:
        display.close()
        raise
    except Exception as exc:  # a failed run: one line, details on request
        display.close()
        if verbose:
            err.print_exception()
        described = describe_failure(exc, out_dir)  # disk full, permissions, a dead worker: path, cause, status
        if described:
            _fail(described[0], described[1])
        _fail(f"run failed: {type(exc).__name__}: {exc}" + ("" if verbose else " (rerun with --verbose for details)"),
              EXIT_FAILED)
    finally:
        progress.install(None)
        display.close()
        for runner in workers:
            runner.discard_workers()
        for server in servers:
            server.stop()
        if api_env is None:
            os.environ.pop("PREFECT_API_URL", None)
        release_adopted(out_resolved)
        lifecycle.release_interrupts()
    if not quiet:
        if isinstance(report, _NothingNew):
            _print_nothing_new(raw, report.unchanged, out_resolved)
        else:
            _print_summary(report, raw)
    global _flow_ran
    _flow_ran = not isinstance(report, _NothingNew)
    if isinstance(report, _NothingNew):
        return
    from corpusclean.tasks.corpus.report import mostly_rejected, rejected_warning

    warning = rejected_warning(report)
    if warning:
        after_summary.append(warning)
    failing = mostly_rejected(report)
    # one visible line each, after the table (stderr: seen even when stdout is piped)
    shown = after_summary
    if quiet:  # only the line that explains a non-zero status
        shown = [warning] if failing and warning else []
    if shown:
        from rich.markup import escape

        for line in shown:
            err.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)
    if failing:
        raise typer.Exit(EXIT_MOSTLY_REJECTED)


_flow_ran = False  # see main()


class _NothingNew:
    def __init__(self, unchanged: int):
        self.unchanged = unchanged


def _take_lock(out_resolved: Path, wait: bool, quiet: bool) -> int:
    """The output's lock, or ``OutputBusy``; with ``wait``, say once whom the run waits for."""
    from corpusclean.tasks.corpus.runs import note_starting

    try:
        fd = lock_output(out_resolved)
    except OutputBusy as exc:
        if not wait:
            raise
        if not quiet:
            err.print(f"waiting: {exc}".split("; wait for it")[0], highlight=False, soft_wrap=True)
        fd = lock_output(out_resolved, wait=True)
    note_starting(fd)
    return fd


def _stop(stop) -> None:
    """Ctrl-C or SIGTERM during a run: end every process of the run, say what was committed, exit."""
    from corpusclean.flows import lifecycle
    from corpusclean.tasks.corpus import runs

    runs.forbid_commits()
    lifecycle.end_descendants(grace=2.0)
    done = [r for r in runs.started_runs() if runs.committed(r)]
    for r in runs.active_runs():
        if r not in done:
            runs.remove_run_files(r)  # the next run would clear them too
    name = "Ctrl-C" if stop.signum == 2 else stop.args[0]
    if done:
        message = f"stopped ({name}) after run {done[-1].run_id} was committed to {done[-1].out_dir}"
    else:
        message = f"stopped ({name}); nothing committed"
    err.print(message, highlight=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Now, not through Prefect's exit handlers: they would flush events and logs to an API that is gone.
    os._exit(stop.exit_code)


def _print_nothing_new(raw: Path, unchanged: int, out_path: Path) -> None:
    out.print(f"nothing new in {raw}: all {unchanged} input files are already in the corpus ({out_path}); "
              "nothing cleaned", highlight=False, soft_wrap=True)


PLAIN_EVERY = 10.0  # seconds between plain progress lines when stderr is not a terminal


class _Display:
    """The run's progress on stderr from the first second: a live line in a terminal, a plain
    line per phase change and every PLAIN_EVERY seconds otherwise (log files), nothing with -q."""

    def __init__(self, state, quiet: bool, live: bool = True):
        import threading

        self.state = state
        self.live = None
        self.spinner = None
        self._printed = 0
        self._closed = threading.Event()
        self._thread = None
        if quiet:
            return
        if err.is_terminal and live:
            from rich.live import Live
            from rich.spinner import Spinner

            self.spinner = Spinner("dots", style="cyan")
            self.live = Live(get_renderable=self._render, console=err, refresh_per_second=4, transient=True,
                             redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        else:
            self._thread = threading.Thread(target=self._plain, name="corpusclean-progress", daemon=True)
            self._thread.start()

    def update(self, phase: str, **fields) -> None:
        """The flow's progress callback."""
        self.state.update(phase, **fields)
        if self.live is not None and not self._closed.is_set():
            from rich.text import Text

            for line in self.state.finished[self._printed:]:  # a phase ended: a lasting line above the live one
                self.live.console.print(Text(f"✓ {line}", style="dim"))
            self._printed = len(self.state.finished)

    def _render(self):
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        from corpusclean.tasks.plumbing.progress import format_seconds

        s = self.state
        s.refresh()
        row = Table.grid(padding=(0, 1))
        fraction = s.fraction()
        row.add_row(self.spinner, Text(s.line()),
                    ProgressBar(total=1.0, completed=fraction or 0.0, width=24, pulse=fraction is None),
                    Text(format_seconds(s.elapsed()), style="dim"))
        return row

    def _plain(self) -> None:
        from datetime import datetime

        from corpusclean.tasks.plumbing.progress import format_seconds

        printed, shown, last = 0, None, 0.0
        while True:
            s = self.state
            s.refresh()
            for line in s.finished[printed:]:  # a phase ended: its summary line
                self._print(datetime.now(), line, None)
            printed = len(s.finished)
            key = (s.phase, s.detail if s.phase == "starting" else "")
            if self._closed.is_set():  # the last phase's line is out: done
                if s.phase != "done" and key != shown:  # a run stopped in a phase not shown yet: where it was
                    self._print(datetime.now(), s.line(), format_seconds(s.elapsed()))
                return
            if s.phase != "done" and (key != shown or s.elapsed() - last >= PLAIN_EVERY):
                self._print(datetime.now(), s.line(), format_seconds(s.elapsed()))
                shown, last = key, s.elapsed()
            self._closed.wait(0.5)

    @staticmethod
    def _print(now, line: str, elapsed: str | None) -> None:
        suffix = f" ({elapsed})" if elapsed else ""
        print(f"{now:%H:%M:%S} corpusclean: {line}{suffix}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self.live is not None:
            self.live.stop()
            for line in self.state.finished[self._printed:]:
                err.print(f"✓ {line}", style="dim", highlight=False)
        if self._thread is not None:
            self._thread.join(2)


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
    skipped = i.get("skipped_records")
    if skipped:  # WARC request/metadata/warcinfo/revisit records: not documents, not rejects
        n = sum(skipped.values())
        table.add_row("  not documents", f"{n} WARC record{'s' if n != 1 else ''} skipped ("
                      + ", ".join(f"{k} {v}" for k, v in skipped.items()) + ")")
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
    report_dir = Path(report["out_dir"])  # one line each, piped too
    out.print(f"report: {report_dir / 'report.md'}", highlight=False, soft_wrap=True)
    out.print(f"charts: {report_dir / 'report.html'}", highlight=False, soft_wrap=True)


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
    the deployment: `prefect deployment run 'clean-corpus/NAME' --watch`. The deployment loads
    the flow by its import name (corpusclean.flows.clean_corpus), so it runs from any folder.
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
    from corpusclean.flows.clean_corpus import clean_corpus

    parameters = {"raw_dir": str(raw_path), "out_dir": str(out_path), "overrides": overrides}
    if config is not None:
        parameters["config_path"] = str(config.resolve())
    out.print(f"serving clean-corpus/{name} on {cron!r} ({PREFECT_API_URL.value()}); Ctrl-C to stop", highlight=False)
    try:
        from prefect.types.entrypoint import EntrypointType

        # By import name, not by file path: the installed package is found from any working folder.
        clean_corpus.serve(name=name, cron=cron, parameters=parameters, print_starting_message=verbose,
                           entrypoint_type=EntrypointType.MODULE_PATH)
    except KeyboardInterrupt:
        out.print("stopped")


@app.command()
def status(
    out_dir: OutOpt = Path("data/clean"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """List the runs committed to OUT (inputs, paragraphs kept/boilerplate/duplicate, rejects) and the corpus's totals."""
    from corpusclean.tasks.corpus.corpus_state import CorpusError, corpus_status

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
    from corpusclean.tasks.corpus.corpus_state import CorpusError, snapshot

    if not out_dir.is_dir():  # as `status`: a mistyped folder is an error, not an empty corpus
        _fail(f"output folder not found: {out_dir}")
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
    from corpusclean.tasks import schema as s

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
        Optional[int],
        typer.Option("--record", min=0, show_default=False,
                     help="Document to explain in a JSON-lines (line number), JSON/Parquet/CSV (row) "
                     "or WARC (record number) file, from 0. Default: the file's first document."),
    ] = None,
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
    from corpusclean.tasks.corpus.explain import ExplainError, explain_file

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

    from corpusclean.tasks.corpus.explain import column_widths, format_row

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
    except SystemExit as exc:
        if _flow_ran and exc.code in (0, None, EXIT_MOSTLY_REJECTED):
            # A run is done, its logs and events sent while the API was up: skip the interpreter's
            # exit, where Prefect's exit handlers and teardown took ~2 s more on a busy machine.
            from corpusclean.flows.lifecycle import end_descendants

            from corpusclean.tasks.plumbing.timeline import event

            sys.stdout.flush()
            sys.stderr.flush()
            end_descendants(grace=2.0)  # none is expected; whatever is left must not outlive us
            event("exit")
            os._exit(exc.code or 0)  # 4 (mostly rejected) stays 4: the run is committed, the status says how it went
        raise


if __name__ == "__main__":
    main()
