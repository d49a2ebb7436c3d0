"""For the stuck hint: of the lines the last search matched (or else the cell printed), the one
that shares the most words with the question, and what it says right after one of them.

A 1.5B model that searched a firm's name got nine lines back, one of them "... Its headquarters
are in Omaoma", and searched the firm again four times instead of the town: the line that leads
on was there but lost among the others. Pointing at the line with the most of the question's
own words (not counting the words it searched for, which every line has) is plain lexical
overlap, no reading of the question for the model; the model still decides what to do with it.
What follows a question's word in that line is the link to follow ("headquarters are in Omaoma":
a name not searched yet) or the value asked for ("founded in 1678"): a link named but not
shown as code was not followed, and a line quoted without its value was not answered from.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rlm_research.nodes.guards.base import clipped
from rlm_research.tools.text_search import HEADINGS_SHOWN, grep_pattern

# Words every question has; they say nothing about which line matters.
_COMMON_WORDS = """
what which where when whom whose there their them they this that these those with from were have
does many much answer number about into than then only also been being each write reply give
"""
_COMMON = frozenset(_COMMON_WORDS.split())
_WORD = re.compile(r"[a-z]{4,}")
# A printed list of lines: "['line one', 'line two']", or of grep's hits, each after its line
# number: "[12: 'line one', 40: 'line two']"; split it back into lines.
_SEPARATOR = re.compile(
    r"""\n|['"],\s*(?:\d+:\s*)?['"]|^\d+\s*\[(?:\d+:\s*)?['"]|\[(?:\d+:\s*)?['"]|['"]\]"""
)
_NUMBERED = re.compile(r"""^\d+:\s*['"]""")
_HIT = re.compile(r"""(?:^|[\[,])\s*\d+:\s*['"]""")


def has_printed_hits(printed: str) -> bool:
    """Whether the output holds grep hits as printed (`1 [181: 'the line']`): search results."""
    return _HIT.search(printed) is not None


def headings_printed_with(line: str, printed: str) -> str:
    """The headings grep printed after `line`'s hit ("3: 'Chapter 2' > 9: '2.1 Setup'"), or ""."""
    at = printed.find(line[:200])
    if at < 0:
        return ""
    shown = HEADINGS_SHOWN.search(printed, at + len(line[:200]))
    if shown is None or shown.start() > at + len(line) + 3:  # the hit's closing quote, then it
        return ""
    return shown.group(0)[len(" (in ") : -1]


def printed_lines(printed: str) -> list[str]:
    """A cell's output split into lines, a printed list of strings into its items."""
    printed = HEADINGS_SHOWN.sub("", printed)
    parts = (_NUMBERED.sub("", part.strip()).strip("'\"[]") for part in _SEPARATOR.split(printed))
    return [part for part in parts if part]


def closest_line(
    lines: list[str],
    question: str,
    searched: list[str],
    subject: str = "",
    under: Callable[[str], str] = lambda line: "",
) -> str | None:
    """The line that, with the headings it was printed under (`under`), names the most of the
    question's code names not searched for (`after_log`, `yaml/constructor.py`: a hit inside
    the function the question names), then has the most distinct words of the question that
    were not searched for (at least one, or one name: a person's line shares only "grew" with
    "...where X grew up?"). A tie goes to the line that names `subject` (the last search)
    nearest its start, the line about it; a tie that remains gives None."""
    wanted = question_words(question, searched)
    names = [grep_pattern(re.escape(n)) for n in question_names(question, searched)]
    if not wanted and not names:
        return None
    scored = []
    for line in lines:
        at = line.lower().find(subject.lower()) if subject else -1
        overlap = len(wanted & set(_WORD.findall(line.lower())))
        where = line + " " + under(line) if names else ""
        named = sum(1 for rx in names if rx.search(where))
        scored.append((named, overlap, -(at if at >= 0 else len(line)), line))
    scored.sort(key=lambda s: (-s[0], -s[1], -s[2]))
    if not scored or scored[0][0] + scored[0][1] < 1:
        return None
    if len(scored) > 1 and scored[1][:3] == scored[0][:3]:
        return None
    return clipped(scored[0][3])


# A name in code: a word joined to another by "_", ".", "/" ("after_log", "yaml/scanner.py").
_CODE_NAME = re.compile(r"(?<![\w./-])[A-Za-z_]\w*(?:[_./]\w+)+")


def question_names(question: str, searched: list[str]) -> list[str]:
    """The question's code names that no search looked for (those every hit has)."""
    taken = " ".join(searched).lower()
    found = (n.rstrip("._/") for n in _CODE_NAME.findall(question))
    return [n for n in dict.fromkeys(found) if len(n) >= 4 and n.lower() not in taken]


def question_words(question: str, searched: list[str]) -> set[str]:
    taken = {w for p in searched for w in _WORD.findall(p.lower())}
    return set(_WORD.findall(question.lower())) - _COMMON - taken


# After a question's word, within a few words: a name (capitalised, not opening a sentence)
# or a number.
_AFTER = re.compile(r"((?:\s+[a-z]+){0,3}?)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*|\d[\d,.]*\d|\d)")


def next_link(line: str, question: str, searched: list[str]) -> tuple[str, str] | None:
    """("name", "Omaoma") when a question's word is followed by a name neither in the question
    nor searched yet; ("value", "founded in 1678") when it is followed by a number. The word
    that comes last in the question decides."""
    known = (question + " " + " ".join(searched)).lower()
    # The question's later words first: a chained question is nested ("the year the town was
    # founded where the headquarters of X's employer are"), its last link asked for last, and
    # the line at hand is the next link to resolve, the inner one.
    order = question.lower()
    for word in sorted(question_words(question, searched), key=order.rfind, reverse=True):
        start = line.lower().find(word)
        if start < 0:
            continue
        m = _AFTER.match(line, start + len(word))
        if m is None:
            continue
        found = m.group(2)
        if found[0].isdigit():
            return "value", line[start : m.end()].strip()
        if not any(part.lower() in known for part in found.split()):
            return "name", found
    return None


def closest_with_link(
    lines: list[str],
    question: str,
    searched: list[str],
    subject: str,
    under: Callable[[str], str] = lambda line: "",
) -> tuple[str, tuple[str, str] | None] | None:
    """The line most like the question (see `closest_line`) and the link it gives, if any."""
    line = closest_line(lines, question, searched, subject, under)
    if not line:
        return None
    return line, next_link(line, question, searched)
