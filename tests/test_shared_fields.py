"""Records that share field values are grouped by code: `lines_sharing` in the REPL, and for a
stuck model asked what records share, the loop runs it and offers the groups' names. Never for
a text that is not records, a question that asks nothing shared, a model that answered, or with
guards off."""

from __future__ import annotations

from rlm_research.graph import run
from rlm_research.nodes.guards.shared_fields import group_shared
from rlm_research.tools.record_fields import field_labels, groups_sharing, question_labels

from tests.support.scripted_models import py, script
from tests.test_guards import CHANGELOG, MANUAL, evidence

MAINTAINERS = ["Ann Lee", "Bo Chan", "Cy Diaz", "Di Eng", "Ed Fox", "Flo Gray"]


def package_list() -> str:
    """Thirty packages, one a line; libfoo/barkit and zedutil/quxlib share a version and a
    maintainer; near misses share only one of them."""
    rows = [
        f"pkg{i:02d}: version {i // 6}.{i % 6}.0, maintained by {MAINTAINERS[i % 6]}, "
        f"section {'utils' if i % 2 else 'libs'}."
        for i in range(26)
    ]
    rows[3:3] = ["libfoo: version 2.4.1, maintained by Ann Lee, section libs."]
    rows[9:9] = ["zedutil: version 0.9.9, maintained by Cy Diaz, section utils."]
    rows[17:17] = ["barkit: version 2.4.1, maintained by Ann Lee, section utils."]
    rows[22:22] = ["quxlib: version 0.9.9, maintained by Cy Diaz, section libs."]
    rows.append("nearmiss: version 2.4.1, maintained by Bo Chan, section libs.")
    return "\n".join(rows)


PACKAGES = package_list()
SAME = "Which packages have the same version and the same maintainer? List them in pairs."
ACCESS_LOG = "\n".join(
    f"2024-03-01T10:{m:02d}:00 GET /page/{m} user={['ann', 'bo', 'cy'][m % 3]} "
    f"ip=10.0.0.{m % 5} status=200"
    for m in range(30)
)
EMPTY_SEARCH = py('hits = grep("same version and maintainer")\nprint(len(hits), hits)')


def loop_turns(result) -> list[dict]:
    return [t for t in result.trajectory if t.get("by") == "loop" and t.get("depth", 0) == 0]


def test_the_fields_of_a_package_list_and_an_access_log():
    assert field_labels(PACKAGES.splitlines()) == ["version", "maintained by"]
    assert field_labels(ACCESS_LOG.splitlines()) == ["user=", "ip=", "status="]
    assert question_labels(SAME, ["version", "maintained by"]) == ["version", "maintained by"]
    lines = ACCESS_LOG.splitlines()
    # user and ip agree every 15 minutes (3 users, 5 addresses).
    assert groups_sharing(["user=", "ip="], lines) == [[m, m + 15] for m in range(15)]


def test_documents_that_are_not_records_have_no_fields():
    for text in (CHANGELOG, MANUAL):
        assert field_labels(text.splitlines()) == []


def test_a_stuck_model_gets_the_records_grouped_and_their_names_offered(make_settings):
    answer = "(libfoo, barkit), (zedutil, quxlib)"
    root = script(EMPTY_SEARCH, EMPTY_SEARCH, py(f"FINAL({answer!r})"))
    result = run(SAME, PACKAGES, settings=make_settings(model=root))
    ran = loop_turns(result)
    assert len(ran) == 1 and "lines_sharing('version', 'maintained by')" in ran[0]["code"][0]
    assert f"FINAL({answer!r})" in ran[0]["observation"]
    # The near miss shares a version only: not in any group.
    assert "nearmiss" not in ran[0]["observation"].split("Variables:")[0]
    assert result.answer == answer and result.stop_reason == "answered"


def test_a_model_that_groups_the_records_itself_is_left_alone(make_settings):
    code = py("g = lines_sharing('version', 'maintained by')\nprint(g)")
    root = script(code, py("FINAL('(libfoo, barkit), (zedutil, quxlib)')"))
    result = run(SAME, PACKAGES, settings=make_settings(model=root))
    assert result.answer == "(libfoo, barkit), (zedutil, quxlib)" and not loop_turns(result)
    assert len([t for t in result.trajectory if t.get("depth", 0) == 0]) == 2


def test_the_repl_helper_groups_log_lines_by_key_value_fields(make_settings):
    code = py("g = lines_sharing('user=', 'ip=')\nprint(len(g), g[0])")
    root = script(code, py("FINAL('done')"))
    question = "Which requests share a user and an ip?"
    result = run(question, ACCESS_LOG, settings=make_settings(model=root))
    shown = result.trajectory[0]["observation"]
    assert "15 groups of lines share" in shown
    assert "1: '2024-03-01T10:00:00 GET /page/0" in shown and "16: '2024-03-01T10:15:00" in shown


def test_no_grouping_for_a_question_that_asks_nothing_shared_or_a_text_without_records():
    stuck = dict(fired=[], sub_calls_left=3)
    lookup = "Which version of libfoo does Ann Lee maintain?"
    labels = lambda: ["version", "maintained by"]  # noqa: E731
    ev = evidence(lookup, 'print(grep("libfoo"))', "0 []", None, field_labels=labels, **stuck)
    assert group_shared(ev) is None
    ev = evidence(SAME, 'print(grep("x"))', "0 []", None, field_labels=lambda: [], **stuck)
    assert group_shared(ev) is None
    ev = evidence(SAME, 'print(grep("x"))', "0 []", None, field_labels=labels, **stuck)
    assert group_shared(ev) is not None


def test_guards_off_run_no_grouping_for_the_model(make_settings):
    root = script(EMPTY_SEARCH, EMPTY_SEARCH, py("FINAL('none')"))
    result = run(SAME, PACKAGES, settings=make_settings(model=root, guards="off"))
    assert not loop_turns(result) and result.answer == "none"


def test_hostile_labels_group_nothing_and_raise_nothing(make_settings):
    code = py("g = lines_sharing('(.*', '\\\\', 'x' * 10000)\nprint(len(g))\nh = lines_sharing()")
    root = script(code, py("FINAL('ok')"))
    result = run(SAME, PACKAGES, settings=make_settings(model=root))
    shown = result.trajectory[0]["observation"]
    assert "Error" not in shown and "\n0\n" in shown
    assert "this text's fields: ['version', 'maintained by']" in shown


def test_a_model_that_runs_the_grouping_again_is_offered_its_groups(make_settings):
    code = "groups = lines_sharing('version', 'maintained by')\nprint(len(groups), groups)"
    mine = py("g = lines_sharing('version', 'maintained by')\nprint(g)")
    root = script(EMPTY_SEARCH, EMPTY_SEARCH, py(code), py(code), mine, mine, py("FINAL('x')"))
    result = run(SAME, PACKAGES, settings=make_settings(model=root))
    offer = "FINAL('(libfoo, barkit), (zedutil, quxlib)')"
    turns = [t for t in result.trajectory if t.get("by") != "loop"]
    # The loop's cell copied prints what the loop's run printed: a repeat at once, and the
    # advice offers the groups (the note spoke once, under the loop's own run); copied again
    # after that offer, the loop asks for the answer in words.
    assert turns[2]["code"] == [code] and offer in turns[2]["observation"]
    assert "search stops here" in turns[3]["observation"]


def test_groups_of_log_lines_that_open_with_the_same_word_are_not_named_by_it(make_settings):
    log = "\n".join(f"ERROR: disk {d % 4} full, host=h{d % 2}" for d in range(12))
    code = py("g = lines_sharing('disk', 'host=')\nprint(g)")
    root = script(code, py("FINAL('done')"))
    question = "Which errors share a disk and a host?"
    result = run(question, log, settings=make_settings(model=root))
    shown = result.trajectory[0]["observation"]
    assert "4 groups of lines share" in shown and "(ERROR, ERROR" not in shown
