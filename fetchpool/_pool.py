"""The worker pool: a fixed set of workers between a bounded input stream and the results.

`Pool.run()` owns the workers' task group and returns once every target read
has its result: after a graceful drain at end of input, or after `cancel()`,
which reports every target read but not finished as CANCELLED (the source's
leftovers too, when it is a `TargetSource`). A consumer that stops reading closes
the results' receive side; the pool sees it and cancels itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from ._channel import (
    BrokenResourceError,
    Channel,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
)
from ._config import Settings
from ._fetch import Fetcher, ResultLookup, make_transport
from ._models import Kind, Result, Target
from ._source import TargetSource

Check = Callable[[Fetcher, Target], Awaitable[Result]]
"""What a worker does with a target, given the pool's fetcher (link checking's `LinkChecker`);
by default, `Fetcher.fetch`."""

RESULTS_NOT_READ = "results are no longer read"
"""The reason of a run cancelled because its consumer closed the results' receive side."""

# Targets a pool may set aside while their host is at its --per-host limit,
# before a worker waits on the busy host instead (bounds memory).
PARKED_PER_WORKER = 16


class _HostLimit:
    """At most `limit` targets in flight per host, without head-of-line blocking.

    A target whose host is busy is parked, and the worker moves on to the
    next target; the worker that frees a slot of that host picks the parked
    target up next. Only when too many targets are parked does a worker wait.
    """

    def __init__(self, limit: int, max_parked: int) -> None:
        self._limit = limit
        self._max_parked = max_parked
        self._busy: defaultdict[str, int] = defaultdict(int)
        self._parked: defaultdict[str, deque[tuple[int, Target]]] = defaultdict(deque)
        self._parked_count = 0
        self._waiters: defaultdict[str, deque[asyncio.Event]] = defaultdict(deque)

    @staticmethod
    def host_of(target: Target) -> str:
        try:
            return urlsplit(target.url).hostname or ""  # already lower-case
        except ValueError:
            return ""

    def try_acquire(self, host: str) -> bool:
        if self._busy[host] < self._limit:
            self._busy[host] += 1
            return True
        return False

    def park(self, host: str, item: tuple[int, Target]) -> bool:
        """Set a target aside; False when the parking lot is full."""
        if self._parked_count >= self._max_parked:
            return False
        self._parked[host].append(item)
        self._parked_count += 1
        return True

    async def acquire(self, host: str) -> None:
        while not self.try_acquire(host):
            event = asyncio.Event()
            self._waiters[host].append(event)
            await event.wait()

    def release(self, host: str) -> tuple[int, Target] | None:
        """Free a slot; return a parked target of the same host, its slot already held."""
        parked = self._parked.get(host)
        if parked:
            self._parked_count -= 1
            item = parked.popleft()
            if not parked:
                del self._parked[host]
            return item
        self._busy[host] -= 1
        if not self._busy[host]:
            del self._busy[host]
        waiters = self._waiters.get(host)
        if waiters:
            waiters.popleft().set()
            if not waiters:
                del self._waiters[host]
        return None


class Pool:
    """A fixed pool of fetch workers sharing one transport (connection pool).

    Use it as an async context manager (it opens and closes its transport unless a client
    is passed in), then run it between an async iterable of targets and a `Channel` of
    results:

        async with Pool(settings) as pool:
            results = Channel[Result](settings.workers)
            task = asyncio.create_task(pool.run(targets, results))
            async for result in results:
                ...

    Args:
        settings: the run settings.
        client: a shared `httpx.AsyncClient` to send with instead of a transport of the
            pool's own: one from `fetchpool.make_client` is used through its transport, any
            other through `client.send()` (see `Fetcher`). It is not closed by the pool.
        clock: monotonic clock for elapsed times, injectable for tests.
        cache: earlier OK results; a URL found there is not fetched again.
        check: what a worker does with each target (default: fetch it).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        cache: ResultLookup | None = None,
        check: Check | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._check = check
        self._cache = cache
        self._client = client
        self._transport: httpx.AsyncBaseTransport | None = None  # the pool's own
        self._clock = clock
        self._fetcher: Fetcher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cancel_reason: str | None = None
        # Every target read and not yet reported, by sequence number: whatever
        # is left here when the workers stop is reported CANCELLED.
        self._unfinished: dict[int, Target] = {}
        self._started: dict[int, float] = {}
        self.read_count = 0
        self.input_done = False

    async def __aenter__(self) -> Self:
        if self._client is None:
            self._transport = make_transport(self.settings)
        self._fetcher = Fetcher(
            self._client,
            self.settings,
            clock=self._clock,
            cache=self._cache,
            transport=self._transport,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None:
            # Closing sockets must finish even if this task is being cancelled.
            await asyncio.shield(self._transport.aclose())

    def in_flight(self) -> list[tuple[Target, float]]:
        """Each busy worker's target and the monotonic time it started.

        Call it on the event loop: a display thread reads a snapshot of it instead (the CLI's
        `cli/view.RunView`), since the workers change it between any two of its bytecodes.
        """
        unfinished = self._unfinished
        return [(unfinished[seq], started) for seq, started in list(self._started.items())]

    @property
    def total(self) -> int | None:
        """The number of targets read, once input is fully read (else None)."""
        return self.read_count if self.input_done else None

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop reading input and cancel every in-flight fetch at once.

        `run()` then reports every target read but not finished as CANCELLED
        with `reason` as its error, and returns.
        """
        if self._cancel_reason is None:
            self._cancel_reason = reason
        for task in self._tasks:
            task.cancel()

    @property
    def cancelled(self) -> str | None:
        """The reason given to `cancel()`, or None."""
        return self._cancel_reason

    async def run(self, targets: AsyncIterable[Target], results: Channel[Result]) -> None:
        """Fetch every target and send its one result; close `results` at the end.

        Args:
            targets: the input, read lazily (the reader waits while workers are busy). A
                `TargetSource` is asked for its leftovers after a cancel: they are reported
                CANCELLED too.
            results: where results go, one per target, as each finishes. Closing its
                receive side (`close_receive()`) cancels the run.
        """
        if self._fetcher is None:
            raise RuntimeError("use `async with Pool(...) as pool:` before run()")
        settings = self.settings
        queue = Channel[tuple[int, Target]](settings.workers)
        hosts = (
            _HostLimit(settings.per_host, settings.workers * PARKED_PER_WORKER)
            if settings.per_host
            else None
        )
        watch = asyncio.ensure_future(self._watch(results))
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = [tg.create_task(self._read(targets, queue))]
                self._tasks += [
                    tg.create_task(self._work(queue, results, hosts))
                    for _ in range(settings.workers)
                ]
                if self._cancel_reason is not None:
                    self.cancel(self._cancel_reason)
            if self._cancel_reason is not None:
                left = targets.leftovers() if isinstance(targets, TargetSource) else ()
                self._report_cancelled(results, left)
        finally:
            watch.cancel()
            self._tasks = []
            results.close()

    async def _watch(self, results: Channel[Result]) -> None:
        """Cancel the run as soon as the consumer closes the results' receive side."""
        await results.wait_receive_closed()
        self.cancel(RESULTS_NOT_READ)

    async def _read(
        self, targets: AsyncIterable[Target], queue: Channel[tuple[int, Target]]
    ) -> None:
        unfinished = self._unfinished
        seq = 0
        try:
            async for target in targets:
                seq += 1
                unfinished[seq] = target  # from here on, the target is accounted for
                self.read_count += 1
                try:
                    queue.send_nowait((seq, target))  # the fast path: no loop turn
                except WouldBlock:
                    await queue.send((seq, target))
            self.input_done = True
        finally:
            queue.close()  # end of input: the workers drain what is queued, then stop

    async def _work(
        self,
        queue: Channel[tuple[int, Target]],
        results: Channel[Result],
        hosts: _HostLimit | None,
    ) -> None:
        fetcher = self._fetcher
        assert fetcher is not None  # checked in run()
        check = self._check
        fetch = fetcher.fetch if check is None else functools.partial(check, fetcher)
        clock = self._clock
        unfinished = self._unfinished
        started = self._started
        next_item: tuple[int, Target] | None = None  # handed over with its host slot held
        while True:
            if next_item is not None:
                # Handed over by the worker that freed a slot of `host`: same host, slot held.
                seq, target = next_item
                next_item = None
            else:
                try:
                    item = queue.receive_nowait()  # the fast path: no loop turn
                except WouldBlock:
                    try:
                        item = await queue.receive()
                    except EndOfChannel:
                        return
                except EndOfChannel:
                    return
                seq, target = item
                host = ""
                if hosts is not None:
                    host = hosts.host_of(target)
                    if not hosts.try_acquire(host):
                        if hosts.park(host, item):
                            continue
                        await hosts.acquire(host)
            started[seq] = clock()
            try:
                result = await fetch(target)
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker
                result = Result.failed(
                    target, Kind.PROTOCOL, f"unexpected error: {type(exc).__name__}: {exc}"
                )
            # On cancellation the start time stays, for the CANCELLED result's elapsed.
            del started[seq]
            if hosts is not None:
                next_item = hosts.release(host)
            try:
                results.send_nowait(result)  # the fast path: no loop turn
            except WouldBlock:
                if not await self._send(results, result, seq):
                    return
            except (BrokenResourceError, ClosedResourceError):
                self.cancel(RESULTS_NOT_READ)
                return
            del unfinished[seq]

    async def _send(self, results: Channel[Result], result: Result, seq: int) -> bool:
        """Wait for room, then send; False when nobody reads results any more.

        A finished result is delivered even if the worker is cancelled while it waits.
        """
        try:
            await results.send(result)
        except (BrokenResourceError, ClosedResourceError):
            self.cancel(RESULTS_NOT_READ)
            return False
        except asyncio.CancelledError:
            with contextlib.suppress(BrokenResourceError, ClosedResourceError):
                results.send_nowait(result, force=True)
                del self._unfinished[seq]
            raise
        return True

    def _report_cancelled(self, results: Channel[Result], left: Iterable[Target]) -> None:
        """Send a CANCELLED result for every target read but not finished, and for `left`."""
        reason = self._cancel_reason or "cancelled"
        now = self._clock()
        started = self._started
        leftovers = [(target, started.get(seq, now)) for seq, target in self._unfinished.items()]
        leftovers += [(target, now) for target in left]
        self._unfinished.clear()
        started.clear()
        try:
            for target, since in leftovers:
                # Beyond capacity on purpose: at most what was read, and it ends the run.
                results.send_nowait(
                    Result.cancelled(target, reason, elapsed=now - since), force=True
                )
        except (BrokenResourceError, ClosedResourceError):
            return  # nobody is reading results any more
