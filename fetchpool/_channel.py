"""A bounded channel between tasks on one event loop, in trio's words for would-block and closed.

Either side says "stop" by closing its end, and the other side sees it:

- `close()` (the send side, end of input): receivers take what is left, then their
  `async for` ends (`receive()` raises `EndOfChannel`). No sentinels, no counters.
- `close_receive()` (the receive side, the consumer stops): senders, waiting or not, get
  `BrokenResourceError`; what was waiting in the channel is dropped. A sender that is busy
  elsewhere (a worker in a long fetch) learns it at once from `wait_receive_closed()`.

    Exception            raised by            when
    WouldBlock           send_nowait()        the channel is full
                         receive_nowait()     the channel is empty (and not closed)
    EndOfChannel         receive*()           the send side is closed and nothing is left
    ClosedResourceError  send*()              after `close()`: this side closed itself
                         receive*()           after `close_receive()`
    BrokenResourceError  send*()              after `close_receive()`: nobody receives

The `*_nowait` methods take or add an item without a loop turn, the pool's fast path; they
raise only when the caller would have to wait (or stop), so a caller keeps its `try` for the
rare path. (asyncio.Queue gains `shutdown()` only in Python 3.13.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = [
    "BrokenResourceError",
    "Channel",
    "ClosedResourceError",
    "EndOfChannel",
    "WouldBlock",
]


class WouldBlock(Exception):
    """A `*_nowait` call would have to wait: the channel is full (send) or empty (receive)."""


class EndOfChannel(Exception):
    """The send side is closed and every item has been received."""


class ClosedResourceError(Exception):
    """This side of the channel was closed by its own user, then used."""


class BrokenResourceError(Exception):
    """The receive side was closed: nothing sent will be received."""


class Channel(Generic[T]):
    """A FIFO of at most `capacity` items; `send` waits for room (backpressure).

    Args:
        capacity: how many items may wait in the channel (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        self._receive_closed = False
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._watchers: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once `close()` was called (items may still be waiting)."""
        return self._closed

    @property
    def receive_closed(self) -> bool:
        """True once `close_receive()` was called: nobody takes items any more."""
        return self._receive_closed

    def close(self) -> None:
        """The send side is done: receivers take what is left, then get `EndOfChannel`."""
        self._closed = True
        self._wake_all(self._getters, self._putters)

    def close_receive(self) -> None:
        """The receive side is done: every send from now on raises `BrokenResourceError`."""
        self._receive_closed = True
        self._items.clear()
        self._wake_all(self._getters, self._putters, self._watchers)

    async def wait_receive_closed(self) -> None:
        """Return once the receive side is closed: a sender busy elsewhere learns it at once."""
        if not self._receive_closed:
            waiter = asyncio.get_running_loop().create_future()
            self._watchers.append(waiter)
            await waiter

    def _wake_all(self, *queues: deque[asyncio.Future[None]]) -> None:
        for waiters in queues:
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    @staticmethod
    def _wake(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _check_send(self) -> None:
        if self._receive_closed:
            raise BrokenResourceError
        if self._closed:
            raise ClosedResourceError

    def send_nowait(self, item: T, *, force: bool = False) -> None:
        """Add `item` if there is room (or `force`: past the capacity, never blocking).

        Raises:
            WouldBlock: the channel is full.
            BrokenResourceError: the receive side was closed.
            ClosedResourceError: the send side was closed.
        """
        if self._closed or self._receive_closed:
            self._check_send()
        if not force and len(self._items) >= self._capacity:
            raise WouldBlock
        self._items.append(item)
        self._wake(self._getters)

    async def send(self, item: T) -> None:
        """Add `item`, waiting for room. If cancelled while waiting, nothing was added.

        Raises:
            BrokenResourceError: the receive side was (or got) closed.
            ClosedResourceError: the send side was (or got) closed.
        """
        while True:
            self._check_send()
            if len(self._items) < self._capacity:
                self._items.append(item)
                self._wake(self._getters)
                return
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled: pass a wake-up we may have been given on to another sender.
                if waiter.done() and not waiter.cancelled() and len(self._items) < self._capacity:
                    self._wake(self._putters)
                raise

    def receive_nowait(self) -> T:
        """Take the next item.

        Raises:
            WouldBlock: nothing is waiting (yet).
            EndOfChannel: the send side is closed and nothing is left.
            ClosedResourceError: the receive side was closed.
        """
        if self._items:
            item = self._items.popleft()
            self._wake(self._putters)
            return item
        if self._receive_closed:
            raise ClosedResourceError
        if self._closed:
            raise EndOfChannel
        raise WouldBlock

    async def receive(self) -> T:
        """Take the next item, waiting for one.

        Raises:
            EndOfChannel: the send side is closed and nothing is left.
            ClosedResourceError: the receive side was closed.
        """
        while True:
            if self._items or self._closed or self._receive_closed:
                return self.receive_nowait()  # an item, or the condition raised
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled: pass a wake-up we may have been given on to another receiver.
                if waiter.done() and not waiter.cancelled() and self._items:
                    self._wake(self._getters)
                raise

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._items:  # the fast path: no loop turn
            item = self._items.popleft()
            self._wake(self._putters)
            return item
        try:
            return await self.receive()
        except EndOfChannel:
            raise StopAsyncIteration from None
