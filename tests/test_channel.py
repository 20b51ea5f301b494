"""The bounded channel between the input reader, the workers and the output."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from fetchpool import (
    BrokenResourceError,
    Channel,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
)

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(5):
            return await coro

    return asyncio.run(bounded())


def test_closing_ends_the_receivers_after_what_is_left() -> None:
    async def scenario() -> list[list[int]]:
        channel = Channel[int](10)
        for i in range(5):
            channel.send_nowait(i)
        channel.close()

        async def drain() -> list[int]:
            return [i async for i in channel]

        return list(await asyncio.gather(drain(), drain()))

    first, second = run(scenario())
    assert sorted(first + second) == [0, 1, 2, 3, 4]


def test_a_full_channel_makes_the_sender_wait() -> None:
    async def scenario() -> list[str]:
        channel = Channel[int](1)
        events: list[str] = []

        async def produce() -> None:
            for i in range(3):
                await channel.send(i)
                events.append(f"sent {i}")
            channel.close()

        task = asyncio.create_task(produce())
        await asyncio.sleep(0.05)
        events.append("consumer starts")
        events += [f"got {i}" async for i in channel]
        await task
        return events

    events = run(scenario())
    assert events[:2] == ["sent 0", "consumer starts"]  # the second send waited for room
    assert [e for e in events if e.startswith("got")] == ["got 0", "got 1", "got 2"]


def test_a_cancelled_send_adds_nothing() -> None:
    async def scenario() -> list[int]:
        channel = Channel[int](1)
        channel.send_nowait(1)
        task = asyncio.create_task(channel.send(2))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        channel.close()
        return [i async for i in channel]

    assert run(scenario()) == [1]


def test_force_goes_past_capacity_and_a_closed_channel_refuses() -> None:
    channel = Channel[int](1)
    channel.send_nowait(1)
    with pytest.raises(WouldBlock):
        channel.send_nowait(2)
    channel.send_nowait(2, force=True)
    channel.close()
    with pytest.raises(ClosedResourceError):
        channel.send_nowait(3)
    assert [channel.receive_nowait(), channel.receive_nowait()] == [1, 2]
    with pytest.raises(EndOfChannel):
        channel.receive_nowait()


def test_an_empty_open_channel_would_block() -> None:
    channel = Channel[int](1)
    with pytest.raises(WouldBlock):
        channel.receive_nowait()


def test_closing_the_receive_side_breaks_every_sender() -> None:
    async def scenario() -> None:
        channel = Channel[int](1)
        channel.send_nowait(0)
        waiting = asyncio.create_task(channel.send(1))
        await asyncio.sleep(0.01)  # waits for room
        channel.close_receive()
        with pytest.raises(BrokenResourceError):
            await waiting
        with pytest.raises(BrokenResourceError):
            channel.send_nowait(2)
        with pytest.raises(ClosedResourceError):
            channel.receive_nowait()

    run(scenario())


def test_a_waiting_receiver_wakes_on_close() -> None:
    async def scenario() -> None:
        channel = Channel[int](1)
        task = asyncio.create_task(channel.receive())
        await asyncio.sleep(0.01)
        channel.close()
        with pytest.raises(EndOfChannel):
            await task

    run(scenario())


def test_a_sender_cancelled_after_being_woken_passes_the_room_on() -> None:
    async def scenario() -> list[int]:
        channel = Channel[int](1)
        channel.send_nowait(0)
        first = asyncio.create_task(channel.send(1))
        second = asyncio.create_task(channel.send(2))
        await asyncio.sleep(0.01)  # both wait for room
        assert channel.receive_nowait() == 0  # wakes the first sender...
        first.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        await second  # the room went to the second sender instead of being lost
        channel.close()
        return [i async for i in channel]

    assert run(scenario()) == [2]
