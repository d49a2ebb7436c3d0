"""For `stuck_advice`: a count question whose parts the level found, counted in code.

Asked how many classes one file of a code base defines at its top level, a 1.5B model searched
the file's name, found its `=== yaml/constructor.py ===` header, and searched it again and again;
shown the file's start, it answered by eye. Asked how many change items two releases list, it
was shown where both releases' headings are and searched other words. Counting inside parts is
code the model does not write: when a stuck count question names parts (a version, a path, an
identifier: a word with a digit, a slash or an underscore) whose heading lines the level's
outputs showed, the advice offers code that counts inside those sections. `count_lines` has one
helper name the word or mark that starts each counted line and code finds them, so the count is
code's and the lines it counted are printed beside it for the model to check.
"""

from __future__ import annotations

import re

from rlm_research.nodes.guards.base import (
    SECTION_READ,
    Evidence,
    Finding,
    cell_stdout,
    offered_code,
)
from rlm_research.nodes.guards.counts import COUNT_QUESTION
from rlm_research.tools.text_outline import heading_kind
from rlm_research.tools.text_search import grep_pattern

COUNT_IN_PARTS = """The question counts lines inside {where}. Count them in code: a helper \
names how the counted lines start, and code finds them in those sections:
```python
part = {part}
hits = count_lines({question!r}, part)
print(len(hits), hits)
```"""

COUNTED = """The count code run above found {n} lines that start with {mark!r} in those \
sections. If those lines are what the question counts, write FINAL({n!r}) now; if not, count \
the right lines in code."""
NOTHING_COUNTED = """The count code run above found no line that starts with {mark!r}: the \
lines the question counts may be written otherwise. Read the first section and count there:
```python
print(section({n}))
```"""
# count_lines' note (tools/repl_worker.py), as the level's output shows it.
_COUNT_NOTE = re.compile(
    r"\(count_lines: a helper said the counted lines start with '(.*?)'; "
    r"(\d+) lines start with"
)

# A word of the question that names one part: "2.2.38", "yaml/constructor.py", "asn1_read_value".
_TERM = re.compile(r"[\w./-]*[\d/_][\w./-]*")
# A line number as hits and notes print it: "536: '=== yaml/constructor.py ==='", "(in 41: ...".
_LINE_NUMBER = re.compile(r"(?<![\w.])(\d{1,7}): ")
MAX_PARTS = 8


def part_terms(question: str) -> list[str]:
    """The question's words that can name a part (not a bare number: "2022", "10" name none)."""
    terms = (t.strip("./-") for t in _TERM.findall(question))
    return [t for t in dict.fromkeys(terms) if len(t) >= 3 and not t.isdigit()]


def shown_parts(ev: Evidence) -> list[tuple[int, str]]:
    """The heading lines the level's outputs showed (as a hit, a noted line, or the heading a
    hit is under) that hold a word of the question naming a part, with the one heading that
    names each other part the question names, in the text's order."""
    terms = part_terms(ev.question)
    if not terms:
        return []
    shown = ev.earlier_output() + "\n" + cell_stdout(ev.result)
    numbers = {int(n) for n in _LINE_NUMBER.findall(shown)}
    headings = ev.headings_at()
    rxs = [grep_pattern(re.escape(t)) for t in terms]
    found = [
        (n, headings[n])
        for n in sorted(numbers)
        if n in headings and any(rx.search(headings[n]) for rx in rxs)
    ]
    if not found:
        return []
    # A part the question names that no output showed yet, but that one heading alone names,
    # a heading of the same kind as those found (the second of two files counted "together",
    # not a function the counted lines call): its heading too.
    kinds = {heading_kind(text) for _, text in found}
    for rx in rxs:
        if not any(rx.search(text) for _, text in found):
            named = [(n, h) for n, h in headings.items() if rx.search(h)]
            if len(named) == 1 and heading_kind(named[0][1]) in kinds:
                found.append(named[0])
    found.sort()
    return parts_in_range(ev.question, found, headings) or found


# "2.5.0 to 2.5.6", "from 8.30 through 8.32", "between 1.1 and 1.4": every part in between.
_RANGE = re.compile(
    r"(?:\bbetween\s+(?P<a>\S+)\s+and\s+(?P<b>\S+))"
    r"|(?:(?P<c>\S+)\s+(?:to|through|until)\s+(?P<d>\S+))",
    re.I,
)


def parts_in_range(
    question: str, found: list[tuple[int, str]], headings: dict[int, str]
) -> list[tuple[int, str]]:
    """For a question that names a range of parts whose two ends are among the `found`
    headings, the headings from one end to the other that are of the same kind as the first
    end (a changelog's entries, not the subsections between them); else []."""
    for m in _RANGE.finditer(question):
        ends = [t.strip("()[]{},.;:!?'\"") for t in m.groups() if t]
        at = [n for end in ends if end for n in ending_at(end, found)]
        if len(at) != 2 or at[0] == at[1]:
            continue
        lo, hi = sorted(at)
        kind = heading_kind(headings[lo])
        return [
            (n, h) for n, h in sorted(headings.items()) if lo <= n <= hi and heading_kind(h) == kind
        ]
    return []


def ending_at(end: str, found: list[tuple[int, str]]) -> list[int]:
    """The line of the first found heading that holds `end`, as a list of zero or one."""
    rx = grep_pattern(re.escape(end))
    return [n for n, text in found if rx.search(text)][:1]


def within_parts(question: str, headings: list[str]) -> str:
    """The question as the helper that names the counted lines' mark sees it: the names of the
    parts, which the text it counts in already is, read "this text" (asked about the classes of
    yaml/constructor.py a 1.5B helper named `class`; of attr/validators.py, `def`)."""
    for term in part_terms(question):
        rx = grep_pattern(re.escape(term))
        if any(rx.search(h) for h in headings):
            question = rx.sub("this text", question)
    return question


def count_printed(ev: Evidence) -> Finding | None:
    """After the loop ran the count code, a model that repeats itself is shown the count it
    printed, once (a development run found the file's 6 classes, then searched the file's name
    again and ended with no answer); a count of 0, the first section it counted in, to read."""
    if not any("count_lines(" in code for code in ev.loop_ran):
        return None
    earlier = ev.earlier_output()
    notes = _COUNT_NOTE.findall(earlier + "\n" + cell_stdout(ev.result))
    if not notes:
        return None
    mark, n = notes[-1]
    if n == "0":
        return read_counted_part(ev, mark)
    if COUNTED.split(" found")[0] in earlier:  # said once already
        return None
    message = COUNTED.format(n=n, mark=mark)
    return Finding(message, f"the loop's count code printed {n}")


def read_counted_part(ev: Evidence, mark: str) -> Finding | None:
    """The count found no line: the first of its sections the level has not read yet, to read
    (what the question counts may be written otherwise, as a function's parameters are)."""
    counted = [
        int(n) for code in ev.loop_ran if "count_lines(" in code for n in SECTION_READ.findall(code)
    ]
    read = {
        int(n)
        for code in [*ev.code, *ev.loop_ran]
        if "count_lines(" not in code
        for n in SECTION_READ.findall(code)
    }
    unread = [n for n in counted if n not in read]
    if not unread:
        return None
    message = NOTHING_COUNTED.format(mark=mark, n=unread[0])
    return Finding(message, "the count code found no line", run=offered_code(message))


def count_in_parts(ev: Evidence) -> Finding | None:
    """The count code over the sections of the parts the question names, for a stuck count
    question, once per level, while the run can pay the helper call."""
    if not COUNT_QUESTION.search(ev.question) or ev.sub_calls_left < 1:
        return None
    if any("count_lines(" in block for block in [*ev.code, *ev.loop_ran]):
        return None
    parts = shown_parts(ev)
    if not parts or len(parts) > MAX_PARTS:
        return None
    sections = [f"section({n})" for n, _ in parts]
    asked = within_parts(ev.question, [text for _, text in parts])
    part = sections[0] if len(sections) == 1 else '"\\n".join([' + ", ".join(sections) + "])"
    where = " and ".join(repr(text.strip()[:80]) for _, text in parts)
    message = COUNT_IN_PARTS.format(where=where, part=part, question=asked)
    why = f"a count question naming parts whose headings it found: {where}"
    return Finding(message, why, run=offered_code(message))
