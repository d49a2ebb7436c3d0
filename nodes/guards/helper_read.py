"""For `stuck_advice`: a section the model printed and reads again, read by one helper.

A small root model twenty turns deep, with several outputs on screen, often answers with the
wrong detail of the section it printed (the first name in a changelog entry, not the one who
signed it; the `Returns:` line of the entry above), or reads the section again and again. A
fresh helper shown only that section and the question has no other lines to confuse it with:
the RLM's own remedy, a piece handed to a fresh instance. The advice offers one helper call
over the section the repeated cell printed, and the loop runs it; the reply is printed for the
model to check and answer with, and a note under it offers that reply as FINAL (models copied
the loop's helper call four times, each a helper call, rather than answer with its reply).
Never for a count question (counting is code's work: counted_parts.py), never without a
sub-call left or the time to read the section.
"""

from __future__ import annotations

from rlm_research.nodes.guards.base import (
    Evidence,
    Finding,
    Guard,
    call_constants,
    cell_stdout,
    offered_code,
)
from rlm_research.nodes.guards.counts import COUNT_QUESTION
from rlm_research.tools.tool_notes import has_tool_note

# At most this much of the section goes to the helper: about 1,000 tokens, half a minute of
# reading for the embedded model on two cores.
PASSAGE_CHARS = 4000
ASK = "Answer from this text only: reply with the answer itself, or NONE if the text does not say."
HELPER_READ = """A helper can read that section alone and answer from it:
```python
passage = section({where!r}, limit={limit})
print(sub_lm("Text:\\n" + passage + "\\n\\nQuestion: " + {question!r} + "\\n" + {ask!r}))
```"""
# Seconds a helper's reply and its call's overhead take beyond reading the passage.
REPLY_SECONDS = 30.0


def section_read(code: list[str]) -> int | str | None:
    """What the cell's last `section(...)` call reads, when it is a line number or a line's
    text written as a constant (the reads the model and the advice write); else None."""
    reads = call_constants(code, lambda name: name == "section")
    return next((r for r in reversed(reads) if isinstance(r, int | str)), None)


def can_pay(ev: Evidence) -> bool:
    """A sub-call is left, and time to read the passage at the model's measured speed."""
    if ev.sub_calls_left < 1:
        return False
    speed = ev.reading_speed
    need = (PASSAGE_CHARS / 4) / speed + REPLY_SECONDS if speed else REPLY_SECONDS
    return ev.seconds_left >= need


def read_by_helper(ev: Evidence) -> Finding | None:
    """One helper call over the section the repeated cell printed, with the question."""
    if COUNT_QUESTION.search(ev.question) or not can_pay(ev):
        return None
    where = section_read(ev.code)
    if where is None or ev.result is None or len(cell_stdout(ev.result).strip()) < 80:
        return None
    message = HELPER_READ.format(where=where, limit=PASSAGE_CHARS, question=ev.question, ask=ASK)
    why = f"the model read section({where!r}) again; a helper reads it alone"
    return Finding(message, why, run=offered_code(message))


REPLIED = """The helper that read section({where!r}) replied {reply!r}. If that answers the \
question, write FINAL({reply!r}) now; asked again it replies the same. If not, search for \
another word."""
SAID_NONE = """The helper that read section({where!r}) found no answer there: read another \
section or search for another word; asked again it replies the same."""


def helper_replied(ev: Evidence) -> Finding | None:
    """Under the loop's helper read: its reply, offered as FINAL when it is a short answer."""
    if not ev.code or ev.code[0] not in ev.loop_ran or ASK not in ev.code[0]:
        return None
    where = section_read(ev.code)
    reply = " ".join(cell_stdout(ev.result).split())
    if where is None or not reply or has_tool_note(reply) or len(reply) > 200:
        return None
    if reply.strip(".").upper() == "NONE":
        return Finding(SAID_NONE.format(where=where), "the helper found no answer")
    return Finding(REPLIED.format(where=where, reply=reply), f"the helper replied {reply!r}")


HELPER_REPLY_GUARD = Guard(
    name="helper_reply",
    moment="note",
    fires="the loop ran stuck_advice's helper read of a section the model printed again",
    says="the helper's short reply, offered as FINAL (or, for NONE, read or search elsewhere)",
    check=helper_replied,
    limit=3,
)
