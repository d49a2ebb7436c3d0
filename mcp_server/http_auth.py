"""`--http`: streamable HTTP behind a bearer token and the SDK's Host/Origin check.

Every request needs `Authorization: Bearer <token>`: the token is `$RLM_MCP_TOKEN`, or one made
at start and printed once to stderr. Without it (or with a wrong one) the answer is 401 before
the MCP app sees the request. A host other than loopback is served only with `$RLM_MCP_TOKEN`
set (a token printed to a terminal is for the machine's own user). The SDK's DNS-rebinding
protection (Host and Origin checked, 421 / 403) stays on for every host: loopback names, the
bound host, and the names the operator gives with `--allowed-host`.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import sys
from collections.abc import Iterable

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "RLM_MCP_TOKEN"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class HttpSetupError(Exception):
    """A setup the server refuses to serve; one line for stderr."""


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_token(host: str, environ: dict[str, str] | None = None) -> tuple[str, bool]:
    """(the bearer token, whether it was made here). Non-loopback needs `$RLM_MCP_TOKEN`."""
    env = os.environ if environ is None else environ
    token = (env.get(TOKEN_ENV) or "").strip()
    if token:
        if len(token) < 16:
            raise HttpSetupError(f"{TOKEN_ENV} is too short: use at least 16 characters")
        return token, False
    if not is_loopback(host):
        raise HttpSetupError(
            f"--host {host} serves other machines: set {TOKEN_ENV} to a long random token "
            "first (clients send it as 'Authorization: Bearer <token>')"
        )
    return secrets.token_urlsafe(32), True


def host_check(host: str, port: int, extra: Iterable[str] = ()) -> TransportSecuritySettings:
    """The SDK's Host/Origin check for loopback names, the bound host and `extra` names."""
    names = [*LOOPBACK_NAMES]
    bare = host.strip("[]")
    if bare not in WILDCARD_HOSTS:
        names.append(f"[{bare}]" if ":" in bare else bare)
    names += [n.strip() for n in extra if n.strip()]
    hosts: list[str] = []
    origins: list[str] = []
    for name in dict.fromkeys(names):
        with_port = name if name.rsplit("]", 1)[-1].count(":") == 1 else f"{name}:{port}"
        hosts += [with_port, name]
        origins += [f"http://{with_port}", f"https://{with_port}", f"http://{name}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerToken:
    """ASGI middleware: 401 for an HTTP request without the right bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="rlm-research-mcp"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope.get("headers") or ():
            if name.lower() == b"authorization":
                given = value.strip()
                break
        return hmac.compare_digest(given, self._expected)


def serve_http(
    server: MCPServer,
    *,
    host: str,
    port: int,
    allowed_hosts: Iterable[str] = (),
    log_level: str = "WARNING",
) -> None:
    """Serve streamable HTTP at http://HOST:PORT/mcp behind the token and the host check."""
    import anyio
    import uvicorn

    token, made_here = server_token(host)
    if made_here:
        print(
            f"rlm-research-mcp: bearer token for this server (set {TOKEN_ENV} to choose one): "
            f"{token}",
            file=sys.stderr,
            flush=True,
        )
    app = server.streamable_http_app(
        transport_security=host_check(host, port, allowed_hosts), host=host
    )
    config = uvicorn.Config(
        BearerToken(app, token), host=host, port=port, log_level=log_level.lower()
    )
    anyio.run(uvicorn.Server(config).serve)
