"""Name resolution for httpx's own transports (HTTP/2, proxies) through fetchpool's `Resolver`.

httpcore, under `httpx.AsyncHTTPTransport`, resolves inside `anyio.connect_tcp`, which runs
`getaddrinfo` on anyio's worker threads: no sharing between connections, no cache, and a
stuck lookup holds a thread. `ResolvingBackend` is an httpcore network backend that looks the
name up with the run's `Resolver` (shared, cached, never starved; a deadline that cuts it off
is kind `dns`) and then connects to the addresses it found, in order; TLS still verifies and
sends SNI for the host name, which httpcore passes to `start_tls` itself.

Imported only when such a transport is made, so a default run never imports httpcore here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ._resolver import ADDRESS_ATTEMPT_TIMEOUT, Resolver, is_ip_literal

__all__ = ["ResolvingBackend", "use_resolver"]


class ResolvingBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves with a `Resolver`, then connects by address.

    Args:
        resolver: the run's resolver.
        inner: the backend that opens the sockets (default: httpcore's anyio backend).
    """

    def __init__(self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None):
        self.resolver = resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if is_ip_literal(host):
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        known = self.resolver.cached(host)
        try:
            addrs = known if known is not None else await self.resolver.resolve(host)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc.strerror or exc}") from exc
        last: Exception | None = None
        final = len(addrs) - 1
        for i, (_, addr) in enumerate(addrs):
            connect = self._inner.connect_tcp(addr[0], port, timeout, local_address, socket_options)
            try:
                if i == final:
                    return await connect
                # As fetchpool's own transport does: a dead address gets a bounded try.
                async with asyncio.timeout(ADDRESS_ATTEMPT_TIMEOUT):
                    return await connect
            except (httpcore.ConnectError, httpcore.ConnectTimeout, TimeoutError) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def use_resolver(transport: httpx.AsyncHTTPTransport, resolver: Resolver) -> None:
    """Make `transport` (direct, or through an HTTP or SOCKS proxy) resolve with `resolver`.

    httpx does not take a network backend, so this sets the one attribute every httpcore
    pool (`AsyncConnectionPool`, `AsyncHTTPProxy`, `AsyncSOCKSProxy`) reads when it opens
    a connection; a test checks that the attribute is still there in the pinned versions.
    """
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpcore's connection pool has no _network_backend attribute")
    pool._network_backend = ResolvingBackend(resolver)
