"""Answers a small model gives too early, sent back (a few times per level at most) instead of
ending the run.

Two patterns from the benchmark trajectories of a 1.5B model, both independent of the task:
- a give-up ("NONE", "0", "not found") right after a cell that printed nothing: one empty search
  is no proof that the answer does not exist;
- FINAL("a literal") in the same cell as code that printed something the model has not read yet:
  a literal written before the search ran is a guess (a model copying a worked example whole,
  search, count and FINAL("12"), did exactly this).
"""

from __future__ import annotations

import ast
import re
from typing import Any

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
                and node.func.id == "FINAL"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                out.append(str(node.args[0].value))
    return out


def printed_before_final(result: dict[str, Any], final: str) -> bool:
    """The cell printed something besides the echo of its FINAL value."""
    out = "".join(b.get("stdout", "") for b in result.get("blocks", [])).strip()
    for echo in (repr(final), final):
        if out.endswith(echo):
            out = out[: -len(echo)].strip()
            break
    return bool(out)


def guessed_unseen(code: list[str], result: dict[str, Any], final: str) -> bool:
    """FINAL("x") written in a cell that also printed output the model had not read. (Whether x
    appeared in earlier output cannot tell a guess from a reading: a guessed "12" is in every
    log with dates.)"""
    return final in literal_finals(code) and printed_before_final(result, final)
