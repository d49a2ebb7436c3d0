"""One definition of a run's outcome (graph.outcome), path by path: `answered` only when the
model answered (FINAL, FINAL_VAR, the answer dict, or the closing call after a budget);
otherwise `no_answer` with its reason. An answer is never code, a fenced block or a tool's note.
The stuck hint never offers FINAL with a tool's note."""

from __future__ import annotations

from pathlib import Path

import pytest
from rlm_research.graph import run_index
from rlm_research.graph.api import run
from rlm_research.graph.outcome import not_an_answer, outcome_of

from tests.support.scripted_models import RuleModel, py, script

DOC = "Intro.\n" + "filler line\n" * 50 + "The vault code is 7413.\n"
LOOP = py("print(len(context))")


def status_in_index(settings, run_id: str) -> dict:
    return run_index.get_run(Path(settings.data_dir) / "runs.sqlite", run_id)


@pytest.mark.parametrize(
    "code",
    [
        "FINAL('7413')",
        "code = '7413'\nFINAL_VAR('code')",
        "answer['content'] = '7413'\nanswer['ready'] = True",
    ],
    ids=["FINAL", "FINAL_VAR", "answer dict"],
)
def test_the_models_own_answer_is_answered(code, make_settings):
    settings = make_settings(model=script(py(code)))
    result = run("What is the vault code?", DOC, settings=settings, run_id="a")
    assert (result.status, result.answer, result.stop_reason) == ("answered", "7413", "answered")
    row = status_in_index(settings, "a")
    assert (row["status"], row["answer"]) == ("answered", "7413")
    assert "**answered**" in Path(result.report).read_text()


def test_the_closing_call_after_a_budget_may_answer(make_settings):
    settings = make_settings(model=script(LOOP, "7413"), max_turns=1)
    result = run("What is the vault code?", DOC, settings=settings, run_id="b")
    assert (result.status, result.answer, result.stop_reason) == (
        "answered",
        "7413",
        "budget:turns",
    )


def test_a_closing_reply_that_is_code_is_no_answer(make_settings):
    closing = "found = grep('vault')\nFINAL_VAR(found)"
    settings = make_settings(model=script(LOOP, closing), max_turns=1)
    result = run("What is the vault code?", DOC, settings=settings, run_id="c")
    assert (result.status, result.answer, result.stop_reason) == ("no_answer", "", "budget:turns")
    assert "code" in result.error and result.unaccepted == closing
    row = status_in_index(settings, "c")
    assert row["status"] == "no_answer" and not row["answer"] and "code" in row["error"]
    report = Path(result.report).read_text()
    assert "**no_answer**" in report and "_(no answer)_" in report


def test_a_stuck_run_is_no_answer_whatever_the_closing_call_says(make_settings):
    settings = make_settings(model=script(LOOP, LOOP, LOOP, LOOP, "7413"), max_turns=20)
    result = run("What is the vault code?", DOC, settings=settings, run_id="d")
    assert (result.status, result.answer, result.stop_reason) == ("no_answer", "", "stuck")
    assert status_in_index(settings, "d")["status"] == "no_answer"


def test_a_tools_note_given_as_the_answer_is_no_answer(make_settings):
    # No sub-calls left: sub_lm returns its refusal note, which the model hands to FINAL.
    settings = make_settings(model=script(py("FINAL(sub_lm('read it'))")), max_sub_calls=0)
    result = run("What is the vault code?", DOC, settings=settings, run_id="e")
    assert result.status == "no_answer" and result.answer == ""
    assert result.unaccepted.startswith("[sub_lm refused")


def test_a_fenced_block_given_as_the_answer_is_no_answer(make_settings):
    fenced = py("FINAL('```python\\nprint(1)\\n```')")
    result = run("q?", DOC, settings=make_settings(model=script(fenced)))
    assert result.status == "no_answer" and "fenced" in result.error


def test_a_model_error_is_failed_and_recorded(make_settings):
    def broken(messages):
        raise RuntimeError("the model broke")

    settings = make_settings(model=RuleModel(fn=broken), max_retries=0)
    with pytest.raises(Exception, match="the model broke"):
        run("q?", DOC, settings=settings, run_id="f")
    row = status_in_index(settings, "f")
    assert row["status"] == "failed" and "the model broke" in row["error"]


def test_the_stuck_hint_never_offers_a_tools_note_as_final(make_settings):
    missing = py("hits = grep('Zanzibar Quay')\nprint(len(hits), hits)")
    settings = make_settings(model=script(missing, missing, py("FINAL('none')")))
    result = run("Where is Zanzibar Quay?", DOC, settings=settings)
    hint = result.trajectory[1]["observation"]
    assert "repeating yourself" in hint and "(grep: no line has" in hint  # the note is shown
    # No value offered: the search behind the printed "0 []" found nothing.
    assert "write FINAL('" not in hint and 'write FINAL("' not in hint


def test_the_stuck_hint_still_offers_what_the_code_printed(make_settings):
    count = py("print(len(grep('filler')))")
    result = run("How many filler lines?", DOC, settings=make_settings(model=script(count, count)))
    assert "write FINAL('50')" in result.trajectory[1]["observation"]


@pytest.mark.parametrize(
    ("text", "flaw"),
    [
        ("7413", None),
        ("Paris, France.", None),
        ("total: 42", None),
        ("x = 5", None),
        ("", "empty"),
        ("```python\nx = 1\n```", "a fenced block"),
        ("(grep: no line has 'x') 0 []", "a tool's note"),
        ("[sub_lm failed: ModelCallError: boom]", "a tool's note"),
        ("found = grep('x')\nFINAL_VAR(found)", "code"),
        ("print(answer)", "code"),
        ("import re\nre.findall('a', context)", "code"),
    ],
)
def test_what_is_not_an_answer(text, flaw):
    assert not_an_answer(text) == flaw


def test_outcome_of_an_unfinished_or_failed_child_level():
    assert outcome_of(None, None).status == "interrupted"
    assert outcome_of("[sub_lm failed: x]", "error").reason == "error"
