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
from collections import defaultdict, deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from ._channel import Channel, ChannelClosed
from ._models import Outcome, Result, Target
from ._partition import OutputDir, PartitionId, PartitionWriter
from ._pool import Pool

ResultKey = tuple[str, int, str]  # source, line, url: what ties a result to its target


async def send_result(results: Channel[Result], result: Result) -> None:
    """Send a result, waiting for room; cancelled while waiting, it is still delivered.

    For results of targets already read (so a cancellation cannot lose them), sent with
    backpressure (so reading back a large complete partition does not pile up results).

    Raises:
        ChannelClosed: nobody reads results any more.
    """
    if results.send_nowait(result):
        return
    try:
        await results.send(result)
    except asyncio.CancelledError:
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
    `in_flight`, `total`) and is used the same way, as an async context manager.

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

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the run as `Pool.cancel` does."""
        self._pool.cancel(reason)

    @property
    def cancelled(self) -> str | None:
        """The reason given to `cancel()`, or None."""
        return self._pool.cancelled

    async def run(
        self,
        targets: AsyncIterable[Target],
        results: Channel[Result],
        *,
        on_cancel: Callable[[], list[Target]] | None = None,
    ) -> None:
        """Fetch every target of an incomplete partition; report each target's one result."""
        inner = Channel[Result](self._pool.settings.workers)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(
                    self._pool.run(self._tag(targets, results), inner, on_cancel=on_cancel)
                )
                tg.create_task(self._forward(inner, results))
        finally:
            for partition in self._open.values():
                partition.writer.discard()
            self._open.clear()
            results.close()

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
                    except ChannelClosed:
                        self._pool.cancel("results are no longer read")
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
        async for result in inner:
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
            await results.send(result)

    def _settle(self, pid: PartitionId, partition: OpenPartition) -> None:
        if partition.complete:
            partition.writer.commit()
            del self._open[pid]
