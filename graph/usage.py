"""Usage totals: per model, calls and tokens; plus the number of sub-calls in the tree."""

from __future__ import annotations

from typing import Any

# {"models": {label: {"calls", "input_tokens", "output_tokens"}}, "sub_calls": n, "web_calls": n}
Usage = dict[str, Any]
COUNTERS = ("sub_calls", "web_calls")


def add_usage(old: Usage | None, new: Usage | None) -> Usage:
    out: Usage = {"models": {}, **dict.fromkeys(COUNTERS, 0)}
    for part in (old, new):
        if not part:
            continue
        for key in COUNTERS:
            out[key] += part.get(key, 0)
        for label, counts in part.get("models", {}).items():
            slot = out["models"].setdefault(
                label, {"calls": 0, "input_tokens": 0, "output_tokens": 0}
            )
            for key in slot:
                slot[key] += counts.get(key, 0)
    return out


def model_call_usage(label: str, message: Any, prompt_chars: int) -> Usage:
    """One model call. Providers report tokens; scripted models don't, so estimate 4 chars/token."""
    meta = getattr(message, "usage_metadata", None) or {}
    text = message.content if isinstance(getattr(message, "content", None), str) else ""
    return {
        "models": {
            label: {
                "calls": 1,
                "input_tokens": meta.get("input_tokens") or prompt_chars // 4,
                "output_tokens": meta.get("output_tokens") or len(text) // 4,
            }
        },
        "sub_calls": 0,
    }


def total_tokens(usage: Usage | None) -> int:
    models = (usage or {}).get("models", {})
    return sum(m["input_tokens"] + m["output_tokens"] for m in models.values())


def total_calls(usage: Usage | None) -> int:
    return sum(m["calls"] for m in (usage or {}).get("models", {}).values())
