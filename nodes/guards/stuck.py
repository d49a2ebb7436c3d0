"""`stuck_advice`: what to add to the loop's "you are repeating yourself" notice.

In order: the question's own name while no search has looked for it; for a count question
whose counted noun names a kind of heading, those headings and the code that counts them
(counted_headings.py); a short value the model's own code printed again and again (a model
that printed `740` three times, told only "take the next step", split a 1M log into 50 helper
calls), offered as FINAL only when it is a value and not an empty search's echo or a tool's
note; for a model that reads again the section of a line an empty search's note listed, the
next line it listed; for a count question whose parts (a version, a path) the level found the
headings of, code that counts inside those sections (counted_parts.py); for any other question,
a section the model printed and reads again, handed to one helper with the question
(helper_read.py); for a question about what records share, over a text of one-line records,
code that groups them by the fields the question names (shared_fields.py); after searches
that found nothing, the helpers over chunks, the fallback the system prompt describes; else
the line of the last search most like the question and the name
it leads to (a model searched a firm four times while the line naming the firm's town sat
unprinted among its hits), or, when it names nothing new, the code that shows its section and
the lines around it. A printed list of hits is never offered as FINAL. Advice whose code only
reads the text, or asks one helper, is run by the loop (`Finding.run`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rlm_research.nodes.guards.base import (
    SEARCH_CODE,
    SECTION_READ,
    Evidence,
    Finding,
    Guard,
    cell_stdout,
    offered_code,
)
from rlm_research.nodes.guards.chain import last_search_lines
from rlm_research.nodes.guards.closest_line import (
    closest_with_link,
    has_printed_hits,
    headings_printed_with,
    printed_lines,
)
from rlm_research.nodes.guards.counted_headings import (
    COUNT_HEADINGS_CODE,
    counted_heading_kinds,
    counted_noun,
    listed_kinds,
)
from rlm_research.nodes.guards.counted_parts import count_in_parts, count_printed
from rlm_research.nodes.guards.early import looks_negative
from rlm_research.nodes.guards.helper_read import read_by_helper
from rlm_research.nodes.guards.names import printed_so_far, unsearched_names
from rlm_research.nodes.guards.shared_fields import group_shared
from rlm_research.tools.text_search import (
    grep_pattern,
    noted_lines,
    noted_words,
    suggested_read,
)
from rlm_research.tools.tool_notes import has_tool_note, strip_tool_notes

QUESTION_NAME = (
    """No search has looked for {name}, the name the question is about:
"""
    + SEARCH_CODE
)
COUNTED_HEADINGS = (
    """The question counts {noun}, and the text's outline has headings that name them: \
{kinds}. If those are what it counts, count them in code:
"""
    + COUNT_HEADINGS_CODE
)
PRINTED = """It printed {printed} again: if that answers the question, write \
FINAL({printed!r}) now."""
EARLIER = "If an earlier output already answers the question, write FINAL(...) now."
EMPTY = """Your searches found no line with those words: the text may say it in other words. \
Ask helpers to read it in chunks:
```python
chunks = [context[i:i+20000] for i in range(0, len(context), 20000)]
answers = sub_lm_batched([{question!r} + " Quote the lines that answer it, or say NONE.\\n\\n" \
+ c for c in chunks])
print(answers)
```"""
EMPTY_READ = """Your search found no line with all those words, but its note lists the lines \
that hold its rarest words. Read the first one's section instead of searching again:
```python
{read}
```"""
ONE_LINE = """Your search found its one line again: {line!r}. {follow}"""
LINE = """Of the lines your search found, this one has the most words of the question: \
{line!r}. {follow}"""
FOLLOW_NAME = (
    """It names {name}, which you have not searched for yet:
"""
    + SEARCH_CODE
)
FOLLOW_PRINTED_VALUE = """It says "{phrase}": if that answers the question, write \
FINAL({value!r})."""
FOLLOW_VALUE = """It says "{phrase}". Check that this is what the question asks before you \
answer with it."""
FOLLOW_ANSWER = """{under}If that answers the question, write FINAL with the answer. If not, \
what the question asks may be near it (the entry, section or lines it belongs to):
```python
print(section({anchor!r}, limit=4000))
print(around({anchor!r}, before=5, after=10))
```"""

FOLLOW_READ = """{under}Your code printed its section already, above: \
the question's answer may be written there, perhaps in other words. If it is, write FINAL \
with it; if not, search for another word."""


def printed_value(ev: Evidence) -> str | None:
    """The cell's short output, when it is a value the model's code printed: not an error, not
    a tool's note, not a printed list of lines, not the echo of a search that matched nothing
    ("0 []"), not a give-up such as a helper's NONE (a number, 0 too, stays a value)."""
    if ev.result is None or any(s["hits"] == 0 for s in ev.new_searches):
        return None
    stdout = cell_stdout(ev.result)
    if has_tool_note(stdout):  # a value printed beside a tool's note (a failed search): no offer
        return None
    printed = " ".join(strip_tool_notes(stdout).split())
    if not printed or len(printed) > 120 or printed in ("None", "''") or printed[0] in "[{(":
        return None
    if has_printed_hits(printed):  # `1 [181: '...']`: the lines a search found
        return None
    if looks_negative(printed) and not printed.rstrip(".").isdigit():  # a helper's NONE
        return None
    return printed


def reading(message: str, why: str) -> Finding:
    """Advice whose code only reads the text: the loop may run it for a model that repeats."""
    return Finding(message, why, run=offered_code(message))


READ_NEXT = """Your code read the section of line {read} again. The empty search's note also \
listed line {n}: {text!r}. Read that one's section too:
```python
print(section({n}))
```"""


def next_noted_read(ev: Evidence) -> Finding | None:
    """A model that reads the section of one line an empty search's note listed, again and
    again, is offered the next listed line that holds a rare word of the search the read line
    lacks (asked how many parameters two functions take together, it read the first one's
    entry three times and answered its count). Not a line that only holds a common word of the
    search ("version" beside "2.5.3"): that is the same thing found less well."""
    read = [int(n) for block in ev.code for n in SECTION_READ.findall(block)]
    output = ev.earlier_output() if read else ""
    rows, words = noted_lines(output), noted_words(output)
    read_text = dict(rows).get(read[-1]) if read else None
    if read_text is None or not words:
        return None
    counts = {w: len(ev.search_lines(w)) for w in words}
    held = [counts[w] for w in words if _holds(read_text, w)]
    if not held or min(held) == 0:  # lines not countable here (several sources): no offer
        return None
    rare = [w for w in words if not _holds(read_text, w) and counts[w] <= max(3 * min(held), 3)]
    done = set(read) | {int(n) for code in ev.loop_ran for n in SECTION_READ.findall(code)}
    later = [(n, t) for n, t in rows if n not in done and any(_holds(t, w) for w in rare)]
    if not later:
        return None
    n, text = later[0]
    message = READ_NEXT.format(read=read[-1], n=n, text=text[:200])
    return reading(message, f"the empty search's note also listed line {n}")


def _holds(line: str, word: str) -> bool:
    return grep_pattern(re.escape(word)).search(line) is not None


LOOP_RAN = """The code this advice would offer, `{code}`, already ran for you above: if its \
output answers the question, write FINAL with the answer; if not, search for another word."""


def check_stuck(ev: Evidence) -> Finding | None:
    """The first advice in order whose code the loop has not run at this level; when all of it
    ran, a word that it ran (a model that reran the loop's count was pointed back at the
    outline's headings the loop had counted before, and answered their number)."""
    ran: Finding | None = None
    for found in advice_in_order(ev):
        if not (found.run and found.run in ev.loop_ran):
            return found
        ran = ran or found
    if ran is None or ran.run is None:
        return None
    first = ran.run.splitlines()[0]
    return Finding(LOOP_RAN.format(code=first), ran.why + "; the loop ran its code before")


def advice_in_order(ev: Evidence) -> Iterator[Finding]:
    names = unsearched_names(ev.question, ev.searches, lambda: printed_so_far(ev))
    if names:
        yield reading(QUESTION_NAME.format(name=names[0]), "the question's name never searched")
    # The outline is read (the whole text) only for a question that counts something.
    counted = counted_noun(ev.question) and counted_heading_kinds(ev.question, ev.heading_kinds())
    if counted and not any("headings(" in block for block in ev.code):
        noun, word, kinds = counted
        message = COUNTED_HEADINGS.format(noun=noun, kinds=listed_kinds(kinds), word=word)
        yield reading(message, f"the question counts {noun}; {len(kinds)} kinds of heading say it")
    if ev.result is None or any(b.get("error") for b in ev.result.get("blocks", [])):
        yield Finding(EARLIER, "the same error or no code again")
        return
    value = printed_value(ev)
    if value is not None:
        yield Finding(PRINTED.format(printed=value), f"the code printed {value!r} again")
        return
    for follow in (count_printed, next_noted_read, count_in_parts, read_by_helper, group_shared):
        found = follow(ev)
        if found is not None:
            yield found
    yield from closest_advice(ev)


def closest_advice(ev: Evidence) -> Iterator[Finding]:
    """After empty searches, the lines their note named or helpers over chunks; else the line
    of the last search most like the question, and where it leads."""
    stdout = cell_stdout(ev.result)
    if ev.new_searches and all(s["hits"] == 0 for s in ev.new_searches):
        read = suggested_read(stdout)
        if read:  # the note named the lines that hold the search's rarest words
            yield reading(EMPTY_READ.format(read=read), "the empty search's note named lines")
        else:
            yield Finding(EMPTY.format(question=ev.question), "every search of the cell was empty")
        return
    found = last_search_lines(ev) or printed_lines(stdout)
    searched = [s["pattern"] for s in ev.searches]
    distinct = list(dict.fromkeys(found))
    best = closest_with_link(
        distinct,
        ev.question,
        searched,
        (searched or [""])[-1],
        lambda line: shown_under(ev, line, stdout),
    )
    intro = LINE
    if best is None and len(distinct) == 1 and ev.new_searches:
        best, intro = (distinct[0], None), ONE_LINE  # found again: where it is, not a search
    if best is None:
        yield Finding(EARLIER, "no line stands out")
        return
    line, link = best
    if link and link[0] == "name":
        follow = FOLLOW_NAME.format(name=link[1])
    elif link:
        # A value is offered as FINAL only from a line the model's own code printed.
        shown = link[1] in stdout and line[:60] in stdout
        template = FOLLOW_PRINTED_VALUE if shown else FOLLOW_VALUE
        follow = template.format(phrase=link[1], value=link[1].split()[-1])
    else:
        under = shown_under(ev, line, stdout)
        under = f"It is under {under}. " if under else ""
        anchor = line.strip()[:80]
        # Code the cell just ran is not offered again: it leads where the model already is.
        ran = any(f"section({anchor!r}" in b for b in ev.code) and anchor[:60] in stdout
        follow = (FOLLOW_READ if ran else FOLLOW_ANSWER).format(anchor=anchor, under=under)
    yield reading(
        intro.format(line=line, follow=follow), f"the search's line most like it: {line!r}"
    )


def shown_under(ev: Evidence, line: str, stdout: str) -> str:
    """The headings grep printed with `line`, in this cell's output or else an earlier one (a
    helper's NONE printed now; the search that showed the line's function, turns before)."""
    return headings_printed_with(line, stdout) or headings_printed_with(line, ev.earlier_output())


STUCK_GUARD = Guard(
    name="stuck_advice",
    moment="stuck",
    fires="the loop saw the model repeat a turn (same code and output, or the same error)",
    says="the next step: the question's name, the value it printed (only a value its code "
    "printed, never a tool's note), helpers over chunks after empty searches, or the line of "
    "its search most like the question and the name it leads to",
    check=check_stuck,
    limit=100,
)
