"""`ungrounded_answer`: an answer taken from a helper that was given none of the document.

`sub_lm("In which file is the class ReceiveBuffer defined?")`, with no text of `context` in the
prompt, was answered "ReceiveBuffer.h" from what the helper model knows, and a development run
answered with it; the document has no such name. The REPL notes such a call beside its reply
(tools/helper_grounding.py); this guard sends back an answer, after such a note at this level,
that holds a word the document does not have, for a question about the document (one of its
words is in the text). An answer the document bears out stays.
"""

from __future__ import annotations

import re

from rlm_research.nodes.guards.base import Evidence, Finding, Guard, cell_stdout
from rlm_research.nodes.guards.helper_sweep import question_words
from rlm_research.tools.helper_grounding import NOTE_MARK

_WORD = re.compile(r"[^\W_][\w./:+-]*[^\W_]|[^\W_]")

UNGROUNDED = """\
Not yet: your answer comes from a helper that was given none of the document (its note says \
so), and the document has no {word!r}. Search the text for what the question names, or give \
the helper the lines to read: sub_lm(question + "\\n\\n" + section(hit))."""


def foreign_word(answer: str, question: str, document: str) -> str | None:
    """The first word of `answer` (not one of the question's) that `document` does not have."""
    asked = {w.lower() for w in _WORD.findall(question)}
    hay = document.lower()
    for word in _WORD.findall(answer):
        if word.lower() not in asked and word.lower() not in hay:
            return word
    return None


def check_ungrounded(ev: Evidence) -> Finding | None:
    if ev.final is None:
        return None
    if NOTE_MARK not in cell_stdout(ev.result) and NOTE_MARK not in ev.earlier_output():
        return None
    document = "\n".join(ev.text_lines())
    # Only for a question about the document (a word of it is in the text): a helper asked to
    # reword or translate answers rightly with words the document does not have.
    if not any(w in document.lower() for w in question_words(ev.question)):
        return None
    word = foreign_word(ev.final, ev.question, document)
    if word is None:
        return None
    why = f"a helper given no text of the document answered; the document has no {word!r}"
    return Finding(UNGROUNDED.format(word=word), why)


UNGROUNDED_GUARD = Guard(
    name="ungrounded_answer",
    moment="answer",
    fires="the level printed the REPL's note that a helper was given no text of the document, "
    "the question's words are in the document, and the answer holds a word (not the "
    "question's) that the document does not have",
    says="the answer comes from a helper that read none of the document; search, or give the "
    "helper the lines to read",
    check=check_ungrounded,
)
