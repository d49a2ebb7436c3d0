"""A count that is just how many lines a search matched is sent back once, with code that lets
helpers judge each line (`judge_lines`); the model that runs it answers the judged count."""

from __future__ import annotations

from rlm_research.graph import run

from tests.support.scripted_models import RuleModel, py, script

REVIEWS = [
    "Review by Ann: the Zemo kettle is lovely, I love it.",
    "Review by Bo: the Zemo kettle broke at once.",
    "Review by Cy: the Zemo kettle leaks.",
    "Review by Di: we love the Zemo kettle.",
    "Review by Ed: the Zemo kettle is too loud.",
]
DOC = "\n".join(["Review by Fay: the Mura lamp is fine."] * 40 + REVIEWS)
QUESTION = "How many reviews of the Zemo kettle are happy ones?"


def helper(messages) -> str:
    """Writes the per-line question when asked for one, then judges a line by its words."""
    last = str(messages[-1].content)
    if "Write the yes/no question" in last:
        return "Is this review happy?"
    return "Yes." if "love" in last.split("\n\n")[0] else "No."


def copies_offered_code() -> RuleModel:
    """A root that searches, answers the number of hits, then runs the code it is offered."""
    return RuleModel(
        rules=[
            (r"```python\n(.*?)```", "```python\n{1}```"),
            (r"Output:\n5\n", py("FINAL('5')")),
        ],
        default=py("hits = grep('Zemo kettle')\nprint(len(hits))"),
    )


def test_the_number_of_matches_is_checked_line_by_line(make_settings):
    settings = make_settings(model=copies_offered_code(), sub_model=RuleModel(fn=helper))
    result = run(QUESTION, DOC, settings=settings)
    assert result.answer == "2" and result.stop_reason == "answered"
    sent_back = result.trajectory[1]["observation"]
    assert sent_back.startswith("Not finished: 5 is how many lines grep('Zemo kettle') found")
    judged = result.trajectory[2]["observation"]
    assert "(judge_lines asked each line: Is this review happy?)" in judged
    assert "2 of 5 lines count" in judged
    assert result.usage["sub_calls"] == 1 + len(REVIEWS)


def test_the_same_count_given_again_stands(make_settings):
    root = script(py("print(len(grep('Zemo kettle')))"), py("FINAL('5')"), py("FINAL('5')"))
    result = run(
        "How many reviews of the Zemo kettle are there?", DOC, settings=make_settings(model=root)
    )
    assert result.answer == "5" and len(result.trajectory) == 3


def test_no_check_when_judging_each_line_would_overrun_the_sub_call_budget(make_settings):
    root = script(py("print(len(grep('Zemo kettle')))"), py("FINAL('5')"))
    result = run(QUESTION, DOC, settings=make_settings(model=root, max_sub_calls=4))
    assert result.answer == "5" and len(result.trajectory) == 2


def test_a_lookup_of_one_line_is_not_a_count(make_settings):
    root = script(py("print(grep('Ann'))"), py("FINAL('1')"))
    result = run("How many reviews did Ann write?", DOC, settings=make_settings(model=root))
    assert result.answer == "1" and len(result.trajectory) == 2
