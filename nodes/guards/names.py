"""`unsearched_name`: searches that never looked for the name the question is about.

Asked about "Fenbex Mibritek", a 1.5B model searched "Fendar", a name from the first characters
of the text it was shown, and answered from what that found (3 of 12 multi-hop runs). Said once
per level: as a note right after such a search, or as a send-back of an answer built on one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rlm_research.nodes.guards.base import SEARCH_CODE, Evidence, Finding, Guard, cell_stdout
from rlm_research.nodes.guards.counts import quoted_terms
from rlm_research.tools.text_search import grep_pattern

# A whole token that starts with a capital and a small letter ("Fenbex", "GitHub", "McKay"),
# and the tokens of that kind right after it. Whole tokens: "GitHub" is not the name "Git".
_NAME_RUN = re.compile(r"\b[A-Z][a-z][A-Za-z0-9]+\b(?:\s+[A-Z][a-z][A-Za-z0-9]+\b)*")
# Capitalised words that name no one a text is about: question words, months, days.
_NOT_NAME_WORDS = """
What Which Who Whom Whose Where When Why How Does Did Is Are Was Were List Name Give
January February March April May June July August September October November December
Monday Tuesday Wednesday Thursday Friday Saturday Sunday
"""
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())
# A file or path the question names ("yaml/constructor.py", "NEWS.md", "src/a/b"): in a text
# joined from several files it heads its own part (`=== yaml/constructor.py ===`). A path has
# a known file extension or two slashes, so "and/or", "TCP/IP" and "e.g." are none.
_EXTENSIONS = (
    "py|pyi|c|h|cc|cpp|hpp|js|ts|go|rs|java|rb|pl|md|txt|rst|toml|json|ya?ml|cfg|ini|sh|html|css"
    "|xml|pdf"
)
_PATH = re.compile(
    rf"(?<![\w/.-])(?:(?:[\w-]+/)*[A-Za-z_][\w.-]*\.(?:{_EXTENSIONS})|[\w.-]+(?:/[\w.-]+){{2,}})"
    r"(?![\w/-])"
)


def question_names(question: str) -> list[str]:
    """The names a question is about: runs of capitalised tokens, not counting a word that opens
    a sentence, a line or a quote ("What", "Which"), nor months and days. "...where Fenbex
    Mibritek grew up?" -> ["Fenbex Mibritek"]; codes and labels in capitals ("AND", "P-1") are
    not names here. A file or path the question names is one too ("yaml/constructor.py")."""
    names = [m.group() for m in _PATH.finditer(question)]
    question = _PATH.sub(" ", question)
    for m in _NAME_RUN.finditer(question):
        words = m.group().split()
        before = question[: m.start()].rstrip(" \t")
        if not before or before[-1] in ".?!:\n\"'(":
            words = words[1:]
        words = [w for w in words if w not in _NOT_NAMES]
        if words:
            names.append(" ".join(words))
    return list(dict.fromkeys(names))


def found_quoted(question: str, searches: list[dict[str, Any]]) -> bool:
    """A search with hits looked for text the question quotes: it found what the question is
    about. Asked for the date of the GnuPG version whose notes hold a quoted line, a 1.5B model
    found that line under its version's heading at once; told to search "GnuPG" too, it printed
    192 lines and ran out of time."""
    # A short quoted term ('a', a flag) is in many searches without being what they found.
    quoted = [" ".join(t.lower().split()) for t in quoted_terms(question) if len(t.strip()) >= 8]
    return any(
        s["hits"] and any(q in " ".join(s["pattern"].lower().split()) for q in quoted)
        for s in searches
    )


def unsearched_names(
    question: str, searches: list[dict[str, Any]], printed: Callable[[], str] = lambda: ""
) -> list[str]:
    """The question's names, when this level has searched `context` and no search looked for
    any word of them (as a word: "Canada" is not "Ada"); else []. Only while every search of
    the level is still on record (the host keeps the last 8): an older one may have been the
    name. A path the level already `printed()` (a hit under `=== pkg/a.py ===`) was found."""
    patterns = [s["pattern"] for s in searches if s["over"] == "context"]
    names = question_names(question)
    if not patterns or not names or len(searches) >= 8 or found_quoted(question, searches):
        return []
    if any(_PATH.fullmatch(n) for n in names):  # read what was printed only for a path
        shown = printed()
        names = [n for n in names if not (_PATH.fullmatch(n) and n in shown)]
        if not names:
            return []
    words = {w.lower() for name in names for w in name.split()}
    for pattern in patterns:
        # Either the name's words as written in the search, or a search (a regex) they match.
        if any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", pattern.lower()) for w in words):
            return []
        if any(grep_pattern(pattern).search(name) for name in names):
            return []
    return names


def printed_so_far(ev: Evidence) -> str:
    """What the level's cells printed, this one's included."""
    return ev.earlier_output() + "\n" + cell_stdout(ev.result)


SENT_BACK = (
    """\
Not finished: your searches ({searched}) never looked for {name}, the name the question is \
about, so this answer may be about something else. Search for {name} first:
"""
    + SEARCH_CODE
)
NOTE = (
    """\
Your searches so far ({searched}) {what}. The question is about {name}; search for it \
first:
"""
    + SEARCH_CODE
)


def check_unsearched(ev: Evidence) -> Finding | None:
    names = unsearched_names(ev.question, ev.searches, lambda: printed_so_far(ev))
    if not names:
        return None
    patterns = [s["pattern"] for s in ev.searches if s["over"] == "context"]
    searched = ", ".join(repr(p) for p in patterns)
    why = f"no search ({searched}) looked for {names[0]!r}, a name in the question"
    if ev.final is not None:
        return Finding(SENT_BACK.format(name=names[0], searched=searched), why)
    if not ev.new_searches:
        return None  # said right after a search: later turns build on what it found
    asked = set(re.findall(r"\w{3,}", ev.question.lower()))
    shared = any(set(re.findall(r"\w{3,}", p.lower())) & asked for p in patterns)
    what = "are not the name the question is about" if shared else "are not words of the question"
    return Finding(NOTE.format(name=names[0], searched=searched, what=what), why)


UNSEARCHED_GUARD = Guard(
    name="unsearched_name",
    moment="any",
    fires="the level searched `context`, but never for a name (whole capitalised tokens) of "
    "the question",
    says="the question is about NAME; here is the search for it (once per level, as a note "
    "after the search or at the answer)",
    check=check_unsearched,
)
