"""The real-document question set: 50 questions over ten pinned documents, gold answers
computed from the text, half held out with every family in both halves, and a document whose
package moved to another version refused rather than rescored."""

from __future__ import annotations

from collections import Counter

import pytest
from rlm_research.bench import heldout, real_docs

try:
    TASKS = real_docs.real_tasks()
except (real_docs.DocumentDrift, OSError, ImportError) as exc:  # another machine, other files
    pytest.skip(f"the pinned documents are not on this machine: {exc}", allow_module_level=True)


def test_fifty_questions_half_held_out_in_every_family():
    assert len(TASKS) == 50 and len({t.id for t in TASKS}) == 50
    splits = Counter((t.family, t.meta["split"]) for t in TASKS)
    assert all(splits[(f, s)] == 5 for f in real_docs.FAMILIES for s in ("dev", "held_out"))
    per_doc = Counter((t.meta["doc"], t.meta["split"]) for t in TASKS)
    assert sorted(set(per_doc.values())) == [2, 3]


def test_gold_answers_score_full_and_a_near_miss_does_not():
    for task in TASKS:
        assert task.score(str(task.gold)) == 1.0
        assert task.score("no idea") == 0.0
    count = next(t for t in TASKS if t.id == "real:apt-changelog:count")
    assert count.score(str(count.gold + 1)) == 0.75


def test_a_date_written_another_way_is_the_same_answer():
    score = real_docs.scorer_for("17 May 2022")
    for answer in ("2022-05-17", "Tue, 17 May 2022 10:41:07 +0200", "May 17, 2022"):
        assert score(answer) == 1.0
    assert score("2022-05-18") == 0.0 and score("May 2022") == 0.0


def test_a_changed_package_version_is_refused(monkeypatch):
    real_docs.document_text.cache_clear()
    monkeypatch.setattr(real_docs, "installed_version", lambda package: "0.0-other")
    with pytest.raises(real_docs.DocumentDrift, match="pin"):
        real_docs.document_text("apt-changelog")
    real_docs.document_text.cache_clear()


def test_the_report_counts_tool_note_answers_and_calls_per_correct():
    rows = [
        {
            "family": "count",
            "guards": "off",
            "split": "held_out",
            "score": 1.0,
            "calls": 4,
            "seconds": 60.0,
            "first_right": True,
        },
        {
            "family": "count",
            "guards": "off",
            "split": "held_out",
            "score": 0.0,
            "calls": 9,
            "seconds": 300.0,
            "stop_reason": "answered",
            "answer": "(grep: no line has 'x') 0 []",
        },
    ]
    rows[1]["tool_note_answer"] = heldout.tool_note_answer(rows[1])
    table = heldout.report(rows)
    assert "| held_out | count | off | 2 | 0.50 | 1 | 13 | 360 | 1 | 4 |" in table


def test_docs_picks_documents_and_an_unknown_one_is_refused():
    parse = heldout.build_parser().parse_args
    opts = parse(["--set", "real", "--split", "held_out", "--docs", "gnupg-news", "--out", "x"])
    picked = heldout.tasks_for(opts)
    assert {t.meta["doc"] for t in picked} == {"gnupg-news"} and len(picked) == 2
    with pytest.raises(SystemExit, match="gnupg-news"):
        heldout.tasks_for(parse(["--set", "real", "--docs", "nope", "--out", "x"]))
    with pytest.raises(SystemExit, match="--set real"):
        heldout.tasks_for(parse(["--set", "seeds", "--docs", "gnupg-news", "--out", "x"]))


def test_a_drifted_document_does_not_stop_a_run_over_the_others(monkeypatch):
    real_docs.document_text.cache_clear()
    real = real_docs.installed_version
    monkeypatch.setattr(
        real_docs,
        "installed_version",
        lambda package: "0.0-other" if package == "pypi:attrs" else real(package),
    )
    assert len(real_docs.real_tasks("all", ["apt-changelog"])) == 5
    with pytest.raises(real_docs.DocumentDrift):
        real_docs.real_tasks("all")
    real_docs.document_text.cache_clear()
