"""Headings a count question names, for `stuck_advice`.

Asked how many releases a NEWS file describes, a 1.5B model searched the word "releases" three
times, found one line that used it, and answered 7: the releases are headings ("* Noteworthy
changes in release 9.1 ..."), which the first message had counted and the model never used.
When a stuck count question's counted noun is a word of a kind of heading that occurs more than
once, the advice names those kinds, with the code that counts the headings holding the word.
"""

from __future__ import annotations

import re

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
