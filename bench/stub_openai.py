"""A stub OpenAI-compatible chat-completions server for tests and benchmarks (stdlib only,
127.0.0.1 only). It is installed with the package, so the benchmarks and the wheel-install check
can use it; `tests.support.stub_openai` re-exports it for the tests.

In-process:   ``with StubOpenAI(RuleResponder([...], default="...")) as stub: stub.base_url``
Own process:  ``python -m rlm_research.bench.stub_openai --port 0 --rules rules.json
              [--delay 0.5] [--count-file calls.jsonl]`` prints ``READY <base_url>`` and serves
              until killed; ``StubProcess`` wraps that for tests.

A responder is ``responder(messages, body) -> str | Fault``; a ``Fault`` makes one call fail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Message = dict[str, Any]
Responder = Callable[[list[Message], dict[str, Any]], "str | Fault"]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


@dataclass(frozen=True)
class Fault:
    """One injected failure (or a slow reply) for a single call. Build with the classmethods."""

    kind: str  # "status" | "hang" | "reset" | "malformed" | "empty" | "delay"
    code: int = 200
    retry_after: float | None = None
    seconds: float = 0.0
    reply: str = ""
    message: str | None = None
    error_code: str | None = None

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, message: str | None = None,
               error_code: str | None = None) -> Fault:  # fmt: skip
        """HTTP error, OpenAI-shaped body; retry_after (s) sets Retry-After(-ms) headers.

        e.g. ``Fault.status(400, error_code="context_length_exceeded")``.
        """
        return cls("status", code, retry_after, message=message, error_code=error_code)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Say nothing for `seconds`, then close the connection without a response."""
        return cls("hang", seconds=seconds)

    @classmethod
    def reset(cls, partial: str = "") -> Fault:
        """Abort the TCP connection (RST). When streaming, first send `partial` as content."""
        return cls("reset", reply=partial)

    @classmethod
    def malformed(cls) -> Fault:
        """200 with a body that is not valid JSON (in SSE: a data line that is not JSON)."""
        return cls("malformed")

    @classmethod
    def empty(cls) -> Fault:
        """A valid 200 reply whose content is ""."""
        return cls("empty")

    @classmethod
    def delay(cls, seconds: float, reply: str) -> Fault:
        """A valid reply, sent after `seconds`."""
        return cls("delay", seconds=seconds, reply=reply)


def message_text(message: Message) -> str:
    """Text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[Message]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, values: Mapping[str, str | None]) -> str:
    """Substitute {name} for known names only: replies are often code full of literal braces."""
    return _PLACEHOLDER.sub(
        lambda m: (values.get(m.group(1)) or "") if m.group(1) in values else m.group(0), template
    )


def _resolve(item: Any, messages: list[Message], body: dict[str, Any]) -> str | Fault:
    return item(messages, body) if callable(item) else item


class ScriptedResponder:
    """Returns the items (str or Fault) in order; then `default` (str, Fault or a responder).

    With no default, a call past the end gets a 500 saying the script is exhausted.
    """

    def __init__(
        self, replies: Iterable[str | Fault], default: str | Fault | Responder | None = None
    ) -> None:
        self._replies = list(replies)
        self._default = default
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, messages: list[Message], body: dict[str, Any]) -> str | Fault:
        with self._lock:
            index = self._next
            self._next += 1
        if index < len(self._replies):
            return _resolve(self._replies[index], messages, body)
        if self._default is None:
            return Fault.status(500, message=f"ScriptedResponder exhausted at call {index + 1}")
        return _resolve(self._default, messages, body)


class RuleResponder:
    """First rule whose regex (re.S) searches the last user message wins.

    A str reply may use ``{last_user}`` and the regex's named groups, e.g.
    ``(r"capital of (?P<country>\\w+)", "I do not know {country}")``; other braces stay as they
    are. A reply may also be a Fault or a responder callable. `target="all"` matches against
    every message's text joined by newlines instead of the last user message.
    """

    def __init__(
        self,
        rules: Iterable[tuple[str, str | Fault | Responder]],
        default: str | Fault | Responder = "stub reply",
        target: str = "last_user",
    ) -> None:
        self.rules = [(re.compile(pattern, re.S), reply) for pattern, reply in rules]
        self.default = default
        self.target = target

    def __call__(self, messages: list[Message], body: dict[str, Any]) -> str | Fault:
        last_user = last_user_text(messages)
        text = last_user
        if self.target == "all":
            text = "\n".join(message_text(m) for m in messages)
        for pattern, reply in self.rules:
            match = pattern.search(text)
            if match:
                if isinstance(reply, str):
                    return fill(reply, {"last_user": last_user, **match.groupdict()})
                return _resolve(reply, messages, body)
        if isinstance(self.default, str):
            return fill(self.default, {"last_user": last_user})
        return _resolve(self.default, messages, body)


def as_responder(spec: str | Responder | Iterable[str | Fault] | None) -> Responder:
    """A str is a constant reply, a list is a script, None replies "stub reply"."""
    if spec is None:
        return RuleResponder([], default="stub reply")
    if isinstance(spec, str):
        return RuleResponder([], default=spec)
    if callable(spec):
        return spec
    return ScriptedResponder(spec)


def responder_from_json(data: Mapping[str, Any]) -> Responder:
    """rules.json: {"rules": [[regex, reply], ...], "default": "..."} or {"replies": [...]}.

    A reply is a string or a fault object such as {"fault": "status", "code": 429}.
    """

    def decode(item: Any) -> str | Fault:
        if isinstance(item, dict):
            return Fault(item["fault"], **{k: v for k, v in item.items() if k != "fault"})
        return str(item)

    default = decode(data["default"]) if data.get("default") is not None else None
    if "replies" in data:
        return ScriptedResponder([decode(r) for r in data["replies"]], default=default)
    rules = [(str(pattern), decode(reply)) for pattern, reply in data.get("rules", [])]
    return RuleResponder(rules, default="stub reply" if default is None else default)


def read_count_file(path: str | Path, ok_only: bool = False) -> list[dict[str, Any]]:
    """The JSON lines of a count file; ok_only keeps calls that got a normal reply."""
    path = Path(path)
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in lines if not ok_only or entry["fault"] in (None, "delay", "empty")]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # parallel benchmarks open many connections at once

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), which can stall for seconds without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class StubOpenAI:
    """The stub server, in a background thread. Use as a context manager or start()/stop().

    `delay` sleeps before every reply; `count_file` gets one JSON line per completed call.
    """

    def __init__(
        self,
        responder: str | Responder | Iterable[str | Fault] | None = None,
        *,
        delay: float = 0.0,
        model: str = "stub",
        port: int = 0,
        count_file: str | Path | None = None,
    ) -> None:
        self.responder: Responder = as_responder(responder)
        self.delay = delay
        self.model = model
        self.count_file = Path(count_file) if count_file else None
        self._port = port
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> StubOpenAI:
        self._server = _Server(("127.0.0.1", self._port), _make_handler(self))
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes hanging / delayed handlers
        self._server.shutdown()
        self._server.server_close()
        with self._lock:  # idle keep-alive connections would otherwise pin their threads
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._server = None

    def __enter__(self) -> StubOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "StubOpenAI is not running"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Request bodies of every chat call received so far (faulted ones too), in order."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        with self._lock:
            return len(self._calls)

    def wait_for_calls(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.call_count < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- used by the handler ---------------------------------------------------------------
    def _record(self, body: dict[str, Any]) -> int:
        with self._lock:
            self._calls.append(body)
            return len(self._calls)

    def _log_completed(self, body: dict[str, Any], reply: str | Fault, status: int) -> None:
        if self.count_file is None:
            return
        fault = reply.kind if isinstance(reply, Fault) else None
        text = reply if isinstance(reply, str) else reply.reply
        entry = {"time": time.time(), "pid": os.getpid(), "status": status, "fault": fault}
        entry.update(messages=body.get("messages", []), reply=text)
        line = (json.dumps(entry) + "\n").encode()
        with self._lock:  # one write() on an O_APPEND fd keeps lines whole
            fd = os.open(self.count_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def _make_handler(stub: StubOpenAI) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"stub": stub})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API; SSE uses chunked encoding
    # Headers and body go out as separate writes: with Nagle on, the body waits for the client's
    # delayed ACK, ~40 ms a call, which is no longer an "instant" model.
    disable_nagle_algorithm = True
    stub: StubOpenAI

    def setup(self) -> None:
        super().setup()
        with self.stub._lock:
            self.stub._connections.add(self.connection)

    def finish(self) -> None:
        with self.stub._lock:
            self.stub._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep tests quiet
        pass

    # -- routing ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": self.stub.model, "object": "model", "created": 0, "owned_by": "stub"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error(Fault.status(404, message=f"Unknown path {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_error(Fault.status(404, message=f"Unknown path {self.path}"))
            return
        try:
            body = json.loads(raw or b"{}")
            messages = list(body.get("messages") or [])
        except (ValueError, TypeError):
            self._send_error(Fault.status(400, message="Request body is not valid JSON"))
            return
        self.stub._record(body)
        try:
            reply = self.stub.responder(messages, body)
        except Exception as exc:  # a broken responder should fail the test loudly, not hang
            traceback.print_exc()
            reply = Fault.status(500, message=f"stub responder raised {exc!r}")
        self.stub._sleep(self.stub.delay)
        try:
            status = self._reply(body, messages, reply)
        except OSError:  # the client went away (e.g. it was killed): not a completed call
            self.close_connection = True
            status = None
        if status is not None:
            self.stub._log_completed(body, reply, status)

    # -- replies ---------------------------------------------------------------------------
    def _reply(self, body: dict[str, Any], messages: list[Message], reply: str | Fault) -> int:
        """Send the reply; return its HTTP status (0 for a hang or reset, which send none)."""
        stream = bool(body.get("stream"))
        if isinstance(reply, str):
            text = reply
        elif reply.kind == "status":
            self._send_error(reply)
            return reply.code
        elif reply.kind == "hang":
            self.stub._sleep(reply.seconds)
            self.close_connection = True  # polite close (FIN) with no response at all
            return 0
        elif reply.kind == "reset":
            if stream and reply.reply:
                self._start_stream()
                self._stream_text(body, reply.reply)
            self._abort()
            return 0
        elif reply.kind == "malformed":
            if stream:
                self._start_stream()
                self._write_chunk(b'data: {"id": "chatcmpl-stub", "choices": [\n\n')
                self._end_stream()
            else:
                self._send_raw(200, b'{"id": "chatcmpl-stub", "choices": [')
            return 200
        elif reply.kind == "empty":
            text = ""
        elif reply.kind == "delay":
            self.stub._sleep(reply.seconds)
            text = reply.reply
        else:
            raise ValueError(f"unknown fault kind {reply.kind!r}")
        usage = _usage(messages, text)
        if stream:
            self._start_stream()
            self._stream_text(body, text)
            self._stream_finish(body, usage)
        else:
            self._send_json(200, self._completion(body, text, usage))
        return 200

    def _envelope(self, body: dict[str, Any], obj: str, choices: list[dict]) -> dict:
        return {"id": f"chatcmpl-stub-{self.stub.call_count}", "object": obj,
                "created": int(time.time()), "model": body.get("model") or self.stub.model,
                "system_fingerprint": "stub", "choices": choices}  # fmt: skip

    def _completion(self, body: dict[str, Any], text: str, usage: dict[str, int]) -> dict:
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        return {**self._envelope(body, "chat.completion", [choice]), "usage": usage}

    def _chunk(self, body: dict[str, Any], delta: dict, finish: str | None) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return self._envelope(body, "chat.completion.chunk", [choice])

    def _stream_text(self, body: dict[str, Any], text: str) -> None:
        self._send_event(self._chunk(body, {"role": "assistant", "content": ""}, None))
        for piece in re.findall(r"\S+\s*|\s+", text):  # word-sized deltas, like a real model
            self._send_event(self._chunk(body, {"content": piece}, None))

    def _stream_finish(self, body: dict[str, Any], usage: dict[str, int]) -> None:
        self._send_event(self._chunk(body, {}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._send_event({**self._envelope(body, "chat.completion.chunk", []), "usage": usage})
        self._write_chunk(b"data: [DONE]\n\n")
        self._end_stream()

    # -- low level -------------------------------------------------------------------------
    def _send_error(self, fault: Fault) -> None:
        etype, code = _ERROR_TYPES.get(fault.code, ("server_error", None))
        code = fault.error_code or code
        message = fault.message or f"Stub error {fault.code} ({code or etype})"
        error = {"message": message, "type": etype, "param": None, "code": code}
        headers = {}
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers = {"retry-after": str(seconds), "retry-after-ms": str(seconds * 1000)}
        self._send_raw(fault.code, json.dumps({"error": error}).encode(), headers)

    def _send_json(self, code: int, payload: dict) -> None:
        self._send_raw(code, json.dumps(payload).encode())

    def _send_raw(self, code: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_event(self, payload: dict) -> None:
        self._write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _abort(self) -> None:
        # SO_LINGER 0 makes close() send RST instead of FIN: the client sees a connection reset.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket: close it too so the socket really closes now.
        self.rfile.close()
        self.connection.close()


def _usage(messages: list[Message], text: str) -> dict[str, int]:
    prompt = estimate_tokens("".join(message_text(m) for m in messages))
    completion = estimate_tokens(text)
    total = prompt + completion
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


# -- separate process -------------------------------------------------------------------------
# The folder `rlm_research` is imported from: a checkout's root, or site-packages when installed.
IMPORT_ROOT = Path(sys.modules["rlm_research"].__file__).resolve().parents[1]


class StubProcess:
    """Runs the stub as its own process, so it outlives a client that a test kills.

    ``with StubProcess({"rules": [...], "default": "..."}, tmp_path) as proc:`` then
    ``proc.base_url``, ``proc.calls()`` (count-file lines) and ``proc.call_count``.
    """

    def __init__(self, rules: Mapping[str, Any], workdir: str | Path, *, delay: float = 0.0,
                 ready_timeout: float = 10.0) -> None:  # fmt: skip
        self.rules_file = Path(workdir) / "stub_rules.json"
        self.count_file = Path(workdir) / "stub_calls.jsonl"
        self.rules_file.write_text(json.dumps(rules))
        self.delay, self.ready_timeout = delay, ready_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> StubProcess:
        cmd = [sys.executable, "-m", "rlm_research.bench.stub_openai", "--port", "0"]
        cmd += ["--rules", str(self.rules_file), "--count-file", str(self.count_file)]
        cmd += ["--delay", str(self.delay)]
        self.proc = proc = subprocess.Popen(cmd, cwd=IMPORT_ROOT, stdout=subprocess.PIPE, text=True)
        line: list[str] = []  # readline in a thread, so a stub that never starts can't block us
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.ready_timeout)
        if not line or not line[0].startswith("READY "):
            self.stop()
            raise RuntimeError(f"stub process did not start: {line!r}")
        self.base_url = line[0].split()[1]
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()  # the count file is written per call, so nothing is lost
        self.proc.wait()
        self.proc.stdout.close()

    def calls(self, ok_only: bool = False) -> list[dict[str, Any]]:
        return read_count_file(self.count_file, ok_only=ok_only)

    @property
    def call_count(self) -> int:
        return len(self.calls())

    def __enter__(self) -> StubProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Stub OpenAI-compatible server for tests and benchmarks."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rules", type=Path, help="rules.json (see responder_from_json)")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--count-file", type=Path)
    parser.add_argument("--model", default="stub")
    args = parser.parse_args(argv)
    responder = responder_from_json(json.loads(args.rules.read_text())) if args.rules else None
    stub = StubOpenAI(responder, delay=args.delay, model=args.model, port=args.port)
    stub.count_file = args.count_file
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with stub:
        print(f"READY {stub.base_url}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
