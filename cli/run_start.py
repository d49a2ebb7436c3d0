"""What `rlm-research run` checks before anything starts: the question, the sources, the run id,
the settings and the model. Any problem is a `Failure` (one line, exit 2 for bad usage) raised
before a database row, checkpoint or report exists."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rlm_research.cli.options import RUN_ID_RE, check_models, db_path, with_db
from rlm_research.cli.output import EXIT_USAGE, Failure
from rlm_research.graph import run_index
from rlm_research.graph.config import Loaded
from rlm_research.graph.settings import Settings
from rlm_research.graph.stores import describe

if TYPE_CHECKING:
    from rlm_research.tools.sources import Sources


@dataclass
class PreparedRun:
    settings: Settings
    db_file: Path | str
    sources: Sources
    run_id: str


def prepare_run(
    question: str,
    source: list[str] | None,
    *,
    no_source: bool,
    run_id: str | None,
    db: str | None,
    loaded: Loaded,
) -> PreparedRun:
    if not question.strip():
        raise Failure("the question is empty", EXIT_USAGE)
    if not source and not no_source:
        raise Failure(
            "no source: give --source FILE|FOLDER|URL (or --no-source to ask without one)",
            EXIT_USAGE,
        )
    if run_id is not None and not RUN_ID_RE.fullmatch(run_id):
        raise Failure(
            f"bad --run-id {run_id!r}: use 1-64 letters, digits, '.', '_' or '-'", EXIT_USAGE
        )
    db_file = db_path(db, loaded.settings)
    settings = with_db(loaded.settings, db_file)

    from rlm_research.tools.sources import SourceError, load_sources

    try:
        sources = load_sources(
            source or [], max_bytes=loaded.max_source_bytes, url_timeout=loaded.url_timeout
        )
    except SourceError as e:
        raise Failure(str(e)) from None
    if sources.web:
        settings = dataclasses.replace(settings, web=True)

    rid = run_id or uuid.uuid4().hex[:12]
    if run_index.get_run(db_file, rid) or run_index.has_checkpoints(db_file, rid):
        raise Failure(
            f"run id {rid!r} already exists in {describe(db_file)}; resume it with "
            f"`rlm-research resume {rid}` or choose another id",
            EXIT_USAGE,
        )
    check_models(settings)
    return PreparedRun(settings, db_file, sources, rid)
