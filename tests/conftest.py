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
