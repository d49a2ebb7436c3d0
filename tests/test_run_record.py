"""The run record behind the reports: the markdown call tree shows every level's answer, the JSONL
trajectory holds every depth's turns, and the HTML viewer is written beside them, for a run that
answered, failed, was interrupted, or is still going. (The page itself is checked in a real
browser in test_viewer_browser.py.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from rlm_research.graph.api import load_result
from rlm_research.graph.usage import total_calls
from rlm_research.report.html_viewer import render_html, write_viewer
from rlm_research.report.markdown import write_report
from rlm_research.report.run_record import gather_run

from tests.support.viewer_runs import ANSWERS, HOSTILE, MODEL_CALLS, QUESTION, tree_run


def data_dir(settings) -> Path:
    return Path(settings.data_dir)


@pytest.mark.timeout(120)
def test_markdown_jsonl_and_viewer_carry_every_level(make_settings):
    result = tree_run(make_settings)
    data = Path(make_settings().data_dir)
    md, jsonl = write_report(result, data_dir=data, question=QUESTION, status="answered")

    record = gather_run(result.run_id, data_dir=data)
    assert {lv.path: lv.answer for lv in record.levels()} == ANSWERS
    assert total_calls(record.usage) == MODEL_CALLS
    # One timed model call per call made, at every depth.
    assert sum(s.model_calls for lv in record.levels() for s in lv.steps) == MODEL_CALLS

    text = md.read_text()
    rows = {line.split("|")[1].replace("&nbsp;", "").strip(): line for line in text.splitlines()
            if line.startswith("| ") and "&nbsp;" in line or line.startswith("| 0 |")}  # fmt: skip
    for path, answer in ANSWERS.items():
        assert answer[:20] in rows[path], path  # the answer column of the call tree

    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    by_node = {}
    for line in lines:
        by_node.setdefault(line["node"], []).append(line)
    assert [t["turn"] for t in by_node["0"]] == [1, 2, 3]
    assert by_node["0.1"][0]["depth"] == 1 and "sub_lm('say done')" in by_node["0.1"][0]["code"][0]
    assert {n for n in by_node if n.count(".") == 1} == {f"0.{i}" for i in range(1, 10)}
    assert all(t.get("model_seconds") is not None for t in lines)

    page = md.with_suffix(".html")
    assert page.is_file() and f"Viewer: `{page.name}`" in text


def test_viewer_never_lets_model_output_out_of_its_data_block(make_settings):
    result = tree_run(make_settings)
    page = render_html(gather_run(result.run_id, data_dir=make_settings().data_dir))
    # The page's only scripts are its own two; the hostile text is inside JSON, escaped.
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert HOSTILE not in page and "onerror=alert" in page.replace("\\u003c", "<")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "http://" not in page and "https://" not in page


def test_a_failed_run_shows_where_it_stopped_and_how_to_resume(make_settings):
    settings = make_settings()
    with pytest.raises(Exception, match="went away"):
        tree_run(make_settings, run_id="failed-run", stop_at=3)
    db = data_dir(settings) / "runs.sqlite"
    record = gather_run("failed-run", data_dir=data_dir(settings))
    assert record.status == "failed" and "went away" in (record.error or "")
    assert record.resume_command and record.resume_command.startswith(
        "rlm-research resume failed-run"
    )
    assert any("root" in line and "generate_code" in line for line in record.stopped_at)
    # The sub-calls that finished before it failed are all there, with their answers.
    answers = {lv.path: lv.answer for lv in record.levels()}
    assert answers["0.1.1"] == "done" and answers["0.9"] == "item 7 ok"
    assert len(record.trajectory()) >= 2 + 1 + 8

    page = write_viewer("failed-run", db_path=db)
    assert page == data_dir(settings) / "reports" / "failed-run.html"
    md, _ = write_report(
        load_result("failed-run", db_path=db), data_dir=data_dir(settings), question=QUESTION,
        status="failed", error="the model server went away",
    )  # fmt: skip
    text = md.read_text()
    assert "## Where it stopped" in text and "rlm-research resume failed-run" in text


def test_an_interrupted_run_is_shown_as_interrupted(make_settings):
    with pytest.raises(KeyboardInterrupt):
        tree_run(make_settings, run_id="cut-run", stop_at=2, stop_with=KeyboardInterrupt())
    record = gather_run("cut-run", data_dir=make_settings().data_dir)
    assert record.status == "interrupted" and record.resume_command
    assert record.answer == "" and record.root is not None and record.root.state == "stopped"
    assert record.levels()[1].answer == "3 done"


@pytest.mark.timeout(120)
def test_a_run_still_going_can_be_viewed_at_any_time(make_settings):
    settings = make_settings()
    done: list = []
    thread = threading.Thread(
        target=lambda: done.append(tree_run(make_settings, run_id="live-run", sub_delay=1.5)),
        daemon=True,
    )
    thread.start()
    record = None
    deadline = time.time() + 60
    while time.time() < deadline:  # until some sub-call is under way
        time.sleep(0.3)
        record = gather_run("live-run", data_dir=settings.data_dir)
        if any(lv.state == "running" for lv in record.levels()[1:]):
            break
    assert record is not None and record.status == "running"
    assert any(lv.state == "running" for lv in record.levels()[1:])
    assert record.resume_command is None and record.stopped_at
    page = write_viewer("live-run", db_path=data_dir(settings) / "runs.sqlite")
    assert "live-run" in page.read_text()
    thread.join(90)
    assert done and done[0].answer == ANSWERS["0"]


def test_a_run_without_an_answer_says_why(make_settings):
    from rlm_research.report.run_record import why_it_ended

    result = tree_run(make_settings, run_id="short-run", max_turns=1)
    assert result.stop_reason == "budget:turns"
    data = Path(make_settings().data_dir)
    record = gather_run("short-run", data_dir=data, status="no_answer")
    assert why_it_ended(record) == (
        "The run ended because the turn budget ran out; one closing call gave no answer."
    )
    md, _ = write_report(result, data_dir=data, question=QUESTION, status="no_answer")
    assert "- Status: **no_answer**" in md.read_text()
    assert '"status":"no_answer"' in md.with_suffix(".html").read_text()


def test_unreadable_checkpoints_still_give_a_report(make_settings, monkeypatch):
    import rlm_research.report.run_record as run_record

    result = tree_run(make_settings, run_id="damaged")

    def broken(*_a, **_k):
        raise RuntimeError("database disk image is malformed")

    monkeypatch.setattr(run_record, "read_traces", broken)
    data = Path(make_settings().data_dir)
    md, jsonl = write_report(result, data_dir=data, question=QUESTION, status="answered")
    assert ANSWERS["0.9"] in md.read_text()  # from the result's call tree
    assert len(jsonl.read_text().splitlines()) == 3 + 1 + 8
    assert "No step times were recorded" in md.with_suffix(".html").read_text()


def test_long_outputs_are_cut_with_a_note_so_a_big_run_stays_small():
    from rlm_research.report.run_record import Level, RunRecord

    def level(path: str, depth: int) -> Level:
        turns = [
            {"turn": t, "code": ["print(context)\n" * 2_000], "observation": "x" * 60_000}
            for t in (1, 2, 3)
        ]
        return Level(path, depth, "q " * 5_000, "a " * 20_000, "answered", "finished",
                     turn_count=3, turns=turns)  # fmt: skip

    root = level("0", 0)
    root.children = [level(f"0.{i}", 1) for i in range(1, 501)]
    record = RunRecord(run_id="big", question="q", answer="a", status="answered",
                       stop_reason="answered", root=root)  # fmt: skip
    page = render_html(record, trajectory_file="big.jsonl")
    assert len(page.encode()) < 5_000_000
    assert "more characters not shown here (the whole text is in big.jsonl)" in page
