"""One run's life, below every front end: start it, find the settings a resume runs with, decide
its outcome, record it in the run index, write its report and trajectory.

The CLI, the Python API (sync and async) and the MCP server call these and only read their
input and present the result, so a run has the same status, answer, report and usage whichever
front end started or resumed it. The graph itself is driven by `graph.api` (sync or async);
these functions are the steps around it, all blocking and short (SQLite, files).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlm_research.graph import run_index, stores
from rlm_research.graph.blob_store import BlobStore
from rlm_research.graph.config import ConfigError, read_flags
from rlm_research.graph.outcome import outcome_of
from rlm_research.graph.run_errors import RunSetupError
from rlm_research.graph.run_result import RunResult
from rlm_research.graph.settings import Settings
from rlm_research.graph.stores import Db

log = logging.getLogger("rlm_research.run")

RECURSION_LIMIT = 100_000  # budgets end runs; LangGraph's step cap should never be what stops one
MODEL_KEYS = ("model", "sub_model")
NOT_COMPARED = ("data_dir", "db_url")  # where the database lives is not a setting of the run


@dataclass
class ActiveRun:
    """A run about to be driven through the graph: new (`inputs` set) or resumed (None)."""

    run_id: str
    db: Db
    settings: Settings
    inputs: dict[str, Any] | None
    question: str  # for the report
    sources: list[dict[str, Any]] | None


def locate(settings: Settings | None, db_path: Db | None) -> tuple[Settings, Db]:
    """The run's database (`graph.stores`): a SQLite file, whose folder holds blobs/ and
    reports/, or a PostgreSQL URL, with the local data folder keeping reports and a blob cache."""
    return stores.locate(settings or Settings(), db_path)


def start_run(
    question: str,
    context: Any = None,
    *,
    settings: Settings | None = None,
    run_id: str | None = None,
    db_path: Db | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> ActiveRun:
    """A new run: its context into the blob store, its row in the run index (`running`)."""
    from rlm_research.nodes.level_start import ingest_context

    settings, db = locate(settings, db_path)
    run_id = run_id or uuid.uuid4().hex[:12]
    # Into the blob store first: a context passed in the input would be copied into the
    # first checkpoints (the input write and step -1), three times for a 40 MB text.
    store = stores.open_blob_store(settings)
    inputs = {"question": question, "context_refs": ingest_context(context, store)}
    run_index.record_start(
        db, run_id, question=question, context=context, sources=sources, settings=settings
    )
    described = sources or run_index.describe_context(context)
    return ActiveRun(run_id, db, settings, inputs, question, described)


def resume_settings(
    run_id: str,
    *,
    db_path: Db | None = None,
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    fallback: Settings | None = None,
) -> tuple[Settings, Path, dict[str, list[Any]]]:
    """The settings a resume runs with: the run's stored settings, then `settings` (a whole
    Settings, given on purpose) or `overrides` (some keys: another model, a new base URL, a
    higher budget). Returns (settings, database, what changed as {key: [before, after]}).
    A run with no stored settings (older, or started elsewhere) takes `settings`, else
    `fallback` (the front end's config), else the defaults."""
    base, db = locate(settings or fallback, db_path)
    if not run_index.has_checkpoints(db, run_id):
        raise RunSetupError(f"no run {run_id!r} to resume in {stores.describe(db)}")
    stored = (run_index.get_run(db, run_id) or {}).get("settings")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if settings is not None:
        chosen = settings
    elif stored:
        chosen = _with_values(Settings(), {k: v for k, v in stored.items() if v is not None})
        if stored.get("model") is None and "model" not in given:
            raise RunSetupError(
                f"run {run_id} was started with a model object from Python; give a model",
                usage=True,
            )
    else:
        chosen = base
    chosen = _with_values(chosen, _checked(given))
    # This host's own data folder (PostgreSQL: the run may have started on another host).
    chosen, _ = stores.locate(chosen, db, data_dir=base.data_dir)
    return chosen, db, _changes(stored, chosen) if stored else _given(given)


def _checked(given: dict[str, Any]) -> dict[str, Any]:
    """Override values validated as config values are; model objects (Python) pass as they are."""
    objects = {k: v for k, v in given.items() if k in MODEL_KEYS and not isinstance(v, str)}
    unknown = [k for k in given if k not in Settings.field_names()]
    if unknown:
        raise RunSetupError(f"unknown setting {unknown[0]!r} to override", usage=True)
    try:
        checked = read_flags({k: v for k, v in given.items() if k not in objects})
    except ConfigError as e:
        raise RunSetupError(str(e), usage=True) from None
    return {**checked, **objects}


def _with_values(settings: Settings, values: dict[str, Any]) -> Settings:
    known = set(Settings.field_names())
    return dataclasses.replace(settings, **{k: v for k, v in values.items() if k in known})


def _changes(stored: dict[str, Any], settings: Settings) -> dict[str, list[Any]]:
    now = _comparable(settings)
    return {
        k: [stored.get(k), v]
        for k, v in now.items()
        if k not in NOT_COMPARED and stored.get(k) != v and not (k in MODEL_KEYS and v is None)
    }


def _given(given: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [None, _label(v)] for k, v in given.items()}


def _comparable(settings: Settings) -> dict[str, Any]:
    out = run_index.settings_json(settings) or {}
    for key in MODEL_KEYS:
        out[key] = _label(getattr(settings, key))
    return out


def _label(spec: Any) -> Any:
    if spec is None or isinstance(spec, str | int | float | bool):
        return spec
    from rlm_research.tools.chat_models import model_label

    try:
        return model_label(spec)
    except Exception:  # noqa: BLE001 - a label is only for the record
        return type(spec).__name__


def start_resume(
    run_id: str,
    *,
    db_path: Db | None = None,
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    fallback: Settings | None = None,
) -> ActiveRun:
    """A resumed run: its settings (see `resume_settings`), any change recorded in the run
    index, and its row marked `running` again."""
    settings, db, changed = resume_settings(
        run_id, db_path=db_path, settings=settings, overrides=overrides, fallback=fallback
    )
    run_index.record_start(db, run_id, settings=settings)
    if changed:
        run_index.record_resume(db, run_id, settings, changed)
        log.info("run %s resumed with changed settings: %s", run_id, changed)
    row = run_index.get_run(db, run_id) or {}
    return ActiveRun(run_id, db, settings, None, row.get("question") or "", row.get("sources"))


def check_models(settings: Settings) -> None:
    """The models can be reached (a hosted model's key is set, a local file exists...)."""
    from rlm_research.tools.chat_models import ModelConfigError, check_models_reachable

    try:
        check_models_reachable(settings.model, settings.sub_model, base_url=settings.base_url)
    except ModelConfigError as e:
        raise RunSetupError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - e.g. a local weights loader's own error
        raise RunSetupError(f"model {_label(settings.model)}: {run_index.one_line(e)}") from None


def graph_config(run: ActiveRun) -> dict[str, Any]:
    return {
        "configurable": {"thread_id": run.run_id},
        "recursion_limit": RECURSION_LIMIT,
        # LangGraph runs a step's Send tasks on a pool of min(32, cores + 4) threads unless told:
        # 6 here, which made a batch of 16 take three rounds instead of one. `execute` sends at
        # most `max_parallel` at once; the two spare threads are for LangGraph's own background
        # checkpoint writes (with a pool of one, a task waited on a write queued behind itself).
        "max_concurrency": max(1, run.settings.max_parallel) + 2,
    }


def result_of(run_id: str, values: dict[str, Any], settings: Settings) -> RunResult:
    """The run's result from its root state, its outcome decided by `graph.outcome`."""
    store = stores.open_blob_store(settings)
    tree = values.get("call_tree") or {}
    outcome = outcome_of(values.get("answer"), values.get("stop_reason"))
    return RunResult(
        run_id=run_id,
        answer=outcome.answer,
        stop_reason=values.get("stop_reason") or "unfinished",
        usage=values.get("usage") or {},
        call_tree=tree,
        trajectory=list(trajectory_of(tree, store)),
        status=outcome.status,
        error=outcome.detail if not outcome.answered else None,
        unaccepted=outcome.unaccepted,
    )


def trajectory_of(tree: dict[str, Any], store: BlobStore) -> Any:
    """Every turn of the run, depth first: a level's turns, then its children's."""
    for ref in tree.get("trajectory", []):
        yield store.get_json(ref)
    for child in tree.get("children", []):
        yield from trajectory_of(child, store)


def finish_run(run: ActiveRun, values: dict[str, Any]) -> RunResult:
    """The graph reached its end: decide the outcome, record it, write the report."""
    result = result_of(run.run_id, values, run.settings)
    run_index.record_end(run.db, run.run_id, result=result)
    write_run_report(run, result)
    return result


def stop_run(run: ActiveRun, error: BaseException, *, abandoned: bool = False) -> None:
    """The graph stopped early: `interrupted` (Ctrl-C, a cancel, a closed stream) or `failed`.
    `abandoned`: the graph did not wait for its tasks in flight (an async cancel): see
    `stop_root_worker`."""
    try:
        run_index.record_end(run.db, run.run_id, error=error)
    except Exception as e:  # noqa: BLE001 - never mask the error that stopped the run
        log.warning("run %s: could not record how it stopped: %s", run.run_id, e)
    if abandoned:
        stop_root_worker(run)


def stop_root_worker(run: ActiveRun) -> None:
    """After an async cancel LangGraph does not wait for sync nodes still running in threads: a
    cell may go on in the root's REPL worker. Stopping that worker ends it, and a resume (even
    at once, in this process) rebuilds the REPL from its last snapshot and journal, as after a
    crash, instead of sharing a worker with the abandoned cell."""
    from rlm_research.graph.builder import builder
    from rlm_research.graph.checkpoints import checkpointer
    from rlm_research.tools.repl_host import stop_worker

    try:
        with checkpointer(run.db) as saver:
            config = {"configurable": {"thread_id": run.run_id}}
            level = builder.compile(checkpointer=saver).get_state(config).values.get("level_id")
        if level:
            stop_worker(level)
    except Exception as e:  # noqa: BLE001 - bookkeeping must not mask the cancel
        log.warning("run %s: could not stop its REPL worker: %s", run.run_id, e)


def mark_interrupted(db: Db, run_id: str) -> None:
    """For a front end leaving at once (a second Ctrl-C, a server shutting down) while the graph
    is still in a step: say `interrupted` now; the stream says it again when it stops."""
    stop_run(ActiveRun(run_id, db, Settings(), None, "", None), KeyboardInterrupt())


def write_run_report(run: ActiveRun, result: RunResult) -> None:
    """`<data_dir>/reports/<run_id>.md` and `.jsonl`; their paths go into the result and the
    run index. A report that cannot be written is logged, not fatal: the answer is recorded."""
    from rlm_research.report.markdown import write_report

    try:
        md_path, jsonl_path = write_report(
            result,
            data_dir=run.settings.data_dir,
            question=run.question,
            status=result.status,
            sources=run.sources,
            models={key: _label(getattr(run.settings, key)) for key in MODEL_KEYS},
            error=result.error,
            sandbox=sandbox_description(),
            store=stores.open_blob_store(run.settings),
            db_path=run.db,
        )
    except OSError as e:
        log.warning("run %s: could not write its report: %s", run.run_id, e)
        return
    run_index.set_report(run.db, run.run_id, md_path)
    result.report, result.trajectory_file = str(md_path), str(jsonl_path)


def sandbox_description() -> str | None:
    """How this process ran REPL workers (bwrap or plain), for the report."""
    try:
        from rlm_research.tools.sandbox import sandbox_mode

        mode = sandbox_mode()
    except Exception:  # noqa: BLE001 - absent or misconfigured: the report just omits it
        return None
    return mode + ("" if mode == "bwrap" else " (reduced isolation: no bwrap)")
