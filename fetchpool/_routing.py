"""Transports for what fetchpool's own HTTP/1.1 transport does not do: HTTP/2, proxies, and a
caller's own `httpx.AsyncClient`.

Each is an `httpx.AsyncBaseTransport`, so the fetcher has one request path in every mode,
`transport.handle_async_request(request)`, with its own redirect, credential, cookie and
header handling on top. Requests reach them without a `Host` header (the fetcher builds them
with `stream=`, and fetchpool's transport writes `Host` itself); these add it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

# The standard library's NO_PROXY rule (suffixes, "*", host:port); typeshed leaves it out.
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import httpx

from ._errors import UsageError

if TYPE_CHECKING:
    from ._transport import Resolver

__all__ = ["ClientTransport", "RoutingTransport"]

_PROXIED_SCHEMES = ("http", "https")


def _add_host(request: httpx.Request) -> None:
    if "host" not in request.headers:
        request.headers["Host"] = request.url.netloc.decode("ascii")


class RoutingTransport(httpx.AsyncBaseTransport):
    """Sends each request through the transport its URL needs: a proxy's, or the direct one.

    With `proxy`, every request goes through it, as curl's `-x` and httpx's `proxy=` do.
    Otherwise `environment` (what `urllib.request.getproxies()` returns: `HTTP_PROXY`,
    `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, lower case first) decides per URL: the proxy of
    its scheme, else `ALL_PROXY`, unless `NO_PROXY` names its host.

    Args:
        direct: for requests that go straight to their server.
        through: makes the transport that goes through a given proxy (one per proxy URL).
        proxy: the one proxy for every request, or None to follow `environment`.
        environment: proxy settings by scheme, as `urllib.request.getproxies()` gives them.
        resolver: a resolver the transports share and nothing else closes; closed with this.

    Raises:
        UsageError: a proxy URL that httpx cannot use (unknown scheme, no host).
    """

    def __init__(
        self,
        direct: httpx.AsyncBaseTransport,
        *,
        through: Callable[[httpx.Proxy], httpx.AsyncBaseTransport],
        proxy: str | None = None,
        environment: Mapping[str, str] | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._direct = direct
        self._resolver = resolver
        self._environment = dict(environment or {})
        self._every: httpx.AsyncBaseTransport | None = None
        self._by_scheme: dict[str, httpx.AsyncBaseTransport] = {}
        opened: dict[str, httpx.AsyncBaseTransport] = {}

        def open_proxy(url: str, where: str) -> httpx.AsyncBaseTransport:
            if "://" not in url:
                url = "http://" + url  # "host:port", as curl and httpx read it
            if url not in opened:
                try:
                    opened[url] = through(httpx.Proxy(url))
                except (ValueError, httpx.InvalidURL) as exc:
                    raise UsageError(f"invalid proxy URL {url!r}{where}: {exc}") from None
            return opened[url]

        if proxy is not None:
            self._every = open_proxy(proxy, "")
        else:
            for scheme in _PROXIED_SCHEMES:
                name = scheme if self._environment.get(scheme) else "all"
                url = self._environment.get(name)
                if url:
                    self._by_scheme[scheme] = open_proxy(url, f" in {name.upper()}_PROXY")
        self._transports = [direct, *opened.values()]

    def route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The transport that carries a request for `url`."""
        if self._every is not None:
            return self._every
        proxied = self._by_scheme.get(url.scheme)
        if proxied is None or proxy_bypass_environment(
            url.netloc.decode("ascii"), self._environment
        ):
            return self._direct
        return proxied

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _add_host(request)
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()
        if self._resolver is not None:
            self._resolver.close()


class ClientTransport(httpx.AsyncBaseTransport):
    """Hands each request to a caller's `httpx.AsyncClient` with `client.send()`.

    The client's transport, mounts, proxies, TLS settings, auth and event hooks apply; its
    default headers and cookies do not, because fetchpool builds every request itself (and
    never follows redirects through the client). The client stays the caller's to close.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _add_host(request)
        return await self._client.send(request, stream=True, follow_redirects=False)
