"""The REPL's reading helpers: `grep`, `around`, `section_of`, `section`, `headings`,
`judge_lines`, `count_lines` and `lines_sharing`, over `context` or any text the model's code
passes, and `Hit`, the line a search found.

Standard library only, like the worker that imports it (bound beside it in the sandbox). The
helpers reach the worker only through `ReplWorker`: its namespace (where `context` is), the
cell's list of searches (the host's count checks read them), and `request`, which asks helper
models through the host.
"""

from __future__ import annotations

from typing import Any, Protocol

if __package__:  # imported by the host, as rlm_research.tools.repl_text_api
    from . import line_counting, record_fields, text_outline, text_search
else:  # imported by the worker run as a script: its folder is on the path while it imports
    import line_counting  # type: ignore[no-redef]
    import record_fields  # type: ignore[no-redef]
    import text_outline  # type: ignore[no-redef]
    import text_search  # type: ignore[no-redef]

Outline = text_outline.Outline
grep_pattern, heading_path = text_search.grep_pattern, text_search.heading_path
line_index, numbered = text_search.line_index, text_search.numbered
nearest_headings, nearest_search = text_search.nearest_headings, text_search.nearest_search
PER_LINE_QUESTION, says_yes = line_counting.PER_LINE_QUESTION, line_counting.says_yes
line_mark_request, mark_from_reply = line_counting.line_mark_request, line_counting.mark_from_reply
lines_starting_with = line_counting.lines_starting_with
counts_top_level = line_counting.counts_top_level
TOP_LEVEL_NOTE = " at the top level, not indented"


class ReplWorker(Protocol):
    ns: dict[str, Any]
    searches: list[dict[str, Any]]

    def request(self, requests: list[dict[str, Any]]) -> list[str]: ...


class Hit(str):
    """A line `grep` found: the line's text, and `.n`, its line number (from 1) in the text
    searched. Shown as `12: 'the line'`, so printed hits say where they are; in a text with
    headings, also the headings it is under: `12: 'the line' (in 3: 'Chapter 2')`."""

    n: int
    within: str

    def __new__(cls, text: str, n: int, within: str = "") -> Hit:
        hit = super().__new__(cls, text)
        hit.n = n
        hit.within = within
        return hit

    def __repr__(self) -> str:
        where = f" (in {self.within})" if self.within else ""
        return f"{self.n}: {str.__repr__(self)}{where}"

    def __reduce__(self) -> tuple[Any, tuple[str, int, str]]:
        return (Hit, (str(self), self.n, getattr(self, "within", "")))


class Hits(list):
    """grep's result: a list of `Hit`s that prints each hit's headings only where they change
    from the hit before, so 86 hits under a few headings do not repeat them 86 times."""

    def __repr__(self) -> str:
        shown, before = [], None
        for hit in self:
            within = getattr(hit, "within", "")
            if isinstance(hit, Hit) and within and within == before:
                shown.append(f"{hit.n}: {str.__repr__(hit)}")
            else:
                shown.append(repr(hit))
            before = within
        return "[" + ", ".join(shown) + "]"

    __str__ = __repr__

    def __getitem__(self, key: Any) -> Any:
        got = super().__getitem__(key)
        return Hits(got) if isinstance(key, slice) else got


class Groups(list):
    """lines_sharing's result: a list of groups (`Hits`), printed with each group's record
    names first when each of its lines opens with its own (`(P-1, P-2): [4: 'P-1: ...', 90:
    'P-2: ...']`; not `(ERROR, ERROR)`: a word two lines open with names neither)."""

    def __repr__(self) -> str:
        shown = []
        for group in self:
            keys = [record_fields.record_key(str(hit)) for hit in group]
            named = None not in keys and len(set(keys)) == len(keys)
            names = "(" + ", ".join(map(str, keys)) + "): " if named else ""
            shown.append(names + repr(Hits(group)))
        return "[" + ",\n ".join(shown) + "]"

    __str__ = __repr__


def grep_hits(
    pattern: Any, lines: list[str], whole_words: bool = True, outline: Outline | None = None
) -> list[Hit]:
    """`grep_lines`, each line with its line number and, given the text's outline, its headings."""
    rx = grep_pattern(pattern, whole_words, lines)
    found = [i for i, line in enumerate(lines) if rx.search(line)]
    if outline is None or not outline.at:
        return [Hit(lines[i], i + 1) for i in found]
    return Hits(Hit(lines[i], i + 1, heading_path(outline, lines, i)) for i in found)


MARK_CHARS = 50  # room kept for each "[... N lines ...]" note of a section cut to a limit


def lines_near(lines: list[str], hit: int, start: int, end: int, room: int) -> list[str]:
    """The lines of `lines[start:end]` nearest line `hit` that fit in `room` characters, two
    after the hit for each one before it (what a signature or an entry's first line leads to
    follows it), with a note where lines are skipped. A line too long for the room closes its
    side; the hit's own line is cut to the room."""
    if start >= end:
        return []
    centre = low = high = min(max(hit, start), end - 1)
    used, step, room = len(lines[low]), 0, max(room, 0)
    later, earlier = high + 1 < end, low > start
    while later or earlier:
        after = later and (step % 3 != 2 or not earlier)
        k = high + 1 if after else low - 1
        if used + len(lines[k]) + 1 > room:
            later, earlier = (False, earlier) if after else (later, False)
            continue
        used, step = used + len(lines[k]) + 1, step + 1
        low, high = min(low, k), max(high, k)
        later, earlier = later and high + 1 < end, earlier and low > start
    kept = lines[low : high + 1]
    kept[centre - low] = lines[centre][:room]
    if low > start:
        kept.insert(0, f"[... {low - start} lines of this section skipped ...]")
    if high + 1 < end:
        kept.append(f"[... {end - high - 1} more lines of this section ...]")
    return kept


class TextApi:
    """The reading helpers of one worker, with the outline of its `context` kept between calls
    (each grep would otherwise scan a long text for headings again)."""

    def __init__(self, worker: ReplWorker) -> None:
        self.worker = worker
        self._outline_of: tuple[str, list[str], Outline] | None = None

    def functions(self) -> dict[str, Any]:
        """The helpers by the names the model's code calls them."""
        return {
            "grep": self.grep,
            "judge_lines": self.judge_lines,
            "count_lines": self.count_lines,
            "around": self.around,
            "section_of": self.section_of,
            "section": self.section,
            "headings": self.headings,
            "lines_sharing": self.lines_sharing,
        }

    def grep(self, pattern: Any, text: Any = None) -> list[str]:
        """Lines of `text` (default `context`) with `pattern` as whole words, any case; or a
        regex (see `grep_pattern`). Each hit shows its line number and its headings."""
        src_ctx = self.worker.ns.get("context", "")
        src = src_ctx if text is None else text
        lines, outline = self.lines_and_outline(src)
        hits = grep_hits(pattern, lines, outline=outline)
        # The host checks a count given as the answer against these (`answer_checks`).
        whole = text is None or (isinstance(text, str) and text == src_ctx)
        over = "context" if whole else "other"
        self.worker.searches.append(
            {"pattern": str(pattern)[:200], "hits": len(hits), "over": over}
        )
        if not hits:
            print(nearest_search(str(pattern), lines, outline, whole))
        return hits

    def around(self, where: Any, before: int = 3, after: int = 3, text: Any = None) -> str:
        """The lines around a hit (or a line number, or the first line holding a text),
        each with its line number."""
        lines, _ = self.lines_and_outline(text)
        i = line_index(where, lines)
        start = max(0, i - int(before))
        return numbered(lines[start : i + int(after) + 1], start)

    def heading_above(
        self, where: Any, text: Any
    ) -> tuple[list[str], Outline | None, int, int | None]:
        """The text's lines and outline, the index of `where`'s line, and of its heading."""
        lines, outline = self.lines_and_outline(text)
        i = min(line_index(where, lines), len(lines) - 1)
        path = outline.path(i) if outline is not None and i >= 0 else []
        return lines, outline, i, (path[-1] if path else None)

    def section_of(self, where: Any, text: Any = None) -> str:
        """The nearest heading at or above a hit (or a line number, or a text): markdown #,
        numbered, underlined or ALL CAPS headings, changelog versions. "" if none."""
        lines, _, _, head = self.heading_above(where, text)
        return "" if head is None else Hit(lines[head], head + 1)

    def section(self, where: Any, text: Any = None, limit: Any = None) -> str:
        """The whole section a hit (or a line number, or a text) is in: the headings above
        its own (a subsection alone does not say which release or chapter it belongs to),
        its nearest heading, then every line up to the next heading of the same or a higher
        rank. "" if none. With `limit` (characters), a longer section keeps its headings,
        the lines nearest the hit and its last non-blank line (where a changelog entry is
        signed and dated), the skipped lines marked, in at most `limit` characters:
        `section(hit)[:4000]` of a long section may never reach the hit."""
        lines, outline, at, head = self.heading_above(where, text)
        if head is None or outline is None:
            return ""
        outer = [lines[i] for i in outline.path(head, include_self=False)]
        end = outline.end_of_section(head, len(lines))
        whole = "\n".join(outer + lines[head:end])
        if limit is None or len(whole) <= int(limit):
            return whole
        hit, cap = max(at, head + 1), max(int(limit), 0)
        last = next((i for i in range(end - 1, hit, -1) if lines[i].strip()), None)
        closing = [] if last is None else [lines[last][: cap // 4]]
        room = cap - len("\n".join([*outer, lines[head], *closing])) - 2 * MARK_CHARS
        near = lines_near(lines, hit, head + 1, end if last is None else last, room)
        return "\n".join(outer + [lines[head]] + near + closing)[:cap]

    def headings(self, words: Any = None, text: Any = None) -> list[str]:
        """The heading lines of `text` (default `context`) with their line numbers; only
        those holding `words` (matched as grep matches) if given. Not a search the count
        guard reviews: a heading line is a section, not a line that may or may not count."""
        lines, outline = self.lines_and_outline(text)
        rx = grep_pattern(words, lines=lines) if words else None
        at = outline.at if outline is not None else []
        found = Hits(Hit(lines[i], i + 1) for i in at if rx is None or rx.search(lines[i]))
        if words and not found and outline is not None and outline.at:
            print(nearest_headings(str(words), lines, outline))
        return found

    # judge_lines' helper frames, measured on the embedded 1.5B model: asked the question itself
    # of a line ("does this line count?"), helpers said no to all 79 lines carrying the asked
    # label; asked a one-line question a helper wrote from it, line first, they judged 75 of 76
    # lines of three review sets and 218 of 218 labelled lines right (question first: 76 of 76,
    # but 131 of 146).
    def judge_lines(self, lines: Any, question: Any) -> list[str]:
        """The lines that helpers judge to count for `question`: one helper turns it into
        a yes/no question about one line, then one helper per line answers that."""
        items = [str(x) for x in lines]
        if not items:
            return []
        made = self.worker.request([{"prompt": PER_LINE_QUESTION + str(question), "context": None}])
        ask = next((s.strip() for s in made[0].splitlines() if s.strip()), "")
        ask = ask or f"Does this line count for the question: {question}"
        replies = self.worker.request(
            [{"prompt": f"Line: {x}\n\n{ask} Reply yes or no.", "context": None} for x in items]
        )
        print(f"(judge_lines asked each line: {ask})")
        return [x for x, r in zip(items, replies, strict=True) if says_yes(r)]

    def count_lines(self, question: Any, text: Any = None) -> list[str]:
        """The lines of `text` (default `context`; not its headings) that `question` counts:
        one helper names the word or mark that starts each of them, then code finds the
        lines that start with it (not indented, for a question about the top level: a method
        is not a top-level function); the mark is printed with them."""
        lines, outline = self.lines_and_outline(text)
        heads = set(outline.at) if outline is not None else set()
        reply = self.worker.request([{"prompt": line_mark_request(str(question)), "context": None}])
        mark = mark_from_reply(reply[0])
        if mark is None:
            print(f"(count_lines: the helper named no word or mark: {reply[0][:200]!r})")
            return Hits()
        body = [line if i not in heads else "" for i, line in enumerate(lines)]
        top_level = counts_top_level(str(question))
        found = lines_starting_with(mark, body, top_level)
        paths = outline is not None and bool(outline.at)
        hits = Hits(
            Hit(lines[i], i + 1, heading_path(outline, lines, i) if paths else "") for i in found
        )
        over = "context" if text is None else "other"
        self.worker.searches.append({"pattern": mark, "hits": len(hits), "over": over})
        print(
            f"(count_lines: a helper said the counted lines start with {mark!r}; "
            f"{len(hits)} lines start with it{TOP_LEVEL_NOTE if top_level else ''})"
        )
        return hits

    def lines_sharing(self, *labels: Any, text: Any = None) -> list[Hits]:
        """Groups of lines of `text` (default `context`) that have the same value after each
        label (`lines_sharing("lives in", "born")`: the records that share a city and a birth
        date; `lines_sharing("user=")` for `key=value` fields); only groups of two or more."""
        lines, _ = self.lines_and_outline(text)
        names = [str(label) for label in labels]
        if not names:
            found = record_fields.field_labels(lines)
            print(f"(lines_sharing: name the labels to group by; this text's fields: {found})")
            return Groups()
        groups = Groups(
            Hits(Hit(lines[i], i + 1) for i in members)
            for members in record_fields.groups_sharing(names, lines)
        )
        print(f"(lines_sharing: {len(groups)} groups of lines share their {' and '.join(names)})")
        return groups

    def lines_and_outline(self, text: Any) -> tuple[list[str], Outline | None]:
        """`text` (default `context`) as lines, and for a string its outline, kept for `context`
        so that each grep does not scan a long text for headings again."""
        src = self.worker.ns.get("context", "") if text is None else text
        if not isinstance(src, str):
            return [str(x) for x in src], None
        cached = self._outline_of
        if cached is not None and cached[0] is src:
            return cached[1], cached[2]
        lines = src.splitlines()
        outline = Outline(lines)
        if src is self.worker.ns.get("context"):
            self._outline_of = (src, lines, outline)
        return lines, outline
