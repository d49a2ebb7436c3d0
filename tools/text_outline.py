"""A text's outline: which lines are headings, their ranks, and the section each line is in
(changelog versions, markdown and org marks, numbered and underlined headings, ALL CAPS lines,
texinfo definitions, `=== file ===` headers of joined sources).

Standard library only: the REPL worker imports it from beside itself, in the sandbox too."""

from __future__ import annotations

import bisect
import re

# Headings and their depth (0 outermost). "=== file ===" (one source among several, as
# `context` joins them) 0; a changelog version ("pkg (1.2-3) unstable; urgency=low",
# "1.2.0 (2024-01-02)", "Version 1.2", "[1.2.3] - 2024-01-02") or "Chapter 4: ..." 1; markdown
# "# x" and org "* x" at column 0 by their marks; numbered "3.2 Install" by its parts; a
# texinfo definition ("[Function]int f (...)", a GNU manual's PDF) 3; ALL CAPS lines 3.
_VERSION = re.compile(r"(?i)(version\s+|v)?\[?\d+\.\d+(\.\d+)*[\w.+-]*\]?(\s*[-(:].{0,60})?$")
_SOURCE_HEADER = re.compile(r"=== .+ ===$")  # 0, checked first (heading_level)
_LEVELED = (
    (re.compile(r"\S+ \([^)\s]+\) [^;]+; urgency=\S+"), lambda m: 1),
    (re.compile(r"(?i)(chapter|part|appendix)\s+[\dA-Z]+\b"), lambda m: 1),
    (re.compile(r"(#{1,6})\s+\S"), lambda m: len(m.group(1))),
    (re.compile(r"(\*{1,4}) \S"), lambda m: len(m.group(1))),
    (re.compile(r"\d+((?:\.\d+)*)\.?\s+[A-Z][^.!?]{0,80}$"), lambda m: 1 + m.group(1).count(".")),
    (_VERSION, lambda m: 1),
    (re.compile(r"\[(Function|Macro|Variable|Data Type|Constant)\]\S"), lambda m: 3),
    (re.compile(r"(?=.*[A-Z]{3})[A-Z][A-Z0-9 ,:&/()'.-]{2,79}$"), lambda m: 3),
)
_PAGE_NUMBERED = re.compile(r"(.*\D)\s+\d+$")  # "Chapter 4: Function reference 12"
_AT_COLUMN_0 = re.compile(r"[#*]")  # markdown and org marks count only at a line's start
_UNDERLINE = re.compile(r"^\s*([=\-~^*#])\1{2,}\s*$")


def heading_level(line: str, next_line: str = "") -> int | None:
    """The depth of `line` as a heading (see `_LEVELED`; underlined by "===" 1, by "---" 2, by
    other marks 3), or None if it does not look like one."""
    text = line.strip()
    if not text or len(text) > 100 or _UNDERLINE.match(text):
        return None
    if _SOURCE_HEADER.match(text):  # whatever its file's first line is (a "####" banner)
        return 0
    under = _UNDERLINE.match(next_line)
    if under:
        return {"=": 1, "-": 2}.get(under.group(1), 3)
    for rx, level in _LEVELED:
        m = rx.match(text)
        if m and not (_AT_COLUMN_0.match(text) and text != line.rstrip()):
            return level(m)
    return None


class Outline:
    """Which headings a text's lines are under: built once per text, asked per line. A PDF's
    running header ("Chapter 4: Function reference 12" atop every page) is not a heading: a
    heading that ends in a number and repeats with other numbers three times or more is
    dropped, so a section does not end at each page break."""

    def __init__(self, lines: list[str]) -> None:
        found: list[tuple[int, int]] = []
        for i, line in enumerate(lines):
            lv = heading_level(line, lines[i + 1] if i + 1 < len(lines) else "")
            if lv is not None:
                found.append((i, lv))
        # A heading's text without its trailing number, for those that end in one.
        stem = {i: m.group(1) for i, _ in found if (m := _PAGE_NUMBERED.match(lines[i].strip()))}
        repeats: dict[str, int] = {}
        for text in stem.values():
            repeats[text] = repeats.get(text, 0) + 1
        kept = [(i, lv) for i, lv in found if repeats.get(stem.get(i, ""), 0) < 3]
        self.at: list[int] = [i for i, _ in kept]  # 0-based indices of heading lines, ascending
        self.level: list[int] = [lv for _, lv in kept]

    def path(self, i: int, include_self: bool = True) -> list[int]:
        """Indices of the headings line `i` is under, outermost first: the nearest heading at or
        above it, then each earlier heading of a smaller depth. A heading's own path without
        itself holds only headings of a smaller depth than its own."""
        k = bisect.bisect_right(self.at, i) - 1
        found: list[int] = []
        depth = None
        if k >= 0 and self.at[k] == i:
            if include_self:
                found.append(i)
            depth = self.level[k]
            k -= 1
        while k >= 0:
            if depth is None or self.level[k] < depth:
                found.append(self.at[k])
                depth = self.level[k]
            k -= 1
        return found[::-1]

    def end_of_section(self, head: int, n_lines: int) -> int:
        """The index after the last line of the section headed by line `head`: the next heading
        of the same or a smaller depth, or the text's end."""
        k = bisect.bisect_left(self.at, head)
        if k >= len(self.at) or self.at[k] != head:
            return n_lines
        for j in range(k + 1, len(self.at)):
            if self.level[j] <= self.level[k]:
                return self.at[j]
        return n_lines


# How a heading begins: its marks and first word ("* Noteworthy", "apt", "[Function", "=== yaml").
_KIND = re.compile(r"\W*\w+")


def heading_kind(heading: str) -> str:
    """How a heading begins, any digits alike: "apt (2.5.6) ..." -> "apt", "4.4 Errors" -> "#"."""
    text = heading.strip()
    m = _KIND.match(text)
    return re.sub(r"\d+", "#", (m.group() if m else text[:3]).lower())


def heading_kinds(lines: list[str], outline: Outline) -> list[list[int]]:
    """The outline's headings grouped by how they begin (marks and first word, any digits
    alike), outermost first (by the smallest depth in the group), then largest, each as 0-based
    line indices. A changelog's entries, a NEWS file's releases or a manual's function entries
    each form one group, so the first message can say how many there are and what they look
    like; a release's subsections ("** Bug fixes") come after the releases."""
    groups: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    for i, level in zip(outline.at, outline.level, strict=True):
        key = heading_kind(lines[i])
        groups.setdefault(key, []).append(i)
        depth[key] = min(level, depth.get(key, level))
    order = sorted(groups, key=lambda k: (depth[k], -len(groups[k]), groups[k][0]))
    return [groups[k] for k in order]
