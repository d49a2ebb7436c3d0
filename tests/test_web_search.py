"""`tools.web_search` against local servers on 127.0.0.1 that speak each provider's API shape:
results, bad key, rate limit, timeout, malformed JSON, 5xx; `fetch_url`; and through the graph."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from rlm_research.graph import run
from rlm_research.tools import web_search
from rlm_research.tools.web_search import WebError, WebOptions, call_web, fetch, search

from tests.support.scripted_models import py, script

KEY = "test-key-123"
HITS = [
    {
        "title": "First <strong>hit</strong>",
        "url": "https://one.example/a",
        "text": "Alpha &amp; a",
    },
    {"title": "Second hit", "url": "https://two.example/b", "text": "Beta"},
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "TAVILY_API_KEY",
        "BRAVE_API_KEY",
        "BRAVE_SEARCH_API_KEY",
        "SEARXNG_URL",
        "RLM_WEB_TIMEOUT",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "TAVILY_HTTP_PROXY",
        "TAVILY_HTTPS_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(web_search, "RETRY_PAUSE", 0.0)


# -- a fake provider -----------------------------------------------------------------------------
class FakeProvider(http.server.ThreadingHTTPServer):
    """Answers like `provider` would. `plan`: the modes of the next requests, in order; then
    `mode` (ok, 401, 429, 500, hang, badjson). `requests`: what came in."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, provider: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.provider = provider
        self.mode = "ok"
        self.plan: list[str] = []
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeProvider

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        self.answer(None)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.answer(json.loads(self.rfile.read(length) or b"{}"))

    def answer(self, body):
        srv = self.server
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        srv.requests.append(
            {
                "method": self.command,
                "path": parts.path,
                "query": query,
                "body": body,
                "headers": dict(self.headers),
            }  # fmt: skip
        )
        mode = srv.plan.pop(0) if srv.plan else srv.mode
        expected = {"tavily": ("POST", "/search"), "brave": ("GET", "/web/search"),
                    "searxng": ("GET", "/search")}[srv.provider]  # fmt: skip
        if (self.command, parts.path) != expected:
            return self.send(404, {"error": "not found"})
        if mode == "hang":
            srv.release.wait(10)
            return
        if mode == "badjson":
            return self.send(200, b"<html>oops, not json")
        if mode == "500":
            return self.send(503, b"upstream down")
        if mode == "429":
            return self.send(429, self.error("rate limit exceeded"), {"Retry-After": "7"})
        if mode == "403":
            return self.send(403, self.error("forbidden"))
        if mode == "401" or not self.key_ok(body):
            return self.send(401, self.error("invalid API key"))
        return self.send(200, self.results())

    def key_ok(self, body) -> bool:
        if self.server.provider == "tavily":
            return self.headers.get("Authorization") == f"Bearer {KEY}"
        if self.server.provider == "brave":
            return self.headers.get("X-Subscription-Token") == KEY
        return True

    def error(self, text: str):
        if self.server.provider == "tavily":
            return {"detail": {"error": text}}
        if self.server.provider == "brave":
            return {"type": "ErrorResponse", "error": {"code": "X", "detail": text, "status": 0}}
        return text.encode()  # SearxNG answers errors as plain text or HTML

    def results(self):
        p = self.server.provider
        if p == "tavily":
            rs = [{"title": h["title"], "url": h["url"], "content": h["text"], "score": 0.9}
                  for h in HITS]  # fmt: skip
            return {"query": "q", "results": rs, "response_time": 0.1}
        if p == "brave":
            rs = [{"title": h["title"], "url": h["url"], "description": h["text"]} for h in HITS]
            return {"type": "search", "web": {"type": "search", "results": rs}}
        rs = [{"title": h["title"], "url": h["url"], "content": h["text"], "engine": "x"}
              for h in HITS]  # fmt: skip
        return {"query": "q", "number_of_results": 2, "results": rs}

    def send(self, status: int, body, headers: dict | None = None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def start(provider: str) -> FakeProvider:
    srv = FakeProvider(provider)
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    return srv


@pytest.fixture
def fake(request, monkeypatch):
    """A fake server for the parametrized provider, with its key set."""
    srv = start(request.param)
    monkeypatch.setenv("TAVILY_API_KEY", KEY)
    monkeypatch.setenv("BRAVE_API_KEY", KEY)
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def settings_for(srv: FakeProvider, **kw) -> WebOptions:
    return WebOptions(web_provider=srv.provider, web_base_url=srv.url, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ALL = pytest.mark.parametrize("fake", ["tavily", "brave", "searxng"], indirect=True)


# -- search --------------------------------------------------------------------------------------
@ALL
def test_results_are_parsed(fake):
    hits = call_web("web_search", {"query": "rlm paper", "max_results": 2}, settings_for(fake))
    assert hits == [
        {"title": "First hit", "url": "https://one.example/a", "snippet": "Alpha & a"},
        {"title": "Second hit", "url": "https://two.example/b", "snippet": "Beta"},
    ]
    req = fake.requests[0]
    if fake.provider == "tavily":
        assert req["body"]["query"] == "rlm paper" and req["body"]["max_results"] == 2
        assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    elif fake.provider == "brave":
        assert req["query"] == {"q": "rlm paper", "count": "2"}
        assert req["headers"]["X-Subscription-Token"] == KEY
    else:
        assert req["query"] == {"q": "rlm paper", "format": "json"}


@ALL
def test_max_results_cuts_the_list(fake):
    assert [h["title"] for h in search("q", 1, settings_for(fake))] == ["First hit"]


@pytest.mark.parametrize("fake", ["tavily", "brave"], indirect=True)
def test_bad_key(fake, monkeypatch):
    name = "TAVILY_API_KEY" if fake.provider == "tavily" else "BRAVE_API_KEY"
    monkeypatch.setenv(name, "wrong")
    with pytest.raises(WebError) as e:
        search("q", 5, settings_for(fake))
    assert str(e.value) == (
        f"web_search: the {fake.provider} provider at {fake.url} rejected the API key "
        f"(HTTP 401); check {name}: invalid API key"
    )


def test_searxng_401_and_403():
    srv = start("searxng")
    try:
        srv.mode = "401"
        with pytest.raises(WebError, match=r"refused the request \(HTTP 401 Unauthorized\)"):
            search("q", 5, settings_for(srv))
        srv.mode = "403"  # what SearxNG answers when its json format is not enabled
        with pytest.raises(WebError, match=r"\(HTTP 403\); enable the json format in its"):
            search("q", 5, settings_for(srv))
    finally:
        srv.shutdown()
        srv.server_close()


@ALL
def test_rate_limit_says_when_to_retry(fake):
    fake.mode = "429"
    with pytest.raises(WebError) as e:
        search("q", 5, settings_for(fake))
    msg = str(e.value)
    assert msg.startswith(
        f"web_search: the {fake.provider} provider at {fake.url} is rate limiting (HTTP 429); "
        "retry after 7 s"
    )
    assert "\n" not in msg and len(fake.requests) == 1  # no retry


@ALL
def test_timeout(fake, monkeypatch):
    fake.mode = "hang"
    with pytest.raises(WebError) as e:
        call_web(
            "web_search", {"query": "q", "max_results": 5}, settings_for(fake, web_timeout=0.3)
        )
    assert str(e.value) == (
        f"web_search: the {fake.provider} provider at {fake.url} did not answer within 0.3 s"
    )


@ALL
def test_malformed_json(fake):
    fake.mode = "badjson"
    with pytest.raises(WebError) as e:
        search("q", 5, settings_for(fake))
    assert str(e.value).startswith(
        f"web_search: the {fake.provider} provider at {fake.url} sent a malformed answer"
    )


@ALL
def test_a_5xx_is_tried_once_more(fake):
    fake.plan = ["500"]
    assert len(search("q", 5, settings_for(fake))) == 2
    fake.mode = "500"
    with pytest.raises(WebError) as e:
        search("q", 5, settings_for(fake))
    assert str(e.value) == (
        f"web_search: the {fake.provider} provider at {fake.url} failed "
        "(HTTP 503 Service Unavailable), also when tried again"
    )
    assert len(fake.requests) == 4


@pytest.mark.parametrize("provider", ["tavily", "brave", "searxng"])
def test_connection_refused(provider, monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", KEY)
    monkeypatch.setenv("BRAVE_SEARCH_API_KEY", KEY)  # the other name Brave's key goes by
    base = f"http://127.0.0.1:{closed_port()}"
    settings = WebOptions(web_provider=provider, web_base_url=base)
    with pytest.raises(WebError) as e:
        search("q", 5, settings, timeout=2)
    assert str(e.value) == (
        f"web_search: cannot connect to the {provider} provider at {base} (connection refused)"
    )


def test_missing_keys_and_settings():
    def error(**kw) -> str:
        with pytest.raises(WebError) as e:
            call_web("web_search", {"query": "q"}, WebOptions(**kw))
        return str(e.value)

    assert error(web_provider="tavily") == "web_search: set TAVILY_API_KEY for the tavily provider"
    assert error(web_provider="brave") == (
        "web_search: set BRAVE_API_KEY (or BRAVE_SEARCH_API_KEY) for the brave provider"
    )
    assert error(web_provider="searxng").startswith("web_search: set web_base_url (or SEARXNG_URL)")
    assert error(web_provider="bing") == (
        "web_search: unknown web_provider 'bing' (use one of tavily, brave, searxng)"
    )
    with pytest.raises(WebError, match="the query is empty"):
        call_web("web_search", {"query": "  "}, WebOptions())
    with pytest.raises(WebError, match="not a web function"):
        call_web("delete_everything", {}, WebOptions())


# -- fetch_url -----------------------------------------------------------------------------------
class PageHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        page = (
            b"<html><head><title>Fleet report</title><style>p{color:red}</style></head>"
            b"<body><h1>Tonnage</h1><script>var secret = 1;</script>"
            b"<p>The fleet carried <b>8,210</b> tonnes.</p></body></html>"
        )
        status = 200 if self.path == "/page.html" else 404
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


@pytest.fixture
def page_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PageHandler)
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_fetch_gives_the_page_text(page_server, monkeypatch):
    settings = WebOptions()
    text = call_web("fetch_url", {"url": f"{page_server}/page.html"}, settings)
    assert text == "Fleet report\n\nTonnage\nThe fleet carried 8,210 tonnes."
    monkeypatch.setattr(web_search, "MAX_TEXT_CHARS", 12)
    cut = fetch(f"{page_server}/page.html", settings)
    assert cut.startswith("Fleet report\n\n[fetch_url: the page's text was cut to its first 12 ")
    with pytest.raises(WebError, match=r"^fetch_url: http://\S+/nope: HTTP 404"):
        fetch(f"{page_server}/nope", settings)


def test_fetch_errors_are_one_line():
    settings = WebOptions()
    url = f"http://127.0.0.1:{closed_port()}/page"
    with pytest.raises(WebError) as e:
        call_web("fetch_url", {"url": url}, settings)
    assert str(e.value).startswith(f"fetch_url: {url}: cannot fetch (")
    assert "refused" in str(e.value).lower() and "\n" not in str(e.value)
    with pytest.raises(WebError, match="only http:// and https:// URLs"):
        fetch("file:///etc/passwd", settings)


# -- through the graph ---------------------------------------------------------------------------


@pytest.fixture
def searxng():
    srv = start("searxng")
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def test_graph_run_searches_with_searxng(searxng, make_settings):
    model = script(py("hits = web_search('x')\nFINAL(hits[0]['title'])"))
    settings = make_settings(
        model=model, web=True, web_provider="searxng", web_base_url=searxng.url
    )
    result = run("q", "ctx", settings=settings)
    assert result.answer == "First hit"
    assert result.usage["web_calls"] == 1
    assert searxng.requests[0]["query"] == {"q": "x", "format": "json"}


def test_graph_run_code_catches_a_provider_error(searxng, make_settings):
    searxng.mode = "401"
    code = "try:\n    web_search('x')\nexcept WebError as e:\n    FINAL('caught: ' + str(e))"
    settings = make_settings(
        model=script(py(code)), web=True, web_provider="searxng", web_base_url=searxng.url
    )
    result = run("q", "ctx", settings=settings)
    assert result.answer == (
        f"caught: web_search: the searxng provider at {searxng.url} refused the request "
        "(HTTP 401 Unauthorized)"
    )
