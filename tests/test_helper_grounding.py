"""A helper asked with no text of the document answers from what it knows: the REPL says so
beside the call, and leaves the reply, and a call that passes the document's lines, alone."""

from __future__ import annotations

from rlm_research.graph import run
from rlm_research.tools.helper_grounding import holds_text_of, ungrounded_note

from tests.support.scripted_models import RuleModel, py, script
from tests.test_guards import SOURCE

DOC = "=== tool/parse.py ===\n" + SOURCE


def test_a_helper_asked_only_the_question_is_marked_and_one_shown_the_file_is_not(make_settings):
    helper = RuleModel(default="parse.h")
    root = script(
        py("print(sub_lm('In which file is the class Parser defined?'))"),
        py("print(sub_lm('In which file is the class Parser defined?\\n\\n' + context[:400]))"),
        py("FINAL('tool/parse.py')"),
    )
    settings = make_settings(model=root, sub_model=helper, guards="off")
    result = run("In which file is the class Parser defined?", DOC, settings=settings)
    bare, shown = result.trajectory[0]["observation"], result.trajectory[1]["observation"]
    assert "(sub_lm: the prompt held no text of `context`" in bare and "parse.h" in bare
    assert "sub_lm:" not in shown and "parse.h" in shown
    assert result.answer == "tool/parse.py"


def test_which_prompts_hold_the_document():
    doc = "Release 2.0 reads files larger than 4 GiB.\nRelease 1.9 fixed a crash on empty input.\n"
    assert not holds_text_of("Which release reads large files?", doc)
    assert holds_text_of("Which release? Text: Release 1.9 fixed a crash on empty input.", doc)
    assert holds_text_of("anything at all", "")  # no document: nothing to quote
    assert holds_text_of("Code in: The code is 7413.", "Vault.\nThe code is 7413.\nEnd.")
    assert holds_text_of("x" * 3000, doc)  # a long prompt carries its own material
    note = ungrounded_note(["Which release?", "Text: Release 2.0 reads files larger"], doc)
    assert note is not None and "1 of the 2 prompts" in note
    assert ungrounded_note(["Text: Release 2.0 reads files larger than 4"], doc) is None
