"""The checkpointer factory: a SQLite file (one per data folder, WAL mode, shared by threads) or
LangGraph's PostgreSQL saver, chosen by `db` (a path or a postgresql:// URL); sync and async.

    with checkpointer(db) as saver: ...              # SqliteSaver | PostgresSaver
    async with async_checkpointer(db) as saver: ...  # AsyncSqliteSaver | AsyncPostgresSaver
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from rlm_research.graph.stores import Db, is_postgres


def open_saver(db_path: str | Path) -> SqliteSaver:
    """A SqliteSaver on its own connection (the caller closes `saver.conn`)."""
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel sub-calls write from several threads; SqliteSaver serialises them with its lock.
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


@contextmanager
def checkpointer(db: Db) -> Iterator[BaseCheckpointSaver]:
    """A sync saver for `db`, released on exit (Postgres: borrows from the process's pool)."""
    if is_postgres(db):
        from langgraph.checkpoint.postgres import PostgresSaver
        from rlm_research.graph.stores.postgres import pool

        yield PostgresSaver(pool(str(db)))  # the pool made the schema current
        return
    saver = open_saver(db)
    try:
        yield saver
    finally:
        saver.conn.close()


@asynccontextmanager
async def async_checkpointer(db: Db) -> AsyncIterator[BaseCheckpointSaver]:
    """An async saver for `db` (for `ainvoke` / `astream`), closed on exit."""
    if is_postgres(db):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg_pool import AsyncConnectionPool
        from rlm_research.graph.stores.postgres import CONNECT_KWARGS, POOL_MAX, pool

        await asyncio.to_thread(pool, str(db))  # creates or migrates the schema once
        async with AsyncConnectionPool(
            str(db), min_size=1, max_size=POOL_MAX, kwargs=CONNECT_KWARGS, open=False
        ) as apool:
            yield AsyncPostgresSaver(apool)
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), timeout=30.0)
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")  # the same durability as open_saver
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver
    finally:
        await asyncio.shield(conn.close())  # a cancelled caller still closes the file
