"""Running a run from the shell: stream it with live progress, stop cleanly on Ctrl-C (the run
stays resumable), then write the report and print the answer and a summary."""

from __future__ import annotations

import atexit
import os
import signal
import threading
import traceback
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape
from rlm_research.cli.options import model_label
from rlm_research.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    echo,
    err,
    print_json,
    resume_hint,
)
from rlm_research.graph import run_index
from rlm_research.graph.settings import Settings
from rlm_research.report.markdown import peak_rss_mb

GRACE_SECONDS = 3.0  # after Ctrl-C, how long parallel sub-calls may take to notice before we leave


def sandbox_description() -> str | None:
    """How this process ran REPL workers (bwrap or plain), for the report."""
    try:
        from rlm_research.tools.sandbox import sandbox_mode

        mode = sandbox_mode()
    except Exception:  # noqa: BLE001 - absent or misconfigured: the report just omits it
        return None
    return mode + ("" if mode == "bwrap" else " (reduced isolation: no bwrap)")


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
    from rlm_research.cli.progress import make_progress
    from rlm_research.graph.api import stream
    from rlm_research.report.markdown import write_report

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
            try:
                run_index.record_end(db, run_id, error=KeyboardInterrupt())
            except Exception:  # noqa: BLE001 - the message matters more
                pass
        err.print(f"[yellow]Interrupted.[/] Resume with: [bold]{escape(hint)}[/]")
        if json_out:
            print_json({"run_id": run_id, "status": "interrupted", "resume": hint})

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
        if debug_enabled():
            traceback.print_exc()
        message = run_index.one_line(e)
        err.print(f"[bold red]error:[/] run {run_id} failed: {escape(message)}")
        err.print(f"Resume with: [bold]{escape(hint)}[/]")
        if json_out:
            print_json({"run_id": run_id, "status": "failed", "error": message, "resume": hint})
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
        models={"model": model_label(settings.model), "sub_model": model_label(settings.sub_model)},
        error=error,
        sandbox=sandbox_description(),
    )
    run_index.set_report(db, run_id, md_path)
    tracker = progress.tracker
    if json_out:
        print_json(
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
            echo(result.answer)
        from rlm_research.graph.usage import total_calls, total_tokens

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
