"""The cell's result as the model reads it: its output cut to the cap with the REPL's notes,
the observation around it, and a long output the level saw before replaced by a short note."""

from __future__ import annotations

from typing import Any

from rlm_research.graph.state import RLMState
from rlm_research.nodes import prompts

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
