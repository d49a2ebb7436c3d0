"""`rlm-research-mcp`: deep research over long documents as an MCP server (official `mcp` SDK).

    rlm-research-mcp                            # stdio: what an IDE or chat app starts
    rlm-research-mcp --http --port 8765         # streamable HTTP at http://127.0.0.1:8765/mcp
    rlm-research-mcp --config my.yaml --db ~/research/runs.sqlite

Tools:
- `deep_research(question, sources=[], options={})`: run a Recursive Language Model over the
  sources; returns the answer, the run id, a short usage summary and the stop reason. Progress
  notifications (turns, cells, sub-calls at every depth) go to the client while it works.
- `resume_research(run_id)`: continue a run that was cancelled, failed or crashed.
- `list_runs()`: runs in the database, newest first.
- `get_report(run_id)`: the run's markdown report (written first if it is missing).

Configured like the CLI (`graph.config`): `--config FILE` (or `$RLM_CONFIG`, `./rlm-research.yaml`,
the user config), then `RLM_*` environment variables; `options` of a call override both for that
run. API keys come from the environment (`RLM_API_KEY`, `OPENAI_API_KEY`, ...), never from a call.

Bad input (a missing source, a bad option, an unreachable model) is a tool error result
(`isError`) with one line; nothing is started. A run the client cancels stops after the step in
flight and stays resumable: every finished step is in the SQLite checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import logging
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, TypeAdapter, ValidationError

from graph import run_index
from graph.config import SECRET_KEYS, Config, ConfigError, Loaded, load_config, settings_from_stored
from graph.settings import Settings
from graph.usage import total_calls, total_tokens

log = logging.getLogger("rlm_research.mcp")

SERVER_NAME = "rlm-research"
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
POLL_SECONDS = 0.05  # how often the request task looks for events from the run's thread
CANCEL_GRACE = 2.0  # after a cancel, how long the request waits for the run to stop cleanly
STOPPING_WAIT = 30.0  # how long resume_research waits for a just-cancelled run to stop
SHUTDOWN_GRACE = 5.0  # on exit, how long runs still going get to stop after their current step
PROGRESS_TEXT = 200  # characters of an observation shown in a progress message

# Keys a call may not change: where runs live is the server's (--db / --config), so that
# list_runs, get_report and resume_research find every run it started.
SERVER_ONLY = {"data_dir"}
# What resume_research may change (the CLI's `resume` allows the same): a run keeps its budgets.
RESUME_KEYS = ("model", "sub_model", "base_url")
# Settings with no config key (none today: graph.config declares every Settings field), checked
# here from Settings' own types, so a new setting is usable as an option either way.
EXTRA_KEYS = tuple(k for k in Settings.field_names() if k not in Config.model_fields)
OPTION_KEYS = tuple(k for k in [*Config.model_fields, *EXTRA_KEYS] if k not in SERVER_ONLY)


class ToolFailure(Exception):
    """Bad input or a failed run: one line for the client, returned as an `isError` result."""


# -- configuration ---------------------------------------------------------------------------------
def _flag_to_option(message: str, keys: list[str]) -> str:
    """graph.config names a flag `--max-depth`; a call names it `option 'max_depth'`."""
    for key in keys:
        flag = f"--{key.replace('_', '-')}"
        if message.startswith(flag + ":"):
            return f"option {key!r}" + message[len(flag) :]
    return message


def split_options(
    options: dict[str, Any] | None, allowed: tuple[str, ...] = OPTION_KEYS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a call's `options`: (config keys for graph.config, validated extra Settings keys)."""
    if options is None:
        return {}, {}
    if not isinstance(options, dict):
        raise ToolFailure(f"options must be an object of settings, got {type(options).__name__}")
    flags: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for raw, value in options.items():
        key = str(raw).strip().replace("-", "_")
        if key.lower() in SECRET_KEYS or key.lower().endswith("_api_key"):
            raise ToolFailure(
                f"option {raw!r}: API keys are not options; set RLM_API_KEY or the provider's "
                "variable (OPENAI_API_KEY, ...) in the server's environment"
            )
        if key in SERVER_ONLY:
            raise ToolFailure(
                f"option {raw!r}: where runs are stored is set when the server starts "
                "(--db or --config), not per call"
            )
        if key not in allowed:
            if key in OPTION_KEYS:  # a setting, but not one this call may change
                raise ToolFailure(f"option {raw!r}: only {', '.join(allowed)} may change here")
            raise ToolFailure(f"option {raw!r}: unknown option (known: {', '.join(allowed)})")
        if value is None:
            continue  # unset: the config file / environment decide
        if key in EXTRA_KEYS:
            extra[key] = _check_extra(key, value)
        else:
            flags[key] = value
    return flags, extra


@functools.cache
def _settings_types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _check_extra(key: str, value: Any) -> Any:
    try:
        checked = TypeAdapter(_settings_types()[key]).validate_python(value)
    except ValidationError as e:
        msg = e.errors()[0].get("msg", "invalid value")
        raise ToolFailure(f"option {key!r}: {msg} (got {value!r})") from None
    problem = None
    if key == "web_provider":
        from tools.web_search import PROVIDERS

        checked = checked.strip().lower()
        if checked not in PROVIDERS:
            problem = f"use one of {', '.join(PROVIDERS)}"
    elif key.endswith("_url") and checked and not checked.startswith(("http://", "https://")):
        problem = "must start with http:// or https://"
    elif isinstance(checked, float) and checked <= 0:
        problem = "must be positive"
    elif isinstance(checked, int) and not isinstance(checked, bool) and checked < 0:
        problem = "must be >= 0"
    if problem:
        raise ToolFailure(f"option {key!r}: {problem} (got {value!r})")
    return checked


# -- the run's thread ------------------------------------------------------------------------------
class RunThread:
    """Consumes the blocking `graph.api.stream` generator in a thread of its own and hands its
    events to the request's task through a queue (the task polls it, so the thread never waits
    on the event loop and the loop never waits on the thread).

    A thread cannot be killed, and a model call in flight cannot be interrupted. Cancelling a
    call sets `stop`; the thread sees it at the next progress event (they come while steps run:
    a turn or cell starting, a sub-call starting or ending), stops reading and closes the
    generator. GeneratorExit at its `yield` makes LangGraph wait for the tasks of the current
    step that are already running and stop before the next step; `graph.api` then marks the run
    `interrupted` in the run index and closes the checkpointer. Finished steps (and finished
    tasks of the current one) are checkpointed with durability="sync", so `resume_research`
    continues from there without paying again for finished model calls; an unfinished step is
    redone. Until the thread is gone the run stays claimed, so it cannot be resumed twice.
    """

    def __init__(
        self,
        run_id: str,
        start: Callable[[], Iterator[dict[str, Any]]],
        on_exit: Callable[[], None],
    ) -> None:
        self.run_id = run_id
        self.stop = threading.Event()
        self.done = threading.Event()
        self._start = start
        self._on_exit = on_exit
        self._items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # Daemon: if the server exits while a step is still in flight (see shutdown), the
        # process ends as a crash would; the checkpoints are durable and the run reads
        # `interrupted` once this process is gone.
        self.thread = threading.Thread(target=self._main, name=f"rlm-run-{run_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _main(self) -> None:
        events: Iterator[dict[str, Any]] | None = None
        try:
            events = self._start()
            for event in events:
                if self.stop.is_set():
                    break  # the generator waits at its `yield`: close() below ends it there
                self._items.put(("event", event))
        except BaseException as exc:  # noqa: BLE001 - handed to the request, which reports it
            self._items.put(("error", exc))
        finally:
            try:
                if events is not None:
                    events.close()
            except BaseException as exc:  # noqa: BLE001
                log.warning("run %s: closing the stream failed: %s", self.run_id, exc)
            self._on_exit()  # before `done`: whoever waits on `done` may claim the run again
            self.done.set()
            self._items.put(("end", None))

    def drain(self) -> list[tuple[str, Any]]:
        items = []
        while True:
            try:
                items.append(self._items.get_nowait())
            except queue.Empty:
                return items


def describe_event(event: dict[str, Any]) -> str | None:
    """A progress line for one `graph.api.stream` event (None: not worth a notification)."""
    kind = event.get("kind")
    depth = int(event.get("depth", 0) or 0)
    where = "root" if depth == 0 else f"depth {depth}"
    if kind == "turn":
        return f"{where} · turn {event.get('turn')}: asking the model"
    if kind == "direct":
        return f"{where}: answering a sub-call directly"
    if kind == "cell":
        return f"{where}: running cell {event.get('cell')}"
    if kind == "sub_calls":
        return f"{where}: waiting on {event.get('count')} sub-call(s)"
    if kind == "child_start":
        return f"sub-call started (depth {depth})"
    if kind == "child_done":
        return f"sub-call done (depth {depth})"
    if kind == "child_failed":
        return f"sub-call failed (depth {depth}): {_preview(str(event.get('error', '')), 120)}"
    if kind == "observation":
        text = _preview(str(event.get("text", "")), PROGRESS_TEXT)
        return f"{where} · turn {event.get('turn')} output: {text}"
    if kind == "finished":
        return f"{where}: finished ({event.get('stop_reason')})"
    if kind and kind != "result":
        return f"{where}: {kind}"
    return None


# -- summaries -------------------------------------------------------------------------------------
def _preview(text: str | None, n: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def usage_summary(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    models = {
        label: {k: int(m.get(k, 0)) for k in ("calls", "input_tokens", "output_tokens")}
        for label, m in (usage.get("models") or {}).items()
    }
    return {
        "models": models,
        "model_calls": total_calls(usage),
        "total_tokens": total_tokens(usage),
        "sub_calls": int(usage.get("sub_calls", 0) or 0),
        "web_calls": int(usage.get("web_calls", 0) or 0),
    }


def usage_line(summary: dict[str, Any]) -> str:
    parts = [
        f"{label}: {m['calls']} call(s), {m['input_tokens']:,} in / {m['output_tokens']:,} out"
        for label, m in summary["models"].items()
    ] or ["no model calls"]
    line = "; ".join(parts) + f"; {summary['sub_calls']} sub-call(s)"
    if summary["web_calls"]:
        line += f"; {summary['web_calls']} web call(s)"
    return line


def _label(spec: Any) -> str | None:
    if spec is None:
        return None
    try:
        from tools.chat_models import model_label

        return model_label(spec)
    except Exception:  # noqa: BLE001 - only for display
        return str(spec)


def _when(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds") if ts else None


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


# -- the service -----------------------------------------------------------------------------------
class Research:
    """What the tools do, over one run database (`db`, with blobs/ and reports/ beside it)."""

    def __init__(self, db: Path, config_file: Path | None = None) -> None:
        self.db = db
        self.config_file = config_file
        self._active: dict[str, RunThread] = {}
        self._lock = threading.Lock()

    # -- settings ----------------------------------------------------------------------------
    def load(self, flags: dict[str, Any] | None = None) -> Loaded:
        try:
            return load_config(flags or {}, config_file=self.config_file)
        except ConfigError as e:
            raise ToolFailure(_flag_to_option(str(e), list(flags or {}))) from None

    def _here(self, settings: Settings, **extra: Any) -> Settings:
        """The database, blobs/ and reports/ share one folder, as graph.api and the CLI do."""
        return dataclasses.replace(settings, data_dir=str(self.db.parent), **extra)

    def run_settings(self, options: dict[str, Any] | None) -> tuple[Settings, Loaded]:
        """A new run's settings: config file < RLM_* environment < the call's `options`."""
        flags, extra = split_options(options)
        loaded = self.load(flags)
        return self._here(loaded.settings, **extra), loaded

    @staticmethod
    def check_models(settings: Settings) -> None:
        from tools.chat_models import ModelConfigError, check_model_reachable

        specs = [settings.model]
        if settings.sub_model is not None and settings.sub_model != settings.model:
            specs.append(settings.sub_model)
        for spec in specs:
            try:
                check_model_reachable(spec, base_url=settings.base_url)
            except ModelConfigError as e:
                raise ToolFailure(f"model {_label(spec)}: {_preview(str(e), 400)}") from None
            except Exception as e:  # noqa: BLE001 - e.g. a local weights loader's own error
                raise ToolFailure(f"model {_label(spec)}: {run_index.one_line(e)}") from None

    @staticmethod
    def check_run_id(run_id: str) -> str:
        run_id = (run_id or "").strip()
        if not RUN_ID_RE.fullmatch(run_id):
            raise ToolFailure(f"bad run id {run_id!r}: 1-64 letters, digits, '.', '_' or '-'")
        return run_id

    # -- runs in flight ----------------------------------------------------------------------
    def _claim(self, run_id: str, worker: RunThread) -> None:
        with self._lock:
            if run_id in self._active:
                raise ToolFailure(f"run {run_id} is already running in this server")
            self._active[run_id] = worker

    def _release(self, run_id: str) -> None:
        with self._lock:
            self._active.pop(run_id, None)

    async def _wait_until_stopped(self, run_id: str, ctx: Context) -> None:
        """A run cancelled a moment ago may still be finishing its step: wait for it (up to
        STOPPING_WAIT). A run that is going and was not cancelled is refused."""
        with self._lock:
            worker = self._active.get(run_id)
        if worker is None:
            return
        if not worker.stop.is_set():
            raise ToolFailure(f"run {run_id} is already running in this server")
        await ctx.report_progress(0, None, f"waiting for the cancelled run {run_id} to stop")
        with anyio.move_on_after(STOPPING_WAIT):
            while not worker.done.is_set():
                await anyio.sleep(POLL_SECONDS)
        if not worker.done.is_set():
            raise ToolFailure(
                f"run {run_id} was cancelled but is still finishing a step; try again later"
            )

    def _check_not_running_elsewhere(self, row: dict[str, Any] | None, run_id: str) -> None:
        """Refuse a run that another live process is running (get_run reads a row left
        `running` by a dead process as interrupted; ours, no longer in `_active`, is stale)."""
        if row and row.get("status") == "running" and row.get("pid") != os.getpid():
            raise ToolFailure(
                f"run {run_id} is running in another process (pid {row.get('pid')} on "
                f"{row.get('host')}); wait for it or stop it first"
            )

    def shutdown(self, timeout: float = SHUTDOWN_GRACE) -> None:
        """Ask every run still going to stop after its current step; wait up to `timeout`."""
        with self._lock:
            workers = list(self._active.values())
        for w in workers:
            w.stop.set()
        deadline = time.monotonic() + timeout
        for w in workers:
            w.thread.join(max(0.0, deadline - time.monotonic()))
        for w in workers:
            if w.thread.is_alive():
                log.warning("run %s is still in a step; it will read as interrupted", w.run_id)

    # -- tools -------------------------------------------------------------------------------
    async def deep_research(
        self, ctx: Context, question: str, sources: list[str], options: dict[str, Any]
    ) -> CallToolResult:
        question = (question or "").strip()
        if not question:
            raise ToolFailure("the question is empty")
        settings, loaded = await _in_thread(self.run_settings, options)
        for spec in sources:
            if spec.strip() == "-":
                raise ToolFailure("source '-' (stdin) is not available over MCP; give a path")

        from tools.sources import SourceError, load_sources

        try:
            loaded_sources = await _in_thread(
                load_sources,
                list(sources),
                max_bytes=loaded.max_source_bytes,
                url_timeout=loaded.url_timeout,
            )
        except SourceError as e:
            raise ToolFailure(str(e)) from None
        if loaded_sources.web:  # a `web://` source turns web research on for this run
            settings = dataclasses.replace(settings, web=True)
        await _in_thread(self.check_models, settings)

        run_id = uuid.uuid4().hex[:12]
        sizes = loaded_sources.sizes()
        await _in_thread(
            run_index.record_start,
            self.db,
            run_id,
            question=question,
            sources=sizes,
            settings=settings,
        )
        return await self._execute(
            ctx,
            run_id=run_id,
            question=question,
            context=loaded_sources.context(),
            settings=settings,
            report_question=question,
            sources=sizes,
        )

    async def resume_research(
        self, ctx: Context, run_id: str, options: dict[str, Any] | None
    ) -> CallToolResult:
        run_id = self.check_run_id(run_id)
        flags, _ = split_options(options, allowed=RESUME_KEYS)
        if not await _in_thread(run_index.has_checkpoints, self.db, run_id):
            raise ToolFailure(f"no run {run_id!r} to resume in {self.db}")
        await self._wait_until_stopped(run_id, ctx)
        row = await _in_thread(run_index.get_run, self.db, run_id)
        self._check_not_running_elsewhere(row, run_id)
        stored = (row or {}).get("settings")
        if stored:
            if stored.get("model") is None and not flags.get("model"):
                raise ToolFailure(
                    f"run {run_id} was started with a model object from Python; "
                    "give options={'model': ...}"
                )
            try:
                settings = settings_from_stored(stored, flags)
            except ConfigError as e:
                raise ToolFailure(_flag_to_option(str(e), list(flags))) from None
        else:  # started before the run index existed, or elsewhere: today's config
            settings = (await _in_thread(self.load, flags)).settings
        settings = self._here(settings)
        await _in_thread(self.check_models, settings)
        row = row or {}
        return await self._execute(
            ctx,
            run_id=run_id,
            question=None,
            context=None,
            settings=settings,
            report_question=row.get("question") or "",
            sources=row.get("sources"),
        )

    def list_runs(self, limit: int, status: str | None) -> CallToolResult:
        if status is not None and status not in run_index.STATUSES:
            raise ToolFailure(f"bad status {status!r}: use one of {', '.join(run_index.STATUSES)}")
        rows = run_index.list_runs(self.db, limit=max(1, limit), status=status)
        runs = [
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "question": r.get("question"),
                "answer": r.get("answer"),
                "stop_reason": r.get("stop_reason"),
                "model": r.get("model"),
                "started": _when(r.get("started")),
                "updated": _when(r.get("updated")),
                "usage": usage_summary(r.get("usage")) if r.get("usage") else None,
                "error": r.get("error"),
                "report": r.get("report"),
            }
            for r in rows
        ]
        if runs:
            lines = [
                f"{r['run_id']}  {r['status']:<11}  {r['started'] or '?'}  "
                f"{_preview(r['question'], 60)!r} -> {_preview(r['answer'], 40) or '-'}"
                for r in runs
            ]
            text = f"{len(runs)} run(s) in {self.db}, newest first:\n" + "\n".join(lines)
        else:
            text = f"No runs in {self.db}."
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content={"db": str(self.db), "runs": runs},
        )

    def get_report(self, run_id: str) -> CallToolResult:
        run_id = self.check_run_id(run_id)
        row = run_index.get_run(self.db, run_id)
        if row is None:
            raise ToolFailure(f"no run {run_id!r} in {self.db}")
        path = Path(row["report"]) if row.get("report") else None
        if path is None or not path.is_file():
            path = self._write_report_from_store(run_id, row)
        text = path.read_text(encoding="utf-8")
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content={"run_id": run_id, "status": row["status"], "path": str(path)},
        )

    # -- running -----------------------------------------------------------------------------
    async def _execute(
        self,
        ctx: Context,
        *,
        run_id: str,
        question: str | None,
        context: Any,
        settings: Settings,
        report_question: str,
        sources: list[dict[str, Any]] | None,
    ) -> CallToolResult:
        from graph.api import stream

        worker = RunThread(
            run_id,
            lambda: stream(question, context, settings=settings, run_id=run_id, db_path=self.db),
            on_exit=lambda: self._release(run_id),
        )
        self._claim(run_id, worker)
        worker.start()
        try:
            result, error = await self._follow(worker, ctx)
        except BaseException:
            # The client cancelled (or went away), or forwarding broke: stop after the current
            # step (see RunThread) and leave the run resumable.
            worker.stop.set()
            with anyio.CancelScope(shield=True):
                await self._after_cancel(worker)
            raise
        if error is not None:
            log.info("run %s failed: %s", run_id, run_index.one_line(error))
            raise ToolFailure(
                f"run {run_id} failed: {run_index.one_line(error)}. Finished steps are saved: "
                f"resume_research(run_id={run_id!r}) continues it"
            )
        if result is None:  # stopped without a result: only a shutdown does this
            raise ToolFailure(f"run {run_id} was stopped; resume_research continues it")

        row, md_path = await _in_thread(
            self._write_report, result, report_question, sources, settings
        )
        status = row.get("status") or "answered"
        summary = usage_summary(result.usage)
        structured = {
            "run_id": run_id,
            "status": status,
            "answer": result.answer,
            "stop_reason": result.stop_reason,
            "usage": summary,
            "report": str(md_path),
        }
        footer = (
            f"run_id: {run_id} · status: {status} · stop reason: {result.stop_reason}\n"
            f"usage: {usage_line(summary)}\n"
            f"report: get_report(run_id={run_id!r}) ({md_path})"
        )
        if status != "answered":
            why = row.get("error") or f"the run ended without an answer ({result.stop_reason})"
            text = f"No answer: {why}.\n\n{footer}"
            return CallToolResult(
                content=[TextContent(type="text", text=text)],
                structured_content=structured,
                is_error=True,
            )
        text = f"{result.answer.strip()}\n\n---\n{footer}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=structured
        )

    async def _follow(self, worker: RunThread, ctx: Context) -> tuple[Any, BaseException | None]:
        """Forward the run's events as progress notifications until it ends: (result, error)."""
        result: Any = None
        error: BaseException | None = None
        count = 0
        while True:
            items = worker.drain()
            if not items:
                await anyio.sleep(POLL_SECONDS)
                continue
            for kind, payload in items:
                if kind == "end":
                    return result, error
                if kind == "error":
                    error = payload
                    continue
                if payload.get("kind") == "result":
                    result = payload["result"]
                    continue
                message = describe_event(payload)
                if message is None:
                    continue
                count += 1
                try:  # a no-op when the client sent no progressToken
                    await ctx.report_progress(count, None, message)
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception as e:  # noqa: BLE001 - progress is best effort, the run is not
                    log.debug("progress notification failed: %s", e)

    async def _after_cancel(self, worker: RunThread) -> None:
        """Give the run a moment to stop on its own; otherwise say `interrupted` now (its
        thread will say it again once the step in flight ends)."""
        with anyio.move_on_after(CANCEL_GRACE):
            while not worker.done.is_set():
                await anyio.sleep(POLL_SECONDS)
        if worker.done.is_set():
            return
        try:
            row = await _in_thread(run_index.get_run, self.db, worker.run_id)
            if row and row.get("status") == "running":
                await _in_thread(
                    run_index.record_end, self.db, worker.run_id, error=KeyboardInterrupt()
                )
        except Exception as e:  # noqa: BLE001 - never let bookkeeping mask the cancel
            log.warning("run %s: could not mark it interrupted: %s", worker.run_id, e)
        log.info("run %s cancelled; it stops after its current step", worker.run_id)

    def _write_report(
        self,
        result: Any,
        question: str,
        sources: list[dict[str, Any]] | None,
        settings: Settings,
    ) -> tuple[dict[str, Any], Path]:
        from cli.report import write_report

        row = run_index.get_run(self.db, result.run_id) or {}
        status = row.get("status") or ("answered" if result.answer.strip() else "failed")
        md_path, _ = write_report(
            result,
            data_dir=self.db.parent,
            question=question or row.get("question") or "",
            status=status,
            sources=sources if sources is not None else row.get("sources"),
            models={"model": _label(settings.model), "sub_model": _label(settings.sub_model)},
            error=row.get("error"),
        )
        run_index.set_report(self.db, result.run_id, md_path)
        return {**row, "status": status}, md_path

    def _write_report_from_store(self, run_id: str, row: dict[str, Any]) -> Path:
        """A report for a run that has none yet (cancelled, crashed, or started elsewhere),
        from its last checkpoint, else from its row."""
        from cli.report import write_report
        from graph.api import RunResult

        values: dict[str, Any] = {}
        if run_index.has_checkpoints(self.db, run_id):
            from graph.builder import builder
            from graph.checkpoints import open_saver

            saver = open_saver(self.db)
            try:
                config = {"configurable": {"thread_id": run_id}}
                values = builder.compile(checkpointer=saver).get_state(config).values or {}
            finally:
                saver.conn.close()
        result = RunResult(
            run_id=run_id,
            answer=values.get("answer") or row.get("answer") or "",
            stop_reason=values.get("stop_reason") or row.get("stop_reason") or "unfinished",
            usage=values.get("usage") or row.get("usage") or {},
            call_tree=values.get("call_tree") or {},
        )
        md_path, _ = write_report(
            result,
            data_dir=self.db.parent,
            question=row.get("question") or "",
            status=row["status"],
            sources=row.get("sources"),
            models={"model": row.get("model"), "sub_model": row.get("sub_model")},
            error=row.get("error"),
        )
        if row["status"] != "running":  # a running run gets its final report when it ends
            run_index.set_report(self.db, run_id, md_path)
        return md_path


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Blocking work (files, SQLite, HTTP checks) off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


# -- the MCP server --------------------------------------------------------------------------------
INSTRUCTIONS = """\
Deep research over long documents with a Recursive Language Model: the sources live in a Python \
REPL as `context`; the model writes code to read them and hands pieces to sub-calls. Runs are \
checkpointed: a cancelled or failed run continues with resume_research. Call list_runs to find \
runs and get_report for a run's full markdown report."""

OPTIONS_HELP = (
    "Settings for this run, overriding the server's config file and RLM_* environment: "
    + ", ".join(OPTION_KEYS)
    + ". e.g. {'model': 'openai:gpt-4o-mini', 'max_depth': 2, 'web': true}."
)


def build_server(research: Research, log_level: str = "WARNING") -> MCPServer:
    """The MCP server with its four tools, bound to `research`."""
    mcp = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level=log_level)

    def failures(fn: Callable[..., Any]) -> Callable[..., Any]:
        """ToolFailure -> an isError result with its one line (no SDK prefix, no traceback)."""

        @functools.wraps(fn)  # keeps the signature and annotations the SDK reads
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except ToolFailure as e:
                log.info("%s: %s", fn.__name__, e)
                return _error(str(e))

        return wrapped

    @mcp.tool(annotations=ToolAnnotations(open_world_hint=True))
    @failures
    async def deep_research(
        question: Annotated[str, Field(description="The question to answer.")],
        ctx: Context,
        sources: Annotated[
            list[str] | None,
            Field(
                description="Files, folders (read recursively), PDFs or http(s):// URLs to "
                "research, as paths on the server's machine (absolute paths are safest). "
                "'web://' turns on web research. Empty: the question alone."
            ),
        ] = None,
        options: Annotated[dict[str, Any] | None, Field(description=OPTIONS_HELP)] = None,
    ) -> CallToolResult:
        """Answer a question over long sources with a Recursive Language Model.

        Returns the answer, the run id, a usage summary (model calls and tokens per model,
        sub-calls) and the stop reason. Sends progress notifications while it works. If the
        call is cancelled or fails, the run stays saved: resume_research(run_id) continues it.
        """
        return await research.deep_research(ctx, question, sources or [], options or {})

    @mcp.tool(annotations=ToolAnnotations(open_world_hint=True))
    @failures
    async def resume_research(
        run_id: Annotated[str, Field(description="The run to continue (see list_runs).")],
        ctx: Context,
        options: Annotated[
            dict[str, Any] | None,
            Field(
                description="Only model, sub_model and base_url may change on resume (e.g. "
                "when a server moved); the run keeps its other settings."
            ),
        ] = None,
    ) -> CallToolResult:
        """Continue a cancelled, failed or crashed run from its last checkpoint.

        Model calls that already finished, at any depth, are not made again. A finished run is
        not run again: its answer is returned.
        """
        return await research.resume_research(ctx, run_id, options)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    @failures
    async def list_runs(
        limit: Annotated[int, Field(description="At most this many runs.", ge=1)] = 50,
        status: Annotated[
            str | None,
            Field(description="Only runs with this status: " + ", ".join(run_index.STATUSES)),
        ] = None,
    ) -> CallToolResult:
        """List research runs, newest first: id, status, question, answer, usage, start time."""
        return await _in_thread(research.list_runs, limit, status)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    @failures
    async def get_report(
        run_id: Annotated[str, Field(description="The run (see list_runs).")],
    ) -> CallToolResult:
        """The markdown report of a run: question, answer, status, sources, usage per model,
        the call tree and each root turn's code and output. Written first if missing."""
        return await _in_thread(research.get_report, run_id)

    return mcp


# -- command line ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rlm-research-mcp",
        description=(
            "MCP server for rlm-research: deep_research, resume_research, list_runs and "
            "get_report tools over a Recursive Language Model with durable runs. Serves stdio "
            "by default. Configured like the rlm-research CLI: --config FILE (else $RLM_CONFIG, "
            "./rlm-research.yaml, ~/.config/rlm-research/config.yaml), then RLM_* environment "
            "variables (RLM_MODEL, RLM_BASE_URL, RLM_MAX_DEPTH, RLM_DATA_DIR, ...). API keys "
            "come from RLM_API_KEY or the provider's variable (OPENAI_API_KEY, ...)."
        ),
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="Serve streamable HTTP (at http://HOST:PORT/mcp) instead of stdio.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765).")
    parser.add_argument("--config", type=Path, help="A YAML config file (as the CLI's --config).")
    parser.add_argument(
        "--db",
        type=Path,
        help="The run database (SQLite). Default: <data_dir>/runs.sqlite; its folder also holds "
        "blobs/ and reports/.",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Server log level, on stderr (default WARNING).",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.config is not None:  # read again on every call: pin it to where we started
        args.config = args.config.expanduser().absolute()
    try:
        loaded = load_config({}, config_file=args.config)
    except ConfigError as e:
        print(f"rlm-research-mcp: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    db = (args.db or Path(loaded.settings.data_dir) / "runs.sqlite").expanduser().resolve()
    research = Research(db, config_file=args.config)
    server = build_server(research, args.log_level)
    log.setLevel(args.log_level)
    try:
        if args.http:
            server.run("streamable-http", host=args.host, port=args.port)
        else:
            server.run("stdio")
    except KeyboardInterrupt:
        pass
    finally:
        research.shutdown()


if __name__ == "__main__":
    main()
