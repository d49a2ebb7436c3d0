"""A hostile MCP client against `rlm-research-mcp` (docs/security.md), with the SDK's own client
over stdio and streamable HTTP. The server holds an API key; the client tries to send it to a
capture server, read files outside its roots and secret files under them, reach loopback and
metadata addresses, and get in over HTTP without the token. Each try is refused with one line,
nothing secret reaches the client (results, reports, progress), and the server keeps serving.

Everything runs on 127.0.0.1; the guard refuses 169.254.169.254 before connecting anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import ListRootsResult, Root
from rlm_research.mcp_server.server import main as server_main

from tests.support.hostile import API_KEY, SECRET, Capture, make_work
from tests.support.stub_openai import RuleResponder, StubOpenAI

ROOT = Path(__file__).resolve().parents[1]
ECHO = "```python\nFINAL(str(context))\n```"
FETCHES = (
    "```python\nout = []\nfor u in {urls!r}:\n    try:\n        out.append(fetch_url(u))\n"
    "    except Exception as e:\n        out.append('ERR ' + str(e))\nFINAL(' | '.join(out))\n```"
)


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.close()


@pytest.fixture
def public(capture: Capture):
    """A "public" server (the operator lets the guard through to it) that redirects to the
    capture server by the name localhost."""
    p = Capture(redirect_to=f"http://localhost:{capture.port}/secret")
    yield p
    p.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return make_work(tmp_path)


def server_env(tmp_path: Path, stub: StubOpenAI, **extra: str) -> dict[str, str]:
    return {
        "RLM_API_KEY": API_KEY,
        "RLM_MODEL": "openai:stub",
        "RLM_BASE_URL": stub.base_url,
        "RLM_DATA_DIR": str(tmp_path / "work" / "data"),  # under the root: must stay unreadable
        "RLM_CELL_TIMEOUT": "20",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


class Seen:
    """Everything the client was shown: result texts, structured content, progress lines."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.texts.append(message or "")

    def add(self, result: Any) -> str:
        text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        self.texts += [text, json.dumps(result.structured_content or {})]
        return text

    def assert_clean(self) -> None:
        everything = "\n".join(self.texts)
        assert SECRET not in everything
        assert API_KEY not in everything


def refused(text: str, *fragments: str) -> None:
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text


async def call(s: ClientSession, seen: Seen, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
    result = await s.call_tool(tool, args, progress_callback=seen.progress)
    return bool(result.is_error), seen.add(result)


async def research(s: ClientSession, seen: Seen, **args: Any) -> tuple[bool, str]:
    return await call(s, seen, "deep_research", {"question": "q?", **args})


def over_stdio(
    params: StdioServerParameters,
    body: Callable[[ClientSession], Awaitable[None]],
    roots: list[Path] | None = None,
) -> None:
    async def list_roots(ctx: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=r.as_uri()) for r in roots or []])

    async def main() -> None:
        with anyio.fail_after(90):
            async with (
                stdio_client(params) as (read, write),
                ClientSession(
                    read, write, list_roots_callback=list_roots if roots is not None else None
                ) as s,
            ):
                await s.initialize()
                await body(s)

    anyio.run(main)


def stdio_params(tmp_path: Path, stub: StubOpenAI, **extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "rlm_research.mcp_server.server"],
        env=server_env(tmp_path, stub, **extra),
        cwd=str(tmp_path / "work"),
    )


# -- stdio: options, files, URLs, run ids, sizes ---------------------------------------------------
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


def hostile_calls(
    tmp_path: Path, work: Path, capture: Capture, public: Capture
) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, a fragment of the one-line refusal) for each hostile call."""
    q = {"question": "q?"}
    options = [  # keys go only where the operator said
        ({"model": "openai:x", "base_url": f"{capture.url}/v1"}, "operator chooses the model"),
        ({"base_url": f"{capture.url}/v1"}, "set by the server's operator"),
        ({"sub_model": "openai:x"}, "operator chooses the model"),
        ({"web": True, "web_base_url": capture.url}, "set by the server's operator"),
        ({"web_provider": "searxng"}, "set by the server's operator"),
        ({"data_dir": str(tmp_path)}, "set when the server starts"),
        ({"model": str(work / "x.gguf")}, "operator chooses the model"),
        ({"max_depth": 9}, "at most 3 on this server"),
    ]
    files = [  # only under the root, resolved first; no hidden or key files under it
        ("/etc/passwd", "outside the folders"),
        (str(work / "innocent.txt"), "outside the folders"),  # a symlink out of the root
        (str(work / "notes" / ".." / ".." / "outside" / "secret.txt"), "outside the folders"),
        ("../outside/secret.txt", "outside the folders"),
        (str(work / ".env"), "hidden files"),
        (".ssh/id_ed25519", "hidden files"),
        (str(work / "notes" / "env-link.txt"), "hidden files"),  # a link to a secret
        ("keys/server.pem", "looks like a key"),
        ("notes/id_rsa", "looks like a key"),
        ("data/runs.sqlite", "run database"),
        ("data/blobs", "run database"),
        ("-", "stdin"),
    ]
    urls = [  # never loopback, private or metadata addresses; every redirect checked
        (f"{capture.url}/x", "loopback"),
        (f"http://localhost:{capture.port}/x", "loopback"),
        (f"http://[::1]:{capture.port}/x", "loopback"),
        ("http://10.0.0.7/x", "private"),
        (METADATA, "cloud metadata"),
        (f"{public.url}/go", "loopback"),  # the allowed host redirects to localhost
    ]
    run_ids = [
        (tool, {"run_id": bad}, "bad run id")
        for tool in ("get_report", "resume_research")
        for bad in ("../../etc/passwd", "/etc/passwd", "x' OR '1'='1", "a/../b")
    ]
    return [
        *[("deep_research", {**q, "options": o}, f) for o, f in options],
        ("resume_research", {"run_id": "abc", "options": {"base_url": capture.url}}, "operator"),
        *[("deep_research", {**q, "sources": [spec]}, f) for spec, f in files],
        *[("deep_research", {**q, "sources": [url]}, f) for url, f in urls],
        *run_ids,
        ("get_report", {"run_id": "abcdef123456"}, "no run 'abcdef123456'"),
        ("deep_research", {"question": "x" * 60_000}, "the question is too long"),
        ("deep_research", {**q, "sources": ["doc.txt"] * 500}, "too many sources"),
    ]


async def still_serving(s: ClientSession, seen: Seen) -> None:
    """After every refusal: a folder under the root is read without its link out, its key file
    or its hidden files (the answer shows what the model could see), and fetch_url in a
    client's run meets the same guard, as an error the model's code sees."""
    error, text = await research(s, seen, question="What is here?", sources=["notes", "doc.txt"])
    assert not error, text
    assert "meeting is on Tuesday" in text and "vault code is 7413" in text
    run_id = text.split("run_id: ")[1].split()[0]
    error, report = await call(s, seen, "get_report", {"run_id": run_id})
    assert not error and "meeting is on Tuesday" in report

    error, text = await research(s, seen, question="fetch the pages", options={"web": True})
    assert not error, text
    parts = text.split("\n\n---\n")[0].split(" | ")
    assert parts[0].startswith("ERR fetch_url: ") and "loopback" in parts[0]
    assert "cloud metadata" in parts[1]
    assert "loopback" in parts[2]  # the redirect to localhost
    assert parts[3].startswith("public page /page")  # the operator's allowed host works

    runs = (await s.call_tool("list_runs", {})).structured_content["runs"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"answered"}


def test_hostile_client_over_stdio(
    tmp_path: Path, work: Path, capture: Capture, public: Capture
) -> None:
    urls = [f"{capture.url}/x", METADATA, f"{public.url}/go", f"{public.url}/page"]
    replies = RuleResponder([(r"Question: fetch", FETCHES.format(urls=urls))], default=ECHO)
    seen = Seen()

    async def body(s: ClientSession) -> None:
        for tool, args, fragment in hostile_calls(tmp_path, work, capture, public):
            error, text = await call(s, seen, tool, args)
            assert error, (tool, args)
            refused(text, fragment)
        await still_serving(s, seen)

    with StubOpenAI(replies) as stub:
        params = stdio_params(tmp_path, stub, RLM_MCP_URL_ALLOW_HOSTS=f"127.0.0.1:{public.port}")
        over_stdio(params, body)
    seen.assert_clean()
    assert capture.requests == []  # no key, no request: nothing reached the capture server
    # the source and fetch_url each asked /go (refused at the redirect); fetch_url got /page
    assert [path for _, path, _ in public.requests] == ["/go", "/go", "/page"]
    for report in (work / "data" / "reports").iterdir():
        assert SECRET not in report.read_text() and API_KEY not in report.read_text()


def test_client_roots_narrow_the_operators(tmp_path: Path, work: Path) -> None:
    """A client that offers roots/list is held to the part of the operator's roots in them."""
    seen = Seen()

    async def body(s: ClientSession) -> None:
        error, text = await call(
            s, seen, "deep_research", {"question": "q?", "sources": ["doc.txt"]}
        )
        assert error
        refused(text, "outside the folders", str(work / "notes"))
        error, text = await call(
            s, seen, "deep_research", {"question": "q?", "sources": ["notes/a.txt"]}
        )
        assert not error and "meeting is on Tuesday" in text
        # A client root outside the operator's adds nothing.
        error, text = await call(s, seen, "deep_research", {"question": "q?", "sources": ["/etc"]})
        assert error
        refused(text, "outside the folders")

    with StubOpenAI(RuleResponder([], default=ECHO)) as stub:
        over_stdio(stdio_params(tmp_path, stub), body, roots=[work / "notes", Path("/etc")])
    seen.assert_clean()


def test_operator_can_loosen(tmp_path: Path, work: Path, capture: Capture) -> None:
    """What the operator lists, a client may use: a model, secret files, private addresses."""
    seen = Seen()

    async def body(s: ClientSession) -> None:
        error, text = await call(
            s,
            seen,
            "deep_research",
            {
                "question": "q?",
                "sources": [".env", f"{capture.url}/page"],
                "options": {"model": "openai:other"},
            },
        )
        assert not error, text
        assert SECRET in text  # the operator allowed it

    with StubOpenAI(RuleResponder([], default=ECHO)) as stub:
        params = stdio_params(
            tmp_path,
            stub,
            RLM_MCP_ALLOWED_MODELS="openai:other",
            RLM_MCP_ALLOW_SECRET_FILES="true",
            RLM_MCP_ALLOW_PRIVATE_URLS="true",
        )
        over_stdio(params, body)
        assert {c["model"] for c in stub.calls} == {"other"}
    assert [path for _, path, _ in capture.requests] == ["/page"]


# -- HTTP: the token and the Host check ------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(tmp_path: Path, stub: StubOpenAI, port: int) -> tuple[subprocess.Popen, str]:
    """The server on a loopback port with no RLM_MCP_TOKEN: it prints the token it made."""
    env = {**os.environ, **server_env(tmp_path, stub)}
    env.pop("RLM_MCP_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlm_research.mcp_server.server", "--http", "--port", str(port)],
        cwd=tmp_path / "work",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    assert "bearer token" in line, line
    token = line.rsplit(" ", 1)[1].strip()
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, token
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "no HTTP server"
            time.sleep(0.1)


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def http_server(tmp_path: Path, work: Path):
    """(the /mcp URL, the token the server printed) of a server on a loopback port."""
    port = free_port()
    with StubOpenAI(RuleResponder([], default=ECHO)) as stub:
        proc, token = start_http(tmp_path, stub, port)
        try:
            yield f"http://127.0.0.1:{port}/mcp", token
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stderr.close()


def http_session(url: str, token: str, body: Callable[[ClientSession], Awaitable[None]]) -> None:
    async def main() -> None:
        with anyio.fail_after(60):
            async with (
                create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as s,
            ):
                await s.initialize()
                await body(s)

    anyio.run(main)


def test_http_needs_the_token_and_a_known_host(http_server: tuple[str, str]) -> None:
    url, token = http_server
    good = {**ACCEPT, "Authorization": f"Bearer {token}"}
    for headers, status in [
        (ACCEPT, 401),  # no token
        ({**ACCEPT, "Authorization": "Bearer wrong-token"}, 401),
        ({**ACCEPT, "Authorization": token}, 401),  # not a bearer header
        ({**good, "Host": "evil.example"}, 421),  # DNS rebinding
        ({**good, "Origin": "http://evil.example"}, 403),
    ]:
        answer = httpx.post(url, json=INIT, headers=headers, timeout=10)
        assert answer.status_code == status, (headers, answer.text)
        assert SECRET not in answer.text and API_KEY not in answer.text
    unauthorized = httpx.post(url, json=INIT, headers=ACCEPT, timeout=10)
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    huge = httpx.post(url, content=b"x" * 5_000_000, headers=good, timeout=30)
    assert huge.status_code == 413

    async def nothing(s: ClientSession) -> None:
        raise AssertionError("initialized without the token")

    with pytest.raises(BaseException) as failed:  # the SDK client cannot even start
        http_session(url, "wrong-token", nothing)
    assert "error response" in repr(failed.value)  # the 401, as the SDK says it


def test_http_client_with_the_token_is_still_confined(
    http_server: tuple[str, str], capture: Capture
) -> None:
    url, token = http_server
    seen = Seen()

    async def body(s: ClientSession) -> None:
        for args, fragment in [
            ({"sources": ["/etc/passwd"]}, "outside the folders"),
            ({"sources": [".env"]}, "hidden files"),
            ({"sources": [f"{capture.url}/x"]}, "loopback"),
            ({"options": {"base_url": capture.url}}, "server's operator"),
            ({"question": "x" * 60_000}, "too long"),
        ]:
            error, text = await research(s, seen, **args)
            assert error
            refused(text, fragment)
        error, text = await research(s, seen, sources=["doc.txt"])
        assert not error and "vault code is 7413" in text

    http_session(url, token, body)
    seen.assert_clean()
    assert capture.requests == []


def test_non_loopback_http_needs_a_token(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path) -> None:
    monkeypatch.delenv("RLM_MCP_TOKEN", raising=False)
    monkeypatch.setenv("RLM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        server_main(["--http", "--host", "0.0.0.0", "--port", str(free_port())])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rlm-research-mcp: error: --host 0.0.0.0 serves other machines")
    assert err.count("\n") == 1
