"""Where a level would end stuck, helpers read the parts of the text most like the question
(as many as the time and sub-calls left pay for), and the model answers from their replies:
never for a count, never with the guards off, never for a run that answered."""

from __future__ import annotations

import ast
from dataclasses import replace

from rlm_research.graph import run
from rlm_research.nodes.guards.helper_sweep import (
    CODE,
    affordable,
    heading_path,
    reading_spans,
)
from rlm_research.tools.text_outline import Outline

from tests.support.scripted_models import RuleModel, py, script
from tests.test_guards import evidence


def entry(n: int, change: str) -> str:
    return (
        f"csvtool (1.{n}.0) unstable; urgency=medium\n\n  * {change}\n"
        f"  * Update the translations and the manual page for release 1.{n}.0.\n"
        f"  * Build with the newer compiler flags on every architecture.\n\n"
        f" -- Ann Lee <ann@example.org>  Mon, {n % 28 + 1:02d} Jan 2024 10:00:00 +0000\n"
    )


# A changelog of 40 entries (about 12,000 characters): one says what happens to an empty file,
# in words the model's search does not use.
ENTRIES = [entry(n, f"Speed up the writer by {n} percent.") for n in range(40, 0, -1)]
ENTRIES[23] = entry(17, "The reader now yields no rows for a file of zero bytes, not an error.")
CHANGELOG = "\n".join(ENTRIES)
QUESTION = "What does the reader do with a file of zero bytes since csvtool 1.17.0?"
SEARCH = py("hits = grep('empty file')\nprint(len(hits), hits)")


def reader_helper() -> RuleModel:
    """A helper that answers from the entry that says it, and NONE from any other part."""
    return RuleModel(rules=[("yields no rows", "It yields no rows.")], default="NONE")


def searcher(answer: str, before: str = "I could not find it.") -> RuleModel:
    """A root model that searches the same words until it is asked for its answer in words;
    it says `before` until a helper's reply is on screen, then `answer`."""
    rules = [(r"lines \d+-\d+: It yields", answer), ("your best final answer", before)]
    return RuleModel(rules=rules, default=SEARCH)


def test_a_stuck_lookup_is_read_by_helpers_and_answered(make_settings):
    # Asked for its answer in words, the model has none; helpers read the best parts, and
    # asked again, it answers from their reply.
    helper = reader_helper()
    root = searcher("It yields no rows.")
    result = run(QUESTION, CHANGELOG, settings=make_settings(model=root, sub_model=helper))
    assert result.status == "answered" and result.answer == "It yields no rows."
    # The entry that says it is among the parts read, under its own heading; not every part is.
    asked = [c for c in helper.calls if "yields no rows" in c]
    assert len(asked) == 1 and "csvtool (1.17.0)" in asked[0] and QUESTION in asked[0]
    assert len(helper.calls) == 1  # the other parts hold none of the question's rarer words
    sweep = [t for t in result.trajectory if "sub_lm_batched" in str(t.get("code"))]
    assert len(sweep) == 1 and sweep[0]["by"] == "loop"
    assert "It yields no rows." in sweep[0]["observation"]


def test_no_sweep_for_a_count_with_the_guards_off_or_after_an_answer(make_settings):
    # (The last case ends the loop on its own answer.)
    counted = "How many entries speed up the writer?"
    for question, guards, model in [
        (counted, "default", searcher("40")),
        (QUESTION, "off", searcher("It yields no rows.")),
        # A run the first request for its answer rescues never sweeps.
        (QUESTION, "default", searcher("x", before="It yields no rows for a file of zero bytes.")),
        (QUESTION, "default", script(py("FINAL('It yields no rows.')"))),
    ]:
        helper = reader_helper()
        settings = make_settings(model=model, sub_model=helper, guards=guards)
        result = run(question, CHANGELOG, settings=settings)
        assert not helper.calls, (question, guards)
        assert not any("sub_lm_batched" in str(t.get("code")) for t in result.trajectory)
    assert result.answer == "It yields no rows." and result.stop_reason == "answered"


def test_helpers_read_the_lines_most_like_the_question_in_their_entry():
    lines = CHANGELOG.splitlines()
    headings = {n for n, line in enumerate(lines, 1) if line.startswith("csvtool (")}
    spans = reading_spans(lines, headings, QUESTION, 3)
    a, b = spans[0]
    # The entry that says it, from its heading, is read first, and whole.
    assert lines[a - 1].startswith("csvtool (1.17.0)") and "zero bytes" in "\n".join(lines[a:b])
    assert all(sum(len(x) + 1 for x in lines[a - 1 : b]) <= 4000 for a, b in spans)
    # A phrase the question quotes outweighs its words found elsewhere.
    quoted = "Which release says 'Speed up the writer by 30 percent'?"
    a, b = reading_spans(lines, headings, quoted, 1)[0]
    assert lines[a - 1].startswith("csvtool (1.30.0)")
    # A word found in every part of the text says nothing about where to read.
    assert reading_spans(lines, headings, "Who is Ann Lee?", 3) == []


def test_a_part_of_a_source_file_names_its_file():
    # The class is deep in a file whose header is far above: the helper still sees the file.
    body = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(300))
    doc = f"=== pkg/a.py ===\ndef setup():\n{body}\n\nclass Parser:\n    pass\n"
    doc += "=== pkg/b.py ===\nfrom pkg.a import Parser\n"
    lines = doc.splitlines()
    outline = Outline(lines)
    (a, b), *_ = reading_spans(lines, {i + 1 for i in outline.at}, "Where is class Parser?", 1)
    assert any(line.startswith("class Parser") for line in lines[a - 1 : b])
    assert heading_path(a, lines, outline) == "(under '=== pkg/a.py ===')\n"


def test_as_many_parts_as_the_time_left_pays_for():
    # At 34 tokens a second, a 4,000-character part costs about 40 s with the reply.
    ev = evidence(QUESTION, "", "", None, sub_calls_left=100, reading_speed=34.0)
    paid = [affordable(replace(ev, seconds_left=s)) for s in (40, 150, 10_000)]
    assert paid == [0, 3, 4]  # four at most: past that, the parts match the question less
    assert affordable(evidence(QUESTION, "", "", None, sub_calls_left=1)) == 1
    assert affordable(evidence(QUESTION, "", "", None, sub_calls_left=0)) == 0


def test_the_code_holds_any_question_as_a_string():
    nasty = 'What is """ \\ \' ) ; import os; os.system("x") #?'
    code = CODE.format(spans=[(1, 2)], under=["(under 'x')\n"], question=nasty, ask="NONE", limit=9)
    tree = ast.parse(code)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import)]
    assert nasty in [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
