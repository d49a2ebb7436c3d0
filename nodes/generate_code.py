"""Node `generate_code`: ask the model for the next step and store its reply and code in state
before anything runs. At the deepest allowed depth there is no REPL: answer directly."""

from __future__ import annotations

import time
from typing import Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMState
from rlm_research.graph.usage import add_usage
from rlm_research.nodes import prompts
from rlm_research.nodes.code_blocks import cut_invented_turns, extract_code, final_outside_code
from rlm_research.nodes.execute import remaining
from rlm_research.nodes.level_start import start_level
from rlm_research.nodes.model_call import (
    ModelCallError,
    OutOfTime,
    blob_store,
    call_model,
    emit,
    load_messages,
    put_message,
    settings_of,
)
from rlm_research.nodes.plain_answer import fenced_reply, plain_answer, printed_output

# Where a reply that goes on to invent the REPL's output stops (see `cut_invented_turns`): sent
# as stop sequences to models known to take them, so the invention is not even generated.
INVENTED_TURN_STOPS = ["\nOutput:"]
LEAF_MAX_CHARS = 100_000  # what a direct answer may read: about 25K tokens, inside a 32K window


def generate_code(
    state: RLMState, runtime: Runtime[Settings]
) -> Command[Literal["execute", "observe", "finalize"]]:
    settings = settings_of(runtime)
    store = blob_store(settings)
    update = start_level(state, settings, store) if not state.get("level_id") else {}
    state = {**state, **update}
    depth = state["depth"]

    # A child whose turn comes after the deadline (the later requests of a long batch on a
    # serialised local model) gives way at once, so the tree stops close to max_seconds.
    deadline = remaining(state, settings)["deadline"] if depth > 0 else None
    if deadline is not None and time.time() >= deadline:
        return out_of_time(update)

    if depth >= settings.max_depth:
        return direct_answer(state, settings, update, deadline)

    transcript = state.get("transcript", [])  # start_level's opening messages included
    emit({"kind": "turn", "depth": depth, "turn": state["turn"] + 1, "level": state["level_id"]})
    try:
        # In a loop after the stuck hint, a model at temperature 0 repeats itself word for word.
        temperature = None
        if state.get("hinted"):
            temperature = max(settings.temperature, settings.stuck_temperature)
        reply, usage = call_model(
            settings,
            depth,
            load_messages(store, transcript),
            temperature,
            INVENTED_TURN_STOPS,
            deadline,
        )
    except OutOfTime as e:
        return out_of_time(update, str(e))
    except ModelCallError as exc:
        if depth == 0:
            raise  # the run fails here, resumably: `resume` makes this call again
        # A sub-run ends with the failure as its answer, so its earlier calls still count in the
        # parent's usage and budgets, and the parent's code can carry on.
        update.update(answer=f"[sub_lm failed: {exc}]", stop_reason="error")
        return Command(update=update, goto="finalize")
    # The history keeps the reply up to an invented "Output:", so the model is not shown its
    # own made-up results as if they had happened; the whole reply stays in the blob store.
    kept = cut_invented_turns(reply)
    text, full_ref = clip_reply(kept, settings, store)
    if kept != reply:
        full_ref = store.put_text(reply)
    message = put_message(store, "assistant", text, full_ref)
    update["transcript"] = update.get("transcript", []) + [message]
    update["turn"] = state["turn"] + 1
    update["usage"] = update["own_usage"] = usage
    update["cell_result_ref"] = None
    update["code"] = code = cell_code(kept, state, store)
    # FINAL(...) in prose runs as code too: the REPL records it, so the guards see it.
    return Command(update=update, goto="execute" if code else "observe")  # else: a nudge


def cell_code(reply: str, state: RLMState, store: BlobStore) -> list[str]:
    """The code a reply runs: its code blocks, then FINAL(...) written in prose, if any; or,
    right after the loop asked for its best answer, a plain-text answer the outputs hold (see
    nodes/plain_answer.py). [] when there is none: observe asks for code."""
    code = extract_code(reply)
    final = final_outside_code(reply)
    if final:
        code += [f"FINAL({final[1]!r})" if final[0] == "text" else f"FINAL_VAR({final[1]!r})"]
    elif state.get("answer_asked_at") == state["turn"]:
        # Asked for the answer in words, a small model may still put it in a fence.
        words = fenced_reply(code) if code else reply
        if not words:
            return code
        records = (store.get_json(ref) for ref in state.get("trajectory") or [])
        printed = printed_output(str(r.get("observation", "")) for r in records)
        answer, _why = plain_answer(words, printed, store.get_text(state["question_ref"]))
        if answer is not None:
            code = [f"# the plain-text answer the loop asked for\nFINAL({answer!r})"]
    return code


def clip_reply(reply: str, settings: Settings, store: BlobStore) -> tuple[str, str | None]:
    """What the history keeps of a reply, and the full reply's blob ref when that was cut.

    The whole transcript goes back to the model every turn, so one 200 KB reply (a server that
    ignored max_tokens, a model echoing the context) made every later prompt 200 KB bigger. A
    reply that max_completion_tokens allows is kept whole; beyond that and max_output_chars the
    history keeps its start and end (where code usually is) and says how much was cut. The
    code was already extracted from the full reply, and the full text stays in the blob store.
    """
    limit = max(settings.max_output_chars, 6 * settings.max_completion_tokens)
    if len(reply) <= limit:
        return reply, None
    cut = len(reply) - limit
    head, tail = reply[: limit // 2], reply[len(reply) - (limit - limit // 2) :]
    note = f"\n[... {cut:,} characters of this reply cut from the history ...]\n"
    return head + note + tail, store.put_text(reply)


def out_of_time(update: dict, why: str = "") -> Command[Literal["finalize"]]:
    detail = f" ({why})" if why.startswith("reading") else ""
    answer = f"[sub_lm refused: the time budget is used up{detail}]"
    update.update(answer=answer, stop_reason="refused")
    return Command(update=update, goto="finalize")


def direct_answer(
    state: RLMState, settings: Settings, update: dict, deadline: float | None = None
) -> Command[Literal["finalize"]]:
    """The deepest level: one model call on the prompt (and its context), no REPL."""
    store = blob_store(settings)
    prompt = store.get_text(state["question_ref"])
    refs = state.get("context_refs") or {}
    context = "\n\n".join(store.get_text(r) for r in refs.values())
    user = prompt
    if context:
        user = prompts.DIRECT_USER_WITH_CONTEXT.format(prompt=prompt, context=context)
    if len(user) > LEAF_MAX_CHARS:
        cut = len(user) - LEAF_MAX_CHARS
        user = user[:LEAF_MAX_CHARS] + f"\n[... {cut:,} characters cut to fit the model]"
    emit({"kind": "direct", "depth": state["depth"], "level": state["level_id"]})
    messages = [SystemMessage(content=prompts.DIRECT_SYSTEM), HumanMessage(content=user)]
    try:
        reply, usage = call_model(settings, state["depth"], messages, deadline=deadline)
    except OutOfTime as e:
        return out_of_time(update, str(e))
    update.update(
        answer=reply.strip(),
        stop_reason="answered",
        turn=1,
        usage=add_usage(None, usage),
        own_usage=usage,
    )
    return Command(update=update, goto="finalize")
