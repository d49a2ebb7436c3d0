"""The `runs` table: one row per run, in the same SQLite database as the checkpoints.

The checkpointer knows threads, not runs: this index is what `rlm-research runs` lists and
`show` / `resume` read: the question, the sources, the settings the run started with (so a
resume uses the same models and budgets), its status, answer, usage and report path.

Status: `running` -> `answered` | `no_answer` | `failed` | `interrupted` (what each means:
`graph.outcome`). A row left `running` by a process that died (kill -9, power loss) is shown as
`interrupted` once that process is gone. A resume that changed settings on purpose (another
model, a new base URL, a higher budget) appends what it changed to `overrides`.

Every call opens its own short-lived connection with a busy timeout, so threads and processes
can share the database with the checkpointer (which keeps it in WAL mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlm_research.graph.outcome import STATUSES as STATUSES  # front ends check --status
from rlm_research.graph.outcome import outcome_of

BUSY_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    question    TEXT,
    sources     TEXT,     -- JSON [{"name": ..., "chars": ...}]
    model       TEXT,
    sub_model   TEXT,
    settings    TEXT,     -- JSON of the run's Settings (str-valued models only)
    status      TEXT NOT NULL,
    stop_reason TEXT,
    started     REAL NOT NULL,
    updated     REAL NOT NULL,
    answer      TEXT,
    usage       TEXT,     -- JSON, the whole tree per model
    report      TEXT,     -- path of the markdown report
    error       TEXT,
    pid         INTEGER,  -- the process that last ran it, to spot runs left `running` by a crash
    host        TEXT,
    overrides   TEXT      -- JSON [{"at": ..., "changed": {key: [before, after]}}], one per resume
)
"""
# Databases made before a column existed get it added (name, SQL type).
_ADDED_COLUMNS = (("overrides", "TEXT"),)
_migrated: set[str] = set()
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
_JSON_COLUMNS = ("sources", "settings", "usage", "overrides")


@contextlib.contextmanager
def _connect(db_path: str | Path) -> Iterator[sqlite3.Connection]:
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        with contextlib.suppress(sqlite3.OperationalError):  # already WAL, or busy: either is fine
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        _add_missing_columns(conn, str(path))
        with conn:  # one transaction, committed on success
            yield conn
    finally:
        conn.close()


def _add_missing_columns(conn: sqlite3.Connection, key: str) -> None:
    if key in _migrated:
        return
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in _ADDED_COLUMNS:
        if name not in have:
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    _migrated.add(key)


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
    db_path: str | Path,
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
    with _connect(db_path) as conn:
        conn.execute(
            """
            INSERT INTO runs (run_id, question, sources, model, sub_model, settings, status,
                              started, updated, pid, host)
            VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)
            ON CONFLICT(run_id) DO UPDATE SET
                question  = COALESCE(runs.question, excluded.question),
                sources   = COALESCE(runs.sources, excluded.sources),
                model     = COALESCE(runs.model, excluded.model),
                sub_model = COALESCE(runs.sub_model, excluded.sub_model),
                settings  = COALESCE(runs.settings, excluded.settings),
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
    db_path: str | Path,
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
    with _connect(db_path) as conn:
        conn.execute(
            """
            UPDATE runs SET status = ?, updated = ?, error = ?,
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


def record_resume(
    db_path: str | Path, run_id: str, settings: Any, changed: dict[str, list[Any]]
) -> None:
    """A resume with settings changed on purpose: the run's settings become the new ones (a
    later plain resume keeps them) and `changed` ({key: [before, after]}) is appended to its
    `overrides`."""
    stored = settings_json(settings)
    with _connect(db_path) as conn:
        row = conn.execute("SELECT overrides FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return
        log = json.loads(row[0]) if row[0] else []
        log.append({"at": time.time(), "changed": changed})
        conn.execute(
            """
            UPDATE runs SET settings = ?, model = ?, sub_model = ?, overrides = ?, updated = ?
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


def set_report(db_path: str | Path, run_id: str, report_path: str | Path) -> None:
    with _connect(db_path) as conn:
        conn.execute(
            "UPDATE runs SET report = ?, updated = ? WHERE run_id = ?",
            (str(report_path), time.time(), run_id),
        )


def get_run(db_path: str | Path, run_id: str) -> dict[str, Any] | None:
    if not Path(db_path).exists():
        return None
    with _connect(db_path) as conn:
        row = conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
    return None if row is None else _row(row)


def list_runs(
    db_path: str | Path, *, limit: int | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Runs, newest first."""
    if not Path(db_path).exists():
        return []
    sql = f"SELECT {', '.join(_COLUMNS)} FROM runs"
    args: list[Any] = []
    if status:
        sql += " WHERE status = ?"
        args.append(status)
    sql += " ORDER BY started DESC, run_id"
    if limit:
        sql += " LIMIT ?"
        args.append(limit)
    with _connect(db_path) as conn:
        rows = conn.execute(sql, args).fetchall()
    runs = [_row(r) for r in rows]
    if status == "running":  # stale rows read as interrupted
        runs = [r for r in runs if r["status"] == "running"]
    return runs


def has_checkpoints(db_path: str | Path, run_id: str) -> bool:
    """Whether the checkpointer holds anything for this run (the run id is the thread id)."""
    if not Path(db_path).exists():
        return False
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT)
    try:
        row = conn.execute(
            "SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (run_id,)
        ).fetchone()
    except sqlite3.OperationalError:  # no checkpoints table yet
        return False
    finally:
        conn.close()
    return row is not None


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(_COLUMNS, row, strict=True))
    for key in _JSON_COLUMNS:
        if out[key] is not None:
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    if out["status"] == "running" and _is_stale(out.get("pid"), out.get("host")):
        out["status"] = "interrupted"
        out["error"] = out["error"] or "the process running it is gone"
    return out


def _is_stale(pid: int | None, host: str | None) -> bool:
    if not pid or host != socket.gethostname():
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but not ours
        return False
    return False


def one_line(error: BaseException) -> str:
    """`Type: message` on one line, at most 300 characters."""
    text = " ".join(str(error).split())
    name = type(error).__name__
    text = f"{name}: {text}" if text else name
    return text[:300] + ("..." if len(text) > 300 else "")
