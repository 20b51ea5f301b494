"""`Deadlines`: one timer for every in-flight fetch's hard deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from fetchpool._deadline import Deadlines


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_work_past_its_deadline_raises_timeout_error() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(0.05)
        started = time.monotonic()
        with pytest.raises(TimeoutError), deadlines.scope():
            await asyncio.sleep(10)
        assert time.monotonic() - started < 2

    run(scenario())


def test_work_within_its_deadline_is_untouched_and_later_awaits_are_not_cancelled() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(0.05)
        with deadlines.scope():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.15)  # past the first deadline: nothing may fire at this task
        assert deadlines.pending == 0

    run(scenario())


def test_each_scope_has_its_own_deadline() -> None:
    async def one(deadlines: Deadlines, delay: float) -> str:
        try:
            with deadlines.scope():
                await asyncio.sleep(delay)
        except TimeoutError:
            return "timeout"
        return "done"

    async def scenario() -> None:
        deadlines = Deadlines(0.2)
        first = asyncio.create_task(one(deadlines, 10))
        await asyncio.sleep(0.1)
        # Started 0.1 s later: still running when the first one's deadline passes.
        second = asyncio.create_task(one(deadlines, 0.15))
        third = asyncio.create_task(one(deadlines, 10))
        assert await first == "timeout"
        assert not second.done()
        assert not third.done()
        assert await second == "done"
        assert await third == "timeout"

    run(scenario())


def test_a_cancellation_from_outside_is_not_turned_into_a_timeout() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(10)
        entered = asyncio.Event()

        async def work() -> None:
            with deadlines.scope():
                entered.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(work())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadlines.pending == 0

    run(scenario())


def test_cancelled_from_outside_as_the_deadline_passes_stays_cancelled() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(-1)  # due at once: it fires in the same turn as our cancel
        entered = asyncio.Event()

        async def work() -> None:
            with deadlines.scope():
                entered.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(work())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (deadlines.pending, deadlines.queued) == (0, 0)  # the deadline did fire

    run(scenario())


def test_finished_scopes_do_not_pile_up_between_timer_firings() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(30)
        for _ in range(10_000):
            with deadlines.scope():
                await asyncio.sleep(0)
        # Bounded by the scopes in flight (here none), not by the scopes ever entered.
        assert deadlines.queued <= 2 * deadlines.pending + 64

    run(scenario())


def test_many_concurrent_scopes_expire_in_order_and_the_rest_finish() -> None:
    async def one(deadlines: Deadlines, delay: float) -> bool:
        try:
            with deadlines.scope():
                await asyncio.sleep(delay)
        except TimeoutError:
            return False
        return True

    async def scenario() -> None:
        deadlines = Deadlines(0.1)
        delays = [0.0 if i % 2 else 5.0 for i in range(200)]
        done = await asyncio.gather(*(one(deadlines, d) for d in delays))
        assert done == [d == 0.0 for d in delays]
        assert deadlines.pending == 0

    run(scenario())


def test_an_exception_inside_the_scope_propagates_unchanged() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(10)
        with pytest.raises(KeyError), deadlines.scope():
            raise KeyError("x")
        assert deadlines.pending == 0

    run(scenario())
