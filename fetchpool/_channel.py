"""A bounded channel between tasks on one event loop, whose close ends the receivers' loops.

End of input is expressed by closing the send side: receivers take what is left,
then their `async for` ends. No sentinels, no counters. (asyncio.Queue gains
`shutdown()` only in Python 3.13.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class EndOfStream(Exception):
    """The channel is closed and empty."""


class ChannelClosed(Exception):
    """A send on a channel that was closed."""


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
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once `close()` was called (items may still be waiting)."""
        return self._closed

    def close(self) -> None:
        """No more items: receivers take what is left, then get `EndOfStream`."""
        self._closed = True
        for waiters in (self._getters, self._putters):
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

    def send_nowait(self, item: T, *, force: bool = False) -> bool:
        """Add `item` if there is room (or `force`); False when full.

        Raises:
            ChannelClosed: the channel was closed.
        """
        if self._closed:
            raise ChannelClosed
        if not force and len(self._items) >= self._capacity:
            return False
        self._items.append(item)
        self._wake(self._getters)
        return True

    async def send(self, item: T) -> None:
        """Add `item`, waiting for room. If cancelled while waiting, nothing was added.

        Raises:
            ChannelClosed: the channel was (or got) closed.
        """
        while not self.send_nowait(item):
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
            asyncio.QueueEmpty: nothing is waiting (yet).
            EndOfStream: the channel is closed and empty.
        """
        if self._items:
            item = self._items.popleft()
            self._wake(self._putters)
            return item
        if self._closed:
            raise EndOfStream
        raise asyncio.QueueEmpty

    async def receive(self) -> T:
        """Take the next item, waiting for one.

        Raises:
            EndOfStream: the channel is closed and empty.
        """
        while True:
            try:
                return self.receive_nowait()
            except asyncio.QueueEmpty:
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
        try:
            return self.receive_nowait()
        except asyncio.QueueEmpty:
            pass
        except EndOfStream:
            raise StopAsyncIteration from None
        try:
            return await self.receive()
        except EndOfStream:
            raise StopAsyncIteration from None
