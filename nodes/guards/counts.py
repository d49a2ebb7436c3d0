"""Guards on numbers given as the answer.

- `count_check`: a count that is just how many lines a `grep` matched, when the question
  qualifies which lines count: asked how many of a product's reviews were favourable, a 1.5B
  model grepped the product and answered the number of its reviews, in six runs of six. It does
  not fire when the search was for the question's own literal term (a quoted label, `key=value`):
  then the matching lines are the counted lines, and checking each one with a helper cost 333
  helper calls to confirm a right answer. Nor when the search was over a part of the text.
- `unprinted_number`: a number written as the answer that no code of the level printed: the
  model printed seven per-section counts and answered a number that is not their sum.
"""

from __future__ import annotations

import re
from typing import Any

from rlm_research.nodes.guards.base import (
    Evidence,
    Finding,
    Guard,
    literal_finals,
    numbers_in,
    only_number,
    printed_before_final,
)
from rlm_research.tools.text_search import without_line_numbers

COUNT_QUESTION = re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b", re.I)
# Quoted terms, and tokens that mix letters or digits with code characters (label=ERROR, E-42).
_QUOTED = re.compile(r"""'([^']{1,80})'|"([^"]{1,80})"|`([^`]{1,80})`""")
_CODE_TOKEN = re.compile(r"\b\w+(?:[=_:/#.-]+\w+)+\b")


def quoted_terms(question: str) -> list[str]:
    """The terms a question quotes ('...', "...", `...`)."""
    quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(question)]
    return [t.strip() for t in quoted if t.strip()]


def literal_terms(question: str) -> list[str]:
    """The terms a question spells out exactly: quoted ones and code-like tokens."""
    return quoted_terms(question) + [t for t in _CODE_TOKEN.findall(question) if t.strip()]


def searched_literal_term(pattern: str, question: str) -> bool:
    """The search was for one of the question's own literal terms (it contains one as written)."""
    return any(term.lower() in pattern.lower() for term in literal_terms(question))


def matched_count(final: str, searches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The grep (of this level's recent ones, newest first) whose number of matching lines is
    the answer, when the answer is a count: its only number. One match is a lookup, not a count."""
    number = only_number(final)
    value = int(number) if number and number.isdigit() else 0
    if value < 2:
        return None
    return next((s for s in reversed(searches) if s["hits"] == value), None)


COUNT_SENT_BACK = """\
Not finished: {hits} is how many lines grep({pattern!r}) found, every line with those words, \
and the question may count only some of them. This code lets helpers judge each line and \
answers with how many count:
```python
lines = grep({pattern!r})
kept = judge_lines(lines, {question!r})
print(len(kept), "of", len(lines), "lines count")
FINAL(len(kept))
```"""


# What one helper reads to judge one line, besides the question, in characters: the line and
# the end of its prompt (the helpers' shared start comes from llama.cpp's prefix cache). With
# 3.2 characters a token (Qwen's tokenizer on logs and code) and 34 tokens a second, 2.4 s a
# line, as measured: development count_implied seeds judged 17 to 35 lines in 46 to 84 s.
JUDGE_PROMPT_CHARS = 150
CHARS_PER_TOKEN = 3.2


def judging_fits_time(lines: int, ev: Evidence) -> bool:
    """Whether helpers can judge `lines` lines one by one in the time left, read at the speed
    the models read so far, with half the time left to spare for the turns around it. On two
    cores the embedded model reads about 35 tokens a second: a run sent back to judge 146 lines
    made 124 calls and ran out of its 5 minutes with no answer but its first."""
    if not ev.reading_speed:
        return True  # a model that does not say its speed: the sub-call budget decides
    tokens = lines * (JUDGE_PROMPT_CHARS + len(ev.question)) / CHARS_PER_TOKEN
    return tokens / ev.reading_speed < ev.seconds_left / 2


def check_count(ev: Evidence) -> Finding | None:
    if ev.final is None or not COUNT_QUESTION.search(ev.question):
        return None
    counted = matched_count(ev.final, ev.searches)
    if counted is None or searched_literal_term(counted["pattern"], ev.question):
        return None
    # A search over a part of the text (a section) already narrowed what counts, and the code
    # offered here could only judge the lines of the whole `context`: another set of lines.
    if counted.get("over", "context") != "context":
        return None
    # Only when judging each line (and writing the per-line question) fits the sub-call budget,
    # and, for a model that says how fast it reads, the time left.
    if counted["hits"] + 1 > ev.sub_calls_left or not judging_fits_time(counted["hits"], ev):
        return None
    why = f"the answer {counted['hits']} is how many lines grep({counted['pattern']!r}) matched"
    message = COUNT_SENT_BACK.format(
        hits=counted["hits"], pattern=counted["pattern"], question=ev.question
    )
    return Finding(message, why)


UNPRINTED_SENT_BACK = """\
Not finished: {number} is not a number any of your code printed, so it was worked out in the \
head, and small sums and counts done that way are often wrong. Count or add in code, print the \
result, then answer with it, for example:
```python
total = sum(values)  # or len(lines), or a count in a loop
print(total)
```"""


def shown_numbers(text: str) -> set[str]:
    """The numbers in what the model was shown, leaving out the lines every observation ends
    with (the variables' sizes, the question) and line numbers."""
    kept = (x for x in text.splitlines() if not x.startswith(("Variables: ", "Question: ")))
    return numbers_in(without_line_numbers("\n".join(kept)))


def check_unprinted(ev: Evidence) -> Finding | None:
    if ev.final is None or ev.final not in literal_finals(ev.code):
        return None  # FINAL(len(x)), FINAL_VAR, answer dicts: computed by code
    number = only_number(ev.final)
    if number is None:
        return None
    # Tool notes stay: grep's note about an empty search quotes lines of the text.
    shown = shown_numbers(printed_before_final(ev.result, ev.final) + "\n" + ev.earlier_output())
    if not shown:
        return None  # nothing numeric printed: no evidence to doubt it by (a closed-book answer)
    # How many lines a search matched is counted by code (the printed list shows them).
    counted = {str(s["hits"]) for s in ev.searches}
    if number in shown | counted | numbers_in(ev.question):
        return None
    why = f"{number} is not among the numbers the level's code printed"
    return Finding(UNPRINTED_SENT_BACK.format(number=number), why)


COUNT_GUARD = Guard(
    name="count_check",
    moment="answer",
    fires="a count question is answered with exactly how many lines a grep matched, the grep "
    "was not for a literal term of the question, and judging each line fits the sub-call "
    "budget and, at the speed the model reads, half the time left",
    says="matching lines may not all count; here is code that has helpers judge each line",
    check=check_count,
)
UNPRINTED_GUARD = Guard(
    name="unprinted_number",
    moment="answer",
    fires="FINAL of a literal number when the level's outputs hold numbers but not this one, "
    "and it is neither a search's number of matching lines nor in the question",
    says="that number was worked out in the head; compute it in code and print it",
    check=check_unprinted,
)
