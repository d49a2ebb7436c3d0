"""Node `observe`: turn the cell's result into the next message for the model, count budgets,
catch a stuck loop, and route: another turn, or `finalize`."""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMState
from rlm_research.nodes import guards, prompts
from rlm_research.nodes.execute import budget_exhausted
from rlm_research.nodes.guard_evidence import guard_evidence
from rlm_research.nodes.guards.base import clipped
from rlm_research.nodes.model_call import blob_store, emit, put_message, settings_of
from rlm_research.nodes.observation_text import cell_output, render_result, without_repeated_output
from rlm_research.tools.text_search import GREP_FOUND_NOTHING


def observe(
    state: RLMState, runtime: Runtime[Settings]
) -> Command[Literal["generate_code", "execute", "finalize"]]:
    settings = settings_of(runtime)
    store = blob_store(settings)
    ref = state.get("cell_result_ref")
    result: dict[str, Any] | None = store.get_json(ref) if ref else None
    question = goal(state, store)
    shown = cell_output(result, settings.max_output_chars) if result else ""
    text = prompts.NO_CODE if result is None else render_result(result, shown, question)
    final = offered = result.get("final") if result else None
    update: dict[str, Any] = {}
    # The guards: one call per moment, their bookkeeping in one field of state.
    on = guards.enabled(settings.guards)
    book = dict(state.get("guards") or {})
    evidence = guard_evidence(state, settings, store, book, question, result, final)
    spoke = guards.review(evidence, on, "answer" if final is not None else "note")
    if final is not None and spoke:
        text, final = spoke[0][1].message, None  # sent back: the run goes on
    else:
        text += "".join("\n\n" + found.message for _, found in spoke)
    stop = "answered" if final is not None else stop_reason(state, settings)

    by_loop = book.get("ran_at") == state["turn"]
    stop, what = stuck_check(state, settings, (result, shown, text, by_loop), stop, update)
    step = None
    if what is not None:  # the loop's notice, with the stuck guard's advice if it is on
        notice, step, advice = notice_and_step(evidence, on, book, what, update)
        text, spoke = text + notice, spoke + advice
    stop = last_chance(state, stop, update, book)
    text, step, stop, last = before_the_end(state, evidence, on, book, stop, text, step)
    spoke += last

    book["fired"] = (book.get("fired") or []) + [name for name, _ in spoke]
    book["searches"] = evidence.searches
    # A search that found nothing, printed as nothing or as grep's note, proves no "none".
    book["after_empty"] = result is not None and (
        prompts.EMPTY_OUTPUT in text or GREP_FOUND_NOTHING in text
    )
    update["guards"] = book
    record = {"depth": state["depth"], "turn": state["turn"], "code": state.get("code") or []}
    if by_loop:
        record["by"] = "loop"  # the advice's code, run in the model's place
    record["output_digest"] = digest = hashlib.sha256(shown.encode()).hexdigest()[:16]
    text = without_repeated_output(state, store, shown, digest, text)
    record.update(observation=text, time=time.time())
    record["guards"] = [{"name": name, "why": found.why} for name, found in spoke]
    record["offered"] = offered  # the answer this cell gave, kept even when sent back
    update["trajectory"] = [store.put_json(record)]
    emit(
        {"kind": "observation", "depth": state["depth"], "turn": state["turn"], "text": text[:500]}
    )
    if stop is not None:
        update.update(stop_reason=stop, answer=final)
        return Command(update=update, goto="finalize")
    update["transcript"] = [put_message(store, "user", text)]
    if step is not None:
        return run_for_model(state, store, step, update)
    return Command(update=update, goto="generate_code")


def notice_and_step(
    evidence: guards.Evidence,
    on: tuple[str, ...],
    book: dict[str, Any],
    what: str,
    update: dict[str, Any],
) -> tuple[str, str | None, list[tuple[str, guards.Finding]]]:
    """The loop's notice with the stuck guard's advice, the advice's code for the loop to run
    (or None), and the advice; notes in `update` whether it offered a value as FINAL."""
    advice = guards.review(evidence, on, "stuck")
    update["hint_offers"] = any(guards.offers_answer(found.message) for _, found in advice)
    step = step_to_run(advice, book.get("ran") or [])
    return "\n\n" + stuck_notice(what, advice, step), step, advice


def stuck_notice(what: str, advice: list[tuple[str, guards.Finding]], step: str | None) -> str:
    notice = prompts.STUCK_HINT if step is None else prompts.STUCK_RAN
    return notice.format(what=what, advice="".join(" " + found.message for _, found in advice))


def step_to_run(advice: list[tuple[str, guards.Finding]], ran: list[str]) -> str | None:
    """The reading code the stuck advice offers, when the loop has not run it at this level yet.
    A small model at a repeat mostly runs the offered code next, and sometimes repeats itself
    again instead; running it costs no model call either way and shows what the advice means.
    Code that asks helpers per chunk or per line is never run for the model: that spends the
    run's budget. One helper call is (`count_lines` naming a mark, `sub_lm` reading one
    section): the advice that offers it checks the budget."""
    runnable = (found.run for _, found in advice)
    per_item = ("_batched", "judge_lines")
    fit = (c for c in runnable if c and not any(h in c for h in per_item))
    return next((c for c in fit if c not in ran), None)


def run_for_model(
    state: RLMState, store: Any, code: str, update: dict[str, Any]
) -> Command[Literal["execute"]]:
    """The advice's code as the next cell, in the transcript as the model's next reply (the
    notice before it says the loop runs it), so the history stays a run of turns."""
    reply = put_message(store, "assistant", f"```python\n{code}\n```")
    update["transcript"] = update["transcript"] + [reply]
    update.update(turn=state["turn"] + 1, code=[code], cell_result_ref=None)
    book = update["guards"]
    book["ran"], book["ran_at"] = (book.get("ran") or []) + [code], state["turn"] + 1
    return Command(update=update, goto="execute")


def before_the_end(
    state: RLMState,
    evidence: guards.Evidence,
    on: tuple[str, ...],
    book: dict[str, Any],
    stop: str | None,
    text: str,
    step: str | None,
) -> tuple[str, str | None, str | None, list[tuple[str, guards.Finding]]]:
    """(text, step, stop, findings) where `last_chance` says the level would end stuck: the
    request for the answer in words (`ask`), or, when that gave none (`sweep`), the helpers'
    last read, run by the loop; else as they were."""
    last: list[tuple[str, guards.Finding]] = []
    if stop == "sweep":
        notice, sweep, last = helpers_last_read(state, evidence, on, book)
        text += notice
        step, stop = (sweep, None) if sweep else (step, "stuck")
    if stop == "ask":
        text += "\n\n" + prompts.ANSWER_REQUEST.format(question=evidence.question)
        stop = None
    return text, step, stop, last


def helpers_last_read(
    state: RLMState, evidence: guards.Evidence, on: tuple[str, ...], book: dict[str, Any]
) -> tuple[str, str | None, list[tuple[str, guards.Finding]]]:
    """(notice, code the loop runs, findings) where the level would end stuck after asking for
    the answer in words: the helper_sweep guard's read of the parts most like the question,
    when it offers one (the answer is asked for again after its output); else nothing."""
    last = guards.review(evidence, on, "last")
    if not last or not last[0][1].run:
        return "", None, []
    book["sweep_at"] = state["turn"] + 1
    return "\n\n" + prompts.STUCK_SWEEP.format(advice=last[0][1].message), last[0][1].run, last


def last_chance(
    state: RLMState, stop: str | None, update: dict[str, Any], book: dict[str, Any]
) -> str | None:
    """`ask` where the run would end stuck for the first time at this level: one more turn, in
    which a reply in plain words is the answer when the cells printed it
    (nodes/plain_answer.py). When that turn gave no answer, `sweep`: the helper_sweep guard
    may run a last read by helpers, after which the answer is asked for once more (`ask`);
    `stuck` after that, or when there is no sweep. A run the first ask rescues never sweeps."""
    asked = state.get("answer_asked_at")
    if asked is not None and asked == state["turn"] - 1 and stop is None:
        return "stuck" if book.get("sweep_at") else "sweep"
    if (book.get("sweep_at") == state["turn"] and stop is None) or (
        stop == "stuck" and asked is None
    ):
        update["answer_asked_at"] = state["turn"]
        return "ask"
    return stop


# A loop-run cell's output shorter than this ("0", "None") is no sign that a model's other code
# printing it too repeated that cell.
ECHO_CHARS = 40


def stuck_check(
    state: RLMState,
    settings: Settings,
    turn: tuple[dict[str, Any] | None, str, str, bool],
    stop: str | None,
    update: dict[str, Any],
) -> tuple[str | None, str | None]:
    """The loop's stuck detection: the run's stop reason (`stuck` after a notice and two more
    repeats, one when the notice offered a value as the answer), and what the model repeated
    when it earns a notice now (else None). `turn`: the cell's result, its output as shown, the
    observation so far, and whether the loop ran the cell in the model's place."""
    result, shown, text, by_loop = turn
    # What the cell printed, not the whole observation: the variables line grows when the loop
    # runs a cell, and a rerun search is the same search whatever else the namespace holds.
    signature = turn_signature(state.get("code") or [], result, shown if result else text)
    recent = (state.get("recent") or [])[-8:]
    # A loop-run cell is known by its output: a model that prints that output again, with code
    # of its own, repeats it (it reran the count the loop ran, four times, and never answered).
    echo = "out\x00" + hashlib.sha256(shown.encode()).hexdigest()[:16]
    if len(shown.strip()) >= ECHO_CHARS and not cell_error(result) and (by_loop or echo in recent):
        signature = echo
    recent = recent + [signature]
    repeats = trailing_repeats(recent)
    update["recent"] = recent
    if repeats == 0 and state.get("hinted"):
        update["hinted"] = False  # it moved on; a later loop earns a notice of its own
    more = 1 if state.get("hint_offers") else 2
    if stop is None and state.get("hinted") and repeats >= settings.stuck_after + more:
        return "stuck", None
    if stop is not None or repeats < settings.stuck_after or state.get("hinted"):
        return stop, None
    update["hinted"] = True
    if not result:
        return stop, "no code again"
    return stop, "the same error again" if cell_error(result) else "code and results you had before"


def stop_reason(state: RLMState, settings: Settings) -> str | None:
    if state["turn"] >= settings.max_turns:
        return "budget:turns"
    exhausted = budget_exhausted(state, settings)
    if exhausted is not None:  # "token budget" -> "budget:token", "sub-call budget" -> ...
        return "budget:" + exhausted.split()[0]
    return None


def cell_error(result: dict[str, Any] | None) -> str | None:
    """The last line of the error the cell raised (`NameError: name 'x' is not defined`)."""
    for block in reversed((result or {}).get("blocks", [])):
        if block.get("error"):
            return block["error"].strip().splitlines()[-1]
    return (result or {}).get("died")


def turn_signature(code: list[str], result: dict[str, Any] | None, observation: str) -> str:
    """Same code with the same output, or the same error again, looks the same here."""
    error = cell_error(result)
    key = (
        ("error\x00" + error)
        if error
        else "\n".join(c.strip() for c in code) + "\x00" + observation
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def trailing_repeats(signatures: list[str]) -> int:
    """How many of the newest turns, in a row, each repeat a turn before them in the window:
    the same turn again (A A A), or a cycle (A B C A B C: grep this city, that city, ...)."""
    n = 0
    for i in range(len(signatures) - 1, 0, -1):
        if signatures[i] not in signatures[:i]:
            break
        n += 1
    return n


def goal(state: RLMState, store: Any) -> str:
    """The level's question on one line, at most 300 characters, repeated under each output: a
    small model twenty turns in loses track of what it was asked (it printed 79 matching lines,
    then went on printing them one by one instead of answering "how many")."""
    ref = state.get("question_ref")
    text = " ".join(store.get_text(ref).split()) if ref else ""
    return clipped(text)
