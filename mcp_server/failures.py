"""How bad input and failed runs reach the client: `ToolFailure` is raised anywhere in the
server and becomes an `isError` tool result with its one line (no SDK prefix, no traceback)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from mcp.types import CallToolResult, TextContent

log = logging.getLogger("rlm_research.mcp")


class ToolFailure(Exception):
    """Bad input or a failed run: one line for the client, returned as an `isError` result."""


def error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def failures_as_results(fn: Callable[..., Any]) -> Callable[..., Any]:
    """ToolFailure -> an isError result with its one line (no SDK prefix, no traceback)."""

    @functools.wraps(fn)  # keeps the signature and annotations the SDK reads
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except ToolFailure as e:
            log.info("%s: %s", fn.__name__, e)
            return error_result(str(e))

    return wrapped
