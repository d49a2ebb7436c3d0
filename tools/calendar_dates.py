"""Calendar dates in a short text, so that a date written another way is the same date (the bench's
scorer, and a plain answer checked against what the cells printed)."""

from __future__ import annotations

import re

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)? ([a-z]{3})[a-z]*\.?,? (\d{4})\b", re.I)
_MONTH_DAY = re.compile(r"\b([a-z]{3})[a-z]*\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})\b", re.I)


def dates_in(text: str) -> set[tuple[int, int, int]]:
    """The calendar dates a short text names, as (year, month, day), in the ways people write
    them: 2022-05-17, 17 May 2022, Tue, 17 May 2022, May 17, 2022."""
    found = {(int(y), int(m), int(d)) for y, m, d in _ISO.findall(text)}
    for d, mon, y in _DAY_MONTH.findall(text):
        if mon.lower() in _MONTHS:
            found.add((int(y), _MONTHS.index(mon.lower()) + 1, int(d)))
    for mon, d, y in _MONTH_DAY.findall(text):
        if mon.lower() in _MONTHS:
            found.add((int(y), _MONTHS.index(mon.lower()) + 1, int(d)))
    return found


def without_dates(text: str) -> str:
    """`text` with the dates `dates_in` reads taken out."""
    for pattern in (_ISO, _DAY_MONTH, _MONTH_DAY):
        text = pattern.sub(" ", text)
    return text
