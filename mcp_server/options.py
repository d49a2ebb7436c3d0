"""Checking what a call passes in: its `options` (settings for one run) and run ids."""

from __future__ import annotations

import functools
import re
from typing import Any, get_type_hints

from pydantic import TypeAdapter, ValidationError
from rlm_research.graph.config import SECRET_KEYS, Config
from rlm_research.graph.settings import Settings
from rlm_research.mcp_server.client_policy import CLIENT_KEYS, MODEL_KEYS
from rlm_research.mcp_server.failures import ToolFailure

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Keys a call may not change: where runs live is the server's (--db / --config), so that
# list_runs, get_report and resume_research find every run it started.
SERVER_ONLY = {"data_dir", "db_url"}
# What resume_research may change (the CLI's `resume` allows the same): a run keeps its budgets.
RESUME_KEYS = ("model", "sub_model")  # a model the operator allows (client_policy)
# Settings with no config key (none today: graph.config declares every Settings field), checked
# here from Settings' own types, so a new setting is usable as an option either way.
EXTRA_KEYS = tuple(k for k in Settings.field_names() if k not in Config.model_fields)
# What a client may set at all (the operator's rules: mcp_server.client_policy).
OPTION_KEYS = (*MODEL_KEYS, *CLIENT_KEYS)


def check_run_id(run_id: str) -> str:
    run_id = (run_id or "").strip()
    if not RUN_ID_RE.fullmatch(run_id):
        raise ToolFailure(f"bad run id {run_id!r}: 1-64 letters, digits, '.', '_' or '-'")
    return run_id


def flag_to_option(message: str, keys: list[str]) -> str:
    """graph.config names a flag `--max-depth`; a call names it `option 'max_depth'`."""
    for key in keys:
        flag = f"--{key.replace('_', '-')}"
        if message.startswith(flag + ":"):
            return f"option {key!r}" + message[len(flag) :]
    return message


def split_options(
    options: dict[str, Any] | None, allowed: tuple[str, ...] = OPTION_KEYS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a call's `options`: (config keys for graph.config, validated extra Settings keys)."""
    if options is None:
        return {}, {}
    if not isinstance(options, dict):
        raise ToolFailure(f"options must be an object of settings, got {type(options).__name__}")
    flags: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for raw, value in options.items():
        key = str(raw).strip().replace("-", "_")
        if key.lower() in SECRET_KEYS or key.lower().endswith("_api_key"):
            raise ToolFailure(
                f"option {raw!r}: API keys are not options; set RLM_API_KEY or the provider's "
                "variable (OPENAI_API_KEY, ...) in the server's environment"
            )
        if key in SERVER_ONLY:
            raise ToolFailure(
                f"option {raw!r}: where runs are stored is set when the server starts "
                "(--db or --config), not per call"
            )
        if key not in allowed:
            if key in OPTION_KEYS:  # a setting, but not one this call may change
                raise ToolFailure(f"option {raw!r}: only {', '.join(allowed)} may change here")
            raise ToolFailure(f"option {raw!r}: unknown option (known: {', '.join(allowed)})")
        if value is None:
            continue  # unset: the config file / environment decide
        if key in EXTRA_KEYS:
            extra[key] = _check_extra(key, value)
        else:
            flags[key] = value
    return flags, extra


@functools.cache
def _settings_types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _check_extra(key: str, value: Any) -> Any:
    try:
        checked = TypeAdapter(_settings_types()[key]).validate_python(value)
    except ValidationError as e:
        msg = e.errors()[0].get("msg", "invalid value")
        raise ToolFailure(f"option {key!r}: {msg} (got {value!r})") from None
    problem = None
    if key == "web_provider":
        from rlm_research.tools.web_search import PROVIDERS

        checked = checked.strip().lower()
        if checked not in PROVIDERS:
            problem = f"use one of {', '.join(PROVIDERS)}"
    elif key.endswith("_url") and checked and not checked.startswith(("http://", "https://")):
        problem = "must start with http:// or https://"
    elif isinstance(checked, float) and checked <= 0:
        problem = "must be positive"
    elif isinstance(checked, int) and not isinstance(checked, bool) and checked < 0:
        problem = "must be >= 0"
    if problem:
        raise ToolFailure(f"option {key!r}: {problem} (got {value!r})")
    return checked
