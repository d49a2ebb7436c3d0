"""Web research for the REPL's `web_search` and `fetch_url`, made by the host process.

Providers: Tavily, Brave Search and SearxNG (their JSON HTTP APIs), chosen by `web_provider`.
"""

from __future__ import annotations

from typing import Any

from graph.settings import Settings


class WebError(Exception):
    """One line the model's code sees as the exception message."""


def call_web(fn: str, args: dict[str, Any], settings: Settings) -> Any:
    raise WebError(f"{fn}: web research is not implemented yet")
