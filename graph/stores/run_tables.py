"""The run index's table in each backend: SQLite's `runs` beside the checkpoints, PostgreSQL's
`rlm_runs`. `graph.run_index` writes its SQL once, with `?` placeholders and `{runs}` for the
table; each backend runs one statement per transaction."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

BUSY_TIMEOUT = 30.0

_SQLITE_SCHEMA = """
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


def _add_missing_columns(conn: sqlite3.Connection, key: str) -> None:
    if key in _migrated:
        return
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in _ADDED_COLUMNS:
        if name not in have:
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    _migrated.add(key)


class RunTable(Protocol):
    def exists(self) -> bool:
        """False when the database was never created (nothing to list, nothing to create)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement in its own transaction; the rows it returns."""

    def has_checkpoints(self, run_id: str) -> bool:
        """Whether the checkpointer holds anything for this run (its thread id)."""

    def is_live(self, row: dict[str, Any]) -> bool:
        """Whether the process that marked this row `running` still runs it."""


class SqliteRunTable:
    """Every call opens its own short-lived connection with a busy timeout, so threads and
    processes share the file with the checkpointer (which keeps it in WAL mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            with contextlib.suppress(sqlite3.OperationalError):  # already WAL, or busy: fine
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SQLITE_SCHEMA)
            _add_missing_columns(conn, str(self.path))
            with conn:  # one transaction, committed on success
                return conn.execute(sql.format(runs="runs"), tuple(args)).fetchall()
        finally:
            conn.close()

    def has_checkpoints(self, run_id: str) -> bool:
        if not self.path.exists():
            return False
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT)
        try:
            row = conn.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (run_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # no checkpoints table yet
            return False
        finally:
            conn.close()
        return row is not None

    def is_live(self, row: dict[str, Any]) -> bool:
        """Only a process on this host can be checked: elsewhere, assume it runs."""
        pid, host = row.get("pid"), row.get("host")
        if not pid or host != socket.gethostname() or pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # exists but not ours
            return True
        return True


class PostgresRunTable:
    def __init__(self, url: str) -> None:
        self.url = url

    def exists(self) -> bool:
        return True  # the schema is created on first use

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from rlm_research.graph.stores.postgres import cursor

        statement = sql.format(runs="rlm_runs").replace("?", "%s")
        with cursor(self.url, transaction=True) as cur:
            cur.execute(statement, tuple(args))
            return cur.fetchall() if cur.description else []

    def has_checkpoints(self, run_id: str) -> bool:
        rows = self.execute("SELECT 1 FROM checkpoints WHERE thread_id = ? LIMIT 1", (run_id,))
        return bool(rows)

    def is_live(self, row: dict[str, Any]) -> bool:
        """The process running a run holds its advisory lock; the server drops it with the
        process's connection, so this is right from any host."""
        from rlm_research.graph.stores.postgres import run_is_locked

        return run_is_locked(self.url, row["run_id"])
