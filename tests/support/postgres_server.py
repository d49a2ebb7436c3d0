"""A private PostgreSQL server for tests and the benchmark: initdb into a temporary folder, a free
port on 127.0.0.1, the unix socket inside that folder, removed on stop.

    with PrivatePostgres() as pg: pg.url        # postgresql://rlm@127.0.0.1:PORT/rlm
    python -m tests.support.postgres_server      # prints READY <url>, serves until killed

initdb refuses to run as root, so as root the server runs as the `postgres` user (Debian's
package creates it), else `nobody`. `find_bin_dir()` is None when no PostgreSQL is installed:
the Postgres tests are then skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

USER = "rlm"
DATABASE = "rlm"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin with initdb and pg_ctl (else pg_ctl on PATH)."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run as")


class PrivatePostgres:
    def __init__(self, *, fsync: bool = False, max_connections: int = 300) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) found")
        self.bin_dir = bin_dir
        self.fsync = fsync  # off in tests: they kill clients, never the server
        self.max_connections = max_connections
        self.user = _server_user()
        self.root: Path | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stderr.strip() or out.stdout.strip()}")

    def start(self) -> PrivatePostgres:
        # Straight under /tmp: pytest's own temp folders are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="rlm-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data, sock = self.root / "data", self.root
        self._run("initdb", "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8")
        self.port = free_port()
        options = (
            f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={self.max_connections} -c fsync={'on' if self.fsync else 'off'}"
        )
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w",
                  "start")  # fmt: skip
        with psycopg.connect(
            f"postgresql://{USER}@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def new_database(self, name: str) -> str:
        """A fresh, empty database on this server; its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.root is None:
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    server = PrivatePostgres(fsync="--fsync" in sys.argv).start()
    print(f"READY {server.url}", flush=True)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop:
            time.sleep(0.5)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
