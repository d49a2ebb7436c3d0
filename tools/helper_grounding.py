"""Whether a helper was given any of the document to read.

`sub_lm("In which file is the class ReceiveBuffer defined?")`, with no text of `context` in the
prompt, is answered from what the helper model knows, not from the document: a development run
got "ReceiveBuffer.h" and answered with it. The REPL prints a note beside such a call (the reply
itself is returned unchanged, so code that uses it works as before). A guard that sent back an
answer after such a note was tried and dropped: helpers asked to transform a short value (a
word of the text) rightly answer with words the document lacks.
"""

from __future__ import annotations

import functools

# A prompt holds the document's text when a run of this many characters of it is in `context`.
WINDOW = 24
# A whole line of the document this long, quoted in the prompt, is its text too.
SHORT_LINE = 10
# A prompt this long is taken to carry its own material (a fetched page, the model's notes).
ENOUGH = 2000

NOTE_MARK = "held no text of `context`"
NOTE = (
    "(sub_lm: {asked} " + NOTE_MARK + ", only the words you wrote: the helper answered "
    "from what it knows, not from the document. Put the lines it should read in the prompt, "
    "e.g. sub_lm(question + '\\n\\n' + section(hit)))"
)


def holds_text_of(prompt: str, document: str) -> bool:
    """Whether `prompt` quotes `document` (a run of WINDOW characters, or a whole line of it of
    at least SHORT_LINE characters: "The vault code is 7413."), is long enough to carry material
    of its own, or there is no document to quote."""
    if not document.strip() or len(prompt) >= ENOUGH:
        return True
    step = WINDOW // 3
    if any(prompt[i : i + WINDOW] in document for i in range(0, len(prompt) - WINDOW + 1, step)):
        return True
    return any(line in prompt for line in short_lines_of(document))


# One document per worker (its `context`): split once, not once per prompt or per call (a str
# caches its hash, so the lookup of a 10M text is cheap after the first).
@functools.lru_cache(maxsize=2)
def short_lines_of(document: str) -> frozenset[str]:
    stripped = (line.strip() for line in document.splitlines())
    return frozenset(ln for ln in stripped if SHORT_LINE <= len(ln) < WINDOW)


def ungrounded_note(prompts: list[str], document: str) -> str | None:
    """The note for the prompts of one call that hold no text of the document, or None."""
    bare = sum(not holds_text_of(prompt, document) for prompt in prompts)
    if not bare:
        return None
    asked = "the prompt" if len(prompts) == 1 else f"{bare} of the {len(prompts)} prompts"
    return NOTE.format(asked=asked)
