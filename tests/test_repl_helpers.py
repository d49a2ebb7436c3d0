"""The REPL's reading helpers on ordinary documents: grep's hits carry their line numbers,
around() shows the lines near a hit, section_of() names the heading a hit is under (markdown,
numbered, underlined, ALL CAPS, changelog versions, a PDF manual's numbered sections), and the
first message calls its preview a preview."""

from __future__ import annotations

from rlm_research.graph import run

from tests.support.scripted_models import py, script
from tests.test_guards import CHANGELOG, LOG, MANUAL, SOURCE


def shown(doc: str, code: str, make_settings, question: str = "q") -> str:
    """What the model is shown after running `code` over `doc`."""
    result = run(question, doc, settings=make_settings(model=script(py(code), py("FINAL('x')"))))
    return result.trajectory[0]["observation"]


def test_grep_hits_carry_line_numbers_and_stay_strings(make_settings):
    out = shown(
        LOG, "h = grep('TIMEOUT')\nprint(len(h), h[:2], h[0].n, h[0].upper()[:10])", make_settings
    )
    assert "7 [20: '2024-03-01 11:00:00 ERROR" in out
    assert "21: '2024-03-02 11:00:00 ERROR" in out
    assert " 20 2024-03-01" in out


def test_around_shows_the_lines_after_a_manual_signature(make_settings):
    out = shown(
        MANUAL, "h = grep('tool_read')\nprint(around(h[-1], before=0, after=2))", make_settings
    )
    assert "6: [Function]int tool_read (node root" in out
    assert "8: Returns: TOOL_SUCCESS if the value was read" in out


def test_section_of_a_changelog_line_is_its_version_header(make_settings):
    out = shown(CHANGELOG, "print(section_of(grep('#990')[0]))", make_settings)
    assert "mytool (1.1.0) unstable; urgency=low" in out


def test_section_of_in_a_pdf_manual_is_the_section_not_the_table_of_contents(make_settings):
    out = shown(MANUAL, "print(repr(section_of(grep('Returns')[0])))", make_settings)
    assert "5: '4.2 Reading values'" in out


def test_section_of_markdown_underlined_caps_and_numbered_headings(make_settings):
    doc = "\n".join(
        [
            "# Guide",
            "Intro text.",
            "Install",
            "=======",
            "Run pip install tool.",
            "KNOWN ISSUES",
            "The cache may grow.",
            "3.1 Upgrading the tool",
            "Back up the data first.",
        ]
    )
    code = "for w in ('Intro', 'pip', 'cache', 'Back up'):\n    print(section_of(grep(w)[0]))"
    out = shown(doc, code, make_settings)
    assert "# Guide\nInstall\nKNOWN ISSUES\n3.1 Upgrading the tool" in out


def test_section_of_in_a_source_file_and_with_no_heading(make_settings):
    doc = "=== tool/parse.py ===\n" + SOURCE + "\n=== tool/read.py ===\nx = 1\n"
    out = shown(doc, "print(section_of(grep('class Reader')[0]))", make_settings)
    assert "=== tool/parse.py ===" in out
    out = shown("plain text\nno headings here", "print(repr(section_of(2)))", make_settings)
    assert "''" in out


def test_hostile_arguments_to_the_helpers_are_errors_not_crashes(make_settings):
    out = shown(LOG, "print(around('no such text'))", make_settings)
    assert "ValueError: no line of the text holds 'no such text'" in out
    out = shown(LOG, "print(around(10**9, before=-5, after=10**12)[:20])", make_settings)
    assert "Output:" in out


def test_the_preview_is_marked_as_not_evidence(make_settings):
    result = run("q", LOG, settings=make_settings(model=script(py("FINAL('x')"))))
    assert result.answer == "x"
    from rlm_research.nodes import prompts

    assert "not evidence" in prompts.FIRST_USER


def test_an_empty_phrase_search_shows_the_lines_with_its_rarest_words(make_settings):
    # The question says "version 1.1.0"; the changelog writes "mytool (1.1.0)".
    out = shown(CHANGELOG, "print(grep('mytool version 1.1.0'))", make_settings)
    note = out[out.index("(grep: no line has") :]
    assert note.index("'1.1.0'") < note.index("'mytool'")  # rarest first
    first_line = note.splitlines()[1]
    assert first_line == "8: mytool (1.1.0) unstable; urgency=low"
