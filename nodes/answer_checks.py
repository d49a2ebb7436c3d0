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
  judgement the loop cannot make for the model, so it asks once (see `prompts.SENT_BACK`);
- searches that never looked for the name the question is about: asked about "Fenbex
  Mibritek", the model searched "Fendar", a name from the first characters of the text it was
  shown, and answered from what that found (3 of 12 multi-hop runs). `unsearched_names` finds
  this; `observe` says so once, right after such a search or at such an answer;
- an answer read from a line that names the next link still to follow: asked the year the town
  of a firm's headquarters was founded, the model found "Logaljun Works is a firm founded in
  1866. Its headquarters are in Aneka." and answered 1866, the firm's year, one hop short.
  `unfinished_chain` finds the answer's line and, as the stuck hint does (`closest_line`), what
  follows the question's words in it: a name not searched yet is a hop not taken.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from rlm_research.nodes.closest_line import clipped, next_link
from rlm_research.tools.repl_worker import ALIASES, grep_pattern

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
    return bool(printed) and answer_word(final).search(printed) is None


def matched_count(final: str, searches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The grep (of this level's recent ones, newest first) whose number of matching lines is
    the answer, when the answer is a count: its only number. One match is a lookup, not a count."""
    numbers = re.findall(r"(?<![\w.-])\d+(?:,\d{3})*(?!\w|[.,]\d)", str(final))
    value = int(numbers[0].replace(",", "")) if len(numbers) == 1 else 0
    if value < 2:
        return None
    return next((s for s in reversed(searches) if s["hits"] == value), None)


# A capitalised word of three letters or more, and the capitalised words right after it.
_NAME_RUN = re.compile(r"\b[A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,})*")
# Capitalised words that name no one a text is about: question words, months, days.
_NOT_NAME_WORDS = """
What Which Who Whom Whose Where When Why How Does Did Is Are Was Were List Name Give
January February March April May June July August September October November December
Monday Tuesday Wednesday Thursday Friday Saturday Sunday
"""
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())


def question_names(question: str) -> list[str]:
    """The names a question is about: runs of capitalised words, not counting a word that opens
    a sentence, a line or a quote ("What", "Which"), nor months and days. "...where Fenbex
    Mibritek grew up?" -> ["Fenbex Mibritek"]; codes and labels in capitals ("AND", "P-1") are
    not names here."""
    names = []
    for m in _NAME_RUN.finditer(question):
        words = m.group().split()
        before = question[: m.start()].rstrip(" \t")
        if not before or before[-1] in ".?!:\n\"'(":
            words = words[1:]
        words = [w for w in words if w not in _NOT_NAMES]
        if words:
            names.append(" ".join(words))
    return list(dict.fromkeys(names))


def unsearched_names(question: str, searches: list[dict[str, Any]]) -> list[str]:
    """The question's names, when this level has searched `context` and no search looked for
    any word of them (as a word: "Canada" is not "Ada"); else []. Only while every search of
    the level is still on record (the host keeps the last 8): an older one may have been the
    name."""
    patterns = [s["pattern"] for s in searches if s["over"] == "context"]
    names = question_names(question)
    if not patterns or not names or len(searches) >= 8:
        return []
    words = {w.lower() for name in names for w in name.split()}
    for pattern in patterns:
        # Either the name's words as written in the search, or a search (a regex) they match.
        if any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", pattern.lower()) for w in words):
            return []
        if any(grep_pattern(pattern).search(name) for name in names):
            return []
    return names


def unfinished_chain(final: str, lines: list[str], question: str) -> dict[str, str] | None:
    """The line the answer was read from (the first of `lines` with the answer as a word of its
    own) and the name it leads on to, when a word of the question is followed there by a name
    the question does not hold; else None."""
    if not str(final).strip() or len(str(final)) > 100:  # a sentence is not read from one line
        return None
    word = answer_word(final)
    line = next((x for x in lines if word.search(x)), None)
    link = next_link(line, question, []) if line else None
    # The name after the question's word may be the answer itself ("headquarters are in X").
    if link is None or link[0] != "name" or word.search(link[1]):
        return None
    return {"line": clipped(line), "name": link[1]}


def answer_word(final: str) -> re.Pattern[str]:
    """The answer as a word of its own ("1678", not inside "#101678" or "2024-1678")."""
    return re.compile(r"(?<![\w-])" + re.escape(str(final).strip()) + r"(?![\w-])", re.I)
