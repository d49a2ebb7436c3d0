"""Bad input through the CLI: one clear line naming the problem, a non-zero exit, and no
half-written run left behind, even in a database that already holds runs.

tests/test_cli.py checks the refusals against a database that does not exist yet (it must stay
absent) and tests/test_sources.py the loaders' messages; here each case runs against a database
with a finished run in it, and afterwards `rlm-research runs --json` still lists only that run,
the refused run id has no checkpoint, and no blob or report was written. Also covered here: an
unreadable file (chmod 000, even as root), a truncated PDF, the size limit from
RLM_MAX_SOURCE_BYTES, a model the server does not have, and a key the server refuses.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rlm_research.cli.main import app
from rlm_research.graph import run_index
from typer.testing import CliRunner

from tests.support.cli_process import cli_env, run_cli
from tests.support.stub_openai import Fault, StubOpenAI, _Handler, _Server
from tests.test_sources import make_pdf

GOOD_KEY = "sk-good-key"
MODELS = ("stub", "gpt-4o-mini", "big-model")
FINAL_NOW = "```python\nFINAL(context[:5])\n```"
DOC = "Alpha. The text of a perfectly good document.\n" * 20


class _KeyedHandler(_Handler):
    """The stub's chat handler behind a real key check, with a listing of several models, as
    a hosted API has (the plain stub lists one model, so any name would pass the check)."""

    def _key_ok(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {GOOD_KEY}"

    def do_GET(self) -> None:
        if not self._key_ok():
            self._send_error(Fault.status(401, message="Incorrect API key provided"))
        elif self.path.rstrip("/") in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in MODELS]
            self._send_json(200, {"object": "list", "data": data})
        else:
            super().do_GET()

    def do_POST(self) -> None:
        if not self._key_ok():
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send_error(Fault.status(401, message="Incorrect API key provided"))
            return
        super().do_POST()


class KeyedStub(StubOpenAI):
    def start(self) -> KeyedStub:
        handler = type("Handler", (_KeyedHandler,), {"stub": self})
        self._server = _Server(("127.0.0.1", self._port), handler)
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, RLM_API_KEY=GOOD_KEY)


def invoke(*args: str, env: dict[str, str]):
    """The CLI in-process (no interpreter start-up); `env` replaces the environment."""
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    overrides.update(env)
    result = CliRunner().invoke(app, list(args), env=overrides)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_under(folder: Path) -> set[str]:
    """Everything in the data folder except the database files themselves."""
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("runs.sqlite")
    }


@pytest.fixture(scope="module")
def stub():
    with KeyedStub(FINAL_NOW) as server:
        yield server


@pytest.fixture
def populated(tmp_path: Path, env, stub):
    """A database with one finished run in it, and a good document."""
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    db = tmp_path / "data" / "runs.sqlite"
    model = ["--model", "openai:stub", "--base-url", stub.base_url]
    p = invoke(
        "run", "q", "-s", str(doc), *model, "--db", str(db), "--run-id", "good", "-q", env=env
    )
    assert p.exit_code == 0 and p.stdout == "Alpha\n", p.stderr
    return doc, db, files_under(db.parent)


def assert_nothing_left(db: Path, before: set[str], env: dict[str, str], run_id: str) -> None:
    listed = json.loads(invoke("runs", "--db", str(db), "--json", env=env).stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [("good", "answered")]
    assert run_index.get_run(db, run_id) is None
    assert not run_index.has_checkpoints(db, run_id)
    assert files_under(db.parent) == before, "a refused run wrote blobs or a report"


def check_refused(p, code: int, needles: tuple[str, ...]) -> str:
    assert p.returncode == code, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in p.stderr
    return lines[0]


def make_case(name: str, tmp: Path, stub: StubOpenAI) -> tuple[list[str], dict, int, tuple]:
    """(extra CLI args, extra env, expected exit code, words the error line must contain)."""
    model = ["--model", "openai:stub", "--base-url", stub.base_url]
    if name == "missing file":
        return ["-s", str(tmp / "nope.txt"), *model], {}, 1, ("nope.txt", "no such file")
    if name == "corrupt PDF":
        pdf = make_pdf(["the answer is 17"])
        (tmp / "cut.pdf").write_bytes(pdf[: len(pdf) // 2])  # a download cut short
        return ["-s", str(tmp / "cut.pdf"), *model], {}, 1, ("cut.pdf", "not a readable PDF")
    if name == "binary file":
        (tmp / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 16)
        return ["-s", str(tmp / "image.png"), *model], {}, 1, ("image.png", "binary data")
    if name == "file over the size limit":
        (tmp / "big.txt").write_text("y" * 5000)
        limit = {"RLM_MAX_SOURCE_BYTES": "1000"}
        return ["-s", str(tmp / "big.txt"), *model], limit, 1, ("big.txt", "too big", "1,000")
    if name == "unreachable URL":
        url = f"http://127.0.0.1:{free_port()}/report.html"
        return ["-s", url, *model], {}, 1, (url, "cannot fetch")
    if name == "bad YAML config":
        (tmp / "bad.yaml").write_text("max_turns: [3,\nmodel: x\n")
        cfg = ["--config", str(tmp / "bad.yaml")]
        return ["-s", str(tmp / "doc.txt"), *model, *cfg], {}, 2, ("bad.yaml", "YAML")
    if name == "bad value in config":
        (tmp / "cfg.yaml").write_text("max_turns: lots\n")
        cfg = ["--config", str(tmp / "cfg.yaml")]
        return ["-s", str(tmp / "doc.txt"), *model, *cfg], {}, 2, ("cfg.yaml", "max_turns", "lots")
    if name == "unknown model spec":
        return ["-s", str(tmp / "doc.txt"), "--model", "gpt5"], {}, 2, ("unknown model spec",)
    if name == "unknown model provider":
        args = ["-s", str(tmp / "doc.txt"), "--model", "nosuchvendor:m1"]
        return args, {}, 1, ("nosuchvendor",)
    if name == "model the server does not have":
        args = ["-s", str(tmp / "doc.txt"), "--model", "openai:no-such-model"]
        args += ["--base-url", stub.base_url]
        return args, {}, 1, ("no-such-model", "not found", "available: stub, gpt-4o-mini")
    if name == "bad API key":
        key = {"RLM_API_KEY": "sk-wrong"}
        return ["-s", str(tmp / "doc.txt"), *model], key, 1, ("bad API key", "HTTP 401")
    if name == "model server down":
        args = ["-s", str(tmp / "doc.txt"), "--model", "openai:stub"]
        args += ["--base-url", f"http://127.0.0.1:{free_port()}/v1"]
        return args, {}, 1, ("cannot reach",)
    raise AssertionError(name)


CASES = [
    "missing file",
    "corrupt PDF",
    "binary file",
    "file over the size limit",
    "unreachable URL",
    "bad YAML config",
    "bad value in config",
    "unknown model spec",
    "unknown model provider",
    "model the server does not have",
    "bad API key",
    "model server down",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_and_leaves_no_run(name, populated, env, stub, tmp_path):
    doc, db, before = populated
    args, extra_env, code, needles = make_case(name, tmp_path, stub)
    p = invoke("run", "q", *args, "--db", str(db), "--run-id", "bad1", env={**env, **extra_env})
    p.returncode = p.exit_code
    check_refused(p, code, needles)
    assert_nothing_left(db, before, env, "bad1")


def test_bad_input_with_json_gives_an_error_object(populated, env, stub, tmp_path):
    doc, db, before = populated
    args, extra_env, code, needles = make_case("bad API key", tmp_path, stub)
    p = invoke(
        "run", "q", *args, "--db", str(db), "--run-id", "bad2", "--json", env={**env, **extra_env}
    )
    assert p.exit_code == 1
    out = json.loads(p.stdout)
    assert out["status"] == "error" and out["run_id"] is None
    assert "bad API key" in out["error"] and "\n" not in out["error"]
    assert_nothing_left(db, before, env, "bad2")


def test_a_bad_key_on_resume_is_one_line_and_changes_nothing(populated, env, stub, tmp_path):
    """`resume` checks the model too, before touching the run."""
    doc, db, before = populated
    p = invoke("resume", "good", "--db", str(db), env={**env, "RLM_API_KEY": "sk-wrong"})
    p.returncode = p.exit_code
    check_refused(p, 1, ("bad API key",))
    assert run_index.get_run(db, "good")["status"] == "answered"
    assert files_under(db.parent) == before


def _drop_file_permission_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so even root obeys file modes (prctl PR_CAPBSET_DROP)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _can_drop_caps() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "pass"],
        preexec_fn=_drop_file_permission_override,
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.timeout(60)
def test_unreadable_file(populated, env, stub, tmp_path):
    """chmod 000. Root reads any file, so as root the CLI runs without the capabilities that
    let it; where that cannot be arranged the test says so and skips."""
    doc, db, before = populated
    locked = tmp_path / "locked.txt"
    locked.write_text("secret text")
    locked.chmod(0)
    preexec = None
    if os.geteuid() == 0:
        try:
            if not _can_drop_caps():
                raise OSError("prctl refused")
        except OSError as e:
            pytest.skip(
                f"running as root and cannot drop CAP_DAC_OVERRIDE ({e}): chmod 000 "
                "does not stop root, so this case cannot be played here"
            )
        preexec = _drop_file_permission_override
    args = ["run", "q", "-s", str(locked), "--model", "openai:stub", "--base-url", stub.base_url]
    args += ["--db", str(db), "--run-id", "bad3"]
    p = run_cli(*args, env=env, preexec_fn=preexec)
    check_refused(p, 1, ("locked.txt", "cannot read", "permission denied"))
    assert_nothing_left(db, before, env, "bad3")


def test_a_model_unknown_to_a_single_model_server_fails_at_its_first_call(tmp_path, env):
    """A server listing one model (llama.cpp answers to any name) cannot be checked before the
    run: a server that does refuse the name fails the run at its first call, in one line, and
    the run is kept (failed, resumable with --model), since it did start."""
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    db = tmp_path / "data" / "runs.sqlite"
    missing = Fault.status(404, message="The model `nosuch` does not exist")
    with StubOpenAI([missing], model="stub") as plain:
        model = ["--model", "openai:nosuch", "--base-url", plain.base_url]
        p = invoke("run", "q", "-s", str(doc), *model, "--db", str(db), "--run-id", "m404", env=env)
        assert plain.call_count == 1  # a 404 is not retried
    assert p.exit_code == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "404" in errors[0] and "nosuch` does not exist" in errors[0]
    assert "Resume with: rlm-research resume m404" in p.stderr
    assert run_index.get_run(db, "m404")["status"] == "failed"
