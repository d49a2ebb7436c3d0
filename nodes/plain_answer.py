"""A plain-text answer, asked for where a level would end stuck.

A small coder model that has found what the question asks often goes on writing code: it runs
the same search again, or the code a hint offered, and never writes FINAL, until the loop stops
it as stuck. Asked in plain words ("reply with only the answer, no code"), the same model often
names the answer. So before a level ends stuck the loop asks once, and a reply with no code and
no FINAL is taken as the model's FINAL when it is an answer the run has shown: not code, a
tool's note or a refusal ("not found"), short, and made of words the cells' outputs printed
(not the question's words, not the preview). The guards then review it like any FINAL. Any
other reply ends the level stuck, as it would have ended without the question. Only runs that
were about to end without an answer are changed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from rlm_research.graph.outcome import not_an_answer
from rlm_research.tools.calendar_dates import dates_in, without_dates
from rlm_research.tools.text_search import without_line_numbers

MAX_CHARS = 300  # an answer, not a paragraph
_REFUSAL = re.compile(
    r"\b(not found|none|unknown|cannot|can't|unable|no (information|answer|mention)|"
    r"(does|do|did) ?n[o']t|not (mentioned|given|stated|specified|provided|present|"
    r"available|clear|shown|in the))\b",
    re.I,
)
_WORD = re.compile(r"[^\W_][\w.:/+-]*", re.U)
_COMMON = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "and",
        "or",
        "it",
        "its",
        "this",
        "that",
        "which",
        "with",
        "as",
        "answer",
        "question",
        "text",
        "output",
        "outputs",
        "line",
        "lines",
    ]
)
_NUMBER_TOKEN = re.compile(r"[^\W_]*\d[\w.:/+,-]*")  # "7,500", "2.5.3", "v2"
_OUTPUT = re.compile(r"^Output:\n(.*?)(?:\nVariables: |\Z)", re.S | re.M)


def printed_output(observations: Iterable[str]) -> str:
    """What the cells printed, from the loop's observations (one text each, or several joined):
    each one's `Output:` part, without
    the question repeated under it or the loop's and guards' messages after it."""
    return "\n".join(out for text in observations for out in _OUTPUT.findall(str(text)))


def plain_answer(reply: str, printed: str, question: str = "") -> tuple[str | None, str]:
    """(the answer, "") when `reply` is one the printed output holds, else (None, why not)."""
    text = reply.strip().strip("`").strip()
    flaw = not_an_answer(text)
    if flaw is not None:
        return None, f"it is {flaw}"
    if len(text) > MAX_CHARS:
        return None, "it is longer than an answer"
    if _REFUSAL.search(text):
        return None, "it says the outputs do not answer the question"
    if not held_by(text, printed, question):
        return None, "its words are not in what your code printed"
    return text, ""


def _words(text: str) -> list[str]:
    words = [w.rstrip(".:/+-") for w in _WORD.findall(text.lower())]
    return [w for w in words if w and w not in _COMMON]


def held_by(answer: str, printed: str, question: str = "") -> bool:
    """Every word of `answer` with a digit in it, and two thirds of its other words, appear in
    `printed`: an answer read off the output, not made up or copied from the question. Words the
    question has are neither (`coreutils` in "The answer is coreutils release 8.29."), but an
    answer made only of them is not one. A date is held when the output names the same day in
    any common form (`2022-05-17` for "Tue, 17 May 2022")."""
    days = dates_in(answer)
    if days and days <= dates_in(printed):
        answer = without_dates(answer)
        if not _words(answer):
            return True
    asked = set(_words(question))
    words = _words(answer)
    hay = " ".join(printed.lower().split())
    numbers = [w for w in words if any(c.isdigit() for c in w)]
    # A number whole, not a line's number: "7" is not held by "177", "7,500" or "7: 'class A:'".
    values = " ".join(without_line_numbers(printed).lower().split())
    whole = (t.rstrip(".:/+,-") for t in _NUMBER_TOKEN.findall(answer.lower()))
    if any(not re.search(rf"(?<![\w.,]){re.escape(t)}(?!\w|[.,]\d)", values) for t in whole):
        return False
    new = [w for w in words if w not in asked]
    others = [w for w in new if w not in numbers]
    if not any(w in hay for w in new):
        return False
    return 3 * sum(w in hay for w in others) >= 2 * len(others)


# Broken code, not words: a call (`print(section(472)`), an assignment, a block's colon.
_LOOKS_LIKE_CODE = re.compile(
    r"[\w\])]\(|(?<![=!<>])=(?!=)|:\s*$|^(?:def|class|for|while|if|import)\b"
)


def fenced_reply(code: list[str]) -> str | None:
    """The answer a reply to the request for one in plain words wrapped in a code fence anyway:
    a one-line block that is a literal (`6`, `'%.3g'`), prints one (`print("2.5.3")`), or is no
    Python at all (`2022-05-17 (Tue)`). None for anything else: code that does work runs."""
    if len(code) != 1 or "\n" in code[0].strip() or not code[0].strip():
        return None
    line = code[0].strip()
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return None if _LOOKS_LIKE_CODE.search(line) else line
    node = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(node, ast.Expr):
        return None
    value = node.value
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "print"
        and len(value.args) == 1
        and not value.keywords
    ):
        value = value.args[0]
    literal = value.value if isinstance(value, ast.Constant) else None
    if isinstance(literal, (str, int, float)) and not isinstance(literal, bool):
        return line if isinstance(literal, float) else str(literal)  # 1e400 is not "inf"
    return None
