"""The first message's outline of a document with headings, and `headings()` in the REPL: a
changelog's entries, a NEWS file's releases and a manual's function entries are counted by
code and shown with their line numbers; a text without headings gets the first message it
always had. Also: a search for a bracketed term that occurs as written finds that term."""

from __future__ import annotations

from rlm_research.graph import run

from tests.support.scripted_models import RuleModel, py
from tests.test_guards import CHANGELOG, LOG, MANUAL


def changelog(n: int) -> str:
    """A Debian changelog of `n` entries, newest first, two changes each."""
    entries = []
    for k in range(n, 0, -1):
        entries.append(
            f"tool (1.{k}.0) unstable; urgency=medium\n\n  * Change {k}a (Closes: #{k}01)\n"
            f"  * Change {k}b\n\n -- Ann Lee <ann@example.org>  Mon, 02 Jan 2023 10:00:00 +0100\n"
        )
    return "\n".join(entries)


def first_message_and_output(doc, code: str, make_settings) -> tuple[str, str]:
    """The first message the model reads over `doc`, and what `code` printed."""
    model = RuleModel(rules=[("Output:", py("FINAL('x')"))], default=py(code))
    result = run("How many versions are there?", doc, settings=make_settings(model=model))
    return model.calls[0], result.trajectory[0]["observation"]


def test_a_changelog_with_many_entries_is_outlined_by_kind_with_its_count(make_settings):
    code = "h = headings('tool')\nprint(len(h), h[2].n, h[2])\nprint(section(h[2]).splitlines()[2])"
    first, out = first_message_and_output(changelog(12), code, make_settings)
    assert "12 like 'tool (1.12.0) unstable; urgency=medium' (the first at line 1" in first
    # What the outline counted, code counts the same; a heading's section is its entry.
    assert "12 15 tool (1.10.0) unstable; urgency=medium" in out
    assert "* Change 10a (Closes: #1001)" in out


def test_a_text_with_few_headings_lists_each_with_its_line_number(make_settings):
    first, out = first_message_and_output(CHANGELOG, "print(headings())", make_settings)
    assert "- 1: 'mytool (1.2.0) unstable; urgency=medium'" in first
    assert "- 8: 'mytool (1.1.0) unstable; urgency=low'" in first
    assert "[1: 'mytool (1.2.0) unstable; urgency=medium', 8: 'mytool (1.1.0)" in out


def test_a_text_without_headings_gets_no_outline(make_settings):
    first, out = first_message_and_output(LOG, "print(len(headings()))", make_settings)
    assert "headings" not in first.lower()
    assert "Output:\n0\n" in out


def test_several_sources_are_outlined_with_the_worker_s_line_numbers(make_settings):
    doc = {"notes.txt": "alpha\nbeta", "guide.md": "# Setup\ntext\n# Usage\nmore"}
    code = "lines = context.splitlines()\nprint([lines[h.n - 1] for h in headings()])"
    first, out = first_message_and_output(doc, code, make_settings)
    assert "- 5: '=== guide.md ==='" in first
    assert "- 6: '# Setup'" in first and "- 8: '# Usage'" in first
    assert "['=== notes.txt ===', '=== guide.md ===', '# Setup', '# Usage']" in out


def test_one_named_source_is_outlined_with_the_worker_s_line_numbers(make_settings):
    code = "lines = context.splitlines()\nprint([(h.n, lines[h.n - 1]) for h in headings()])"
    first, out = first_message_and_output({"guide.md": "# Setup\ntext"}, code, make_settings)
    assert "- 2: '# Setup'" in first
    assert "(2, '# Setup')" in out


def test_a_manual_s_function_entries_are_found_by_their_bracketed_label(make_settings):
    code = "print(len(headings('[Function]')), len(grep('[Function]')), len(grep('(node')))"
    first, out = first_message_and_output(MANUAL, code, make_settings)
    assert "'[Function]int tool_read (node root" in first
    # "[Function]" as a regex is a class of letters that would match nearly every line.
    assert "Output:\n1 1 1\n" in out


def test_a_regex_with_brackets_that_does_not_occur_as_written_stays_a_regex(make_settings):
    code = "print(len(grep('[0-9]+ INFO')), len(grep(r'(TIMEOUT|OK)')), len(grep('label=(OK)')))"
    _, out = first_message_and_output(LOG, code, make_settings)
    assert "Output:\n19 26 19\n" in out


def test_hostile_arguments_to_headings_are_errors_not_crashes(make_settings):
    code = "print(headings('x', 5))"
    _, out = first_message_and_output(CHANGELOG, code, make_settings)
    assert "TypeError" in out
    code = "print(headings('((('), headings(''), len(headings(None, ['# a', 'b'])))"
    _, out = first_message_and_output(CHANGELOG, code, make_settings)
    assert "no heading has '((('" in out and "\n[] [1: 'mytool" in out


# Counting in several sections and adding, as code the model can write: a loop over headings.
SECTIONS_LOOP = """total = 0
for name in NAMES:
    head = headings(name)[0]
    n = len(grep(WORD, section(head)))
    print(head, n)
    total += n
print(total)"""


def test_code_counts_in_several_changelog_entries_and_adds(make_settings):
    # Entries 1.3.0 and 1.5.0 have one "Closes" line each.
    code = SECTIONS_LOOP.replace("NAMES", '["1.3.0", "1.5.0"]').replace("WORD", '"Closes"')
    _, out = first_message_and_output(changelog(12), code, make_settings)
    assert "tool (1.3.0) unstable; urgency=medium 1\n" in out
    assert "tool (1.5.0) unstable; urgency=medium 1\n2\n" in out


def test_code_counts_in_named_files_of_a_source_tree(make_settings):
    files = {
        "pkg/a.py": "def f():\n    pass\n\n\ndef g():\n    pass\n",
        "pkg/b.py": "class C:\n    def m(self):\n        pass\n\n\ndef h():\n    pass\n",
        "pkg/c.py": "def unrelated():\n    pass\n",
    }
    code = SECTIONS_LOOP.replace("NAMES", '["pkg/a.py", "pkg/b.py"]')
    code = code.replace("WORD", '"^def "')  # top-level functions only
    _, out = first_message_and_output(files, code, make_settings)
    assert "=== pkg/a.py === 2\n=== pkg/b.py === 1\n3\n" in out


def test_headings_that_match_nothing_print_the_nearest_headings(make_settings):
    # A phrase from the question matches no heading; its version numbers do.
    code = "h = headings('tool versions (1.3.0 to 1.5.0)')\nprint(len(h))\nprint(h[0])"
    _, out = first_message_and_output(changelog(12), code, make_settings)
    assert "no heading has 'tool versions (1.3.0 to 1.5.0)'" in out
    near = out.split("most of its words")[1]
    assert near.index("tool (1.5.0)") < near.index("tool (1.12.0)")
    assert "tool (1.3.0)" in near and "\n0\n" in out and "IndexError" in out
    _, out = first_message_and_output(changelog(12), "print(len(headings('1.3.0')))", make_settings)
    assert "Output:\n1\n" in out


def test_a_file_that_opens_with_a_comment_banner_is_still_its_own_section(make_settings):
    # h11/_state.py opens with a "####" banner: read as the underline of its `=== ... ===`
    # header, it made the file a 3-line subsection of the file before.
    banner = "#" * 60
    files = {
        "pkg/a.py": "def f():\n    pass\n",
        "pkg/b.py": f"{banner}\n# The states\n{banner}\n\n"
        + "class One:\n    pass\n\n\nclass Two:\n    pass\n",
    }
    code = "s = section(grep('pkg/b.py')[0])\nprint(s.count('class '), grep('class Two'))"
    _, out = first_message_and_output(files, code, make_settings)
    assert "2 [" in out and "(in " in out and "'=== pkg/b.py ==='" in out
    assert "pkg/a.py" not in out.split("2 [", 1)[1]
