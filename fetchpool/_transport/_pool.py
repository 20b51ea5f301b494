"""Connections per origin: a cap on the busy ones, a budget of their own for the idle ones.

A request holds a *slot* from the moment it asks for a connection until its response is
closed: at most `max_connections` at once, and requests beyond that wait in FIFO order. An
idle keep-alive connection holds no slot: idle connections have their own budget, over all
origins (`max_idle`, least recently used closed first) and per origin (`max_idle_per_host`),
so a run over hundreds of hosts keeps one warm connection per host instead of closing them
to make room for the next host. One idle longer than `keepalive_expiry` is not reused.
Acquire, release and free are O(1).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque

import httpx

from ._connection import Connection, Origin

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Slots for busy connections, idle connections per origin, and a FIFO of waiters."""

    def __init__(
        self,
        max_connections: int,
        *,
        max_idle: int,
        max_idle_per_host: int | None,
        keepalive_expiry: float,
    ) -> None:
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.max_idle_per_host = max_idle_per_host
        self.keepalive_expiry = keepalive_expiry
        self.busy = 0  # slots held: connections in use or being opened
        self.idle: dict[Origin, dict[Connection, None]] = {}
        self.idle_lru: OrderedDict[Connection, None] = OrderedDict()
        self.waiters: deque[tuple[Origin, asyncio.Future[Connection | None]]] = deque()
        self.connections: set[Connection] = set()  # every open connection, busy or idle

    def try_acquire(self, origin: Origin) -> tuple[bool, Connection | None]:
        """(True, idle connection) or (True, None) for a free slot, or (False, None) when full."""
        if self.busy >= self.max_connections:
            return False, None
        self.busy += 1
        idle = self.idle.get(origin)
        while idle:
            conn, _ = idle.popitem()  # the most recently used: the least likely to be stale
            if not idle:
                del self.idle[origin]
            del self.idle_lru[conn]
            conn.idle = False
            if conn.loop.time() - conn.idle_since <= self.keepalive_expiry:
                return True, conn
            conn.close(free_slot=False)  # idle too long: the server may have dropped it
            idle = self.idle.get(origin)
        return True, None

    async def acquire(
        self, origin: Origin, timeout: float | None, loop: asyncio.AbstractEventLoop
    ) -> Connection | None:
        ok, conn = self.try_acquire(origin)
        if ok:
            return conn
        fut: asyncio.Future[Connection | None] = loop.create_future()
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

    def _abandon(self, fut: asyncio.Future[Connection | None]) -> None:
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

    def _next_waiter(self) -> tuple[Origin, asyncio.Future[Connection | None]] | None:
        waiters = self.waiters
        while waiters:
            item = waiters.popleft()
            if not item[1].done():
                return item
        return None

    def release(self, conn: Connection) -> None:
        """Take back a reusable connection: its slot to a waiter (with it, if same origin),
        the connection to the idle ones, within their budget."""
        if self.waiters:
            waiter = self._next_waiter()
            if waiter is not None:
                origin, fut = waiter
                if origin == conn.origin:
                    fut.set_result(conn)  # connection and slot pass on together
                    return
                fut.set_result(None)  # the slot passes on; the connection goes idle
            else:
                self.busy -= 1
        else:
            self.busy -= 1
        if self.max_idle <= 0:
            conn.close(free_slot=False)
            return
        origin = conn.origin
        idle = self.idle.get(origin)
        if idle is None:
            idle = self.idle[origin] = {}
        elif self.max_idle_per_host is not None and len(idle) >= self.max_idle_per_host:
            conn.close(free_slot=False)
            return
        idle_lru = self.idle_lru
        if len(idle_lru) >= self.max_idle:
            oldest = next(iter(idle_lru))
            self._unlink_idle(oldest)
            oldest.close(free_slot=False)
            idle = self.idle.get(origin)
            if idle is None:
                idle = self.idle[origin] = {}
        idle[conn] = None
        idle_lru[conn] = None
        conn.idle = True
        conn.idle_since = conn.loop.time()

    def _unlink_idle(self, conn: Connection) -> None:
        conn.idle = False
        idle = self.idle.get(conn.origin)
        if idle is not None:
            idle.pop(conn, None)
            if not idle:
                del self.idle[conn.origin]
        self.idle_lru.pop(conn, None)

    def discard_idle(self, conn: Connection) -> None:
        """An idle connection was closed by the peer (or sent junk): drop it."""
        self._unlink_idle(conn)
        conn.close(free_slot=False)

    def free_slot(self, conn: Connection) -> None:
        """A busy connection was closed: forget it and free its slot."""
        self.connections.discard(conn)
        self.free_slot_only()

    def forget(self, conn: Connection) -> None:
        """A connection that holds no slot (idle, or its slot passed on) was closed."""
        self.connections.discard(conn)

    def free_slot_only(self) -> None:
        waiter = self._next_waiter()
        if waiter is not None:
            waiter[1].set_result(None)  # the slot passes straight to the first waiter
        else:
            self.busy -= 1

    def close_all(self) -> None:
        while self.waiters:
            _, fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(httpx.PoolTimeout("the transport was closed"))
        for conn in list(self.connections):
            if conn.idle:
                self._unlink_idle(conn)
            conn.close(free_slot=False)
