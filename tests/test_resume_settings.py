"""`resume(run_id)` continues with the run's stored settings (the same model, the same server);
an override is applied on purpose and recorded in the run index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rlm_research.graph import run_index
from rlm_research.graph.api import resume, run
from rlm_research.graph.run_errors import RunSetupError
from rlm_research.graph.settings import Settings

from tests.support.scripted_models import py, script
from tests.support.stub_openai import PROJECT_ROOT, RuleResponder, StubOpenAI, last_user_text

MODEL = "openai:stub-original"
FINISH = py("FINAL('done:' + str(S1))")


class SlowOnce:
    """Replies by rule; the first "S1 ok" turn hangs (the run is killed during it)."""

    def __init__(self) -> None:
        self.rules = RuleResponder(
            [(r"^Question: main", py("S1 = len(context)\nprint('S1 ok')")), (r"S1 ok", FINISH)],
            default="unexpected",
        )
        self.slowed = threading.Event()

    def __call__(self, messages, body):
        if "S1 ok" in last_user_text(messages) and not self.slowed.is_set():
            self.slowed.set()
            time.sleep(30)
        return self.rules(messages, body)


@pytest.mark.timeout(180)
def test_python_resume_without_settings_uses_the_runs_own_model(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RLM_API_KEY", "test")
    monkeypatch.delenv("RLM_MODEL", raising=False)
    db = tmp_path / "runs.sqlite"
    responder = SlowOnce()
    with StubOpenAI(responder) as stub:
        cmd = [sys.executable, "-m", "tests.support.crash_runner", "run", "--db", str(db)]
        cmd += ["--run-id", "r1", "--base-url", stub.base_url, "--model", MODEL]
        env = {**os.environ, "RLM_API_KEY": "test"}
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True, env=env)
        assert responder.slowed.wait(60), "the run never reached its second turn"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert run_index.get_run(db, "r1")["status"] == "interrupted"
        killed_at = stub.call_count

        result = resume("r1", db_path=db)  # no settings: the run's own
        after = stub.calls[killed_at:]
    assert (result.status, result.answer) == ("answered", "done:3400")
    # The stub server answered the resumed run, as the same model.
    assert after and {c["model"] for c in after} == {"stub-original"}
    row = run_index.get_run(db, "r1")
    assert row["status"] == "answered" and row["model"] == MODEL and not row["overrides"]


def test_an_override_on_resume_is_applied_and_recorded(make_settings, tmp_path: Path):
    stuck = script(py("print('again')"))
    settings = make_settings(model=stuck, max_turns=1, stuck_after=5)
    first = run("q", "text", settings=settings, run_id="o1")
    assert first.status == "no_answer" and first.stop_reason == "budget:turns"
    db = Path(settings.data_dir) / "runs.sqlite"
    # A model object from Python is not stored: resuming without one is refused in one line.
    with pytest.raises(RunSetupError, match="give a model"):
        resume("o1", db_path=db)
    answer = script(py("FINAL('later')"))
    again = resume("o1", db_path=db, overrides={"model": answer, "max_turns": 5})
    row = run_index.get_run(db, "o1")
    [change] = row["overrides"]
    assert change["changed"]["max_turns"] == [1, 5]
    assert row["settings"]["max_turns"] == 5
    # A finished run is not run again: its result stands.
    assert again.stop_reason == "budget:turns"


def test_a_bad_override_is_refused_before_anything_changes(make_settings, tmp_path: Path):
    settings = make_settings(model="openai:stub", base_url="http://127.0.0.1:9/v1")
    db = Path(settings.data_dir) / "runs.sqlite"
    with pytest.raises(RunSetupError, match="no run"):
        resume("nope", db_path=db)
    stuck = script(py("FINAL('x')"))
    run("q", "text", settings=Settings(model=stuck, data_dir=str(tmp_path / "d")), run_id="b1")
    other = tmp_path / "d" / "runs.sqlite"
    with pytest.raises(RunSetupError, match="max.turns"):
        resume("b1", db_path=other, overrides={"model": stuck, "max_turns": "many"})
    assert json.dumps(run_index.get_run(other, "b1")["overrides"]) == "null"


def test_cli_resume_with_a_new_base_url_records_it(tmp_path: Path):
    from rlm_research.cli.main import app
    from typer.testing import CliRunner

    from tests.support.cli_process import cli_env

    doc = tmp_path / "doc.txt"
    doc.write_text("The code is 7413.")
    db = tmp_path / "runs.sqlite"
    env = cli_env(tmp_path)
    with StubOpenAI(RuleResponder([], default=py("FINAL('7413')"))) as stub:
        args = ["run", "code?", "-s", str(doc), "--model", "openai:stub", "--db", str(db)]
        url = stub.base_url
        first = CliRunner().invoke(app, [*args, "--base-url", url, "--run-id", "u1"], env=env)
        assert first.exit_code == 0, first.stderr
        moved = url.replace("127.0.0.1", "localhost")  # the same server, a new name
        again = CliRunner().invoke(
            app, ["resume", "u1", "--db", str(db), "--base-url", moved], env=env
        )
    assert again.exit_code == 0, again.stderr
    row = run_index.get_run(db, "u1")
    assert row["overrides"][0]["changed"] == {"base_url": [url, moved]}
    assert row["settings"]["base_url"] == moved and row["model"] == "openai:stub"
