"""Headings a count question names: for `stuck_advice`, and the `counted_headings` guard.

Asked how many releases a NEWS file describes, a 1.5B model searched the word "releases" three
times, found one line that used it, and answered 7: the releases are headings ("* Noteworthy
changes in release 9.1 ..."), which the first message had counted and the model never used.
When a stuck count question's counted noun is a word of a kind of heading that occurs more than
once, the advice names those kinds, with the code that counts the headings holding the word. The
same model also answered at once, with `1`, the one line of its search for "releases": an
answer that is none of the counts the outline gave for those headings is sent back once, with
the same code, when that number is how many lines its search for the noun matched (a question
scoped by a number, a quote or a path counts inside a part, and is left alone).
"""

from __future__ import annotations

import re

from rlm_research.nodes.guards.base import Evidence, Finding, Guard, only_number
from rlm_research.nodes.guards.counts import literal_terms

# "how many X ...", "number of X ...": the words up to a verb, a preposition or punctuation.
_COUNTED = re.compile(r"\b(?:how many|number of)\s+(.+)", re.I)
_ENDS_PHRASE_WORDS = """
do does did are is were was have has had of in on at for with from by that which who there
will would can could should under
"""
_ENDS_PHRASE = frozenset(_ENDS_PHRASE_WORDS.split())


def counted_noun(question: str) -> str | None:
    """The noun a count question counts: "How many releases does ..." -> "releases", "How many
    change items (lines ...) do ..." -> "items". None when the counted thing is quoted (a
    literal term: a search counts it) or there is no "how many"."""
    m = _COUNTED.search(question)
    if not m or m.group(1)[:1] in "'\"`[":
        return None
    words = []
    for token in m.group(1).split():
        if token[:1] in "([":  # "items (lines starting with ...)": the noun came before
            break
        word = re.sub(r"^\W+|\W+$", "", token)
        if not word or word.lower() in _ENDS_PHRASE or not re.fullmatch(r"[A-Za-z-]+", word):
            break
        words.append(word)
        if token[-1:] in "?(,.:;":
            break
    return words[-1] if words else None


def forms(word: str) -> set[str]:
    """A word and its singulars ("releases" -> release, releas; "classes" -> class)."""
    low = word.lower()
    out = {low}
    if low.endswith("s") and len(low) > 3:
        out.add(low[:-1])
    if low.endswith("es") and len(low) > 4:
        out.add(low[:-2])
    return out


def counted_heading_kinds(
    question: str, kinds: list[tuple[int, str]]
) -> tuple[str, str, list[tuple[int, str]]] | None:
    """(the noun, the heading's word for it, the kinds whose headings hold that word) when a
    count question's noun is a word of repeated headings; else None."""
    noun = counted_noun(question)
    if noun is None or len(noun) < 4:
        return None
    wanted = forms(noun)
    matched, word = [], ""
    for count, example in kinds:
        hit = next((w for w in re.findall(r"[A-Za-z]+", example) if w.lower() in wanted), None)
        if hit:
            matched.append((count, example))
            word = word or hit
    return (noun, word, matched) if matched else None


def listed_kinds(kinds: list[tuple[int, str]]) -> str:
    return ", ".join(f"{n} like {example[:80]!r}" for n, example in kinds[:3])


COUNT_HEADINGS_CODE = """```python
h = headings({word!r})
print(len(h), h[:3])
```"""
NOT_A_HEADING_COUNT = (
    """Not finished: {answer} is how many lines your search for {noun} found, and the question \
counts {noun}. The text has headings that name them: {kinds}. If those headings are what it \
counts, count them in code; if it counts something else, answer again with your count:
"""
    + COUNT_HEADINGS_CODE
)


def check_counted_answer(ev: Evidence) -> Finding | None:
    """A count of a whole text's things (no number, quote, path or code in the question: "in
    release 9.1" or "in tests/a.py" narrows it to a part) answered with exactly how many lines a
    search for the counted noun matched, when that is none of the text's counts (nor their
    total) of the kinds of heading the noun names, and the code has not counted headings."""
    number = only_number(ev.final) if ev.final is not None else None
    noun = counted_noun(ev.question)
    if number is None or not number.isdigit() or noun is None:
        return None
    if re.search(r"\d", ev.question) or literal_terms(ev.question):
        return None
    if any("headings(" in block for block in ev.code):
        return None
    searched_noun = (s for s in ev.searches if any(f in s["pattern"].lower() for f in forms(noun)))
    if not any(s["hits"] == int(number) for s in searched_noun):
        return None
    counted = counted_heading_kinds(ev.question, ev.heading_kinds())
    if counted is None:
        return None
    noun, word, kinds = counted
    if int(number) in {n for n, _ in kinds} | {sum(n for n, _ in kinds)}:
        return None
    message = NOT_A_HEADING_COUNT.format(
        noun=noun, kinds=listed_kinds(kinds), answer=number, word=word
    )
    why = f"{number} lines matched a search for {noun}; the text has {listed_kinds(kinds)}"
    return Finding(message, why)


COUNTED_HEADINGS_GUARD = Guard(
    name="counted_headings",
    moment="answer",
    fires="a count question with no number, quote or path in it, whose counted noun is a word "
    "of a kind of heading that occurs more than once, is answered with how many lines a search "
    "for that noun matched, a number none of those kinds' counts (nor their total), and the "
    "code has not called headings()",
    says="the outline's counts of those headings, and the headings() code that counts them",
    check=check_counted_answer,
)
