"""`--output-dir` on the local engine: the pool's results kept per partition, resumable.

`PartitionedPool` wraps a `Pool`: each target read is assigned its partition
(see `_partition`); a target whose partition an earlier run completed is not
fetched, its stored result is reported instead; every other result is
appended to its partition's temporary file, which is renamed into place once
the partition has all its results. A cancelled run leaves its incomplete
partitions to the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from ._channel import (
    BrokenResourceError,
    Channel,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
)
from ._models import Outcome, Result, Target
from ._partition import OutputDir, PartitionId, PartitionWriter
from ._pool import RESULTS_NOT_READ, Pool
from ._source import TargetSource

ResultKey = tuple[str, int, str]  # source, line, url: what ties a result to its target


async def send_result(results: Channel[Result], result: Result) -> None:
    """Send a result, waiting for room; cancelled while waiting, it is still delivered.

    For results of targets already read (so a cancellation cannot lose them), sent with
    backpressure (so reading back a large complete partition does not pile up results).

    Raises:
        BrokenResourceError, ClosedResourceError: nobody reads results any more.
    """
    try:
        results.send_nowait(result)  # the fast path: no loop turn
        return
    except WouldBlock:
        pass
    try:
        await results.send(result)
    except asyncio.CancelledError:
        with contextlib.suppress(BrokenResourceError, ClosedResourceError):
            results.send_nowait(result, force=True)
        raise


def key_of(item: Target | Result) -> ResultKey:
    """The key that ties a result to the target it is the result of."""
    return (item.source, item.line, item.url)


@dataclass
class OpenPartition:
    """A partition being fetched: how many results it expects and how many it has."""

    writer: PartitionWriter
    expected: int = 0
    done: int = 0
    closed: bool = False  # every target of the partition has been read
    failed: bool = False  # some result was CANCELLED: the partition is not complete

    @property
    def complete(self) -> bool:
        """Whether every target of the partition has its (non-cancelled) result."""
        return self.closed and not self.failed and self.done == self.expected


@dataclass
class StoredPartition:
    """A partition an earlier run completed: its results, by the target they belong to."""

    results: defaultdict[ResultKey, deque[Result]] = field(
        default_factory=lambda: defaultdict(deque)
    )


class PartitionedPool:
    """A `Pool` whose results are also written per partition under an `OutputDir`.

    It offers what the CLI's runner uses of a pool (`run`, `cancel`, `cancelled`,
    `in_flight`, `total`, `read_count`) and is used the same way, as an async context manager.

    Args:
        pool: the pool that fetches.
        output_dir: where complete partitions are found and written.
    """

    def __init__(self, pool: Pool, output_dir: OutputDir) -> None:
        self._pool = pool
        self._output_dir = output_dir
        self._partitioner = output_dir.partitioner()
        self._open: dict[PartitionId, OpenPartition] = {}
        self._stored: dict[PartitionId, StoredPartition] = {}
        self._pending: defaultdict[ResultKey, deque[PartitionId]] = defaultdict(deque)
        self.reused = 0  # results read back from complete partitions

    async def __aenter__(self) -> Self:
        await self._pool.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._pool.__aexit__(exc_type, exc, tb)

    def in_flight(self) -> list[tuple[Target, float]]:
        """Each busy worker's target and the monotonic time it started."""
        return self._pool.in_flight()

    @property
    def total(self) -> int | None:
        """The number of targets read, once input is fully read (else None)."""
        total = self._pool.total
        return None if total is None else total + self.reused

    @property
    def read_count(self) -> int:
        """The number of targets read: fetched, or read back from complete partitions."""
        return self._pool.read_count + self.reused

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the run as `Pool.cancel` does."""
        self._pool.cancel(reason)

    @property
    def cancelled(self) -> str | None:
        """The reason given to `cancel()`, or None."""
        return self._pool.cancelled

    async def run(self, targets: AsyncIterable[Target], results: Channel[Result]) -> None:
        """Fetch every target of an incomplete partition; report each target's one result.

        As `Pool.run`: a cancelled run reports the leftovers of a `TargetSource` CANCELLED,
        and closing the receive side of `results` cancels the run.
        """
        inner = Channel[Result](self._pool.settings.workers)
        watch = asyncio.ensure_future(self._watch(results, inner))
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pool.run(_Tagged(self, targets, results), inner))
                tg.create_task(self._forward(inner, results))
        finally:
            watch.cancel()
            for partition in self._open.values():
                partition.writer.discard()
            self._open.clear()
            results.close()

    @staticmethod
    async def _watch(results: Channel[Result], inner: Channel[Result]) -> None:
        """The consumer closed the results' receive side: so does this pool, for its pool."""
        await results.wait_receive_closed()
        inner.close_receive()  # the pool sees it and cancels itself

    async def _tag(
        self, targets: AsyncIterable[Target], results: Channel[Result]
    ) -> AsyncIterator[Target]:
        async for target in targets:
            pid, last = self._partitioner.assign(target)
            stored = self._stored.get(pid)
            if stored is None and pid not in self._open and self._output_dir.is_complete(pid):
                stored = self._stored[pid] = StoredPartition()
                for result in self._output_dir.read(pid):
                    stored.results[key_of(result)].append(result)
            if stored is not None:
                if last:
                    del self._stored[pid]
                kept = stored.results.get(key_of(target))
                if kept:
                    self.reused += 1
                    try:
                        await send_result(results, kept.popleft())
                    except (BrokenResourceError, ClosedResourceError):
                        self._pool.cancel(RESULTS_NOT_READ)  # nobody reads results any more
                        return
                    continue
                # The input changed since that run: fetch the target, outside any partition.
                yield target
                continue
            partition = self._open.get(pid)
            if partition is None:
                partition = self._open[pid] = OpenPartition(self._output_dir.writer(pid))
            partition.expected += 1
            partition.closed = last
            self._pending[key_of(target)].append(pid)
            yield target
        for pid, partition in list(self._open.items()):  # end of input: every partition closes
            partition.closed = True
            self._settle(pid, partition)

    async def _forward(self, inner: Channel[Result], results: Channel[Result]) -> None:
        while True:
            try:
                result = await inner.receive()
            except (EndOfChannel, ClosedResourceError):  # the end, or nobody reads results
                return
            pids = self._pending.get(key_of(result))
            if pids:
                pid = pids.popleft()
                if not pids:
                    del self._pending[key_of(result)]
                partition = self._open.get(pid)
                if partition is not None:
                    if result.outcome is Outcome.CANCELLED:
                        partition.failed = True
                    else:
                        partition.writer.write(result)
                        partition.done += 1
                    self._settle(pid, partition)
            try:
                await results.send(result)
            except (BrokenResourceError, ClosedResourceError):
                inner.close_receive()  # nobody reads results any more: the pool stops
                return

    def _settle(self, pid: PartitionId, partition: OpenPartition) -> None:
        if partition.complete:
            partition.writer.commit()
            del self._open[pid]


class _Tagged:
    """The input as the wrapped pool reads it (a `TargetSource`): each target is assigned its
    partition on the way, and the input's leftovers are the wrapped pool's after a cancel."""

    def __init__(
        self, owner: PartitionedPool, targets: AsyncIterable[Target], results: Channel[Result]
    ) -> None:
        self._owner = owner
        self._targets = targets
        self._results = results

    def __aiter__(self) -> AsyncIterator[Target]:
        return self._owner._tag(self._targets, self._results)

    def leftovers(self) -> list[Target]:
        """The input's targets read but not handed out (taken once)."""
        targets = self._targets
        return targets.leftovers() if isinstance(targets, TargetSource) else []
