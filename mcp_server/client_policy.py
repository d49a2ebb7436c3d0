"""The operator's rules for MCP clients (docs/security.md): which options a client may set,
how far, and what its sources may reach.

The operator (who starts the server and owns its keys, files and budget) decides where keys go:
model, sub-model, base URLs, web provider and data folder come from the server's config and
environment only. A client's `options` shape a run (turns, depth, budgets up to the operator's
caps, web on or off if allowed); naming a model is refused unless the operator lists it in
`mcp_allowed_models`. Every client run gets the address guard (`Settings.url_guard`), and its
sources a `SourcePolicy` confined to the allowed roots.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from mcp.server.mcpserver import Context
from rlm_research.graph.config import SECRET_KEYS, Config
from rlm_research.graph.settings import Settings
from rlm_research.mcp_server.failures import ToolFailure
from rlm_research.tools.address_guard import AddressGuard
from rlm_research.tools.source_policy import SourcePolicy, project_store

# What a client may shape; each number at most its cap.
CLIENT_KEYS = (
    "max_depth", "max_turns", "max_sub_calls", "max_total_tokens", "max_seconds",
    "max_parallel", "max_web_calls", "cell_timeout", "max_output_chars",
    "max_completion_tokens", "temperature", "stuck_after", "stuck_temperature", "web",
    "reuse_sub_answers",
)  # fmt: skip
MODEL_KEYS = ("model", "sub_model")
DEFAULT_CAPS: dict[str, float] = {
    "max_depth": 3,
    "max_turns": 100,
    "max_sub_calls": 2_000,
    "max_total_tokens": 20_000_000,
    "max_seconds": 4 * 3600.0,
    "max_parallel": 32,
    "max_web_calls": 500,
    "cell_timeout": 600.0,
    "max_output_chars": 100_000,
    "max_completion_tokens": 16_384,
}
DEFAULT_MAX_QUESTION_CHARS = 50_000
DEFAULT_MAX_SOURCES = 100
_TRUE = {"true", "1", "yes", "on"}
ROOTS_WAIT = 5.0  # seconds to wait for a client's roots/list answer

log = logging.getLogger("rlm_research.mcp")


def _key(raw: Any) -> str:
    return str(raw).strip().replace("-", "_")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # not a number: the config's own check says so


@dataclass(frozen=True)
class ClientPolicy:
    """The operator's keys (`mcp_*`, `source_roots` in graph.config), read for each call."""

    source_roots: tuple[Path, ...]
    allowed_models: tuple[str, ...] = ()
    allow_secret_files: bool = False
    allow_private_urls: bool = False
    url_allow_hosts: tuple[str, ...] = ()
    allow_web: bool = True
    caps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    max_question_chars: int = DEFAULT_MAX_QUESTION_CHARS
    max_sources: int = DEFAULT_MAX_SOURCES
    operator_models: tuple[Any, ...] = ()  # the configured model and sub-model

    @classmethod
    def from_config(cls, values: Mapping[str, Any], settings: Settings) -> ClientPolicy:
        """From the merged config values; `source_roots` defaults to the working folder."""
        roots = values.get("source_roots") or [os.getcwd()]

        def get(key: str, default: Any) -> Any:
            value = values.get(key)
            return default if value is None else value

        return cls(
            source_roots=tuple(dict.fromkeys(Path(r).expanduser().resolve() for r in roots)),
            allowed_models=tuple(m.strip() for m in values.get("mcp_allowed_models") or ()),
            allow_secret_files=bool(get("mcp_allow_secret_files", False)),
            allow_private_urls=bool(get("mcp_allow_private_urls", False)),
            url_allow_hosts=tuple(values.get("mcp_url_allow_hosts") or ()),
            allow_web=bool(get("mcp_allow_web", True)),
            caps={**DEFAULT_CAPS, **(values.get("mcp_option_caps") or {})},
            max_question_chars=int(get("mcp_max_question_chars", DEFAULT_MAX_QUESTION_CHARS)),
            max_sources=int(get("mcp_max_sources", DEFAULT_MAX_SOURCES)),
            operator_models=(settings.model, settings.sub_model),
        )

    # -- options -----------------------------------------------------------------------------
    def check_options(self, options: dict[str, Any] | None) -> dict[str, Any] | None:
        """Refuse what a client may not set; what is left goes on to `options.split_options`
        (which refuses API keys and unknown keys and checks each value)."""
        if not isinstance(options, dict):
            return options
        for raw, value in options.items():
            key = _key(raw)
            if value is None or key.lower() in SECRET_KEYS or key.lower().endswith("_api_key"):
                continue  # unset, or a key: options.split_options refuses keys in its own words
            if key in MODEL_KEYS:
                self._check_model(raw, value)
            elif key == "data_dir":
                raise ToolFailure(
                    f"option {raw!r}: where runs are stored is set when the server starts "
                    "(--db or --config), not per call"
                )
            elif key in CLIENT_KEYS:
                self._check_value(raw, key, value)
            elif key in Config.model_fields or key in Settings.field_names():
                raise ToolFailure(f"option {raw!r}: set by the server's operator, not by a client")
        return options

    def _check_model(self, raw: Any, value: Any) -> None:
        spec = str(value).strip()
        if spec in self.allowed_models or value in self.operator_models:
            return
        allowed = ", ".join(self.allowed_models) or "none"
        raise ToolFailure(
            f"option {raw!r}: this server's operator chooses the model (models a client may "
            f"name: {allowed}; the operator lists them in mcp_allowed_models)"
        )

    def _check_value(self, raw: Any, key: str, value: Any) -> None:
        if key == "web":
            on = value is True or str(value).strip().lower() in _TRUE
            if on and not self.allow_web:
                raise ToolFailure(f"option {raw!r}: this server does not allow web research")
            return
        cap = self.caps.get(key)
        number = _number(value)
        if cap is not None and number is not None and number > cap:
            raise ToolFailure(f"option {raw!r}: at most {cap:g} on this server (got {value!r})")

    # -- input -------------------------------------------------------------------------------
    def check_input(self, question: str, sources: list[str]) -> None:
        if len(question) > self.max_question_chars:
            raise ToolFailure(
                f"the question is too long ({len(question):,} characters; this server takes "
                f"at most {self.max_question_chars:,})"
            )
        if len(sources) > self.max_sources:
            raise ToolFailure(
                f"too many sources ({len(sources):,}; this server takes at most "
                f"{self.max_sources:,} per call: name a folder instead)"
            )
        if not self.allow_web and any(s.strip().lower().startswith("web://") for s in sources):
            raise ToolFailure("source 'web://': this server does not allow web research")

    # -- what a client run may reach ---------------------------------------------------------
    def confine(self, settings: Settings) -> Settings:
        """A client run's settings: the address guard on, web off if not allowed."""
        return dataclasses.replace(
            settings,
            url_guard=not self.allow_private_urls,
            url_guard_allow=",".join(self.url_allow_hosts),
            web=settings.web and self.allow_web,
        )

    def url_guard(self) -> AddressGuard | None:
        return None if self.allow_private_urls else AddressGuard.allowing(self.url_allow_hosts)

    def source_policy(self, db: Path, client_roots: list[Path] | None) -> SourcePolicy:
        """Files under the operator's roots, narrowed to the client's roots when it gave any."""
        return SourcePolicy(
            roots=narrow_roots(self.source_roots, client_roots),
            allow_secrets=self.allow_secret_files,
            protected=project_store(db),
            url_guard=self.url_guard(),
            allow_stdin=False,
        )


def narrow_roots(operator: tuple[Path, ...], client: list[Path] | None) -> tuple[Path, ...]:
    """The parts of the operator's roots that lie in the client's (None: the operator's)."""
    if client is None:
        return operator
    out: list[Path] = []
    for r in operator:
        for c in client:
            if c.is_relative_to(r):
                out.append(c)
            elif r.is_relative_to(c):
                out.append(r)
    return tuple(dict.fromkeys(out))


async def client_roots(ctx: Context) -> list[Path] | None:
    """The client's MCP roots (`roots/list`) as folders, or None when it offers none."""
    caps = ctx.client_capabilities
    if caps is None or caps.roots is None:
        return None
    try:
        with anyio.fail_after(ROOTS_WAIT), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK marks roots deprecated (SEP-2577)
            answer = await ctx.session.list_roots()
    except Exception as e:  # noqa: BLE001 - no answer: the operator's roots alone
        log.info("roots/list failed (%s); using the operator's source roots", e)
        return None
    out = []
    for root in answer.roots:
        parts = urlsplit(str(root.uri))
        if parts.scheme == "file" and parts.path:
            out.append(Path(unquote(parts.path)).resolve())
    return out
