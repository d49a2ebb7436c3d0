"""What the client reads about a run besides its answer: progress lines for `graph.api.stream`
events, usage summaries, short previews, model labels and times."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rlm_research.graph.usage import input_text, total_calls, total_tokens

PROGRESS_TEXT = 200  # characters of an observation shown in a progress message


def describe_event(event: dict[str, Any]) -> str | None:
    """A progress line for one `graph.api.stream` event (None: not worth a notification)."""
    kind = event.get("kind")
    depth = int(event.get("depth", 0) or 0)
    where = "root" if depth == 0 else f"depth {depth}"
    if kind == "turn":
        return f"{where} · turn {event.get('turn')}: asking the model"
    if kind == "direct":
        return f"{where}: answering a sub-call directly"
    if kind == "cell":
        return f"{where}: running cell {event.get('cell')}"
    if kind == "sub_calls":
        return f"{where}: waiting on {event.get('count')} sub-call(s)"
    if kind == "child_start":
        return f"sub-call started (depth {depth})"
    if kind == "child_done":
        return f"sub-call done (depth {depth})"
    if kind == "child_failed":
        return f"sub-call failed (depth {depth}): {preview(str(event.get('error', '')), 120)}"
    if kind == "observation":
        text = preview(str(event.get("text", "")), PROGRESS_TEXT)
        return f"{where} · turn {event.get('turn')} output: {text}"
    if kind == "finished":
        return f"{where}: finished ({event.get('stop_reason')})"
    if kind and kind != "result":
        return f"{where}: {kind}"
    return None


def preview(text: str | None, n: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def usage_summary(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    models: dict[str, dict[str, int]] = {}
    for label, m in (usage.get("models") or {}).items():
        models[label] = {k: int(m.get(k, 0)) for k in ("calls", "input_tokens", "output_tokens")}
        if m.get("input_tokens_evaluated") is not None:  # only models that report it
            models[label]["input_tokens_evaluated"] = int(m["input_tokens_evaluated"])
    return {
        "models": models,
        "model_calls": total_calls(usage),
        "total_tokens": total_tokens(usage),
        "sub_calls": int(usage.get("sub_calls", 0) or 0),
        "web_calls": int(usage.get("web_calls", 0) or 0),
    }


def usage_line(summary: dict[str, Any]) -> str:
    parts = [
        f"{label}: {m['calls']} call(s), {input_text(m, ' in')} / {m['output_tokens']:,} out"
        for label, m in summary["models"].items()
    ] or ["no model calls"]
    line = "; ".join(parts) + f"; {summary['sub_calls']} sub-call(s)"
    if summary["web_calls"]:
        line += f"; {summary['web_calls']} web call(s)"
    return line


def model_label(spec: Any) -> str | None:
    if spec is None:
        return None
    try:
        from rlm_research.tools.chat_models import model_label as label

        return label(spec)
    except Exception:  # noqa: BLE001 - only for display
        return str(spec)


def iso_time(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds") if ts else None
