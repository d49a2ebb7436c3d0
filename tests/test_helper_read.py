"""A section the model printed and reads again is handed to one helper with the question: the
loop runs that call for a stuck model, never for one that answered, never for a count, never
without a sub-call left."""

from __future__ import annotations

from rlm_research.graph import run
from rlm_research.nodes.guards.helper_read import read_by_helper

from tests.support.scripted_models import RuleModel, py, script
from tests.test_guards import CHANGELOG, MANUAL, evidence

SIGNED = "Who signed the upload of mytool 1.2.0?"
READ = py("print(section(1))")


def reader(answer: str) -> RuleModel:
    """A helper that answers `answer` when asked about a text, and says so otherwise."""
    return RuleModel(rules=[("Answer from this text only", answer)], default="NOT ASKED THAT")


def loop_turns(result) -> list[dict]:
    return [t for t in result.trajectory if t.get("by") == "loop" and t.get("depth", 0) == 0]


def test_a_stuck_read_of_a_changelog_entry_is_read_by_one_helper(make_settings):
    helper = reader("Ann Lee")
    root = script(READ, READ, py("FINAL('Ann Lee')"))
    result = run(SIGNED, CHANGELOG, settings=make_settings(model=root, sub_model=helper))
    ran = loop_turns(result)
    assert len(ran) == 1 and "sub_lm(" in ran[0]["code"][0]
    # Under the helper's reply, a note offers it as the answer.
    assert "replied 'Ann Lee'" in ran[0]["observation"]
    assert "FINAL('Ann Lee')" in ran[0]["observation"]
    assert len(helper.calls) == 1
    asked = helper.calls[0]
    # The helper sees the entry the model read and the question, not the next entry.
    assert "-- Ann Lee <ann@example.org>" in asked and SIGNED in asked and "Bo Chan" not in asked
    assert result.answer == "Ann Lee" and result.stop_reason == "answered"


def test_a_model_that_answers_from_its_read_is_left_alone(make_settings):
    helper = reader("Bo Chan")
    root = script(READ, py("FINAL('Ann Lee')"))
    result = run(SIGNED, CHANGELOG, settings=make_settings(model=root, sub_model=helper))
    assert result.answer == "Ann Lee" and not helper.calls and not loop_turns(result)


def test_a_manual_entry_read_by_its_line_text_is_handed_over_the_same_way(make_settings):
    # The read the earlier advice offers: section of the hit's text, not a line number.
    line = next(ln for ln in MANUAL.splitlines() if "(" in ln and not ln.startswith("---"))
    read = py(f"print(section({line.strip()!r}))")
    helper = reader("int")
    root = script(read, read, py("FINAL('int')"))
    question = "What is the return type of tool_read?"
    result = run(question, MANUAL, settings=make_settings(model=root, sub_model=helper))
    ran = loop_turns(result)
    assert len(ran) == 1 and f"section({line.strip()!r}" in ran[0]["code"][0]
    assert len(helper.calls) == 1 and line.strip() in helper.calls[0]


def test_no_helper_read_for_a_count(make_settings):
    helper = reader("2")
    count = "How many change items does mytool 1.2.0 list?"
    root = script(READ, READ, py("FINAL('2')"))
    run(count, CHANGELOG, settings=make_settings(model=root, sub_model=helper))
    assert not any("Answer from this text only" in c for c in helper.calls)


def test_no_helper_read_without_a_sub_call_or_the_time_to_read(make_settings):
    printed = CHANGELOG.split("\n\nmytool")[0]
    ev = evidence(SIGNED, "print(section(1))", printed, None, sub_calls_left=1)
    assert read_by_helper(ev) is not None
    assert read_by_helper(evidence(SIGNED, "print(section(1))", printed, None)) is None
    # 1,000 tokens at 10 a second, with 60 seconds left: not offered.
    slow = dict(sub_calls_left=5, reading_speed=10.0, seconds_left=60.0)
    assert read_by_helper(evidence(SIGNED, "print(section(1))", printed, None, **slow)) is None


def test_guards_off_run_no_helper_for_the_model(make_settings):
    helper = reader("Ann Lee")
    root = script(READ, READ, py("FINAL('Ann Lee')"))
    settings = make_settings(model=root, sub_model=helper, guards="off")
    result = run(SIGNED, CHANGELOG, settings=settings)
    assert not helper.calls and not loop_turns(result)


def test_a_helper_that_finds_nothing_is_not_offered_as_the_answer(make_settings):
    helper = reader("NONE")
    root = script(READ, READ, py("hits = grep('Ann')\nprint(hits)"), py("FINAL('Ann Lee')"))
    result = run(SIGNED, CHANGELOG, settings=make_settings(model=root, sub_model=helper))
    ran = loop_turns(result)
    assert "found no answer there" in ran[0]["observation"]
    assert "FINAL('NONE')" not in ran[0]["observation"]
    assert result.answer == "Ann Lee"
