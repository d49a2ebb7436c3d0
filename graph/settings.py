"""Run-wide settings: the graph's `context_schema`, read by every node through `runtime.context`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def default_data_dir() -> str:
    """Where runs live by default: `$RLM_DATA_DIR`, else `~/.local/share/rlm-research`."""
    env = os.environ.get("RLM_DATA_DIR")
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "rlm-research")


def default_db_url() -> str | None:
    """`$RLM_DB_URL` when set: also what a LangGraph server's runs use (they build Settings from
    the run's context JSON, without our config layers)."""
    return os.environ.get("RLM_DB_URL", "").strip() or None


@dataclass(kw_only=True)
class Settings:
    """Everything a run needs to know that is not its input.

    `model` / `sub_model` are specs (`local`, `local:0.5b`, `openai:gpt-4o-mini`, a `.gguf`
    path, ...) or, from Python and in tests, a LangChain chat model instance. Models are built
    inside nodes from these, never at import time.
    """

    model: Any = "local"
    sub_model: Any = None  # None: the same as `model`
    base_url: str | None = None
    temperature: float = 0.0
    max_completion_tokens: int = 1024
    request_timeout: float = 120.0  # seconds for one model request
    max_retries: int = 4  # per model request, with backoff, on 429 / 5xx / connection errors

    # Recursion and budgets. Budgets cover the whole call tree, except `max_turns` (per level).
    max_depth: int = 1
    max_turns: int = 12
    max_sub_calls: int = 500
    max_total_tokens: int = 5_000_000
    max_seconds: float = 4 * 3600.0
    max_parallel: int = 16  # sub-calls of one batch that run at once
    # A sub_lm request identical to one this level already had answered (same prompt, same
    # context) takes that answer without a model call: a model that runs its helper code again
    # paid for the same answer each time. Repeats within one batch still go out each on its
    # own. False samples every request anew (votes by repetition).
    reuse_sub_answers: bool = True

    # The REPL.
    cell_timeout: float = 120.0  # seconds of a cell's own work, not counting sub-calls
    # Of a cell's output shown to the model. (A 4,000 cap for the embedded models was tried: the
    # 1.5B model then lost its way on counting tasks it had solved with the 20,000 default.)
    max_output_chars: int = 20_000
    # The REPL worker's limits (docs/sandbox.md): per process, enforced by the OS.
    repl_memory_mb: int = 4096
    repl_cpu_seconds: int = 3600
    repl_processes: int = 256
    repl_file_mb: int = 256
    repl_open_files: int = 256
    # The same code with the same output (or the same error) this many times again earns a hint;
    # two more repeats after the hint end the run.
    stuck_after: int = 1
    # The turns after that hint sample at least this warm (0 keeps temperature as set): at
    # temperature 0 a small model, shown its own loop, still writes the same code again.
    stuck_temperature: float = 0.7
    # Which guards (nodes/guards, docs/guards.md) watch the loop: a preset (default, minimal,
    # off) or guard names separated by commas.
    guards: str = "default"

    # Web research: `web_search` / `fetch_url` in the REPL, called by the host.
    web: bool = False
    web_provider: str = "tavily"  # tavily | brave | searxng
    web_base_url: str | None = None  # the provider's endpoint, e.g. a SearxNG server
    max_web_calls: int = 200  # for the whole call tree
    web_timeout: float = 20.0

    data_dir: str = field(default_factory=default_data_dir)
    # Where runs live: None is `<data_dir>/runs.sqlite` with blobs/ beside it; a SQLite path; or
    # a `postgresql://` URL holding checkpoints, run index and blobs (docs/deployment.md).
    # `data_dir` then keeps only what is local: reports, a blob cache for the REPL worker.
    db_url: str | None = field(default_factory=default_db_url)

    # The trust boundary (docs/security.md). Off for the CLI and the Python API; the MCP server
    # turns it on for every client run. `url_guard`: fetch_url reaches public addresses only;
    # `url_guard_allow`: comma-separated `host:port` it lets through anyway (the operator's
    # `mcp_url_allow_hosts`).
    url_guard: bool = False
    url_guard_allow: str = ""

    def model_for(self, depth: int) -> Any:
        return self.model if depth == 0 or self.sub_model is None else self.sub_model

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
