"""The options the commands share, and how flags, config and --db resolve to the settings, the
run database and reachable models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rlm_research.cli.output import EXIT_USAGE, Failure
from rlm_research.graph.config import ConfigError, Loaded, load_config
from rlm_research.graph.settings import Settings
from rlm_research.graph.stores import DatabaseUnavailable, check_db_url, check_reachable, locate

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The run database: a SQLite file (its folder also holds blobs/ and reports/), or a "
        "postgresql://user@host/dbname URL shared by every host (see docs/deployment.md). "
        "Default: db_url from the config or RLM_DB_URL, else <data_dir>/runs.sqlite.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout instead of text.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A YAML config file to use instead of ./rlm-research.yaml or the user config.",
        dir_okay=False,
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress output, just the result.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Root model: local, local:0.5b, a .gguf path, openai:<name>, openrouter:<name>, "
        "anthropic:<name>, ... Default: local.",
    ),
]
SubModelOpt = Annotated[
    str | None,
    typer.Option("--sub-model", help="Model for sub_lm() calls. Default: the root model."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible server for openai:<name> models, e.g. http://localhost:8000/v1.",
    ),
]


def resolve_config(flags: dict[str, Any], config_file: Path | None) -> Loaded:
    try:
        return load_config(flags, config_file=config_file)
    except ConfigError as e:
        raise Failure(str(e), EXIT_USAGE) from None


def db_path(db: str | None, settings: Settings) -> Path | str:
    """The run database: --db, else the settings' db_url, else <data_dir>/runs.sqlite; a Path
    (SQLite) or a postgresql:// URL."""
    if db is not None:
        try:
            db = check_db_url(db)
        except ValueError as e:
            raise Failure(f"--db: {e}", EXIT_USAGE) from None
    target = locate(settings, db)[1]
    try:
        check_reachable(target)
    except DatabaseUnavailable as e:
        raise Failure(str(e)) from None
    return target


def with_db(settings: Settings, db: Path | str, data_dir: str | None = None) -> Settings:
    """Settings that point at `db`. SQLite: blobs/ and reports/ beside the file (as graph.api
    does); PostgreSQL: reports in `data_dir` (default: the settings'), this host's folder."""
    return locate(settings, db, data_dir=data_dir)[0]


def check_models(settings: Settings) -> None:
    from rlm_research.graph.run_errors import RunSetupError
    from rlm_research.graph.run_lifecycle import check_models as reachable

    try:
        reachable(settings)
    except RunSetupError as e:
        raise Failure(str(e)) from None


def model_label(spec: Any) -> str | None:
    if spec is None:
        return None
    try:
        from rlm_research.tools.chat_models import model_label as chat_model_label

        return chat_model_label(spec)
    except Exception:  # noqa: BLE001 - only for display
        return str(spec)
