"""The SQLite checkpointer: one database per data folder, WAL mode, shared by threads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver


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
