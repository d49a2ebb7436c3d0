"""Answers a small model gives too early, sent back (a few times per level at most) instead of
ending the run.

Two patterns from the benchmark trajectories of a 1.5B model, both independent of the task:
- a give-up ("NONE", "0", "not found") right after a cell that printed nothing: one empty search
  is no proof that the answer does not exist;
- FINAL("a literal") in the same cell as code that printed something the model has not read yet,
  when that output does not contain the literal: a guess written before the search ran (a model
  copying a worked example whole, search, count and FINAL("12"), did exactly this);
- a count that is just how many lines a `grep` matched: asked how many of a product's reviews
  were favourable, the model grepped the product and answered the number of its reviews, in six
  runs of six. Matching lines are not always qualifying lines, and telling them apart takes
  judgement the loop cannot make for the model, so it asks once (see `prompts.SENT_BACK`).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from tools.repl_worker import ALIASES

_NEGATIVE = re.compile(
    r"(none|null|nil|0|n/?a|unknown|\[\]|no\b.*|not (found|known|mentioned|present)\b.*"
    r"|cannot\b.*|there (is|are) no\b.*|)[.!]?",
    re.I | re.S,
)


def looks_negative(answer: str) -> bool:
    """'NONE', '0', 'No access code found.': answers that say the search came up empty."""
    return _NEGATIVE.fullmatch(str(answer).strip().strip("\"'")) is not None


def literal_finals(code: list[str]) -> list[str]:
    """The constant arguments of FINAL(...) calls in the cell's code."""
    out = []
    for block in code:
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and "FINAL" in (node.func.id, ALIASES.get(node.func.id))
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                out.append(str(node.args[0].value))
    return out


def cell_stdout(result: dict[str, Any]) -> str:
    """Everything the cell's blocks printed, in order."""
    return "".join(b.get("stdout", "") for b in result.get("blocks", []))


def printed_before_final(result: dict[str, Any], final: str) -> str:
    """What the cell printed besides the echo of its FINAL value."""
    out = cell_stdout(result).strip()
    for echo in (repr(final), final):
        if out.endswith(echo):
            return out[: -len(echo)].strip()
    return out


def guessed_unseen(code: list[str], result: dict[str, Any], final: str) -> bool:
    """FINAL("x") written in a cell that also printed output the model had not read, and that
    output does not back x (x is not in it as a word of its own). A search that prints the
    answer's line and FINAL(the value) in one cell stands; "2 of 67" and FINAL("12") does not."""
    if final not in literal_finals(code):
        return False
    printed = printed_before_final(result, final)
    if not printed:
        return False
    word = re.compile(r"(?<![\w-])" + re.escape(final.strip()) + r"(?![\w-])", re.I)
    return word.search(printed) is None


def matched_count(final: str, searches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The grep (of this level's recent ones, newest first) whose number of matching lines is
    the answer, when the answer is a count: its only number. One match is a lookup, not a count."""
    numbers = re.findall(r"(?<![\w.-])\d+(?:,\d{3})*(?!\w|[.,]\d)", str(final))
    value = int(numbers[0].replace(",", "")) if len(numbers) == 1 else 0
    if value < 2:
        return None
    return next((s for s in reversed(searches) if s["hits"] == value), None)
