"""The small public Python API: `run`, `stream`, `resume`. Each compiles the graph with the
checkpointer of the run's database (`graph.stores`: a SQLite file in the data folder, or
PostgreSQL); the run id is the checkpoint thread id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rlm_research.graph import run_index
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.builder import builder
from rlm_research.graph.checkpoints import checkpointer
from rlm_research.graph.settings import Settings
from rlm_research.graph.stores import Db, locate, open_blob_store, running
from rlm_research.nodes.level_start import ingest_context

RECURSION_LIMIT = 100_000  # budgets end runs; LangGraph's step cap should never be what stops one


@dataclass
class RunResult:
    run_id: str
    answer: str
    stop_reason: str
    usage: dict[str, Any]
    call_tree: dict[str, Any]
    trajectory: list[dict[str, Any]] = field(default_factory=list)


def run(
    question: str,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
) -> RunResult:
    """Answer `question` over `context` (text, or {name: text}); returns when the run ends."""
    result: RunResult | None = None
    for event in stream(question, context, settings=settings, run_id=run_id, db_path=db_path):
        if event["kind"] == "result":
            result = event["result"]
    assert result is not None
    return result


def stream(
    question: str | None,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
) -> Iterator[dict[str, Any]]:
    """Progress events (`kind`: turn, cell, sub_calls, child_start, observation, finished, ...)
    from every depth, then one `{"kind": "result", "result": RunResult}`.
    `question=None` resumes the run `run_id`."""
    settings, db = _locate(settings, db_path)
    run_id = run_id or uuid.uuid4().hex[:12]
    config = {
        "configurable": {"thread_id": run_id},
        "recursion_limit": RECURSION_LIMIT,
        # LangGraph runs a step's Send tasks on a pool of min(32, cores + 4) threads unless told:
        # 6 here, which made a batch of 16 take three rounds instead of one. `execute` sends at
        # most `max_parallel` at once; the two spare threads are for LangGraph's own background
        # checkpoint writes (with a pool of one, a task waited on a write queued behind itself).
        "max_concurrency": max(1, settings.max_parallel) + 2,
    }
    # PostgreSQL: a second process cannot run this run at once, and any host can tell it runs.
    with running(db, run_id):
        inputs = None
        if question is not None:
            # Into the blob store first: a context passed in the input would be copied into the
            # first checkpoints (the input write and step -1), three times for a 40 MB text.
            store = open_blob_store(settings)
            inputs = {"question": question, "context_refs": ingest_context(context, store)}
        run_index.record_start(db, run_id, question=question, context=context, settings=settings)
        try:
            with checkpointer(db) as saver:
                app = builder.compile(checkpointer=saver)
                for _ns, chunk in app.stream(
                    inputs,
                    config,
                    context=settings,
                    stream_mode="custom",
                    subgraphs=True,
                    durability="sync",
                ):
                    yield chunk
                values = app.get_state(config).values
        except BaseException as exc:  # Ctrl-C / a closed stream -> interrupted, else failed
            run_index.record_end(db, run_id, error=exc)
            raise
        result = _result(run_id, values, settings)
        run_index.record_end(db, run_id, result=result)
    yield {"kind": "result", "result": result}


def resume(run_id: str, *, settings: Settings | None = None, db_path: Db | None = None):
    """Continue a run from its last checkpoint; finished model calls are not made again."""
    result: RunResult | None = None
    for event in stream(None, settings=settings, run_id=run_id, db_path=db_path):
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
    settings, db = _locate(settings, db_path)
    with checkpointer(db) as saver:
        config = {"configurable": {"thread_id": run_id}}
        values = builder.compile(checkpointer=saver).get_state(config).values or {}
    return _result(run_id, values, settings)


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
    settings, db = _locate(settings, db_path)
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


def _locate(settings: Settings | None, db_path: Db | None) -> tuple[Settings, Db]:
    """`db_path` (a SQLite file, whose folder then holds blobs/ and reports/, or a postgresql://
    URL), else `settings.db_url`, else `<data_dir>/runs.sqlite`."""
    return locate(settings or Settings(), db_path)


def _result(run_id: str, values: dict[str, Any], settings: Settings) -> RunResult:
    store = open_blob_store(settings)
    tree = values.get("call_tree") or {}
    return RunResult(
        run_id=run_id,
        answer=values.get("answer") or "",
        stop_reason=values.get("stop_reason") or "unfinished",
        usage=values.get("usage") or {},
        call_tree=tree,
        trajectory=list(trajectory_of(tree, store)),
    )


def trajectory_of(tree: dict[str, Any], store: BlobStore) -> Iterator[dict[str, Any]]:
    """Every turn of the run, depth first: a level's turns, then its children's."""
    for ref in tree.get("trajectory", []):
        yield store.get_json(ref)
    for child in tree.get("children", []):
        yield from trajectory_of(child, store)
