"""Runs on threads of their own: the blocking `graph.api.stream` generator consumed off the
event loop, its events forwarded as progress notifications, and cancellation (stop after the
step in flight, leave the run resumable). `ActiveRuns` keeps a run from being run twice."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from rlm_research.graph import run_index
from rlm_research.mcp_server.failures import ToolFailure
from rlm_research.mcp_server.summaries import describe_event

log = logging.getLogger("rlm_research.mcp")

POLL_SECONDS = 0.05  # how often the request task looks for events from the run's thread
CANCEL_GRACE = 2.0  # after a cancel, how long the request waits for the run to stop cleanly
STOPPING_WAIT = 30.0  # how long resume_research waits for a just-cancelled run to stop
SHUTDOWN_GRACE = 5.0  # on exit, how long runs still going get to stop after their current step


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Blocking work (files, SQLite, HTTP checks) off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


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


async def follow_run(worker: RunThread, ctx: Context) -> tuple[Any, BaseException | None]:
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


async def settle_after_cancel(worker: RunThread, db: Path) -> None:
    """Give the run a moment to stop on its own; otherwise say `interrupted` now (its
    thread will say it again once the step in flight ends)."""
    with anyio.move_on_after(CANCEL_GRACE):
        while not worker.done.is_set():
            await anyio.sleep(POLL_SECONDS)
    if worker.done.is_set():
        return
    try:
        row = await in_thread(run_index.get_run, db, worker.run_id)
        if row and row.get("status") == "running":
            await in_thread(run_index.record_end, db, worker.run_id, error=KeyboardInterrupt())
    except Exception as e:  # noqa: BLE001 - never let bookkeeping mask the cancel
        log.warning("run %s: could not mark it interrupted: %s", worker.run_id, e)
    log.info("run %s cancelled; it stops after its current step", worker.run_id)


class ActiveRuns:
    """The runs this server has going, by id. A run is claimed from its start until its
    thread is gone, so it is never run twice at once."""

    def __init__(self) -> None:
        self._active: dict[str, RunThread] = {}
        self._lock = threading.Lock()

    def claim(self, run_id: str, worker: RunThread) -> None:
        with self._lock:
            if run_id in self._active:
                raise ToolFailure(f"run {run_id} is already running in this server")
            self._active[run_id] = worker

    def release(self, run_id: str) -> None:
        with self._lock:
            self._active.pop(run_id, None)

    async def wait_until_stopped(self, run_id: str, ctx: Context) -> None:
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
