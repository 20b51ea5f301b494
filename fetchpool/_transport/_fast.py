"""`FastTransport`: HTTP/1.1 for `httpx.AsyncClient` on fetchpool's own connections.

httpcore's pool does work proportional to connections x waiting requests on every request;
this transport keeps httpx as the client API and replaces only what sits under
`AsyncBaseTransport`: the parser (`_parser`), the connection protocol (`_connection`), the
pool (`_pool`) and name resolution (`_resolver`).
"""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

import httpx

from ._connection import Connection, Expired, Origin, ResponseStream, StaleConnection
from ._errors import EmptyReply
from ._parser import BROKEN, HEAD
from ._pool import ConnectionPool
from ._resolver import ADDRESS_ATTEMPT_TIMEOUT, Resolver, is_ip_literal, lookup_in_progress

__all__ = ["FastTransport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})
DEFAULT_MAX_IDLE = 1024
DEFAULT_KEEPALIVE_EXPIRY = 60.0


def _connect_error(exc: BaseException, host: str, port: int) -> httpx.ConnectError:
    if isinstance(exc, socket.gaierror):
        text = f"cannot resolve {host!r}: {exc.strerror or exc}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS certificate verification failed: {exc.verify_message or exc}"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS handshake failed: {exc.reason or exc}"
    else:
        text = str(exc) or type(exc).__name__
    err = httpx.ConnectError(text)
    err.__cause__ = exc
    return err


def _idle_budget(max_connections: int) -> int:
    """Idle connections to keep: DEFAULT_MAX_IDLE, less when file descriptors are short."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_IDLE
    # Leave room for the busy connections, the resolver, the input, the output and stdio.
    return max(0, min(DEFAULT_MAX_IDLE, (soft - max_connections - 64) // 2))


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for `httpx.AsyncClient` with an O(1) per-origin keep-alive pool.

    Args:
        ssl_context: used for https URLs (default: `httpx.create_ssl_context()`), or a factory
            called at the first https URL; its ALPN is set to http/1.1, so do not share it
            with an HTTP/2 transport.
        max_connections: the cap on connections in use (or being opened) over all origins;
            requests beyond it wait in FIFO order (`pool` timeout).
        max_idle: idle keep-alive connections kept over all origins, least recently used
            closed first (default: 1024, fewer when the file-descriptor limit is low). They
            do not count against `max_connections`.
        max_idle_per_host: idle keep-alive connections kept per origin (None: no own limit).
        keepalive_expiry: seconds an idle connection may wait before it is no longer reused.
        resolver: host name lookups (default: a `Resolver` of its own: one lookup per name
            for the transport's life, shared by concurrent connections).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
        max_connections: int = 100,
        max_idle: int | None = None,
        max_idle_per_host: int | None = None,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        resolver: Resolver | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        # A factory defers loading the CA bundle (tens of ms) to the first https URL.
        self._ssl_context: ssl.SSLContext | None = None
        self._ssl_factory: Callable[[], ssl.SSLContext] = httpx.create_ssl_context
        if isinstance(ssl_context, ssl.SSLContext):
            ssl_context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = ssl_context
        elif ssl_context is not None:
            self._ssl_factory = ssl_context
        self._pool = ConnectionPool(
            max_connections,
            max_idle=_idle_budget(max_connections) if max_idle is None else max_idle,
            max_idle_per_host=max_idle_per_host,
            keepalive_expiry=keepalive_expiry,
        )
        self._own_resolver = resolver is None
        self.resolver = Resolver() if resolver is None else resolver
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now, busy or idle."""
        return len(self._pool.connections)

    @property
    def busy_connections(self) -> int:
        """Connections in use or being opened (each holds one of `max_connections`)."""
        return self._pool.busy

    @property
    def idle_connections(self) -> int:
        """Keep-alive connections waiting in the pool."""
        return len(self._pool.idle_lru)

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            ctx = self._ssl_factory()
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl_context = ctx
        return self._ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("FastTransport is closed")
        url = request.url
        scheme = url.scheme
        if scheme != "http" and scheme != "https":
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        # The ASCII (IDNA) form: resolved, and sent as SNI, as the wire needs it.
        host = url.raw_host.decode("ascii")
        if not host:
            raise httpx.UnsupportedProtocol("URL has no host")
        port = url.port or _DEFAULT_PORTS[scheme]
        origin = (scheme, host, port)
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        loop = asyncio.get_running_loop()
        pool = self._pool
        method = request.method.encode("ascii")
        head, body = self._serialize(request, method)

        ok, conn = pool.try_acquire(origin)
        if not ok:
            conn = await pool.acquire(origin, timeouts.get("pool"), loop)
        retried = False
        while True:
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect"), loop)
            elif conn.closed:
                # Closed by aclose() while handed over: its slot is gone, ask for another.
                if self._closed:
                    raise RuntimeError("FastTransport is closed")
                conn = await pool.acquire(origin, timeouts.get("pool"), loop)
                continue
            elif conn.lost:
                # Died between release and reuse: keep the slot, open a fresh connection.
                conn.close(free_slot=False)
                conn = None
                continue
            try:
                return await self._exchange(conn, request, method, head, body, timeouts)
            except StaleConnection:
                conn.close(free_slot=False)
                conn = None
                if retried or method not in _IDEMPOTENT or body:
                    pool.free_slot_only()
                    raise EmptyReply() from None
                retried = True
            except BaseException:
                conn.close()
                raise

    @staticmethod
    def _serialize(request: httpx.Request, method: bytes) -> tuple[bytes, bytes]:
        url = request.url
        raw = request.headers.raw
        block = b"\r\n".join([b"%b: %b" % field for field in raw])
        # The joined block has exactly one CR LF between fields: any other CR or LF came
        # from a name or a value, and would let it forge headers of its own.
        breaks = len(raw) - 1 if raw else 0
        if block.count(b"\n") != breaks or block.count(b"\r") != breaks:
            raise httpx.LocalProtocolError("header contains a line break")
        lowered = b"\n" + block.lower()
        # Host first, as httpx would place it, unless the request has one.
        host = b"" if b"\nhost:" in lowered else b"Host: %b\r\n" % url.netloc
        stream = request.stream
        # A body given as bytes is sent with the head; a streaming body by _exchange.
        body = b"".join(stream) if isinstance(stream, httpx.ByteStream) else b""
        if body and b"\ncontent-length:" not in lowered and b"\ntransfer-encoding:" not in lowered:
            # Built with stream=, which adds no headers: without a length the server
            # would read the body as the start of the next request.
            block += b"%bContent-Length: %d" % (b"\r\n" if raw else b"", len(body))
        head = b"%b %b HTTP/1.1\r\n%b%b%b\r\n" % (
            method,
            url.raw_path,
            host,
            block,
            b"\r\n" if block else b"",
        )
        return head, body

    async def _connect(
        self, origin: Origin, timeout: float | None, loop: asyncio.AbstractEventLoop
    ) -> Connection:
        """Open a connection in a slot the caller already holds; free the slot on failure."""
        scheme, host, port = origin
        pool = self._pool
        ssl_ctx = self._ssl() if scheme == "https" else None
        try:
            if timeout is None:
                conn = await self._open_socket(origin, ssl_ctx, loop)
            else:
                async with asyncio.timeout(timeout):
                    conn = await self._open_socket(origin, ssl_ctx, loop)
        except TimeoutError:
            # The connect timeout, not the URL's deadline, cut it off: no DNS kind to report.
            lookup_in_progress.set(None)
            pool.free_slot_only()
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except BaseException:
            pool.free_slot_only()
            raise
        pool.connections.add(conn)
        return conn

    async def _open_socket(
        self, origin: Origin, ssl_ctx: ssl.SSLContext | None, loop: asyncio.AbstractEventLoop
    ) -> Connection:
        _, host, port = origin
        # Resolve here rather than in create_connection so a refused connection keeps its own
        # exception type (3.11 folds several failed addresses into one plain OSError).
        addrs: list[tuple[int, tuple[Any, ...]]]
        if is_ip_literal(host):
            addrs = [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))]
        else:
            resolver = self.resolver
            known = resolver.cached(host)
            try:
                found = known if known is not None else await resolver.resolve(host)
            except OSError as exc:
                raise _connect_error(exc, host, port) from exc
            addrs = [(family, (addr[0], port, *addr[2:])) for family, addr in found]
        first_error: OSError | None = None
        last = len(addrs) - 1
        for i, (family, sockaddr) in enumerate(addrs):
            conn = Connection(self._pool, origin, loop)
            try:
                if i == last:
                    await self._create(conn, family, sockaddr, host, ssl_ctx, loop)
                else:
                    # An address that swallows SYNs (broken IPv6, say) must not use up the whole
                    # connect timeout before the next address gets a chance.
                    async with asyncio.timeout(ADDRESS_ATTEMPT_TIMEOUT):
                        await self._create(conn, family, sockaddr, host, ssl_ctx, loop)
                return conn
            except ssl.SSLError as exc:
                raise _connect_error(exc, host, port) from exc
            except OSError as exc:  # TimeoutError included
                if first_error is None or isinstance(first_error, TimeoutError):
                    first_error = exc
        assert first_error is not None
        if isinstance(first_error, TimeoutError):
            raise first_error
        raise _connect_error(first_error, host, port) from first_error

    async def _create(
        self,
        conn: Connection,
        family: int,
        sockaddr: tuple[Any, ...],
        host: str,
        ssl_ctx: ssl.SSLContext | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        await loop.create_connection(
            lambda: conn,
            sockaddr[0],
            sockaddr[1],
            family=family,
            ssl=ssl_ctx,
            server_hostname=host if ssl_ctx is not None else None,
        )

    async def _exchange(
        self,
        conn: Connection,
        request: httpx.Request,
        method: bytes,
        head: bytes,
        body: bytes,
        timeouts: dict[str, Any],
    ) -> httpx.Response:
        transport = conn.transport
        assert transport is not None
        # ResponseParser.expect() and a request count, inline: this runs once per request.
        conn.requests += 1
        conn.error = None
        conn.state = HEAD
        conn.is_head = method == b"HEAD"
        conn.keep_alive = True
        conn.received = False
        conn.head = None
        if b"close" in head and request.headers.get("connection", "").lower() == "close":
            conn.keep_alive = False
        try:
            if body:
                transport.write(head + body)
            else:
                transport.write(head)
                if not isinstance(request.stream, httpx.ByteStream):
                    await self._write_stream(conn, request, timeouts.get("write"))
            if conn.write_paused:
                await self._drain(conn, timeouts.get("write"))
        except OSError as exc:
            if conn.requests > 1 and not conn.received:
                raise StaleConnection() from exc
            raise httpx.WriteError(str(exc)) from exc

        read_timeout = timeouts.get("read")
        while conn.head is None:
            if conn.state == BROKEN:
                err = conn.error
                assert err is not None
                raise err
            try:
                await conn.wait(read_timeout)
            except Expired:
                raise httpx.ReadTimeout("timed out waiting for the response") from None
        version, status, reason, headers = conn.head
        return httpx.Response(
            status,
            headers=headers,
            stream=ResponseStream(conn, read_timeout),
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def _write_stream(
        self, conn: Connection, request: httpx.Request, timeout: float | None
    ) -> None:
        transport = conn.transport
        assert transport is not None
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        stream = cast(httpx.AsyncByteStream, request.stream)
        async for chunk in stream:
            if not chunk:
                continue
            if conn.lost:
                raise httpx.WriteError("connection lost while sending the request body")
            if chunked:
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                transport.write(chunk)
            if conn.write_paused:
                await self._drain(conn, timeout)
        if chunked:
            transport.write(b"0\r\n\r\n")

    @staticmethod
    async def _drain(conn: Connection, timeout: float | None) -> None:
        while conn.write_paused and not conn.lost:
            fut: asyncio.Future[None] = conn.loop.create_future()
            conn.drain_waiter = fut
            try:
                if timeout is None:
                    await fut
                else:
                    async with asyncio.timeout(timeout):
                        await fut
            except TimeoutError:
                raise httpx.WriteTimeout("timed out sending the request") from None
            finally:
                conn.drain_waiter = None
        if conn.lost:
            raise httpx.WriteError("connection lost while sending the request")

    async def aclose(self) -> None:
        self._closed = True
        self._pool.close_all()
        if self._own_resolver:
            self.resolver.close()
