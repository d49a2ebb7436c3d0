"""The `rlm-research-mcp` server as a subprocess, driven by the MCP SDK's own client over stdio
(and once over streamable HTTP), against the stub OpenAI server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from rlm_research.graph import run_index
from rlm_research.mcp_server.server import (
    RESUME_KEYS,
    Research,
    ToolFailure,
    describe_event,
    split_options,
)
from rlm_research.mcp_server.server import main as server_main

from tests.support.stub_openai import Fault, RuleResponder, StubOpenAI

ROOT = Path(__file__).resolve().parents[1]
DOC = "Intro.\n" + "filler line\n" * 50 + "The vault code is 7413.\n"
SUB_CALL = "```python\nr = sub_lm('What is the vault code? ' + context[-30:])\nFINAL(r)\n```"
TOOLS = {"deep_research", "resume_research", "list_runs", "get_report"}


def server_env(tmp_path: Path, stub: StubOpenAI | None) -> dict[str, str]:
    """Only what the server needs: stdio_client adds PATH, HOME and the like."""
    env = {
        "RLM_API_KEY": "x",
        "RLM_DATA_DIR": str(tmp_path / "data"),
        "RLM_CELL_TIMEOUT": "20",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),  # no user config file
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    if stub is not None:
        env.update(RLM_MODEL="openai:stub", RLM_BASE_URL=stub.base_url)
    return env


def stdio_params(tmp_path: Path, stub: StubOpenAI | None, *args: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "rlm_research.mcp_server.server", *args],
        env=server_env(tmp_path, stub),
        cwd=str(tmp_path),  # no ./rlm-research.yaml here
    )


def over_stdio(params: StdioServerParameters, body: Callable[[ClientSession], Awaitable[None]]):
    async def main() -> None:
        with anyio.fail_after(30):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                await body(s)

    anyio.run(main)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def progress_recorder() -> tuple[list[tuple[float, float | None, str | None]], Any]:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    f = tmp_path / "vault.txt"
    f.write_text(DOC)
    return f


# -- the whole tour over stdio ---------------------------------------------------------------------
def test_stdio_tools_progress_runs_report_and_errors(tmp_path: Path, doc: Path) -> None:
    replies = RuleResponder(
        [(r"^Question: explode", Fault.status(400, message="boom")), (r"^Question:", SUB_CALL)],
        default="The vault code is 7413.",
    )
    db = tmp_path / "data" / "runs.sqlite"

    async def body(s: ClientSession) -> None:
        tools = await s.list_tools()
        assert {t.name for t in tools.tools} == TOOLS
        schema = next(t for t in tools.tools if t.name == "deep_research").input_schema
        assert set(schema["properties"]) == {"question", "sources", "options"}
        assert schema["required"] == ["question"]

        seen, on_progress = progress_recorder()
        result = await s.call_tool(
            "deep_research",
            {"question": "What is the vault code?", "sources": [str(doc)]},
            progress_callback=on_progress,
        )
        assert not result.is_error, text_of(result)
        out = result.structured_content
        assert out["answer"] == "The vault code is 7413."
        assert out["status"] == "answered" and out["stop_reason"]
        run_id = out["run_id"]
        usage = out["usage"]
        assert usage["sub_calls"] == 1
        assert usage["models"]["openai:stub"]["calls"] == 2  # the root turn and the sub-call
        assert usage["models"]["openai:stub"]["input_tokens"] > 0
        text = text_of(result)
        assert text.startswith("The vault code is 7413.")
        assert f"run_id: {run_id}" in text and "1 sub-call(s)" in text
        # Progress: at least one notification, numbered upwards, with readable messages.
        assert seen, "no progress notifications"
        values = [p for p, _, _ in seen]
        assert values == sorted(values) and len(set(values)) == len(values)
        messages = [m for _, _, m in seen]
        assert "root · turn 1: asking the model" in messages
        assert any("sub-call" in m for m in messages)

        runs = await s.call_tool("list_runs", {})
        assert not runs.is_error
        [row] = runs.structured_content["runs"]
        assert row["run_id"] == run_id and row["status"] == "answered"
        assert row["question"] == "What is the vault code?"
        assert run_id in text_of(runs)

        report = await s.call_tool("get_report", {"run_id": run_id})
        assert not report.is_error
        md = text_of(report)
        assert md.startswith(f"# rlm-research run `{run_id}`")
        assert "## Answer\n\nThe vault code is 7413." in md and str(doc) in md
        # The HTML viewer comes beside it, as an embedded resource.
        [page] = [c for c in report.content if getattr(c, "type", "") == "resource"]
        assert page.resource.mime_type == "text/html"
        assert page.resource.uri.endswith(f"{run_id}.html")
        assert page.resource.text.startswith("<!DOCTYPE html>") and run_id in page.resource.text
        # A missing report is written again on request.
        Path(report.structured_content["path"]).unlink()
        again = await s.call_tool("get_report", {"run_id": run_id})
        assert not again.is_error and "The vault code is 7413." in text_of(again)

        # Bad input: one clear line each, as an error result; the server stays up.
        missing = tmp_path / "nope.txt"
        bad = await s.call_tool(
            "deep_research", {"question": "q?", "sources": [str(doc), str(missing)]}
        )
        assert bad.is_error
        assert text_of(bad) == f"{missing}: no such file or folder"

        bad = await s.call_tool("deep_research", {"question": "q?", "options": {"max_depth": -1}})
        assert bad.is_error and text_of(bad).startswith("option 'max_depth': ")
        assert "\n" not in text_of(bad)
        bad = await s.call_tool("deep_research", {"question": "q?", "options": {"colour": 1}})
        assert bad.is_error and text_of(bad).startswith("option 'colour': unknown option")
        bad = await s.call_tool("deep_research", {"question": "q?", "options": {"web": "maybe"}})
        assert bad.is_error and text_of(bad).startswith("option 'web': ")
        bad = await s.call_tool("deep_research", {"question": "q?", "options": {"api_key": "sk-1"}})
        assert bad.is_error and "API keys are not options" in text_of(bad)

        dead = f"http://127.0.0.1:{free_port()}/v1"
        bad = await s.call_tool("deep_research", {"question": "q?", "options": {"base_url": dead}})
        assert bad.is_error
        assert text_of(bad) == "option 'base_url': set by the server's operator, not by a client"

        bad = await s.call_tool("get_report", {"run_id": "no-such-run"})
        assert bad.is_error and text_of(bad) == f"no run 'no-such-run' in {db}"
        bad = await s.call_tool("resume_research", {"run_id": "../etc"})
        assert bad.is_error and text_of(bad).startswith("bad run id")

        # Nothing was started by the bad calls.
        runs = await s.call_tool("list_runs", {})
        assert [r["run_id"] for r in runs.structured_content["runs"]] == [run_id]

        # A model error mid-run: an error result naming the run, which stays resumable.
        bad = await s.call_tool("deep_research", {"question": "explode", "sources": [str(doc)]})
        assert bad.is_error
        message = text_of(bad)
        assert message.startswith("run ") and " failed: " in message and "boom" in message
        assert "resume_research" in message and "\n" not in message
        failed = (await s.call_tool("list_runs", {"status": "failed"})).structured_content
        assert [r["run_id"] for r in failed["runs"]] == [message.split()[1]]

    with StubOpenAI(replies) as stub:
        over_stdio(stdio_params(tmp_path, stub), body)
    rows = run_index.list_runs(db)  # the server used RLM_DATA_DIR's database
    assert sorted(r["status"] for r in rows) == ["answered", "failed"]


# -- cancel, then resume ---------------------------------------------------------------------------
class SlowUntilReleased:
    """Root turns print a fresh number (slowly) until `release` is set, then FINAL."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.turns = 0

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        if self.release.is_set():
            return "```python\nFINAL('resumed and done')\n```"
        self.turns += 1
        time.sleep(0.3)
        return f"```python\nprint({self.turns})\n```"


def test_cancelled_run_is_interrupted_and_resumes(tmp_path: Path, doc: Path) -> None:
    responder = SlowUntilReleased()
    db = tmp_path / "data" / "runs.sqlite"

    async def body(s: ClientSession) -> None:
        first = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            first.set()

        async with anyio.create_task_group() as tg:

            async def call() -> None:
                await s.call_tool(
                    "deep_research",
                    {"question": "Count", "sources": [str(doc)], "options": {"max_turns": 50}},
                    progress_callback=on_progress,
                )
                raise AssertionError("the call should have been cancelled")

            tg.start_soon(call)
            await first.wait()
            tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled

        # The run stops after its current step and is marked interrupted.
        for _ in range(100):
            runs = (await s.call_tool("list_runs", {})).structured_content["runs"]
            if runs and runs[0]["status"] == "interrupted":
                break
            await anyio.sleep(0.1)
        [row] = runs
        assert row["status"] == "interrupted", row
        run_id = row["run_id"]

        # A report of the unfinished run can be had meanwhile.
        report = await s.call_tool("get_report", {"run_id": run_id})
        assert not report.is_error and "**interrupted**" in text_of(report)

        responder.release.set()
        seen, on_progress2 = progress_recorder()
        done = await s.call_tool(
            "resume_research", {"run_id": run_id}, progress_callback=on_progress2
        )
        assert not done.is_error, text_of(done)
        assert done.structured_content["answer"] == "resumed and done"
        assert done.structured_content["run_id"] == run_id
        assert seen
        runs = (await s.call_tool("list_runs", {})).structured_content["runs"]
        assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "answered")]
        report = await s.call_tool("get_report", {"run_id": run_id})
        assert "resumed and done" in text_of(report) and "**answered**" in text_of(report)

    with StubOpenAI(responder) as stub:
        over_stdio(stdio_params(tmp_path, stub), body)
    [row] = run_index.list_runs(db)
    assert row["status"] == "answered" and row["answer"] == "resumed and done"


# -- streamable HTTP -------------------------------------------------------------------------------
def test_streamable_http_transport(tmp_path: Path, doc: Path) -> None:
    port = free_port()
    replies = RuleResponder([], default="```python\nFINAL(context[:5])\n```")
    with StubOpenAI(replies) as stub:
        env = {**os.environ, **server_env(tmp_path, stub), "RLM_MCP_TOKEN": "t" * 32}
        proc = subprocess.Popen(
            [sys.executable, "-m", "rlm_research.mcp_server.server", "--http", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read()
                    assert time.monotonic() < deadline, "the HTTP server did not start"
                    time.sleep(0.1)

            async def main() -> None:
                url = f"http://127.0.0.1:{port}/mcp"
                with anyio.fail_after(30):
                    auth = {"Authorization": "Bearer " + "t" * 32}
                    async with (
                        create_mcp_http_client(headers=auth) as http,
                        streamable_http_client(url, http_client=http) as (read, write),
                        ClientSession(read, write) as s,
                    ):
                        await s.initialize()
                        assert {t.name for t in (await s.list_tools()).tools} == TOOLS
                        seen, on_progress = progress_recorder()
                        result = await s.call_tool(
                            "deep_research",
                            {"question": "First word?", "sources": [str(doc)]},
                            progress_callback=on_progress,
                        )
                        assert not result.is_error, text_of(result)
                        assert result.structured_content["answer"] == "Intro"
                        assert seen

            anyio.run(main)
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stderr.close()


# -- command line and pure helpers (in-process) ---------------------------------------------------
@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("RLM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("RLM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_help_and_bad_config(clean_env: Path, monkeypatch, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        server_main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--http", "--host", "--port", "--config", "--db"):
        assert flag in out

    with pytest.raises(SystemExit) as exit_:
        server_main(["--config", str(clean_env / "missing.yaml")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("rlm-research-mcp: error: config file ")

    monkeypatch.setenv("RLM_MAX_DEPTH", "deep")
    with pytest.raises(SystemExit) as exit_:
        server_main([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rlm-research-mcp: error: environment variable RLM_MAX_DEPTH")


def test_options_override_config_and_are_checked(clean_env: Path) -> None:
    (clean_env / "my.yaml").write_text("model: openai:from-file\nmax_turns: 7\n")
    research = Research(clean_env / "db" / "runs.sqlite", config_file=clean_env / "my.yaml")
    options = {"max-depth": 2, "web": "true", "sub_model": None}
    settings, loaded = research.run_settings(options)
    assert (settings.model, settings.max_turns, settings.max_depth) == ("openai:from-file", 7, 2)
    assert settings.web is True and settings.url_guard is True
    assert settings.sub_model is None
    assert settings.data_dir == str(clean_env / "db")  # the server's database, not the config's
    assert loaded.max_source_bytes > 0
    assert research.run_settings({"reuse_sub_answers": "false"})[0].reuse_sub_answers is False

    bad = {
        "reuse_sub_answers": ("sometimes", "option 'reuse_sub_answers': "),
        "max_depth": (-1, "option 'max_depth': "),
        "web": ("maybe", "option 'web': "),
        "model": ("nonsense", "option 'model': this server's operator chooses the model"),
        "colour": (1, "option 'colour': unknown option"),
        "data_dir": ("/tmp", "where runs are stored is set when the server starts"),
        "openai_api_key": ("sk-1", "API keys are not options"),
    }
    for key, (value, expected) in bad.items():
        with pytest.raises(ToolFailure) as e:
            research.run_settings({key: value})
        assert str(e.value).startswith(expected) or expected in str(e.value), str(e.value)
        assert "\n" not in str(e.value)
    with pytest.raises(ToolFailure, match="only model, sub_model may change"):
        split_options({"max_depth": 3}, allowed=RESUME_KEYS)
    with pytest.raises(ToolFailure, match="options must be an object"):
        split_options(["model"])  # type: ignore[arg-type]


def test_progress_messages() -> None:
    turn = describe_event({"kind": "turn", "depth": 0, "turn": 3})
    assert turn == "root · turn 3: asking the model"
    assert describe_event({"kind": "sub_calls", "depth": 1, "count": 4}) == (
        "depth 1: waiting on 4 sub-call(s)"
    )
    long = describe_event({"kind": "observation", "depth": 0, "turn": 1, "text": "x " * 500})
    assert len(long) < 260 and long.endswith("…")
    assert describe_event({"kind": "result", "result": None}) is None
