"""The public Python API: `run`, `stream`, `resume` and their async twins `arun`, `astream`,
`aresume`. Each drives the graph with a checkpointer in the run's data folder (the run id is the
checkpoint thread id, every step written before the next starts: durability "sync"); the steps
around it (settings for a resume, the outcome, the run index, the report) are
`graph.run_lifecycle`'s, the same for every front end.

A resume continues with the settings the run started with. To change some on purpose, pass
`overrides={"base_url": ..., "max_turns": 30}` (or a whole `settings=`); what changed is recorded
in the run index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

from rlm_research.graph import run_index
from rlm_research.graph.builder import builder
from rlm_research.graph.checkpoints import async_checkpointer, checkpointer
from rlm_research.graph.run_lifecycle import (
    RECURSION_LIMIT,
    ActiveRun,
    finish_run,
    graph_config,
    locate,
    result_of,
    start_resume,
    start_run,
    stop_run,
    trajectory_of,
)
from rlm_research.graph.run_result import RunResult
from rlm_research.graph.settings import Settings
from rlm_research.graph.stores import Db, running

__all__ = [
    "RECURSION_LIMIT",
    "RunResult",
    "arun",
    "aresume",
    "astream",
    "list_runs",
    "load_result",
    "resume",
    "run",
    "stream",
    "trajectory_of",
]


def run(
    question: str,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> RunResult:
    """Answer `question` over `context` (text, or {name: text}); returns when the run ends.
    `result.status` is "answered" only when the model gave an answer (see graph.outcome)."""
    events = stream(
        question, context, settings=settings, run_id=run_id, db_path=db_path, sources=sources
    )
    return _last_result(events)


def resume(
    run_id: str,
    *,
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    db_path: Db | None = None,
) -> RunResult:
    """Continue a run from its last checkpoint with its stored settings; finished model calls
    are not made again. A finished run returns its result without running anything."""
    return _last_result(
        stream(None, settings=settings, run_id=run_id, db_path=db_path, overrides=overrides)
    )


def stream(
    question: str | None,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
    sources: list[dict[str, Any]] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Progress events (`kind`: turn, cell, sub_calls, child_start, observation, finished, ...)
    from every depth, then one `{"kind": "result", "result": RunResult}`.
    `question=None` resumes the run `run_id` (see `resume`)."""
    with ExitStack() as held:
        active = _start_held(held, question, context, settings, run_id, db_path, sources, overrides)
        config = graph_config(active)
        try:
            with checkpointer(active.db) as saver:
                app = builder.compile(checkpointer=saver)
                for _ns, chunk in app.stream(
                    active.inputs,
                    config,
                    context=active.settings,
                    stream_mode="custom",
                    subgraphs=True,
                    durability="sync",
                ):
                    yield chunk
                values = app.get_state(config).values
        except BaseException as exc:  # Ctrl-C / a closed stream -> interrupted, else failed
            stop_run(active, exc)
            raise
        yield {"kind": "result", "result": finish_run(active, values)}


async def arun(
    question: str,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> RunResult:
    """`run` for async callers: the same run, outcome, records and report."""
    events = astream(
        question, context, settings=settings, run_id=run_id, db_path=db_path, sources=sources
    )
    return await _alast_result(events)


async def aresume(
    run_id: str,
    *,
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    db_path: Db | None = None,
) -> RunResult:
    """`resume` for async callers."""
    return await _alast_result(
        astream(None, settings=settings, run_id=run_id, db_path=db_path, overrides=overrides)
    )


async def astream(
    question: str | None,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
    sources: list[dict[str, Any]] | None = None,
    overrides: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """`stream` for async callers: the same events, then the result. Cancelling the task that
    reads it stops the run after the tasks in flight (their finished work is checkpointed);
    the run reads `interrupted` and `aresume` continues it."""
    with ExitStack() as held:
        active = await asyncio.to_thread(
            _start_held, held, question, context, settings, run_id, db_path, sources, overrides
        )
        config = graph_config(active)
        try:
            async with async_checkpointer(active.db) as saver:
                app = builder.compile(checkpointer=saver)
                async for _ns, chunk in app.astream(
                    active.inputs,
                    config,
                    context=active.settings,
                    stream_mode="custom",
                    subgraphs=True,
                    durability="sync",
                ):
                    yield chunk
                values = (await app.aget_state(config)).values
        except BaseException as exc:  # a cancel / a closed stream -> interrupted, else failed
            # Blocking but short: an await here would be cancelled again.
            abandoned = isinstance(exc, asyncio.CancelledError | GeneratorExit)
            stop_run(active, exc, abandoned=abandoned)
            raise
        result = await asyncio.to_thread(finish_run, active, values)
        yield {"kind": "result", "result": result}


def _start_held(
    held: ExitStack,
    question: str | None,
    context: Any,
    settings: Settings | None,
    run_id: str | None,
    db_path: Db | None,
    sources: list[dict[str, Any]] | None,
    overrides: dict[str, Any] | None,
) -> ActiveRun:
    """Start (or resume) the run holding its lock for as long as `held` lasts (PostgreSQL: a
    second process cannot run it at once). A named run is locked before anything is recorded,
    so a refused second runner leaves the first one's record alone."""
    if run_id is not None:
        held.enter_context(running(locate(settings, db_path)[1], run_id))
        return _start(question, context, settings, run_id, db_path, sources, overrides)
    active = _start(question, context, settings, run_id, db_path, sources, overrides)
    held.enter_context(running(active.db, active.run_id))  # a new id: nobody else has it
    return active


def _start(
    question: str | None,
    context: Any,
    settings: Settings | None,
    run_id: str | None,
    db_path: Db | None,
    sources: list[dict[str, Any]] | None,
    overrides: dict[str, Any] | None,
) -> ActiveRun:
    if question is not None:
        return start_run(
            question, context, settings=settings, run_id=run_id, db_path=db_path, sources=sources
        )
    if run_id is None:
        raise ValueError("a resume needs the run_id of the run to continue")
    return start_resume(run_id, db_path=db_path, settings=settings, overrides=overrides)


def _last_result(events: Iterator[dict[str, Any]]) -> RunResult:
    result: RunResult | None = None
    for event in events:
        if event["kind"] == "result":
            result = event["result"]
    assert result is not None
    return result


async def _alast_result(events: AsyncIterator[dict[str, Any]]) -> RunResult:
    result: RunResult | None = None
    async for event in events:
        if event["kind"] == "result":
            result = event["result"]
    assert result is not None
    return result


def load_result(
    run_id: str, *, settings: Settings | None = None, db_path: Db | None = None
) -> RunResult:
    """The run's result as its root's latest checkpoint holds it, without running anything:
    for a run that was cancelled, crashed or is still going, `stop_reason` is "unfinished".
    A run with no checkpoint gives an empty result."""
    settings, db = locate(settings, db_path)
    with checkpointer(db) as saver:
        config = {"configurable": {"thread_id": run_id}}
        values = builder.compile(checkpointer=saver).get_state(config).values or {}
    return result_of(run_id, values, settings)


def list_runs(
    db_path: Db | None = None,
    *,
    settings: Settings | None = None,
    limit: int | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Runs in the database, newest first: id, status, question, started, and, read from the
    root's latest checkpoint, `last_step` (the step number and the node due next) and
    `usage` so far, which for a crashed or running run is the only record of what it spent."""
    settings, db = locate(settings, db_path)
    runs = run_index.list_runs(db, limit=limit, status=status)
    if not runs:
        return runs
    with checkpointer(db) as saver:
        app = builder.compile(checkpointer=saver)
        for row in runs:
            snap = app.get_state({"configurable": {"thread_id": row["run_id"]}})
            if not snap.created_at:
                row["last_step"] = None
                continue
            step = (snap.metadata or {}).get("step")
            row["last_step"] = {"step": step, "at": snap.created_at, "next": list(snap.next)}
            if row.get("usage") is None and snap.values.get("usage"):
                row["usage"] = snap.values["usage"]
    return runs
