"""The guards layer: each guard leaves a right answer over an ordinary document alone, fires on
the failure it exists for with a reason taken from what the run printed, and the `guards`
setting turns them off as a user would expect."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from rlm_research.graph import run
from rlm_research.graph.config import ConfigError, load_config
from rlm_research.nodes import guards, prompts
from rlm_research.nodes.guards.names import question_names

from tests.support.scripted_models import RuleModel, py, script

LOG = "\n".join(
    [f"2024-03-{d:02d} 10:00:0{d % 10} INFO label=OK request served" for d in range(1, 20)]
    + [f"2024-03-{d:02d} 11:00:00 ERROR label=TIMEOUT upstream slow" for d in range(1, 8)]
)
CHANGELOG = """\
mytool (1.2.0) unstable; urgency=medium

  * Add a --json flag to the report command.
  * Fix a crash on empty input (Closes: #1001)

 -- Ann Lee <ann@example.org>  Mon, 02 Jan 2023 10:00:00 +0100

mytool (1.1.0) unstable; urgency=low

  * Read settings from GitHub Actions variables.
  * Fix two typos (Closes: #990, #991)

 -- Bo Chan <bo@example.org>  Fri, 02 Dec 2022 09:00:00 +0100
"""
SOURCE = '''\
"""A tiny parser."""


def parse(text, strict=False, limit=100):
    """Parse text."""
    return text.split()


class Reader:
    def read(self):
        return ""
'''
MANUAL = """\
--- page 3 ---
Table of Contents
4.2 Reading values . . . . . 13
--- page 16 ---
4.2 Reading values
[Function]int tool_read (node root, const char * name)
root: pointer to a structure.
Returns: TOOL_SUCCESS if the value was read, TOOL_NOT_FOUND otherwise.
"""


def evidence(question: str, code: str, printed: str, final: str | None, **kw) -> guards.Evidence:
    result = {"blocks": [{"stdout": printed, "stderr": "", "error": None}], "final": final}
    kw.setdefault("searches", [])
    kw.setdefault("new_searches", kw["searches"])
    return guards.Evidence(
        question=question, code=[code], result=result, final=final, after_empty=False, **kw
    )


def sent_back(ev: guards.Evidence) -> list[str]:
    return [name for name, _ in guards.review(ev, guards.enabled("default"), "answer")]


# --- each guard leaves a right answer over an ordinary document alone -------------------------


def test_a_count_of_the_questions_own_label_stands(make_settings):
    # The log's lines carry the label the question quotes: matching lines are counted lines.
    code = py("hits = grep('label=TIMEOUT')\nprint(len(hits))")
    root = script(code, py("FINAL('7')"))
    question = "How many lines of the log have 'label=TIMEOUT'?"
    result = run(question, LOG, settings=make_settings(model=root))
    assert result.answer == "7" and result.stop_reason == "answered"
    assert result.usage["models"]["fakelistchatmodel"]["calls"] == 2  # no send-back, no helpers


def test_a_count_of_a_pattern_within_one_files_section_stands(make_settings):
    # Classes of one file of a source tree (files joined under headers, as `context` joins
    # several sources): the search over the file's section already says which lines count.
    tree = "=== pkg/a.py ===\n" + SOURCE + "\nclass Other:\n    pass\n" + "=== pkg/b.py ===\n"
    tree += "".join(f"class B{i}:\n    x = {i}\n\n" for i in range(3))
    code = py("hits = grep('pkg/a.py')\nn = len(grep('^class ', section(hits[0])))\nprint(n)")
    root = script(code, py("FINAL('2')"))
    question = "How many classes are defined at the top level of pkg/a.py?"
    result = run(question, tree, settings=make_settings(model=root))
    assert result.trajectory[0]["observation"].startswith("Output:\n2\n")
    assert result.answer == "2" and result.usage["models"]["fakelistchatmodel"]["calls"] == 2


def test_a_lookup_in_a_changelog_read_from_printed_lines_stands(make_settings):
    code = py("hits = grep('#990')\nprint(hits, section_of(hits[0]))")
    root = script(code, py("FINAL('1.1.0')"))
    question = "Which version of mytool closed bug #990?"
    result = run(question, CHANGELOG, settings=make_settings(model=root))
    assert result.answer == "1.1.0" and len(result.trajectory) == 2


def test_a_sum_computed_in_code_stands(make_settings):
    code = py(
        "hits = grep('Closes')\n"
        "total = sum(len(re.findall(r'#\\d+', h)) for h in hits)\nprint(total)\nFINAL(total)"
    )
    result = run(
        "How many bugs do the two versions close in total?",
        CHANGELOG,
        settings=make_settings(model=script("```python\nimport re\n```", code)),
    )
    assert result.answer == "3" and result.stop_reason == "answered"


def test_a_default_value_read_from_a_source_file_stands(make_settings):
    root = script(py("print(grep('def parse'))"), py("FINAL('100')"))
    result = run(
        "What is the default of limit in parse?", SOURCE, settings=make_settings(model=root)
    )
    assert result.answer == "100" and len(result.trajectory) == 2


def test_an_answer_read_after_a_manual_signature_stands(make_settings):
    code = py("h = grep('tool_read')\nprint(around(h[-1], before=0, after=3))")
    root = script(code, py("FINAL('TOOL_SUCCESS')"))
    result = run(
        "What does tool_read return when it read the value?",
        MANUAL,
        settings=make_settings(model=root),
    )
    assert result.answer == "TOOL_SUCCESS" and len(result.trajectory) == 2


@pytest.mark.parametrize(
    "name",
    ["gave_up", "guessed", "unprinted_number", "unsearched_name", "next_hop", "count_check"],
)
def test_no_answer_guard_fires_on_a_right_answer_backed_by_printed_lines(name):
    searches = [{"pattern": "Ann Lee", "hits": 1, "over": "context"}]
    printed = "[5: ' -- Ann Lee <ann@example.org>  Mon, 02 Jan 2023 10:00:00 +0100']"
    ev = evidence(
        "On what day did Ann Lee sign mytool 1.2.0?",
        "print(grep('Ann Lee'))",
        printed,
        "02 Jan 2023",
        searches=searches,
        sub_calls_left=100,
    )
    assert not guards.review(ev, (name,), "answer")


# --- the failures they exist for, with the reason from the run's output -------------------------


def test_a_count_of_a_product_search_is_sent_back_but_not_a_literal_label_search():
    question = "How many of the reviews of the Zemo kettle are favourable?"
    searches = [{"pattern": "Zemo kettle", "hits": 12, "over": "context"}]
    ev = evidence(question, "FINAL('12')", "", "12", searches=searches, sub_calls_left=100)
    found = guards.review(ev, ("count_check",), "answer")
    assert found and "12 is how many lines grep('Zemo kettle') found" in found[0][1].message
    quoted = "How many lines have the label 'Zemo kettle'?"
    ev = evidence(quoted, "FINAL('12')", "", "12", searches=searches, sub_calls_left=100)
    assert not guards.review(ev, ("count_check",), "answer")


@pytest.mark.parametrize(
    ("copied", "said"), [("the answer", "placeholder"), ("7731", "the worked example's answer")]
)
def test_the_instructions_placeholder_is_sent_back_and_the_count_after_it_stands(
    make_settings, copied, said
):
    # 7731 is the access code of the system prompt's worked example, copied by a model that
    # found nothing.
    count = py("hits = grep('label=TIMEOUT')\nprint(len(hits))")
    root = script(count, py(f"FINAL({copied!r})"), py("FINAL('7')"))
    question = "How many lines of the log have 'label=TIMEOUT'?"
    result = run(question, LOG, settings=make_settings(model=root))
    assert said in result.trajectory[1]["observation"]
    assert result.answer == "7" and result.stop_reason == "answered"
    root = script(count, py(f"FINAL({copied!r})"))
    result = run(question, LOG, settings=make_settings(model=root, guards="off"))
    assert result.answer == copied  # the paper's loop takes what it is given


def test_placeholders_are_caught_after_the_loops_own_notes_quote_them():
    # The loop's notes (a reply without code is told to write FINAL("the answer")) are not
    # output: only what code printed can make the words an answer.
    earlier = prompts.NO_CODE + "\n\nOutput:\n12 lines\nVariables: hits: list"
    for final in ("the answer", "...", "The answer."):
        ev = evidence("How many?", f"FINAL({final!r})", "", final, earlier_output=lambda: earlier)
        assert sent_back(ev) == ["placeholder"], final
    ev = evidence("How many?", "FINAL(x)", "", "the answer")  # a variable's value: not a copy
    assert sent_back(ev) == []


def test_the_words_the_answer_stand_when_the_text_says_them(make_settings):
    doc = "Quiz night notes.\nThe card in envelope 3 reads: the answer\nEnd of notes."
    root = script(py("print(grep('envelope 3'))"), py("FINAL('the answer')"))
    question = "What does the card in envelope 3 read?"
    result = run(question, doc, settings=make_settings(model=root))
    assert result.answer == "the answer" and len(result.trajectory) == 2


def test_the_worked_examples_answer_stands_when_the_text_says_it(make_settings):
    doc = "Door log.\nThe access code for the east door is 7731.\nEnd."
    root = script(py("print(grep('east door'))"), py("FINAL('7731')"))
    result = run("What is the east door's code?", doc, settings=make_settings(model=root))
    assert result.answer == "7731" and len(result.trajectory) == 2


class TimedReader(RuleModel):
    """A rule model that says, as the embedded model does, how fast it read its prompt: 1,000
    tokens in `eval_seconds`."""

    eval_seconds: float = 100.0

    def _generate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
        msg = super()._generate(messages, *a, **kw).generations[0].message
        meta = {"prompt_tokens_evaluated": 1000, "prompt_eval_seconds": self.eval_seconds}
        reply = AIMessage(content=msg.content, response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=reply)])


def test_a_count_is_not_sent_back_to_a_judging_that_cannot_finish_in_time(make_settings):
    # Judging 60 lines one by one at 10 tokens a second takes about 6 minutes of a run given 5:
    # the count stands (as it would with guards off) rather than end the run out of time. At
    # 1,000 tokens a second, or for a model that does not say, it is sent back.
    question = "How many of the reviews of the Zemo kettle are favourable?"
    doc = "\n".join(["Review: the Zemo kettle is fine."] * 60 + ["Other text."] * 5)
    rules = [(r"Output:\n60", py("FINAL('60')"))]
    count = py("print(len(grep('Zemo kettle')))")
    cases = (
        (TimedReader(rules=rules, default=count), False),
        (TimedReader(rules=rules, default=count, eval_seconds=1.0), True),
        (RuleModel(rules=rules, default=count), True),
    )
    for root, sent_back in cases:
        result = run(question, doc, settings=make_settings(model=root, max_seconds=300))
        fired = [g["name"] for t in result.trajectory for g in t.get("guards", [])]
        assert ("count_check" in fired) is sent_back, root


def test_a_number_no_code_printed_is_sent_back_saying_so():
    printed = "section A: 3\nsection B: 4\nsection C: 9"
    ev = evidence("How many items in total?", "FINAL('15')", printed, "15")
    found = guards.review(ev, ("unprinted_number",), "answer")
    assert found and found[0][1].message.startswith("Not finished: 15 is not a number any of")
    assert "15" in found[0][1].why
    later = "Output:\n16\nVariables: total: int"  # the sum, printed by code a turn before
    ev = evidence("How many items in total?", "FINAL('16')", "", "16", earlier_output=lambda: later)
    assert not guards.review(ev, ("unprinted_number",), "answer")


def test_a_file_the_question_names_is_a_name_to_search():
    # The question names one file of a source tree; the search was for its noun across the
    # whole tree, and found lines of other files.
    assert question_names("How many classes are defined at the top level of pkg/a.py?") == [
        "pkg/a.py"
    ]
    assert question_names("Is the 2.5.x series and/or TCP/IP named, e.g. here?") == []
    question = "How many classes are defined at the top level of pkg/a.py?"
    searches = [{"pattern": "classes", "hits": 2, "over": "context"}]
    printed = "2 [3: '# Abstract classes.' (in 1: '=== pkg/b.py ===')]"
    ev = evidence(question, "", printed, None, searches=searches)
    note = guards.review(ev, ("unsearched_name",), "note")
    assert note and "hits = grep('pkg/a.py')" in note[0][1].message


def test_a_search_that_printed_the_files_header_found_the_file(make_settings):
    # The hit is shown under `=== pkg/a.py ===`: the file was found without searching its name.
    tree = "=== pkg/a.py ===\n" + SOURCE + "=== pkg/b.py ===\ndef parse(x):\n    return x\n"
    code = py("print(grep('def parse'))")
    root = script(code, py("FINAL('text.split()')"))
    question = "What does parse in pkg/a.py return?"
    result = run(question, tree, settings=make_settings(model=root))
    assert "(in 1: '=== pkg/a.py ===')" in result.trajectory[0]["observation"]
    assert result.answer == "text.split()"
    assert result.usage["models"]["fakelistchatmodel"]["calls"] == 2
    assert not result.trajectory[0]["guards"]


def test_github_is_not_the_name_git():
    assert question_names("Which version reads GitHub Actions variables?") == ["GitHub Actions"]
    assert "Git" not in question_names("What did the GitHub user octocat change?")
    searches = [{"pattern": "GitHub", "hits": 1, "over": "context"}]
    ev = evidence("Which mytool version reads GitHub variables?", "", "x", None, searches=searches)
    assert not guards.review(ev, ("unsearched_name",), "note")


def test_a_search_that_found_the_quoted_text_needs_no_name_search():
    question = "On what date was the Mytool version released whose notes say 'Fix two typos'?"
    found = [{"pattern": "Fix two  typos", "hits": 1, "over": "context"}]
    ev = evidence(question, "FINAL('02 Dec 2022')", "1 [12: '* Fix two typos']", "02 Dec 2022")
    ev.searches = ev.new_searches = found
    assert not guards.review(ev, ("unsearched_name",), "answer")
    # The quoted text not found, or never searched: the name is still asked for.
    # A short quoted term is in many searches without being what they found.
    short = "Which Mytool release added the 'a' flag?"
    ev_short = evidence(short, "FINAL('1.2')", "x", "1.2")
    ev_short.searches = ev_short.new_searches = [
        {"pattern": "release", "hits": 5, "over": "context"}
    ]
    assert guards.review(ev_short, ("unsearched_name",), "answer")
    other = {"pattern": "typos", "hits": 3, "over": "context"}
    for searches in ([{**found[0], "hits": 0}], [other]):
        ev.searches = ev.new_searches = searches
        assert guards.review(ev, ("unsearched_name",), "answer")


def test_the_stuck_advice_never_offers_a_tools_note_as_the_answer(make_settings):
    same = py("hits = grep('favourable')\nprint(len(hits), hits)")
    root = script(same, same, same, same, py("FINAL('x')"))
    result = run(
        "How many reviews are favourable?", LOG, settings=make_settings(model=root, max_turns=6)
    )
    hint = next(t["observation"] for t in result.trajectory if "repeating" in t["observation"])
    assert "FINAL('(grep" not in hint and "FINAL('0 []')" not in hint
    assert "sub_lm_batched" in hint  # the helpers over chunks, the prompt's fallback


def test_the_stuck_advice_offers_a_value_the_code_printed(make_settings):
    same = py("print(len(grep('ERROR')))")
    root = script(same, same, py("FINAL('7')"))
    result = run("How many errors?", LOG, settings=make_settings(model=root))
    assert "It printed 7 again" in result.trajectory[1]["observation"]
    assert result.answer == "7"


def test_the_stuck_advice_never_offers_a_helpers_none_as_the_answer(make_settings):
    # A helper that found nothing says NONE; printed twice, it is no value to answer with.
    same = py("print(sub_lm('Which code does the east door have? Text: ' + context[:300]))")
    root = script(same, same, py("FINAL('x')"))
    settings = make_settings(model=root, sub_model=RuleModel(default="NONE"), max_turns=3)
    result = run("Which code does the east door have?", LOG, settings=settings)
    hint = result.trajectory[1]["observation"]
    assert "repeating" in hint and "FINAL('NONE')" not in hint


# --- the setting ----------------------------------------------------------------------------


def test_presets_and_lists():
    assert guards.enabled("off") == ()
    assert "count_check" not in guards.enabled("minimal")
    assert guards.enabled("minimal,count_check")[-1] == "count_check"
    assert set(guards.enabled("default")) == set(guards.BY_NAME)
    with pytest.raises(ValueError, match="unknown guard"):
        guards.enabled("count_check,nosuch")


def test_the_guards_setting_is_validated_where_it_comes_from():
    loaded = load_config({"guards": "minimal"}, use_files=False, environ={})
    assert loaded.settings.guards == "minimal"
    with pytest.raises(ConfigError, match="--guards"):
        load_config({"guards": "sometimes"}, use_files=False, environ={})


def test_with_guards_off_an_early_count_stands(make_settings):
    question = "How many of the reviews of the Zemo kettle are favourable?"
    doc = "\n".join(["Review: the Zemo kettle is fine."] * 5 + ["Other text."] * 5)
    root = script(py("print(len(grep('Zemo kettle')))"), py("FINAL('5')"))
    result = run(question, doc, settings=make_settings(model=root, guards="off"))
    assert result.answer == "5" and len(result.trajectory) == 2
    root = script(py("print(len(grep('Zemo kettle')))"), py("FINAL('5')"), py("FINAL('5')"))
    result = run(question, doc, settings=make_settings(model=root))
    assert "Not finished" in result.trajectory[1]["observation"]


def test_a_search_of_context_named_as_the_text_is_a_search_of_the_whole_text(make_settings):
    # `grep(p, context)` is `grep(p)`: the count check reads it the same way (a search over
    # a section, or another text, is what it leaves alone).
    question = "How many of the reviews of the Zemo kettle are favourable?"
    doc = "\n".join(["Review: the Zemo kettle is fine."] * 5 + ["Other text."] * 5)
    count = py("print(len(grep('Zemo kettle', context)))")
    root = script(count, py("FINAL('5')"), py("FINAL('5')"))
    result = run(question, doc, settings=make_settings(model=root))
    assert "Not finished" in result.trajectory[1]["observation"]
