"""`next_hop`: an answer read from a line that names the next link still to follow.

Asked the year the town of a firm's headquarters was founded, a model found "Logaljun Works is a
firm founded in 1866. Its headquarters are in Aneka." and answered 1866, the firm's year, one hop
short. The guard finds the answer's line among what the cell printed and the last search
matched, and what follows the question's words in it (`closest_line.next_link`): a name that is
not the answer is a hop not taken.
"""

from __future__ import annotations

from rlm_research.nodes.guards.base import (
    SEARCH_CODE,
    Evidence,
    Finding,
    Guard,
    answer_word,
    clipped,
    printed_before_final,
)
from rlm_research.nodes.guards.closest_line import closest_with_link, next_link, printed_lines

SENT_BACK = """\
Not finished: your answer comes from the line {line!r}, and that line goes on to {name}. \
{next}"""
NEXT_SEARCH = (
    """You have not searched for {name} yet. If the question goes on through {name}, \
search it:
"""
    + SEARCH_CODE
)
NEXT_LINE = """Of the lines grep({name!r}) finds, this one has the most words of the question: \
{line!r}. {follow}"""
FOLLOW_VALUE = """It says "{phrase}": if that answers the question, write FINAL({value!r})."""
FOLLOW_ANSWER = "If it answers the question, write FINAL with the answer."


def last_search_lines(ev: Evidence) -> list[str]:
    """Every line the level's last `grep` over `context` matched: the model often prints ten of
    28, and the line that matters is not among them."""
    last = ev.searches[-1] if ev.searches else None
    if last is None or last["over"] != "context" or not last["hits"]:
        return []
    return ev.search_lines(last["pattern"])


def unfinished_chain(final: str, lines: list[str], question: str) -> dict[str, str] | None:
    """The line the answer was read from (the first of `lines` with the answer as a word of its
    own) and the name it leads on to, when a word of the question is followed there by a name
    the question does not hold; else None."""
    if not str(final).strip() or len(str(final)) > 100:  # a sentence is not read from one line
        return None
    word = answer_word(final)
    line = next((x for x in lines if word.search(x)), None)
    link = next_link(line, question, []) if line else None
    # The name after the question's word may be the answer itself ("headquarters are in X").
    if link is None or link[0] != "name" or word.search(link[1]):
        return None
    return {"line": clipped(line), "name": link[1]}


def check_next_hop(ev: Evidence) -> Finding | None:
    if ev.final is None or ev.result is None:
        return None
    printed = printed_before_final(ev.result, ev.final)
    chain = unfinished_chain(ev.final, printed_lines(printed) + last_search_lines(ev), ev.question)
    if chain is None:
        return None
    name, searched = chain["name"], [s["pattern"] for s in ev.searches]
    why = f"the answer's line {chain['line']!r} goes on to {name!r}"
    if not any(name.lower() in p.lower() for p in searched):
        return Finding(SENT_BACK.format(**chain, next=NEXT_SEARCH.format(name=name)), why)
    own = [x for x in ev.search_lines(name) if x != chain["line"]]
    found = closest_with_link(own, ev.question, searched, name)
    if found is None or answer_word(ev.final).search(found[0]):
        return None
    line, link = found
    follow = FOLLOW_ANSWER
    if link and link[0] == "value":
        follow = FOLLOW_VALUE.format(phrase=link[1], value=link[1].split()[-1])
    next_ = NEXT_LINE.format(name=name, line=line, follow=follow)
    return Finding(SENT_BACK.format(**chain, next=next_), why)


NEXT_HOP_GUARD = Guard(
    name="next_hop",
    moment="answer",
    fires="the answer was read from a line in which a word of the question is followed by a "
    "name that is neither the answer nor in the question",
    says="that line goes on to NAME: here is the search for it, or the line of its search most "
    "like the question",
    check=check_next_hop,
)
