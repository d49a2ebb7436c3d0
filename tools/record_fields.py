"""Records written one per line with labelled fields, and the lines that share field values.

A list of people, packages, requests or events is often one record a line, its fields
separated by commas (`P-1: Ann Lee, lives in Oslo, born 3 May 1990.`) or written as
`key=value` (`GET /a user=ann ip=10.0.0.1`). A question such as "which of them share a city
and a birth date?" is answered by grouping records by those fields' values, in code: helpers
reading chunks never see two records that sit in different chunks. Here: a line's labelled
fields (`labelled_fields`), which labels open a field in most lines (`field_labels`), the
groups of lines whose values agree (`groups_sharing`), and a record's own name (`record_key`).

Standard library only: the REPL worker imports it (bound beside it in the sandbox), and the host
reads the labels of `context` with it for the guards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A field is the text between separators; its label, the lowercase words that open it before a
# value that starts with a capital or a digit ("lives in Oslo", "born 3 May 1990").
SEPARATOR = re.compile(r"[,;|\t]")
LABELLED = re.compile(r"^([a-z][a-z'-]*(?: [a-z][a-z'-]*){0,2}) ([A-Z0-9][^,;|\t]*)$")
KEY_VALUE = re.compile(r"(?<![\w.-])([A-Za-z_][\w-]*)=(\"[^\"]*\"|[^\s,;|]+)")
# A record's own name: the short token that opens the line before a colon (`P-1:`, `#42:`).
RECORD_KEY = re.compile(r"^\s*([^\s:,;|]{1,24}):\s")
# A label is a field of the text when at least this share of its lines (and this many) have it.
LABEL_SHARE = 0.5
MIN_RECORDS = 10


def labelled_fields(line: str) -> dict[str, str]:
    """The line's labelled fields, label -> value: phrases (`lives in` -> `Oslo`) and
    `key=value` pairs (`user=` -> `ann`). A value loses its closing full stop."""
    found: dict[str, str] = {}
    for key, value in KEY_VALUE.findall(line):
        found.setdefault(key + "=", value.strip('"'))
    key = RECORD_KEY.match(line)
    for part in SEPARATOR.split(line[key.end() :] if key else line):
        match = LABELLED.match(part.strip())
        if match:
            found.setdefault(match.group(1), match.group(2).strip().rstrip("."))
    return found


def field_labels(lines: Iterable[str]) -> list[str]:
    """The labels that open a field in at least half of the text's non-empty lines (and in at
    least ten), in the order they first occur: the text is records, and these are its fields."""
    counts: dict[str, int] = {}
    total = 0
    for line in lines:
        if not line.strip():
            continue
        total += 1
        for label in labelled_fields(line):
            counts[label] = counts.get(label, 0) + 1
    need = max(MIN_RECORDS, LABEL_SHARE * total)
    return [label for label, n in counts.items() if n >= need]


def groups_sharing(labels: list[str], lines: list[str]) -> list[list[int]]:
    """The indexes of the lines that have the same value after every label, a group for each
    set of values that more than one line shares, in the order their first lines occur."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, line in enumerate(lines):
        fields = labelled_fields(line)
        values = tuple(fields.get(label) for label in labels)
        if None not in values:
            groups.setdefault(tuple(str(v).casefold() for v in values), []).append(i)
    return [members for members in groups.values() if len(members) > 1]


def record_key(line: str) -> str | None:
    """The record's own name, the token before the colon that opens the line, or None."""
    match = RECORD_KEY.match(line)
    return match.group(1) if match else None


def question_labels(question: str, labels: list[str]) -> list[str]:
    """The labels whose words the question uses ("live in the same city" uses `lives in`;
    "born on" uses `born`): a word matches a label's word of three letters or more when they are
    equal, or when both are four letters or more and begin with the same four."""
    words = {w.casefold() for w in re.findall(r"[A-Za-z]+", question)}

    def uses(label: str) -> bool:
        for part in re.findall(r"[A-Za-z]+", label):
            p = part.casefold()
            if len(p) < 3 and not label.endswith("="):
                continue
            if p in words or (len(p) >= 4 and any(len(w) >= 4 and w[:4] == p[:4] for w in words)):
                return True
        return False

    return [label for label in labels if uses(label)]
