"""One run lifecycle below the front ends: the same scenario (the same stub model, the same
document, the same question) run through the CLI, the Python API and the MCP server gives the
same status, answer, stop reason, usage and report. And `run` with no source is refused."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from rlm_research.cli.main import app
from rlm_research.graph import run_index
from rlm_research.graph.api import run
from rlm_research.graph.settings import Settings
from typer.testing import CliRunner

from tests.support.cli_process import cli_env
from tests.support.scripted_models import py
from tests.support.stub_openai import RuleResponder, StubOpenAI
from tests.test_mcp_server import over_stdio, stdio_params

DOC = "Intro.\n" + "filler line\n" * 40 + "The vault code is 7413.\n"
QUESTION = "What is the vault code?"
LOOP = py("print(len(context))")
ASK = py("line = grep('vault')[0]\nv = sub_lm('Code in: ' + line)\nprint(v)")
SCENARIOS = {
    # A sub-call, then FINAL: answered (exit 0, no tool error).
    "answered": RuleResponder(
        [
            (
                r"^Question:",
                py("line = grep('vault')[0]\nv = sub_lm('Code in: ' + line)\nprint(v)"),
            ),
            (r"^Code in:", "7413"),
            (r"^Output:\n7413", py("FINAL(v)")),
        ],
        default="unexpected",
    ),
    # The same cell again and again: stuck, no answer (exit 1, a tool error).
    "stuck": RuleResponder([(r"^Stop now", "7413")], default=LOOP),
}


def normalised_report(path: str | Path, run_id: str) -> str:
    """The report without what differs by nature: run id, file paths, times, memory, sources'
    display names."""
    text = Path(path).read_text().replace(run_id, "RUN")
    varying = r"^- (Wall time|Peak memory[^:\n]*|Trajectory|Viewer|REPL sandbox):.*\n"
    text = re.sub(varying, "", text, flags=re.M)
    text = re.sub(r"\| \d+\.\d s \|", "| S |", text)
    return re.sub(r"## Sources\n.*?\n## ", "## ", text, flags=re.S)


def via_cli(tmp_path: Path, stub: StubOpenAI, doc: Path) -> dict[str, Any]:
    db = tmp_path / "cli" / "runs.sqlite"
    args = ["run", QUESTION, "-s", str(doc), "--model", "openai:stub", "--base-url", stub.base_url]
    args += ["--db", str(db), "--run-id", "cli1", "--json", "--quiet"]
    out = CliRunner().invoke(app, args, env=cli_env(tmp_path, RLM_CELL_TIMEOUT="20"))
    got = json.loads(out.stdout)
    got["exit"] = out.exit_code
    return got


def via_python(tmp_path: Path, stub: StubOpenAI) -> dict[str, Any]:
    os.environ.setdefault("RLM_API_KEY", "x")
    settings = Settings(model="openai:stub", base_url=stub.base_url, cell_timeout=20.0)
    result = run(QUESTION, DOC, settings=settings, run_id="py1", db_path=tmp_path / "py" / "r.db")
    return {
        "run_id": result.run_id,
        "status": result.status,
        "answer": result.answer,
        "stop_reason": result.stop_reason,
        "usage": result.usage,
        "report": result.report,
        "error": result.error,
    }


def via_mcp(tmp_path: Path, stub: StubOpenAI, doc: Path) -> dict[str, Any]:
    got: dict[str, Any] = {}

    async def body(s) -> None:
        done = await s.call_tool("deep_research", {"question": QUESTION, "sources": [str(doc)]})
        got.update(done.structured_content, is_error=done.is_error)
        got["row"] = run_index.get_run(tmp_path / "mcp" / "data" / "runs.sqlite", got["run_id"])

    over_stdio(stdio_params(tmp_path / "mcp", stub), body)
    return got


@pytest.mark.timeout(240)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_same_run_through_cli_python_and_mcp(scenario: str, tmp_path: Path) -> None:
    (tmp_path / "mcp").mkdir()
    doc = tmp_path / "mcp" / "vault.txt"  # under the MCP server's folder, its default source root
    doc.write_text(DOC)
    with StubOpenAI(SCENARIOS[scenario]) as stub:
        cli = via_cli(tmp_path, stub, doc)
        python = via_python(tmp_path, stub)
        mcp = via_mcp(tmp_path, stub, doc)

    answered = scenario == "answered"
    expected = ("answered", "7413", "answered") if answered else ("no_answer", "", "stuck")
    for got in (cli, python, mcp):
        assert (got["status"], got["answer"], got["stop_reason"]) == expected, got
    assert cli["exit"] == (0 if answered else 1)
    assert mcp["is_error"] is (not answered)
    assert python["error"] == cli["error"] == mcp["row"]["error"]
    # The same usage, model by model (the MCP tool gives its summary; its row has the whole).
    assert cli["usage"] == python["usage"] == mcp["row"]["usage"]
    assert mcp["usage"]["model_calls"] == sum(m["calls"] for m in cli["usage"]["models"].values())
    # The same report, but for run ids, paths and times.
    reports = [
        normalised_report(cli["report"], "cli1"),
        normalised_report(python["report"], "py1"),
        normalised_report(mcp["report"], mcp["run_id"]),
    ]
    assert reports[0] == reports[1] == reports[2]
    assert f"**{expected[0]}**" in reports[0]


def test_run_without_a_source_is_refused_unless_said_so(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    env = cli_env(tmp_path)
    refused = CliRunner().invoke(app, ["run", "How many?", "--db", str(db)], env=env)
    assert refused.exit_code == 2
    [line] = refused.stderr.strip().splitlines()
    assert "no source" in line and "--no-source" in line
    assert not db.exists()  # nothing was started
    with StubOpenAI(RuleResponder([], default=py("FINAL('no document needed')"))) as stub:
        args = ["run", "Say hi", "--no-source", "--model", "openai:stub"]
        args += ["--base-url", stub.base_url, "--db", str(db), "--json"]
        ok = CliRunner().invoke(app, args, env=env)
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["answer"] == "no document needed"
