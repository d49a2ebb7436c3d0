"""Running a run from the shell: stream it with live progress, stop cleanly on Ctrl-C (the run
stays resumable), then print the answer and a summary (the outcome, the run index and the report
are graph.run_lifecycle's, as for every front end)."""

from __future__ import annotations

import atexit
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape
from rlm_research.cli.options import model_label
from rlm_research.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    echo,
    err,
    fail,
    print_json,
    resume_hint,
)
from rlm_research.graph import run_index
from rlm_research.graph.run_errors import RunSetupError
from rlm_research.graph.run_lifecycle import mark_interrupted
from rlm_research.graph.run_result import RunResult
from rlm_research.graph.settings import Settings
from rlm_research.report.markdown import peak_rss_mb

GRACE_SECONDS = 3.0  # after Ctrl-C, how long parallel sub-calls may take to notice before we leave


def debug_enabled() -> bool:
    return os.environ.get("RLM_DEBUG", "").strip() not in ("", "0", "false")


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


def execute_run(
    *,
    run_id: str,
    events: Iterator[dict[str, Any]],
    settings: Settings,
    db: Path | str,
    explicit_db: bool,
    json_out: bool,
    quiet: bool,
) -> NoReturn:
    """Show the run's progress while `events` (graph.api.stream, not started yet) drives it,
    then present its result. Raises typer.Exit with the right code."""
    from rlm_research.cli.progress import make_progress

    hint = resume_hint(run_id, db, explicit_db)
    live = not json_out and not quiet and err.is_terminal
    model = model_label(settings.model) or ""
    progress = make_progress(run_id, model=model, live=live, quiet=quiet)
    result = None
    stopped = threading.Event()

    def on_stop() -> None:
        stopped.set()
        try:
            progress.__exit__(None, None, None)
        except Exception:  # noqa: BLE001
            pass
        if result is None:
            mark_interrupted(db, run_id)
        err.print(f"[yellow]Interrupted.[/] Resume with: [bold]{escape(hint)}[/]")
        viewer = f"rlm-research show {run_id}" + (f" --db {db}" if explicit_db else "") + " --html"
        err.print(f"Where it stopped: {escape(viewer)}")
        if json_out:
            print_json({"run_id": run_id, "status": "interrupted", "resume": hint})

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
    except RunSetupError as e:  # resume: no such run, bad overrides (checked before this too)
        fail(Failure(str(e), EXIT_USAGE if e.usage else EXIT_FAILED, run_id), json_out)
    except Exception as e:  # a model or graph error mid-run: the checkpoints stay resumable
        events.close()
        if debug_enabled():
            traceback.print_exc()
        message = run_index.one_line(e)
        err.print(f"[bold red]error:[/] run {run_id} failed: {escape(message)}")
        err.print(f"Resume with: [bold]{escape(hint)}[/]")
        page = failed_run_viewer(run_id, db, settings.data_dir)
        if page is not None:
            err.print(f"Viewer:      {escape(str(page))}")
        if json_out:
            print_json({"run_id": run_id, "status": "failed", "error": message, "resume": hint})
        raise typer.Exit(EXIT_FAILED) from None
    if stopped.is_set():  # the guard already spoke
        raise typer.Exit(EXIT_INTERRUPTED)
    assert result is not None
    present_result(result, progress.tracker.elapsed, json_out)


def present_result(result: RunResult, elapsed: float, json_out: bool) -> NoReturn:
    """The answer on stdout (only a real one), a summary and the report paths on stderr."""
    from rlm_research.graph.usage import total_calls, total_tokens

    if json_out:
        print_json(
            {
                "run_id": result.run_id,
                "status": result.status,
                "answer": result.answer,
                "stop_reason": result.stop_reason,
                "usage": result.usage,
                "report": result.report,
                "peak_rss_mb": round(peak_rss_mb()),
                "trajectory": result.trajectory_file,
                "html": viewer_path(result),
                "error": result.error,
            }
        )
    else:
        if result.answered:
            echo(result.answer)
        colour = "green" if result.answered else "red"
        usage = result.usage
        err.print(
            f"[{colour}]{result.status}[/] ({escape(result.stop_reason)}) · run {result.run_id} · "
            f"{total_calls(usage)} model call(s) · {total_tokens(usage):,} tokens · "
            f"{usage.get('sub_calls', 0)} sub-call(s) · {elapsed:.1f} s"
        )
        if result.error:
            err.print(f"[bold red]error:[/] {escape(result.error)}")
        err.print(f"Report:     {escape(str(result.report))}")
        err.print(f"Trajectory: {escape(str(result.trajectory_file))}")
        if result.report:
            err.print(f"Viewer:     {escape(str(viewer_path(result)))}")
    raise typer.Exit(EXIT_OK if result.answered else EXIT_FAILED)


def viewer_path(result: RunResult) -> str | None:
    """The HTML viewer written beside the markdown report (report.html_viewer)."""
    return str(Path(result.report).with_suffix(".html")) if result.report else None


def failed_run_viewer(run_id: str, db: Path | str, data_dir: str) -> Path | None:
    """The viewer of a run that just failed, showing where it stopped; None if it can't be."""
    try:
        from rlm_research.report.html_viewer import write_viewer

        return write_viewer(run_id, db_path=db, data_dir=data_dir)
    except Exception:  # noqa: BLE001 - the failure message matters more than the page
        return None
