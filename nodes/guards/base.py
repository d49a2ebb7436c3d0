"""What every guard reads (`Evidence`: the question, the cell, what the level printed so far) and
what it may say (`Finding`), plus the small text readers they share.

A guard is a `Guard`: a name, the kind of turn it looks at, a one-line statement of when it
fires and what it says (docs/guards.md is built from the same words), and a `check` that reads
the evidence and returns a `Finding` or None. Guards never run code and never call a model;
a finding at a repeat may name reading code (`Finding.run`) that the loop runs in the model's
place (nodes/observe.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rlm_research.tools.repl_worker import ALIASES

# When a guard looks: at an answer (it may send it back), after a cell with no answer (it may
# add a note), when the loop saw the model repeat itself (it may add advice to the notice), or
# when the level would end stuck (`last`: it may offer code the loop runs before the end).
Moment = Literal["answer", "note", "stuck", "last", "any"]


@dataclass
class Evidence:
    """One turn as the guards see it: the question, this cell's code, result and answer, the
    level's recent searches, which guards already spoke (`fired`), and readers for what the
    level printed before (`earlier_output`) and for a search's lines (`search_lines`)."""

    question: str
    code: list[str]
    result: dict[str, Any] | None
    final: str | None
    searches: list[dict[str, Any]]  # the level's recent grep calls, this cell's last
    new_searches: list[dict[str, Any]]
    after_empty: bool  # the cell before this one printed nothing or grep's empty note
    fired: list[str] = field(default_factory=list)  # names of guards that spoke at this level
    loop_ran: list[str] = field(default_factory=list)  # advice code the loop ran at this level
    sub_calls_left: int = 0
    seconds_left: float = float("inf")
    # Prompt tokens a second, for a model that reports it (the embedded one); else None.
    reading_speed: float | None = None
    # What the level's earlier turns showed the model (outputs, tool notes and guard messages:
    # a line a guard quoted is evidence the model was shown).
    earlier_output: Callable[[], str] = lambda: ""
    # The lines of `context` that grep(pattern) returns, read again by the host.
    search_lines: Callable[[str], list[str]] = lambda pattern: []
    # (how many, the first) of each kind of heading of `context` that occurs more than once,
    # as the first message listed them.
    heading_kinds: Callable[[], list[tuple[int, str]]] = lambda: []
    # The heading lines of `context` by line number (from 1).
    headings_at: Callable[[], dict[int, str]] = lambda: {}
    # The labels that open a field in most lines of `context` ("lives in", "user="), when its
    # lines are records (tools/record_fields.py).
    field_labels: Callable[[], list[str]] = lambda: []
    # The lines of `context` as the worker sees it (the level's sources joined with headers).
    text_lines: Callable[[], list[str]] = lambda: []


@dataclass(frozen=True)
class Finding:
    """What a guard tells the model; `why` is the doubt in the run's own terms (for the record).
    `run`: code in the message that only reads the text (grep, headings, section, around, and
    count_lines, whose one short helper call names a mark) or asks one helper about one
    section, which the loop may run for a model that repeats."""

    message: str
    why: str
    run: str | None = None


@dataclass(frozen=True)
class Guard:
    name: str
    moment: Moment
    fires: str  # when, in one sentence
    says: str  # what the model is told, in one sentence
    check: Callable[[Evidence], Finding | None]
    limit: int = 1  # at most this many send-backs (or notes) per level


# A section read by line number in a cell's code: `print(section(472))`, `section(472, limit=4000)`.
SECTION_READ = re.compile(r"section\((\d+)\s*[,)]")

# The search offered for a name, as ready code (small models run offered code as written).
SEARCH_CODE = """```python
hits = grep({name!r})
print(len(hits), hits)
```"""


def offered_code(message: str) -> str | None:
    """The one python block a message offers, or None (none, or more than one)."""
    blocks = re.findall(r"```python\n(.*?)```", message, re.S)
    return blocks[0].strip() if len(blocks) == 1 else None


def offers_answer(message: str) -> bool:
    """Whether a guard's message offers a value as the answer: `FINAL('6')`, not `FINAL(...)`."""
    return re.search(r"FINAL\((['\"])", message) is not None


def cell_stdout(result: dict[str, Any] | None) -> str:
    """Everything the cell's blocks printed, in order."""
    return "".join(b.get("stdout", "") for b in (result or {}).get("blocks", []))


def printed_before_final(result: dict[str, Any] | None, final: str) -> str:
    """What the cell printed besides the echo of its FINAL value."""
    out = cell_stdout(result).strip()
    for echo in (repr(final), final):
        if echo and out.endswith(echo):
            return out[: -len(echo)].strip()
    return out


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])")


def numbers_in(text: str) -> set[str]:
    """The numbers written in `text`, thousands separators dropped ("1,204" -> "1204")."""
    return {_plain(m.group()) for m in _NUMBER.finditer(text)}


def _plain(number: str) -> str:
    digits = number.replace(",", "").lstrip("-")
    return str(int(digits)) if digits.isdigit() else digits


def call_constants(code: list[str], called: Callable[[str], bool]) -> list[Any]:
    """The constant first arguments of the calls of plain names that `called` accepts, in the
    cell's code (`FINAL("12")` -> "12", `section(472)` -> 472)."""
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
                and called(node.func.id)
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                out.append(node.args[0].value)
    return out


def literal_finals(code: list[str]) -> list[str]:
    """The constant arguments of FINAL(...) calls in the cell's code."""
    finals = call_constants(code, lambda name: "FINAL" in (name, ALIASES.get(name)))
    return [str(value) for value in finals]


def answer_word(final: str) -> re.Pattern[str]:
    """The answer as a word of its own ("1678", not inside "#101678" or "2024-1678")."""
    return re.compile(r"(?<![\w-])" + re.escape(str(final).strip()) + r"(?![\w-])", re.I)


def only_number(final: str) -> str | None:
    """The answer's number when the answer is one number ("12", "12 lines", "1,204."), else None."""
    found = numbers_in(str(final))
    return next(iter(found)) if len(found) == 1 else None


def clipped(text: str, limit: int = 300) -> str:
    """`text` cut to `limit` characters, "..." marking the cut: a quoted line or question."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
