"""Where a run's state lives, chosen by one setting (`db_url`): the factory the rest asks.

Two backends behind one interface:

- SQLite + a folder (the default): `<data_dir>/runs.sqlite` holds LangGraph's checkpoints and the
  run index, `<data_dir>/blobs/` the content-addressed blobs.
- PostgreSQL (`postgresql://...`): LangGraph's Postgres checkpointer, and the run index and the
  blobs (chunked) in tables of our own in the same database, so one connection string is the
  whole state and any process on any host can list, resume or serve any run. The local
  `data_dir` keeps only reports and a cache of blobs the REPL worker reads as files.

A database is named by `db`: a `Path` (SQLite) or a `postgresql://` URL string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

# The errors and describe() live in errors.py, which the backends import without this package.
from rlm_research.graph.stores.errors import DatabaseUnavailable as DatabaseUnavailable
from rlm_research.graph.stores.errors import RunInProgress as RunInProgress
from rlm_research.graph.stores.errors import describe as describe

if TYPE_CHECKING:
    from rlm_research.graph.blob_store import BlobStore
    from rlm_research.graph.settings import Settings
    from rlm_research.graph.stores.run_tables import RunTable

Db = Path | str  # a SQLite file, or a postgresql:// URL
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_FILE = "runs.sqlite"


def is_postgres(db: Db | None) -> bool:
    return isinstance(db, str) and db.startswith(POSTGRES_SCHEMES)


def check_db_url(value: str) -> str:
    """A valid `db_url`: a postgresql:// URL, `sqlite:///path` (given back as the path), or a
    plain path of a SQLite file. Raises ValueError for any other scheme."""
    value = value.strip()
    if value.startswith(POSTGRES_SCHEMES):
        if not urlsplit(value).hostname and "host=" not in value:
            raise ValueError(f"a PostgreSQL URL needs a host, got {describe(value)!r}")
        return value
    if value.startswith("sqlite:///"):
        return value.removeprefix("sqlite://")
    if "://" in value:
        raise ValueError(f"use a postgresql:// URL or a SQLite file path, got {describe(value)!r}")
    if not value:
        raise ValueError("empty database location")
    return value


def locate(settings: Settings, db: Db | None = None, *, data_dir: str | None = None) -> tuple:
    """(settings, db) for a run: `db` (a --db value) wins over `settings.db_url`, which wins
    over `<data_dir>/runs.sqlite`. A SQLite database keeps blobs/ and reports/ in its own folder;
    with PostgreSQL the local folder is `data_dir` (default: the settings')."""
    if data_dir is not None:
        settings = dataclasses.replace(settings, data_dir=str(data_dir))
    target = db if db is not None else settings.db_url
    if target is not None and is_postgres(str(target)):
        return dataclasses.replace(settings, db_url=str(target)), str(target)
    if target is None:
        path = Path(settings.data_dir) / SQLITE_FILE
    else:
        path = Path(check_db_url(str(target))).expanduser()
    return dataclasses.replace(settings, data_dir=str(path.parent), db_url=str(path)), path


def database_of(settings: Settings) -> Db:
    return locate(settings)[1]


def open_blob_store(settings: Settings) -> BlobStore:
    """The run's blob store: the folder beside the SQLite file, or the Postgres tables."""
    return blob_store_for(database_of(settings), settings.data_dir)


def blob_store_for(db: Db, data_dir: str | Path) -> BlobStore:
    if is_postgres(db):
        from rlm_research.graph.stores.pg_blobs import PgBlobStore

        return PgBlobStore(str(db), Path(data_dir) / "blob-cache")
    from rlm_research.graph.blob_store import BlobStore

    return BlobStore(Path(db).parent / "blobs")


def check_reachable(db: Db) -> None:
    """Connect now (PostgreSQL), so a wrong URL or a server that is down is one clear line
    before anything starts; raises DatabaseUnavailable. A SQLite path needs nothing."""
    if is_postgres(db):
        from rlm_research.graph.stores.postgres import pool

        pool(str(db))


@contextmanager
def running(db: Db, run_id: str) -> Iterator[None]:
    """Mark `run_id` as being run by this process for as long as the block lasts (PostgreSQL:
    its advisory lock; raises RunInProgress when another process holds it). SQLite: the run
    index's pid does this job."""
    if is_postgres(db):
        from rlm_research.graph.stores.postgres import run_lock

        with run_lock(str(db), run_id):
            yield
    else:
        yield


def run_table(db: Db) -> RunTable:
    """The run index's table in this database."""
    from rlm_research.graph.stores import run_tables

    if is_postgres(db):
        return run_tables.PostgresRunTable(str(db))
    return run_tables.SqliteRunTable(Path(db))
