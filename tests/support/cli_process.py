"""The `rlm-research` CLI as a child process (`python -m cli.main ...`), for the tests that need
a real interpreter: signals, exit codes, process kills, dropped capabilities.

`cli_env` builds the environment those tests share: the caller's own, minus any RLM_* setting
and OPENAI_API_KEY (so neither the machine's config nor a real key leaks in), with a dummy key
and data and config folders under the test's tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a CLI run under `tmp_path`; `extra` adds or overrides variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    env.pop("OPENAI_API_KEY", None)
    env.update(
        RLM_API_KEY="x",
        RLM_DATA_DIR=str(tmp_path / "default-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _command(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "rlm_research.cli.main", *args]


def run_cli(
    *args: str,
    env: dict[str, str],
    stdin: str | None = None,
    timeout: float = 60,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end from the project root; stdout and stderr are captured as text."""
    return subprocess.run(
        _command(args),
        cwd=PROJECT_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def start_cli(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start the CLI from the project root, stdout and stderr piped as text; `kwargs` go to
    Popen (e.g. start_new_session=True)."""
    return subprocess.Popen(
        _command(args),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
