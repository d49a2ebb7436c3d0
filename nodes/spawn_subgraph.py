"""Node `spawn_subgraph`: answer one `sub_lm` request by invoking this same compiled graph one
level deeper. `execute` fans a batch out with one `Send` per request, so requests run in parallel
and each child gets its own nested checkpoint namespace (a finished child is not run again on
resume)."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import Budget, SubRequest
from rlm_research.nodes.model_call import blob_store, emit, settings_of


class SpawnTask(TypedDict):
    request: SubRequest
    depth: int
    budget: Budget


def spawn_subgraph(task: SpawnTask, runtime: Runtime[Settings]) -> dict[str, Any]:
    from rlm_research.graph.builder import (
        graph,  # the module-level compiled graph: the same one at every depth
    )

    settings = settings_of(runtime)
    store = blob_store(settings)
    req = task["request"]
    child_input = {
        "question_ref": req["prompt_ref"],
        "context_refs": {"context": req["context_ref"]} if req["context_ref"] else {},
        "depth": task["depth"],
        "budget": task["budget"],
    }
    emit({"kind": "child_start", "depth": task["depth"], "id": req["id"]})
    try:
        out = graph.invoke(child_input, context=settings)
    except GraphBubbleUp:
        raise
    except Exception as exc:  # noqa: BLE001 - one failed child must not sink its whole batch
        text = f"[sub_lm failed: {type(exc).__name__}: {str(exc)[:300]}]"
        emit({"kind": "child_failed", "depth": task["depth"], "id": req["id"], "error": text})
        return {
            "sub_results": {
                req["id"]: {
                    "answer_ref": store.put_text(text),
                    "stop_reason": "error",
                    "tree_ref": "",
                }
            },
            "usage": {"models": {}, "sub_calls": 1},
        }
    emit({"kind": "child_done", "depth": task["depth"], "id": req["id"]})
    result = {
        "answer_ref": store.put_text(out.get("answer") or ""),
        "stop_reason": out.get("stop_reason") or "",
        "tree_ref": out.get("tree_ref") or "",
    }
    usage = dict(out.get("usage") or {"models": {}})
    usage["sub_calls"] = usage.get("sub_calls", 0) + 1
    return {"sub_results": {req["id"]: result}, "usage": usage}
