from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rlm_research.graph.settings import Settings  # noqa: E402


@pytest.fixture
def make_settings(tmp_path: Path):
    """Settings for a test run: its own data folder, short timeouts."""

    def make(**overrides) -> Settings:
        overrides.setdefault("data_dir", str(tmp_path / "data"))
        overrides.setdefault("cell_timeout", 20.0)
        return Settings(**overrides)

    return make


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server for the session (tests/support/postgres_server.py)."""
    from tests.support.postgres_server import PrivatePostgres, find_bin_dir

    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) installed")
    with PrivatePostgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """A fresh, empty database on the session's server, for one test."""
    import re

    name = re.sub(r"\W", "_", request.node.name.lower())[:40]
    return postgres_server.new_database(f"t_{name}_{id(request) % 100000}")
