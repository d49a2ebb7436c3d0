"""The checkpointer factory: one SQLite database per data folder, WAL mode, shared by threads;
`open_saver` for sync callers, `async_saver` for async ones (the same file and settings)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.sqlite import SqliteSaver

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver


def open_saver(db_path: str | Path) -> SqliteSaver:
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel sub-calls write from several threads; SqliteSaver serialises them with its lock.
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


@contextlib.asynccontextmanager
async def async_saver(db_path: str | Path) -> AsyncIterator[AsyncSqliteSaver]:
    """The same database for async callers (`graph.api.astream`): same file, WAL mode and
    durability as `open_saver`, closed when the block ends."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), timeout=30.0)
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver
    finally:
        await asyncio.shield(conn.close())  # a cancelled caller still closes the file
