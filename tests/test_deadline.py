"""`Deadlines`: one timer for every in-flight fetch's hard deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from fetchpool._deadline import Deadlines


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def sleep_in_scope(deadlines: Deadlines, delay: float) -> str:
    """Sleep `delay` seconds inside a scope: "done", or "timeout" when the deadline came first."""
    try:
        with deadlines.scope():
            await asyncio.sleep(delay)
    except TimeoutError:
        return "timeout"
    return "done"


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
    async def scenario() -> None:
        deadlines = Deadlines(0.2)
        first = asyncio.create_task(sleep_in_scope(deadlines, 10))
        await asyncio.sleep(0.1)
        # Started 0.1 s later: still running when the first one's deadline passes.
        second = asyncio.create_task(sleep_in_scope(deadlines, 0.15))
        third = asyncio.create_task(sleep_in_scope(deadlines, 10))
        assert await first == "timeout"
        assert not second.done()
        assert not third.done()
        assert await second == "done"
        assert await third == "timeout"

    run(scenario())


@pytest.mark.parametrize(
    ("delay", "queued"),
    [
        (10, 1),  # long before the deadline: the finished scope waits in the FIFO
        (-1, 0),  # due at once: the deadline fires in the same turn as our cancel
    ],
)
def test_a_cancellation_from_outside_is_never_turned_into_a_timeout(
    delay: float, queued: int
) -> None:
    async def scenario() -> None:
        deadlines = Deadlines(delay)
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
        assert (deadlines.pending, deadlines.queued) == (0, queued)

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
    async def scenario() -> None:
        deadlines = Deadlines(0.1)
        delays = [0.0 if i % 2 else 5.0 for i in range(200)]
        done = await asyncio.gather(*(sleep_in_scope(deadlines, d) for d in delays))
        assert done == ["done" if d == 0.0 else "timeout" for d in delays]
        assert deadlines.pending == 0

    run(scenario())


def test_an_exception_inside_the_scope_propagates_unchanged() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(10)
        with pytest.raises(KeyError), deadlines.scope():
            raise KeyError("x")
        assert deadlines.pending == 0

    run(scenario())
