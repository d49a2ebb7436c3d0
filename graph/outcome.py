"""A run's outcome: the one definition the CLI, the Python API, the MCP server, the run index
and the reports all use.

`answered` only when the model gave an answer: `FINAL(...)`, `FINAL_VAR(name)`, the `answer`
dict (its plain-words reply to the loop's request before a stuck end becomes a `FINAL` when
the cells printed its words: nodes/plain_answer.py), a direct answer at the deepest level, or
the one closing call made after a budget ran out. Everything else that finished is `no_answer`, with
its reason: `stuck` (the loop repeated itself; whatever the closing call said is not the
model's answer), `budget:<what>` (the closing call gave no usable answer), `error`, or
`not_an_answer` (the text was code, a fenced block, a tool's own note, or empty). A run that
stopped on an exception is `failed` (reason `error`, resumable); one that stopped before its end
(Ctrl-C, a cancel, a crash) is `interrupted`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from rlm_research.tools.tool_notes import is_tool_note, starts_with_tool_note

Status = Literal["answered", "no_answer", "failed", "interrupted"]
STATUSES: tuple[str, ...] = ("running", "answered", "no_answer", "failed", "interrupted")

# Stop reasons under which the level's own answer stands (see nodes/observe.py, finalize.py).
_MODEL_ANSWERED = ("answered",)
_CLOSING_COUNTS = "budget:"  # the closing call after a budget ran out may answer
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)
_REPL_CALL = re.compile(r"(FINAL_VAR|FINAL|print|grep|sub_lm|sub_lm_batched|llm_query)\(")


@dataclass(frozen=True)
class Outcome:
    status: Status
    answer: str  # the answer when `answered`, else ""
    reason: str | None = None  # why there is no answer: stuck, budget:turns, error, ...
    detail: str | None = None  # one line for people: what happened
    unaccepted: str = ""  # the text that was not taken as an answer (for the report)

    @property
    def answered(self) -> bool:
        return self.status == "answered"


def outcome_of(answer: str | None, stop_reason: str | None) -> Outcome:
    """The outcome of a run whose graph reached its end (or not: stop reason `unfinished`)."""
    stop = stop_reason or "unfinished"
    text = (answer or "").strip()
    if stop == "unfinished":
        return Outcome("interrupted", "", "unfinished", "the run stopped before its end")
    if stop == "refused":  # out of time before the model could even be asked
        return Outcome("no_answer", "", "budget:time", "the time budget ran out", text)
    if stop == "error":
        return Outcome("no_answer", "", "error", f"the run ended with an error: {text[:200]}", text)
    if not (stop in _MODEL_ANSWERED or stop.startswith(_CLOSING_COUNTS)):
        detail = f"the run ended without an answer ({stop})"
        return Outcome("no_answer", "", stop, detail, text)
    flaw = not_an_answer(text)
    if flaw is not None:
        detail = f"the run ended without an answer ({stop}): the final text was {flaw}"
        reason = stop if stop != "answered" else "not_an_answer"
        return Outcome("no_answer", "", reason, detail, text)
    return Outcome("answered", text, None, None)


def failed(message: str) -> Outcome:
    """A run that stopped on an exception; its checkpoints stay resumable."""
    return Outcome("failed", "", "error", message)


def interrupted() -> Outcome:
    return Outcome("interrupted", "", "unfinished", "interrupted; the run can be resumed")


def not_an_answer(text: str) -> str | None:
    """Why `text` is not an answer ("empty", "code", "a fenced block", "a tool's note"), or
    None when it is one."""
    if not text.strip():
        return "empty"
    if _FENCE.search(text):
        return "a fenced block"
    if is_tool_note(text) or starts_with_tool_note(text):
        return "a tool's note"
    if looks_like_code(text):
        return "code"
    return None


_BLOCKS = (
    ast.Import,
    ast.ImportFrom,
    ast.For,
    ast.While,
    ast.If,
    ast.With,
    ast.Try,
    ast.FunctionDef,
    ast.ClassDef,
)


def looks_like_code(text: str) -> bool:
    """Python statements rather than a value: it parses, and it calls the REPL's helpers
    (FINAL_VAR, print, grep, sub_lm...), imports, loops or defines, or runs to several
    statements that assign. "Paris", "1678", "3 + 4", "x = 5", "total: 42" and sentences are
    not."""
    try:
        tree = ast.parse(text.strip())
    except (SyntaxError, ValueError):
        return False
    calls_helpers = any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and _REPL_CALL.match(n.func.id + "(")
        for n in ast.walk(tree)
    )
    if calls_helpers or any(isinstance(n, _BLOCKS) for n in tree.body):
        return True
    assigns = [n for n in tree.body if isinstance(n, ast.Assign | ast.AugAssign)]
    return len(tree.body) > 1 and bool(assigns)
