"""Node `execute`: run the stored code in this level's REPL worker. When the code calls `sub_lm`,
the worker blocks and this node ends with the pending requests; `spawn_subgraph` answers them and
routes back here, and the answers go to the waiting worker so the cell continues."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import Budget, RLMState, SubRequest, SubResult
from rlm_research.graph.usage import total_tokens
from rlm_research.nodes.durable_cell import (
    load_journal,
    read_side_journal,
    rebuild_worker,
    replay_pool,
    save_snapshot,
    side_journal_path,
    take,
)
from rlm_research.nodes.host_calls import answer_host_call
from rlm_research.nodes.model_call import blob_store, emit, settings_of
from rlm_research.tools.repl_host import (
    CellDone,
    HostCall,
    ReplWorker,
    SubLMCall,
    WorkerDied,
    WorkerLimits,
    live_worker,
    stop_worker,
)


def execute(
    state: RLMState, runtime: Runtime[Settings]
) -> Command[Literal["spawn_subgraph", "observe"]]:
    settings = settings_of(runtime)
    store = blob_store(settings)
    level = state["level_id"]
    # A batch lives in the blob store, not in state: a 500-request batch copied into every
    # checkpoint of its 30 slices grew the database quadratically.
    pending: list[SubRequest] = load_json(store, state.get("pending_ref"), [])
    results = {
        **load_json(store, state.get("batch_results_ref"), {}),
        **(state.get("sub_results") or {}),
    }
    update: dict[str, Any] = {}

    unanswered = [r for r in pending if r["id"] not in results]
    if unanswered:  # the next slice, unless a budget ran out during the last one
        results.update(refusals(unanswered, state, settings, store))
        unanswered = [r for r in unanswered if r["id"] not in results]
    if unanswered:  # a batch larger than max_parallel goes out in slices
        update.update(batch_results_ref=store.put_json(results), sub_results=None)
        return Command(update=update, goto=spawn_sends(state, unanswered, settings))

    journal = load_journal(store, state.get("journal_ref"))
    worker = live_worker(level)
    lost: list[str] = []
    if pending:  # every request of the batch is answered: journal them, then resume the cell
        journal = journal + [
            [r["id"], r["request_hash"], results[r["id"]]["answer_ref"]] for r in pending
        ]
        update.update(pending_ref=None, batch_results_ref=None, sub_results=None)
        update["journal_ref"] = store.put_json(journal)
        if settings.reuse_sub_answers:
            update["answers_ref"] = remember_answers(state, store, pending, results)
        trees = [results[r["id"]]["tree_ref"] for r in pending if results[r["id"]]["tree_ref"]]
        update["child_trees"] = [store.put_json(trees)] if trees else []
    cell, seq = state["cell"], state.get("seq", 0)
    ids = [r["id"] for r in pending]
    if pending and worker is not None and worker.waiting and worker.waiting_for == ids:
        event = worker.answer([store.get_text(results[r["id"]]["answer_ref"]) for r in pending])
    else:
        if not pending:  # a new cell
            cell, journal = cell + 1, []
            update.update(cell=cell, journal_ref=None)
        # Run the cell from its start in a worker restored to before it, unless this worker is
        # idle and has not seen this cell yet (it may have run part of it before a failure).
        if worker is None or worker.waiting or worker.cell_started >= cell:
            worker, lost = rebuild_worker(level, state, store, limits_of(settings))
        side = read_side_journal(side_journal_path(store, level, cell))
        worker.replay = replay_pool(journal, side)
        worker.cell_started, seq = cell, 0
        emit({"kind": "cell", "depth": state["depth"], "cell": cell, "level": level})
        event = worker.run(state["code"], cell)

    web_calls = 0
    while isinstance(event, (SubLMCall, HostCall)):
        seq += 1
        if isinstance(event, HostCall):
            left = remaining(state, settings)["web_calls"] - web_calls
            side_path = side_journal_path(store, level, cell)
            event, entry, spent = answer_host_call(
                worker, event, f"{cell}.{seq}", worker.replay, left, settings, store, side_path
            )
            web_calls += spent
            if entry is not None:
                journal = journal + [entry]
                update["journal_ref"] = store.put_json(journal)
            if web_calls:
                update["usage"] = update["own_usage"] = {"web_calls": web_calls}
            continue
        requests = to_requests(event, f"{cell}.{seq}", state, store)
        known = update.get("answers_ref", state.get("answers_ref"))  # this step's answers too
        prefilled = answered_without_a_model(requests, worker.replay, known, state, settings, store)
        todo = [r for r in requests if r["id"] not in prefilled]
        if not todo:  # nothing needs a model: answer at once, no round trip through the graph
            event = worker.answer(
                [store.get_text(prefilled[r["id"]]["answer_ref"]) for r in requests]
            )
            continue
        update.update(seq=seq, pending_ref=store.put_json(requests), sub_results=prefilled or None)
        update["batch_results_ref"] = None
        worker.waiting_for = [r["id"] for r in requests]
        emit({"kind": "sub_calls", "depth": state["depth"], "count": len(todo), "level": level})
        return Command(update=update, goto=spawn_sends(state, todo, settings))

    result = cell_result(event, worker, level, store, update)
    if lost:
        result["restored_without"] = lost
    update.update(seq=seq, cell_result_ref=store.put_json(result))
    return Command(update=update, goto="observe")


def answered_without_a_model(
    requests: list[SubRequest],
    replay: dict[str, list[list[Any]]],
    answers_ref: str | None,
    state: RLMState,
    settings: Settings,
    store: BlobStore,
) -> dict[str, SubResult]:
    """The requests that need no model: answered before (a cell run again after a crash takes
    them from the journal; an identical request of an earlier cell, its answer), or refused
    because a budget ran out."""
    prefilled: dict[str, SubResult] = {}
    for req in requests:
        stored = take(replay, req["request_hash"])
        if stored is not None:
            prefilled[req["id"]] = {
                "answer_ref": stored[0],
                "stop_reason": "replayed",
                "tree_ref": "",
            }
    answers = load_json(store, answers_ref, {}) if settings.reuse_sub_answers else {}
    for req in requests:
        if req["id"] not in prefilled and req["request_hash"] in answers:
            ref = answers[req["request_hash"]]
            prefilled[req["id"]] = {"answer_ref": ref, "stop_reason": "reused", "tree_ref": ""}
    waiting = [r for r in requests if r["id"] not in prefilled]
    prefilled.update(refusals(waiting, state, settings, store))
    return prefilled


def remember_answers(
    state: RLMState, store: BlobStore, pending: list[SubRequest], results: dict[str, SubResult]
) -> str | None:
    """The level's answered requests by hash, with this batch's answers added. Only answers a
    child gave with FINAL count: a child that ended stuck or out of budget may do better when
    asked again (its later turns sample warmer)."""
    answers = load_json(store, state.get("answers_ref"), {})
    new = {
        r["request_hash"]: results[r["id"]]["answer_ref"]
        for r in pending
        if results[r["id"]]["stop_reason"] == "answered"
    }
    if not new or new.items() <= answers.items():
        return state.get("answers_ref")
    return store.put_json({**answers, **new})


def cell_result(
    event: CellDone | WorkerDied,
    worker: ReplWorker,
    level: str,
    store: BlobStore,
    update: dict[str, Any],
) -> dict[str, Any]:
    """What the finished cell gives `observe`; its namespace snapshot goes into `update`."""
    if isinstance(event, WorkerDied):
        stop_worker(level)
        return {"died": event.reason}
    result = dict(event.result)
    snapshot = result.pop("snapshot")
    update["snapshot_ref"] = save_snapshot(worker, snapshot, store)
    result["not_saved"] = snapshot.get("unpicklable", [])  # what the stored manifest says
    return result


def load_json(store: BlobStore, ref: str | None, empty: Any) -> Any:
    return store.get_json(ref) if ref else empty


def to_requests(
    event: SubLMCall, call_id: str, state: RLMState, store: BlobStore
) -> list[SubRequest]:
    out: list[SubRequest] = []
    for i, req in enumerate(event.requests):
        prompt_ref = store.put_text(req["prompt"])
        context_ref = store.put_text(req["context"]) if req.get("context") else None
        digest = hashlib.sha256(
            json.dumps([state["depth"], prompt_ref, context_ref]).encode()
        ).hexdigest()
        out.append(
            {
                "id": f"{call_id}.{i}",
                "prompt_ref": prompt_ref,
                "context_ref": context_ref,
                "request_hash": digest,
            }
        )
    return out


def remaining(state: RLMState, settings: Settings) -> Budget:
    budget = state["budget"]
    usage = state.get("usage") or {}
    return {
        "sub_calls": budget["sub_calls"] - usage.get("sub_calls", 0),
        "total_tokens": budget["total_tokens"] - total_tokens(usage),
        "deadline": budget["deadline"],
        "web_calls": budget.get("web_calls", settings.max_web_calls) - usage.get("web_calls", 0),
    }


def budget_exhausted(state: RLMState, settings: Settings) -> str | None:
    """The name of the first whole-tree budget that is used up, if any."""
    left = remaining(state, settings)
    if left["total_tokens"] <= 0:
        return "token budget"
    if time.time() >= left["deadline"]:
        return "time budget"
    if left["sub_calls"] <= 0:
        return "sub-call budget"
    return None


def refusals(
    requests: list[SubRequest], state: RLMState, settings: Settings, store: BlobStore
) -> dict[str, SubResult]:
    """Requests beyond the budget are answered with a refusal; the rest go to child runs."""
    left = remaining(state, settings)
    allowed = left["sub_calls"]
    if budget_exhausted(state, settings) not in (None, "sub-call budget"):
        allowed = 0
    out: dict[str, SubResult] = {}
    for req in requests[max(0, allowed) :]:
        reason = budget_exhausted(state, settings) or "sub-call budget"
        text = f"[sub_lm refused: the {reason} is used up]"
        out[req["id"]] = {
            "answer_ref": store.put_text(text),
            "stop_reason": "refused",
            "tree_ref": "",
        }
    return out


def spawn_sends(state: RLMState, todo: list[SubRequest], settings: Settings) -> list[Send]:
    """One `Send` per request, at most `max_parallel` at once, in request order."""
    left = remaining(state, settings)
    batch = todo[: max(1, settings.max_parallel)]
    # What is left is shared among the requests still to run, so parallel children together
    # stay inside the tree's budget; later slices are recomputed from the usage so far.
    n = len(todo)
    child_budget: Budget = {
        "sub_calls": max(0, (left["sub_calls"] - n) // n),
        "total_tokens": max(0, left["total_tokens"] // n),
        "deadline": left["deadline"],
        "web_calls": left["web_calls"],
    }
    return [
        Send("spawn_subgraph", {"request": r, "depth": state["depth"] + 1, "budget": child_budget})
        for r in batch
    ]


def limits_of(settings: Settings) -> WorkerLimits:
    return WorkerLimits(
        cell_timeout=settings.cell_timeout,
        memory_bytes=settings.repl_memory_mb * 1024**2,
        cpu_seconds=settings.repl_cpu_seconds,
        processes=settings.repl_processes,
        file_bytes=settings.repl_file_mb * 1024**2,
        open_files=settings.repl_open_files,
        web=settings.web,
    )
