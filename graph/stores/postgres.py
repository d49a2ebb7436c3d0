"""PostgreSQL: one connection pool per database per process, and the schema, created and
migrated on first use.

The pool's connections are set up as LangGraph's PostgresSaver requires (autocommit, no prepared
statements, dict rows), so the checkpointer, the run index and the blob store share it. A
thread borrows a connection for one statement or one transaction and never holds one while it
waits for another, so a full pool makes threads wait, never deadlock.

Our tables carry an `rlm_` prefix (a database may also hold LangGraph server's own tables) and
a schema version; `ensure_schema` runs LangGraph's migrations and ours under an advisory lock,
so processes starting at once on an empty database do not race.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool
from rlm_research.graph.stores.errors import DatabaseUnavailable, RunInProgress, describe

CONNECT_TIMEOUT = 10  # seconds
POOL_MAX = 16  # per process; PostgreSQL's default max_connections is 100
CONNECT_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "prepare_threshold": 0,
    "row_factory": dict_row,
}
_LOCK_KEY = 0x726C6D5F  # "rlm_": the advisory lock held while creating or migrating tables
_RUN_LOCK_CLASS = 0x726C6D52  # "rlmR": first key of the lock a process holds while it runs a run

# Each entry upgrades the schema by one version (ours; LangGraph migrates its own tables):
# statements separated by ";" (one execute each: the pool's connections prepare every statement).
MIGRATIONS = [
    """
    CREATE TABLE rlm_runs (
        run_id      TEXT PRIMARY KEY,
        question    TEXT,
        sources     TEXT,
        model       TEXT,
        sub_model   TEXT,
        settings    TEXT,
        status      TEXT NOT NULL,
        stop_reason TEXT,
        started     DOUBLE PRECISION NOT NULL,
        updated     DOUBLE PRECISION NOT NULL,
        answer      TEXT,
        usage       TEXT,
        report      TEXT,
        error       TEXT,
        pid         INTEGER,
        host        TEXT
    );
    CREATE INDEX rlm_runs_started ON rlm_runs (started DESC);
    -- A blob's row is written last, in the transaction that wrote its chunks: a hash listed
    -- here is complete.
    CREATE TABLE rlm_blobs (
        hash    TEXT PRIMARY KEY,
        size    BIGINT NOT NULL,
        chunks  INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE rlm_blob_chunks (
        hash TEXT NOT NULL,
        seq  INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (hash, seq)
    );
    """,
    # 2: what each resume changed on purpose (graph.run_index.record_resume).
    """
    ALTER TABLE rlm_runs ADD COLUMN overrides TEXT;
    """,
]

_pools: dict[str, ConnectionPool] = {}
_ready: set[str] = set()
_lock = threading.Lock()


def pool(url: str) -> ConnectionPool:
    """This process's pool for `url`, opened (and the schema made current) on first use."""
    with _lock:
        found = _pools.get(url)
        if found is None:
            _try_connect(url)
            found = ConnectionPool(
                url, min_size=1, max_size=POOL_MAX, kwargs=CONNECT_KWARGS, open=True,
                name="rlm-research", timeout=120.0,
            )  # fmt: skip
            _pools[url] = found
        if url not in _ready:
            with found.connection() as conn:
                ensure_schema(conn)
            _ready.add(url)
    return found


def _try_connect(url: str) -> None:
    """Fail in seconds with one line, not after the pool's timeout."""
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg.Error as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        message = f"cannot open the run database {describe(url)}: {reason}"
        raise DatabaseUnavailable(message) from None


@contextmanager
def cursor(url: str, *, transaction: bool = False) -> Iterator[Any]:
    """A tuple-row cursor on a pooled connection; `transaction`: all or nothing."""
    with pool(url).connection() as conn:
        if transaction:
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                yield cur
        else:
            with conn.cursor(row_factory=tuple_row) as cur:
                yield cur


def ensure_schema(conn: Connection[Any]) -> None:
    """LangGraph's checkpoint tables and ours, at their current versions."""
    from langgraph.checkpoint.postgres import PostgresSaver

    # Poll rather than wait in pg_advisory_lock: LangGraph's migrations CREATE INDEX
    # CONCURRENTLY, which waits for every open transaction, a blocked lock call included, so
    # two processes starting on an empty database would deadlock.
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_LOCK_KEY,)).fetchone()["ok"]:
        time.sleep(0.05)
    try:
        PostgresSaver(conn).setup()
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS rlm_schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT max(version) FROM rlm_schema_version").fetchone()
            current = row[0] if row and row[0] is not None else 0
            for version in range(current + 1, len(MIGRATIONS) + 1):
                with conn.transaction():
                    for statement in _statements(MIGRATIONS[version - 1]):
                        cur.execute(statement)
                    cur.execute("INSERT INTO rlm_schema_version (version) VALUES (%s)", (version,))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _run_key(run_id: str) -> int:
    """A run's advisory lock key (the second of two int4 keys): non-negative, so it reads back
    unchanged from pg_locks.objid."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "big") >> 1


@contextmanager
def run_lock(url: str, run_id: str) -> Iterator[None]:
    """Hold the run's advisory lock while it runs, on a connection of its own: a second process
    cannot run it at once, and if this one dies the server releases the lock with its
    connection, which is how any host sees the run is no longer running."""
    pool(url)  # the schema exists, the server is reachable
    conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    try:
        got = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (_RUN_LOCK_CLASS, _run_key(run_id))
        ).fetchone()[0]
        if not got:
            raise RunInProgress(f"run {run_id} is running in another process; wait for it")
        try:
            yield
        finally:
            # Released here, not left to the server noticing the closed connection a moment
            # later: a reader right after the run must not still see it locked.
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (_RUN_LOCK_CLASS, _run_key(run_id))
                )
    finally:
        conn.close()  # a dead process's lock goes with its connection


def run_is_locked(url: str, run_id: str) -> bool:
    with cursor(url) as cur:
        row = cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (_RUN_LOCK_CLASS, _run_key(run_id)),
        ).fetchone()
    return row[0] > 0


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def schema_version(url: str) -> int:
    with cursor(url) as cur:
        return cur.execute("SELECT max(version) FROM rlm_schema_version").fetchone()[0]


def close_pools() -> None:
    with _lock:
        for p in _pools.values():
            p.close()
        _pools.clear()
        _ready.clear()


atexit.register(close_pools)
