"""The PostgreSQL backend's own pieces: chunked, idempotent blobs; a schema created once even
when many start at once; the `db_url` setting and what a bad one says; the async saver."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import psycopg
import pytest
from rlm_research.graph import stores
from rlm_research.graph.blob_store import BlobNotFound
from rlm_research.graph.checkpoints import async_checkpointer, checkpointer
from rlm_research.graph.config import ConfigError, load_config
from rlm_research.graph.settings import Settings
from rlm_research.graph.stores import pg_blobs, postgres

from tests.support.cli_process import cli_env, run_cli

MB = 1 << 20


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def forget_known() -> None:
    """As a new process would start: nothing known to be in the database yet."""
    with pg_blobs._known_lock:
        pg_blobs._known.clear()


def test_blobs_are_chunked_written_once_and_read_anywhere(postgres_url: str, tmp_path: Path):
    data = bytes(range(256)) * (10 * MB // 256) + b"tail"  # a bit over 10 MB
    store = stores.blob_store_for(postgres_url, tmp_path / "a")
    ref = store.put_bytes(data)
    assert rows(postgres_url, "SELECT size, chunks FROM rlm_blobs") == [(len(data), 11)]
    assert rows(postgres_url, "SELECT max(length(data)) FROM rlm_blob_chunks") == [(MB,)]

    # The same bytes again, from this process and from "another" one at once: no new rows.
    forget_known()
    other = stores.blob_store_for(postgres_url, tmp_path / "b")
    threads = [threading.Thread(target=other.put_bytes, args=(data,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.put_bytes(data) == ref
    assert rows(postgres_url, "SELECT count(*) FROM rlm_blob_chunks") == [(11,)]
    assert rows(postgres_url, "SELECT count(*) FROM rlm_blobs") == [(1,)]

    # Another host, another (empty) folder: the bytes come from the database; the worker's
    # file is a local copy.
    elsewhere = stores.blob_store_for(postgres_url, tmp_path / "c")
    assert elsewhere.get_bytes(ref) == data and elsewhere.has(ref)
    local = elsewhere.path(ref)
    assert local.is_relative_to(tmp_path / "c") and local.read_bytes() == data
    assert elsewhere.get_json(elsewhere.put_json({"k": [1, "é"]})) == {"k": [1, "é"]}
    assert elsewhere.put_bytes(b"") and elsewhere.get_bytes(stores.blob_store_for(
        postgres_url, tmp_path / "d").put_bytes(b"")) == b""  # fmt: skip

    missing = "0" * 64
    assert not elsewhere.has(missing) and not elsewhere.path(missing).exists()
    with pytest.raises(BlobNotFound):
        elsewhere.get_bytes(missing)


def test_a_blob_with_a_lost_chunk_is_reported_not_returned_short(postgres_url, tmp_path):
    store = stores.blob_store_for(postgres_url, tmp_path)
    ref = store.put_bytes(b"x" * (3 * MB))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM rlm_blob_chunks WHERE hash = %s AND seq = 1", (ref,))
    with pytest.raises(BlobNotFound, match="2 of its 3 chunks"):
        stores.blob_store_for(postgres_url, tmp_path / "fresh").get_bytes(ref)


def test_schema_is_created_once_when_many_start_together(postgres_url: str):
    errors: list[BaseException] = []

    def setup() -> None:
        try:
            with psycopg.connect(postgres_url, **postgres.CONNECT_KWARGS) as conn:
                postgres.ensure_schema(conn)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=setup) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert postgres.schema_version(postgres_url) == len(postgres.MIGRATIONS)
    versions = rows(postgres_url, "SELECT count(*) FROM rlm_schema_version")
    assert versions == [(len(postgres.MIGRATIONS),)]  # each migration recorded once
    tables = {r[0] for r in rows(postgres_url, "SELECT tablename FROM pg_tables")}
    ours = {"rlm_runs", "rlm_blobs", "rlm_blob_chunks", "rlm_schema_version"}
    assert ours | {"checkpoints", "checkpoint_blobs", "checkpoint_writes"} <= tables


def test_sync_and_async_savers_share_one_database(postgres_url: str, tmp_path: Path):
    from rlm_research.graph.builder import builder

    config = {"configurable": {"thread_id": "none-yet"}}
    with checkpointer(postgres_url) as saver:
        assert builder.compile(checkpointer=saver).get_state(config).values == {}

    async def read() -> list:
        async with async_checkpointer(postgres_url) as saver:
            return [c async for c in saver.alist(config)]

    assert asyncio.run(read()) == []

    async def read_sqlite() -> list:
        async with async_checkpointer(tmp_path / "runs.sqlite") as saver:
            return [c async for c in saver.alist(config)]

    assert asyncio.run(read_sqlite()) == [] and (tmp_path / "runs.sqlite").exists()


# -- the setting (no server needed) -------------------------------------------------------------
def test_db_url_from_env_file_and_flag(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"RLM_DB_URL": "postgresql://team@db.internal/research"}
    loaded = load_config({}, environ=env, use_files=False)
    assert loaded.settings.db_url == "postgresql://team@db.internal/research"
    settings, db = stores.locate(loaded.settings)
    assert db == "postgresql://team@db.internal/research"
    assert settings.data_dir == loaded.settings.data_dir  # reports stay in the local folder

    (tmp_path / "c.yaml").write_text("db_url: sqlite:///srv/rlm/runs.sqlite\n")
    from_file = load_config({}, config_file=tmp_path / "c.yaml", environ={}).settings
    settings, db = stores.locate(from_file)
    assert db == Path("/srv/rlm/runs.sqlite") and settings.data_dir == "/srv/rlm"

    assert stores.locate(Settings(data_dir="/d"))[1] == Path("/d/runs.sqlite")  # the default


def test_bad_db_urls_are_refused_and_passwords_never_shown(tmp_path: Path):
    with pytest.raises(ConfigError, match="RLM_DB_URL.*postgresql://") as bad:
        load_config({}, environ={"RLM_DB_URL": "mysql://u:pw@h/db"}, use_files=False)
    assert "pw" not in str(bad.value)
    assert "pw" not in stores.describe("postgresql://u:pw@h:5/db")
    assert stores.describe("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"

    env = cli_env(tmp_path)
    out = run_cli("runs", "--db", "redis://x:secret@h/0", env=env)
    assert out.returncode == 2 and "--db" in out.stderr and "secret" not in out.stderr
    # An unreachable server is one line naming it, without its password.
    out = run_cli("runs", "--db", "postgresql://u:secret@127.0.0.1:1/none", env=env)
    assert out.returncode != 0 and "secret" not in out.stderr + out.stdout


def test_a_running_run_is_seen_from_any_host_and_not_run_twice(postgres_url: str):
    from rlm_research.graph import run_index
    from rlm_research.graph.api import resume

    run_index.record_start(postgres_url, "r1", question="q")
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as if started elsewhere
        conn.execute("UPDATE rlm_runs SET host = 'elsewhere', pid = 1 WHERE run_id = 'r1'")
    assert run_index.get_run(postgres_url, "r1")["status"] == "interrupted"  # nobody runs it
    with stores.running(postgres_url, "r1"):
        assert run_index.get_run(postgres_url, "r1")["status"] == "running"
        with pytest.raises(stores.RunInProgress):
            resume("r1", db_path=postgres_url, settings=Settings(data_dir="/nonexistent"))
    assert run_index.get_run(postgres_url, "r1")["status"] == "interrupted"


@pytest.mark.parametrize(
    "url", ["postgresql://attacker.example/loot", "/tmp/elsewhere.sqlite", "sqlite:///etc/x"]
)
def test_an_mcp_client_cannot_choose_the_database(url: str):
    from rlm_research.mcp_server.failures import ToolFailure
    from rlm_research.mcp_server.options import split_options

    with pytest.raises(ToolFailure, match="when the server starts"):
        split_options({"db_url": url})
