"""Where a client-named URL may go: never to loopback, private, link-local, cloud-metadata or
otherwise non-public addresses (docs/security.md).

The check runs when the connection is made, on the address it is made to: the host is resolved
once, every address it resolves to is checked, and the connection goes to a checked address (so
a DNS answer that changes between check and connect, "DNS rebinding", gains nothing). A redirect
opens a new connection, so every hop is checked the same way. TLS still verifies the certificate
against the URL's host name.

`AddressGuard(public_hosts=...)` names `host:port` pairs the guard lets through although they
resolve to private addresses: the operator's setting `mcp_url_allow_hosts` (an intranet mirror
they vouch for), and what the tests use for a server on 127.0.0.1 that stands in for the web.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

Resolver = Callable[[str, int], list[str]]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints (AWS, GCP, Azure, OpenStack, Alibaba; AWS's IPv6 one). All but the
# last are link-local or private anyway; they are named so the error says what they are.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)


class BlockedAddress(Exception):
    """A URL whose host is (or resolves to) an address clients may not reach; one line."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def why_blocked(ip: IP) -> str | None:
    """What kind of non-public address `ip` is (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return why_blocked(ip.ipv4_mapped)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:  # carrier-grade NAT, documentation and other reserved ranges
        return "a reserved address"
    return None


@dataclass(frozen=True)
class AddressGuard:
    """Refuses connections to non-public addresses. `public_hosts`: `host:port` pairs let
    through as they are; `resolver`: host, port -> addresses (tests may inject one)."""

    public_hosts: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def allowing(cls, hosts: Iterable[str] | str | None) -> AddressGuard:
        """A guard from the operator's list (or comma-separated string) of `host:port`."""
        if isinstance(hosts, str):
            hosts = hosts.split(",")
        return cls(public_hosts=frozenset(h.strip().lower() for h in hosts or () if h.strip()))

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for `host:port`; BlockedAddress otherwise."""
        bare = host.strip("[]").lower()
        if f"{bare}:{port}" in self.public_hosts or f"[{bare}]:{port}" in self.public_hosts:
            return [bare]
        try:
            literal: IP | None = ipaddress.ip_address(bare)
        except ValueError:
            literal = None
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = self.resolver(bare, port)
            except OSError as e:
                raise BlockedAddress(f"cannot resolve {bare} ({e.strerror or e})") from None
        for address in found:
            reason = why_blocked(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                named = bare if bare == address else f"{bare} ({address})"
                raise BlockedAddress(
                    f"refused: {named} is {reason}; this server's clients may only reach "
                    "public addresses"
                )
        if not found:
            raise BlockedAddress(f"cannot resolve {bare} (no addresses)")
        return found

    def check_url(self, url: str) -> None:
        """Refuse a URL whose host is non-public before any request is made."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise BlockedAddress("refused: the URL has no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.addresses(parts.hostname, port)

    def transport(self, **kwargs: Any) -> httpx.HTTPTransport:
        """An httpx transport whose every connection goes through this guard."""
        return GuardedTransport(self, **kwargs)


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the guard checked, resolving each host once."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        addresses = self.guard.addresses(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as e:
                last = e
        assert last is not None
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with a connection pool that connects through the guard. Proxies from
    the environment are not used: a proxy would make the connection the guard cannot see."""

    def __init__(self, guard: AddressGuard, **kwargs: Any) -> None:
        super().__init__(trust_env=False, **kwargs)
        # httpx has no public hook for the network backend; its pool is replaced by one with
        # the same TLS context and the guarded backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(guard),
        )
