"""Checks on a chain of searches: searches that never looked for the name the question is about
are pointed out once, right after such a search or at an answer built on one (a small model
searches the first name it was shown, the start of the text, instead of the question's); and an
answer read from a line that goes on to a name not searched yet is sent back once (one hop
short)."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from rlm_research.graph import run

from tests.support.scripted_models import RuleModel, py, script

DOC = "\n".join(
    [
        "Loane is a market town. It was founded in 1500.",
        "Bex Tarn (born 1960) is an engineer who grew up in Loane.",
        "Quill Works is a firm founded in 1861. Its headquarters are in Omaoma.",
        "Ada Brook has worked for Quill Works since 1999.",
        "Ada Brook (born 1970) is an engineer who grew up in Omaoma.",
        "Omaoma is a market town on the Dar river. It was founded in 1678.",
    ]
    + ["Market day is on Friday."] * 30
)
QUESTION = "In what year was the town founded where Ada Brook grew up?"


def follows_offered_code() -> RuleModel:
    """A root that searches the text's first name, runs any code it is offered, follows a
    person's town and answers from the town's line."""
    return RuleModel(
        rules=[
            (r"```python\n(.*?)```", "```python\n{1}```"),
            (r"founded in (\d+)\.'\]", py("FINAL('{1}')")),
            (r"grew up in (\w+)\.'\]", py("print(grep('{1} is a market town'))")),
        ],
        default=py("print(len(grep('Loane')))"),
    )


def test_a_search_for_a_name_from_the_text_is_pointed_back_to_the_question(make_settings):
    result = run(QUESTION, DOC, settings=make_settings(model=follows_offered_code()))
    assert result.answer == "1678" and result.stop_reason == "answered"
    note = result.trajectory[0]["observation"]
    assert "Your searches so far ('Loane') are not words of the question" in note
    assert "hits = grep('Ada Brook')" in note
    assert all("searches so far" not in step["observation"] for step in result.trajectory[1:])


def test_an_answer_from_searches_off_the_question_is_sent_back_once(make_settings):
    off = py("print(grep('Loane is')[0])\nFINAL('1500')")
    root = script(py("print(context[:60])"), off, off)
    result = run(QUESTION, DOC, settings=make_settings(model=root))
    sent_back = result.trajectory[1]["observation"]
    assert sent_back.startswith(
        "Not finished: your searches ('Loane is') never looked for Ada Brook"
    )
    assert result.answer == "1500" and len(result.trajectory) == 3  # asked once, then it stands


def test_no_note_for_a_search_sharing_a_word_with_the_name_or_a_question_without_names(
    make_settings,
):
    root = script(py("print(grep('Brook'))"), py("FINAL('Omaoma')"))
    result = run(QUESTION, DOC, settings=make_settings(model=root))
    assert "searches so far" not in result.trajectory[0]["observation"]
    assert result.answer == "Omaoma"
    root = script(py("print(len(grep('market town')))"), py("FINAL('2')"))
    result = run(
        "How many lines in the text have the label 'town'? Answer with a number.",
        DOC,
        settings=make_settings(model=root),
    )
    assert "searches so far" not in result.trajectory[0]["observation"]
    assert result.answer == "2"
    # A quoted question's first word and a month are not names to search.
    root = script(py("print(len(grep('market town')))"), py("FINAL('2')"))
    result = run('"Which towns held a market in March?"', DOC, settings=make_settings(model=root))
    assert "searches so far" not in result.trajectory[0]["observation"]


EMPLOYER_QUESTION = (
    "In what year was the town founded where the headquarters of Ada Brook's employer are?"
)


def via_the_firm(*then: str) -> FakeListChatModel:
    """A run that searches the person, then the firm's own line, then does `then`."""
    return script(py("print(grep('Ada Brook'))"), py("print(grep('Quill Works is'))"), *then)


def test_an_answer_one_hop_short_is_sent_back_to_the_name_its_line_leads_to(make_settings):
    root = via_the_firm(py("FINAL('1861')"), py("print(grep('Omaoma is'))"), py("FINAL('1678')"))
    result = run(EMPLOYER_QUESTION, DOC, settings=make_settings(model=root))
    assert result.answer == "1678" and result.stop_reason == "answered"
    sent_back = result.trajectory[2]["observation"]
    assert sent_back.startswith("Not finished: your answer comes from the line 'Quill Works is")
    assert "hits = grep('Omaoma')" in sent_back


def test_an_answer_from_the_line_before_a_searched_name_is_pointed_at_that_names_line(
    make_settings,
):
    root = via_the_firm(py("print(len(grep('Omaoma')))"), py("FINAL('1861')"), py("FINAL('1678')"))
    result = run(EMPLOYER_QUESTION, DOC, settings=make_settings(model=root))
    assert result.answer == "1678"
    sent_back = result.trajectory[3]["observation"]
    assert "that line goes on to Omaoma. Of the lines grep('Omaoma') finds" in sent_back
    assert "'Omaoma is a market town on the Dar river. It was founded in 1678.'" in sent_back
    assert "write FINAL('1678')" in sent_back


def test_an_answer_that_is_the_name_its_line_leads_to_stands(make_settings):
    root = script(py("print(grep('Quill Works is'))"), py("FINAL('Omaoma')"))
    question = "In which town are the headquarters of Quill Works?"
    result = run(question, DOC, settings=make_settings(model=root))
    assert result.answer == "Omaoma" and len(result.trajectory) == 2
