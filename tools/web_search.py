"""Web research for the REPL's `web_search` and `fetch_url`, made by the host process.

Providers: Tavily (through `tavily-python`), Brave Search and SearxNG (their JSON HTTP APIs),
chosen by `WebOptions.web_provider`; `WebOptions.web_base_url` overrides the endpoint (required for
SearxNG, unless `SEARXNG_URL` is set). Keys come from the environment: `TAVILY_API_KEY`,
`BRAVE_API_KEY` (or `BRAVE_SEARCH_API_KEY`).

Every failure is a `WebError` with one line that starts with the function's name; that line is
what the model's code sees as the exception message. A provider's 5xx answer is tried once more
after `RETRY_PAUSE` seconds; nothing else is retried (a bad key, a rate limit or a timeout would
only fail again, and each try makes the run wait).

The timeout of one request is `WebOptions.web_timeout` (the run's config key `web_timeout`, or
`$RLM_WEB_TIMEOUT`), 20 s by default. The caller passes these three values in as `WebOptions`, so
this module does not depend on the graph's settings.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

PROVIDERS = ("tavily", "brave", "searxng")
DEFAULT_TIMEOUT = 20.0  # seconds per request
RETRY_PAUSE = 1.0  # seconds before the one retry of a 5xx answer
MAX_RESULTS = 20  # what Tavily and Brave allow per request
FETCH_MAX_BYTES = 10_000_000  # a page's download; more is an error
MAX_TEXT_CHARS = 2_000_000  # a page's text; more is cut, with a note at the end
BRAVE_URL = "https://api.search.brave.com/res/v1"
TAVILY_URL = "https://api.tavily.com"
USER_AGENT = "rlm-research/0.1 (+web_search)"


@dataclass(frozen=True)
class WebOptions:
    """The run settings web research reads (same names as the run's settings)."""

    web_provider: str = "tavily"  # tavily | brave | searxng
    web_base_url: str | None = None  # the provider's endpoint, e.g. a SearxNG server
    web_timeout: float = DEFAULT_TIMEOUT  # seconds per request
    # An MCP client's run: fetch_url reaches no loopback/private/metadata address
    # (tools.address_guard); `url_guard_allow` lists host:port pairs the operator let through.
    url_guard: bool = False
    url_guard_allow: str = ""


class WebError(Exception):
    """One line the model's code sees as the exception message."""


class _ServerError(WebError):
    """A 5xx answer: worth one more try."""


# -- the host call -------------------------------------------------------------------------------
def call_web(fn: str, args: dict[str, Any], settings: WebOptions) -> Any:
    """Answer the REPL's `web_search(query, max_results=5)` or `fetch_url(url)`."""
    try:
        if fn == "web_search":
            return search(args.get("query"), args.get("max_results", 5), settings)
        if fn == "fetch_url":
            return fetch(args.get("url"), settings)
    except WebError:
        raise
    except Exception as e:  # noqa: BLE001 - a surprise must not end a long run; the code sees it
        raise WebError(f"{fn}: unexpected error ({type(e).__name__}: {_one_line(e)})") from e
    raise WebError(f"{fn}: not a web function (there are web_search and fetch_url)")


def search(
    query: Any,
    max_results: Any = 5,
    settings: WebOptions | None = None,
    *,
    timeout: float | None = None,
) -> list[dict[str, str]]:
    """Search with the provider of `settings`: up to `max_results` (1-20) hits, each
    `{"title", "url", "snippet"}`, best first."""
    settings = settings or WebOptions()
    if not isinstance(query, str) or not query.strip():
        raise WebError("web_search: the query is empty")
    try:
        count = min(max(int(max_results), 1), MAX_RESULTS)
    except (TypeError, ValueError):
        raise WebError(f"web_search: max_results must be a number, not {max_results!r}") from None
    provider = str(settings.web_provider or "").strip().lower()
    if provider not in _SEARCHERS:
        raise WebError(
            f"web_search: unknown web_provider {settings.web_provider!r} "
            f"(use one of {', '.join(PROVIDERS)})"
        )
    seconds = timeout if timeout is not None else _timeout(settings)
    searcher = _SEARCHERS[provider]
    try:
        hits = searcher(query.strip(), count, settings.web_base_url, seconds)
    except _ServerError:
        time.sleep(RETRY_PAUSE)
        try:
            hits = searcher(query.strip(), count, settings.web_base_url, seconds)
        except _ServerError as e:
            raise WebError(f"{e}, also when tried again") from None
    return hits[:count]


def fetch(url: Any, settings: WebOptions | None = None, *, timeout: float | None = None) -> str:
    """The page at `url` as plain text (HTML to text, PDF to text, text as is); past
    `MAX_TEXT_CHARS` it is cut, and its last line says so."""
    from rlm_research.tools.sources import SourceError, load_url

    settings = settings or WebOptions()
    if not isinstance(url, str) or not url.strip():
        raise WebError("fetch_url: the URL is empty")
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise WebError(f"fetch_url: {url}: only http:// and https:// URLs can be fetched")
    seconds = timeout if timeout is not None else _timeout(settings)
    try:
        text = load_url(url, max_bytes=FETCH_MAX_BYTES, timeout=seconds, guard=_guard(settings))
    except SourceError as e:
        message = _one_line(e)
        if ": too big (" in message:  # its hint names the --source setting, not ours
            message = f"{url}: too big (over the {FETCH_MAX_BYTES / 1e6:g} MB limit of fetch_url)"
        raise WebError(f"fetch_url: {message}") from None
    if len(text) > MAX_TEXT_CHARS:
        text = (
            text[:MAX_TEXT_CHARS]
            + f"\n\n[fetch_url: the page's text was cut to its first {MAX_TEXT_CHARS:,} "
            f"of {len(text):,} characters]"
        )
    return text


def _guard(settings: WebOptions) -> Any:
    """The address guard of a run an MCP client started (None: any address)."""
    if not getattr(settings, "url_guard", False):
        return None
    from rlm_research.tools.address_guard import AddressGuard

    return AddressGuard.allowing(getattr(settings, "url_guard_allow", ""))


def _timeout(settings: WebOptions) -> float:
    seconds = getattr(settings, "web_timeout", None) or DEFAULT_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


# -- providers -----------------------------------------------------------------------------------
def _tavily(query: str, count: int, base_url: str | None, timeout: float) -> list[dict[str, str]]:
    import requests
    from tavily import TavilyClient
    from tavily import errors as tavily_errors

    key = os.environ.get("TAVILY_API_KEY", "").strip()
    if not key:
        raise WebError("web_search: set TAVILY_API_KEY for the tavily provider")
    base = (base_url or TAVILY_URL).rstrip("/")
    where = f"the tavily provider at {base}"
    # Our own session, so a hook can keep the last response: the client's exceptions carry
    # neither the status (403 and 432 are one error) nor Retry-After.
    session = requests.Session()
    answers: list[requests.Response] = []
    session.hooks["response"].append(lambda r, *a, **k: answers.append(r))
    client = TavilyClient(api_key=key, api_base_url=base, session=session)
    try:
        data = client.search(query, max_results=count, timeout=timeout)
    except tavily_errors.TimeoutError:
        raise WebError(f"web_search: {where} did not answer within {timeout:g} s") from None
    except requests.ConnectionError as e:
        raise WebError(f"web_search: cannot connect to {where} ({_reason(e)})") from None
    except requests.JSONDecodeError:  # a 200 answer that is not JSON
        raise WebError(f"web_search: {where} sent a malformed answer (not JSON)") from None
    except Exception as e:  # noqa: BLE001 - the client's errors for 4xx/5xx: use the response
        last = answers[-1] if answers else None
        if last is None or last.status_code < 400:
            raise WebError(f"web_search: {where} failed ({_one_line(e)})") from None
        body = _json_or_none(last.text)
        raise _status_error(
            "tavily", where, last.status_code, last.reason, last.headers, body, "TAVILY_API_KEY"
        ) from None
    finally:
        session.close()
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise WebError(f"web_search: {where} sent a malformed answer (no results list)")
    return _hits(data["results"], "content")


def _brave(query: str, count: int, base_url: str | None, timeout: float) -> list[dict[str, str]]:
    key = (os.environ.get("BRAVE_API_KEY") or os.environ.get("BRAVE_SEARCH_API_KEY") or "").strip()
    if not key:
        raise WebError(
            "web_search: set BRAVE_API_KEY (or BRAVE_SEARCH_API_KEY) for the brave provider"
        )
    base = (base_url or BRAVE_URL).rstrip("/")
    data = _get_json(
        "brave",
        base,
        "/web/search",
        {"q": query, "count": count},
        {"X-Subscription-Token": key},
        timeout,
        key_name="BRAVE_API_KEY",
    )
    web = data.get("web")
    if web is None:  # Brave leaves out `web` when nothing was found
        return []
    if not isinstance(web, dict) or not isinstance(web.get("results", []), list):
        raise WebError(f"web_search: the brave provider at {base} sent a malformed answer")
    return _hits(web.get("results", []), "description")


def _searxng(query: str, count: int, base_url: str | None, timeout: float) -> list[dict[str, str]]:
    base = (base_url or os.environ.get("SEARXNG_URL", "")).strip().rstrip("/")
    if not base:
        raise WebError(
            "web_search: set web_base_url (or SEARXNG_URL) to your SearxNG server "
            "for the searxng provider"
        )
    data = _get_json("searxng", base, "/search", {"q": query, "format": "json"}, {}, timeout)
    if not isinstance(data.get("results"), list):
        raise WebError(f"web_search: the searxng provider at {base} sent a malformed answer")
    return _hits(data["results"], "content")


_SEARCHERS: dict[str, Callable[[str, int, str | None, float], list[dict[str, str]]]] = {
    "tavily": _tavily,
    "brave": _brave,
    "searxng": _searxng,
}


# -- HTTP ----------------------------------------------------------------------------------------
def _get_json(
    provider: str,
    base: str,
    path: str,
    params: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
    *,
    key_name: str | None = None,
) -> dict[str, Any]:
    """GET `base + path`; the JSON object it answers, or a WebError for every failure."""
    url = base + path
    where = f"the {provider} provider at {base}"
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, headers=headers) as client:
            resp = client.get(url, params=params)
    except httpx.TimeoutException:
        raise WebError(f"web_search: {where} did not answer within {timeout:g} s") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
        raise WebError(f"web_search: {base} is not a usable URL ({_one_line(e)})") from None
    except httpx.HTTPError as e:
        raise WebError(f"web_search: cannot connect to {where} ({_reason(e)})") from None
    body = _json_or_none(resp.text)
    if resp.status_code >= 400:
        raise _status_error(
            provider, where, resp.status_code, resp.reason_phrase, resp.headers, body, key_name
        )
    if not isinstance(body, dict):
        raise WebError(f"web_search: {where} sent a malformed answer (not a JSON object)")
    return body


def _status_error(
    provider: str,
    where: str,
    status: int,
    reason: str | None,
    headers: Any,
    body: Any,
    key_name: str | None,
) -> WebError:
    """One line for an HTTP error answer; 5xx is a `_ServerError` (tried once more)."""
    detail = _detail(body)
    tail = f": {detail}" if detail else ""
    http = f"HTTP {status}"
    if status >= 500:
        return _ServerError(f"web_search: {where} failed ({http} {reason or ''}".rstrip() + ")")
    if status == 429:
        wait = (headers.get("Retry-After") or "").strip()
        after = f"retry after {wait} s" if wait.isdigit() else f"retry after {wait}" if wait else ""
        after = after or "try again later"
        return WebError(f"web_search: {where} is rate limiting ({http}); {after}{tail}")
    if provider == "searxng" and status == 403:
        return WebError(
            f"web_search: {where} refused the request ({http}); enable the json format in its "
            "settings.yml (search: formats: [html, json])"
        )
    if status in (401, 403) and key_name:
        return WebError(
            f"web_search: {where} rejected the API key ({http}); check {key_name}{tail}"
        )
    if provider == "tavily" and status in (432, 433):
        return WebError(f"web_search: {where}: the plan's usage limit is used up ({http}){tail}")
    return WebError(
        f"web_search: {where} refused the request ({http} {reason or ''}".rstrip() + f"){tail}"
    )


def _detail(body: Any) -> str:
    """The error text of the usual JSON error shapes, short and on one line."""
    text: Any = None
    if isinstance(body, dict):
        for first, second in (("detail", "error"), ("error", "detail"), ("error", "message")):
            inner = body.get(first)
            if isinstance(inner, dict) and isinstance(inner.get(second), str):
                text = inner[second]
                break
        else:
            for name in ("detail", "error", "message"):
                if isinstance(body.get(name), str):
                    text = body[name]
                    break
    return _one_line(text, 200) if text else ""


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _hits(results: list[Any], snippet_key: str) -> list[dict[str, str]]:
    hits = []
    for r in results:
        if not isinstance(r, dict) or not isinstance(r.get("url"), str) or not r["url"]:
            continue
        hits.append(
            {
                "title": _plain(r.get("title")),
                "url": r["url"],
                "snippet": _plain(r.get(snippet_key)),
            }
        )
    return hits


_TAG = re.compile(r"<[^>]{0,200}>")


def _plain(value: Any) -> str:
    """Text without the markup some providers put in titles and snippets (`<strong>`)."""
    if not isinstance(value, str):
        return ""
    return " ".join(html.unescape(_TAG.sub("", value)).split())


def _reason(e: BaseException) -> str:
    text = _one_line(e)
    if "refused" in text.lower():
        return "connection refused"
    return text or type(e).__name__


def _one_line(e: Any, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
