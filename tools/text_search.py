"""Searching and reading a text by lines: grep's patterns, the note an empty search prints, and
where a line sits in the document's outline (`text_outline.py`).

Standard library only: the REPL worker imports this file as a plain module from its own folder
(in the sandbox it is bound beside the worker), and the host imports it as
`rlm_research.tools.text_search` to read a search again for its hints.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any

if __package__:  # imported by the host, as rlm_research.tools.text_search
    from .text_outline import Outline
else:  # imported by the worker run as a script, from its own folder
    from text_outline import Outline  # type: ignore[no-redef]

# How an empty grep's note starts (observe reads a give-up after it as after an empty search).
GREP_FOUND_NOTHING = "(grep: no line has"


# Regex brackets that, read as a regex, no longer match their own text: "[Function]" is a class
# of single letters, "f(x)" matches "fx".
_BRACKETS = re.compile(r"[\[\]()]")


def grep_pattern(
    pattern: Any, whole_words: bool = True, lines: list[str] | None = None
) -> re.Pattern[str]:
    r"""`pattern` as a case-insensitive regex, or its words as written if it is not one. Where its
    text starts or ends with a word character (a letter, digit or _; not a class like [Dd]), it
    matches only where a word starts or ends: at 1M characters grep("Drivor") found 58 lines,
    most of them "Mordrivor Labs", and the town's own line was not among the ten printed.
    r"\w*drivor" still matches inside words. So a whole-word search counts "review" but not
    "reviews": `len(grep(...))` of a stem undercounts (its empty result says so; one with hits
    does not). Given the `lines` searched, a pattern with brackets or parentheses that occurs
    in them exactly as written is searched as written: `grep("[Function]")` finds a manual's
    "[Function]" entries, not every line with an F, u or n."""
    text = str(pattern)
    try:
        re.compile(text)
    except re.error:  # "f(x" and the like: the words as written
        text = re.escape(text)
    else:
        if lines is not None and _BRACKETS.search(text) and occurs_as_written(text, lines):
            text = re.escape(text)
    # Global flags ("(?i)") must stay in front of the wrapper.
    flags, body = re.match(r"((?:\(\?[aiLmsux]+\))*)(.*)", text, re.S).groups()
    if whole_words and body:
        start = r"(?<!\w)" if re.match(r"\w", body) else ""
        end = r"(?!\w)" if re.search(r"(?<!\\)\w$", body) else ""
        if start or end:
            body = f"{start}(?:{body}){end}"
    return re.compile(flags + body, re.I)


def occurs_as_written(text: str, lines: list[str]) -> bool:
    low = text.lower()
    return any(low in line.lower() for line in lines)


def grep_lines(pattern: Any, lines: list[str], whole_words: bool = True) -> list[str]:
    """What `grep` returns: the lines that match `pattern` (see `grep_pattern`). The host calls
    it too, to read a search's lines again for the stuck hint."""
    return [lines[i] for i in matching_indices(pattern, lines, whole_words)]


def nearest_search(
    pattern: str, lines: list[str], outline: Outline | None = None, whole: bool = True
) -> str:
    """A note for a grep that found nothing: the lines that have it inside longer words; else the
    longest run of the pattern's words that occurs (the most specific one, of runs as long);
    else the lines holding the rarest of its words. Small models search whole phrases from the
    question ("Ann Lee's employer", "apt version 2.5.3"), find nothing and repeat the search;
    the name alone hits, and so does "2.5.3" in "apt (2.5.3) unstable". The code that reads a
    line's section is offered only for a search of all of `context` (`whole`): `section(n)`
    reads `context`, where a part's line n is another line."""
    inside = matching_indices(pattern, lines, whole_words=False)
    if inside:
        wider = r"\w*(?:" + grep_pattern(pattern, False, lines).pattern + r")\w*"
        what = f"it inside longer words (grep({wider!r}) finds them)"
        searched = f"{pattern!r} as a word of its own"
        return _found_instead(searched, what, inside, lines, outline, whole)
    words = re.sub(r"'s\b", "", pattern).split()
    counts: dict[str, int] = {}
    for size in range(len(words) - 1, 1, -1):
        runs = [" ".join(words[k : k + size]) for k in range(len(words) - size + 1)]
        found = [(matching_indices(re.escape(run), lines), run) for run in runs]
        found = [(hits, run) for hits, run in found if hits]
        if found:
            fewest = min(len(hits) for hits, _ in found)
            tied = [(hits, run) for hits, run in found if len(hits) == fewest]
            hits, run = tied[0]
            # In a text with headings the note offers to read the first line's section, so of
            # runs as specific it takes the one holding the rarest word: "version 2.2.36", the
            # release's own heading, not "GnuPG version", a line of an older release. Words are
            # counted only for ties, each once: a long text is scanned once a word.
            if len(tied) > 1 and outline is not None and outline.at:
                hits, run = min(tied, key=lambda f: _rarest_word_lines(f[1], lines, counts))
            return _found_instead(repr(pattern), repr(run), hits, lines, outline, whole)
    return _rarest_words_note(pattern, words, lines, outline, whole)


def _rarest_word_lines(run: str, lines: list[str], counts: dict[str, int]) -> int:
    """How many lines hold the rarest word of `run` (`counts` keeps each word's number)."""
    for w in run.split():
        if w not in counts:
            counts[w] = len(matching_indices(re.escape(w), lines))
    return min(counts[w] for w in run.split())


def matching_indices(pattern: Any, lines: list[str], whole_words: bool = True) -> list[int]:
    rx = grep_pattern(pattern, whole_words, lines)
    return [i for i, line in enumerate(lines) if rx.search(line)]


def heading_path(outline: Outline, lines: list[str], i: int) -> str:
    """The headings above line `i` as a hit shows them: the outermost and the nearest, where
    the nearest is the `def` or `class` an indented line of code sits in when there is one
    below the nearest heading (a parameter's default is on a line of its own, its function's
    name lines above it)."""
    path = outline.path(i, include_self=False)
    shown = path if len(path) <= 2 else [path[0], path[-1]]
    inner = enclosing_definition(lines, i, path[-1] if path else -1)
    if inner is not None:
        shown = [*shown[:1], inner]
    return " > ".join(f"{k + 1}: {lines[k].strip()[:100]!r}" for k in shown)


_DEFINITION = re.compile(r"\s*(?:async\s+def|def|class)\s+\w")
DEFINITION_REACH = 300  # lines looked at above a hit for the definition it sits in


def enclosing_definition(lines: list[str], i: int, stop: int) -> int | None:
    """The index of the `def`/`class` line that indented line `i` belongs to: the first line
    above it, below `stop`, less indented than every line between, that opens a definition;
    None for a line at column 0 or one under a less indented line of another kind."""
    level = len(lines[i]) - len(lines[i].lstrip())
    for k in range(i - 1, max(stop, i - DEFINITION_REACH - 1), -1):
        text = lines[k]
        indent = len(text) - len(text.lstrip())
        if level == 0:
            return None
        if not text.strip() or indent >= level or text.lstrip()[0] in ")]}":
            continue  # a blank or deeper line, or the close of a signature written on lines
        if _DEFINITION.match(text):
            return k
        level = indent
    return None


# In a text with headings, an empty search's note ends with code that reads the best line's
# section; the guards offer the same code again when the model gives up or repeats itself.
READ_SECTION = "print(section({n}))"
_READ_SECTION = re.compile(r"print\(section\(\d+\)\)")


# A line number as hits and headings print it: "[181: 'text'", ", 200: 'text'", "(in 5: '4.2
# Reading'", "> 9: 'def f('": where a line is, not a value the text holds. Only before a quote,
# so "2019: Acquired by Initech" and "{2021: 14, 2022: 9}" keep their numbers.
_LINE_NUMBER = re.compile(r"""(?:(?<=[\[(,>])\s?|(?<=\bin ))\d{1,7}: (?=['"])""")
_ROW_NUMBER = re.compile(r"^\d{1,7}: ", re.M)


def without_line_numbers(output: str) -> str:
    """`output` without the line numbers of its hits and headings, nor those of the rows an
    empty search's note listed."""
    bare = _NOTE_ROWS.sub(lambda m: _ROW_NUMBER.sub("", m.group(0)), output)
    return _LINE_NUMBER.sub("", bare)


def suggested_read(output: str) -> str | None:
    """The last section-reading code an empty search's note suggested in `output`, if any."""
    found = _READ_SECTION.findall(output)
    return found[-1] if found else None


# The lines an empty search's note listed: "N: text" rows after its "rarest first (...):" or
# "such as:" line.
_NOTE_ROWS = re.compile(r"(?:rarest first \([^\n]*\)|such as):\n((?:\d+: [^\n]*(?:\n|$))+)")


_NOTE_WORDS = re.compile(r"rarest first \(([^\n]*)\):\n")
# Where a hit or a noted row is, as printed after its text: " (in 3: 'Chapter 2' > 9: '2.1')".
_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
HEADINGS_SHOWN = re.compile(rf" \(in \d+: {_QUOTED}(?: > \d+: {_QUOTED})?\)")


def noted_lines(output: str) -> list[tuple[int, str]]:
    """The (line number, text) rows that the last empty search's note in `output` listed."""
    notes = _NOTE_ROWS.findall(output)
    rows = [row.split(": ", 1) for row in notes[-1].splitlines()] if notes else []
    return [(int(n), _without_place(text)) for n, text in rows]


def _without_place(row: str) -> str:
    """A noted row's text without the place the note gave after it (" (in 3: 'Chapter 2')")."""
    at = row.rfind(" (in ")
    while at > 0 and not HEADINGS_SHOWN.fullmatch(row, at):
        at = row.rfind(" (in ", 0, at)
    return row[:at] if at > 0 else row


def noted_words(output: str) -> list[str]:
    """The words, rarest first, of the last "rarest first" note in `output`."""
    notes = _NOTE_WORDS.findall(output)
    return re.findall(r"'([^']*)'", notes[-1]) if notes else []


def _rarest_words_note(
    pattern: str, words: list[str], lines: list[str], outline: Outline | None, whole: bool
) -> str:
    """The lines with the most of `words`, rare words weighing more (a version number or a name
    outweighs "version" or "the"), with their line numbers; of lines as good, a heading first
    ("apt (2.5.3) unstable" before "Update translation for apt/2.5.3"), and in a text with
    headings the code that reads the first one's section."""
    score, weight = _word_scores(words, lines)
    if not score:
        return f"{GREP_FOUND_NOTHING} {pattern!r})"
    heads = set(outline.at) if outline is not None else set()
    best = sorted(score, key=lambda n: (-round(score[n], 6), n - 1 not in heads, n))[:3]
    rare = ", ".join(repr(w) for w in sorted(weight, key=lambda w: -weight[w]))
    shown = "\n".join(f"{n}: {lines[n - 1][:300]}{_within(outline, lines, n - 1)}" for n in best)
    read = f"\nTo read the first in full: {READ_SECTION.format(n=best[0])}" if heads else ""
    read = read if whole else ""
    return (
        f"{GREP_FOUND_NOTHING} {pattern!r}; the lines with the most of its words, rarest first "
        f"({rare}):\n{shown}{read})"
    )


def _word_scores(
    words: list[str], lines: list[str], among: list[int] | None = None
) -> tuple[dict[int, float], dict[str, float]]:
    """Line numbers (from 1; of the 0-based indices `among` only, if given) scored by the words
    they hold, each word weighing log(lines / lines holding it), and those weights."""
    pick = range(len(lines)) if among is None else among
    holding: dict[str, list[int]] = {}
    for word in dict.fromkeys(w for w in words if len(w) >= 2):
        rx = grep_pattern(re.escape(word))
        found = [i + 1 for i in pick if rx.search(lines[i])]
        if found:
            holding[word] = found
    total = len(lines) if among is None else len(among)
    weight = {w: math.log((total + 1) / len(found)) for w, found in holding.items()}
    score: dict[int, float] = {}
    for word, found in holding.items():
        for n in found:
            score[n] = score.get(n, 0.0) + weight[word]
    return score, weight


def nearest_headings(words: str, lines: list[str], outline: Outline) -> str:
    """A note for `headings(words)` that found none: the headings with the most of its words,
    rare words weighing more. Asked for "apt 2.5.x versions (2.5.0 to 2.5.6)", it shows the
    2.5.0 and 2.5.6 entries, where an empty list only raised IndexError at `[0]`."""
    parts = [w.strip("()[]{},.;:!?'\"") for w in str(words).split()]
    score, _ = _word_scores([w for w in parts if len(w) >= 3], lines, outline.at)  # not "to"
    if not score:
        return f"(headings: no heading has {words!r}, nor any of its words)"
    best = sorted(score, key=lambda n: (-round(score[n], 6), n))[:5]
    shown = "\n".join(f"{n}: {lines[n - 1].strip()[:120]}" for n in best)
    return (
        f"(headings: no heading has {words!r}; the headings with the most of its words "
        f"(give headings() one of them, or a version or name as it is written there):\n{shown})"
    )


def _found_instead(
    searched: str,
    what: str,
    found: list[int],
    lines: list[str],
    outline: Outline | None,
    whole: bool,
) -> str:
    """The note on lines found instead: the first three lines; in a text with headings each as
    grep shows a hit (its line number and the headings above), with the code that reads the
    first one's section, so a run that searched a whole phrase sees which entry holds it."""
    have = "1 line has" if len(found) == 1 else f"{len(found):,} lines have"
    shown = [lines[i][:300] for i in found[:3]]
    read = ""
    if outline is not None and outline.at:
        for k, i in enumerate(found[:3]):
            shown[k] = f"{i + 1}: {shown[k]}{_within(outline, lines, i)}"
        if whole and outline.path(found[0]):
            read = f"\nTo read the first in full: {READ_SECTION.format(n=found[0] + 1)}"
    return (
        f"{GREP_FOUND_NOTHING} {searched}; {have} {what}, such as:\n"
        + "\n".join(shown)
        + f"{read})"
    )


def _within(outline: Outline | None, lines: list[str], i: int) -> str:
    """ " (in 3: 'Chapter 2' > 9: 'def f(')": where line `i` is, as a hit shows it, or ""."""
    path = heading_path(outline, lines, i) if outline is not None and outline.at else ""
    return f" (in {path})" if path else ""


def join_sources(texts: dict[str, str]) -> str:
    """`context` of a run over named texts: one text called `context` as it is, else each under
    a `=== name ===` header with the name as the user gave it (a path like `pkg/a.py`, so a
    question that names a file finds it). The worker builds `context` with it and the host
    quotes line numbers of it, so the two agree."""
    if list(texts) == ["context"]:
        return texts["context"]
    return "\n\n".join(f"=== {header_name(n)} ===\n{t}" for n, t in texts.items())


# A header line stays under heading_level's 100 characters, or its file would not be a section.
HEADER_NAME_CHARS = 90


def header_name(name: str) -> str:
    """A source's name as its header shows it: one line (a name cannot add lines or headings
    to `context`), at most 90 characters, a long path keeping its end (the file's own name)."""
    one_line = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]+", " ", name).strip() or "source"
    if len(one_line) > HEADER_NAME_CHARS:
        one_line = "..." + one_line[-(HEADER_NAME_CHARS - 3) :]
    return one_line


# The helpers the REPL worker defines (its PROTECTED names: a cell cannot rebind them for
# good), and every name the REPL sets itself: a source's variable never takes one of these.
REPL_HELPERS = (
    "web_search",
    "fetch_url",
    "WebError",
    "sub_lm",
    "sub_lm_batched",
    "llm_query",
    "llm_query_batched",
    "rlm_query",
    "FINAL",
    "FINAL_VAR",
    "SHOW_VARS",
    "grep",
    "judge_lines",
    "count_lines",
    "lines_sharing",
    "around",
    "section_of",
    "section",
    "headings",
    "Hit",
    "Hits",
)
REPL_NAMES = frozenset({*REPL_HELPERS, "final", "Final", "context", "answer", "sources"})


def source_variables(names: list[str]) -> dict[str, str]:
    """Each source's REPL variable, by name: `docs/report.pdf` -> `report_pdf`, a Python
    identifier that no other source has, nor any name the REPL defines (`REPL_NAMES`)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    next_n: dict[str, int] = {}  # per base name: a folder of 500 __init__.py files is linear
    for name in names:
        base = re.sub(r"\W+", "_", name.rsplit("/", 1)[-1]).strip("_").lower() or "source"
        if not base.isidentifier() or keyword.iskeyword(base) or base in REPL_NAMES:
            base = f"src_{base}"  # "2024.log", "if.txt", "grep.md"
        if not base.isidentifier():  # "²x": a digit Python does not take in a name
            base = "src_" + re.sub(r"[^a-z0-9_]", "_", base.encode("ascii", "replace").decode())
        var, n = base, next_n.get(base, 2)
        while var in taken:
            var, n = f"{base}_{n}", n + 1
        next_n[base] = n
        taken.add(var)
        out[name] = var
    return out


def line_index(where: Any, lines: list[str]) -> int:
    """The 0-based index of a hit (its `.n`), a line number, or the first line holding a text."""
    n = getattr(where, "n", None)
    if isinstance(n, int):
        return n - 1
    if isinstance(where, int):
        return where - 1
    text = str(where)
    for i, line in enumerate(lines):
        if text in line:
            return i
    raise ValueError(f"no line of the text holds {text[:80]!r}")


def numbered(lines: list[str], start: int) -> str:
    return "\n".join(f"{start + k + 1}: {line}" for k, line in enumerate(lines))
