"""The REPL worker's process plumbing: its pipe to the host (4-byte length + JSON, never pickle),
its resource limits, dropping privileges, and exiting when the host is gone.

Standard library only: the worker imports it from beside itself, in the sandbox too."""

from __future__ import annotations

import json
import os
import resource
import struct
import threading
from typing import Any


class Channel:
    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.r = os.fdopen(fd_in, "rb", buffering=0)
        self.w = os.fdopen(fd_out, "wb", buffering=0)
        self.lock = threading.Lock()

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.r.read(n - len(buf))
            if not chunk:
                os._exit(0)  # the host is gone: nothing left to do
            buf += chunk
        return bytes(buf)

    def recv(self) -> dict[str, Any]:
        (n,) = struct.unpack(">I", self._read_exact(4))
        return json.loads(self._read_exact(n))

    def send(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, ensure_ascii=False, default=str).encode("utf-8", "replace")
        self.w.write(struct.pack(">I", len(data)) + data)


def apply_limits(limits: dict[str, int]) -> None:
    """Best effort: a limit the system refuses is skipped, not fatal."""
    table = {
        "memory_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "file_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
        "processes": resource.RLIMIT_NPROC,
    }
    for key, value in limits.items():
        if key in table and value:
            try:
                resource.setrlimit(table[key], (value, value))
            except (ValueError, OSError):
                pass
    # Limits are per process; if many processes together exhaust the machine's memory, the
    # kernel's OOM killer should pick this worker (and its children), never the host.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def drop_privileges(uid: int | None) -> None:
    """No setuid program can give the cell new privileges; then, when the host is root and gave
    the worker a uid of its own, become it for good (after the sources are read): RLIMIT_NPROC
    then applies, and root's files and processes are out of reach."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except (OSError, AttributeError):
        pass
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError("could not drop privileges")


def die_with_parent() -> None:
    """The worker runs in its own session (so a timeout can kill its whole process group), so it
    does not get the host's signals: if the host is killed, exit instead of running on."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            threading.Event().wait(0.5)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
