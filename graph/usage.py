"""Usage totals: per model, calls and tokens; plus the number of sub-calls in the tree."""

from __future__ import annotations

from typing import Any

# {"models": {label: {"calls", "input_tokens", "output_tokens"}}, "sub_calls": n, "web_calls": n}
# A model that reports how many prompt tokens it actually evaluated (the embedded llama.cpp model:
# the rest came from its KV prefix cache) also has "input_tokens_evaluated"; others never do.
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
            for key, value in counts.items():  # every numeric counter, optional ones included
                if isinstance(value, int | float) and not isinstance(value, bool):
                    slot[key] = slot.get(key, 0) + value
    return out


def model_call_usage(label: str, message: Any, prompt_chars: int) -> Usage:
    """One model call. Providers report tokens; scripted models don't, so estimate 4 chars/token."""
    meta = getattr(message, "usage_metadata", None) or {}
    text = message.content if isinstance(getattr(message, "content", None), str) else ""
    counts = {
        "calls": 1,
        "input_tokens": meta.get("input_tokens") or prompt_chars // 4,
        "output_tokens": meta.get("output_tokens") or len(text) // 4,
    }
    meta_out = getattr(message, "response_metadata", None) or {}
    evaluated = meta_out.get("prompt_tokens_evaluated")
    if isinstance(evaluated, int) and not isinstance(evaluated, bool):
        counts["input_tokens_evaluated"] = evaluated
        seconds = meta_out.get("prompt_eval_seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            counts["input_eval_seconds"] = float(seconds)
    return {"models": {label: counts}, "sub_calls": 0}


def reading_speed(usage: Usage | None) -> float | None:
    """Prompt tokens a second the models read so far, where they said so (the embedded model
    does); None before 200 tokens were measured, or for models that do not say."""
    models = (usage or {}).get("models", {}).values()
    tokens = sum(m.get("input_tokens_evaluated", 0) for m in models if "input_eval_seconds" in m)
    seconds = sum(m.get("input_eval_seconds", 0.0) for m in models)
    return tokens / seconds if tokens >= 200 and seconds > 0 else None


def input_text(counts: dict[str, Any], unit: str = "") -> str:
    """Input tokens as shown: `12,345<unit>`, then ` (3,210 evaluated)` when the model said."""
    text = f"{counts.get('input_tokens', 0):,}{unit}"
    if counts.get("input_tokens_evaluated") is not None:
        text += f" ({counts['input_tokens_evaluated']:,} evaluated)"
    return text


def total_tokens(usage: Usage | None) -> int:
    models = (usage or {}).get("models", {})
    return sum(m["input_tokens"] + m["output_tokens"] for m in models.values())


def total_calls(usage: Usage | None) -> int:
    return sum(m["calls"] for m in (usage or {}).get("models", {}).values())
