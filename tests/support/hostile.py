"""A hostile MCP client's world (tests/test_mcp_security.py, tests/test_trust_policy.py): a
working folder with secrets in and around it, and HTTP servers on 127.0.0.1 a client must not
reach (or that stand in for the public web)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

API_KEY = "sk-operator-key-5519-do-not-leak"
SECRET = "TOPSECRET-4471"


class Capture:
    """Records every request; answers each with the secret (it must never be asked)."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                owner.requests.append((self.command, self.path, dict(self.headers)))
                if redirect_to and self.path.startswith("/go"):
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = (f"public page {self.path}" if redirect_to else SECRET).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_work(tmp_path: Path) -> Path:
    """The server's working folder (its default source root), with secrets in and around it."""
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "doc.txt").write_text("The vault code is 7413.\n")
    (work / "notes" / "a.txt").write_text("Notes: the meeting is on Tuesday.\n")
    (work / ".env").write_text(f"OPENAI_API_KEY={SECRET}\n")
    (work / ".ssh").mkdir()
    (work / ".ssh" / "id_ed25519").write_text(f"-----BEGIN KEY----- {SECRET}\n")
    (work / "keys").mkdir()
    (work / "keys" / "server.pem").write_text(f"-----BEGIN PRIVATE KEY----- {SECRET}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"outside the root: {SECRET}\n")
    (work / "innocent.txt").symlink_to(outside / "secret.txt")
    (work / "notes" / "link.txt").symlink_to(outside / "secret.txt")
    (work / "notes" / "id_rsa").write_text(f"{SECRET}\n")
    (work / "notes" / "env-link.txt").symlink_to(work / ".env")
    return work
