"""The `rlm-research` CLI against the stub OpenAI server: runs, --json, runs/show, reports,
exit codes, errors before and during a run, Ctrl-C and resume."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from rlm_research.cli.main import app
from rlm_research.cli.progress import LiveProgress
from rlm_research.graph import run_index
from typer.testing import CliRunner

from tests.support.cli_process import cli_env, run_cli, start_cli
from tests.support.scripted_models import py
from tests.support.stub_openai import Fault, RuleResponder, StubOpenAI, read_count_file

ROOT = Path(__file__).resolve().parents[1]
DOC = "Intro.\n" + "filler line\n" * 300 + "The vault code is 7413.\n" + "more filler\n" * 300
FINAL_NOW = "```python\nFINAL(context[:6])\n```"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    f = tmp_path / "doc.txt"
    f.write_text(DOC)
    return f


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "runs.sqlite"


def invoke(*args: str, env: dict[str, str], stdin: str | None = None):
    """In-process (no interpreter start-up): for commands that do not run a model loop."""
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    overrides.update(env)
    result = CliRunner().invoke(app, list(args), env=overrides, input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    result.returncode = result.exit_code  # the same name as subprocess results
    return result


def stub_args(stub: StubOpenAI) -> list[str]:
    return ["--model", "openai:stub", "--base-url", stub.base_url]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a run, its outputs, runs and show ------------------------------------------------------------
def test_run_prints_answer_and_writes_report(env, doc, db):
    replies = RuleResponder(
        [
            (r"^Question:", py("import re\nm = re.search(r'vault code is (\\d+)', context)")),
            (r"Output:", py("print('found', m.group(1))\nFINAL(m.group(1))")),
        ]
    )
    with StubOpenAI(replies) as stub:
        p = run_cli("run", "What is the vault code?", "-s", str(doc), *stub_args(stub),
                    "--db", str(db), "--run-id", "vault1", env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout == "7413\n"
    assert "depth 0 · turn 1" in p.stderr  # plain progress lines when stderr is not a terminal
    report, trajectory = db.parent / "reports" / "vault1.md", db.parent / "reports" / "vault1.jsonl"
    assert f"Report:     {report}" in p.stderr and f"Trajectory: {trajectory}" in p.stderr
    text = report.read_text()
    for part in ("What is the vault code?", "## Answer\n\n7413", "**answered**", str(doc),
                 f"| {len(DOC):,} |", "`openai:stub` | 2 |", "## Call tree", "re.search",
                 "found 7413", "What the model saw next:", "REPL sandbox:"):  # fmt: skip
        assert part in text, part
    lines = [json.loads(line) for line in trajectory.read_text().splitlines()]
    assert [(r["node"], r["depth"], r["turn"]) for r in lines] == [("0", 0, 1), ("0", 0, 2)]
    row = run_index.get_run(db, "vault1")
    assert row["status"] == "answered" and row["answer"] == "7413"
    assert row["report"] == str(report)
    assert row["sources"] == [{"name": str(doc), "chars": len(DOC)}]
    assert row["settings"]["model"] == "openai:stub"


def test_json_output_then_runs_and_show(env, doc, db):
    with StubOpenAI(FINAL_NOW) as stub:
        p = run_cli(
            "run", "q1", "-s", str(doc), *stub_args(stub), "--db", str(db), "--json", env=env
        )
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        p2 = run_cli("run", "q2", "-s", str(doc), *stub_args(stub), "--db", str(db), "-q", env=env)
        assert p2.returncode == 0 and p2.stdout == "Intro.\n" and p2.stderr.count("\n") <= 4
    assert out["status"] == "answered" and out["answer"] == "Intro."
    assert out["stop_reason"] == "answered"
    assert out["usage"]["models"]["openai:stub"]["calls"] == 1
    assert Path(out["report"]).is_file() and out["report"].endswith(f"{out['run_id']}.md")

    runs = invoke("runs", "--db", str(db), "--json", env=env)
    listed = json.loads(runs.stdout)
    assert runs.returncode == 0 and [r["question"] for r in listed] == ["q2", "q1"]
    assert {r["status"] for r in listed} == {"answered"}
    table = invoke("runs", "--db", str(db), env=env)
    assert out["run_id"] in table.stdout and "answered" in table.stdout

    shown = json.loads(invoke("show", out["run_id"], "--db", str(db), "--json", env=env).stdout)
    assert shown["answer"] == "Intro." and shown["report"] == out["report"]
    text = invoke("show", out["run_id"], "--db", str(db), env=env)
    assert text.returncode == 0 and "q1" in text.stdout and "Intro." in text.stdout
    assert out["report"] in text.stdout
    missing = invoke("show", "nope", "--db", str(db), env=env)
    assert missing.returncode == 1 and "no run 'nope'" in missing.stderr


def test_sub_calls_appear_in_the_call_tree(env, doc, db):
    replies = RuleResponder(
        [
            (r"^Question:", py("rs = sub_lm_batched(['say A', 'say B'])\nFINAL('+'.join(rs))")),
            (r"^say (\w)", "got {last_user}"),
        ]
    )
    with StubOpenAI(replies) as stub:
        p = run_cli("run", "q", "-s", str(doc), "-s", "-", *stub_args(stub), "--db", str(db),
                    "--json", env=env, stdin="piped notes")  # fmt: skip
    out = json.loads(p.stdout)
    assert p.returncode == 0 and out["answer"] == "got say A+got say B"
    assert out["usage"]["sub_calls"] == 2
    report = Path(out["report"]).read_text()
    assert "| &nbsp;&nbsp;0.1 | 1 | say A |" in report and "0.2" in report
    assert "| stdin | 11 |" in report  # two sources: the file and stdin


# -- refusing to start ---------------------------------------------------------------------------
def test_bad_input_fails_before_anything_is_written(env, doc, db, tmp_path: Path):
    def check(args, code, *needles, stdin=None):
        p = invoke("run", "q", *args, "--db", str(db), env=env, stdin=stdin)
        assert p.returncode == code, (args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])
        assert not db.exists(), "a refused run must leave nothing behind"

    with StubOpenAI(FINAL_NOW) as stub:
        ok = stub_args(stub)
        check(["-s", str(tmp_path / "missing.txt"), *ok], 1, "missing.txt", "no such file")
        binary = tmp_path / "x.bin"
        binary.write_bytes(bytes(range(256)) * 8)
        check(["-s", str(binary), *ok], 1, "x.bin", "binary")
        bad_pdf = tmp_path / "bad.pdf"
        bad_pdf.write_bytes(b"%PDF-1.4 nothing else")
        check(["-s", str(bad_pdf), *ok], 1, "bad.pdf", "PDF")
        check(["-s", f"http://127.0.0.1:{free_port()}/doc.html", *ok], 1, "cannot fetch")
        big = tmp_path / "cfg.yaml"
        big.write_text("max_source_bytes: 100\n")
        check(["-s", str(doc), *ok, "--config", str(big)], 1, "doc.txt", "too big")
        bad_cfg = tmp_path / "bad.yaml"
        bad_cfg.write_text("max_turnz: 3\n")
        check(["-s", str(doc), *ok, "--config", str(bad_cfg)], 2, "bad.yaml", "max_turnz")
        bad_cfg.write_text("max_turns: [\n")
        check(["-s", str(doc), *ok, "--config", str(bad_cfg)], 2, "bad.yaml", "YAML")
        check(["-s", str(doc), "--model", "gpt4"], 2, "--model", "unknown model spec")
        check(["-s", str(doc), "--max-depth", "-1", *ok], 2, "--max-depth")
        check(["-s", str(doc), *ok, "--run-id", "bad id!"], 2, "--run-id")
        check(["-s", "-", *ok], 1, "stdin", "empty", stdin="")
        down = f"http://127.0.0.1:{free_port()}/v1"
        check(["-s", str(doc), "--model", "openai:stub", "--base-url", down], 1, "cannot reach")
    no_key = {k: v for k, v in env.items() if k != "RLM_API_KEY"}
    p = invoke("run", "q", "-s", str(doc), "--model", "openai:gpt-4o-mini", "--db", str(db),
               env=no_key)  # fmt: skip
    assert p.returncode == 1 and "no API key" in p.stderr and not db.exists()
    p = invoke("run", env=env)  # no question: a usage error from typer
    assert p.returncode == 2


def test_run_id_that_exists_is_refused(env, doc, db):
    with StubOpenAI(FINAL_NOW) as stub:
        args = ["q", "-s", str(doc), *stub_args(stub), "--db", str(db), "--run-id", "same"]
        assert run_cli("run", *args, env=env).returncode == 0
        again = run_cli("run", *args, env=env)
        calls = stub.call_count
        # Resuming a finished run runs nothing: it shows the answer and rewrites the report.
        done = invoke("resume", "same", "--db", str(db), "-q", env=env)
        assert done.returncode == 0 and done.stdout == "Intro.\n"
        assert stub.call_count == calls
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "rlm-research resume same" in again.stderr


def test_json_error_object_when_refused(env, db, tmp_path: Path):
    p = invoke("run", "q", "-s", str(tmp_path / "nope"), "--db", str(db), "--json", env=env)
    assert p.returncode == 1
    assert json.loads(p.stdout) == {
        "run_id": None,
        "status": "error",
        "error": f"{tmp_path / 'nope'}: no such file or folder",
    }


# -- errors during a run, Ctrl-C, resume -----------------------------------------------------------
def test_model_error_mid_run_is_one_line_and_resumable(env, doc, db):
    broken = RuleResponder([(r"Output:", Fault.status(400, message="context too long"))],
                           default=py("x = 1\nprint('step one done')"))  # fmt: skip
    with StubOpenAI(broken) as stub:
        p = run_cli("run", "q", "-s", str(doc), *stub_args(stub), "--db", str(db),
                    "--run-id", "m1", env=env)  # fmt: skip
    assert p.returncode == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "run m1 failed" in errors[0] and "context too long" in errors[0]
    assert f"Resume with: rlm-research resume m1 --db {db}" in p.stderr
    assert "Traceback" not in p.stderr
    row = run_index.get_run(db, "m1")
    assert row["status"] == "failed" and "context too long" in row["error"]

    fixed = RuleResponder([(r"Output:", py("FINAL(str(x + 1))"))], default="unexpected")
    with StubOpenAI(fixed) as stub:
        r = run_cli("resume", "m1", "--db", str(db), "--base-url", stub.base_url, "--json", env=env)
        calls = stub.calls
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["answer"] == "2" and out["status"] == "answered"
    assert len(calls) == 1  # the first turn was not asked again
    assert run_index.get_run(db, "m1")["status"] == "answered"


def test_resume_unknown_run(env, db):
    p = invoke("resume", "ghost", "--db", str(db), env=env)
    assert p.returncode == 1 and "no run 'ghost'" in p.stderr


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_ctrl_c_stops_cleanly_and_resume_finishes(env, doc, db, tmp_path: Path):
    count_file = tmp_path / "calls.jsonl"
    replies = RuleResponder(
        [
            (r"^Question:", py("rs = sub_lm_batched(['say A', 'say B'])\nprint(rs)")),
            (r"Output:", py("FINAL('+'.join(rs))")),
            (r"^say (\w)", "got {last_user}"),
        ]
    )
    with StubOpenAI(replies, delay=1.0, count_file=count_file) as stub:
        args = ["run", "what is it", "-s", str(doc)]
        args += [*stub_args(stub), "--db", str(db), "--run-id", "c1"]
        proc = start_cli(*args, env=env)
        try:
            # Interrupt while the sub-calls are in flight, after the root's first call finished.
            wait_for(lambda: len(read_count_file(count_file)) >= 1)
            wait_for(lambda: stub.call_count >= 3)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert f"Interrupted. Resume with: rlm-research resume c1 --db {db}" in err
        assert "Traceback" not in err
        assert run_index.get_run(db, "c1")["status"] == "interrupted"
        runs = json.loads(invoke("runs", "--db", str(db), "--json", env=env).stdout)
        assert [(r["run_id"], r["status"]) for r in runs] == [("c1", "interrupted")]
        # Its viewer, written from the checkpoints, says where it stopped and how to resume.
        assert f"Where it stopped: rlm-research show c1 --db {db} --html" in err
        assert invoke("show", "c1", "--db", str(db), "--html", env=env).returncode == 0
        page = (db.parent / "reports" / "c1.html").read_text()
        assert '"status":"interrupted"' in page and f"rlm-research resume c1 --db {db}" in page

        r = run_cli("resume", "c1", "--db", str(db), "--json", env=env)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["answer"] == "got say A+got say B" and out["status"] == "answered"
        firsts = [c for c in stub.calls if len(c["messages"]) == 2 and "Question:" in
                  c["messages"][1]["content"]]  # fmt: skip
        assert len(firsts) == 1, "the root's finished first turn was asked again on resume"
    assert run_index.get_run(db, "c1")["status"] == "answered"
    assert Path(out["report"]).is_file()


def test_run_index_is_shared_safely_by_threads_and_processes(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    from rlm_research.graph.checkpoints import open_saver

    db = tmp_path / "runs.sqlite"
    saver = open_saver(db)  # the checkpointer holds its own connection meanwhile

    def one(i: int) -> str:
        run_index.record_start(db, f"t{i}", question=f"q{i}", context={"a": "xy"})
        result = type("R", (), {"answer": f"a{i}", "stop_reason": "answered", "usage": {}})
        return run_index.record_end(db, f"t{i}", result=result)

    script = (
        "import sys; from rlm_research.graph import run_index as r; "
        "r.record_start(sys.argv[1], sys.argv[2], question='p'); "
        "r.record_end(sys.argv[1], sys.argv[2], error=RuntimeError('boom'))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(db), f"p{i}"], cwd=ROOT)
        for i in range(3)
    ]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(16)))
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    saver.conn.close()
    assert statuses == ["answered"] * 16
    runs = {r["run_id"]: r for r in run_index.list_runs(db)}
    assert len(runs) == 19
    assert runs["t3"]["sources"] == [{"name": "a", "chars": 2}] and runs["t3"]["answer"] == "a3"
    assert runs["p0"]["status"] == "failed" and runs["p0"]["error"] == "RuntimeError: boom"


def test_a_run_left_running_by_a_dead_process_reads_as_interrupted(tmp_path: Path):
    db = tmp_path / "runs.sqlite"
    dead = subprocess.run(
        [sys.executable, "-c", "from rlm_research.graph import run_index as r; import sys; "
         "r.record_start(sys.argv[1], 'gone', question='q')", str(db)],
        cwd=ROOT,
    )  # fmt: skip
    assert dead.returncode == 0
    row = run_index.get_run(db, "gone")
    assert row["status"] == "interrupted" and "gone" in row["error"]


# -- help and the live view ----------------------------------------------------------------------
def test_every_command_has_help():
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    for command, phrase in [
        ("run", "Answer QUESTION"),
        ("resume", "last checkpoint"),
        ("runs", "List runs"),
        ("show", "Show one run"),
    ]:
        assert command in top.output
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and phrase in result.output, command
        assert "--db" in result.output and "--json" in result.output


def test_live_view_shows_depth_tree_and_sub_calls():
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    view = LiveProgress("r1", "openai:stub", console=console)
    call = {"models": {"stub": {"calls": 1, "input_tokens": 100, "output_tokens": 10}}}
    events = [
        *({"kind": "model_call", "depth": 0, "usage": call} for _ in range(2)),
        {"kind": "turn", "depth": 0, "turn": 2, "level": "root"},
        {"kind": "cell", "depth": 0, "cell": 2, "level": "root"},
        {"kind": "sub_calls", "depth": 0, "count": 3, "level": "root"},
        *({"kind": "child_start", "depth": 1, "id": f"2.1.{i}"} for i in range(3)),
        {"kind": "turn", "depth": 1, "turn": 1, "level": "c1"},
        {"kind": "turn", "depth": 1, "turn": 1, "level": "c2"},
        {"kind": "model_call", "depth": 1, "usage": call},
        {"kind": "direct", "depth": 2, "level": "g1"},
        {"kind": "model_call", "depth": 2, "usage": call},
        {"kind": "finished", "depth": 2, "stop_reason": "answered", "level": "g1"},
        {"kind": "child_done", "depth": 1, "id": "2.1.0"},
        {"kind": "finished", "depth": 1, "stop_reason": "answered", "level": "c1"},
    ]
    for event in events:
        view.handle(event)
    console.print(view.render())
    text = console.file.getvalue()
    assert "turn 2 · waiting on 3 sub-call(s)" in text
    assert "depth 0 turn 2 · waiting on 3 sub-call(s)" in text
    assert "depth 1 └ 1 running · 1 done · up to turn 1" in text
    assert "depth 2   └ 0 running · 1 done" in text
    assert "sub-calls in flight 2" in text and "model calls 4" in text
    assert "400 in / 40 out" in text
