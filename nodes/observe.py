"""Node `observe`: turn the cell's result into the next message for the model, count budgets,
catch a stuck loop, and route: another turn, or `finalize`."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from rlm_research.graph.settings import Settings
from rlm_research.graph.state import RLMState
from rlm_research.nodes import prompts
from rlm_research.nodes.answer_checks import (
    answer_word,
    cell_stdout,
    guessed_unseen,
    looks_negative,
    matched_count,
    printed_before_final,
    unfinished_chain,
    unsearched_names,
)
from rlm_research.nodes.closest_line import clipped, closest_with_link, line_advice, printed_lines
from rlm_research.nodes.execute import budget_exhausted, remaining
from rlm_research.nodes.model_call import blob_store, emit, put_message, settings_of
from rlm_research.tools.repl_worker import GREP_FOUND_NOTHING, grep_lines
from rlm_research.tools.tool_notes import has_tool_note, strip_tool_notes


def observe(
    state: RLMState, runtime: Runtime[Settings]
) -> Command[Literal["generate_code", "finalize"]]:
    settings = settings_of(runtime)
    store = blob_store(settings)
    ref = state.get("cell_result_ref")
    result: dict[str, Any] | None = store.get_json(ref) if ref else None
    question = goal(state, store)
    text = (
        prompts.NO_CODE
        if result is None
        else render_result(result, settings.max_output_chars, question)
    )
    update: dict[str, Any] = {}
    final = result.get("final") if result else None
    new_searches = cell_searches(result)
    searches = (list(state.get("searches") or []) + new_searches)[-8:]
    update["searches"] = searches
    sent_back = list(state.get("sent_back") or [])
    unsearched = unsearched_names(question, searches)
    early = None
    if final is not None:
        early = early_answer(state, settings, store, question, result, final, searches, unsearched)
    if early is not None:
        kind, fields = early
        text = prompts.SENT_BACK[kind].format(observation=text, question=question, **fields)
        final, update["sent_back"] = None, sent_back + [kind]
    elif final is None and unsearched and new_searches and "unsearched" not in sent_back:
        # Said once, right after the search: later turns build on what it found.
        text += "\n\n" + unsearched_note(unsearched[0], searches, question)
        update["sent_back"] = sent_back + ["unsearched"]
    # A search that found nothing, printed as nothing or as grep's note, proves no "none".
    update["after_empty"] = result is not None and (
        prompts.EMPTY_OUTPUT in text or GREP_FOUND_NOTHING in text
    )
    stop = "answered" if final is not None else stop_reason(state, settings)

    signature = turn_signature(state.get("code") or [], result, text)
    recent = (state.get("recent") or [])[-8:] + [signature]
    repeats = trailing_repeats(recent)
    update["recent"] = recent
    if repeats == 0 and state.get("hinted"):
        update["hinted"] = False  # it moved on; a later loop earns a hint of its own
    if stop is None and state.get("hinted") and repeats >= settings.stuck_after + 2:
        stop = "stuck"
    if stop is None and repeats >= settings.stuck_after and not state.get("hinted"):
        what = "no code again"
        if result:
            what = (
                "the same error again" if cell_error(result) else "code and results you had before"
            )
        found = last_search_lines(state, store, searches)
        advice = stuck_advice(result, question, searches, found, unsearched)
        text += "\n\n" + prompts.STUCK_HINT.format(what=what, advice=advice)
        update["hinted"] = True

    if result and final is None and _ASSIGNS_ANSWER.search("\n".join(state.get("code") or [])):
        text += "\n" + prompts.ANSWER_NOT_FINAL  # small models write answer = {...} and stop
    record = {"depth": state["depth"], "turn": state["turn"], "code": state.get("code") or []}
    record.update(observation=text, time=time.time())
    update["trajectory"] = [store.put_json(record)]
    emit(
        {"kind": "observation", "depth": state["depth"], "turn": state["turn"], "text": text[:500]}
    )
    if stop is not None:
        update.update(stop_reason=stop, answer=final)
        return Command(update=update, goto="finalize")
    update["transcript"] = [put_message(store, "user", text)]
    return Command(update=update, goto="generate_code")


_ASSIGNS_ANSWER = re.compile(r"^\s*answer\s*=", re.M)


# A guess is never read output, however often it comes; one empty search is worth one doubt.
SEND_BACK_LIMIT = {"gave_up": 1, "guessed": 3, "all_matches": 1, "unsearched": 1, "unfinished": 1}


def early_answer(
    state: RLMState,
    settings: Settings,
    store: Any,
    question: str,
    result: dict[str, Any] | None,
    final: str,
    searches: list[dict[str, Any]],
    unsearched: list[str],
) -> tuple[str, dict[str, Any]] | None:
    """Which too-early answer this is ("gave_up" / "guessed" / "unsearched" / "unfinished" /
    "all_matches"), if any, with what its message names; see `answer_checks`. A kind already
    sent back as often as it may be is not asked again, and the next kind is checked."""
    sent_back = state.get("sent_back") or []

    def open_(kind: str) -> bool:
        return sent_back.count(kind) < SEND_BACK_LIMIT[kind]

    if open_("gave_up") and state.get("after_empty") and looks_negative(final):
        return "gave_up", {}
    code = state.get("code") or []
    if open_("guessed") and result is not None and guessed_unseen(code, result, final):
        return "guessed", {}
    if open_("unsearched") and unsearched:
        return "unsearched", {"name": unsearched[0]}
    chain = None
    if open_("unfinished"):
        chain = chain_left(state, store, question, result, final, searches)
    if chain:
        return "unfinished", chain
    counted = matched_count(final, searches) if open_("all_matches") else None
    # Only when judging each line (and writing the per-line question) fits the sub-call budget.
    if counted and counted["hits"] + 1 <= remaining(state, settings)["sub_calls"]:
        return "all_matches", counted
    return None


def unsearched_note(name: str, searches: list[dict[str, Any]], question: str) -> str:
    """The note after searches of `context` that never looked for the question's name."""
    patterns = [s["pattern"] for s in searches if s["over"] == "context"]
    asked = set(re.findall(r"\w{3,}", question.lower()))
    shared = any(set(re.findall(r"\w{3,}", p.lower())) & asked for p in patterns)
    what = "are not the name the question is about" if shared else "are not words of the question"
    searched = ", ".join(repr(p) for p in patterns)
    return prompts.UNSEARCHED_NOTE.format(name=name, searched=searched, what=what)


def chain_left(
    state: RLMState,
    store: Any,
    question: str,
    result: dict[str, Any] | None,
    final: str,
    searches: list[dict[str, Any]],
) -> dict[str, str] | None:
    """When the answer was read from a line that leads on to a name (`unfinished_chain`): the
    search for that name if it was never searched, or else the line of its search most like
    the question, unless that line holds the answer too."""
    # The answer's line among what this cell printed (not FINAL's echo) and every line of the
    # last search.
    printed = printed_before_final(result, final) if result else ""
    lines = printed_lines(printed) + last_search_lines(state, store, searches)
    chain = unfinished_chain(final, lines, question)
    if chain is None:
        return None
    name, searched = chain["name"], [s["pattern"] for s in searches]
    if not any(name.lower() in p.lower() for p in searched):
        return chain | {"next": prompts.CHAIN_SEARCH.format(name=name)}
    own = [x for x in search_lines(state, store, name) if x != chain["line"]]
    found = closest_with_link(own, question, searched, name)
    if found is None or answer_word(final).search(found[0]):
        return None
    return chain | {"next": prompts.CHAIN_LINE.format(name=name, line=found[0], follow=found[1])}


def stop_reason(state: RLMState, settings: Settings) -> str | None:
    if state["turn"] >= settings.max_turns:
        return "budget:turns"
    exhausted = budget_exhausted(state, settings)
    if exhausted is not None:  # "token budget" -> "budget:token", "sub-call budget" -> ...
        return "budget:" + exhausted.split()[0]
    return None


def stuck_advice(
    result: dict[str, Any] | None,
    question: str = "",
    searches: list[dict[str, Any]] | None = None,
    found: list[str] | None = None,
    unsearched: list[str] | None = None,
) -> str:
    """For the stuck hint: a short printed result the model keeps getting (a model that printed
    `740` three times, told only "take the next step", split a 1M log into 50 helper calls), or
    of the lines it printed or its last search `found`, the one most like the question; but
    first the question's own name, while no search has looked for it."""
    if unsearched:
        return prompts.FOLLOW_QUESTION_NAME.format(name=unsearched[0])
    if not result or cell_error(result):
        return prompts.STUCK_ADVICE
    stdout = cell_stdout(result)
    # FINAL is offered only with what the model's own code printed: never with a tool's note
    # ("(grep: no line has ...)"), nor with a value printed beside one (a search that failed).
    own = strip_tool_notes(stdout)
    printed = " ".join(own.split())
    if printed and len(printed) <= 120 and not has_tool_note(stdout):
        return prompts.STUCK_ADVICE_PRINTED.format(printed=printed)
    searched = [s["pattern"] for s in searches or []]
    # The search's own lines when known: a superset of what it printed, unmangled by repr().
    lines = list(dict.fromkeys(found or printed_lines(own)))
    return line_advice(lines, question, searched) or prompts.STUCK_ADVICE


def cell_searches(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The cell's `grep` calls as the worker reported them, kept to their expected shape (the
    worker's messages are checked, never trusted)."""
    out = []
    for item in ((result or {}).get("searches") or [])[-8:]:
        if isinstance(item, dict) and isinstance(item.get("hits"), int):
            pattern, over = str(item.get("pattern", ""))[:200], str(item.get("over", ""))[:10]
            out.append({"pattern": pattern, "hits": item["hits"], "over": over})
    return out


def last_search_lines(state: RLMState, store: Any, searches: list[dict[str, Any]]) -> list[str]:
    """Every line the level's last `grep` over `context` matched, read again by the host: the
    model printed ten of 28 ("Zojun" names people too) and the town's own line was not among
    them. Only for the stuck hint and an answer's checks, so a rare re-read of the context."""
    last = searches[-1] if searches else None
    if last is None or last["over"] != "context" or not last["hits"]:
        return []
    return search_lines(state, store, last["pattern"])


def search_lines(state: RLMState, store: Any, pattern: str) -> list[str]:
    """The lines of `context` that `grep(pattern)` returns, read by the host."""
    refs = state.get("context_refs") or {}
    if len(refs) != 1:  # several sources: `context` joins them with headers; keep it simple
        return []
    text = store.get_text(next(iter(refs.values())))
    return grep_lines(pattern, text.splitlines())[:10_000]


def cell_error(result: dict[str, Any] | None) -> str | None:
    """The last line of the error the cell raised (`NameError: name 'x' is not defined`)."""
    for block in reversed((result or {}).get("blocks", [])):
        if block.get("error"):
            return block["error"].strip().splitlines()[-1]
    return (result or {}).get("died")


def turn_signature(code: list[str], result: dict[str, Any] | None, observation: str) -> str:
    """Same code with the same output, or the same error again, looks the same here."""
    error = cell_error(result)
    key = ("error\x00" + error) if error else "\n".join(code) + "\x00" + observation
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


def render_result(result: dict[str, Any], limit: int, question: str = "") -> str:
    notes = []
    if result.get("restored_without"):
        names = ", ".join(result["restored_without"])
        notes.append(f"[The REPL was restarted from its last snapshot without: {names}]")
    if "died" in result:
        notes.insert(0, f"[{result['died']}. The next cell starts from the variables as they were")
        notes[0] += " before this cell.]"
        return "Output:\n" + "\n".join(notes)
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
    variables = ", ".join(result.get("vars", [])) or "none"
    if notes:
        output = "\n".join(notes) + "\n" + output
    return prompts.OBSERVATION.format(output=output, variables=variables, question=question)
