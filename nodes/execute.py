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

from graph.blob_store import BlobStore
from graph.settings import Settings
from graph.state import Budget, RLMState, SubRequest, SubResult
from graph.usage import total_tokens
from nodes.model_call import blob_store, emit, settings_of
from tools.repl_host import (
    SubLMCall,
    WorkerDied,
    WorkerLimits,
    live_worker,
    start_worker,
    stop_worker,
)


def execute(
    state: RLMState, runtime: Runtime[Settings]
) -> Command[Literal["spawn_subgraph", "observe"]]:
    settings = settings_of(runtime)
    store = blob_store(settings)
    level = state["level_id"]
    pending = state.get("pending") or []
    results = state.get("sub_results") or {}
    update: dict[str, Any] = {}

    unanswered = [r for r in pending if r["id"] not in results]
    if unanswered:  # a batch larger than max_parallel goes out in slices
        return Command(goto=spawn_sends(state, unanswered, settings))

    worker = live_worker(level)
    if pending and worker is not None and worker.waiting:
        answers = [store.get_text(results[r["id"]]["answer_ref"]) for r in pending]
        update.update(pending=[], sub_results=None)
        update["child_trees"] = [
            results[r["id"]]["tree_ref"] for r in pending if r["id"] in results
        ]
        event = worker.answer(answers)
        cell = state["cell"]
    else:
        worker = worker or start_worker(level, context_paths(state, store), limits_of(settings))
        cell = state["cell"] + 1
        update["cell"] = cell
        if pending:  # the worker that waited for these is gone; the cell runs again from its start
            update.update(pending=[], sub_results=None)
        emit({"kind": "cell", "depth": state["depth"], "cell": cell, "level": level})
        event = worker.run(state["code"], cell)

    while isinstance(event, SubLMCall):
        seq = update.get("seq", state.get("seq", 0)) + 1
        update["seq"] = seq
        requests = to_requests(event, f"{cell}.{seq}", state, store)
        refused = refusals(requests, state, settings, store)
        todo = [r for r in requests if r["id"] not in refused]
        if not todo:  # nothing may run: hand the refusals back at once, no round trip
            event = worker.answer(
                [store.get_text(refused[r["id"]]["answer_ref"]) for r in requests]
            )
            continue
        update.update(pending=requests, sub_results=refused or None)
        emit({"kind": "sub_calls", "depth": state["depth"], "count": len(todo), "level": level})
        return Command(update=update, goto=spawn_sends(state, todo, settings))

    if isinstance(event, WorkerDied):
        stop_worker(level)
        result: dict[str, Any] = {"died": event.reason}
    else:
        result = event.result
    update["cell_result_ref"] = store.put_json(result)
    return Command(update=update, goto="observe")


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
    child_budget: Budget = {
        "sub_calls": max(0, left["sub_calls"] - len(todo)),
        "total_tokens": left["total_tokens"],
        "deadline": left["deadline"],
    }
    return [
        Send("spawn_subgraph", {"request": r, "depth": state["depth"] + 1, "budget": child_budget})
        for r in batch
    ]


def context_paths(state: RLMState, store: BlobStore) -> dict[str, str]:
    return {name: str(store.path(ref)) for name, ref in (state.get("context_refs") or {}).items()}


def limits_of(settings: Settings) -> WorkerLimits:
    return WorkerLimits(cell_timeout=settings.cell_timeout)
