"""A stuck count question whose counted thing is a kind of heading (the releases of a NEWS file,
the function entries of a manual) is shown those headings and the code that counts them; a
question that counts something else, or quotes the term it counts, is left as before."""

from __future__ import annotations

from rlm_research.graph import run
from rlm_research.nodes.guards.counted_headings import counted_noun

from tests.support.scripted_models import RuleModel, py, script


def news(releases: int) -> str:
    """A GNU-style NEWS file: each release a heading, with one fix that mentions no 'release'."""
    out = []
    for k in range(releases, 0, -1):
        kind = "Noteworthy" if k > 3 else "Major"
        out += [f"* {kind} changes in release 1.{k} (2020-01-{k:02d}) [stable]", "", "** Bug fixes"]
        out += ["", f"  tool no longer crashes on input {k}.", ""]
    out += ["", "The project releases often."]
    return "\n".join(out)


QUESTION = "How many releases does this NEWS file describe?"


def test_a_stuck_count_of_releases_is_shown_the_release_headings(make_settings):
    same = py("hits = grep('releases')\nprint(len(hits), hits)")
    offered = py("h = headings('release')\nprint(len(h), h[:3])")
    model = RuleModel(
        rules=[("Output:\n12 \\[", py("FINAL('12')")), ("h = headings\\('release'\\)", offered)],
        default=same,
    )
    result = run(QUESTION, news(12), settings=make_settings(model=model))
    assert result.answer == "12"
    hint = result.trajectory[1]["observation"]
    assert "9 like '* Noteworthy changes in release 1.12" in hint
    assert "3 like '* Major changes in release 1.3" in hint


def test_a_first_right_count_is_left_alone(make_settings):
    root = script(py("h = headings('release')\nprint(len(h))"), py("FINAL('12')"))
    result = run(QUESTION, news(12), settings=make_settings(model=root))
    assert result.answer == "12" and len(result.trajectory) == 2
    assert "headings(" not in result.trajectory[0]["observation"]


def test_a_count_of_something_headings_do_not_name_gets_the_usual_advice(make_settings):
    same = py("hits = grep('crashes')\nprint(len(hits), hits[:2])")
    root = script(same, same, py("FINAL('12')"))
    question = "How many fixes mention crashes?"
    result = run(question, news(12), settings=make_settings(model=root))
    hint = result.trajectory[1]["observation"]
    assert "repeating yourself" in hint and "headings(" not in hint


def test_the_counted_noun_of_ordinary_questions():
    assert counted_noun(QUESTION) == "releases"
    assert counted_noun("How many change items (lines starting with '*') are there?") == "items"
    assert counted_noun("How many top-level functions do a.py and b.py define?") == "functions"
    assert counted_noun("What is the number of versions of apt?") == "versions"
    assert counted_noun("How many '[bug introduced ...]' notes are there?") is None
    assert counted_noun("Which release fixed it?") is None


def test_a_count_answered_from_one_search_line_is_sent_back_to_the_headings(make_settings):
    offered = py("h = headings('release')\nprint(len(h), h[:3])")
    model = RuleModel(
        rules=[
            ("Not finished: 1 is how many lines your search for releases found", offered),
            ("Output:\n12 \\[", py("FINAL('12')")),
            ("Output:\n1 \\[", py("FINAL('1')")),
        ],
        default=py("hits = grep('releases')\nprint(len(hits), hits)"),
    )
    result = run(QUESTION, news(12), settings=make_settings(model=model))
    assert result.answer == "12" and len(model.calls) == 4
    sent_back = result.trajectory[1]["observation"]
    assert "9 like '* Noteworthy changes in release 1.12" in sent_back


def test_a_count_of_something_else_is_sent_back_at_most_once(make_settings):
    # The model means the releases the last line speaks of: sent back once, kept the second time.
    code = "hits = grep('releases')\nprint(len(hits))\nFINAL(str(len(hits)))"
    root = script(py(code), py("FINAL('1')"))
    result = run(QUESTION, news(12), settings=make_settings(model=root))
    assert result.answer == "1" and len(result.trajectory) == 2
    assert "headings('release')" in result.trajectory[0]["observation"]


def test_a_count_inside_one_release_is_left_alone(make_settings):
    # "fixes" names the "** Bug fixes" headings, but the release number scopes the question.
    code = "hits = grep('fixes', section(headings('1.5')[0]))\nprint(len(hits))"
    root = script(py(code), py("FINAL('1')"), py("FINAL('2')"))
    question = "How many fixes does release 1.5 list?"
    result = run(question, news(12), settings=make_settings(model=root))
    assert "Output:\n1\n" in result.trajectory[0]["observation"]
    assert result.answer == "1" and len(result.trajectory) == 2
