"""How stored runs read in `rlm-research runs` and `show`: times, previews, status colours, the
last step, and a run row as public JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any

STATUS_STYLE = {
    "answered": "green",
    "no_answer": "red",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
}


def format_when(ts: float | None) -> str:
    if not ts:
        return "?"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def preview(text: str | None, n: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def public_run(row: dict[str, Any]) -> dict[str, Any]:
    """A run as JSON: no process bookkeeping."""
    out = {k: v for k, v in row.items() if k not in ("pid", "host")}
    for key in ("started", "updated"):
        if out.get(key):
            out[key] = dt.datetime.fromtimestamp(out[key], dt.UTC).isoformat()
    return out


def format_last_step(last: dict[str, Any] | None) -> str:
    if not last:
        return ""
    nxt = ", ".join(last.get("next") or []) or "done"
    return f"{last.get('step')} -> {nxt}"
