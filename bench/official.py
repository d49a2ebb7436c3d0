"""The `official` system of `bench.quality`: the reference RLM implementation (PyPI `rlms`,
import `rlm`) pointed at the same model through an OpenAI-compatible server.

One install, kept out of the project's environment (rlms pins its own client libraries):

    make install-official
    # = pip install --target ~/.cache/rlm-research/official rlms fastapi starlette-context

(`RLM_OFFICIAL_PATH` overrides the folder.) `rlm` then runs in a child process with that folder on
its `PYTHONPATH` (`python -m bench.official --driver`, JSON in and out), so a crash or a hang of
the official code is a result row, not the end of the benchmark.

For the embedded model (`--model local`), each task gets a fresh llama-cpp-python server
(`python -m llama_cpp.server`, `--cache false`, `--logits_all false`) on a free loopback port,
stopped after the task: its prompt cache and logits buffers otherwise grow its memory far past
any cache size. In front of the server (and of any `--base-url`) sits `RenameShim`, a small
proxy that renames `max_completion_tokens`, which rlms sends, to `max_tokens`, which
llama-cpp-python 0.3.36 reads (it silently ignores the other, leaving replies unbounded).

The server runs verbose: after every completion llama.cpp logs
`llama_perf_context_print: prompt eval time = ... ms / N tokens`, N being the prompt tokens it
actually evaluated (the rest of the prompt came from the KV prefix it kept from the previous
call). Each task gets its own section of `<out>.llama_server.log` (a temporary file without
`--out`); the sum over that section is the row's `input_tokens_evaluated`, next to the
`input_tokens` rlms reports as sent.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

OFFICIAL_PATH = Path(
    os.environ.get("RLM_OFFICIAL_PATH", Path.home() / ".cache" / "rlm-research" / "official")
)
PACKAGES = "rlms fastapi starlette-context"
INSTALL = f"make install-official (or: pip install --target {OFFICIAL_PATH} {PACKAGES})"
REPO = Path(__file__).resolve().parents[1]
MAX_TOKENS = 1024  # per reply, like this project's default max_completion_tokens


# ---------------------------------------------------------------------------------------------
# The renaming proxy


def rename_body(body: dict[str, Any], default_max: int | None = MAX_TOKENS) -> dict[str, Any]:
    """`max_completion_tokens` -> `max_tokens` (kept if both are given); a default bound if none."""
    body = dict(body)
    mct = body.pop("max_completion_tokens", None)
    if body.get("max_tokens") is None:
        body["max_tokens"] = mct if mct is not None else default_max
    if body.get("max_tokens") is None:
        body.pop("max_tokens")
    return body


class RenameShim:
    """A loopback HTTP proxy to `upstream` (an OpenAI-compatible `/v1` base URL) that rewrites
    chat-completion bodies with `rename_body`. Counts requests and the tokens the upstream
    reported."""

    def __init__(self, upstream: str, default_max: int | None = MAX_TOKENS) -> None:
        self.upstream = upstream.rstrip("/")
        self.default_max = default_max
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(3600.0, connect=10.0))

    def start(self) -> RenameShim:
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each reply waits ~40 ms for a delayed ACK

            def log_message(self, *a: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                path = self.path[3:] if self.path.startswith("/v1") else self.path
                if method == "POST" and path.endswith("/chat/completions") and raw:
                    body = rename_body(json.loads(raw), shim.default_max)
                    shim.requests += 1
                    shim.bodies.append(body)
                    raw = json.dumps(body).encode()
                headers = {"Content-Type": "application/json"}
                if self.headers.get("Authorization"):
                    headers["Authorization"] = self.headers["Authorization"]
                try:
                    r = shim._client.request(
                        method, shim.upstream + path, content=raw or None, headers=headers
                    )
                    status, data = r.status_code, r.content
                    ctype = r.headers.get("content-type", "application/json")
                except httpx.HTTPError as exc:
                    status, ctype = 502, "application/json"
                    data = json.dumps({"error": {"message": f"shim: {exc}"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                self._forward("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._client.close()

    def __enter__(self) -> RenameShim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# llama-cpp-python's server for the embedded model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The project first (bench, tools), then the official install; the venv's site-packages
    # come after PYTHONPATH, so rlms' pinned clients win in the child only.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(OFFICIAL_PATH)])
    return env


# llama.cpp's timing line after each completion (`llama_print_timings:` in older versions):
#   llama_perf_context_print: prompt eval time =  1234.56 ms /   123 tokens (...)
PROMPT_EVAL = re.compile(r"prompt eval time\s*=\s*[\d.]+\s*ms\s*/\s*(\d+)\s*tokens")
GENERATED = re.compile(r"^\S*\s+eval time =\s*[\d.]+ ms /\s*(\d+) runs", re.M)


def evaluated_tokens(log_text: str) -> int:
    """The prompt tokens llama.cpp evaluated, summed over the timing lines in `log_text`: exact
    to within one token a call (llama.cpp times a one-token decode as generation)."""
    return sum(int(n) for n in PROMPT_EVAL.findall(log_text))


def add_evaluated(usage: dict[str, Any], label: str, log_text: str) -> None:
    """Put the evaluated prompt tokens from a task's server log into `usage` for its model (the
    one model it used, else `label`); nothing when the log has no timing line (no completion)."""
    if not PROMPT_EVAL.search(log_text):
        return
    models = usage.setdefault("models", {})
    if len(models) == 1:
        label = next(iter(models))
    slot = models.setdefault(label, {})
    slot["input_tokens_evaluated"] = evaluated_tokens(log_text)
    if not slot.get("calls"):  # rlms loses its usage when it times out: count from the log
        slot["calls"] = len(PROMPT_EVAL.findall(log_text))
        slot["output_tokens"] = sum(int(n) for n in GENERATED.findall(log_text))


class LlamaServer:
    """`python -m llama_cpp.server` for one GGUF on a loopback port; `stop()` kills it. With a
    `log`, its output is appended there under a `==== <section> <time> ====` line, and
    `log_text()` is what it wrote in this run."""

    def __init__(
        self, gguf: str, n_ctx: int = 32768, log: Path | None = None, section: str = "server"
    ) -> None:
        self.gguf, self.n_ctx, self.log, self.section = gguf, n_ctx, log, section
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_start = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait: float = 300.0) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        cmd += ["--model_alias", "local", "--cache", "false", "--logits_all", "false"]
        cmd += ["--verbose", "true"]  # the default, said aloud: the timing lines need it
        out: Any = subprocess.DEVNULL
        if self.log:
            out = open(self.log, "ab")  # noqa: SIM115 - closed below, the child keeps its copy
            self.log_start = out.tell()
            when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            out.write(f"\n==== {self.section} {when} ====\n".encode())
            out.flush()
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env())
        finally:
            if self.log:
                out.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/models", timeout=2).status_code == 200:
                    return self
            time.sleep(1)
        self.stop()
        raise RuntimeError("llama_cpp.server did not come up")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_text(self) -> str:
        """What this run wrote to the log (its own section); "" without a log."""
        if not self.log or not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", errors="replace")

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# The system


def check_installed() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import rlm; print(rlm.RLM)"],
        env=child_env(),
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise RuntimeError(f"the official rlms package is not installed; run: {INSTALL}")


def run_official(task: Any, opts: argparse.Namespace) -> dict[str, Any]:
    """Run the official RLM on `task` (a `bench.tasks.Task`) and return a quality-runner row."""
    check_installed()
    spec = str(opts.model)
    server: LlamaServer | None = None
    with contextlib.ExitStack() as stack:
        if spec.startswith("local"):
            from rlm_research.tools.local_weights import resolve_weights

            weights = "0.5b" if spec == "local:0.5b" else "1.5b"
            if opts.out:
                log = Path(str(opts.out) + ".llama_server.log")
            else:  # a log of its own all the same, for the evaluated prompt tokens
                log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "llama.log"
            server = LlamaServer(str(resolve_weights(weights)), log=log, section=task.id)
            stack.enter_context(server)
            upstream, model_name = server.base_url, "local"
        elif spec.startswith("openai:"):
            upstream = opts.base_url or "https://api.openai.com/v1"
            model_name = spec.split(":", 1)[1]
        else:
            raise RuntimeError(f"official: model {spec!r} not supported (local or openai:<name>)")
        shim = stack.enter_context(RenameShim(upstream))
        job = {
            "context": task.context,
            "question": task.question,
            "base_url": shim.base_url,
            "model": model_name,
            "api_key": os.environ.get("OPENAI_API_KEY") or "sk-no-key-needed",
            "max_iterations": opts.max_turns,
            "timeout": opts.timeout,
        }
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "rlm_research.bench.official", "--driver"],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=opts.timeout + 120,
            )
        except subprocess.TimeoutExpired:
            out = {"answer": "", "stop_reason": "budget:time", "usage": {}, "trajectory": []}
        else:
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"official driver failed: {proc.stderr[-800:]}")
            out = json.loads(lines[-1])
            out["shim_requests"] = shim.requests
        if server is not None:
            server.stop()  # stopped, it has written every completion's timing line
            out["usage"] = out.get("usage") or {}
            add_evaluated(out["usage"], f"official:{model_name}", server.log_text())
        return out


def driver() -> None:
    """Child process: run `rlm.RLM` on the JSON job from stdin, print one JSON line."""
    import io

    from rlm import RLM  # type: ignore[import-not-found]
    from rlm.logger import RLMLogger  # type: ignore[import-not-found]

    job = json.loads(sys.stdin.read())
    logger = RLMLogger()
    rlm = RLM(
        backend="openai",
        backend_kwargs={
            "model_name": job["model"],
            "base_url": job["base_url"],
            "api_key": job["api_key"],
        },
        environment="local",
        max_depth=1,
        max_iterations=job["max_iterations"],
        max_timeout=job["timeout"],
        sampling_args={"temperature": 0.0, "max_tokens": MAX_TOKENS},
        logger=logger,
        verbose=False,
    )
    stop, answer, usage, meta = "answered", "", {}, None
    real_stdout, sys.stdout = sys.stdout, io.StringIO()  # the REPL's prints stay out of our JSON
    try:
        res = rlm.completion(job["context"], root_prompt=job["question"])
        answer, meta = res.response or "", res.metadata
        summ = res.usage_summary.to_dict().get("model_usage_summaries", {})
        usage = {
            "models": {
                f"official:{m}": {
                    "calls": u.get("total_calls", 0),
                    "input_tokens": u.get("total_input_tokens", 0),
                    "output_tokens": u.get("total_output_tokens", 0),
                }
                for m, u in summ.items()
            }
        }
    except Exception as exc:  # TimeoutExceededError, ErrorThresholdExceededError, ...
        name = type(exc).__name__
        stop = "budget:time" if "Timeout" in name else f"error:{name}"
        answer = str(getattr(exc, "partial_answer", "") or "")
    finally:
        sys.stdout = real_stdout
    iterations = (meta or {}).get("iterations") or []
    if stop == "answered" and len(iterations) >= job["max_iterations"]:
        stop = "budget:turns"
    trajectory = []
    for i, it in enumerate(iterations):
        blocks = it.get("code_blocks") or []
        obs = "\n".join(
            (b.get("result", {}).get("stdout") or "") + (b.get("result", {}).get("stderr") or "")
            for b in blocks
        )
        trajectory.append(
            {
                "depth": 0,
                "turn": i + 1,
                "code": [b.get("code", "") for b in blocks],
                "observation": obs[:4000],
                "response": (it.get("response") or "")[:4000],
            }
        )
    print(
        json.dumps(
            {"answer": answer, "stop_reason": stop, "usage": usage, "trajectory": trajectory},
            default=str,
        )
    )


if __name__ == "__main__":
    if "--driver" in sys.argv:
        driver()
    else:
        print(__doc__)
