"""`rlm-research`: run a Recursive Language Model over your sources from the shell.

    rlm-research run "What is the serial number of the replacement cryocooler?" \\
        --source examples/observatory_log_2023.txt
    rlm-research run "What was the Q3 revenue?" --source report.pdf --source notes/ -s https://...
    rlm-research runs
    rlm-research show <run-id>
    rlm-research resume <run-id>

Exit codes: 0 answered, 1 no answer or failed (with a one-line reason), 2 bad usage, 130 interrupted
(the run stays resumable).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rlm_research.cli.options import (
    BaseUrlOpt,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    ModelOpt,
    QuietOpt,
    SubModelOpt,
    check_models,
    db_path,
    resolve_config,
)
from rlm_research.cli.output import (
    EXIT_FAILED,
    EXIT_USAGE,
    Failure,
    echo,
    err,
    fail,
    print_json,
    resume_hint,
)
from rlm_research.cli.run_display import (
    STATUS_STYLE,
    format_last_step,
    format_when,
    preview,
    public_run,
)
from rlm_research.cli.run_execution import execute_run
from rlm_research.cli.run_start import prepare_run
from rlm_research.cli.viewer import HtmlOpt, OpenOpt, write_viewer_page
from rlm_research.graph import api, run_index
from rlm_research.graph.run_errors import RunSetupError
from rlm_research.graph.run_lifecycle import resume_settings
from rlm_research.graph.stores import describe, locate
from rlm_research.graph.usage import input_text, total_tokens

import rlm_research

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
        "Exit codes: 0 answered, 1 no answer or failed, 2 bad usage, 130 interrupted (resumable)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def print_version(value: bool) -> None:
    if value:
        echo(f"rlm-research {rlm_research.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=print_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """The commands below share the settings described above."""


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
    guards: Annotated[
        str | None,
        typer.Option(
            "--guards",
            help="Rules that catch a small model's slips (docs/guards.md): default, minimal, "
            "off, or guard names separated by commas.",
        ),
    ] = None,
    web: Annotated[
        bool | None,
        typer.Option(
            "--web/--no-web",
            help="Web research: web_search() and fetch_url() in the REPL, made by this process "
            "(provider from the web_provider setting; key from TAVILY_API_KEY / BRAVE_API_KEY).",
        ),
    ] = None,
    no_source: Annotated[
        bool,
        typer.Option(
            "--no-source",
            help="Run without any source, on purpose: for questions that need only web research "
            "(with --web) or none. Without it, a run with no --source is refused.",
        ),
    ] = False,
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
            "guards": guards,
            "web": web,
        }
        loaded = resolve_config(flags, config)
        ready = prepare_run(
            question, source, no_source=no_source, run_id=run_id, db=db, loaded=loaded
        )
    except Failure as e:
        fail(e, json_out)
    except KeyboardInterrupt:
        fail(Failure("interrupted before the run started; nothing was saved", 130), json_out)

    skipped = ready.sources.skipped
    if skipped and not json_out and not quiet:
        err.print(f"[dim]skipped {len(skipped)} binary or empty file(s)[/]")
    events = api.stream(
        question,
        ready.sources.context(),
        settings=ready.settings,
        run_id=ready.run_id,
        db_path=ready.db_file,
        sources=ready.sources.sizes(),
    )
    execute_run(
        run_id=ready.run_id,
        events=events,
        settings=ready.settings,
        db=ready.db_file,
        explicit_db=db is not None,
        json_out=json_out,
        quiet=quiet,
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
        loaded = resolve_config({}, config)
        db_file = db_path(db, loaded.settings)
        overrides = {"model": model, "sub_model": sub_model, "base_url": base_url}
        try:
            settings, _, _ = resume_settings(
                run_id, db_path=db_file, overrides=overrides, fallback=loaded.settings
            )
            check_models(settings)
        except RunSetupError as e:
            raise Failure(str(e), EXIT_USAGE if e.usage else EXIT_FAILED) from None
    except Failure as e:
        e.run_id = run_id
        fail(e, json_out)
    except KeyboardInterrupt:
        fail(Failure("interrupted before resuming; nothing changed", 130, run_id), json_out)

    # The settings chosen above, given whole: the lifecycle records what differs from the run's.
    events = api.stream(None, settings=settings, run_id=run_id, db_path=db_file)
    execute_run(
        run_id=run_id,
        events=events,
        settings=settings,
        db=db_file,
        explicit_db=db is not None,
        json_out=json_out,
        quiet=quiet,
    )


@app.command("runs")
def list_runs(
    db: DbOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many.")] = 50,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only runs with this status: running, answered, no_answer, failed, interrupted.",
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
        db_file = db_path(db, resolve_config({}, config).settings)
    except Failure as e:
        fail(e, json_out)
    runs = api.list_runs(db_file, limit=limit, status=status)
    if json_out:
        print_json([public_run(r) for r in runs])
        return
    if not runs:
        err.print(f"No runs in {escape(describe(db_file))}.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("run id", "status", "started", "last step", "tokens", "question", "answer"):
        table.add_column(col, overflow="ellipsis", no_wrap=col in ("run id", "started"))
    for r in runs:
        style = STATUS_STYLE.get(r["status"], "")
        table.add_row(
            r["run_id"],
            f"[{style}]{r['status']}[/]" if style else r["status"],
            format_when(r.get("started")),
            format_last_step(r.get("last_step")),
            f"{total_tokens(r.get('usage')):,}",
            escape(preview(r.get("question"), 50)),
            escape(preview(r.get("answer"), 40)),
        )
    Console(highlight=False).print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show (see `rlm-research runs`).")],
    db: DbOpt = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    html: HtmlOpt = False,
    open_page: OpenOpt = False,
) -> None:
    """Show one run: its question, status, answer, usage, sources and report path.
    `--html` writes the run's viewer page from its checkpoints now, finished or not."""
    try:
        shown = resolve_config({}, config).settings
        db_file = db_path(db, shown)
        row = run_index.get_run(db_file, run_id)
        if row is None:
            raise Failure(f"no run {run_id!r} in {describe(db_file)}", run_id=run_id)
    except Failure as e:
        fail(e, json_out)
    data_dir = locate(shown, db_file)[0].data_dir  # PostgreSQL: this host's folder
    page = write_viewer_page(run_id, db_file, data_dir, open_page) if html or open_page else None
    if json_out:
        print_json(public_run(row) | ({"html": str(page)} if page else {}))
        return
    out = Console(highlight=False, soft_wrap=True)
    style = STATUS_STYLE.get(row["status"], "")
    out.print(f"[bold]Run[/] {row['run_id']}  [{style}]{row['status']}[/]", end="")
    out.print(f"  ({escape(row['stop_reason'])})" if row.get("stop_reason") else "")
    out.print(f"[bold]Question:[/] {escape(row.get('question') or '?')}")
    out.print(f"[bold]Model:[/] {escape(row.get('model') or '?')}", end="")
    out.print(f"  sub-model: {escape(row['sub_model'])}" if row.get("sub_model") else "")
    started, updated = format_when(row.get("started")), format_when(row.get("updated"))
    out.print(f"[bold]Started:[/] {started}  updated {updated}")
    for s in row.get("sources") or []:
        out.print(f"[bold]Source:[/] {escape(str(s.get('name')))} ({s.get('chars', 0):,} chars)")
    usage = row.get("usage") or {}
    for label, m in (usage.get("models") or {}).items():
        out.print(
            f"[bold]Usage:[/] {escape(label)}: {m.get('calls', 0)} call(s), "
            f"{input_text(m, ' in')} / {m.get('output_tokens', 0):,} out"
        )
    if row.get("error"):
        out.print(f"[bold red]Error:[/] {escape(row['error'])}")
    if row.get("report"):
        out.print(f"[bold]Report:[/] {escape(row['report'])}")
    if row["status"] in ("interrupted", "failed"):
        hint = resume_hint(run_id, db_file, db is not None)
        out.print(f"Resume with: [bold]{escape(hint)}[/]")
    out.print("[bold]Answer:[/]")
    echo(row.get("answer") or ("(no answer)" if row["status"] == "no_answer" else "(none yet)"))
    if page is not None:
        out.print(f"[bold]Viewer:[/] {escape(str(page))}")


from rlm_research.bench.cli import app as bench_app  # noqa: E402 - mounted after the commands above
from rlm_research.cli.doctor import doctor  # noqa: E402

app.command()(doctor)
app.add_typer(bench_app, name="bench")

if __name__ == "__main__":
    app(prog_name="rlm-research")
