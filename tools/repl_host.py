"""Host side of the REPL: starts worker processes, talks to them, and keeps the registry of live
workers (the one piece of process-wide mutable state: a worker outlives the `execute` node that
started it, because a cell can pause at `sub_lm` and continue after `spawn_subgraph`)."""

from __future__ import annotations

import atexit
import base64
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlm_research.tools import sandbox

WORKER_SCRIPT = Path(__file__).with_name("repl_worker.py")


@dataclass
class SubLMCall:
    """The cell called `sub_lm` / `sub_lm_batched` and waits for these requests' answers."""

    requests: list[dict[str, Any]]


@dataclass
class CellDone:
    result: dict[str, Any]


@dataclass
class WorkerDied:
    """The cell ended its worker (timeout, os._exit, a crash); the next cell gets a fresh one."""

    reason: str


@dataclass
class HostCall:
    """The cell called a host function (`web_search`, `fetch_url`) and waits for its result."""

    fn: str
    args: dict[str, Any]


WorkerEvent = SubLMCall | HostCall | CellDone | WorkerDied


@dataclass
class WorkerLimits:
    """Per worker; the sandbox that holds them is chosen by tools/sandbox.py (docs/sandbox.md)."""

    cell_timeout: float = 120.0  # wall seconds of a cell's own work; then its processes are killed
    memory_bytes: int = 4 * 1024**3  # address space per process (RLIMIT_AS)
    cpu_seconds: int = 3600  # CPU time per process (RLIMIT_CPU)
    file_bytes: int = 256 * 1024**2  # largest file a cell may write (RLIMIT_FSIZE)
    open_files: int = 256  # RLIMIT_NOFILE
    processes: int = 256  # processes + threads of the worker (RLIMIT_NPROC, see tools/sandbox.py)
    tmp_bytes: int = 256 * 1024**2  # size of the private /tmp (bwrap mode)
    capture_chars: int = 200_000
    web: bool = False  # install web_search / fetch_url in the namespace


@dataclass
class ReplWorker:
    context_paths: dict[str, str]
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    proc: subprocess.Popen[bytes] | None = None
    waiting: bool = False  # blocked in sub_lm, waiting for answers
    waiting_for: list[str] = field(default_factory=list)  # the request ids it is blocked on
    cell_started: int = 0  # the number of the last cell it was given
    replay: dict[str, list[list[Any]]] = field(default_factory=dict)  # see nodes/durable_cell
    cell_seconds: float = 0.0  # the current cell's own running time so far

    def start(self) -> None:
        host_r, worker_w = os.pipe()
        worker_r, host_w = os.pipe()
        self.scratch = tempfile.mkdtemp(prefix="rlm-scratch-")
        weakref.finalize(self, shutil.rmtree, self.scratch, ignore_errors=True)
        lim = self.limits
        # bwrap when it works here, else a plain subprocess; either way no inherited environment:
        # API keys and tokens stay in the host.
        try:
            launch = sandbox.plan(
                WORKER_SCRIPT,
                (worker_r, worker_w),
                self.scratch,
                self.context_paths,
                processes=lim.processes,
                tmp_bytes=lim.tmp_bytes,
            )
        except BaseException:
            for fd in (host_r, worker_w, worker_r, host_w):
                os.close(fd)
            raise
        self.sandbox = launch.mode
        try:
            self.proc = sandbox.popen(launch, pass_fds=(worker_r, worker_w))
        except BaseException:
            os.close(host_r)
            os.close(host_w)
            raise
        finally:
            os.close(worker_r)
            os.close(worker_w)
        self._r, self._w = host_r, host_w
        self._send(
            {
                "context_paths": launch.context_paths,
                "capture_chars": lim.capture_chars,
                "web": lim.web,
                "uid": launch.uid,
                "limits": {
                    "memory_bytes": lim.memory_bytes,
                    "cpu_seconds": lim.cpu_seconds,
                    "file_bytes": lim.file_bytes,
                    "open_files": lim.open_files,
                    "processes": launch.nproc,
                },
            }
        )
        event = self._recv(timeout=60.0)
        if not isinstance(event, dict) or event.get("op") != "ready":
            reason = event.reason if isinstance(event, WorkerDied) else "no handshake"
            raise RuntimeError(f"the REPL worker did not start ({launch.mode} mode): {reason}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, blocks: list[str], cell: int) -> WorkerEvent:
        self.cell_seconds = 0.0
        self._send({"op": "run", "blocks": blocks, "cell": cell})
        return self._next_event()

    def answer(self, answers: list[str]) -> WorkerEvent:
        self.waiting = False
        self._send({"answers": answers})
        return self._next_event()

    def host_result(self, result: Any = None, error: str | None = None) -> WorkerEvent:
        self.waiting = False
        self._send({"result": result, "error": error})
        return self._next_event()

    def fetch(self, hashes: list[str]) -> dict[str, bytes]:
        """The pickled values of the last snapshot that the blob store does not have yet."""
        if not hashes:
            return {}
        self._send({"op": "fetch", "hashes": hashes})
        msg = self._recv(timeout=120.0)
        if isinstance(msg, WorkerDied):
            return {}
        return {h: base64.b64decode(b) for h, b in msg.get("blobs", {}).items()}

    def restore(self, values: dict[str, bytes], modules: dict[str, str]) -> list[str]:
        """Load a snapshot into a fresh worker; returns the names it could not restore."""
        encoded = {name: base64.b64encode(data).decode() for name, data in values.items()}
        self._send({"op": "restore", "values": encoded, "modules": modules})
        msg = self._recv(timeout=120.0)
        if isinstance(msg, WorkerDied):
            raise RuntimeError(f"the REPL worker died while restoring its snapshot: {msg.reason}")
        return list(msg.get("dropped", []))

    def _next_event(self) -> WorkerEvent:
        started = time.monotonic()
        msg = self._recv(timeout=max(0.0, self.limits.cell_timeout - self.cell_seconds))
        self.cell_seconds += time.monotonic() - started
        if isinstance(msg, WorkerDied):
            return msg
        event = parse_event(msg)
        if isinstance(event, WorkerDied):
            self.kill()
        self.waiting = isinstance(event, (SubLMCall, HostCall))
        return event

    def _send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, ensure_ascii=False).encode("utf-8", "surrogatepass")
        try:
            os.write(self._w, struct.pack(">I", len(data)))
            view = memoryview(data)
            while view:
                view = view[os.write(self._w, view) :]
        except (BrokenPipeError, OSError):
            pass  # the read that follows reports the dead worker

    def _recv(self, timeout: float) -> dict[str, Any] | WorkerDied:
        deadline = time.monotonic() + timeout
        header = self._read_exact(4, deadline)
        if isinstance(header, WorkerDied):
            return header
        size = struct.unpack(">I", header)[0]
        if size > MAX_FRAME_BYTES:  # cell code can reach the pipe: never trust a length
            self.kill()
            return WorkerDied(f"protocol error: the REPL sent a {size:,}-byte message")
        body = self._read_exact(size, deadline)
        if isinstance(body, WorkerDied):
            return body
        try:
            msg = json.loads(body)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.kill()
            return WorkerDied("protocol error: the REPL sent a message that is not a JSON object")
        return msg

    def _read_exact(self, n: int, deadline: float) -> bytes | WorkerDied:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._r], [], [], max(0.0, left))
            if not ready:
                self.kill()
                return WorkerDied(
                    f"the cell ran longer than the {self.limits.cell_timeout:g} s limit and was "
                    "stopped"
                )
            chunk = os.read(self._r, min(n - len(buf), 1 << 20))
            if not chunk:
                code = self.proc.wait() if self.proc else None
                self.kill()
                return WorkerDied(_exit_reason(code))
            buf += chunk
        return bytes(buf)

    def kill(self) -> None:
        if self.proc is not None:
            # Always the whole group: processes a cell left behind outlive a worker that exited.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        for fd in ("_r", "_w"):
            if hasattr(self, fd):
                try:
                    os.close(getattr(self, fd))
                except OSError:
                    pass
                delattr(self, fd)

    def shutdown(self) -> None:
        if self.alive:
            self._send({"op": "shutdown"})
        self.kill()


MAX_FRAME_BYTES = 512 * 1024**2


def parse_event(msg: dict[str, Any]) -> WorkerEvent:
    """Check a worker message's shape: a cell can forge messages, and bad ones end the worker."""
    op = msg.get("op")
    if op == "sub_lm":
        reqs = msg.get("requests")
        ok = isinstance(reqs, list) and all(
            isinstance(r, dict)
            and isinstance(r.get("prompt"), str)
            and isinstance(r.get("context"), (str, type(None)))
            for r in reqs
        )
        if ok and reqs:
            return SubLMCall(requests=reqs)
    elif op == "host_call":
        if isinstance(msg.get("fn"), str) and isinstance(msg.get("args", {}), dict):
            return HostCall(fn=msg["fn"], args=dict(msg.get("args") or {}))
    elif op == "done" and isinstance(msg.get("blocks"), list):
        return CellDone(result=msg)
    return WorkerDied(f"protocol error: the REPL sent an unexpected message (op {str(op)[:40]!r})")


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else code
        return f"the REPL process was killed by {name}"
    return f"the REPL process exited (code {code})"


# -- the registry of live workers ------------------------------------------------------------
_LIVE: dict[str, ReplWorker] = {}
_LIVE_LOCK = threading.Lock()


def live_worker(level_id: str) -> ReplWorker | None:
    with _LIVE_LOCK:
        worker = _LIVE.get(level_id)
    return worker if worker is not None and worker.alive else None


def start_worker(level_id: str, context_paths: dict[str, str], limits: WorkerLimits) -> ReplWorker:
    stop_worker(level_id)
    worker = ReplWorker(context_paths=context_paths, limits=limits)
    worker.start()
    with _LIVE_LOCK:
        _LIVE[level_id] = worker
    return worker


def stop_worker(level_id: str) -> None:
    with _LIVE_LOCK:
        worker = _LIVE.pop(level_id, None)
    if worker is not None:
        worker.shutdown()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        workers = list(_LIVE.values())
        _LIVE.clear()
    for worker in workers:
        worker.kill()
