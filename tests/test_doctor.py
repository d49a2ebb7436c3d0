"""`rlm-research doctor`, the run's embedded-model preflight, and `--version`: what a newcomer
sees when the embedded model cannot run here (one line that says what to do, never a bare
`Illegal instruction`), and that a hosted-model setup passes without the embedded model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rlm_research.cli.main import app
from rlm_research.mcp_server.server import build_server, parse_args
from rlm_research.tools import model_probe
from typer.testing import CliRunner

from rlm_research import __version__
from tests.support.stub_openai import StubOpenAI

SIGILL_CHILD = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"
SIGKILL_CHILD = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    for name in ("OPENAI_API_KEY", "RLM_API_KEY", "TAVILY_API_KEY", "RLM_MODEL", "RLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the probe's stamps
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("RLM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return {}


@pytest.fixture
def gguf(tmp_path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF not really a model")
    return path


def fake_child(monkeypatch, code: str) -> list[Path]:
    """The embedded model's child runs `code` instead; returns the list of probed paths."""
    calls: list[Path] = []

    def command(path: Path) -> list[str]:
        calls.append(path)
        return [sys.executable, "-c", code]

    monkeypatch.setattr(model_probe, "llama_installed", lambda: True)
    monkeypatch.setattr(model_probe, "child_command", command)
    return calls


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_doctor_turns_a_sigill_child_into_one_line_with_the_fix(env, gguf, monkeypatch):
    fake_child(monkeypatch, SIGILL_CHILD)
    result = invoke("doctor", "--model", str(gguf))
    assert result.exit_code == 1
    line = next(ln for ln in result.output.splitlines() if "SIGILL" in ln)
    assert line.startswith("FAIL embedded model")
    assert "CPU instructions this machine lacks" in line and "make rebuild-llama" in line
    assert "Traceback" not in result.output
    assert "weights" in result.output  # the checks before it still ran and reported


def test_doctor_says_out_of_memory_for_a_killed_child(env, gguf, monkeypatch):
    fake_child(monkeypatch, SIGKILL_CHILD)
    result = invoke("doctor", "--model", str(gguf))
    assert result.exit_code == 1
    assert "most likely for lack of memory" in result.output


def test_a_run_on_a_crashing_embedded_model_stops_before_it_starts(
    env, gguf, tmp_path, monkeypatch
):
    fake_child(monkeypatch, SIGILL_CHILD)
    result = invoke("run", "question?", "--no-source", "--model", str(gguf), "--quiet")
    assert result.exit_code == 1
    assert "SIGILL" in result.output and "make rebuild-llama" in result.output
    assert not (tmp_path / "data" / "runs.sqlite").exists()


def test_a_passed_check_is_not_repeated_by_runs(env, gguf, monkeypatch):
    from rlm_research.tools.chat_models import check_model_reachable

    calls = fake_child(monkeypatch, "print('wrote 4 tokens')")
    check_model_reachable(str(gguf))
    check_model_reachable(str(gguf))
    assert len(calls) == 1
    gguf.write_bytes(b"GGUF other weights")  # other weights: checked again
    check_model_reachable(str(gguf))
    assert len(calls) == 2


def test_doctor_passes_a_hosted_setup_without_the_embedded_model(env, monkeypatch):
    monkeypatch.setattr(model_probe, "llama_installed", lambda: False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    with StubOpenAI("hello") as stub:
        result = invoke("doctor", "--model", "openai:stub", "--base-url", stub.base_url)
    assert result.exit_code == 0, result.output
    assert "embedded model: not installed" in result.output
    assert "OPENAI_API_KEY" in result.output
    assert "sk-secret-value-123" not in result.output


def test_doctor_fails_when_the_configured_local_model_is_not_installed(env, gguf, monkeypatch):
    monkeypatch.setattr(model_probe, "llama_installed", lambda: False)
    result = invoke("doctor", "--model", str(gguf))
    assert result.exit_code == 1
    assert "llama-cpp-python is not installed" in result.output


def test_doctor_fails_on_an_unwritable_data_folder(env, tmp_path, monkeypatch):
    monkeypatch.setattr(model_probe, "llama_installed", lambda: False)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("RLM_DATA_DIR", str(tmp_path / "a-file" / "data"))
    with StubOpenAI("hello") as stub:
        result = invoke("doctor", "--model", "openai:stub", "--base-url", stub.base_url)
    assert result.exit_code == 1
    assert "data folder" in result.output and "not writable" in result.output


def test_doctor_fails_when_a_hosted_model_is_unreachable(env, monkeypatch):
    monkeypatch.setattr(model_probe, "llama_installed", lambda: False)
    result = invoke("doctor", "--model", "openai:x", "--base-url", "http://127.0.0.1:9/v1")
    assert result.exit_code == 1
    assert "cannot reach" in result.output


def test_versions(capsys):
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"rlm-research {__version__}"
    with pytest.raises(SystemExit) as done:
        parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"rlm-research-mcp {__version__}"


def test_the_mcp_server_reports_its_version(tmp_path):
    import anyio
    from mcp import Client
    from rlm_research.mcp_server.research import Research

    research = Research(tmp_path / "runs.sqlite")

    async def server_info():
        async with Client(build_server(research)) as client:
            return client.server_info

    try:
        info = anyio.run(server_info)
    finally:
        research.shutdown()
    assert (info.name, info.version) == ("rlm-research", __version__)
