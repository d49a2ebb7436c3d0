"""Questions over release notes nobody on this project wrote: apt's Debian changelog, coreutils'
NEWS and GnuPG's NEWS. Each gold answer is computed here by code from the document's text,
never typed by hand. Families, in this order: lookup, count, sum, section, twohop."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

FAMILIES = ("lookup", "count", "sum", "section", "twohop")


@dataclass(frozen=True)
class Question:
    family: str
    text: str
    gold: str | int


# ---------------------------------------------------------------------------------------------
# apt's Debian changelog


def read_apt() -> str:
    return gzip.decompress(Path("/usr/share/doc/apt/changelog.gz").read_bytes()).decode()


def changelog_entries(text: str) -> list[dict[str, object]]:
    """Debian changelog entries: version, body lines, who signed it and on what day."""
    entries: list[dict[str, object]] = []
    for line in text.splitlines():
        head = re.match(r"^\S+ \(([^)]+)\) [^;]+; urgency=", line)
        if head:
            entries.append({"version": head.group(1), "lines": [], "by": "", "date": ""})
        elif entries:
            sign = re.match(r"^ -- (.+?) <.*>\s+\w+, (\d+ \w+ \d{4})", line)
            if sign and not entries[-1]["by"]:
                entries[-1]["by"], entries[-1]["date"] = sign.group(1).strip(), sign.group(2)
            else:
                entries[-1]["lines"].append(line)  # type: ignore[union-attr]
    return entries


def unique_bullet(text: str, entry: dict[str, object]) -> str:
    """The first change line of an entry whose words occur once in the whole changelog."""
    for line in entry["lines"]:  # type: ignore[union-attr]
        item = line.strip().removeprefix("* ").removeprefix("- ").strip()
        bullet = line.strip().startswith(("* ", "- ")) and 25 <= len(item) <= 90
        if bullet and text.count(item) == 1 and "(Closes" not in item:
            return item
    raise ValueError(f"no unique change line in {entry['version']}")


def closes(entry: dict[str, object]) -> int:
    body = "\n".join(entry["lines"])  # type: ignore[arg-type]
    return sum(len(re.findall(r"#\d+", m)) for m in re.findall(r"Closes:[^)]*", body))


def apt_questions(text: str) -> list[Question]:
    entries = changelog_entries(text)
    by_version = {e["version"]: e for e in entries}
    e253 = by_version["2.5.3"]
    five = [e for e in entries if str(e["version"]).startswith("2.5.")]
    line = unique_bullet(text, e253)
    # Two hops: the line's entry, then the date its sign-off line gives.
    other_entry = by_version["2.5.0"]
    other = unique_bullet(text, other_entry)
    return [
        Question("lookup", "Who signed the upload of apt version 2.5.3?", str(e253["by"])),
        Question("count", "How many versions of apt does this changelog describe?", len(entries)),
        Question(
            "sum",
            "In total, how many bug numbers do the 'Closes:' notes of all apt 2.5.x versions "
            "(2.5.0 to 2.5.6) close?",
            sum(closes(e) for e in five),
        ),
        Question("section", f"Which apt version's entry lists the change '{line}'?", "2.5.3"),
        Question(
            "twohop",
            f"On what date was the apt version uploaded whose entry lists the change '{other}'?",
            str(other_entry["date"]),
        ),
    ]


# ---------------------------------------------------------------------------------------------
# coreutils' NEWS


def read_coreutils() -> str:
    return gzip.decompress(Path("/usr/share/doc/coreutils/NEWS.gz").read_bytes()).decode()


# Releases before 6.6 head their notes "Major changes in release ..." (with a colon after the
# date up to 5.1): the count question counts both, 77 releases.
_RELEASE = re.compile(r"^\* (?:Noteworthy|Major) changes in release (\S+) \((\S+)\)", re.M)


def news_releases(text: str) -> list[tuple[str, str, str]]:
    """(version, date, body) per release, newest first."""
    marks = list(_RELEASE.finditer(text))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((m.group(1), m.group(2), text[m.end() : end]))
    return out


def release_line(text: str, notes: str) -> str:
    """A whole line of a GNU release's notes that occurs once in the file (one line, so a
    search for it can match)."""
    for line in notes.splitlines():
        words = line.strip()
        if 35 <= len(words) <= 75 and text.count(words) == 1 and words[0].isalpha():
            return words
    raise ValueError(notes[:80])


def gnu_news_questions(
    text: str, package: str, lookup: str, summed: tuple[str, str], section: str, twohop: str
) -> list[Question]:
    """The five questions over a GNU NEWS file, about the named releases."""
    releases = news_releases(text)
    by_version = {v: (d, body) for v, d, body in releases}
    bugs = {v: body.count("[bug introduced") for v, _, body in releases}
    one, two = summed
    return [
        Question(
            "lookup", f"On what date was {package} release {lookup} made?", by_version[lookup][0]
        ),
        Question("count", "How many releases does this NEWS file describe?", len(releases)),
        Question(
            "sum",
            f"How many '[bug introduced ...]' notes do releases {one} and {two} have together?",
            bugs[one] + bugs[two],
        ),
        Question(
            "section",
            f"Which {package} release's notes contain the text "
            f"'{release_line(text, by_version[section][1])}'?",
            section,
        ),
        Question(
            "twohop",
            f"On what date was the {package} release made whose notes contain the text "
            f"'{release_line(text, by_version[twohop][1])}'?",
            by_version[twohop][0],
        ),
    ]


def coreutils_questions(text: str) -> list[Question]:
    return gnu_news_questions(text, "coreutils", "8.30", ("9.0", "9.1"), "8.29", "8.26")


# ---------------------------------------------------------------------------------------------
# GnuPG's NEWS


def read_gnupg() -> str:
    return gzip.decompress(Path("/usr/share/doc/gnupg/NEWS.gz").read_bytes()).decode()


# One heading (0.9.9) has no date.
_VERSION_NOTES = re.compile(r"^Noteworthy changes in version (\S+)(?: \((\S+)\))?", re.M)


def gnupg_versions(text: str) -> dict[str, tuple[str, str]]:
    """{version: (date, notes)}, newest first."""
    marks = list(_VERSION_NOTES.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    pairs = zip(marks, ends, strict=True)
    notes = {m.group(1): (m.group(2) or "", text[m.end() : end]) for m, end in pairs}
    if len(notes) != len(marks):
        raise ValueError("a version is listed twice")
    return notes


def unique_line(text: str, notes: str) -> str:
    """A whole line of a version's notes, 35 to 75 characters, that occurs once in the file."""
    for line in notes.splitlines():
        words = line.strip().removeprefix("* ")
        if 35 <= len(words) <= 75 and text.count(words) == 1 and words[0].isalpha():
            return words
    raise ValueError("no unique line")


def gnupg_questions(text: str) -> list[Question]:
    versions = gnupg_versions(text)

    def items(version: str) -> int:
        return len(re.findall(r"^\s*\* ", versions[version][1], re.M))

    return [
        Question(
            "lookup", "On what date was GnuPG version 2.2.36 released?", versions["2.2.36"][0]
        ),
        # Not "how many versions": some versions are only listed, with no notes of their own.
        Question(
            "count",
            "How many 'Noteworthy changes in version ...' sections does this NEWS file have?",
            len(versions),
        ),
        Question(
            "sum",
            "How many change items (lines starting with '*') do the notes of GnuPG 2.2.38 and "
            "2.2.39 list together?",
            items("2.2.38") + items("2.2.39"),
        ),
        Question(
            "section",
            "Which GnuPG version's notes contain the text "
            f"'{unique_line(text, versions['2.2.28'][1])}'?",
            "2.2.28",
        ),
        Question(
            "twohop",
            "On what date was the GnuPG version released whose notes contain the text "
            f"'{unique_line(text, versions['2.2.33'][1])}'?",
            versions["2.2.33"][0],
        ),
    ]


# ---------------------------------------------------------------------------------------------
# GNU grep's NEWS, added in session 25 after that session's loop changes, as coreutils' NEWS
# is asked (the same GNU format); its held-out questions were first run on a frozen loop.


def read_grep() -> str:
    return gzip.decompress(Path("/usr/share/doc/grep/NEWS.gz").read_bytes()).decode()


def grep_questions(text: str) -> list[Question]:
    return gnu_news_questions(text, "grep", "3.4", ("2.27", "2.25"), "3.6", "3.1")
