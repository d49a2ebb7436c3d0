"""`langgraph dev` serves the project's graph: a run posted through its REST API against a stub
OpenAI-compatible server gets the child's answer, and the nested sub-run shows up in the stream
(`stream_subgraphs=True`).

The server runs offline (telemetry and version checks off, no browser) in a scratch working
directory: `langgraph dev` keeps its in-memory runtime's pickles in `./.langgraph_api`, and a
shared one would leak threads and queued runs between runs of this test (and into the repo). The
config it loads is the project's `langgraph.json` with its relative paths made absolute.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stub_openai import RuleResponder, StubOpenAI

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 120.0
RUN_TIMEOUT = 120.0

CHILD_PROMPT = "Name the secret fruit."
CHILD_ANSWER = "PINEAPPLE-42"
ROOT_CODE = f"Let me ask a sub-model.\n```python\nr = sub_lm({CHILD_PROMPT!r})\nFINAL(r)\n```"


def _langgraph_exe() -> str | None:
    """The CLI of this interpreter's environment (even when the venv is not activated)."""
    beside = Path(sys.executable).parent / "langgraph"
    return str(beside) if beside.is_file() else shutil.which("langgraph")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dev_config(workdir: Path) -> Path:
    """The project's langgraph.json, with paths resolved against the project root."""
    config = json.loads((ROOT / "langgraph.json").read_text())

    def absolute(path: str) -> str:
        return str((ROOT / path).resolve()) if path.startswith(".") else path

    config["dependencies"] = [absolute(dep) for dep in config.get("dependencies", [])]
    graphs = {}
    for graph_id, spec in config["graphs"].items():
        file, sep, variable = spec.partition(":")
        graphs[graph_id] = absolute(file) + sep + variable
    config["graphs"] = graphs
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _no_proxy() -> str:
    current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    return ",".join(filter(None, [current, "127.0.0.1", "localhost"]))


def _tail(log: Path, n: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def langgraph_dev(workdir: Path) -> Iterator[str]:
    """Start `langgraph dev` on a free port; yield its URL; always kill its process group."""
    exe = _langgraph_exe()
    assert exe is not None
    port = _free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "PYTHONUNBUFFERED": "1",
        # The stub lives on 127.0.0.1: never send the graph's model calls through a proxy.
        "NO_PROXY": _no_proxy(),
        "no_proxy": _no_proxy(),
    }
    env.pop("LANGSMITH_API_KEY", None)
    env.pop("LANGCHAIN_API_KEY", None)
    cmd = [exe, "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]
    # No reloader: other files of the project may change while the test runs.
    cmd += ["--no-reload", "--config", str(_dev_config(workdir))]
    log = workdir / "langgraph_dev.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ok", timeout=2.0, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not ready after {READY_TIMEOUT:.0f} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield url
    except BaseException:
        print(f"--- langgraph dev log (tail) ---\n{_tail(log)}")
        raise
    finally:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children of the leader may outlive it: make sure nothing of the group is left behind.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _sse(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs of a server-sent-event stream."""
    event, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())
    if data:
        yield event, json.loads("\n".join(data))


@pytest.mark.timeout(300)
def test_langgraph_dev_serves_a_run_with_a_nested_sub_run(tmp_path: Path) -> None:
    if _langgraph_exe() is None:
        pytest.skip("the `langgraph` CLI (langgraph-cli[inmem]) is not installed")

    responder = RuleResponder(
        [(r"^\s*Question:", ROOT_CODE), (rf"^\s*{CHILD_PROMPT}", CHILD_ANSWER)],
        default="```python\nFINAL('unexpected model call')\n```",
    )
    workdir = tmp_path / "server"
    workdir.mkdir()
    data_dir = tmp_path / "data"

    with (
        StubOpenAI(responder) as stub,
        langgraph_dev(workdir) as url,
        httpx.Client(base_url=url, timeout=30.0, trust_env=False) as client,
    ):
        assistants = client.post("/assistants/search", json={"graph_id": "rlm"}).json()
        assert any(a["graph_id"] == "rlm" for a in assistants), assistants
        # Studio's input form: the graph's input and output JSON schemas load (pydantic needs
        # typing_extensions.TypedDict for them on Python < 3.12).
        assistant_id = next(a["assistant_id"] for a in assistants if a["graph_id"] == "rlm")
        schemas = client.get(f"/assistants/{assistant_id}/schemas").json()
        assert schemas["input_schema"] and schemas["output_schema"], schemas
        assert {"question", "context"} <= set(schemas["input_schema"]["properties"]), schemas
        assert "answer" in schemas["output_schema"]["properties"], schemas

        thread_id = client.post("/threads", json={}).json()["thread_id"]
        payload = {
            "assistant_id": "rlm",
            "input": {"question": "What is the secret fruit?", "context": "no clue here"},
            "context": {
                "model": "openai:stub",
                "base_url": stub.base_url,
                "data_dir": str(data_dir),
                "cell_timeout": 60.0,
            },
            "stream_mode": ["updates", "custom", "values"],
            "stream_subgraphs": True,
        }
        with client.stream(
            "POST",
            f"/threads/{thread_id}/runs/stream",
            json=payload,
            timeout=httpx.Timeout(30.0, read=RUN_TIMEOUT),
        ) as response:
            assert response.status_code == 200, response.read()
            events: list[tuple[str, Any]] = list(_sse(response))

        state = client.get(f"/threads/{thread_id}/state").json()

    kinds = [event for event, _ in events]
    errors = [data for event, data in events if event == "error"]
    assert not errors, errors

    # The final answer is the child's, in the last `values` event and in the thread's state.
    final = [data for event, data in events if event == "values"][-1]
    assert final.get("answer") == CHILD_ANSWER, final
    assert final.get("stop_reason"), final
    assert state["values"].get("answer") == CHILD_ANSWER

    # The nested sub-run streams under a namespace that goes through `spawn_subgraph`:
    # "updates|spawn_subgraph:<task id>" carrying the child's own nodes.
    nested = [
        (event, data)
        for event, data in events
        if event.startswith("updates|") and "spawn_subgraph" in event.split("|", 1)[1]
    ]
    child_nodes = {node for _, data in nested for node in data}
    assert {"generate_code", "finalize"} <= child_nodes, (kinds, child_nodes)
    # The root's own nodes stream without a namespace.
    root_nodes = {node for event, data in events if event == "updates" for node in data}
    assert {"generate_code", "execute", "spawn_subgraph", "finalize"} <= root_nodes, root_nodes
    # Custom progress events arrive too, from the root and from the child.
    assert "custom" in kinds, kinds
    assert any(k.startswith("custom|spawn_subgraph") for k in kinds), kinds
    # The output describes the whole tree: one child, whose model call counts at the root.
    assert len(final["call_tree"]["children"]) == 1, final["call_tree"]
    assert final["usage"]["sub_calls"] == 1, final["usage"]

    # Both models were called through the stub: the root's question, then the child's prompt.
    prompts = [m["content"] for call in stub.calls for m in call["messages"] if m["role"] == "user"]
    assert any(str(p).lstrip().startswith(CHILD_PROMPT) for p in prompts), prompts
    # The run's settings reached the nodes: the blob store lives under the `data_dir` we passed.
    assert data_dir.is_dir() and any(data_dir.iterdir())
