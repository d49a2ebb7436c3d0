"""`helper_sweep`: before a level ends stuck, helpers read the parts of the text most like the
question.

The paper's fallback for a question that searches do not settle is to hand the text to fresh
helpers piece by piece. A small root model that keeps repeating itself never writes that code,
and the level used to end stuck with most of its time unspent. Reading a whole 100,000-character
text that way costs the embedded model on two cores more than a run's budget, so the loop reads
only the parts around the lines that hold most of the question's terms (each weighted by how
few parts of the text hold it, a phrase the question quotes above all), as many as the time and
sub-calls left pay for. Each part opens with the headings it sits under: a helper that reads a
release's lines from their middle, or a class deep in a file, still sees which release or file
they belong to. It runs only after the request for the answer in words gave none (that request
answers many stuck runs; a sweep in its place lost them), and the answer is asked for again
after the replies. Never for a count question (helpers count badly; counting is code's work:
counted_parts.py), never twice at a level.
"""

from __future__ import annotations

import math
import re

from rlm_research.nodes.guards.base import Evidence, Finding, Guard, offered_code
from rlm_research.nodes.guards.counts import COUNT_QUESTION, literal_terms
from rlm_research.nodes.guards.helper_read import ASK, PASSAGE_CHARS
from rlm_research.tools.text_outline import Outline

# The most parts one sweep asks about: past this, the parts match the question less and a
# 1.5B helper shown one that does not say the answer often replies a value from it anyway.
MAX_PIECES = 4
# Seconds kept back for the model's answer after the replies.
ANSWER_SECONDS = 30.0
# Seconds a helper's short reply and its call's overhead take beyond reading its part (the
# embedded model on two cores read four 4,000-character parts in 48 and 55 s in all).
REPLY_SECONDS = 10.0
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
the question's words, best first ({spans}), each alone with the question:
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


def pieces(lines: list[str], limit: int = PASSAGE_CHARS) -> list[tuple[int, int]]:
    """The text cut into spans of whole lines (first, last; from 1) of at most `limit`
    characters (a longer line is a span of its own): the parts a term's rarity is counted in."""
    spans: list[tuple[int, int]] = []
    start, size = 1, 0
    for n, line in enumerate(lines, 1):
        if size + len(line) + 1 > limit and n > start:
            spans.append((start, n - 1))
            start, size = n, 0
        size += len(line) + 1
    if lines:
        spans.append((start, len(lines)))
    return spans


def term_weights(lines: list[str], question: str) -> dict[re.Pattern[str], float]:
    """The question's terms found in the text, each weighed by how few parts of it hold it (a
    term in every part says nothing): its words, and the phrases it quotes or spells as code
    (`validate`, 'foo bar', 2.5.3, key=value; matched whole, 3.4 not in 13.4), three times a
    word."""
    terms = [_word_term(w) for w in question_words(question)]
    terms += [_phrase_term(t) for t in literal_terms(question)]
    texts = ["\n".join(lines[a - 1 : b]) for a, b in pieces(lines)]
    weight: dict[re.Pattern[str], float] = {}
    for term, factor in terms:
        n = sum(1 for text in texts if term.search(text))
        if n and (n < len(texts) or len(texts) == 1):
            weight[term] = factor * (math.log(len(texts) / n) if len(texts) > 1 else 1.0)
    return weight


def reading_spans(
    lines: list[str], headings: set[int], question: str, most: int
) -> list[tuple[int, int]]:
    """Up to `most` spans to hand to helpers, around the lines that hold most of the question's
    terms together (`class ScannerError(...)` for "the class ScannerError"), best first; a line
    inside a span already chosen, or whose span holds an earlier one's line or is half inside
    an earlier span, is not chosen, nor one that scores below half the best line (a helper
    shown a part that does not say the answer often replies a value from it anyway)."""
    weight = term_weights(lines, question)
    scored = []
    for n, line in enumerate(lines, 1):
        score = sum(v for term, v in weight.items() if term.search(line))
        if score > 0:
            scored.append((score, n))
    spans: list[tuple[int, int]] = []
    centres: list[int] = []
    ranked = sorted(scored, key=lambda s: (-s[0], s[1]))
    for score, n in ranked:
        if len(spans) >= most or 2 * score < ranked[0][0]:  # half as like it as the best: noise
            break
        if any(a <= n <= b for a, b in spans):
            continue
        a, b = window(n, lines, headings)
        # Not a window around an earlier one's line (cut off from that line's entry, it
        # misleads), nor one mostly inside an earlier window.
        if any(a <= c <= b for c in centres):
            continue
        if all(2 * _shared((a, b), span) <= b - a + 1 for span in spans):
            spans.append((a, b))
            centres.append(n)
    return spans


def _shared(one: tuple[int, int], other: tuple[int, int]) -> int:
    """How many lines two spans have in common."""
    return max(0, min(one[1], other[1]) - max(one[0], other[0]) + 1)


def window(
    n: int, lines: list[str], headings: set[int], limit: int = PASSAGE_CHARS
) -> tuple[int, int]:
    """The span a helper reads for line `n`: from the heading above it when that is within half
    of `limit` characters (the entry or file it belongs to, whole), else from a quarter of
    `limit` above it; on down to `limit` characters, and further up if the text ends first."""
    start, size = n, len(lines[n - 1]) + 1
    while start > 1 and start not in headings and size < limit // 2:
        start -= 1
        size += len(lines[start - 1]) + 1
    if start not in headings:
        start, size = n, len(lines[n - 1]) + 1
        while start > 1 and size < limit // 4:
            start -= 1
            size += len(lines[start - 1]) + 1
    end = start
    size = len(lines[start - 1]) + 1
    while end < len(lines) and size + len(lines[end]) + 1 <= limit:
        end += 1
        size += len(lines[end - 1]) + 1
    while end == len(lines) and start > 1 and size + len(lines[start - 2]) + 1 <= limit:
        start -= 1
        size += len(lines[start - 1]) + 1
    return start, max(end, n)


def _word_term(word: str) -> tuple[re.Pattern[str], float]:
    """A question's word as written in the text: a whole word, in any case."""
    return re.compile(rf"(?<![a-z0-9_]){re.escape(word)}(?![a-z0-9_])", re.I), 1.0


def _phrase_term(phrase: str) -> tuple[re.Pattern[str], float]:
    """A quoted or code-like phrase, not inside a longer token (3.4 not in 13.4 or 3.45)."""
    return re.compile(rf"(?<![\w.]){re.escape(phrase)}(?![\w]|\.\w)", re.I), 3.0


def affordable(ev: Evidence) -> int:
    """How many pieces the sub-calls and seconds left pay for, at the models' measured reading
    speed (or a reply's time alone for a model that does not report it)."""
    reading = (PASSAGE_CHARS / 4) / ev.reading_speed if ev.reading_speed else 0.0
    spare = min(ev.seconds_left - ANSWER_SECONDS, 1e9)  # no deadline: the other limits hold
    by_time = int(spare // (reading + REPLY_SECONDS))
    return max(0, min(MAX_PIECES, ev.sub_calls_left, by_time))


def heading_path(start: int, lines: list[str], outline: Outline) -> str:
    """The headings a span starting at line `start` sits under, outermost first, as the
    helper's first line: "(under '=== attr/_make.py ===' > '# helpers')"; "" for none."""
    above = outline.path(start - 1, include_self=False)
    return "(under " + " > ".join(repr(lines[i].strip()) for i in above) + ")\n" if above else ""


def check_sweep(ev: Evidence) -> Finding | None:
    if COUNT_QUESTION.search(ev.question):
        return None
    n = affordable(ev)
    lines = ev.text_lines() if n else []
    if not lines:
        return None
    outline = Outline(lines)
    spans = reading_spans(lines, {i + 1 for i in outline.at}, ev.question, n)  # best first
    if not spans:
        return None
    under = [heading_path(a, lines, outline) for a, _ in spans]
    code = CODE.format(spans=spans, under=under, question=ev.question, ask=ASK, limit=PASSAGE_CHARS)
    listed = ", ".join(f"lines {a}-{b}" for a, b in spans)
    message = SWEEP.format(n=len(spans), spans=listed, code=code)
    why = f"the level would end stuck; helpers read {listed}"
    return Finding(message, why, run=offered_code(message))


SWEEP_GUARD = Guard(
    name="helper_sweep",
    moment="last",
    fires="the level would end stuck (the model repeated itself after the notice) and the "
    "request for its answer in words gave none, on a question that is not a count, with "
    "sub-calls and time left to read at least one part",
    says="nothing to the model first: the loop has one helper per piece read the parts of the "
    "text that hold most of the question's rarer words, prints their replies, and asks for the "
    "answer",
    check=check_sweep,
)
