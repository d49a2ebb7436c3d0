"""For `stuck_advice`: records that share field values, grouped by code.

"Which people live in the same city and were born on the same date?" over thousands of
one-line records is a join: code that groups the records by those fields answers it at once,
while helpers reading chunks never see two records that sit in different chunks, and a small
root model searches the question's words ("same city") and finds nothing. When the question
asks what is the same or shared, the text's lines are records with labelled fields
(tools/record_fields.py), and the question uses some of those labels' words, the advice is the
REPL's `lines_sharing` over those labels; the loop runs it (it only reads the text), and a note
under its output offers the groups' record names as FINAL.
"""

from __future__ import annotations

import re

from rlm_research.nodes.guards.base import Evidence, Finding, Guard, cell_stdout, offered_code
from rlm_research.tools.record_fields import question_labels

SHARED_QUESTION = re.compile(
    r"\b(same|share[sd]?|sharing|in common|identical|duplicated?|duplicates)\b", re.I
)
GROUP = """The question asks which records share values, and the text's lines are records \
with the fields {fields}. Group them in code (helpers reading chunks never see two records \
that sit in different chunks):
```python
groups = lines_sharing({args})
print(len(groups), groups)
```"""


def group_shared(ev: Evidence) -> Finding | None:
    """`lines_sharing` over the record fields the question names, for a question about what
    records share, while no cell of this level has grouped them."""
    if not SHARED_QUESTION.search(ev.question):
        return None
    if any("lines_sharing(" in c for c in ev.code):  # grouped again: its groups, as FINAL
        return groups_offered(ev)
    known = ev.field_labels()
    labels = question_labels(ev.question, known)
    if not labels:
        return None
    args = ", ".join(repr(label) for label in labels)
    fields = ", ".join(repr(label) for label in known)
    message = GROUP.format(fields=fields, args=args)
    why = f"the question asks what records share; its words name the fields {args}"
    return Finding(message, why, run=offered_code(message))


# `(P-1, P-2): [...]` at the start of a printed group (tools/repl_text_api.Groups).
GROUP_NAMES = re.compile(r"(?:^|\[|,\n )(\([^()\n]{1,400}\)): \[", re.M)
FOUND = """Grouped by code: {n} groups of records share those values. If they answer the \
question, write FINAL({answer!r}) now."""
FOUND_NONE = """Grouped by code: no two records share all of {labels}. Check the labels \
against a few lines of `context` (print some) before you answer."""


def groups_found(ev: Evidence) -> Finding | None:
    """Under the loop's `lines_sharing` cell: the groups' record names offered as FINAL."""
    if not ev.code or ev.code[0] not in ev.loop_ran or "lines_sharing(" not in ev.code[0]:
        return None
    return groups_offered(ev)


def groups_offered(ev: Evidence) -> Finding | None:
    """The record names of the groups the cell's `lines_sharing` printed, offered as FINAL."""
    stdout = cell_stdout(ev.result)
    names = GROUP_NAMES.findall(stdout)
    if names:
        answer = ", ".join(names)
        return Finding(FOUND.format(n=len(names), answer=answer), f"{len(names)} groups found")
    if re.search(r"^0 \[\]$", stdout, re.M):
        code = next(c for c in ev.code if "lines_sharing(" in c)
        labels = code.split("lines_sharing(", 1)[1].split(")", 1)[0]
        return Finding(FOUND_NONE.format(labels=labels), "no records share those values")
    return None


GROUPS_GUARD = Guard(
    name="shared_groups",
    moment="note",
    fires="the loop ran stuck_advice's lines_sharing cell, which grouped records by the "
    "fields the question names",
    says="the groups' record names, offered as FINAL (or, for no group, check the labels)",
    check=groups_found,
    limit=1,  # at a model's repeat of that cell, stuck_advice offers the groups again
)
