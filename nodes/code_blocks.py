"""Finding the code in a model's reply.

A fence opens at the start of a line (indent allowed) with three or more backticks or tildes and
closes with a line of the same character, at least as long; an unclosed fence (a reply cut off at
max tokens) runs to the end. Fences tagged `python`/`repl` or untagged run; a fence with another
tag (say `markdown`) is searched for runnable fences inside it. Bodies are dedented, so a fence
indented in a list item still runs.
"""

from __future__ import annotations

import re
import textwrap

_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*$")
_RUNNABLE_TAGS = {"", "repl", "python", "py", "python3", "ipython", "pycon"}
_FINAL_START = re.compile(r"^[ \t]*FINAL(_VAR)?\(", re.M)
# Lines that start the REPL's side of the conversation, as the prompt's example writes it.
INVENTED_TURN = re.compile(r"^[ \t]*(Output|You|Variables):", re.M)


def _fences(reply: str) -> list[tuple[str, str, int, int]]:
    """(tag, body, start line, end line) of each top-level fence."""
    lines = reply.split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = textwrap.dedent("\n".join(lines[i + 1 : j]))
        out.append((tag, body, i, j))
        i = j + 1
    return out


def cut_invented_turns(reply: str) -> str:
    """The reply up to where, after a closed code fence, it starts writing the REPL's output
    itself ("Output: ...") and more turns after it. Small models continue the worked example:
    they invent the output, then write code that trusts it (a 1.5B model wrote 19 blocks and 19
    made-up outputs in one reply); only what comes before the invention was meant to run."""
    lines = reply.split("\n")
    fences = _fences(reply)
    for tag, body, _start, end in fences:
        if tag not in _RUNNABLE_TAGS and not extract_code(body):
            continue
        for k in range(end + 1, len(lines)):
            if any(start <= k <= e for _t, _b, start, e in fences):
                continue
            if INVENTED_TURN.match(lines[k]):
                return "\n".join(lines[:k]).rstrip()
        break
    return reply


def extract_code(reply: str) -> list[str]:
    """The runnable code blocks in reply order."""
    blocks = []
    for tag, body, _start, _end in _fences(reply):
        if tag in _RUNNABLE_TAGS:
            if body.strip():
                blocks.append(body.rstrip())
        else:
            blocks += extract_code(body)
    return blocks


def _outside_fences(reply: str) -> str:
    lines = reply.split("\n")
    for _tag, _body, start, end in reversed(_fences(reply)):
        del lines[start : end + 1]
    return "\n".join(lines)


def final_outside_code(reply: str) -> tuple[str, str] | None:
    """`FINAL(text)` / `FINAL_VAR(name)` written as prose: ("text", answer) / ("var", name).
    The text may run over several lines, up to the parenthesis that closes it."""
    prose = _outside_fences(reply)
    match = _FINAL_START.search(prose)
    if not match:
        return None
    depth, end = 1, None
    for k in range(match.end(), len(prose)):
        depth += {"(": 1, ")": -1}.get(prose[k], 0)
        if depth == 0:
            end = k
            break
    inner = prose[match.end() : end].strip() if end is not None else ""
    if not inner:
        return None
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        inner = inner[1:-1]
    return ("var", inner) if match.group(1) else ("text", inner)


def strip_final(text: str) -> str:
    """A closing reply may still wrap its answer in FINAL(...); unwrap it."""
    found = final_outside_code(text)
    if found and found[0] == "text":
        return found[1]
    return text.strip()
