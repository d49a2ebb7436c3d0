"""Finding the code in a model's reply."""

from __future__ import annotations

import re

# A fence, its tag, and its body up to the closing fence or the end of the reply: an unclosed
# fence (a reply cut off at max tokens) still runs.
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:\n?```|\Z)", re.S)
_RUNNABLE_TAGS = {"", "repl", "python", "py", "python3", "ipython", "pycon"}
_FINAL_LINE = re.compile(r"^\s*FINAL(_VAR)?\((.*)\)\s*$", re.M)


def extract_code(reply: str) -> list[str]:
    """The runnable code blocks in reply order: fences tagged repl/python or untagged."""
    blocks = []
    for tag, body in _FENCE.findall(reply):
        if tag.lower() in _RUNNABLE_TAGS and body.strip():
            blocks.append(body.rstrip())
    return blocks


def final_outside_code(reply: str) -> tuple[str, str] | None:
    """`FINAL(text)` / `FINAL_VAR(name)` written as plain text: ("text", answer) / ("var", name)."""
    match = _FINAL_LINE.search(reply)
    if not match:
        return None
    inner = match.group(2).strip()
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        inner = inner[1:-1]
    return ("var", inner) if match.group(1) else ("text", inner)


def strip_final(text: str) -> str:
    """A closing reply may still wrap its answer in FINAL(...); unwrap it."""
    found = final_outside_code(text)
    if found and found[0] == "text":
        return found[1]
    return text.strip()
