"""User-facing configuration: a YAML file, then `RLM_*` environment variables, then CLI flags.

Precedence, lowest first:

1. built-in defaults (`graph.settings.Settings`, plus `max_source_bytes` / `url_timeout` here);
2. one YAML file: `--config FILE` (or `$RLM_CONFIG`) if given, else `./rlm-research.yaml`, else
   `$XDG_CONFIG_HOME/rlm-research/config.yaml` (default `~/.config/rlm-research/config.yaml`);
3. environment variables `RLM_<KEY>` for each key, e.g. `RLM_MODEL`, `RLM_MAX_DEPTH`,
   `RLM_DATA_DIR` (other `RLM_*` variables, such as `RLM_API_KEY`, are not settings);
4. CLI flags.

Every value is validated with pydantic; an unknown key or a bad value raises `ConfigError` whose
one-line message names the key and where it came from (the file, the variable or the flag).

The default model is `local`, the embedded model, even when `OPENAI_API_KEY` (or another
provider's key) is set: a run never starts spending on a hosted API unless a model was chosen
(`--model`, `RLM_MODEL` or `model:` in the config file). API keys are never settings: they come
from the provider's usual variable (`OPENAI_API_KEY`, ...) or `RLM_API_KEY`, read by
`tools.chat_models`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)
from rlm_research.graph.settings import Settings

LOCAL_FILE = "rlm-research.yaml"
DEFAULT_MAX_SOURCE_BYTES = 100 * 1024 * 1024
SECRET_KEYS = {"api_key", "openai_api_key", "key", "token", "password", "secret"}


class ConfigError(Exception):
    """A bad config file, environment variable or flag; the message is one line."""


class _DeclaredConfig(BaseModel):
    """The keys a config file may set (each also an `RLM_<KEY>` variable and mostly a flag).

    Every key is optional here: an unset key falls through to the next layer down. Keys with
    extra checks are declared here; every other `Settings` field is added below with its type.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(None, description="root model spec: local, openai:gpt-4o-mini, ...")
    sub_model: str | None = Field(None, description="model for sub-calls (default: model)")
    base_url: str | None = Field(None, description="OpenAI-compatible server URL")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_completion_tokens: int | None = Field(None, ge=1)
    max_depth: int | None = Field(None, ge=0, le=10)
    max_turns: int | None = Field(None, ge=1)
    max_sub_calls: int | None = Field(None, ge=0)
    max_total_tokens: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    max_parallel: int | None = Field(None, ge=1)
    reuse_sub_answers: bool | None = Field(
        None, description="answer a repeated sub_lm request from the level's earlier answer"
    )
    cell_timeout: float | None = Field(None, gt=0)
    max_output_chars: int | None = Field(None, ge=100)
    stuck_after: int | None = Field(None, ge=1)
    stuck_temperature: float | None = Field(None, ge=0.0, le=2.0)
    guards: str | None = Field(None, description="guard preset or names (docs/guards.md)")
    data_dir: str | None = None
    db_url: str | None = Field(
        None, description="run database: a SQLite path or postgresql://user@host/db"
    )
    # CLI-only keys (not run settings).
    max_source_bytes: int | None = Field(None, ge=1, description="size limit of each source")
    url_timeout: float | None = Field(None, gt=0, description="seconds to fetch a URL source")
    # The MCP server operator's keys (docs/security.md): what its clients may do. Not run
    # settings; a client can set none of them. Lists also read as comma-separated variables.
    mcp_allowed_models: list[str] | None = Field(None, description="models clients may name")
    source_roots: list[str] | None = Field(None, description="folders client sources lie under")
    mcp_allow_secret_files: bool | None = Field(None, description="hidden/key files readable")
    mcp_allow_private_urls: bool | None = Field(None, description="clients reach private hosts")
    mcp_url_allow_hosts: list[str] | None = Field(None, description="host:port treated as public")
    mcp_allow_web: bool | None = Field(None, description="clients may turn web research on")
    mcp_option_caps: dict[str, float] | None = Field(None, description="highest client budgets")
    mcp_max_question_chars: int | None = Field(None, ge=1)
    mcp_max_sources: int | None = Field(None, ge=0)

    @field_validator("mcp_allowed_models", "source_roots", "mcp_url_allow_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("mcp_option_caps", mode="before")
    @classmethod
    def _json_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):  # from RLM_MCP_OPTION_CAPS
            import json

            try:
                return json.loads(value)
            except ValueError:
                raise ValueError('must be a mapping, e.g. {"max_depth": 2}') from None
        return value

    @field_validator("model", "sub_model")
    @classmethod
    def _known_model_form(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from rlm_research.tools.chat_models import ModelConfigError, parse_spec

        try:
            parse_spec(value)
        except ModelConfigError as e:
            raise ValueError(str(e)) from None
        return value.strip()

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from rlm_research.nodes.guards import enabled

        enabled(value)  # raises ValueError naming the unknown guard
        return ",".join(p.strip() for p in value.split(",") if p.strip())

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, value: str | None) -> str | None:
        from rlm_research.graph.stores import check_db_url

        return None if value is None else check_db_url(value)

    @classmethod
    def key_names(cls) -> list[str]:
        return list(cls.model_fields)


def _settings_fields() -> dict[str, Any]:
    """Settings fields not declared above (web research, sandbox limits, ...), typed from the
    dataclass, so a new run setting is configurable without touching this file."""
    hints = get_type_hints(Settings)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if f.name in _DeclaredConfig.model_fields or hints.get(f.name, Any) is Any:
            continue
        try:
            TypeAdapter(hints[f.name])  # a type pydantic cannot check is left out
        except Exception:  # noqa: BLE001
            continue
        out[f.name] = (hints[f.name] | None, None)
    return out


Config = create_model("Config", __base__=_DeclaredConfig, **_settings_fields())


@dataclass(frozen=True)
class Loaded:
    """The merged configuration: run settings, CLI-only values and where the file came from."""

    settings: Settings
    max_source_bytes: int
    url_timeout: float
    file: Path | None
    values: dict[str, Any]  # every key that was set, after merging


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rlm-research" / "config.yaml"


def find_config_file(explicit: str | Path | None = None) -> Path | None:
    """The one YAML file in use: explicit, `$RLM_CONFIG`, `./rlm-research.yaml`, the user's."""
    chosen = explicit or os.environ.get("RLM_CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            where = "--config" if explicit else "RLM_CONFIG"
            raise ConfigError(f"config file {path} (from {where}) does not exist")
        return path
    for path in (Path.cwd() / LOCAL_FILE, user_config_path()):
        if path.is_file():
            return path
    return None


def read_file(path: Path) -> dict[str, Any]:
    """The validated keys a YAML file sets; relative `data_dir` is taken from the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e.__class__.__name__}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of keys to values, got {type(data).__name__}")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    values = _validate(data, lambda key: f"{path}: key '{key}'")
    if values.get("data_dir"):
        d = Path(values["data_dir"]).expanduser()
        values["data_dir"] = str(d if d.is_absolute() else (path.parent / d).resolve())
    if values.get("source_roots"):
        roots = [Path(r).expanduser() for r in values["source_roots"]]
        values["source_roots"] = [str(r if r.is_absolute() else path.parent / r) for r in roots]
    return values


def read_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Keys set by `RLM_<KEY>` variables; an empty variable counts as unset."""
    environ = os.environ if environ is None else environ
    raw = {}
    for key in Config.key_names():
        value = environ.get(f"RLM_{key.upper()}")
        if value is not None and value.strip() != "":
            raw[key] = value.strip()
    return _validate(raw, lambda key: f"environment variable RLM_{key.upper()}")


def read_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """Keys given as CLI flags (None: not given)."""
    raw = {k: v for k, v in flags.items() if v is not None}
    return _validate(raw, lambda key: f"--{key.replace('_', '-')}")


def _validate(raw: dict[str, Any], where: Any) -> dict[str, Any]:
    for key in raw:
        if key.lower() in SECRET_KEYS or key.lower().endswith("_api_key"):
            raise ConfigError(
                f"{where(key)}: API keys are not settings; set RLM_API_KEY or the provider's "
                "variable (OPENAI_API_KEY, ...) in the environment"
            )
    unknown = [k for k in raw if k not in Config.model_fields]
    if unknown:
        known = ", ".join(Config.key_names())
        raise ConfigError(f"{where(unknown[0])}: unknown key (known keys: {known})")
    try:
        parsed = Config(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err.get("loc") else "?"
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        got = raw.get(key)
        if key == "db_url" and isinstance(got, str):  # never echo a database password
            from rlm_research.graph.stores import describe

            got = describe(got)
        raise ConfigError(f"{where(key)}: {msg} (got {got!r})") from None
    return {k: v for k, v in parsed.model_dump().items() if k in raw}


def load_config(
    flags: dict[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: dict[str, str] | None = None,
    use_files: bool = True,
) -> Loaded:
    """Merge file < environment < flags into `Settings` (see the module docstring)."""
    path = find_config_file(config_file) if use_files or config_file else None
    merged: dict[str, Any] = {}
    if path is not None:
        merged.update(read_file(path))
    merged.update(read_env(environ))
    merged.update(read_flags(flags or {}))
    run_keys = set(Settings.field_names())
    settings = Settings(**{k: v for k, v in merged.items() if k in run_keys})
    settings.data_dir = str(Path(settings.data_dir).expanduser())
    return Loaded(
        settings=settings,
        max_source_bytes=merged.get("max_source_bytes") or DEFAULT_MAX_SOURCE_BYTES,
        url_timeout=merged.get("url_timeout") or 30.0,
        file=path,
        values=merged,
    )
