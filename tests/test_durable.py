"""Snapshots and the blob store: what survives a lost worker, and what is written once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from rlm_research.graph import run
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.builder import builder

from tests.support.scripted_models import py, script


def test_a_rebuilt_worker_gets_its_variables_back_and_names_what_it_lost(make_settings):
    root = script(
        py("import re\ncounts = {'a': 3}\ndef helper(x):\n    return x\nprint('ok')"),
        py("import os\nos._exit(9)"),
        py("print(counts, re.sub('a', 'b', 'a'))"),
        py("FINAL(str(counts['a']))"),
    )
    result = run("q", "some text", settings=make_settings(model=root))
    assert result.answer == "3"
    third = result.trajectory[2]["observation"]
    assert "{'a': 3} b" in third
    assert "restarted from its last snapshot without: helper" in third


def test_context_and_unchanged_values_are_written_once(make_settings, tmp_path: Path):
    big = "line of a large document\n" * 400_000  # 10 MB
    cells = [py("chunks = context.split('\\n')[:100000]\nprint(len(chunks))")]
    cells += [py(f"print({i})") for i in range(6)] + [py("FINAL('ok')")]
    settings = make_settings(model=script(*cells), max_turns=20, stuck_after=100)
    result = run("q", big, settings=settings)
    assert result.answer == "ok"
    data = Path(settings.data_dir)
    db_bytes = sum(p.stat().st_size for p in data.glob("runs.sqlite*"))
    blob_bytes = BlobStore(data / "blobs").size_bytes()
    # The 10 MB context is stored once and `chunks` (2.5 MB pickled) once, whatever the turns.
    assert blob_bytes < len(big) + 4_000_000
    assert db_bytes < 2_000_000


def test_resume_through_plain_invoke_with_the_thread_id(make_settings, tmp_path: Path):
    settings = make_settings(model=script(py("FINAL('resumed answer')")))
    conn = sqlite3.connect(str(tmp_path / "db.sqlite"), check_same_thread=False)
    app = builder.compile(checkpointer=SqliteSaver(conn))
    config = {"configurable": {"thread_id": "t1"}}
    app.invoke(
        {"question": "q", "context": "c"}, config, context=settings, interrupt_before=["execute"]
    )
    out = app.invoke(None, config, context=settings, durability="sync")
    assert out["answer"] == "resumed answer"
