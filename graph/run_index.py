"""The run index: one row per run, in the same database as the checkpoints (SQLite's `runs`,
PostgreSQL's `rlm_runs`; `graph.stores` picks the backend from `db`, a path or a URL).

The checkpointer knows threads, not runs: this index is what `rlm-research runs` lists and
`show` / `resume` read: the question, the sources, the settings the run started with (so a
resume uses the same models and budgets), its status, answer, usage and report path.

Status: `running` -> `answered` | `no_answer` | `failed` | `interrupted` (what each means:
`graph.outcome`). A resume that changed settings on purpose appends what it changed to
`overrides`. A row left `running` by a process
that died (kill -9, power loss) is shown as `interrupted` once that process is gone (SQLite: its
pid on this host; PostgreSQL: the run's advisory lock, seen from any host).

Every call is one statement in its own transaction, so threads and processes (and, with
PostgreSQL, hosts) share the index.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import time
from typing import Any

from rlm_research.graph.outcome import STATUSES as STATUSES  # front ends check --status
from rlm_research.graph.outcome import outcome_of
from rlm_research.graph.stores import Db, run_table
from rlm_research.graph.stores.run_tables import RunTable

_COLUMNS = [
    "run_id",
    "question",
    "sources",
    "model",
    "sub_model",
    "settings",
    "status",
    "stop_reason",
    "started",
    "updated",
    "answer",
    "usage",
    "report",
    "error",
    "pid",
    "host",
    "overrides",
]
_SELECTED = ", ".join(_COLUMNS)
_JSON_COLUMNS = ("sources", "settings", "usage", "overrides")


def _label(spec: Any) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        return spec
    try:
        from rlm_research.tools.chat_models import model_label

        return model_label(spec)
    except Exception:  # noqa: BLE001 - a label is only for display
        return type(spec).__name__


def settings_json(settings: Any) -> dict[str, Any] | None:
    """The run's settings as plain JSON; model instances (tests, Python callers) become None,
    which means "give a model on resume"."""
    if settings is None or not dataclasses.is_dataclass(settings):
        return None
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        if f.name == "db_url":  # where runs live is the caller's; a URL may carry a password
            continue
        value = getattr(settings, f.name)
        if isinstance(value, str | int | float | bool) or value is None:
            out[f.name] = value
        else:
            out[f.name] = None
    return out


def describe_context(context: Any) -> list[dict[str, Any]] | None:
    """Source names and sizes, from what the API was given."""
    if context is None:
        return None
    if isinstance(context, dict):
        return [{"name": str(k), "chars": len(str(v))} for k, v in context.items()]
    if isinstance(context, list | tuple):
        return [{"name": f"source_{i + 1}", "chars": len(str(v))} for i, v in enumerate(context)]
    return [{"name": "context", "chars": len(str(context))}]


def record_start(
    db: Db,
    run_id: str,
    *,
    question: str | None = None,
    context: Any = None,
    sources: list[dict[str, Any]] | None = None,
    settings: Any = None,
) -> None:
    """Mark `run_id` running. A new run gets a row; a resumed one keeps what it had (question,
    sources, settings), so a front end may record richer source names before the API does."""
    now = time.time()
    sources = sources if sources is not None else describe_context(context)
    model = _label(getattr(settings, "model", None))
    sub_model = _label(getattr(settings, "sub_model", None))
    stored = settings_json(settings)
    run_table(db).execute(
        """
            INSERT INTO {runs} (run_id, question, sources, model, sub_model, settings, status,
                              started, updated, pid, host)
            VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)
            ON CONFLICT(run_id) DO UPDATE SET
                question  = COALESCE({runs}.question, excluded.question),
                sources   = COALESCE({runs}.sources, excluded.sources),
                model     = COALESCE({runs}.model, excluded.model),
                sub_model = COALESCE({runs}.sub_model, excluded.sub_model),
                settings  = COALESCE({runs}.settings, excluded.settings),
                status    = 'running',
                error     = NULL,
                updated   = excluded.updated,
                pid       = excluded.pid,
                host      = excluded.host
            """,
        (
            run_id,
            question,
            None if sources is None else json.dumps(sources),
            model,
            sub_model,
            None if stored is None else json.dumps(stored),
            now,
            now,
            os.getpid(),
            socket.gethostname(),
        ),
    )


def record_end(
    db: Db,
    run_id: str,
    *,
    result: Any = None,
    error: BaseException | str | None = None,
) -> str:
    """Record how the run ended; returns its status.

    `result` (a RunResult): its outcome (`graph.outcome`) gives the status and, without an
    answer, the one-line reason. `error`: `interrupted` for Ctrl-C, a cancel, or a consumer
    that stopped reading the stream, else `failed` with the message.
    """
    answer = stop_reason = usage = message = None
    if result is not None:
        answer, stop_reason, usage = result.answer, result.stop_reason, result.usage
        status, message = getattr(result, "status", None), getattr(result, "error", None)
        if not status:  # a bare result: the one definition decides
            decided = outcome_of(answer, stop_reason)
            status, message = decided.status, decided.detail
    elif isinstance(error, KeyboardInterrupt | GeneratorExit | asyncio.CancelledError):
        status = "interrupted"
    else:
        status = "failed"
        message = one_line(error) if isinstance(error, BaseException) else str(error or "")
    run_table(db).execute(
        """
            UPDATE {runs} SET status = ?, updated = ?, error = ?,
                answer = COALESCE(?, answer), stop_reason = COALESCE(?, stop_reason),
                usage = COALESCE(?, usage)
            WHERE run_id = ?
            """,
        (
            status,
            time.time(),
            message,
            answer,
            stop_reason,
            None if usage is None else json.dumps(usage),
            run_id,
        ),
    )
    return status


def record_resume(db: Db, run_id: str, settings: Any, changed: dict[str, list[Any]]) -> None:
    """A resume with settings changed on purpose: the run's settings become the new ones (a
    later plain resume keeps them) and `changed` ({key: [before, after]}) is appended to its
    `overrides`."""
    table = run_table(db)
    rows = table.execute("SELECT overrides FROM {runs} WHERE run_id = ?", (run_id,))
    if not rows:
        return
    log = json.loads(rows[0][0]) if rows[0][0] else []
    log.append({"at": time.time(), "changed": changed})
    stored = settings_json(settings)
    table.execute(
        """
        UPDATE {runs} SET settings = ?, model = ?, sub_model = ?, overrides = ?, updated = ?
        WHERE run_id = ?
        """,
        (
            None if stored is None else json.dumps(stored),
            _label(getattr(settings, "model", None)),
            _label(getattr(settings, "sub_model", None)),
            json.dumps(log, default=str),
            time.time(),
            run_id,
        ),
    )


def set_report(db: Db, run_id: str, report_path: str | os.PathLike[str]) -> None:
    run_table(db).execute(
        "UPDATE {runs} SET report = ?, updated = ? WHERE run_id = ?",
        (str(report_path), time.time(), run_id),
    )


def get_run(db: Db, run_id: str) -> dict[str, Any] | None:
    table = run_table(db)
    if not table.exists():
        return None
    rows = table.execute(f"SELECT {_SELECTED} FROM {{runs}} WHERE run_id = ?", (run_id,))
    return _row(rows[0], table) if rows else None


def list_runs(
    db: Db, *, limit: int | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Runs, newest first."""
    table = run_table(db)
    if not table.exists():
        return []
    sql = f"SELECT {_SELECTED} FROM {{runs}}"
    args: list[Any] = []
    if status:
        sql += " WHERE status = ?"
        args.append(status)
    sql += " ORDER BY started DESC, run_id"
    if limit:
        sql += " LIMIT ?"
        args.append(limit)
    runs = [_row(r, table) for r in table.execute(sql, args)]
    if status == "running":  # stale rows read as interrupted
        runs = [r for r in runs if r["status"] == "running"]
    return runs


def has_checkpoints(db: Db, run_id: str) -> bool:
    """Whether the checkpointer holds anything for this run (the run id is the thread id)."""
    return run_table(db).has_checkpoints(run_id)


def _row(row: tuple[Any, ...], table: RunTable) -> dict[str, Any]:
    out = dict(zip(_COLUMNS, row, strict=True))
    for key in _JSON_COLUMNS:
        if out[key] is not None:
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    if out["status"] == "running" and not table.is_live(out):
        out["status"] = "interrupted"
        out["error"] = out["error"] or "the process running it is gone"
    return out


def one_line(error: BaseException) -> str:
    """`Type: message` on one line, at most 300 characters."""
    text = " ".join(str(error).split())
    name = type(error).__name__
    text = f"{name}: {text}" if text else name
    return text[:300] + ("..." if len(text) > 300 else "")
