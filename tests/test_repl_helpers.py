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


def test_grep_searches_any_sequence_of_lines_given_as_the_text(make_settings):
    # An object whose `==` answers element by element (a numpy array) is searched as lines.
    code = (
        "class Ambiguous:\n    def __bool__(self):\n        raise ValueError('ambiguous')\n"
        "class Rows(list):\n    def __eq__(self, other):\n        return Ambiguous()\n"
        "print(len(grep('TIMEOUT', Rows(context.splitlines()))), len(grep('OK', context)))"
    )
    assert "Output:\n7 19\n" in shown(LOG, code, make_settings)


def test_around_shows_the_lines_after_a_manual_signature(make_settings):
    out = shown(
        MANUAL, "h = grep('tool_read')\nprint(around(h[-1], before=0, after=2))", make_settings
    )
    assert "6: [Function]int tool_read (node root" in out
    assert "8: Returns: TOOL_SUCCESS if the value was read" in out


def test_section_of_a_changelog_line_is_its_version_header(make_settings):
    out = shown(CHANGELOG, "print(section_of(grep('#990')[0]))", make_settings)
    assert "mytool (1.1.0) unstable; urgency=low" in out


def test_in_a_pdf_manual_a_hit_is_under_its_function_and_section_not_the_contents(make_settings):
    out = shown(
        MANUAL, "h = grep('Returns')\nprint(h)\nprint(repr(section_of(h[0])))", make_settings
    )
    # The hit names its section (not the table of contents' line 3) and its function.
    assert "8: 'Returns: TOOL_SUCCESS" in out
    assert "(in 5: '4.2 Reading values' > 6: '[Function]int tool_read" in out
    assert out.splitlines()[2].startswith("6: '[Function]int tool_read (node root")


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
    code = "print(repr(section(10**9)), repr(section(-5)), repr(section_of(0)))"
    assert "Output:\n'mytool (1.1.0)" in shown(CHANGELOG, code, make_settings)
    assert "ValueError: no line of the text holds 'nope'" in shown(
        CHANGELOG, "section('nope')", make_settings
    )


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


NEWS = """\
GNU tool NEWS                                    -*- outline -*-

* Noteworthy changes in release 2.1 (2024-05-01) [stable]

** Bug fixes

  tool -x no longer crashes on empty files.

* Noteworthy changes in release 2.0 (2023-11-02) [stable]

** Bug fixes

  tool now reads files larger than 4 GiB.

** New features

  tool accepts --json.
"""


def test_a_hit_shows_the_headings_it_is_under(make_settings):
    out = shown(CHANGELOG, "print(grep('#990'))", make_settings)
    assert "[11: '  * Fix two typos (Closes: #990, #991)' (in 8: 'mytool (1.1.0) unstable" in out
    out = shown(NEWS, "print(grep('4 GiB'))", make_settings)
    path = (
        "(in 9: '* Noteworthy changes in release 2.0 (2023-11-02) [stable]' > 11: '** Bug fixes')"
    )
    assert path in out
    # A file among several, and a comment in its code that is not a heading: the line is under
    # its file and its function.
    doc = "=== tool/parse.py ===\n" + SOURCE.replace(
        "    return text", "    # why\n    return text"
    )
    out = shown(doc, "print(grep('split'))", make_settings)
    under = "(in 1: '=== tool/parse.py ===' > 5: 'def parse(text, strict=False, limit=100):')]"
    assert "'    return text.split()' " + under in out


def test_hits_in_a_text_without_headings_print_as_before(make_settings):
    out = shown(LOG, "print(grep('TIMEOUT')[:1])", make_settings)
    assert "[20: '2024-03-01 11:00:00 ERROR label=TIMEOUT upstream slow']" in out


def test_section_is_the_whole_entry_a_hit_is_in(make_settings):
    # The signer and date of a changelog entry come after its changes, beyond around()'s reach.
    out = shown(CHANGELOG, "print(section(grep('#990')[0]))", make_settings)
    assert "mytool (1.1.0) unstable; urgency=low" in out
    assert "-- Bo Chan <bo@example.org>  Fri, 02 Dec 2022" in out
    assert "Ann Lee" not in out
    # A subsection ends at the next heading of its rank or above; a section holds its subsections.
    out = shown(NEWS, "print(section(grep('4 GiB')[0]))", make_settings)
    assert "4 GiB" in out and "--json" not in out
    # A subsection comes under the headings above it: which release it belongs to.
    assert "release 2.0 (2023-11-02)" in out and "release 2.1" not in out
    code = (
        "s = section('release 2.0')\nprint(len(grep('Bug fixes', s)), '--json' in s, 'empty' in s)"
    )
    assert "1 True False" in shown(NEWS, code, make_settings)
    assert "''" in shown(LOG, "print(repr(section(3)))", make_settings)


CODE_FILE = """\
=== tool/log.py ===
import logging


def after_log(
    logger,
    level: int,
    sec_format: str = "%.3g",
) -> None:
    \"\"\"Log the attempt.\"\"\"
    if level:
        print(sec_format % 1.0)


class Reader:
    def read(
        self,
        size: int = 4096,
    ) -> str:
        return sec_format_of(size)
"""


def test_a_hit_in_code_names_the_function_or_class_it_sits_in(make_settings):
    # A parameter's default is on a line of its own; the hit says whose parameter it is.
    out = shown(CODE_FILE, "print(grep('sec_format'))", make_settings)
    assert (
        "8: '    sec_format: str = \"%.3g\",' (in 1: '=== tool/log.py ===' > 5: 'def after_log(')"
        in out
    )
    assert "12: '        print(sec_format % 1.0)']" in out  # the same function: not repeated
    # A method's body under the method (past a signature closed on its own line), a method
    # under its class, a line at column 0 under the file alone.
    out = shown(CODE_FILE, "print(grep('size'))", make_settings)
    assert "(in 1: '=== tool/log.py ===' > 16: 'def read(')" in out
    out = shown(CODE_FILE, "print(grep('def read'))", make_settings)
    assert "> 15: 'class Reader:')" in out
    out = shown(CODE_FILE, "print(grep('import logging'))", make_settings)
    assert "2: 'import logging' (in 1: '=== tool/log.py ===')" in out


def test_an_empty_search_in_code_says_where_the_lines_it_lists_are(make_settings):
    # The note's lines, like hits, name their file and function: "class X(Base):" alone does
    # not say which file defines it.
    out = shown(CODE_FILE, "print(grep('sec_format default for the reader'))", make_settings)
    assert "rarest first" in out
    where = "(in 1: '=== tool/log.py ===' > 5: 'def after_log(')"
    assert f'8:     sec_format: str = "%.3g", {where}' in out


def test_a_long_section_cut_to_a_limit_keeps_its_heading_and_the_hit(make_settings):
    # A file of a code base is one section; its first 4,000 characters may never reach a class
    # 300 lines down. With a limit, the file's header and the lines around the hit are kept.
    body = "\n".join(f"def helper_{i}(x):\n    return x + {i}\n" for i in range(300))
    tail = 'class Reader:\n    """Reads one record."""\n    limit = 4096\n'
    doc = "=== tool/read.py ===\n" + body + tail + "=== tool/other.py ===\ny = 2\n"
    code = "s = section(grep('class Reader')[0], limit=2000)\nprint(len(s) <= 2000)\nprint(s)"
    out = shown(doc, code, make_settings)
    assert "True" in out.splitlines()[1]
    assert "=== tool/read.py ===" in out and "class Reader:" in out and "limit = 4096" in out
    assert "lines of this section skipped" in out and "y = 2" not in out
    # A long changelog entry keeps its last line, where it is signed and dated.
    changes = "\n".join(f"  * Fix typo number {i} in the manual" for i in range(200))
    entry = "tool (2.0) unstable; urgency=low\n\n  * Add the --json flag\n" + changes
    doc = entry + "\n\n -- Ann Lee <ann@example.org>  Mon, 05 Jun 2023 10:00:00 +0000\n"
    out = shown(doc, "print(section(grep('--json')[0], limit=1500))", make_settings)
    assert "tool (2.0)" in out and "--json" in out and "Mon, 05 Jun 2023" in out
    assert "number 199" not in out and "more lines of this section" in out
    # Long lines (an unwrapped paragraph, a data literal) are cut: the limit holds.
    doc = "# Notes\n" + "a" * 5000 + "\nthe needle line\n" + "c" * 3000 + "\nend\n"
    code = "s = section(grep('needle')[0], limit=300)\nprint(len(s) <= 300, 'needle' in s)"
    assert "True True" in shown(doc, code, make_settings)
    # A section that fits is the same with or without the limit.
    code = "print(section(grep('#990')[0], limit=4000) == section(grep('#990')[0]))"
    assert "True" in shown(CHANGELOG, code, make_settings)


def test_a_hit_keeps_its_headings_across_cells(make_settings):
    code = py("h = grep('#990')"), py("print(h[0].n, h)"), py("FINAL('x')")
    result = run("q", CHANGELOG, settings=make_settings(model=script(*code)))
    assert (
        "11 [11: '  * Fix two typos (Closes: #990, #991)' (in 8: 'mytool"
        in (result.trajectory[1]["observation"])
    )


def test_a_text_of_several_lines_left_as_the_cell_value_is_shown_as_lines(make_settings):
    out = shown(CHANGELOG, "section(grep('#990')[0])", make_settings)
    assert "Output:\nmytool (1.1.0) unstable; urgency=low\n\n  * Read settings" in out
    assert "Output:\n'one line'" in shown(CHANGELOG, "'one line'", make_settings)


def test_a_pdf_running_header_is_not_a_heading_and_a_heading_hit_shows_its_parents(
    make_settings,
):
    pages = [
        "4 Function reference",
        "[Function]int tool_open (const char * path)",
        "path: the file to open.",
    ]
    for page in range(12, 16):  # each page starts with the chapter's running header
        pages += ["", f"--- page {page} ---", f"Chapter 4: Function reference {page}"]
        pages += ["Returns: TOOL_SUCCESS." if page == 13 else f"More text on page {page}."]
    pages += ["[Function]int tool_close (int fd)", "fd: the file."]
    doc = "\n".join(pages)
    out = shown(doc, "print(grep('tool_close'))\nprint(section('tool_open'))", make_settings)
    # The definition hit is under the chapter, not under the previous definition.
    assert "'[Function]int tool_close (int fd)' (in 1: '4 Function reference')]" in out
    # A definition's section runs across page breaks up to the next definition.
    assert "Returns: TOOL_SUCCESS." in out and "More text on page 15." in out
    assert "fd: the file." not in out


def test_hits_under_the_same_headings_print_them_once(make_settings):
    doc = CHANGELOG.replace("  * Fix two typos", "  * Fix a leak (Closes: #995)\n  * Fix two typos")
    out = shown(doc, "h = grep('Closes')\nprint(h[1:])\nprint(len(h[1:]), h[-1].n)", make_settings)
    under = "(in 8: 'mytool (1.1.0) unstable; urgency=low')"
    assert f"[11: '  * Fix a leak (Closes: #995)' {under}, 12: '  * Fix two typos" in out
    assert out.count(under) == 1
    assert "\n2 12\n" in out


def test_an_empty_search_in_a_changelog_says_which_entry_holds_the_phrase_s_words(
    make_settings,
):
    code = "print(grep('the version whose entry lists Fix two typos please'))"
    out = shown(CHANGELOG, code, make_settings)
    assert "11:   * Fix two typos (Closes: #990, #991) (in 8: 'mytool (1.1.0)" in out
    assert "To read the first in full: print(section(11))" in out


def test_an_empty_search_of_one_section_offers_no_code_that_reads_another(make_settings):
    # Line numbers of a part are not those of `context`: section(n) would read another line.
    code = "print(grep('entry lists Fix two typos please', section(8)))"
    out = shown(CHANGELOG, code, make_settings)
    assert "Fix two typos" in out and "print(section(" not in out


def test_an_empty_search_in_a_news_file_points_at_the_release_it_names(make_settings):
    # "Tool version" and "version 1.5" each occur in one line; "Tool" is in many, "1.5" in one.
    news = "\n".join(
        f"Noteworthy changes in version 1.{k} (2020-01-0{k})\n"
        + "-" * 40
        + f"\n\n * Fix {k} in Tool.\n"
        + (" * Hide the Tool version in the banner.\n" if k == 2 else "")
        for k in range(6, 0, -1)
    )
    out = shown(news, "print(grep('Tool version 1.5'))", make_settings)
    assert "1 line has 'version 1.5', such as:\n" in out
    assert "Noteworthy changes in version 1.5 (2020-01-05)" in out
