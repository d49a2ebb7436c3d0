"""What the REPL's two counting helpers ask a helper model, and how they read its reply.

`judge_lines(lines, question)` asks one helper per line (a yes/no question one helper wrote).
`count_lines(question, text)` asks one helper for a regular expression that matches the lines
the question counts, shown a few lines of the text so it sees how they are written (indented
bullets, `class` at column 0), and then code counts: one short helper call however long the
text, where judging each line of a 700-line file would take 700.

Standard library only: the REPL worker imports it (bound beside it in the sandbox).
"""

from __future__ import annotations

import re

PER_LINE_QUESTION = (
    "A question counts lines of a text. Write the yes/no question to ask about ONE line to "
    'decide whether it is counted. Example: for "How many orders came late?" write "Did this '
    'order come late?". Reply with the new question only.\nQuestion: '
)

LINE_PATTERN_REQUEST = """\
A question counts lines of a text. Write one Python regular expression that matches each \
line the question counts and no other line (it is searched in each line, in any case).
Question: {question}
Some lines of the text, as written:
{sample}
Reply with the regular expression only."""

SAMPLE_LINES = 16
SAMPLE_WIDTH = 100


def says_yes(reply: str) -> bool:
    return reply.strip().strip("*\"'").lower().startswith("yes")


def line_pattern_request(question: str, lines: list[str]) -> str:
    """The prompt for `count_lines`: the question and the text's first non-blank lines."""
    sample = [line[:SAMPLE_WIDTH] for line in lines if line.strip()][:SAMPLE_LINES]
    return LINE_PATTERN_REQUEST.format(question=question, sample="\n".join(sample))


def pattern_from_reply(reply: str) -> str | None:
    """The regular expression in a helper's reply (fences, `r'...'` and quotes taken off), or
    None when the reply holds none that compiles."""
    fenced = re.search(r"```[\w]*\n?(.*?)```", reply, re.S)
    text = fenced.group(1) if fenced else reply
    for line in (s.strip() for s in text.splitlines()):
        if not line:
            continue
        line = line.strip("`").strip()
        quoted = re.fullmatch(r"[rR]?(['\"])(.+)\1", line)
        if quoted:
            line = quoted.group(2)
        try:
            re.compile(line)
        except re.error:
            return None
        return line or None
    return None
