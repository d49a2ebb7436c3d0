"""Answers given before the evidence was read.

- `gave_up`: a give-up ("NONE", "0", "not found") right after a cell whose search found nothing:
  one empty search is no proof that the answer does not exist.
- `guessed`: FINAL("a literal") in the same cell as code that printed output the model had not
  read yet, when that output does not contain the literal (a model copying a worked example
  whole, search, count and FINAL("12"), did exactly this).
- `placeholder`: FINAL("the answer"), the instructions' own placeholder copied as the answer,
  or the answer of their worked example ("7731"), when no output of the level printed it.
"""

from __future__ import annotations

import re

from rlm_research.nodes import prompts
from rlm_research.nodes.guards.base import (
    Evidence,
    Finding,
    Guard,
    answer_word,
    clipped,
    literal_finals,
    printed_before_final,
)
from rlm_research.nodes.plain_answer import printed_output
from rlm_research.tools.text_search import suggested_read

_NEGATIVE = re.compile(
    r"(none|null|nil|0|n/?a|unknown|\[\]|no\b.*|not (found|known|mentioned|present)\b.*"
    r"|cannot\b.*|there (is|are) no\b.*|)[.!]?",
    re.I | re.S,
)


def looks_negative(answer: str) -> bool:
    """'NONE', '0', 'No access code found.': answers that say the search came up empty."""
    return _NEGATIVE.fullmatch(str(answer).strip().strip("\"'")) is not None


GAVE_UP = """\
Not finished: you answered {answer!r} right after a search that found nothing{searched}, and \
an empty search does not show that the answer is "none" or 0. Print a few lines of `context` \
to see how it is written, then search with other words, or split it into chunks and ask \
sub_lm_batched. If you are still sure, write FINAL again."""


GAVE_UP_READ = """\
Not finished: you answered {answer!r} right after a search that found nothing{searched}, and \
an empty search does not show that the answer is "none" or 0. Its note lists the lines that \
hold the search's rarest words; read the first one's section:
```python
{read}
```
If you are still sure, write FINAL again."""


def check_gave_up(ev: Evidence) -> Finding | None:
    if ev.final is None or not ev.after_empty or not looks_negative(ev.final):
        return None
    last = ev.searches[-len(ev.new_searches) - 1] if len(ev.searches) > len(ev.new_searches) else {}
    searched = f" (grep({last['pattern']!r}) matched no line)" if last.get("hits") == 0 else ""
    why = "the answer says none right after a cell that printed nothing or an empty search"
    read = suggested_read(ev.earlier_output())
    if read:  # the note named lines that hold the search's rare words: read, do not give up
        return Finding(GAVE_UP_READ.format(answer=ev.final, searched=searched, read=read), why)
    return Finding(GAVE_UP.format(answer=ev.final, searched=searched), why)


GUESSED = """\
Not finished: you wrote FINAL({answer!r}) in the same cell as code whose output you had not \
read yet, and that output does not contain {answer!r}, so the answer was a guess. Read the \
output first:
{printed}"""


def check_guessed(ev: Evidence) -> Finding | None:
    if ev.final is None or ev.result is None or ev.final not in literal_finals(ev.code):
        return None
    printed = printed_before_final(ev.result, ev.final)
    if not printed or answer_word(ev.final).search(printed):
        return None
    why = f"FINAL of a literal next to output that does not contain it: {clipped(printed, 120)!r}"
    return Finding(GUESSED.format(answer=ev.final, printed=printed), why)


GAVE_UP_GUARD = Guard(
    name="gave_up",
    moment="answer",
    fires="the answer is a give-up (NONE, 0, not found) right after a search that found nothing",
    says="an empty search is no proof; look at how the text is written and search other words",
    check=check_gave_up,
)
GUESSED_GUARD = Guard(
    name="guessed",
    moment="answer",
    fires="FINAL of a literal in the same cell as code whose output does not contain it",
    says="the answer was written before its evidence was read; here is the output, read it",
    check=check_guessed,
    limit=3,  # a guess is never read output, however often it comes
)


# The system prompt writes FINAL("the answer"), each observation FINAL("..."): those
# placeholders and their kin, written as the answer.
_PLACEHOLDERS = {"the answer", "answer", "your answer", "the_answer", "<answer>"}
_ELLIPSES = {"...", "…"}
# The worked example's answers (FINAL("7731")): a small model that finds nothing copies them.
_EXAMPLE_ANSWERS = set(re.findall(r'FINAL\("([^"]+)"\)', prompts.SYSTEM)) - _PLACEHOLDERS

PLACEHOLDER = """\
Not finished: {answer!r} is {what} from the instructions, not an answer. Write the \
answer itself, the value the output above shows, inside FINAL(...)."""


def check_placeholder(ev: Evidence) -> Finding | None:
    words = (ev.final or "").strip().strip("\"'")
    example = words in _EXAMPLE_ANSWERS
    placeholder = words in _ELLIPSES or words.rstrip(".").strip().lower() in _PLACEHOLDERS
    if not (example or placeholder):
        return None
    # Only a literal FINAL("the answer"): a variable's value may be a title that says so.
    if ev.final is None or ev.final not in literal_finals(ev.code):
        return None
    # What code printed, not the loop's own notes (which quote the placeholder).
    printed = printed_before_final(ev.result, ev.final) + "\n"
    printed += printed_output([ev.earlier_output()])
    if words not in _ELLIPSES and answer_word(words).search(printed):
        return None  # a program printed those words: they may be the answer
    what = "the worked example's answer" if example else "the placeholder"
    why = f"{ev.final!r} is {what} of the instructions and no code of the level printed it"
    return Finding(PLACEHOLDER.format(answer=ev.final, what=what), why)


PLACEHOLDER_GUARD = Guard(
    name="placeholder",
    moment="answer",
    fires='the answer is the instructions\' placeholder ("the answer", "...") or their worked '
    'example\'s answer ("7731"), and no output of the level printed it',
    says="that is the placeholder (or the example's answer); write the value the output shows",
    check=check_placeholder,
    limit=2,
)


ANSWER_DICT = """\
Setting `answer` yourself does not finish. When you are sure, call FINAL(the_answer)."""
_ASSIGNS_ANSWER = re.compile(r"^\s*answer\s*=", re.M)


def check_answer_dict(ev: Evidence) -> Finding | None:
    if ev.final is not None or ev.result is None or not _ASSIGNS_ANSWER.search("\n".join(ev.code)):
        return None
    return Finding(ANSWER_DICT, "the cell assigned `answer` without FINAL")


ANSWER_DICT_GUARD = Guard(
    name="answer_dict",
    moment="note",
    fires="a cell assigns `answer = ...` and gives no answer (small models write it and stop)",
    says="setting `answer` does not finish; call FINAL",
    check=check_answer_dict,
    limit=100,
)
