"""Node `finalize`: the level's answer (from the REPL, or one closing model call when a budget
ran out or the loop was stuck), its usage, and its node of the call tree."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMState
from rlm_research.graph.usage import add_usage
from rlm_research.nodes import prompts
from rlm_research.nodes.code_blocks import strip_final
from rlm_research.nodes.model_call import (
    blob_store,
    call_model,
    emit,
    load_messages,
    put_message,
    settings_of,
)
from rlm_research.tools.repl_host import stop_worker

PREVIEW = 200


def finalize(state: RLMState, runtime: Runtime[Settings]) -> dict[str, Any]:
    settings = settings_of(runtime)
    store = blob_store(settings)
    stop_worker(state["level_id"])
    update: dict[str, Any] = {}
    answer = state.get("answer")
    stop = state.get("stop_reason") or "no answer"
    own_usage, usage = state.get("own_usage"), state.get("usage")
    refs = state.get("transcript") or []
    if answer is None and stop == "stuck" and state.get("answer_asked_at") is not None and refs:
        # The loop already asked for the best answer (observe.last_chance): no second ask.
        answer = str(load_messages(store, refs[-1:])[0].content)
    elif answer is None:
        question = store.get_text(state["question_ref"])
        closing = prompts.CLOSING.format(reason=stop.replace(":", " "), question=question[:500])
        asked = refs + [put_message(store, "user", closing)]
        reply, call = call_model(settings, state["depth"], load_messages(store, asked))
        answer = strip_final(reply)
        own_usage, usage = add_usage(own_usage, call), add_usage(usage, call)
        update.update(usage=call, own_usage=call)
    update.update(answer=answer, stop_reason=stop)

    question = store.get_text(state["question_ref"])
    node = {
        "depth": state["depth"],
        "question": question[:PREVIEW],
        "answer": answer[:PREVIEW],
        "stop_reason": stop,
        "turns": state.get("turn", 0),
        "seconds": round(time.time() - state["started_at"], 3),
        "own_usage": add_usage(own_usage, None),
        "usage": add_usage(usage, None),
        "trajectory": state.get("trajectory") or [],
        "children": [t for ref in state.get("child_trees") or [] for t in store.get_json(ref)],
    }
    update["tree_ref"] = tree_ref = store.put_json(node)
    if state["depth"] == 0:
        update["call_tree"] = load_tree(store, tree_ref)
    emit(
        {
            "kind": "finished",
            "depth": state["depth"],
            "stop_reason": stop,
            "level": state["level_id"],
        }
    )
    return update


def load_tree(store: BlobStore, ref: str) -> dict[str, Any]:
    """The call tree with children expanded (refs in the store keep each node small in state)."""
    node = store.get_json(ref)
    node["children"] = [load_tree(store, r) for r in node.get("children", []) if r]
    return node
