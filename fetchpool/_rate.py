"""`--rate`: a whole-run limit on how many requests start per second, shared by all workers.

Starts are spaced exactly `1/rate` apart, first come first served, with no burst: an idle
period earns no credit, so the first request after it starts at once and the next one an
interval later.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from ._errors import SettingError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Lets callers start one at a time, at most `rate` per second over the whole run.

    Callers queue on a FIFO lock; the one at the head sleeps until the next start time,
    then moves that time one interval on. Only the head sleeps, so a waiter cancelled
    while sleeping has not yet used its start: the next caller inherits that start time
    and no gap is left in the schedule. O(1) per call.

    Args:
        rate: requests per second (a positive, finite number).
        clock: monotonic time in seconds; injectable for tests.
        sleep: awaitable sleep in seconds; injectable for tests.

    Raises:
        SettingError: `rate` is not a positive finite number.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise SettingError("rate", f"{rate:g}", "must be a positive number per second")
        self.rate = rate
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next_start: float | None = None  # None: nothing started yet, the first goes now
        self._lock = asyncio.Lock()  # FIFO, and hands itself on when a holder is cancelled

    async def acquire(self) -> None:
        """Return when the caller may start its request."""
        async with self._lock:
            now = self._clock()
            start = now if self._next_start is None else max(now, self._next_start)
            if start > now:
                await self._sleep(start - now)
            # Measured again after sleeping: a late wake-up delays the following start rather
            # than letting two requests start closer together than one interval.
            self._next_start = max(start, self._clock()) + self._interval
