"""Model faults, each played by the stub OpenAI-compatible server on 127.0.0.1 through a real run
(langchain-openai's HTTP client, the graph, the SQLite checkpoints): 429 with and without
Retry-After, 500, 503, a hanging response, a reset connection, malformed JSON, empty content, a
reply with no code, a reply whose code never ends, a 200 KB reply.

Transient faults are retried and the run answers; persistent ones end the run with one line
naming the model and the fault, and `resume` finishes it after the server recovers without
asking any finished call again. docs/faults.md sums the cases up.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rlm_research.cli.main import app
from rlm_research.graph import run_index
from rlm_research.graph.api import list_runs, resume, run
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.builder import builder
from rlm_research.graph.checkpoints import open_saver
from rlm_research.graph.settings import Settings
from rlm_research.nodes import prompts
from rlm_research.nodes.model_call import ModelCallError
from typer.testing import CliRunner

from tests.support.cli_process import cli_env, run_cli
from tests.support.scripted_models import py
from tests.support.stub_openai import (
    Fault,
    RuleResponder,
    ScriptedResponder,
    StubOpenAI,
    as_responder,
)

CONTEXT = "hello world, and some more text after it"
ANSWER = CONTEXT[:5]
# Seconds per model request where a test plays a hanging server: short, yet ample for the
# stub's normal replies on a loaded machine.
TIMEOUT = 1.0


FINAL_NOW = py("FINAL(context[:5])")
STEP_ONE = py("x = 41\nprint('step one done')")
FINISH = py("FINAL(str(x + 1))")


class Timed:
    """A responder that notes when each call arrived (time.monotonic())."""

    def __init__(self, inner) -> None:
        self.inner = as_responder(inner)
        self.times: list[float] = []

    def __call__(self, messages, body):
        self.times.append(time.monotonic())
        return self.inner(messages, body)


@pytest.fixture
def settings_for(tmp_path: Path):
    """Settings for a run against `stub`: short timeouts, few retries, its own data folder."""

    def make(stub: StubOpenAI, **overrides) -> Settings:
        values = dict(
            model="openai:stub",
            base_url=stub.base_url,
            data_dir=str(tmp_path / "data"),
            request_timeout=2.0,
            max_retries=2,
            cell_timeout=10.0,
        )
        values.update(overrides)
        return Settings(**values)

    return make


def db_of(settings: Settings) -> Path:
    return Path(settings.data_dir) / "runs.sqlite"


def prompt_chars(call: dict) -> int:
    return sum(len(str(m.get("content") or "")) for m in call["messages"])


def root_state(settings: Settings, run_id: str) -> dict:
    saver = open_saver(db_of(settings))
    try:
        app = builder.compile(checkpointer=saver)
        return app.get_state({"configurable": {"thread_id": run_id}}).values
    finally:
        saver.conn.close()


# -- transient faults: retried, the run answers ----------------------------------------------------
TRANSIENT = {
    "429 with Retry-After": [Fault.status(429, retry_after=0.01)] * 2,
    "429 without Retry-After": [Fault.status(429)],
    "500": [Fault.status(500)],
    "503": [Fault.status(503)],
    "hanging response": [Fault.hang(3.0)],
    "reset connection": [Fault.reset()],
    "malformed JSON": [Fault.malformed()],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(TRANSIENT))
def test_transient_fault_is_retried_and_the_run_answers(name, settings_for):
    faults = TRANSIENT[name]
    with StubOpenAI(ScriptedResponder(faults, default=FINAL_NOW)) as stub:
        settings = settings_for(stub, request_timeout=TIMEOUT)
        result = run("q", CONTEXT, settings=settings, run_id="t1")
        calls = stub.calls
    assert result.answer == ANSWER and result.stop_reason == "answered"
    # The stub saw every retry, each the very same request; only the answered call is counted.
    assert len(calls) == len(faults) + 1
    assert all(c["messages"] == calls[0]["messages"] for c in calls)
    assert result.usage["models"]["openai:stub"]["calls"] == 1
    assert run_index.get_run(db_of(settings), "t1")["status"] == "answered"


def test_retry_after_is_honoured(settings_for):
    timed = Timed(ScriptedResponder([Fault.status(429, retry_after=1.0)], default=FINAL_NOW))
    with StubOpenAI(timed) as stub:
        result = run("q", CONTEXT, settings=settings_for(stub))
    assert result.answer == ANSWER
    assert len(timed.times) == 2
    assert timed.times[1] - timed.times[0] >= 0.95  # the server's delay, not the 0.5 s backoff


def test_a_failing_sub_call_is_named_to_the_parent_and_the_run_goes_on(settings_for):
    """A child whose model fails for good answers its sub_lm with a one-line failure (one
    failed child must not sink a batch); a child with a transient fault is retried."""
    replies = RuleResponder(
        [
            (r"^Question: q", py("rs = sub_lm_batched(['flaky', 'down'])\nprint(rs)")),
            (r"sub_lm failed", FINISH.replace("x + 1", "rs[0]")),
            (r"^flaky", ScriptedResponder([Fault.status(503)], default="FLAKY OK")),
            (r"^down", Fault.status(500)),
        ],
        default="unexpected",
    )
    with StubOpenAI(replies) as stub:
        result = run("q", CONTEXT, settings=settings_for(stub, max_retries=1))
        calls = stub.calls
    assert result.answer == "FLAKY OK"
    observation = result.trajectory[0]["observation"]
    assert "[sub_lm failed: ModelCallError: model openai:stub" in observation
    assert "500" in observation and "(2 attempts)" in observation
    users = [c["messages"][-1]["content"] for c in calls]
    assert users.count("flaky") == 2 and users.count("down") == 2  # one retry each


# -- persistent faults: one clear line, resumable, nothing paid twice ------------------------------
PERSISTENT = {
    "429": (Fault.status(429, retry_after=0.01), "429"),
    "500": (Fault.status(500), "Error code: 500"),
    "503": (Fault.status(503), "Error code: 503"),
    "hanging response": (Fault.hang(3.0), f"no reply within request_timeout={TIMEOUT:g} s"),
    "reset connection": (Fault.reset(), "Connection error"),
    "malformed JSON": (Fault.malformed(), "the server's reply was not valid JSON"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(PERSISTENT))
def test_persistent_fault_fails_clearly_and_resume_finishes(name, settings_for):
    fault, needle = PERSISTENT[name]
    attempts = 2  # max_retries=1
    script = [STEP_ONE] + [fault] * attempts + [FINISH]
    with StubOpenAI(ScriptedResponder(script, default="unexpected")) as stub:
        settings = settings_for(stub, request_timeout=TIMEOUT, max_retries=1)
        with pytest.raises(ModelCallError) as info:
            run("q", CONTEXT, settings=settings, run_id="p1")
        message = str(info.value)
        failed_calls = stub.call_count

        [row] = list_runs(db_of(settings))
        assert row["run_id"] == "p1" and row["status"] == "failed"
        assert row["last_step"]["next"] == ["generate_code"]  # turn 1 and its cell are saved

        result = resume("p1", settings=settings)  # the server has recovered
        calls = stub.calls

    assert "\n" not in message
    assert message.startswith(f"model openai:stub at {settings.base_url}: ")
    assert needle in message and f"({attempts} attempts)" in message
    assert needle in row["error"]
    assert failed_calls == 1 + attempts
    assert result.answer == "42" and result.stop_reason == "answered"
    # One call on resume, for turn 2 (it sees turn 1's output); turn 1 was not asked again.
    assert len(calls) == 1 + attempts + 1
    resumed = calls[-1]["messages"]
    assert len(resumed) == 4 and "step one done" in resumed[-1]["content"]
    assert sum(1 for c in calls if len(c["messages"]) == 2) == 1
    assert result.usage["models"]["openai:stub"]["calls"] == 2  # faulted tries are not counted
    assert run_index.get_run(db_of(settings), "p1")["status"] == "answered"


def test_persistent_fault_in_the_closing_call_is_resumable(settings_for):
    """The forced closing call (max_turns used up) fails for good; resume makes only it."""
    script = [STEP_ONE, Fault.status(500), Fault.status(500), "It is 42."]
    with StubOpenAI(ScriptedResponder(script, default="unexpected")) as stub:
        settings = settings_for(stub, max_turns=1, max_retries=1)
        with pytest.raises(ModelCallError, match="500"):
            run("q", CONTEXT, settings=settings, run_id="c1")
        result = resume("c1", settings=settings)
        assert stub.call_count == 4
    assert result.answer == "It is 42." and result.stop_reason == "budget:turns"


def test_a_first_call_that_never_succeeds_is_resumable(settings_for):
    """Even the very first call failing leaves a checkpoint to resume from."""
    with StubOpenAI(ScriptedResponder([Fault.status(401)], default=FINAL_NOW)) as stub:
        settings = settings_for(stub)
        with pytest.raises(ModelCallError, match="401"):
            run("q", CONTEXT, settings=settings, run_id="f1")
        assert stub.call_count == 1  # a bad key is not retried
        assert run_index.has_checkpoints(db_of(settings), "f1")
        assert resume("f1", settings=settings).answer == ANSWER
        assert stub.call_count == 2


@pytest.mark.timeout(60)
def test_persistent_fault_through_the_cli_is_one_line_and_resumable(tmp_path: Path):
    doc = tmp_path / "doc.txt"
    doc.write_text(CONTEXT)
    db = tmp_path / "data" / "runs.sqlite"
    env = cli_env(tmp_path, RLM_MAX_RETRIES="1", RLM_REQUEST_TIMEOUT=str(TIMEOUT))
    script = [STEP_ONE, Fault.status(503), Fault.status(503), FINISH]
    with StubOpenAI(ScriptedResponder(script, default="unexpected")) as stub:
        url = stub.base_url
        args = ["run", "q", "-s", str(doc), "--model", "openai:stub", "--base-url", url]
        args += ["--db", str(db), "--run-id", "cli1"]
        p = run_cli(*args, env=env)
        assert stub.call_count == 3
        runs = CliRunner().invoke(app, ["runs", "--db", str(db), "--json"], env=env)
        resumed = CliRunner().invoke(app, ["resume", "cli1", "--db", str(db), "--json"], env=env)
        calls = stub.calls
    assert p.returncode == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, p.stderr
    assert errors[0].startswith(
        f"error: run cli1 failed: ModelCallError: model openai:stub at {url}"
    )
    assert "Error code: 503" in errors[0] and "(2 attempts)" in errors[0]
    assert f"Resume with: rlm-research resume cli1 --db {db}" in p.stderr
    assert "Traceback" not in p.stderr
    [row] = json.loads(runs.stdout)
    assert row["status"] == "failed" and "503" in row["error"]

    assert resumed.exit_code == 0, resumed.output
    out = json.loads(resumed.stdout)
    assert out["status"] == "answered" and out["answer"] == "42"
    assert len(calls) == 4 and len(calls[-1]["messages"]) == 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["429", "hanging response", "reset connection", "malformed JSON"])
def test_persistent_faults_in_the_cli_say_how_to_resume(name, tmp_path: Path):
    """The other persistent faults through the CLI (in-process, to stay fast): one error line
    naming the model and the fault, exit 1, and the resume hint; --json gives the same."""
    fault, needle = PERSISTENT[name]
    doc = tmp_path / "doc.txt"
    doc.write_text(CONTEXT)
    db = tmp_path / "data" / "runs.sqlite"
    env = cli_env(tmp_path, RLM_MAX_RETRIES="1", RLM_REQUEST_TIMEOUT=str(TIMEOUT))
    with StubOpenAI(ScriptedResponder([], default=fault)) as stub:
        args = ["run", "q", "-s", str(doc), "--model", "openai:stub", "--base-url", stub.base_url]
        args += ["--db", str(db), "--run-id", "f2", "--json"]
        p = CliRunner().invoke(app, args, env=env)
    assert p.exit_code == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], p.stderr
    assert f"Resume with: rlm-research resume f2 --db {db}" in p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "failed" and needle in out["error"]
    assert out["resume"] == f"rlm-research resume f2 --db {db}"
    assert run_index.has_checkpoints(db, "f2")


# -- replies that are not what we asked for --------------------------------------------------------
@pytest.mark.parametrize("first", [Fault.empty(), "I believe the answer is in the text."])
def test_empty_or_codeless_reply_gets_the_nudge(first, settings_for):
    with StubOpenAI(ScriptedResponder([first], default=FINAL_NOW)) as stub:
        result = run("q", CONTEXT, settings=settings_for(stub))
        calls = stub.calls
    assert result.answer == ANSWER
    assert len(calls) == 2
    assert calls[1]["messages"][-1]["content"] == prompts.NO_CODE
    assert result.trajectory[0]["observation"] == prompts.NO_CODE


def test_a_model_that_only_says_nothing_ends_as_stuck(settings_for):
    with StubOpenAI(ScriptedResponder([], default=Fault.empty())) as stub:
        settings = settings_for(stub)
        result = run("q", CONTEXT, settings=settings, run_id="e1")
        calls = stub.call_count
    assert result.stop_reason == "stuck" and result.answer == ""
    assert calls <= 6  # nudge, hint, two more, the closing call: no endless loop
    row = run_index.get_run(db_of(settings), "e1")
    assert row["status"] == "no_answer" and "without an answer (stuck)" in row["error"]


@pytest.mark.timeout(60)
def test_code_that_never_ends_is_stopped_and_the_run_goes_on(settings_for):
    never_ends = "Let me loop.\n```python\nn = 0\nwhile True:\n    n += 1\n"  # no closing fence
    with StubOpenAI(ScriptedResponder([never_ends], default=FINAL_NOW)) as stub:
        started = time.monotonic()
        result = run("q", CONTEXT, settings=settings_for(stub, cell_timeout=1.0))
        elapsed = time.monotonic() - started
    assert result.answer == ANSWER
    assert "ran longer than the 1 s limit and was stopped" in result.trajectory[0]["observation"]
    assert elapsed < 15


BIG = 200_000
BIG_REPLIES = {
    "prose then code": "Thinking out loud. " * (BIG // 19) + "\n" + py("print('seen it')"),
    "code then prose": py("print('seen it')") + "\n" + "And more musing. " * (BIG // 17),
    "one huge code block": py("blob = '" + "a" * BIG + "'\nprint('seen it', len(blob))"),
}


@pytest.mark.parametrize("shape", list(BIG_REPLIES))
def test_a_200_kb_reply_is_kept_but_not_sent_back_every_turn(shape, settings_for):
    big = BIG_REPLIES[shape]
    assert len(big) >= BIG
    script = [big, py("print('turn two')"), FINAL_NOW]
    with StubOpenAI(ScriptedResponder(script, default="unexpected")) as stub:
        settings = settings_for(stub)
        result = run("q", CONTEXT, settings=settings, run_id="b1")
        calls = stub.calls
    assert result.answer == ANSWER
    assert "seen it" in result.trajectory[0]["observation"]  # the code in it ran
    # Later prompts carry a clipped copy, not 200 KB each turn.
    assert prompt_chars(calls[0]) < 5_000
    assert all(prompt_chars(c) < prompt_chars(calls[0]) + 25_000 for c in calls[1:])
    assert "characters of this reply cut from the history" in calls[1]["messages"][2]["content"]
    # The full reply is still in the blob store, named by the clipped message.
    store = BlobStore(Path(settings.data_dir) / "blobs")
    messages = [store.get_json(ref) for ref in root_state(settings, "b1")["transcript"]]
    [clipped] = [m for m in messages if "full_ref" in m]
    assert store.get_text(clipped["full_ref"]) == big
    assert clipped["content"].startswith(big[:1000]) and clipped["content"].endswith(big[-1000:])


def test_a_reply_within_max_completion_tokens_is_never_clipped(settings_for):
    long_ok = "x" * 30_000 + "\n" + py("print('ok')")  # allowed by max_completion_tokens=8192
    with StubOpenAI(ScriptedResponder([long_ok], default=FINAL_NOW)) as stub:
        run("q", CONTEXT, settings=settings_for(stub, max_completion_tokens=8192))
        calls = stub.calls
    assert calls[1]["messages"][2]["content"] == long_ok
