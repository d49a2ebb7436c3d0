"""Counting inside the parts a question names: the REPL's `count_lines` (one helper names the
word or mark that starts each counted line, code counts), and the stuck advice that offers it
(and the loop runs) for a count question whose parts' headings the run has found."""

from __future__ import annotations

from rlm_research.graph import run
from rlm_research.nodes import guards
from rlm_research.nodes.guards.counted_parts import count_in_parts, part_terms, parts_in_range

from tests.support.scripted_models import RuleModel, py, script
from tests.test_guards import CHANGELOG, SOURCE

TREE = (
    "=== pkg/a.py ===\n"
    + SOURCE
    + "\nclass Other:\n    pass\n\n"
    + "=== pkg/b.py ===\n"
    + "".join(f"class B{i}:\n    x = {i}\n\n" for i in range(3))
)
CLASS_QUESTION = "How many classes are defined at the top level of pkg/a.py?"
ITEMS_QUESTION = (
    "How many change items (lines starting with '*') do mytool 1.2.0 and 1.1.0 list together?"
)


def mark_helper(mark: str) -> RuleModel:
    """A helper that names `mark` when asked which word or mark starts the counted lines."""
    return RuleModel(rules=[("starts with the same word or mark", f"`{mark}`")])


def after_search(question: str, printed: str, heads: dict[int, str]) -> guards.Evidence:
    """A stuck turn whose search printed `printed`, over a text with headings `heads`."""
    result = {"blocks": [{"stdout": printed, "stderr": "", "error": None}], "final": None}
    return guards.Evidence(
        question=question,
        code=["print(grep('x'))"],
        result=result,
        final=None,
        searches=[],
        new_searches=[],
        after_empty=False,
        sub_calls_left=5,
        headings_at=lambda: heads,
    )


def root_calls(result) -> int:
    return result.usage["models"]["fakelistchatmodel"]["calls"]


def test_count_lines_counts_the_lines_that_start_with_the_mark_a_helper_named(make_settings):
    code = py(
        "hits = count_lines('How many classes are defined at the top level?', "
        "section(grep('pkg/a.py')[0]))\nprint(len(hits), hits)"
    )
    helper = mark_helper("class")
    settings = make_settings(model=script(code, py("FINAL('2')")), sub_model=helper)
    result = run(CLASS_QUESTION, TREE, settings=settings)
    out = result.trajectory[0]["observation"]
    assert "(count_lines: a helper said the counted lines start with 'class'; 2 lines" in out
    assert "2 [" in out and "'class Reader:'" in out and "'class Other:'" in out
    assert "B0" not in out  # pkg/b.py's classes are not in the section
    assert result.answer == "2"


def test_a_mark_no_line_starts_with_counts_nothing(make_settings):
    # A log's lines start with their date: a helper's guess that they start with the level is
    # wrong, and counting lines that merely hold it would be another question's count.
    from tests.test_guards import LOG

    code = py("hits = count_lines('How many lines record a timeout?')\nprint(len(hits))")
    helper = mark_helper("TIMEOUT")
    settings = make_settings(model=script(code, py("FINAL('x')")), sub_model=helper)
    result = run("How many lines record a timeout?", LOG, settings=settings)
    out = result.trajectory[0]["observation"]
    assert "start with 'TIMEOUT'; 0 lines start with it" in out and "\n0\n" in out


def test_count_lines_with_no_pattern_in_the_reply_says_so_and_counts_nothing(make_settings):
    code = py("hits = count_lines('How many classes?')\nprint(len(hits))")
    helper = RuleModel(rules=[("word or mark", "I cannot tell which lines the question means.")])
    result = run(
        "How many classes?",
        TREE,
        settings=make_settings(model=script(code, py("FINAL('x')")), sub_model=helper),
    )
    out = result.trajectory[0]["observation"]
    assert "(count_lines: the helper named no word or mark" in out
    assert "\n0\n" in out and not result.trajectory[0].get("error")


def test_a_stuck_count_of_one_files_classes_is_counted_inside_that_file(make_settings):
    # The PyYAML shape: the model finds the file's header and searches it again and again.
    same = py("hits = grep('pkg/a.py')\nprint(len(hits), hits)")
    helper = mark_helper("class")
    root = script(same, same, py("FINAL('2')"))
    result = run(CLASS_QUESTION, TREE, settings=make_settings(model=root, sub_model=helper))
    notice = result.trajectory[1]["observation"]
    assert "counts lines inside '=== pkg/a.py ==='" in notice
    ran = result.trajectory[2]
    assert ran["by"] == "loop" and "count_lines(" in ran["code"][0]
    assert "2 [" in ran["observation"] and "'class Other:'" in ran["observation"]
    assert result.answer == "2" and result.stop_reason == "answered"
    assert root_calls(result) == 3 and len(helper.calls) == 1


def test_a_model_that_searches_again_after_the_loops_count_is_shown_that_count(make_settings):
    same = py("hits = grep('pkg/a.py')\nprint(len(hits), hits)")
    helper = mark_helper("class")
    root = script(same, same, same, same, py("FINAL('2')"))
    result = run(CLASS_QUESTION, TREE, settings=make_settings(model=root, sub_model=helper))
    shown = [t["observation"] for t in result.trajectory if "count code run above" in str(t)]
    assert len(shown) == 1 and "found 2 lines that start with 'class'" in shown[0]
    assert "FINAL('2')" in shown[0]
    assert result.answer == "2" and len(helper.calls) == 1  # counted once


def test_two_named_versions_are_counted_together(make_settings):
    # The GnuPG shape: the question names two releases; the model's search printed the hits
    # under both entries' headings, then it repeated itself.
    same = py("hits = grep('Closes')\nprint(len(hits), hits)")
    helper = mark_helper("*")
    root = script(same, same, py("FINAL('4')"))
    result = run(ITEMS_QUESTION, CHANGELOG, settings=make_settings(model=root, sub_model=helper))
    ran = result.trajectory[2]
    assert ran["by"] == "loop"
    assert '"\\n".join([section(1), section(8)])' in ran["code"][0]
    assert "start with '*'; 4 lines start with it" in ran["observation"]
    assert "1.2.0" not in helper.calls[0] and "mytool this text and this text" in helper.calls[0]
    assert "\n4 [" in ran["observation"]
    assert result.answer == "4"


def test_the_second_file_of_a_sum_is_counted_too_though_no_output_showed_it(make_settings):
    # The tenacity shape: asked about two files together, the model found the first file's
    # header only and searched it again; the second file's one header is counted in as well.
    question = "How many top-level functions do tool/a.py and tool/b.py define together?"
    heads = {1: "=== tool/a.py ===", 7: "=== tool/b.py ===", 12: "=== tool/c.py ==="}
    ev = after_search(question, "1 [1: '=== tool/a.py ===']", heads)
    found = count_in_parts(ev)
    assert found is not None and '"\\n".join([section(1), section(7)])' in found.message
    assert "section(12)" not in found.message
    # A part named by no output and by no heading, or by several, is not guessed at; nor is
    # a heading of another kind (the function the counted lines call, not a file).
    ev.question = "How many functions do tool/a.py and tool/d.py define together?"
    assert "part = section(1)\n" in count_in_parts(ev).message
    heads[3] = "def log_event(x):"
    ev.question = "How many functions in tool/a.py call log_event?"
    assert "part = section(1)\n" in count_in_parts(ev).message


def test_a_stuck_model_that_printed_its_own_count_is_offered_that_count(make_settings):
    # A count the model's code printed again is what the advice offers; nothing is counted anew.
    same = py("n = len(grep('^class ', section(grep('pkg/a.py')[0])))\nprint(n)")
    helper = mark_helper("class")
    root = script(same, same, py("FINAL('2')"))
    result = run(CLASS_QUESTION, TREE, settings=make_settings(model=root, sub_model=helper))
    assert "FINAL('2')" in result.trajectory[1]["observation"]
    assert not any(t.get("by") for t in result.trajectory) and not helper.calls
    assert result.answer == "2"


def test_with_guards_off_or_no_sub_call_left_nothing_is_counted_for_the_model(make_settings):
    same = py("hits = grep('pkg/a.py')\nprint(len(hits), hits)")
    for overrides in ({"guards": "off"}, {"max_sub_calls": 0}):
        helper = mark_helper("class")
        root = script(same, same, py("FINAL('2')"))
        settings = make_settings(model=root, sub_model=helper, **overrides)
        result = run(CLASS_QUESTION, TREE, settings=settings)
        assert not any("count_lines" in str(t.get("code")) for t in result.trajectory)
        assert not helper.calls


def test_only_headings_that_hold_a_named_part_are_counted_in():
    question = "How many classes are defined at the top level of yaml/constructor.py?"
    assert part_terms(question) == ["yaml/constructor.py"]
    assert part_terms("How many releases since 2019?") == []  # a bare number names no part
    printed = (
        "2 [3: '# Abstract classes.' (in 1: '=== yaml/events.py ==='), "
        "9: 'class A:' (in 7: '=== yaml/constructor.py ===')]"
    )
    heads = {1: "=== yaml/events.py ===", 7: "=== yaml/constructor.py ==="}
    found = count_in_parts(after_search(question, printed, heads))
    assert found is not None and "part = section(7)" in found.message
    # The helper is asked about "this text": the part's name is where, not what, it counts.
    assert "'How many classes are defined at the top level of this text?'" in found.message
    assert "section(1)" not in found.message


def test_a_helpers_reply_is_read_as_a_mark_only_when_it_is_one():
    from rlm_research.tools.line_counting import lines_starting_with, mark_from_reply

    assert mark_from_reply("`class`") == "class"
    assert mark_from_reply("'*'\n") == "*"
    assert mark_from_reply("The lines are the ones that define classes in the file.") is None
    assert mark_from_reply("") is None
    lines = ["class A:", "classify = 1", "    class B:", "  * item"]
    assert lines_starting_with("class", lines) == [0, 2]  # "classify" is another word
    assert lines_starting_with("*", lines) == [3]


def test_a_count_that_found_nothing_leads_to_reading_the_first_part(make_settings):
    # The libtasn1 shape: parameters are not lines that start with one mark; a helper's guess
    # counts nothing, and the model, repeating the count, is shown the first entry to read.
    from tests.test_guards import MANUAL

    doc = MANUAL + "[Function]int tool_write (node root, const char * name, int len)\n"
    question = "How many parameters do tool_read and tool_write take together?"
    search = py("hits = grep('tool_read tool_write')\nprint(len(hits), hits)")
    helper = mark_helper("param")
    root = script(search, search, search, py("FINAL('5')"))
    result = run(question, doc, settings=make_settings(model=root, sub_model=helper))
    by_loop = [t for t in result.trajectory if t.get("by") == "loop"]
    assert "count_lines(" in by_loop[0]["code"][0]
    assert "0 lines start with it" in by_loop[0]["observation"]
    assert by_loop[1]["code"][0].startswith("print(section(")
    assert "[Function]int tool_" in by_loop[1]["observation"]


RELEASES = "".join(
    f"mytool (1.{v}.0) unstable; urgency=medium\n\n"
    + "".join(f"  * Change {v}.{k} (Closes: #{v}{k})\n" for k in range(v + 1))
    + f"\n -- Ann Lee <ann@example.org>  Mon, 0{v + 1} Jan 2023 10:00:00 +0100\n\n"
    for v in (4, 3, 2, 1)
)


def test_a_range_of_versions_is_counted_in_every_version_between_its_ends(make_settings):
    # "1.1.0 to 1.3.0" names two entries; the count covers 1.3.0, 1.2.0 and 1.1.0 (4+3+2
    # items), not 1.4.0 above the range.
    question = "How many change items do mytool 1.1.0 to 1.3.0 list in total?"
    same = py("hits = grep('Closes')\nprint(len(hits), hits)")
    root = script(same, same, py("FINAL('9')"))
    result = run(question, RELEASES, settings=make_settings(model=root, sub_model=mark_helper("*")))
    ran = result.trajectory[2]
    assert ran["by"] == "loop" and ran["code"][0].count("section(") == 3
    assert "start with '*'; 9 lines start with it" in ran["observation"]
    assert "Change 4.0" not in ran["observation"] and result.answer == "9"


def test_a_range_whose_ends_are_not_headings_counts_only_the_named_parts():
    headings = {1: "mytool (1.2.0) unstable", 8: "mytool (1.1.0) unstable", 15: "mytool (1.0.0)"}
    found = [(1, headings[1]), (8, headings[8])]
    assert parts_in_range("How many items from 1.1.0 to 2.0.0?", found, headings) == []
    assert parts_in_range("How many items in 1.1.0 and 1.2.0?", found, headings) == []
    both = parts_in_range(
        "How many items between 1.2.0 and 1.0.0?", [*found, (15, headings[15])], headings
    )
    assert [n for n, _ in both] == [1, 8, 15]


def test_a_question_about_the_top_level_counts_only_unindented_lines(make_settings):
    # A method is an indented `def`: it is not one of the file's top-level functions.
    tree = "=== pkg/a.py ===\n" + SOURCE + "\ndef main():\n    pass\n"
    counted = {}
    for question in (
        "How many top-level functions does this text define?",
        "How many functions does this text define?",
    ):
        code = py(f"hits = count_lines({question!r})\nprint(len(hits), hits)")
        settings = make_settings(model=script(code, py("FINAL('x')")), sub_model=mark_helper("def"))
        out = run(question, tree, settings=settings).trajectory[0]["observation"]
        counted[question] = out
    top, every = counted.values()
    assert "2 lines start with it at the top level, not indented" in top
    assert "def read(self)" not in top and "'def main():'" in top
    assert "3 lines start with it)" in every and "def read(self)" in every
