"""The notes the REPL's helpers print or return in place of a result: grep's "(grep: no line
has ...)", headings' "(headings: no heading has ...)", judge_lines' "(judge_lines asked each
line: ...)", count_lines' "(count_lines: ...)", lines_sharing's "(lines_sharing: ...)",
"[sub_lm failed: ...]", "[sub_lm refused: ...]", fetch_url's "[fetch_url: ...]".
They are the tools talking, never a value the model's code computed: neither an answer nor
something to offer as one."""

from __future__ import annotations

import re

# A note opens with one of these (as printed by tools/repl_worker.py, nodes/, tools/web_search.py).
_OPENERS = re.compile(
    r"[(\[](?:grep|headings|judge_lines|count_lines|lines_sharing|sub_lm|fetch_url|web_search)[: ]"
)


def _closing(text: str, start: int) -> int:
    """The index just past the bracket that closes the one at `start` (or the text's end)."""
    pairs = {"(": ")", "[": "]"}
    opener, closer = text[start], pairs[text[start]]
    depth = 0
    for k in range(start, len(text)):
        if text[k] == opener:
            depth += 1
        elif text[k] == closer:
            depth -= 1
            if depth == 0:
                return k + 1
    return len(text)


def strip_tool_notes(text: str) -> str:
    """`text` without the tools' notes in it (brackets balanced, so a note that quotes a
    regex with parentheses goes whole)."""
    out, k = [], 0
    for m in _OPENERS.finditer(text):
        if m.start() < k:  # inside a note already cut
            continue
        out.append(text[k : m.start()])
        k = _closing(text, m.start())
    out.append(text[k:])
    return "".join(out)


def has_tool_note(text: str) -> bool:
    return _OPENERS.search(text) is not None


def starts_with_tool_note(text: str) -> bool:
    return _OPENERS.match(str(text).lstrip()) is not None


def is_tool_note(text: str) -> bool:
    """The text is only notes (and blanks, list brackets, zeros of an empty result)."""
    stripped = str(text).strip()
    return has_tool_note(stripped) and not strip_tool_notes(stripped).strip(" \n\t[](),'\"")
