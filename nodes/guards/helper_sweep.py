"""`helper_sweep`: before a level ends stuck, helpers read the parts of the text most like the
question.

The paper's fallback for a question that searches do not settle is to hand the text to fresh
helpers piece by piece. A small root model that keeps repeating itself never writes that code,
and the level used to end stuck with most of its time unspent. Reading a whole 100,000-character
text piece by piece costs the embedded model on two cores about twelve minutes, more than a
run's budget, so the loop reads only the pieces that hold most of the question's rarer words
(each word weighted by how few pieces hold it, a phrase the question quotes above all), as many
as the time and sub-calls left pay for. Each piece starts with the heading it sits under: a
helper that reads a release's lines from their middle still sees which release they belong to.
The replies are printed and the model is asked for its answer. Never for a count question
(helpers count badly; counting is code's work: counted_parts.py), never twice at a level.
"""

from __future__ import annotations

import math
import re

from rlm_research.nodes.guards.base import Evidence, Finding, Guard, offered_code
from rlm_research.nodes.guards.counts import COUNT_QUESTION, literal_terms
from rlm_research.nodes.guards.helper_read import ASK, PASSAGE_CHARS, REPLY_SECONDS

# The most pieces one sweep asks about: past this, the best-matching pieces stop being better.
MAX_PIECES = 6
# Seconds kept back for the model's answer after the replies.
ANSWER_SECONDS = 30.0
# Words of questions that say nothing about where the answer is.
_COMMON_WORDS = """
the and for are was were what which where when who whom whose how does did has have had with
from into that this these those there their they them its than then also been being each any
all one two text file line lines answer question name named give tell say says about under over
after before between called value
"""
_COMMON = frozenset(_COMMON_WORDS.split())
_WORD = re.compile(r"[a-z0-9_]+")

SWEEP = """Before the search stops, helpers read the {n} parts of the text that hold most of \
the question's words ({spans}), each alone with the question:
```python
{code}
```"""
CODE = """rows = context.splitlines()
spans = {spans!r}
under = {under!r}
ask = {question!r} + "\\n" + {ask!r}
parts = [(u + "\\n".join(rows[a - 1:b]))[:{limit}] for (a, b), u in zip(spans, under)]
replies = sub_lm_batched(["Text:\\n" + p + "\\n\\nQuestion: " + ask for p in parts])
for (a, b), reply in zip(spans, replies):
    print(f"lines {{a}}-{{b}}: {{reply}}")"""


def question_words(question: str) -> list[str]:
    """The question's words that may be written in the text: not its common words, not short."""
    words = _WORD.findall(question.lower())
    return list(dict.fromkeys(w for w in words if len(w) >= 3 and w not in _COMMON))


def pieces(
    lines: list[str], headings: set[int], limit: int = PASSAGE_CHARS
) -> list[tuple[int, int]]:
    """The text cut into spans of whole lines (first, last; from 1) of at most `limit`
    characters (a longer line is a span of its own), a new one started at a heading once a span
    is half full."""
    spans: list[tuple[int, int]] = []
    start, size = 1, 0
    for n, line in enumerate(lines, 1):
        full = size + len(line) + 1 > limit or (n in headings and size > limit // 2)
        if full and n > start:
            spans.append((start, n - 1))
            start, size = n, 0
        size += len(line) + 1
    if lines:
        spans.append((start, len(lines)))
    return spans


def ranked(
    spans: list[tuple[int, int]], lines: list[str], question: str
) -> list[tuple[float, tuple[int, int]]]:
    """The spans that hold any of the question's words, best first: each word scores by how few
    spans hold it (a word in every span says nothing); a phrase the question quotes or spells as
    code (`validate`, 'foo bar', key=value) found in a span scores above all words together."""
    words, literals = question_words(question), [t.lower() for t in literal_terms(question)]
    texts = ["\n".join(lines[a - 1 : b]).lower() for a, b in spans]
    held = [set(_WORD.findall(t)) for t in texts]
    many = len(spans)
    weight = {w: math.log(many / n) if many > 1 else 1.0 for w in words if (n := _in(w, held))}
    top = sum(weight.values()) or 1.0
    scored = []
    for span, text, found in zip(spans, texts, held, strict=True):
        score = sum(v for w, v in weight.items() if w in found)
        score += top * sum(1 for t in literals if t in text)
        if score > 0:
            scored.append((score, span))
    return sorted(scored, key=lambda s: -s[0])


def _in(word: str, held: list[set[str]]) -> int:
    return sum(word in words for words in held)


def affordable(ev: Evidence) -> int:
    """How many pieces the sub-calls and seconds left pay for, at the models' measured reading
    speed (or a reply's time alone for a model that does not report it)."""
    reading = (PASSAGE_CHARS / 4) / ev.reading_speed if ev.reading_speed else 0.0
    spare = min(ev.seconds_left - ANSWER_SECONDS, 1e9)  # no deadline: the other limits hold
    by_time = int(spare // (reading + REPLY_SECONDS))
    return max(0, min(MAX_PIECES, ev.sub_calls_left, by_time))


def heading_above(line: int, headings: dict[int, str]) -> str:
    """The nearest heading at or above `line`, or ""."""
    above = [n for n in headings if n <= line]
    return headings[max(above)].strip() if above else ""


def check_sweep(ev: Evidence) -> Finding | None:
    if COUNT_QUESTION.search(ev.question) or any(ASK in code for code in ev.loop_ran):
        return None
    n = affordable(ev)
    lines = ev.text_lines() if n else []
    if not lines:
        return None
    headings = ev.headings_at()
    best = ranked(pieces(lines, set(headings)), lines, ev.question)[:n]
    if not best:
        return None
    spans = sorted(span for _, span in best)
    under = []
    for a, _ in spans:
        heading = heading_above(a, headings)
        under.append(f"(under {heading!r})\n" if heading and a not in headings else "")
    code = CODE.format(spans=spans, under=under, question=ev.question, ask=ASK, limit=PASSAGE_CHARS)
    listed = ", ".join(f"lines {a}-{b}" for a, b in spans)
    message = SWEEP.format(n=len(spans), spans=listed, code=code)
    why = f"the level would end stuck; helpers read {listed}"
    return Finding(message, why, run=offered_code(message))


SWEEP_GUARD = Guard(
    name="helper_sweep",
    moment="last",
    fires="the level would end stuck (the model repeated itself after the notice), on a "
    "question that is not a count, with sub-calls and time left to read at least one piece",
    says="nothing to the model first: the loop has one helper per piece read the parts of the "
    "text that hold most of the question's rarer words, prints their replies, and asks for the "
    "answer",
    check=check_sweep,
)
