"""The transport and the client of a run: fetchpool's own HTTP/1.1 transport, or httpx's
transports for HTTP/2 and proxies behind a `RoutingTransport`, and where the fetcher sends
requests given a caller's client."""

from __future__ import annotations

import urllib.request
from typing import Any

import httpx

from ._config import Settings
from ._tls import context_factory
from ._transport import FastTransport, Resolver

__all__ = ["make_client", "make_transport", "transport_for"]


def make_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The transport of a run, sized for its workers.

    fetchpool's own HTTP/1.1 transport (an O(1) connection pool); when HTTP/2 or a proxy is in
    use, a `RoutingTransport` that sends each request through httpx's transport for HTTP/2 or
    for its proxy, and the rest straight on. Proxies come from `settings.proxy`, else from
    `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` in the environment.
    """
    factory = context_factory(settings)  # checks `cacert` now; the store loads later
    own = None
    if not settings.http2:
        own = FastTransport(ssl_context=factory, max_connections=settings.workers)
    environment = {} if settings.proxy is not None else urllib.request.getproxies()
    proxied = settings.proxy is not None or any(
        environment.get(scheme) for scheme in ("http", "https", "all")
    )
    if own is not None and not proxied:  # NO_PROXY alone ("no") needs no proxy transport
        return own
    from ._routing import RoutingTransport
    from ._transport._httpcore import use_resolver

    # httpx's transports share one TLS context of their own (fetchpool's sets ALPN to
    # http/1.1 on its), built now, and the run's one resolver.
    context = factory()
    resolver = own.resolver if own is not None else Resolver()
    limits = httpx.Limits(
        max_connections=settings.workers, max_keepalive_connections=settings.workers
    )

    def httpx_transport(proxy: httpx.Proxy | None = None) -> httpx.AsyncHTTPTransport:
        transport = httpx.AsyncHTTPTransport(
            verify=context, http2=settings.http2, limits=limits, proxy=proxy
        )
        use_resolver(transport, resolver)
        return transport

    return RoutingTransport(
        own if own is not None else httpx_transport(),
        through=httpx_transport,
        proxy=settings.proxy,
        environment=environment,
        resolver=None if own is not None else resolver,  # fetchpool's own closes its own
    )


class _RunClient(httpx.AsyncClient):
    """A client made by `make_client`: the fetcher sends to its transport directly."""

    def __init__(self, transport: httpx.AsyncBaseTransport, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        self.run_transport = transport


def make_client(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A client for sharing one run's connections between `fetch()` calls or `Pool`s.

    Its transport is `transport`, else `make_transport(settings)`; given this client, the
    fetcher sends to that transport directly, past the client layer. Closing the client
    closes the transport.
    """
    return _RunClient(
        transport if transport is not None else make_transport(settings),
        timeout=httpx.Timeout(settings.timeout),
        trust_env=False,  # the transport routes proxies; no client mounts on top of it
        follow_redirects=False,
        headers={"User-Agent": settings.user_agent},
    )


def transport_for(client: httpx.AsyncClient) -> httpx.AsyncBaseTransport:
    """Where the fetcher sends requests given `client`: the transport of a `make_client`
    client, else the client itself (`client.send()`, through a `ClientTransport`)."""
    if isinstance(client, _RunClient):
        return client.run_transport
    from ._routing import ClientTransport

    return ClientTransport(client)
