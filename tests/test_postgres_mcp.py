"""Two MCP HTTP servers on one PostgreSQL database, each with its own data folder, as a team
would scale the server: a run started through one is listed and resumed through the other,
without paying again for the model calls that finished."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from tests.support.scripted_models import py
from tests.support.stub_openai import PROJECT_ROOT, Fault, RuleResponder, StubOpenAI

TOKEN = "team-token-for-tests"
DOC = "The vault code is 7413.\n" + "filler line\n" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FailsOnceAfterChild:
    """Turn 1 asks a child; turn 2 fails with a 500 until `healed` (max_retries=0: the run
    fails on the first server), then answers with what the child said."""

    def __init__(self) -> None:
        self.healed = threading.Event()

    def turn2(self, messages, body):
        if not self.healed.is_set():
            return Fault.status(500, message="the provider is down")
        return py("FINAL(S)")

    def responder(self) -> RuleResponder:
        return RuleResponder(
            [
                (r"^Question:", py("S = sub_lm('code? ' + context.split()[4])\nprint('S ok')")),
                (r"^code\? (?P<c>\S+)", "the code is {c}"),
                (r"S ok", self.turn2),
            ],
            default="unexpected",
        )


def start_server(tmp_path: Path, name: str, url: str, base_url: str) -> tuple[Any, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    env.update(
        RLM_API_KEY="x",
        RLM_MCP_TOKEN=TOKEN,  # issue 17's bearer token; harmless where --http has none yet
        RLM_MODEL="openai:stub",
        RLM_BASE_URL=base_url,
        RLM_MAX_RETRIES="0",
        RLM_DATA_DIR=str(tmp_path / name),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        PYTHONPATH=str(PROJECT_ROOT),
    )
    cmd = [sys.executable, "-m", "rlm_research.mcp_server.server", "--http", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--db", url], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the HTTP server did not start"
            time.sleep(0.1)


async def call(port: int, tool: str, args: dict[str, Any]) -> Any:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with (
        client,
        streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (rd, wr),
        ClientSession(rd, wr) as session,
    ):
        await session.initialize()
        return await session.call_tool(tool, args)


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def test_a_run_started_on_one_server_is_listed_and_resumed_on_another(
    postgres_url: str, tmp_path: Path
) -> None:
    doc = tmp_path / "vault.txt"
    doc.write_text(DOC)
    script = FailsOnceAfterChild()
    with StubOpenAI(script.responder()) as stub:
        a, port_a = start_server(tmp_path, "server-a", postgres_url, stub.base_url)
        b, port_b = start_server(tmp_path, "server-b", postgres_url, stub.base_url)
        try:

            async def scenario() -> None:
                with anyio.fail_after(120):
                    first = await call(port_a, "deep_research", {
                        "question": "What is the vault code?", "sources": [str(doc)],
                    })  # fmt: skip
                    assert first.is_error and "provider is down" in text_of(first)
                    listed = await call(port_b, "list_runs", {})
                    [row] = listed.structured_content["runs"]
                    assert row["status"] == "failed"
                    assert "postgresql://" in listed.structured_content["db"]

                    script.healed.set()
                    done = await call(port_b, "resume_research", {"run_id": row["run_id"]})
                    assert not done.is_error, text_of(done)
                    assert done.structured_content["answer"] == "the code is 7413."
                    again = await call(port_a, "list_runs", {})
                    [row_a] = again.structured_content["runs"]
                    assert (row_a["run_id"], row_a["status"]) == (row["run_id"], "answered")
                    report = await call(port_a, "get_report", {"run_id": row["run_id"]})
                    assert "the code is 7413." in text_of(report)

            anyio.run(scenario)
        finally:
            for proc in (a, b):
                proc.terminate()
                proc.wait(15)
                proc.stderr.close()
        asked = [c["messages"][-1]["content"] for c in stub.calls]

    # Turn 1 and the child were paid once, on server A; turn 2 failed there, then ran on B.
    assert sum(bool(re.match(r"Question:", m)) for m in asked) == 1
    assert sum(m.startswith("code? ") for m in asked) == 1
    assert sum("S ok" in m for m in asked) == 2
    assert (tmp_path / "server-b" / "reports").is_dir()
