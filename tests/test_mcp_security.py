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
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from rlm_research.tools.address_guard import AddressGuard, BlockedAddress

from tests.support.stub_openai import RuleResponder, StubOpenAI

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sk-operator-key-5519-do-not-leak"
SECRET = "TOPSECRET-4471"
ECHO = "```python\nFINAL(str(context))\n```"
FETCHES = (
    "```python\nout = []\nfor u in {urls!r}:\n    try:\n        out.append(fetch_url(u))\n"
    "    except Exception as e:\n        out.append('ERR ' + str(e))\nFINAL(' | '.join(out))\n```"
)


# -- servers the client must not reach, and one that stands in for the public web -------------
class Capture:
    """Records every request; answers each with the secret (it must never be asked)."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                owner.requests.append((self.command, self.path, dict(self.headers)))
                if redirect_to and self.path.startswith("/go"):
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = (f"public page {self.path}" if redirect_to else SECRET).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
    """The server's working folder (its default source root), with secrets in and around it."""
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "doc.txt").write_text("The vault code is 7413.\n")
    (work / "notes" / "a.txt").write_text("Notes: the meeting is on Tuesday.\n")
    (work / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    (work / ".ssh").mkdir()
    (work / ".ssh" / "id_ed25519").write_text(f"-----BEGIN KEY----- {SECRET}\n")
    (work / "keys").mkdir()
    (work / "keys" / "server.pem").write_text(f"-----BEGIN PRIVATE KEY----- {SECRET}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"outside the root: {SECRET}\n")
    (work / "innocent.txt").symlink_to(outside / "secret.txt")
    (work / "notes" / "link.txt").symlink_to(outside / "secret.txt")
    (work / "notes" / "id_rsa").write_text(f"{SECRET}\n")
    (work / "notes" / "env-link.txt").symlink_to(work / ".env")
    return work


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
def test_hostile_client_over_stdio(
    tmp_path: Path, work: Path, capture: Capture, public: Capture
) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    replies = RuleResponder(
        [
            (
                r"Question: fetch",
                FETCHES.format(
                    urls=[f"{capture.url}/x", metadata, f"{public.url}/go", f"{public.url}/page"]
                ),
            ),
        ],
        default=ECHO,
    )
    seen = Seen()

    async def body(s: ClientSession) -> None:
        # 1. Keys go only where the operator said: a client naming a model or URL is refused.
        for options, fragment in [
            ({"model": "openai:x", "base_url": f"{capture.url}/v1"}, "operator chooses the model"),
            ({"base_url": f"{capture.url}/v1"}, "set by the server's operator"),
            ({"sub_model": "openai:x"}, "operator chooses the model"),
            ({"web": True, "web_base_url": capture.url}, "set by the server's operator"),
            ({"web_provider": "searxng"}, "set by the server's operator"),
            ({"data_dir": str(tmp_path)}, "set when the server starts"),
            ({"model": str(work / "x.gguf")}, "operator chooses the model"),
            ({"max_depth": 9}, "at most 3 on this server"),
        ]:
            error, text = await call(
                s, seen, "deep_research", {"question": "q?", "options": options}
            )
            assert error, options
            refused(text, fragment)
        error, text = await call(
            s, seen, "resume_research", {"run_id": "abc", "options": {"base_url": capture.url}}
        )
        assert error and "set by the server's operator" in text

        # 2. Files only under the root, resolved first; no hidden or key files under it.
        for spec, fragment in [
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
        ]:
            error, text = await call(
                s, seen, "deep_research", {"question": "q?", "sources": [spec]}
            )
            assert error, spec
            refused(text, fragment)

        # 3. URLs: never loopback, private or metadata addresses; every redirect is checked.
        for url, fragment in [
            (f"{capture.url}/x", "loopback"),
            (f"http://localhost:{capture.port}/x", "loopback"),
            (f"http://[::1]:{capture.port}/x", "loopback"),
            ("http://10.0.0.7/x", "private"),
            (metadata, "cloud metadata"),
            (f"{public.url}/go", "loopback"),  # the allowed host redirects to localhost
        ]:
            error, text = await call(s, seen, "deep_research", {"question": "q?", "sources": [url]})
            assert error, url
            refused(text, fragment)

        # 4. Run ids are not paths.
        for tool in ("get_report", "resume_research"):
            for bad_id in ("../../etc/passwd", "/etc/passwd", "x' OR '1'='1", "a/../b"):
                error, text = await call(s, seen, tool, {"run_id": bad_id})
                assert error
                refused(text, "bad run id")
        error, text = await call(s, seen, "get_report", {"run_id": "abcdef123456"})
        assert error and text.startswith("no run 'abcdef123456'")

        # 5. Sizes.
        error, text = await call(s, seen, "deep_research", {"question": "x" * 60_000})
        assert error
        refused(text, "the question is too long")
        error, text = await call(
            s, seen, "deep_research", {"question": "q?", "sources": ["doc.txt"] * 500}
        )
        assert error
        refused(text, "too many sources")

        # The server keeps serving: a folder under the root is read without its link out, its
        # key file or its hidden files, and the answer shows what the model could see.
        error, text = await call(
            s, seen, "deep_research", {"question": "What is here?", "sources": ["notes", "doc.txt"]}
        )
        assert not error, text
        assert "meeting is on Tuesday" in text and "vault code is 7413" in text
        run_id = text.split("run_id: ")[1].split()[0]
        error, report = await call(s, seen, "get_report", {"run_id": run_id})
        assert not error and "meeting is on Tuesday" in report

        # fetch_url in a client's run: the same guard, seen by the model's code as an error.
        error, text = await call(
            s, seen, "deep_research", {"question": "fetch the pages", "options": {"web": True}}
        )
        assert not error, text
        parts = text.split("\n\n---\n")[0].split(" | ")
        assert parts[0].startswith("ERR fetch_url: ") and "loopback" in parts[0]
        assert "cloud metadata" in parts[1]
        assert "loopback" in parts[2]  # the redirect to localhost
        assert parts[3].startswith("public page /page")  # the operator's allowed host works

        runs = (await s.call_tool("list_runs", {})).structured_content["runs"]
        assert len(runs) == 2 and {r["status"] for r in runs} == {"answered"}

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


def test_http_needs_the_token_and_a_known_host(
    tmp_path: Path, work: Path, capture: Capture
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with StubOpenAI(RuleResponder([], default=ECHO)) as stub:
        proc, token = start_http(tmp_path, stub, port)
        try:
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

            async def wrong_token() -> None:
                with anyio.fail_after(20):
                    async with (
                        create_mcp_http_client(headers={"Authorization": "Bearer nope"}) as http,
                        streamable_http_client(url, http_client=http) as (read, write),
                        ClientSession(read, write) as s,
                    ):
                        await s.initialize()

            with pytest.raises(BaseException) as failed:  # the SDK client cannot even start
                anyio.run(wrong_token)
            assert "error response" in repr(failed.value)  # the 401 above, as the SDK says it

            seen = Seen()

            async def with_token() -> None:
                with anyio.fail_after(60):
                    async with (
                        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as h,
                        streamable_http_client(url, http_client=h) as (read, write),
                        ClientSession(read, write) as s,
                    ):
                        await s.initialize()
                        for args, fragment in [
                            ({"sources": ["/etc/passwd"]}, "outside the folders"),
                            ({"sources": [".env"]}, "hidden files"),
                            ({"sources": [f"{capture.url}/x"]}, "loopback"),
                            ({"options": {"base_url": capture.url}}, "server's operator"),
                            ({"question": "x" * 60_000}, "too long"),
                        ]:
                            error, text = await call(
                                s, seen, "deep_research", {"question": "q?", **args}
                            )
                            assert error
                            refused(text, fragment)
                        error, text = await call(
                            s, seen, "deep_research", {"question": "q?", "sources": ["doc.txt"]}
                        )
                        assert not error and "vault code is 7413" in text

            anyio.run(with_token)
            seen.assert_clean()
            assert capture.requests == []
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stderr.close()


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


# -- the guard on its own: names are checked after DNS ---------------------------------------------
def test_guard_checks_every_resolved_address() -> None:
    answers = {"rebind.test": ["93.184.216.34", "127.0.0.1"], "inside.test": ["10.1.2.3"]}
    guard = AddressGuard(resolver=lambda host, port: answers[host])
    for url, fragment in [
        ("http://rebind.test/", "rebind.test (127.0.0.1) is a loopback"),  # one bad is enough
        ("http://100.64.0.1/", "reserved"),  # carrier-grade NAT
        ("http://inside.test/", "inside.test (10.1.2.3) is a private address"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0:80/", "unspecified"),
        ("http://100.100.100.200/", "cloud metadata"),
    ]:
        with pytest.raises(BlockedAddress, match="refused") as e:
            guard.check_url(url)
        assert fragment in str(e.value)
    with pytest.raises(BlockedAddress, match="loopback"):  # 127.0.0.1 as one number, resolved
        AddressGuard().check_url("http://2130706433/")
    public = AddressGuard(resolver=lambda host, port: ["93.184.216.34"])
    public.check_url("https://example.org/")  # a public address passes (no connection made)
    assert AddressGuard.allowing("a.test:8080").addresses("a.test", 8080) == ["a.test"]


def test_host_check_and_token_rules() -> None:
    """The Host check never opens up to any host: a wildcard bind answers to loopback names and
    the names the operator gives; a short or missing token is refused off loopback."""
    from rlm_research.mcp_server.http_auth import HttpSetupError, host_check, server_token

    wildcard = host_check("0.0.0.0", 8765, ["research.example.org"])
    assert wildcard.enable_dns_rebinding_protection
    assert "0.0.0.0:8765" not in wildcard.allowed_hosts
    assert {"127.0.0.1:8765", "localhost:8765", "research.example.org:8765"} <= set(
        wildcard.allowed_hosts
    )
    assert "http://research.example.org:8765" in wildcard.allowed_origins
    with pytest.raises(HttpSetupError, match="too short"):
        server_token("127.0.0.1", {"RLM_MCP_TOKEN": "short"})
    with pytest.raises(HttpSetupError, match="serves other machines"):
        server_token("192.168.1.5", {})
    assert server_token("10.0.0.1", {"RLM_MCP_TOKEN": "k" * 20}) == ("k" * 20, False)
    token, made = server_token("::1", {})
    assert made and len(token) >= 32


def test_the_cli_keeps_full_access(work: Path, capture: Capture) -> None:
    """The policy is for MCP clients only: the loader the CLI and the Python API use (no policy)
    reads what the machine's user names, loopback URLs included."""
    from rlm_research.tools.sources import load_sources

    loaded = load_sources(
        [str(work / ".env"), str(work / "innocent.txt"), f"{capture.url}/page"], max_bytes=10_000
    )
    assert all(SECRET in text for text in loaded.texts.values())
    assert len(loaded.texts) == 3


def test_a_root_walk_skips_secrets_links_and_the_run_store(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlm_research.tools.source_policy import SourcePolicy, project_store
    from rlm_research.tools.sources import load_sources

    db = work / "data" / "runs.sqlite"
    (work / "data" / "blobs").mkdir(parents=True)
    db.write_text(f"checkpoint {SECRET}")
    (work / "data" / "blobs" / "ab12").write_text(f"blob {SECRET}")
    policy = SourcePolicy(roots=(work.resolve(),), allow_secrets=False, protected=project_store(db))
    monkeypatch.chdir(work)
    loaded = load_sources(["."], max_bytes=100_000, policy=policy)
    assert sorted(loaded.texts) == ["./doc.txt", "./notes/a.txt"]
    assert "./notes/link.txt" in loaded.skipped and "./data/runs.sqlite" in loaded.skipped
    assert not any(SECRET in text for text in loaded.texts.values())


def test_operator_caps_web_switch_and_roots(tmp_path: Path) -> None:
    from rlm_research.graph.settings import Settings
    from rlm_research.mcp_server.client_policy import ClientPolicy, narrow_roots
    from rlm_research.mcp_server.failures import ToolFailure

    values = {
        "mcp_allow_web": False,
        "mcp_option_caps": {"max_turns": 5},
        "source_roots": [str(tmp_path)],
        "mcp_max_sources": 2,
    }
    policy = ClientPolicy.from_config(values, Settings(model="openai:mine"))
    policy.check_options({"max_turns": 5, "model": "openai:mine", "max_depth": 3})
    for options, message in [
        ({"max_turns": 6}, "option 'max_turns': at most 5 on this server (got 6)"),
        ({"max_depth": "4"}, "option 'max_depth': at most 3 on this server (got '4')"),
        ({"web": "yes"}, "option 'web': this server does not allow web research"),
        ({"url_guard": False}, "option 'url_guard': set by the server's operator, not by a client"),
        ({"mcp_allow_private_urls": True}, "set by the server's operator"),
    ]:
        with pytest.raises(ToolFailure) as e:
            policy.check_options(options)
        assert message in str(e.value)
    with pytest.raises(ToolFailure, match="does not allow web research"):
        policy.check_input("q", ["web://"])
    with pytest.raises(ToolFailure, match="too many sources"):
        policy.check_input("q", ["a", "b", "c"])
    confined = policy.confine(Settings(web=True))
    assert confined.web is False and confined.url_guard is True
    a, b = tmp_path / "a", tmp_path / "a" / "b"
    assert narrow_roots((a,), [b, Path("/etc")]) == (b,)
    assert narrow_roots((b,), [a]) == (b,)
    assert narrow_roots((a,), []) == ()
    assert narrow_roots((a,), None) == (a,)
