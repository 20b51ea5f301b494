"""`RateLimiter`: starts 1/rate apart, first come first served, no burst, cancellation-safe."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from fetchpool._errors import UsageError
from fetchpool._rate import RateLimiter
from fetchpool.cli.errors import usage_message


class FakeTime:
    """A clock that moves only when the test says so, and a sleep that waits for it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time on, waking each sleeper at its own deadline, in order."""
        target = self.now + seconds
        while True:
            await _settle()
            due = [s for s in self._sleepers if s[0] <= target and not s[1].done()]
            if not due:
                break
            deadline, future = min(due, key=lambda s: s[0])
            self.now = max(self.now, deadline)
            future.set_result(None)
        self._sleepers = [s for s in self._sleepers if not s[1].done()]
        self.now = target
        await _settle()


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _run(coro: Coroutine[Any, Any, None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(5):
            await coro

    asyncio.run(bounded())


def _spawn_acquirers(
    limiter: RateLimiter, fake: FakeTime, count: int
) -> tuple[list[asyncio.Task[None]], list[tuple[int, float]]]:
    started: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        started.append((i, fake.now))

    return [asyncio.create_task(one(i)) for i in range(count)], started


def test_sequential_starts_are_spaced_one_interval_apart() -> None:
    async def main() -> None:
        fake = FakeTime()
        limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
        starts: list[float] = []

        async def one_after_another() -> None:
            for _ in range(5):
                await limiter.acquire()
                starts.append(fake.now)

        task = asyncio.create_task(one_after_another())
        await fake.advance(1)
        await task
        assert starts == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])

    _run(main())


def test_the_first_request_starts_at_once() -> None:
    async def main() -> None:
        fake = FakeTime()
        limiter = RateLimiter(0.001, clock=fake.clock, sleep=fake.sleep)
        await limiter.acquire()
        assert fake.now == 0.0

    _run(main())


def test_idle_time_earns_no_burst() -> None:
    async def main() -> None:
        fake = FakeTime()
        limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
        await limiter.acquire()
        await fake.advance(60)  # a long quiet spell
        tasks, started = _spawn_acquirers(limiter, fake, 3)
        await fake.advance(0)
        assert [t for _, t in started] == [60.0]  # one at once, the others wait
        await fake.advance(1)
        assert [t for _, t in started] == pytest.approx([60.0, 60.1, 60.2])
        await asyncio.gather(*tasks)

    _run(main())


def test_concurrent_callers_are_served_first_come_first_served() -> None:
    async def main() -> None:
        fake = FakeTime()
        limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
        tasks, started = _spawn_acquirers(limiter, fake, 8)
        await fake.advance(0.3)
        assert started == [(0, 0.0), (1, 0.25)]
        await fake.advance(10)
        assert [i for i, _ in started] == list(range(8))
        assert [t for _, t in started] == pytest.approx([i * 0.25 for i in range(8)])
        await asyncio.gather(*tasks)

    _run(main())


def test_a_cancelled_waiter_leaves_no_gap_in_the_schedule() -> None:
    async def main() -> None:
        fake = FakeTime()
        limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
        tasks, started = _spawn_acquirers(limiter, fake, 4)
        await fake.advance(0.05)
        # Task 1 is asleep until 0.1; tasks 2 and 3 queue behind it.
        tasks[1].cancel()
        await fake.advance(1)
        assert started == [(0, 0.0), (2, pytest.approx(0.1)), (3, pytest.approx(0.2))]
        assert tasks[1].cancelled()
        await asyncio.gather(tasks[0], tasks[2], tasks[3])

    _run(main())


def test_cancelling_queued_waiters_keeps_the_rest_one_interval_apart() -> None:
    async def main() -> None:
        fake = FakeTime()
        limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
        tasks, started = _spawn_acquirers(limiter, fake, 6)
        await fake.advance(0.01)
        for i in (1, 2, 4):  # the sleeping head and two still queued
            tasks[i].cancel()
        await fake.advance(1)
        assert [i for i, _ in started] == [0, 3, 5]
        assert [t for _, t in started] == pytest.approx([0.0, 0.1, 0.2])

    _run(main())


def test_a_late_wake_up_never_lets_two_starts_come_closer_than_one_interval() -> None:
    async def main() -> None:
        now = 0.0

        async def oversleeping(seconds: float) -> None:
            nonlocal now
            now += seconds + 0.03

        limiter = RateLimiter(10, clock=lambda: now, sleep=oversleeping)
        starts = []
        for _ in range(4):
            await limiter.acquire()
            starts.append(now)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(g >= 0.1 - 1e-9 for g in gaps)

    _run(main())


@pytest.mark.parametrize("rate", [0, -1, math.nan, math.inf])
def test_rate_must_be_a_positive_finite_number(rate: float) -> None:
    with pytest.raises(UsageError, match=r"^invalid rate ") as info:
        RateLimiter(rate)
    assert "--rate" in usage_message(info.value)


def test_real_clock_ten_requests_at_fifty_per_second() -> None:
    async def main() -> None:
        limiter = RateLimiter(50)
        began = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(10)))
        elapsed = time.monotonic() - began
        # Nine intervals of 20 ms after an immediate first start; generous upper bound for CI.
        assert 0.17 <= elapsed < 2.0

    _run(main())
