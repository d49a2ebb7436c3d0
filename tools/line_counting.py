"""What the REPL's two counting helpers ask a helper model, and how they read its reply.

`judge_lines(lines, question)` asks one helper per line (a yes/no question one helper wrote).
`count_lines(question, text)` asks one helper which word or mark starts each line the question
counts (`class` for the classes a file defines, `*` for a list's items), and then code counts the
lines that start with it (a mark no line starts with counts nothing: the helper guessed), for
one short helper call however long the text, where judging each line of a 700-line file would
take 700. The helper is not shown the text: shown its first lines, the 1.5B named a word from
them (`__all__`) instead.

Standard library only: the REPL worker imports it (bound beside it in the sandbox).
"""

from __future__ import annotations

import re

PER_LINE_QUESTION = (
    "A question counts lines of a text. Write the yes/no question to ask about ONE line to "
    'decide whether it is counted. Example: for "How many orders came late?" write "Did this '
    'order come late?". Reply with the new question only.\nQuestion: '
)

LINE_MARK_REQUEST = """\
Question: {question}
Each line of the text that the question counts starts with the same word or mark (after any \
spaces). Which one? Reply with that word or mark only, exactly as the text writes it."""
MARK_CHARS = 40


def says_yes(reply: str) -> bool:
    return reply.strip().strip("*\"'").lower().startswith("yes")


def line_mark_request(question: str) -> str:
    return LINE_MARK_REQUEST.format(question=question)


def mark_from_reply(reply: str) -> str | None:
    """The word or mark a helper named (quotes, backticks and a trailing period taken off), or
    None when the reply is empty or a sentence rather than a mark."""
    first = next((s.strip() for s in reply.splitlines() if s.strip() and "```" not in s), "")
    mark = first.strip("`'\"").strip()
    mark = mark[:-1] if len(mark) > 1 and mark.endswith(".") else mark
    return mark if mark and len(mark) <= MARK_CHARS and len(mark.split()) <= 3 else None


def lines_starting_with(mark: str, lines: list[str], top_level: bool = False) -> list[int]:
    """Indices of the lines that start with `mark` after their indentation (with none, for
    `top_level`), any case; a mark that ends in a letter or digit must end there ("class" is
    not "classify")."""
    end = r"(?!\w)" if re.search(r"\w$", mark) else ""
    rx = re.compile(("" if top_level else r"\s*") + re.escape(mark) + end, re.I)
    return [i for i, line in enumerate(lines) if rx.match(line)]


# "top-level functions", "at the top level of", "module-level constants": lines not nested in
# another (a method is an indented `def`), which in code and outlines means not indented.
_TOP_LEVEL = re.compile(r"\b(?:top|module)[- ]level\b", re.I)


def counts_top_level(question: str) -> bool:
    return bool(_TOP_LEVEL.search(question))
