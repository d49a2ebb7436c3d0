"""Node `observe`: turn the cell's result into the next message for the model, count budgets,
catch a stuck loop, and route: another turn, or `finalize`."""

from __future__ import annotations

import functools
import hashlib
import time
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMState
from rlm_research.graph.usage import reading_speed
from rlm_research.nodes import guards, prompts
from rlm_research.nodes.execute import budget_exhausted, remaining
from rlm_research.nodes.guards.base import clipped
from rlm_research.nodes.level_start import repeated_heading_kinds
from rlm_research.nodes.model_call import blob_store, emit, put_message, settings_of
from rlm_research.tools.record_fields import field_labels
from rlm_research.tools.text_search import (
    GREP_FOUND_NOTHING,
    Outline,
    grep_lines,
    join_sources,
)


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

    stop, what = stuck_check(state, settings, result, text, stop, update)
    step = None
    if what is not None:  # the loop's notice, with the stuck guard's advice if it is on
        advice = guards.review(evidence, on, "stuck")
        spoke += advice
        step = step_to_run(advice, book.get("ran") or [])
        text += "\n\n" + stuck_notice(what, advice, step)
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
    if book.get("ran_at") == state["turn"]:
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


# Outputs shorter than this are shown again: cheap, and a short number is easy to lose.
REPEAT_SHOWN_BELOW = 600
# A repeat keeps its start: a count or a first hit printed at the head stays in view.
REPEAT_HEAD_CHARS = 200


def without_repeated_output(state: RLMState, store: Any, shown: str, digest: str, text: str) -> str:
    """`text` with the cell's output (`shown`) replaced by a short note when an earlier cell at
    this level printed exactly the same long output. The stuck check and the guards read it
    whole before this. A small model that runs `print(hits)` again would otherwise make the local
    model read 20,000 characters again, minutes on two cores, for what it has in its messages."""
    if len(shown) < REPEAT_SHOWN_BELOW or shown not in text:
        return text
    for ref in state.get("trajectory") or []:  # oldest first: the copy that was shown
        earlier = store.get_json(ref)
        if earlier.get("output_digest") == digest:
            ago = state["turn"] - int(earlier.get("turn", 0))
            head = output_head(shown)
            note = prompts.SAME_OUTPUT.format(head=head, chars=len(shown), ago=ago)
            return text.replace(shown, note, 1)
    return text


def output_head(shown: str) -> str:
    """The start of an output, cut after a whole line or list item where one ends past half of
    REPEAT_HEAD_CHARS (so "room 12" is not shown as "room 1")."""
    head = shown[:REPEAT_HEAD_CHARS]
    cut = max(head.rfind("\n"), head.rfind(", "))
    return (head[:cut] if cut > REPEAT_HEAD_CHARS // 2 else head).rstrip(" ,")


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


def stuck_check(
    state: RLMState,
    settings: Settings,
    result: dict[str, Any] | None,
    text: str,
    stop: str | None,
    update: dict[str, Any],
) -> tuple[str | None, str | None]:
    """The loop's stuck detection: the run's stop reason (`stuck` after a notice and two more
    repeats), and what the model repeated when it earns a notice now (else None)."""
    signature = turn_signature(state.get("code") or [], result, text)
    recent = (state.get("recent") or [])[-8:] + [signature]
    repeats = trailing_repeats(recent)
    update["recent"] = recent
    if repeats == 0 and state.get("hinted"):
        update["hinted"] = False  # it moved on; a later loop earns a notice of its own
    if stop is None and state.get("hinted") and repeats >= settings.stuck_after + 2:
        return "stuck", None
    if stop is not None or repeats < settings.stuck_after or state.get("hinted"):
        return stop, None
    update["hinted"] = True
    if not result:
        return stop, "no code again"
    return stop, "the same error again" if cell_error(result) else "code and results you had before"


def guard_evidence(
    state: RLMState,
    settings: Settings,
    store: Any,
    book: dict[str, Any],
    question: str,
    result: dict[str, Any] | None,
    final: str | None,
) -> guards.Evidence:
    """The turn as the guards read it; what the level printed before is read only on demand."""
    new_searches = cell_searches(result)
    left = remaining(state, settings)

    @functools.cache  # several guards may ask in one turn; the records are read once
    def earlier_output() -> str:
        records = (store.get_json(ref) for ref in state.get("trajectory") or [])
        return "\n".join(str(r.get("observation", "")) for r in records)

    return guards.Evidence(
        question=question,
        code=state.get("code") or [],
        result=result,
        final=final,
        searches=((book.get("searches") or []) + new_searches)[-8:],
        new_searches=new_searches,
        after_empty=bool(book.get("after_empty")),
        fired=list(book.get("fired") or []),
        loop_ran=list(book.get("ran") or []),
        sub_calls_left=left["sub_calls"],
        seconds_left=left["deadline"] - time.time(),
        reading_speed=reading_speed(state.get("usage")),
        earlier_output=earlier_output,
        search_lines=lambda pattern: search_lines(state, store, pattern),
        heading_kinds=lambda: context_heading_kinds(state, store),
        headings_at=functools.cache(lambda: context_headings(state, store)),
        field_labels=functools.cache(lambda: context_field_labels(state, store)),
        text_lines=functools.cache(lambda: context_text(state, store).splitlines()),
    )


def stop_reason(state: RLMState, settings: Settings) -> str | None:
    if state["turn"] >= settings.max_turns:
        return "budget:turns"
    exhausted = budget_exhausted(state, settings)
    if exhausted is not None:  # "token budget" -> "budget:token", "sub-call budget" -> ...
        return "budget:" + exhausted.split()[0]
    return None


def cell_searches(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The cell's `grep` calls as the worker reported them, kept to their expected shape (the
    worker's messages are checked, never trusted)."""
    out = []
    for item in ((result or {}).get("searches") or [])[-8:]:
        if isinstance(item, dict) and isinstance(item.get("hits"), int):
            pattern, over = str(item.get("pattern", ""))[:200], str(item.get("over", ""))[:10]
            out.append({"pattern": pattern, "hits": item["hits"], "over": over})
    return out


def search_lines(state: RLMState, store: Any, pattern: str) -> list[str]:
    """The lines of `context` that `grep(pattern)` returns, read by the host."""
    refs = state.get("context_refs") or {}
    if len(refs) != 1:  # several sources: `context` joins them with headers; keep it simple
        return []
    text = store.get_text(next(iter(refs.values())))
    return grep_lines(pattern, text.splitlines())[:10_000]


def context_headings(state: RLMState, store: Any) -> dict[int, str]:
    """The heading lines of `context` by line number (from 1), as the worker's outline sees them."""
    lines = context_text(state, store).splitlines()
    return {i + 1: lines[i] for i in Outline(lines).at}


def context_field_labels(state: RLMState, store: Any) -> list[str]:
    """The labels that open a field in most lines of `context`, when its lines are records."""
    return field_labels(context_text(state, store).splitlines())


def context_heading_kinds(state: RLMState, store: Any) -> list[tuple[int, str]]:
    """The repeated kinds of heading of `context`, as its first message listed them."""
    return repeated_heading_kinds(context_text(state, store))


def context_text(state: RLMState, store: Any) -> str:
    """`context` as the worker sees it: the level's sources joined with their headers."""
    refs = state.get("context_refs") or {}
    return join_sources({name: store.get_text(ref) for name, ref in refs.items()})


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


def render_result(result: dict[str, Any], output: str, question: str = "") -> str:
    """The observation around `output`, what `cell_output` made of the result."""
    if "died" in result:
        return "Output:\n" + output
    variables = ", ".join(result.get("vars", [])) or "none"
    return prompts.OBSERVATION.format(output=output, variables=variables, question=question)


def cell_output(result: dict[str, Any], limit: int) -> str:
    """What the cell printed as the model reads it: cut to `limit`, with the REPL's notes."""
    notes = []
    if result.get("restored_without"):
        names = ", ".join(result["restored_without"])
        notes.append(f"[The REPL was restarted from its last snapshot without: {names}]")
    if "died" in result:
        notes.insert(0, f"[{result['died']}. The next cell starts from the variables as they were")
        notes[0] += " before this cell.]"
        return "\n".join(notes)
    parts: list[str] = []
    dropped = 0
    for block in result.get("blocks", []):
        parts += [block["stdout"], block["stderr"]]
        if block.get("error"):
            parts.append(block["error"])
        dropped += block.get("dropped", 0)
    if result.get("skipped"):
        parts.append(f"[{result['skipped']} later code block(s) not run because of the error]")
    # Small models read an empty result as license to guess; say what it means instead.
    output = "\n".join(p.rstrip("\n") for p in parts if p).strip() or prompts.EMPTY_OUTPUT
    if len(output) > limit:
        dropped += len(output) - limit
        output = output[:limit]
    if dropped:
        output += f"\n[... {dropped:,} more characters cut; print less, or slice]"
    if notes:
        output = "\n".join(notes) + "\n" + output
    return output
