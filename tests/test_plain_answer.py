"""Where a run would end stuck, the loop asks once for the best answer in plain words: a reply
the run's output holds is the answer; a made-up value, a refusal, the question's own words or
more code end the run stuck, as before, with no closing call."""

from __future__ import annotations

import pytest
from rlm_research.graph import run
from rlm_research.nodes.plain_answer import held_by, plain_answer, printed_output

from tests.support.scripted_models import RuleModel, py, script
from tests.test_repl_helpers import NEWS

QUESTION = "Which release's notes contain the text 'tool now reads files larger than 4 GiB.'?"
SEARCH = py("hits = grep('tool now reads files larger than 4 GiB.')\nprint(len(hits), hits)")
STUCK = (SEARCH,) * 4  # a notice at the second, the end at the fourth


def calls(result) -> int:
    return sum(m["calls"] for m in result.usage["models"].values())


@pytest.mark.parametrize("guards", ["default", "off"])
def test_a_plain_answer_instead_of_the_stuck_end(make_settings, guards):
    # The model found the line (its release is in the heading grep shows) and searched again
    # and again; asked for its best answer, it says it in words instead of writing FINAL.
    # With the guards on, the loop runs the section read the notice offers in its place (a
    # turn with no model call), and the model's next repeat starts the count again.
    # A run the request rescues makes no helper call: helpers read the parts of the text most
    # like the question only when it gives no answer (tests/test_helper_sweep.py).
    again = (SEARCH,) if guards == "default" else ()
    root = script(*STUCK, *again, "It is release 2.0.")
    helper = RuleModel(default="NONE")
    settings = make_settings(model=root, sub_model=helper, guards=guards)
    result = run(QUESTION, NEWS, settings=settings)
    assert result.status == "answered" and result.answer == "It is release 2.0."
    assert calls(result) == 5 + len(again) + len(helper.calls)
    assert not helper.calls
    assert "best final answer" in result.trajectory[-2]["observation"]


@pytest.mark.parametrize(
    "reply",
    ["Release 9.9", "It is not in the text.", py("print(len(context))"), "What is 4 GiB?"],
)
def test_a_reply_that_is_no_answer_ends_the_run_stuck_without_a_closing_call(make_settings, reply):
    root = script(*STUCK, reply)
    result = run(QUESTION, NEWS, settings=make_settings(model=root, guards="off"))
    assert result.status == "no_answer" and result.stop_reason == "stuck"
    assert calls(result) == 5


def test_final_in_code_after_the_request_is_an_answer_and_prose_before_it_is_not(make_settings):
    root = script(*STUCK, py("FINAL('2.0')"))
    result = run(QUESTION, NEWS, settings=make_settings(model=root, guards="off"))
    assert result.answer == "2.0" and calls(result) == 5
    # Words with no request before them are not taken: the loop asks for code, as always.
    early = script("Release 2.0", py("FINAL('2.0')"))
    result = run(QUESTION, NEWS, settings=make_settings(model=early, guards="off"))
    assert calls(result) == 2
    assert "I found no code block" in result.trajectory[0]["observation"]


FENCED = ["```\n2.0\n```", py("'2.0'"), py("print('2.0')"), py("Release 2.0")]
NOT_WORDS = [py("print(section(9)"), py("True"), py("x = 2.0"), py("for r in rows:")]


@pytest.mark.parametrize("reply", FENCED)
def test_an_answer_in_words_put_in_a_code_fence_anyway_is_the_answer(make_settings, reply):
    root = script(*STUCK, reply)
    result = run(QUESTION, NEWS, settings=make_settings(model=root, guards="off"))
    assert result.status == "answered" and result.answer in ("2.0", "Release 2.0")
    assert calls(result) == 5


def test_only_what_the_cells_printed_holds_an_answer():
    observation = (
        "Output:\n1 [9: '* Noteworthy changes in release 2.0 (2023-11-02) [stable]']\n"
        "Variables: hits: Hits, len 1\nQuestion: Which tool release added --json?"
    )
    printed = printed_output([observation, "I found no code block in your reply."])
    assert held_by("release 2.0", printed) and held_by("2.0 (2023-11-02)", printed)
    assert not held_by("--json", printed)  # the question's words, not the output's
    assert not held_by("release 2.1", printed)  # a number nobody printed
    # Restating the question around what the output holds is still that answer; the question's
    # words alone, or beside a name nobody printed, are not.
    question = "In which tool release was --json added?"
    assert held_by("The answer is tool release 2.0.", printed, question)
    assert not held_by("The answer is tool release.", printed, question)
    assert not held_by("The --json tool release is Nimbus.", printed, question)
    assert plain_answer("```python\nprint(1)\n```", printed)[0] is None
    assert plain_answer("The text does not mention a release.", printed)[0] is None


@pytest.mark.parametrize("reply", NOT_WORDS)
def test_broken_code_in_a_fence_is_no_answer_in_words(make_settings, reply):
    root = script(*STUCK, reply)
    result = run(QUESTION, NEWS, settings=make_settings(model=root, guards="off"))
    assert result.status == "no_answer" and result.stop_reason == "stuck"


def test_a_number_is_held_whole_and_not_by_a_line_number():
    hits = "3 [177: 'class A:', 7: 'class B:' (in 1: '=== a.py ===')]"
    note = "the lines with the most of its words, rarest first ('f'):\n6: [Function]int f (x)"
    assert not held_by("7", hits) and not held_by("1", hits) and not held_by("6", note)
    assert held_by("3", hits) and held_by("14", "14 lines start with it")
    assert not held_by("2.5", "apt (2.5.3) unstable") and not held_by("7", "7,500 people")
    # A number the text holds before a colon is a value, not a line's number.
    assert held_by("2019", "2019: Acquired by Initech") and held_by("7,500", "7,500 people")


def test_a_date_the_output_wrote_another_way_is_held():
    # A changelog's trailer writes "Tue, 17 May 2022"; the model answers in ISO form.
    printed = " -- Julian Andres Klode <jak@debian.org>  Tue, 17 May 2022 18:50:45 +0200"
    assert held_by("2022-05-17", printed) and held_by("May 17, 2022", printed)
    assert not held_by("2022-05-18", printed)  # another day
    assert not held_by("2022-05-17 by Nimbus", printed)  # a name nobody printed beside it
