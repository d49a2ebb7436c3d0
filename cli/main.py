"""`rlm-research`: run a Recursive Language Model over your sources from the shell.

    rlm-research run "What is the serial number of the replacement cryocooler?" \\
        --source examples/observatory_log_2023.txt
    rlm-research run "What was the Q3 revenue?" --source report.pdf --source notes/ -s https://...
    rlm-research runs
    rlm-research show <run-id>
    rlm-research resume <run-id>

Exit codes: 0 answered, 1 failed (with a one-line reason), 2 bad usage, 130 interrupted
(the run stays resumable).
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import sys
import threading
import traceback
import uuid
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.report import peak_rss_mb
from graph import api, run_index
from graph.config import ConfigError, Loaded, load_config, settings_from_stored
from graph.settings import Settings
from graph.usage import total_tokens

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
GRACE_SECONDS = 3.0  # after Ctrl-C, how long parallel sub-calls may take to notice before we leave
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

app = typer.Typer(
    name="rlm-research",
    help=(
        "Answer questions over long documents with a Recursive Language Model: the text lives in "
        "a Python REPL as `context`, the model writes code to read it and calls sub_lm() on "
        "pieces. Runs are checkpointed in SQLite and can be resumed after a crash or Ctrl-C.\n\n"
        "Models: `local` (the embedded model, the default, even when OPENAI_API_KEY is set), "
        "`openai:<name>` (add --base-url for vLLM / Ollama / llama.cpp servers), "
        "`openrouter:<name>`, `anthropic:<name>`, ... API keys come from the provider's usual "
        "variable (OPENAI_API_KEY, ...) or RLM_API_KEY, never from a flag.\n\n"
        "Settings: ./rlm-research.yaml or ~/.config/rlm-research/config.yaml, overridden by "
        "RLM_* variables (RLM_MODEL, RLM_MAX_DEPTH, ...), overridden by flags.\n\n"
        "Exit codes: 0 answered, 1 failed, 2 bad usage, 130 interrupted (resumable)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

err = Console(stderr=True, highlight=False, soft_wrap=True)

# -- shared options ------------------------------------------------------------------------------
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="The run database (SQLite). Default: <data_dir>/runs.sqlite; its folder also holds "
        "blobs/ and reports/.",
        dir_okay=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of text.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A YAML config file to use instead of ./rlm-research.yaml or the user config.",
        dir_okay=False,
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress output, just the result.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Root model: local, local:0.5b, a .gguf path, openai:<name>, openrouter:<name>, "
        "anthropic:<name>, ... Default: local.",
    ),
]
SubModelOpt = Annotated[
    str | None,
    typer.Option("--sub-model", help="Model for sub_lm() calls. Default: the root model."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible server for openai:<name> models, e.g. http://localhost:8000/v1.",
    ),
]


# -- small helpers -------------------------------------------------------------------------------
class Failure(Exception):
    """Stop the command with one red line and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED, run_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.run_id = run_id


def _fail(exc: Failure, json_out: bool) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    if json_out:
        status = "interrupted" if exc.code == EXIT_INTERRUPTED else "error"
        _print_json({"run_id": exc.run_id, "status": status, "error": str(exc)})
    raise typer.Exit(exc.code)


def _print_json(obj: Any) -> None:
    try:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str, indent=2) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def _echo(text: str) -> None:
    try:
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        pass


def _config(flags: dict[str, Any], config_file: Path | None) -> Loaded:
    try:
        return load_config(flags, config_file=config_file)
    except ConfigError as e:
        raise Failure(str(e), EXIT_USAGE) from None


def _db_path(db: Path | None, settings: Settings) -> Path:
    return db if db is not None else Path(settings.data_dir) / "runs.sqlite"


def _with_db(settings: Settings, db: Path) -> Settings:
    """The database, blobs/ and reports/ share one folder (as graph.api does)."""
    return dataclasses.replace(settings, data_dir=str(db.parent))


def _check_models(settings: Settings) -> None:
    from tools.chat_models import ModelConfigError, check_models_reachable

    try:
        check_models_reachable(settings.model, settings.sub_model, base_url=settings.base_url)
    except ModelConfigError as e:
        raise Failure(str(e)) from None


def _label(spec: Any) -> str | None:
    if spec is None:
        return None
    try:
        from tools.chat_models import model_label

        return model_label(spec)
    except Exception:  # noqa: BLE001 - only for display
        return str(spec)


def _resume_hint(run_id: str, db: Path, explicit_db: bool) -> str:
    return f"rlm-research resume {run_id}" + (f" --db {db}" if explicit_db else "")


def _sandbox_mode() -> str | None:
    """How this process ran REPL workers (bwrap or plain), for the report."""
    try:
        from tools.sandbox import sandbox_mode

        mode = sandbox_mode()
    except Exception:  # noqa: BLE001 - absent or misconfigured: the report just omits it
        return None
    return mode + ("" if mode == "bwrap" else " (reduced isolation: no bwrap)")


def _debug() -> bool:
    return os.environ.get("RLM_DEBUG", "").strip() not in ("", "0", "false")


# -- Ctrl-C --------------------------------------------------------------------------------------
class InterruptGuard:
    """The first Ctrl-C raises KeyboardInterrupt so the run stops where it is (finished steps
    are already checkpointed). LangGraph then waits for parallel sub-calls still running in
    threads; if that takes more than GRACE_SECONDS, or on a second Ctrl-C, we say the same
    thing and leave at once, as a crash would: the checkpoints are durable either way."""

    def __init__(self, on_stop: Any, on_first: Any = None) -> None:
        self.on_stop = on_stop  # prints the message, marks the run interrupted; runs once
        self.on_first = on_first  # a first word at once, while calls in flight finish
        self.hits = 0
        self._lock = threading.Lock()
        self._stopped = False
        self._previous: Any = None

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handler(self, signum: int, frame: Any) -> None:
        self.hits += 1
        if self.hits > 1:
            self.hard_exit()
        timer = threading.Timer(GRACE_SECONDS, self.hard_exit)
        timer.daemon = True
        timer.start()
        if self.on_first is not None:
            try:
                self.on_first()
            except Exception:  # noqa: BLE001 - never let feedback block the stop
                pass
        raise KeyboardInterrupt

    def stop_once(self) -> None:
        with self._lock:  # held while speaking, so a hard exit waits for the message
            if self._stopped:
                return
            self._stopped = True
            self.on_stop()

    def hard_exit(self) -> NoReturn:
        try:
            self.stop_once()
            atexit._run_exitfuncs()  # stops REPL workers, as a normal exit would
        finally:
            os._exit(EXIT_INTERRUPTED)


# -- running -------------------------------------------------------------------------------------
def _execute(
    *,
    run_id: str,
    question: str | None,
    context: Any,
    settings: Settings,
    db: Path,
    explicit_db: bool,
    json_out: bool,
    quiet: bool,
    report_question: str,
    sources: list[dict[str, Any]] | None,
) -> None:
    """Stream the run with progress, then report. Raises typer.Exit with the right code."""
    from cli.progress import make_progress
    from cli.report import write_report
    from graph.api import stream

    hint = _resume_hint(run_id, db, explicit_db)
    live = not json_out and not quiet and err.is_terminal
    progress = make_progress(run_id, model=_label(settings.model) or "", live=live, quiet=quiet)
    result = None
    stopped = threading.Event()

    def on_stop() -> None:
        stopped.set()
        try:
            progress.__exit__(None, None, None)
        except Exception:  # noqa: BLE001
            pass
        if result is None:
            try:
                run_index.record_end(db, run_id, error=KeyboardInterrupt())
            except Exception:  # noqa: BLE001 - the message matters more
                pass
        err.print(f"[yellow]Interrupted.[/] Resume with: [bold]{escape(hint)}[/]")
        if json_out:
            _print_json({"run_id": run_id, "status": "interrupted", "resume": hint})

    events = stream(question, context, settings=settings, run_id=run_id, db_path=db)
    guard = InterruptGuard(
        on_stop, lambda: progress.note("Stopping... (Ctrl-C again to quit at once)")
    )
    try:
        with guard, progress:
            for event in events:
                if event.get("kind") == "result":
                    result = event["result"]
                else:
                    progress.handle(event)
    except KeyboardInterrupt:
        events.close()
        guard.stop_once()
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as e:  # a model or graph error mid-run: the checkpoints stay resumable
        events.close()
        if _debug():
            traceback.print_exc()
        message = run_index.one_line(e)
        err.print(f"[bold red]error:[/] run {run_id} failed: {escape(message)}")
        err.print(f"Resume with: [bold]{escape(hint)}[/]")
        if json_out:
            _print_json({"run_id": run_id, "status": "failed", "error": message, "resume": hint})
        raise typer.Exit(EXIT_FAILED) from None
    if stopped.is_set():  # the guard already spoke
        raise typer.Exit(EXIT_INTERRUPTED)
    assert result is not None

    row = run_index.get_run(db, run_id) or {}
    status = row.get("status") or ("answered" if result.answer.strip() else "failed")
    error = row.get("error")
    md_path, jsonl_path = write_report(
        result,
        data_dir=db.parent,
        question=report_question,
        status=status,
        sources=sources if sources is not None else row.get("sources"),
        models={"model": _label(settings.model), "sub_model": _label(settings.sub_model)},
        error=error,
        sandbox=_sandbox_mode(),
    )
    run_index.set_report(db, run_id, md_path)
    tracker = progress.tracker
    if json_out:
        _print_json(
            {
                "run_id": run_id,
                "status": status,
                "answer": result.answer,
                "stop_reason": result.stop_reason,
                "usage": result.usage,
                "report": str(md_path),
                "peak_rss_mb": round(peak_rss_mb()),
                "trajectory": str(jsonl_path),
                "error": error,
            }
        )
    else:
        if result.answer.strip():
            _echo(result.answer)
        from graph.usage import total_calls, total_tokens

        colour = "green" if status == "answered" else "red"
        err.print(
            f"[{colour}]{status}[/] ({escape(result.stop_reason)}) · run {run_id} · "
            f"{total_calls(result.usage)} model call(s) · {total_tokens(result.usage):,} tokens · "
            f"{result.usage.get('sub_calls', 0)} sub-call(s) · {tracker.elapsed:.1f} s"
        )
        if error:
            err.print(f"[bold red]error:[/] {escape(error)}")
        err.print(f"Report:     {escape(str(md_path))}")
        err.print(f"Trajectory: {escape(str(jsonl_path))}")
    raise typer.Exit(EXIT_OK if status == "answered" else EXIT_FAILED)


# -- commands ------------------------------------------------------------------------------------
@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The question to answer over the sources.")],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="A file, a folder (read recursively, binaries skipped), a PDF, an http(s):// "
            "URL, or - for stdin. Repeat for several: each becomes a REPL variable and all "
            "together are `context`. web:// turns on web research.",
        ),
    ] = None,
    model: ModelOpt = None,
    sub_model: SubModelOpt = None,
    base_url: BaseUrlOpt = None,
    max_depth: Annotated[
        int | None,
        typer.Option(
            "--max-depth",
            help="How deep sub_lm() calls may recurse; at the deepest level the model answers "
            "directly, with no REPL. Default 1.",
        ),
    ] = None,
    max_turns: Annotated[
        int | None,
        typer.Option("--max-turns", help="Model turns per level before a forced answer."),
    ] = None,
    web: Annotated[
        bool | None,
        typer.Option(
            "--web/--no-web",
            help="Web research: web_search() and fetch_url() in the REPL, made by this process "
            "(provider from the web_provider setting; key from TAVILY_API_KEY / BRAVE_API_KEY).",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="Name the run (letters, digits, . _ -). Default: random."),
    ] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Answer QUESTION over the given sources with a Recursive Language Model.

    Before anything starts, the sources are loaded, the settings validated and the model
    checked; any problem is one line and nothing is written. Progress shows live on a
    terminal (plain lines otherwise). At the end the answer goes to stdout, and a markdown
    report and a JSONL trajectory to <data_dir>/reports/. Ctrl-C stops cleanly: the run can
    be continued with `rlm-research resume <run-id>`.

    Example: rlm-research run "What is the serial number of the replacement cryocooler?"
    -s examples/observatory_log_2023.txt
    """
    try:
        flags = {
            "model": model,
            "sub_model": sub_model,
            "base_url": base_url,
            "max_depth": max_depth,
            "max_turns": max_turns,
            "web": web,
        }
        loaded = _config(flags, config)
        if not question.strip():
            raise Failure("the question is empty", EXIT_USAGE)
        if run_id is not None and not RUN_ID_RE.fullmatch(run_id):
            raise Failure(
                f"bad --run-id {run_id!r}: use 1-64 letters, digits, '.', '_' or '-'", EXIT_USAGE
            )
        settings = loaded.settings
        db_file = _db_path(db, settings)
        settings = _with_db(settings, db_file)

        from tools.sources import SourceError, load_sources

        try:
            sources = load_sources(
                source or [], max_bytes=loaded.max_source_bytes, url_timeout=loaded.url_timeout
            )
        except SourceError as e:
            raise Failure(str(e)) from None
        if sources.web:
            if "web" not in Settings.field_names():
                raise Failure("web:// (web research) is not available in this version", 2)
            settings = dataclasses.replace(settings, web=True)

        rid = run_id or uuid.uuid4().hex[:12]
        if run_index.get_run(db_file, rid) or run_index.has_checkpoints(db_file, rid):
            raise Failure(
                f"run id {rid!r} already exists in {db_file}; resume it with "
                f"`rlm-research resume {rid}` or choose another id",
                EXIT_USAGE,
            )
        _check_models(settings)
    except Failure as e:
        _fail(e, json_out)
    except KeyboardInterrupt:
        _fail(Failure("interrupted before the run started; nothing was saved", 130), json_out)

    run_index.record_start(
        db_file, rid, question=question, sources=sources.sizes(), settings=settings
    )
    if sources.skipped and not json_out and not quiet:
        err.print(f"[dim]skipped {len(sources.skipped)} binary or empty file(s)[/]")
    _execute(
        run_id=rid,
        question=question,
        context=sources.context(),
        settings=settings,
        db=db_file,
        explicit_db=db is not None,
        json_out=json_out,
        quiet=quiet,
        report_question=question,
        sources=sources.sizes(),
    )


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (see `rlm-research runs`).")],
    model: ModelOpt = None,
    sub_model: SubModelOpt = None,
    base_url: BaseUrlOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Continue RUN_ID from its last checkpoint (after Ctrl-C, a crash or a model error).

    Model calls that already finished, at any depth, are not made again. The run keeps the
    settings it started with; --model, --sub-model and --base-url replace them (for instance
    when a server moved). A finished run is not run again: its answer and report are shown.
    """
    try:
        loaded = _config({}, config)
        db_file = _db_path(db, loaded.settings)
        row = run_index.get_run(db_file, run_id)
        if not run_index.has_checkpoints(db_file, run_id):
            raise Failure(f"no run {run_id!r} to resume in {db_file}")
        overrides = {"model": model, "sub_model": sub_model, "base_url": base_url}
        try:
            if row and row.get("settings"):
                settings = settings_from_stored(row["settings"], overrides)
            else:  # started before the index existed, or elsewhere: use today's config
                settings = _config(overrides, config).settings
        except ConfigError as e:
            raise Failure(str(e), EXIT_USAGE) from None
        if row and row.get("settings") and row["settings"].get("model") is None and not model:
            raise Failure(
                f"run {run_id} was started with a model object from Python; give --model",
                EXIT_USAGE,
            )
        settings = _with_db(settings, db_file)
        _check_models(settings)
    except Failure as e:
        e.run_id = run_id
        _fail(e, json_out)
    except KeyboardInterrupt:
        _fail(Failure("interrupted before resuming; nothing changed", 130, run_id), json_out)

    row = row or {}
    _execute(
        run_id=run_id,
        question=None,
        context=None,
        settings=settings,
        db=db_file,
        explicit_db=db is not None,
        json_out=json_out,
        quiet=quiet,
        report_question=row.get("question") or "",
        sources=row.get("sources"),
    )


def _when(ts: float | None) -> str:
    if not ts:
        return "?"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _preview(text: str | None, n: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A run as JSON: no process bookkeeping."""
    out = {k: v for k, v in row.items() if k not in ("pid", "host")}
    for key in ("started", "updated"):
        if out.get(key):
            out[key] = dt.datetime.fromtimestamp(out[key], dt.UTC).isoformat()
    return out


_STATUS_STYLE = {
    "answered": "green",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
}


@app.command("runs")
def list_runs(
    db: DbOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many.")] = 50,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only runs with this status: running, answered, failed, interrupted."
        ),
    ] = None,
) -> None:
    """List runs in the database, newest first: id, status, start time, model and question.

    A run left `running` by a process that is gone shows as `interrupted`; resume it with
    `rlm-research resume <run-id>`.
    """
    try:
        if status is not None and status not in run_index.STATUSES:
            raise Failure(
                f"bad --status {status!r}: use one of {', '.join(run_index.STATUSES)}", EXIT_USAGE
            )
        db_file = _db_path(db, _config({}, config).settings)
    except Failure as e:
        _fail(e, json_out)
    runs = api.list_runs(db_file, limit=limit, status=status)
    if json_out:
        _print_json([_public(r) for r in runs])
        return
    if not runs:
        err.print(f"No runs in {escape(str(db_file))}.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("run id", "status", "started", "last step", "tokens", "question", "answer"):
        table.add_column(col, overflow="ellipsis", no_wrap=col in ("run id", "started"))
    for r in runs:
        style = _STATUS_STYLE.get(r["status"], "")
        table.add_row(
            r["run_id"],
            f"[{style}]{r['status']}[/]" if style else r["status"],
            _when(r.get("started")),
            _last_step(r.get("last_step")),
            f"{total_tokens(r.get('usage')):,}",
            escape(_preview(r.get("question"), 50)),
            escape(_preview(r.get("answer"), 40)),
        )
    Console(highlight=False).print(table)


def _last_step(last: dict[str, Any] | None) -> str:
    if not last:
        return ""
    nxt = ", ".join(last.get("next") or []) or "done"
    return f"{last.get('step')} -> {nxt}"


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show (see `rlm-research runs`).")],
    db: DbOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Show one run: its question, status, answer, usage, sources and report path."""
    try:
        db_file = _db_path(db, _config({}, config).settings)
        row = run_index.get_run(db_file, run_id)
        if row is None:
            raise Failure(f"no run {run_id!r} in {db_file}", run_id=run_id)
    except Failure as e:
        _fail(e, json_out)
    if json_out:
        _print_json(_public(row))
        return
    out = Console(highlight=False, soft_wrap=True)
    style = _STATUS_STYLE.get(row["status"], "")
    out.print(f"[bold]Run[/] {row['run_id']}  [{style}]{row['status']}[/]", end="")
    out.print(f"  ({escape(row['stop_reason'])})" if row.get("stop_reason") else "")
    out.print(f"[bold]Question:[/] {escape(row.get('question') or '?')}")
    out.print(f"[bold]Model:[/] {escape(row.get('model') or '?')}", end="")
    out.print(f"  sub-model: {escape(row['sub_model'])}" if row.get("sub_model") else "")
    out.print(f"[bold]Started:[/] {_when(row.get('started'))}  updated {_when(row.get('updated'))}")
    for s in row.get("sources") or []:
        out.print(f"[bold]Source:[/] {escape(str(s.get('name')))} ({s.get('chars', 0):,} chars)")
    usage = row.get("usage") or {}
    for label, m in (usage.get("models") or {}).items():
        out.print(
            f"[bold]Usage:[/] {escape(label)}: {m.get('calls', 0)} call(s), "
            f"{m.get('input_tokens', 0):,} in / {m.get('output_tokens', 0):,} out"
        )
    if row.get("error"):
        out.print(f"[bold red]Error:[/] {escape(row['error'])}")
    if row.get("report"):
        out.print(f"[bold]Report:[/] {escape(row['report'])}")
    if row["status"] in ("interrupted", "failed"):
        hint = _resume_hint(run_id, db_file, db is not None)
        out.print(f"Resume with: [bold]{escape(hint)}[/]")
    out.print("[bold]Answer:[/]")
    _echo(row.get("answer") or "(none yet)")


if __name__ == "__main__":
    app(prog_name="rlm-research")
