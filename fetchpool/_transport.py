"""A fast HTTP/1.1 transport for httpx: asyncio protocol, own response parser, O(1) pool.

httpcore's pool does work proportional to connections x waiting requests on every request; this
transport keeps httpx as the client API and replaces only what sits under `AsyncBaseTransport`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx

__all__ = ["FastTransport"]

Origin = tuple[str, str, int]

MAX_HEAD_BYTES = 64 * 1024  # status line + headers; more is a protocol error, as in h11
MAX_CHUNK_LINE = 4 * 1024  # a chunk-size line or one trailer line
_READ_HIGH_WATER = 256 * 1024  # buffered body bytes before we stop reading the socket
_READ_LOW_WATER = 64 * 1024
_ATTEMPT_TIMEOUT = 2.0  # seconds for each address but the last of a host with several

_HEAD_END = re.compile(rb"\n\r?\n")
# Header lines that are all plainly `name: value` CR LF (no folding, no bare CR or LF, no
# space in a name) are split without checks line by line; other blocks take the full parser.
_PLAIN_FIELDS = re.compile(rb"(?:[^:\s]+:[^\r\n]*\r\n)*[^:\s]+:[^\r\n]*\r?")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})

# Parser states of a connection.
_IDLE = 0  # no request in flight
_HEAD = 1  # waiting for (the rest of) the status line and headers
_LENGTH = 2  # body framed by Content-Length
_CHUNKED = 3  # chunked body
_UNTIL_CLOSE = 4  # body ends when the server closes
_DONE = 5  # response complete
_BROKEN = 6  # protocol error or connection lost mid-response

# Sub-states of the chunked parser.
_CH_SIZE = 0
_CH_DATA = 1
_CH_DATA_END = 2
_CH_TRAILER = 3


class _StaleConnection(Exception):
    """A reused keep-alive connection died before a single response byte arrived."""


class _Expired(Exception):
    """A read or write waited longer than its timeout."""


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(_Expired())


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


def _parse_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of the header lines that follow the status line."""
    if not block:
        return []
    if not _PLAIN_FIELDS.fullmatch(block):
        return _parse_fields_fully(block)
    headers = []
    for line in block.rstrip(b"\r").split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers.append((name, value.strip(b" \t")))
    return headers


def _parse_fields_fully(block: bytes) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            # Obsolete line folding: the line continues the previous header's value.
            if not headers:
                raise httpx.RemoteProtocolError("malformed header (continuation first)")
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or b" " in name or b"\t" in name:
            raise httpx.RemoteProtocolError(f"malformed header line {bytes(line[:80])!r}")
        headers.append((name, value.strip(b" \t")))
    return headers


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: it parses responses as bytes arrive (no per-read task switch)."""

    def __init__(self, pool: _Pool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False  # our side gave the connection up (slot accounted for)
        self.lost = False  # the socket is gone or half-closed by the peer
        self.idle = False  # sitting in the pool
        self.requests = 0  # requests sent so far, to know whether it was reused
        self.state = _IDLE
        self.is_head = False
        self.keep_alive = True
        self.received = False  # any byte of the current response arrived
        self.head: tuple[bytes, int, bytes, list[tuple[bytes, bytes]]] | None = None
        self.error: Exception | None = None
        self.remaining = 0
        self.chunk_state = _CH_SIZE
        self.head_buf = bytearray()
        self.head_scan = 0
        self.line_buf = bytearray()
        self.trailer_bytes = 0
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _LENGTH:
            # The common case after the head: body bytes of a Content-Length response.
            n = len(data)
            if n < self.remaining:
                self.remaining -= n
                self._push(data)
                return
        elif state in (_IDLE, _DONE, _BROKEN):
            # Bytes nobody asked for: the connection can no longer be trusted for reuse.
            self.keep_alive = False
            if self.idle:
                self.pool.discard_idle(self)
            elif state == _IDLE:
                self.lost = True  # handed to a waiter already: make it open a fresh one
            return
        self.received = True
        try:
            self._feed(data)
        except httpx.RemoteProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        self._lost(None)
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)
        dw = self.drain_waiter
        if dw is not None and not dw.done():
            dw.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        dw = self.drain_waiter
        if dw is not None and not dw.done():
            dw.set_result(None)

    # -- parser ---------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        while data:
            state = self.state
            if state == _HEAD:
                data = self._feed_head(data)
            elif state == _LENGTH:
                n = self.remaining
                if len(data) < n:
                    self.remaining = n - len(data)
                    self._push(data)
                    return
                self._push(data[:n])
                self.remaining = 0
                data = data[n:]
                self._finish()
            elif state == _CHUNKED:
                data = self._feed_chunked(data)
            elif state == _UNTIL_CLOSE:
                self._push(data)
                return
            else:
                # Bytes after the end of the response (pipelining junk, a second response).
                self.keep_alive = False
                return

    def _feed_head(self, data: bytes) -> bytes:
        buf = self.head_buf
        whole: bytes | bytearray
        if buf:
            buf += data
            whole = buf
        else:
            # Tolerate blank lines before the status line (RFC 9112 section 2.2).
            if data[:1] in (b"\r", b"\n"):
                data = data.lstrip(b"\r\n")
                if not data:
                    return b""
            whole = data
        m = _HEAD_END.search(whole, self.head_scan)
        if m is None:
            if len(whole) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response headers are too large (over 64 KiB)")
            if not buf:
                buf += data
            self.head_scan = max(0, len(whole) - 2)
            return b""
        end = m.start()
        if end > MAX_HEAD_BYTES:
            raise httpx.RemoteProtocolError("response headers are too large (over 64 KiB)")
        head = bytes(whole[:end])
        rest = bytes(whole[m.end() :])
        if buf:
            buf.clear()
        self.head_scan = 0
        self._parse_head(head)
        return rest

    def _parse_head(self, head: bytes) -> None:
        status_line, _, block = head.partition(b"\n")
        if status_line.endswith(b"\r"):
            status_line = status_line[:-1]
        parts = status_line.split(b" ", 2)
        version = parts[0]
        if len(parts) < 2 or not (version == b"HTTP/1.1" or version == b"HTTP/1.0"):
            raise httpx.RemoteProtocolError(
                f"malformed status line {bytes(status_line[:80])!r}"
                if status_line.startswith(b"HTTP/")
                else "response is not HTTP/1.x (bad status line)"
            )
        code = parts[1]
        if len(code) != 3 or not code.isdigit():
            raise httpx.RemoteProtocolError(f"malformed status code {bytes(code[:20])!r}")
        status = int(code)
        if status < 100:
            raise httpx.RemoteProtocolError(f"invalid status code {status}")
        reason = parts[2] if len(parts) == 3 else b""

        headers = _parse_fields(block)
        content_length: int | None = None
        chunked = False
        has_te = False
        conn_close = False
        conn_keep_alive = False
        for name, value in headers:
            n = len(name)
            if n == 14 or n == 17 or n == 10:
                lname = name.lower()
                if lname == b"content-length":
                    cl = self._content_length(value)
                    if content_length is not None and cl != content_length:
                        raise httpx.RemoteProtocolError("conflicting Content-Length headers")
                    content_length = cl
                elif lname == b"transfer-encoding":
                    has_te = True
                    chunked = value.rsplit(b",", 1)[-1].strip(b" \t").lower() == b"chunked"
                elif lname == b"connection":
                    tokens = value.lower()
                    if b"close" in tokens:
                        conn_close = True
                    if b"keep-alive" in tokens:
                        conn_keep_alive = True

        if 100 <= status < 200 and status != 101:
            return  # informational: the real response follows; stay in _HEAD

        if version == b"HTTP/1.1":
            if conn_close:
                self.keep_alive = False
        elif not conn_keep_alive or conn_close:
            self.keep_alive = False
        self.head = (version, status, reason, headers)

        if self.is_head or status == 204 or status == 304 or status == 101:
            if status == 101:
                self.keep_alive = False
            self._finish()
        elif has_te:
            if chunked:
                self.state = _CHUNKED
                self.chunk_state = _CH_SIZE
            else:
                self.state = _UNTIL_CLOSE
                self.keep_alive = False
        elif content_length is not None:
            if content_length == 0:
                self._finish()
            else:
                self.state = _LENGTH
                self.remaining = content_length
        else:
            self.state = _UNTIL_CLOSE
            self.keep_alive = False
        self._wake()

    @staticmethod
    def _content_length(value: bytes) -> int:
        # "5, 5" is allowed when every value is the same (RFC 9110 section 8.6).
        values = {v.strip(b" \t") for v in value.split(b",")} if b"," in value else {value}
        if len(values) != 1:
            raise httpx.RemoteProtocolError("conflicting Content-Length values")
        (v,) = values
        if not v.isdigit() or len(v) > 18:
            raise httpx.RemoteProtocolError(f"invalid Content-Length {bytes(v[:20])!r}")
        return int(v)

    def _take_line(self, data: bytes) -> tuple[bytes | None, bytes]:
        i = data.find(b"\n")
        buf = self.line_buf
        if i < 0:
            buf += data
            if len(buf) > MAX_CHUNK_LINE:
                raise httpx.RemoteProtocolError("chunked encoding line too long")
            return None, b""
        if buf:
            buf += data[:i]
            line = bytes(buf)
            buf.clear()
        else:
            line = data[:i]
        if len(line) > MAX_CHUNK_LINE:
            raise httpx.RemoteProtocolError("chunked encoding line too long")
        if line.endswith(b"\r"):
            line = line[:-1]
        return line, data[i + 1 :]

    def _feed_chunked(self, data: bytes) -> bytes:
        while data:
            cs = self.chunk_state
            if cs == _CH_DATA:
                n = self.remaining
                if len(data) < n:
                    self.remaining = n - len(data)
                    self._push(data)
                    return b""
                self._push(data[:n])
                data = data[n:]
                self.remaining = 0
                self.chunk_state = _CH_DATA_END
                continue
            line, data = self._take_line(data)
            if line is None:
                return b""
            if cs == _CH_SIZE:
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size_text):
                    raise httpx.RemoteProtocolError(
                        f"malformed chunk size {bytes(size_text[:20])!r}"
                    )
                size = int(size_text, 16)
                if size == 0:
                    self.chunk_state = _CH_TRAILER
                    self.trailer_bytes = 0
                else:
                    self.remaining = size
                    self.chunk_state = _CH_DATA
            elif cs == _CH_DATA_END:
                if line:
                    raise httpx.RemoteProtocolError("malformed chunked body (no CRLF after data)")
                self.chunk_state = _CH_SIZE
            else:  # trailers, ignored; an empty line ends the message
                if not line:
                    self._finish()
                    return data
                self.trailer_bytes += len(line)
                if self.trailer_bytes > MAX_HEAD_BYTES:
                    raise httpx.RemoteProtocolError("chunked trailers are too large")
        return b""

    def _push(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self.state = _DONE
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.state = _BROKEN
        self.error = exc
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.keep_alive = False
        state = self.state
        if self.idle:
            self.pool.discard_idle(self)
            return
        if state == _UNTIL_CLOSE and exc is None:
            self._finish()
            return
        if state not in (_HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE):
            return
        err: Exception
        if state == _HEAD and not self.received and self.requests > 1 and self.error is None:
            err = _StaleConnection()
        elif exc is not None:
            err = httpx.ReadError(str(exc) or type(exc).__name__)
        elif state == _HEAD:
            err = httpx.RemoteProtocolError(
                "server disconnected without sending a response"
                if not self.received
                else "server disconnected in the middle of the response headers"
            )
        elif state == _LENGTH:
            err = httpx.RemoteProtocolError(
                f"server disconnected before the end of the body ({self.remaining} bytes missing)"
            )
        else:
            err = httpx.RemoteProtocolError("server disconnected in the middle of a chunked body")
        err.__cause__ = exc
        self.state = _BROKEN
        self.error = err
        self._wake()

    # -- used by the transport and the response stream -------------------------------------------

    async def wait(self, timeout: float | None) -> None:
        fut: asyncio.Future[None] = self.loop.create_future()
        self.waiter = fut
        if timeout is None:
            await fut
            return
        handle = self.loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            handle.cancel()

    def close(self, *, free_slot: bool = True) -> None:
        """Give the connection up: abort the socket and (unless handed on) free its pool slot."""
        if self.closed:
            return
        self.closed = True
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()
        if free_slot:
            self.pool.free_slot(self)
        else:
            self.pool.forget(self)

    def response_closed(self) -> None:
        if self.closed:
            return
        if self.state == _DONE and self.keep_alive and not self.lost:
            # The whole response arrived (read or not): the connection is clean for reuse.
            if self.chunks:
                self.chunks.clear()
                self.buffered = 0
            if self.reading_paused and self.transport is not None:
                self.reading_paused = False
                self.transport.resume_reading()
            self.state = _IDLE
            self.head = None
            self.pool.release(self)
        else:
            self.close()


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one response, yielded as it arrives; closing it frees the connection."""

    __slots__ = ("_conn", "_read_timeout")

    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        chunks = conn.chunks
        while True:
            if chunks:
                data = chunks.popleft()
                conn.buffered -= len(data)
                if conn.reading_paused and conn.buffered < _READ_LOW_WATER:
                    conn.reading_paused = False
                    if conn.transport is not None and not conn.lost:
                        conn.transport.resume_reading()
                yield data
                continue
            state = conn.state
            if state == _DONE:
                return
            if state == _BROKEN:
                err = conn.error
                self._release()
                if isinstance(err, _StaleConnection):  # not possible mid-body; be explicit
                    raise httpx.RemoteProtocolError("server disconnected during the response")
                raise err if err is not None else httpx.ReadError("connection lost")
            if self._conn is None or conn.closed:
                raise httpx.ReadError("response stream was closed")
            try:
                await conn.wait(self._read_timeout)
            except _Expired:
                self._release()
                raise httpx.ReadTimeout("timed out reading the response body") from None

    def _release(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.response_closed()

    async def aclose(self) -> None:
        # No await here: this must finish even inside a cancelled task or scope.
        self._release()


class _Pool:
    """Idle connections per origin, a global cap on open connections and a FIFO of waiters.

    Every open (or opening) connection holds one slot. Acquire, release and free are O(1).
    """

    def __init__(self, max_connections: int, max_idle_per_host: int | None) -> None:
        self.max_connections = max_connections
        self.max_idle_per_host = max_idle_per_host
        self.open = 0
        self.idle: dict[Origin, dict[_Connection, None]] = {}
        self.idle_lru: OrderedDict[_Connection, None] = OrderedDict()
        self.waiters: deque[tuple[Origin, asyncio.Future[_Connection | None]]] = deque()
        self.connections: set[_Connection] = set()

    def try_acquire(self, origin: Origin) -> tuple[bool, _Connection | None]:
        """(True, idle connection) or (True, None) for a free slot, or (False, None) when full."""
        idle = self.idle.get(origin)
        if idle:
            conn, _ = idle.popitem()  # the most recently used: the least likely to be stale
            if not idle:
                del self.idle[origin]
            del self.idle_lru[conn]
            conn.idle = False
            return True, conn
        if self.open < self.max_connections:
            self.open += 1
            return True, None
        if self.idle_lru:
            # Full, but some other origin has an idle connection: close it and take its slot.
            old = next(iter(self.idle_lru))
            self._unlink_idle(old)
            old.close(free_slot=False)
            return True, None
        return False, None

    async def acquire(
        self, origin: Origin, timeout: float | None, loop: asyncio.AbstractEventLoop
    ) -> _Connection | None:
        ok, conn = self.try_acquire(origin)
        if ok:
            return conn
        fut: asyncio.Future[_Connection | None] = loop.create_future()
        self.waiters.append((origin, fut))
        try:
            if timeout is None:
                return await fut
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            self._abandon(fut)
            raise httpx.PoolTimeout("timed out waiting for a free connection") from None
        except BaseException:
            self._abandon(fut)
            raise

    def _abandon(self, fut: asyncio.Future[_Connection | None]) -> None:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            # We were handed a connection or a slot just as we left: pass it on.
            conn = fut.result()
            if conn is None:
                self.free_slot_only()
            elif conn.lost or not conn.keep_alive:
                conn.close()
            else:
                self.release(conn)
        else:
            fut.cancel()

    def _next_waiter(self) -> tuple[Origin, asyncio.Future[_Connection | None]] | None:
        waiters = self.waiters
        while waiters:
            item = waiters.popleft()
            if not item[1].done():
                return item
        return None

    def release(self, conn: _Connection) -> None:
        """Take back a reusable connection: hand it (or its slot) to a waiter, or keep it idle."""
        waiter = self._next_waiter()
        if waiter is not None:
            origin, fut = waiter
            if origin == conn.origin:
                fut.set_result(conn)
            else:
                conn.close(free_slot=False)
                fut.set_result(None)
            return
        origin = conn.origin
        idle = self.idle.get(origin)
        if idle is None:
            idle = self.idle[origin] = {}
        elif self.max_idle_per_host is not None and len(idle) >= self.max_idle_per_host:
            conn.close()
            return
        idle[conn] = None
        self.idle_lru[conn] = None
        conn.idle = True

    def _unlink_idle(self, conn: _Connection) -> None:
        conn.idle = False
        idle = self.idle.get(conn.origin)
        if idle is not None:
            idle.pop(conn, None)
            if not idle:
                del self.idle[conn.origin]
        self.idle_lru.pop(conn, None)

    def discard_idle(self, conn: _Connection) -> None:
        """An idle connection was closed by the peer (or sent junk): drop it, free its slot."""
        self._unlink_idle(conn)
        conn.close()

    def free_slot(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        self.free_slot_only()

    def forget(self, conn: _Connection) -> None:
        self.connections.discard(conn)

    def free_slot_only(self) -> None:
        waiter = self._next_waiter()
        if waiter is not None:
            waiter[1].set_result(None)  # the slot passes straight to the first waiter
        else:
            self.open -= 1

    def close_all(self) -> None:
        while self.waiters:
            _, fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(httpx.PoolTimeout("the transport was closed"))
        for conn in list(self.connections):
            if conn.idle:
                self._unlink_idle(conn)
            conn.close()


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for `httpx.AsyncClient` with an O(1) per-origin keep-alive pool.

    Args:
        ssl_context: used for https URLs (default: `httpx.create_ssl_context()`); its ALPN is
            set to http/1.1, so do not share it with an HTTP/2 transport.
        max_connections: the cap on open connections over all origins; requests beyond it wait
            in FIFO order (`pool` timeout).
        max_idle_per_host: idle keep-alive connections kept per origin (None: no limit below
            `max_connections`).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
        max_connections: int = 100,
        max_idle_per_host: int | None = None,
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
        self._pool = _Pool(max_connections, max_idle_per_host)
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open or being opened now (each holds a pool slot)."""
        return self._pool.open

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
            except _StaleConnection:
                conn.close(free_slot=False)
                conn = None
                if retried or method not in _IDEMPOTENT or body:
                    pool.free_slot_only()
                    raise httpx.RemoteProtocolError(
                        "server disconnected without sending a response"
                    ) from None
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
    ) -> _Connection:
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
            pool.free_slot_only()
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except BaseException:
            pool.free_slot_only()
            raise
        pool.connections.add(conn)
        return conn

    async def _open_socket(
        self, origin: Origin, ssl_ctx: ssl.SSLContext | None, loop: asyncio.AbstractEventLoop
    ) -> _Connection:
        _, host, port = origin
        # Resolve here rather than in create_connection so a refused connection keeps its own
        # exception type (3.11 folds several failed addresses into one plain OSError).
        addrs: list[tuple[int, tuple[Any, ...]]]
        if _is_ip_literal(host):
            addrs = [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))]
        else:
            try:
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except OSError as exc:
                raise _connect_error(exc, host, port) from exc
            if not infos:
                raise httpx.ConnectError(f"cannot resolve {host!r}: no addresses")
            addrs = [(info[0], info[4]) for info in infos]
        first_error: OSError | None = None
        last = len(addrs) - 1
        for i, (family, sockaddr) in enumerate(addrs):
            conn = _Connection(self._pool, origin, loop)
            try:
                if i == last:
                    await self._create(conn, family, sockaddr, host, ssl_ctx, loop)
                else:
                    # An address that swallows SYNs (broken IPv6, say) must not use up the whole
                    # connect timeout before the next address gets a chance.
                    async with asyncio.timeout(_ATTEMPT_TIMEOUT):
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
        conn: _Connection,
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
        conn: _Connection,
        request: httpx.Request,
        method: bytes,
        head: bytes,
        body: bytes,
        timeouts: dict[str, Any],
    ) -> httpx.Response:
        transport = conn.transport
        assert transport is not None
        conn.requests += 1
        conn.state = _HEAD
        conn.is_head = method == b"HEAD"
        conn.keep_alive = True
        conn.received = False
        conn.error = None
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
                raise _StaleConnection() from exc
            raise httpx.WriteError(str(exc)) from exc

        read_timeout = timeouts.get("read")
        while conn.head is None:
            if conn.state == _BROKEN:
                err = conn.error
                assert err is not None
                raise err
            try:
                await conn.wait(read_timeout)
            except _Expired:
                raise httpx.ReadTimeout("timed out waiting for the response") from None
        version, status, reason, headers = conn.head
        return httpx.Response(
            status,
            headers=headers,
            stream=_ResponseStream(conn, read_timeout),
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def _write_stream(
        self, conn: _Connection, request: httpx.Request, timeout: float | None
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
    async def _drain(conn: _Connection, timeout: float | None) -> None:
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
