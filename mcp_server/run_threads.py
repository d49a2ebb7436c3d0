"""Runs driven on the server's event loop by `graph.api.astream` (no thread of their own), their
events forwarded as progress notifications; `ActiveRuns` keeps a run from being run twice; and
`in_thread` for the blocking work around a run (files, SQLite, HTTP checks).

A client's cancel reaches the run as a cancellation of the request's task: LangGraph stops the
run where it is (finished steps, and finished tasks of the step in flight, are checkpointed with
durability "sync"), the lifecycle marks it `interrupted`, and `resume_research` continues it
without paying again for finished model calls; a model call in flight at the cancel is made
again, as after a crash."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from rlm_research.graph.run_lifecycle import mark_interrupted
from rlm_research.mcp_server.failures import ToolFailure
from rlm_research.mcp_server.summaries import describe_event

log = logging.getLogger("rlm_research.mcp")

STOPPING_WAIT = 5.0  # how long resume_research waits for a just-cancelled run to let go
POLL_SECONDS = 0.05
SHUTDOWN_GRACE = 5.0  # kept for callers of Research.shutdown(timeout)


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Blocking work (files, SQLite, HTTP checks) off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


async def follow_run(events: AsyncIterator[dict[str, Any]], ctx: Context) -> Any:
    """Drive the run through `events`, forwarding them as progress notifications; its result."""
    result: Any = None
    count = 0
    async for event in events:
        if event.get("kind") == "result":
            result = event["result"]
            continue
        message = describe_event(event)
        if message is None:
            continue
        count += 1
        try:  # a no-op when the client sent no progressToken
            await ctx.report_progress(count, None, message)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as e:  # noqa: BLE001 - progress is best effort, the run is not
            log.debug("progress notification failed: %s", e)
    return result


class ActiveRuns:
    """The runs this server has going, by id: claimed from start until the run's stream has
    unwound (after an end, an error or a cancel), so a run is never driven twice at once."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self._active: set[str] = set()

    def claim(self, run_id: str) -> None:
        if run_id in self._active:
            raise ToolFailure(f"run {run_id} is already running in this server")
        self._active.add(run_id)

    def release(self, run_id: str) -> None:
        self._active.discard(run_id)

    async def wait_until_stopped(self, run_id: str) -> None:
        """A run cancelled a moment ago may still be unwinding: wait a little for it."""
        with anyio.move_on_after(STOPPING_WAIT):
            while run_id in self._active:
                await anyio.sleep(POLL_SECONDS)

    def shutdown(self, timeout: float = SHUTDOWN_GRACE) -> None:
        """The server is leaving: runs still claimed read `interrupted` (their event loop is
        gone or going, so their checkpoints are all they keep; resume_research continues)."""
        for run_id in list(self._active):
            log.warning("run %s was still going at shutdown; it reads as interrupted", run_id)
            mark_interrupted(self.db, run_id)
