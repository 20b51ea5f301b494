"""One HTTP/1.1 connection as an asyncio protocol, and the body stream of its response.

`Connection` is a `ResponseParser` fed straight from `data_received`, so a response is parsed
as its bytes arrive with no task switch per read; the reader waits on one future that the
parser's hooks resolve. Body bytes are buffered up to a high-water mark, after which the
socket is paused until the reader catches up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

import httpx

from ._parser import BROKEN, CHUNKED, DONE, HEAD, IDLE, LENGTH, UNTIL_CLOSE, ResponseParser

if TYPE_CHECKING:
    from ._pool import ConnectionPool

__all__ = ["Connection", "Expired", "Origin", "ResponseStream", "StaleConnection"]

Origin = tuple[str, str, int]  # (scheme, host, port)

READ_HIGH_WATER = 256 * 1024  # buffered body bytes before we stop reading the socket
READ_LOW_WATER = 64 * 1024


class StaleConnection(Exception):
    """A reused keep-alive connection died before a single response byte arrived."""


class Expired(Exception):
    """A read or write waited longer than its timeout."""


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(Expired())


class Connection(asyncio.Protocol, ResponseParser):
    """One HTTP/1.1 connection: it parses responses as bytes arrive (no per-read task switch)."""

    def __init__(
        self, pool: ConnectionPool, origin: Origin, loop: asyncio.AbstractEventLoop
    ) -> None:
        ResponseParser.__init__(self)
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False  # our side gave the connection up (slot accounted for)
        self.lost = False  # the socket is gone or half-closed by the peer
        self.idle = False  # sitting in the pool
        self.idle_since = 0.0  # loop time it became idle
        self.requests = 0  # requests sent so far, to know whether it was reused
        self.error: Exception | None = None
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
        if state == LENGTH:
            # The common case after the head: body bytes of a Content-Length response.
            n = len(data)
            if n < self.remaining:
                self.remaining -= n
                self._push(data)
                return
        elif state in (IDLE, DONE, BROKEN):
            # Bytes nobody asked for: the connection can no longer be trusted for reuse.
            self.keep_alive = False
            if self.idle:
                self.pool.discard_idle(self)
            elif state == IDLE:
                self.lost = True  # handed to a waiter already: make it open a fresh one
            return
        try:
            self.feed(data)
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

    # -- parser hooks ---------------------------------------------------------------------------

    def _push(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.state = BROKEN
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
        if state == UNTIL_CLOSE and exc is None:
            self.eof_error()  # the end of the body
            return
        if state not in (HEAD, LENGTH, CHUNKED, UNTIL_CLOSE):
            return
        err: Exception | None
        if state == HEAD and not self.received and self.requests > 1 and self.error is None:
            err = StaleConnection()
        elif exc is not None:
            err = httpx.ReadError(str(exc) or type(exc).__name__)
        else:
            err = self.eof_error()
        assert err is not None
        err.__cause__ = exc
        self.state = BROKEN
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
        if self.state == DONE and self.keep_alive and not self.lost:
            # The whole response arrived (read or not): the connection is clean for reuse.
            if self.chunks:
                self.chunks.clear()
                self.buffered = 0
            if self.reading_paused and self.transport is not None:
                self.reading_paused = False
                self.transport.resume_reading()
            self.state = IDLE
            self.head = None
            self.pool.release(self)
        else:
            self.close()


class ResponseStream(httpx.AsyncByteStream):
    """The body of one response, yielded as it arrives; closing it frees the connection."""

    __slots__ = ("_conn", "_read_timeout")

    def __init__(self, conn: Connection, read_timeout: float | None) -> None:
        self._conn: Connection | None = conn
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
                if conn.reading_paused and conn.buffered < READ_LOW_WATER:
                    conn.reading_paused = False
                    if conn.transport is not None and not conn.lost:
                        conn.transport.resume_reading()
                yield data
                continue
            state = conn.state
            if state == DONE:
                return
            if state == BROKEN:
                err = conn.error
                self._release()
                if isinstance(err, StaleConnection):  # not possible mid-body; be explicit
                    raise httpx.RemoteProtocolError("server disconnected during the response")
                raise err if err is not None else httpx.ReadError("connection lost")
            if self._conn is None or conn.closed:
                raise httpx.ReadError("response stream was closed")
            try:
                await conn.wait(self._read_timeout)
            except Expired:
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
