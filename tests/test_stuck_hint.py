"""The stuck hint points at the line, of all its search found, most like the question, and at
the next link it names or the value it gives."""

from __future__ import annotations

from rlm_research.graph import run

from tests.support.scripted_models import RuleModel, py, script

DOC = "\n".join(
    ["Ada Brook (born 1970) is an engineer who grew up in Loane. She works for Quill Works."]
    + [
        f"Worker{i} Smith is an engineer. Since 2001 he has worked for Quill Works."
        for i in range(20)
    ]
    + [
        "Loane is a market town. It was founded in 1500.",
        "Omaoma is a market town on the Dar river. It was founded in 1678.",
        "Reed Mills is a firm founded in 1902. Its headquarters are in Omaoma.",
        "Quill Works is a firm founded in 1861. Its headquarters are in Omaoma.",
    ]
)
QUESTION = "In what year was the town founded where the headquarters of Ada Brook's employer are?"


def test_the_hint_follows_the_chain_through_lines_the_model_did_not_print(make_settings):
    person = py("print(grep('Ada Brook'))")
    firm = py("hits = grep('Quill Works')\nprint(len(hits), hits[:3])")
    town = py("hits = grep('Omaoma')\nprint(len(hits), hits[:10])")
    root = script(person, firm, firm, town, town, py("FINAL('1678')"))
    result = run(QUESTION, DOC, settings=make_settings(model=root))
    assert result.answer == "1678"
    # The firm's own line was 22nd of 22 hits, not printed; the hint quotes it and the link.
    on_firm = result.trajectory[2]["observation"]
    assert "'Quill Works is a firm founded in 1861. Its headquarters are in Omaoma.'" in on_firm
    assert "It names Omaoma, which you have not searched for yet" in on_firm
    assert "hits = grep('Omaoma')" in on_firm
    # The model repeated itself: the loop ran that search in its place.
    assert result.trajectory[3]["by"] == "loop" and "1678" in result.trajectory[3]["observation"]
    # On the town, whose search the model ran again with code of its own (the same output as
    # the loop's run, so a repeat): of the town's line and a firm's (two words of the question
    # each), the line about the searched name, and the value after the question's word.
    on_town = result.trajectory[4]["observation"]
    assert "It says \"founded in 1678\": if that answers the question, write FINAL('1678')" in (
        on_town
    )


def test_no_line_is_pointed_at_when_none_stands_out(make_settings):
    same = py("print(grep('engineer'))")
    root = script(same, same, py("FINAL('x')"))
    result = run("Who is the oldest engineer?", DOC, settings=make_settings(model=root))
    hint = result.trajectory[1]["observation"]
    assert "You are repeating yourself" in hint and "most words of the question" not in hint


def test_a_repeated_search_hit_is_never_offered_as_final_but_its_entry_is_shown(make_settings):
    # A changelog: the question quotes a change; its date is in the entry's trailer line.
    from tests.test_guards import CHANGELOG

    same = py("hits = grep('GitHub Actions variables')\nprint(len(hits), hits)")
    look = py("print(around('* Read settings from GitHub Actions variables.', before=5, after=10))")
    root = script(same, same, look, py("FINAL('Fri, 02 Dec 2022')"))
    question = (
        "On what date was the version uploaded that reads settings from GitHub Actions variables?"
    )
    result = run(question, CHANGELOG, settings=make_settings(model=root))
    assert result.answer == "Fri, 02 Dec 2022"
    hint = result.trajectory[1]["observation"]
    assert "repeating yourself" in hint
    assert 'FINAL("1 [' not in hint and "FINAL('1 [" not in hint
    assert "around('* Read settings from GitHub Actions variables.'" in hint
    # The code it offers runs over the document and shows the entry's trailer.
    assert "Bo Chan <bo@example.org>  Fri, 02 Dec 2022" in result.trajectory[2]["observation"]


def test_after_an_empty_phrase_search_a_give_up_or_a_repeat_is_pointed_at_the_entry(make_settings):
    # The question says "version 1.1.0"; the changelog writes "mytool (1.1.0)". The search is
    # empty, but its note names the entry's heading; the signer is in the entry's last line.
    from tests.test_guards import CHANGELOG

    search = py("hits = grep('mytool version 1.1.0')\nprint(len(hits), hits)")
    read = py("print(section(8))")
    root = script(search, py("FINAL('NONE')"), search, read, py("FINAL('Bo Chan')"))
    # Reading the section again, the model is stuck: a helper reads it (helper_read.py).
    helper = RuleModel(rules=[("Answer from this text only", "Bo Chan")])
    settings = make_settings(model=root, sub_model=helper)
    result = run("Who signed mytool version 1.1.0?", CHANGELOG, settings=settings)
    assert result.answer == "Bo Chan"
    observations = [t["observation"] for t in result.trajectory]
    assert "To read the first in full: print(section(8))" in observations[0]
    assert "Not finished" in observations[1] and "print(section(8))" in observations[1]
    assert "repeating yourself" in observations[2] and "print(section(8))" in observations[2]
    assert "chunks = " not in observations[2]  # not sent to read the whole text in chunks
    assert "-- Bo Chan <bo@example.org>" in observations[3]


def test_an_empty_search_in_text_without_headings_still_suggests_chunks(make_settings):
    from tests.test_guards import LOG

    search = py("print(grep('gateway error budget'))")
    root = script(search, search, py("FINAL('x')"))
    result = run("What is the gateway error budget?", LOG, settings=make_settings(model=root))
    assert "print(section(" not in result.trajectory[0]["observation"]
    assert "chunks = " in result.trajectory[1]["observation"]


def test_one_line_found_again_is_shown_with_its_headings_and_the_code_to_read_its_entry(
    make_settings,
):
    from tests.test_repl_helpers import NEWS

    same = py("hits = grep('tool now reads files larger than 4 GiB.')\nprint(len(hits), hits)")
    root = script(same, same, py("FINAL('2.0')"))
    question = "Which release's notes contain 'tool now reads files larger than 4 GiB.'?"
    result = run(question, NEWS, settings=make_settings(model=root))
    hint = result.trajectory[1]["observation"]
    assert "found its one line again" in hint
    assert "It is under 9: '* Noteworthy changes in release 2.0 (2023-11-02) [stable]'" in hint
    assert "print(section('tool now reads files larger than 4 GiB.', limit=4000))" in hint
    assert result.answer == "2.0"  # the hint sends nothing back


def test_the_section_code_the_model_already_ran_is_not_offered_again(make_settings):
    from tests.test_guards import MANUAL

    doc = MANUAL + "--- page 30 ---\nIndex\ntool_read . . . . . . . 16\n"
    same = py("hits = grep('tool_read')\nprint(len(hits), hits)")
    line = "[Function]int tool_read (node root, const char * name)"
    read = py(f"print(section({line!r}, limit=4000))\nprint(around({line!r}, before=5, after=10))")
    root = script(same, same, read, read, py("FINAL('int')"))
    question = "What is the return type of the function tool_read?"
    helper = RuleModel(rules=[("Answer from this text only", "int")])
    result = run(question, doc, settings=make_settings(model=root, sub_model=helper))
    offered, again = result.trajectory[1]["observation"], result.trajectory[3]["observation"]
    assert f"print(section({line!r}, limit=4000))" in offered
    # Read again: not the same code offered, but the section handed to a helper (helper_read.py).
    assert "repeating yourself" in again
    assert "print(section(" not in again.split("repeating yourself")[1]
    assert "sub_lm(" in result.trajectory[4]["code"][0] and len(helper.calls) == 1
    assert result.answer == "int"


def test_with_no_helper_left_the_section_already_read_is_pointed_at_not_offered(make_settings):
    from tests.test_guards import MANUAL

    same = py("hits = grep('tool_read')\nprint(len(hits), hits)")
    line = "[Function]int tool_read (node root, const char * name)"
    read = py(f"print(section({line!r}, limit=4000))\nprint(around({line!r}, before=5, after=10))")
    root = script(same, same, read, read, py("FINAL('int')"))
    question = "What is the return type of the function tool_read?"
    # 20 s left: no time for a helper to read the section (helper_read.can_pay).
    result = run(question, MANUAL, settings=make_settings(model=root, max_seconds=20))
    again = result.trajectory[3]["observation"]
    assert "printed its section already" in again
    assert "print(section(" not in again.split("repeating yourself")[1]
    assert result.answer == "int"


def test_a_model_that_repeats_an_empty_search_is_shown_the_section_the_notice_offers(make_settings):
    # The libtasn1 shape: the search names two functions at once and finds no line; its note
    # lists a line for each. The model searches again instead of reading; the loop reads the
    # first one's section in its place, and the model answers from what it shows.
    from tests.test_guards import MANUAL

    search = py("hits = grep('tool_read tool_write')\nprint(len(hits), hits)")
    root = script(search, search, py("FINAL('int')"))
    question = "What is the return type of the function tool_read?"
    result = run(question, MANUAL, settings=make_settings(model=root))
    assert result.answer == "int"
    assert calls(result) == 3  # the loop's turn costs no model call
    by_loop = [t for t in result.trajectory if t.get("by") == "loop"]
    assert len(by_loop) == 1 and "print(section(" in by_loop[0]["code"][0]
    assert "[Function]int tool_read" in by_loop[0]["observation"]


def test_offered_code_that_asks_helpers_is_never_run_for_the_model(make_settings):
    # In a text without headings the advice after empty searches is helpers over chunks: that
    # spends the run's budget, so it stays advice.
    from tests.test_guards import LOG

    search = py("print(grep('gateway error budget'))")
    root = script(search, search, py("FINAL('x')"))
    result = run("What is the gateway error budget?", LOG, settings=make_settings(model=root))
    assert not any(t.get("by") for t in result.trajectory)
    assert result.usage.get("sub_calls", 0) == 0


def test_with_guards_off_the_loop_runs_nothing_for_the_model(make_settings):
    from tests.test_guards import MANUAL

    search = py("hits = grep('tool_read tool_write')\nprint(len(hits), hits)")
    root = script(search, search, py("FINAL('int')"))
    question = "What is the return type of the function tool_read?"
    result = run(question, MANUAL, settings=make_settings(model=root, guards="off"))
    assert not any(t.get("by") for t in result.trajectory) and result.answer == "int"


def calls(result) -> int:
    return sum(m["calls"] for m in result.usage["models"].values())


def test_advice_whose_code_the_loop_ran_points_at_that_output_instead(make_settings):
    from tests.test_repl_helpers import NEWS

    same = py("hits = grep('tool now reads files larger than 4 GiB.')\nprint(len(hits), hits)")
    root = script(same, same, same, py("FINAL('2.0')"))
    question = "Which release's notes contain 'tool now reads files larger than 4 GiB.'?"
    result = run(question, NEWS, settings=make_settings(model=root))
    assert result.trajectory[2]["by"] == "loop"
    again = result.trajectory[3]["observation"].split("repeating yourself")[1]
    assert "already ran for you above" in again and "```python" not in again
    assert result.answer == "2.0" and calls(result) == 4


def test_the_report_and_viewer_say_which_turn_the_loop_ran(make_settings):
    from pathlib import Path

    from rlm_research.report.markdown import write_report

    from tests.test_guards import MANUAL

    search = py("hits = grep('tool_read tool_write')\nprint(len(hits), hits)")
    root = script(search, search, py("FINAL('int')"))
    settings = make_settings(model=root)
    question = "What is the return type of the function tool_read?"
    result = run(question, MANUAL, settings=settings)
    md, _ = write_report(
        result, data_dir=Path(settings.data_dir), question=question, status="answered"
    )
    assert "### Turn 3 (the stuck advice's code, run by the loop)" in md.read_text()
    assert '"by":"loop"' in md.with_suffix(".html").read_text()  # the viewer's data


TWO_FUNCTIONS = """\
--- page 16 ---
4 Function reference
[Function]int tool_write (node root, const char * name, const void * value, int len)
root: pointer to a structure.
Returns: TOOL_SUCCESS if the value was set.
[Function]int tool_read (node root, const char * name, void * value)
root: pointer to a structure.
Returns: TOOL_SUCCESS if the value was read.
--- page 30 ---
Index
tool_read . . . . . . . 16
"""


def test_a_model_that_rereads_one_noted_section_is_shown_the_next_one(make_settings):
    # A question about two functions: the empty search's note lists a line for each; the
    # model reads the first one's section twice, and the loop reads the second one's for it.
    search = py("hits = grep('tool_write tool_read')\nprint(len(hits), hits)")
    first = py("print(section(3))")
    root = script(search, first, first, py("print(4 + 3)"), py("FINAL('7')"))
    question = "How many parameters do tool_write and tool_read take together?"
    result = run(question, TWO_FUNCTIONS, settings=make_settings(model=root))
    assert result.answer == "7" and calls(result) == 5
    loop_turn = next(t for t in result.trajectory if t.get("by") == "loop")
    assert loop_turn["code"] == ["print(section(6))"]
    assert "[Function]int tool_read (node root" in loop_turn["observation"]


def test_a_noted_line_with_only_a_common_word_of_the_search_is_not_offered(make_settings):
    # One entry is asked about; the note's other lines hold only "version" or "mytool", words
    # on many lines: the same thing found less well, not a second thing to read.
    from tests.test_guards import CHANGELOG

    doc = CHANGELOG + "".join(f"  * note {i}: version mytool checks\n" for i in range(8))
    search = py("hits = grep('mytool version 1.1.0')\nprint(len(hits), hits)")
    read = py("print(section(8))")
    root = script(search, read, read, py("FINAL('Bo Chan')"))
    helper = RuleModel(rules=[("Answer from this text only", "Bo Chan")])
    settings = make_settings(model=root, sub_model=helper)
    result = run("Who signed mytool version 1.1.0?", doc, settings=settings)
    assert "the lines with the most of its words" in result.trajectory[0]["observation"]
    assert result.answer == "Bo Chan"
    # The loop reads no other line's section; it hands the one read again to a helper.
    assert [t["code"][0].count("section(8") for t in result.trajectory if t.get("by")] == [1]
    assert "also listed line" not in result.trajectory[2]["observation"]


SOURCE = "\n".join(
    ["=== pkg/after.py ===", "", "def after_log(", "    logger,", '    sec_format: str = "%.3g",']
    + ["):", '    return f"after {sec_format % secs}(s)"', ""]
    + ["=== pkg/before.py ===", "", "def before_log(", "    logger,"]
    + ['    sec_format: str = "%.1f",']
    + ["):", '    return f"in {sec_format % secs} seconds as it returned {value}."']
)


def test_in_code_the_hint_points_at_the_hit_inside_the_function_the_question_names(make_settings):
    same = py('hits = grep("sec_format")\nprint(len(hits), hits)')
    root = script(same, same, py("FINAL('%.3g')"))
    question = "What is the default value of the sec_format parameter of after_log?"
    result = run(question, SOURCE, settings=make_settings(model=root))
    hint = result.trajectory[1]["observation"]
    # Not the f-string that shares "value" with the question: the parameter under after_log.
    assert "this one has the most words of the question: '    sec_format: str = \"%.3g\",'" in hint
    assert "def after_log(" in hint.split("most words of the question")[1]
    # Turns later, with a helper's NONE printed in between, the hint still knows whose line it is.
    later = script(same, py("print('NONE')"), py("print('NONE')"), py("FINAL('%.3g')"))
    result = run(question, SOURCE, settings=make_settings(model=later))
    hint = result.trajectory[2]["observation"]
    assert "most words of the question: '    sec_format: str = \"%.3g\",'" in hint
    assert "It is under 1: '=== pkg/after.py ===' > 3: 'def after_log('" in hint
