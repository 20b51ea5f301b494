"""`--engine ray`: the run's partitions fetched by fetchpool's own pool in Ray tasks.

The process that reads the input stays the driver. It cuts the input into
partitions by host (see `_partition`), keeps a bounded number of them ready or
in flight (so a million URLs on standard input never pile up in its memory),
runs each as a Ray streaming-generator task (`_ray_task.fetch_partition`), and
hands every result on as it arrives: the CLI's sinks, summary and exit status
are those of a local run.

A bucket's partitions run one after another, never two at once, so a host is
fetched by one task at a time and `--per-host` holds cluster-wide. A task lost
with its worker or node is run again by the driver, on a new Ray task, for the
partition's targets that have no result yet, so no result is duplicated.

This module imports Ray; it is imported only when `--engine ray` is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import ipaddress
import logging
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import ray
import ray.exceptions

from ._channel import (
    BrokenResourceError,
    Channel,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
)
from ._config import Settings
from ._errors import UsageError
from ._models import Kind, Result, Target
from ._partition import OutputDir, Partitioner, PartitionId, PartitionWriter
from ._partitioned import StoredPartition, key_of, send_result
from ._pool import RESULTS_NOT_READ
from ._ray_task import fetch_partition
from ._source import TargetSource

# Attempts of a partition whose task was lost (worker or node died) before it is failed.
PARTITION_ATTEMPTS = 3
# Without --output-dir, partial partitions are sent off when the input pauses this long, so a
# producer that writes a URL and waits for its result gets it.
LINGER_SECONDS = 0.25
FEED_CAPACITY = 1024  # targets read ahead of the partitioner


@dataclass(eq=False)
class _Partition:
    pid: PartitionId
    targets: list[Target] = field(default_factory=list)
    received: list[bool] = field(default_factory=list)
    writer: PartitionWriter | None = None
    started: float | None = None
    generator: Any = None  # the ObjectRefGenerator of the running task
    keep_file: bool = True  # False for URLs added to a partition an earlier run completed


def _node_ip_for(address: str | None) -> str | None:
    """The driver's node address when the cluster is on a loopback address of this machine.

    Ray looks for its local node by the driver's IP address, which is the machine's outward
    address by default; a cluster started with `--node-ip-address 127.0.0.100` is found only
    when the driver says it is on that address too.
    """
    if not address or address == "auto":
        return None
    host = urlsplit(address if "://" in address else f"ray://{address}").hostname
    try:
        return host if host and ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def _check_reachable(address: str) -> None:
    """Fail fast on a cluster address nobody answers at (Ray itself retries for minutes)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"invalid --ray-address {address!r}: expected HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}"
        ) from None


def _cluster_messages_to_stderr() -> None:
    """Send the messages Ray's driver prints about its cluster to standard error.

    Ray prints them (`(raylet) A worker died or was killed ...`) on standard output, which
    carries fetchpool's results: in jsonl or csv they would corrupt the output. Ray has no
    setting for it, so its printing function is wrapped (when it is there to wrap).
    """
    worker_module = importlib.import_module("ray._private.worker")
    original = getattr(worker_module, "print_to_stdstream", None)
    if original is None or getattr(original, "_fetchpool_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr._fetchpool_stderr = True  # type: ignore[attr-defined]
    worker_module.print_to_stdstream = to_stderr  # type: ignore[attr-defined]


def connect(address: str | None) -> float:
    """Connect to the Ray cluster (or start a local one); return its number of CPUs.

    Args:
        address: the cluster's address; None for `RAY_ADDRESS`, else a local cluster.

    Raises:
        UsageError: when the cluster cannot be reached.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "logging_level": logging.WARNING,
            "log_to_driver": False,
            "include_dashboard": False,
        }
        node_ip = _node_ip_for(address)
        if node_ip is not None:
            options["_node_ip_address"] = node_ip
        if address is not None:
            _check_reachable(address)
            options["address"] = address
            del options["include_dashboard"]  # a setting of a new cluster only
        _cluster_messages_to_stderr()
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at {address}" if address else "(local)"
            hint = ""
            if address is not None and "RAY_AUTH_MODE" not in os.environ:
                hint = (
                    "; if the cluster uses token authentication (new clusters' default), "
                    "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token)"
                )
            raise UsageError(
                f"cannot start or reach the Ray cluster {where}: {exc}{hint}"
            ) from None
    return float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]


class RayPool:
    """Runs a run's partitions as Ray tasks; offers what the CLI's runner uses of a `Pool`.

    Args:
        settings: the fetch settings; `workers` and `per_host` hold per partition task,
            `rate` is shared out among the tasks in flight.
        address: the Ray cluster; None for `RAY_ADDRESS`, else a local cluster.
        partitioner: how the input is cut into partitions.
        output_dir: where complete partitions are found and written, if anywhere.
        max_in_flight: partitions running at once (default: the cluster's CPUs + 1).
        clock: monotonic clock, for the elapsed time of CANCELLED results.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        address: str | None = None,
        partitioner: Partitioner,
        output_dir: OutputDir | None = None,
        max_in_flight: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._address = address
        self._partitioner = partitioner
        self._output_dir = output_dir
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._remote: Any = None
        self._task_settings = settings
        self._cancel_reason: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._buffers: dict[int, _Partition] = {}  # each bucket's partition being filled
        self._ready: deque[_Partition] = deque()  # full partitions waiting to run
        self._running: dict[int, _Partition] = {}  # by bucket: one at a time per bucket
        self._stored: dict[PartitionId, StoredPartition] = {}
        self._complete: set[PartitionId] = set()  # found complete in the output directory
        self._changed = asyncio.Event()
        self._feed = Channel[Target](FEED_CAPACITY)
        self._results: Channel[Result] | None = None
        self.read_count = 0
        self.input_done = False
        self.reused = 0  # results read back from complete partitions

    async def __aenter__(self) -> Self:
        # On this thread: Ray sets its signal handlers from the main thread only (the runner's
        # own are installed after this, so they win).
        cpus = connect(self._address)
        if self._max_in_flight is None:
            self._max_in_flight = max(1, int(cpus)) + 1
        if self.settings.rate is not None:
            share = self.settings.rate / self._max_in_flight
            self._task_settings = dataclasses.replace(self.settings, rate=share)
        # Retries are the driver's (see the module docstring), not Ray's.
        self._remote = ray.remote(num_cpus=1, max_retries=0)(fetch_partition)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(ray.shutdown)

    def in_flight(self) -> list[tuple[Target, float]]:
        """Busy workers are inside the cluster's tasks: none to show here."""
        return []

    @property
    def total(self) -> int | None:
        """The number of targets read, once input is fully read (else None)."""
        return self.read_count if self.input_done else None

    @property
    def cancelled(self) -> str | None:
        """The reason given to `cancel()`, or None."""
        return self._cancel_reason

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop reading input, cancel every running task on the cluster and every wait here.

        `run()` then reports every target read but not finished as CANCELLED.
        """
        if self._cancel_reason is None:
            self._cancel_reason = reason
        for partition in self._running.values():
            if partition.generator is not None:
                with contextlib.suppress(Exception):  # the task may be gone already
                    ray.cancel(partition.generator)
        for task in self._tasks:
            task.cancel()

    async def run(self, targets: AsyncIterable[Target], results: Channel[Result]) -> None:
        """Fetch every target on the cluster and send its one result; close `results` at the end.

        Args:
            targets: the input, read lazily (the reader waits while enough partitions are
                ready or running). A `TargetSource` is asked for its leftovers after a
                cancel: they are reported CANCELLED too, as `Pool.run` does.
            results: where results go, one per target, as each arrives from the cluster.
                Closing its receive side (`close_receive()`) cancels the run.
        """
        if self._remote is None:
            raise RuntimeError("use `async with RayPool(...) as pool:` before run()")
        self._results = results
        watch = asyncio.ensure_future(self._watch(results))
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = [
                    tg.create_task(self._take_input(targets)),
                    tg.create_task(self._read()),
                    tg.create_task(self._dispatch(tg)),
                ]
                if self._cancel_reason is not None:
                    self.cancel(self._cancel_reason)
            if self._cancel_reason is not None:
                left = targets.leftovers() if isinstance(targets, TargetSource) else []
                self._report_cancelled(results, left)
        finally:
            watch.cancel()
            for partition in self._unfinished():
                if partition.writer is not None:
                    partition.writer.discard()
            self._tasks = []
            results.close()

    async def _watch(self, results: Channel[Result]) -> None:
        """Cancel the run as soon as the consumer closes the results' receive side."""
        await results.wait_receive_closed()
        self.cancel(RESULTS_NOT_READ)

    def _unfinished(self) -> list[_Partition]:
        partitions = list(self._running.values()) + list(self._ready)
        partitions += sorted(self._buffers.values(), key=lambda p: p.pid)
        fed = []  # read from the input, not yet in a partition
        while True:
            try:
                fed.append(self._feed.receive_nowait())
            except (WouldBlock, EndOfChannel, ClosedResourceError):
                break
        if fed:
            partitions.append(_Partition(PartitionId(-1, 0), fed, keep_file=False))
        return partitions

    def _kick(self) -> None:
        self._changed.set()

    async def _changes(self) -> None:
        await self._changed.wait()
        self._changed.clear()

    async def _take_input(self, targets: AsyncIterable[Target]) -> None:
        """Read the input into the feed; from there on, a target is accounted for."""
        try:
            async for target in targets:
                self.read_count += 1
                try:
                    self._feed.send_nowait(target)
                except WouldBlock:
                    await self._feed.send(target)
        finally:
            self._feed.close()

    async def _next_target(self) -> Target:
        """The next target of the feed; raise EndOfChannel at its end.

        Without an output directory (whose partitions must depend on the input alone), a pause
        in the input sends the partial partitions off, so their results do not wait for more.
        """
        try:
            return self._feed.receive_nowait()
        except WouldBlock:
            pass
        while self._output_dir is None and self._buffers:
            try:
                return await asyncio.wait_for(self._feed.receive(), LINGER_SECONDS)
            except TimeoutError:
                self._ready.extend(sorted(self._buffers.values(), key=lambda p: p.pid))
                self._buffers.clear()
                self._kick()
        return await self._feed.receive()

    async def _read(self) -> None:
        results = self._results
        assert results is not None
        max_ready = max(2, self._max_in_flight or 1)
        while True:
            try:
                target = await self._next_target()
            except EndOfChannel:
                break
            pid, last = self._partitioner.assign(target)
            if self._output_dir is not None and await self._reuse(target, pid, last, results):
                if last:
                    self._send_off(pid)  # URLs the input added to that complete partition
                continue
            partition = self._buffers.get(pid.bucket)
            if partition is not None and partition.pid != pid:
                # URLs added to an earlier, complete partition of this bucket: sent off before
                # the bucket's next partition starts filling, so that one gets its own file.
                self._send_off(partition.pid)
                partition = None
            if partition is None:
                # In a partition an earlier run completed, only URLs that run did not have
                # (the input changed) are fetched; that partition's file is left as it is.
                partition = self._buffers[pid.bucket] = _Partition(
                    pid, keep_file=pid not in self._complete
                )
            partition.targets.append(target)
            if last:
                del self._buffers[pid.bucket]
                self._ready.append(partition)
                self._kick()
                while len(self._ready) >= max_ready:  # backpressure on the input
                    await self._changes()
        self.input_done = True
        self._ready.extend(sorted(self._buffers.values(), key=lambda p: p.pid))
        self._buffers.clear()
        self._kick()

    def _send_off(self, pid: PartitionId) -> None:
        """Make the buffered partition `pid`, if there is one, ready to run."""
        partition = self._buffers.get(pid.bucket)
        if partition is not None and partition.pid == pid:
            del self._buffers[pid.bucket]
            self._ready.append(partition)
            self._kick()

    async def _reuse(
        self, target: Target, pid: PartitionId, last: bool, results: Channel[Result]
    ) -> bool:
        """Report a target of an already complete partition from its file; False if not one."""
        assert self._output_dir is not None
        stored = self._stored.get(pid)
        if stored is None:
            if pid.bucket in self._buffers and self._buffers[pid.bucket].pid == pid:
                return False
            if not self._output_dir.is_complete(pid):
                return False
            self._complete.add(pid)
            stored = self._stored[pid] = StoredPartition()
            for result in self._output_dir.read(pid):
                stored.results[key_of(result)].append(result)
        if last:
            del self._stored[pid]
        kept = stored.results.get(key_of(target))
        if not kept:
            return False  # the input changed since: fetch it
        self.reused += 1
        try:
            await send_result(results, kept.popleft())
        except (BrokenResourceError, ClosedResourceError):
            self.cancel(RESULTS_NOT_READ)  # nobody reads results any more
        return True

    async def _dispatch(self, tg: asyncio.TaskGroup) -> None:
        limit = self._max_in_flight or 1
        while True:
            for partition in list(self._ready):
                if len(self._running) >= limit:
                    break
                if partition.pid.bucket in self._running:
                    continue  # one partition of a bucket at a time: --per-host holds
                self._ready.remove(partition)
                self._running[partition.pid.bucket] = partition
                self._tasks.append(tg.create_task(self._run_partition(partition)))
                self._kick()
            if self.input_done and not self._ready and not self._running:
                return
            await self._changes()

    async def _run_partition(self, partition: _Partition) -> None:
        results = self._results
        assert results is not None
        partition.received = [False] * len(partition.targets)
        partition.started = self._clock()
        if self._output_dir is not None and partition.keep_file:
            partition.writer = self._output_dir.writer(partition.pid)
        try:
            for attempt in range(1, PARTITION_ATTEMPTS + 1):
                todo = [i for i, done in enumerate(partition.received) if not done]
                if not todo:
                    break
                generator = self._remote.remote(
                    self._task_settings, [partition.targets[i] for i in todo]
                )
                partition.generator = generator
                try:
                    async for ref in generator:
                        for j, result in await ref:
                            await self._deliver(partition, todo[j], result, results)
                except ray.exceptions.TaskCancelledError:
                    raise asyncio.CancelledError from None
                except ray.exceptions.RayError as exc:
                    if attempt == PARTITION_ATTEMPTS:
                        failed = (
                            f"the Ray task of this URL's partition failed: {type(exc).__name__}"
                        )
                        await self._fail_rest(partition, failed, results)
                finally:
                    partition.generator = None
            if not all(partition.received):
                # The task ended, every time, without the results of some URLs (it stopped
                # early on a worker): each still gets one, never none.
                lost = "the Ray task of this URL's partition ended without its result"
                await self._fail_rest(partition, lost, results)
            if partition.writer is not None and all(partition.received):
                partition.writer.commit()
                partition.writer = None
        finally:
            if self._cancel_reason is None:
                del self._running[partition.pid.bucket]
                self._kick()

    async def _deliver(
        self, partition: _Partition, i: int, result: Result, results: Channel[Result]
    ) -> None:
        if partition.received[i]:
            return
        partition.received[i] = True
        if partition.writer is not None:
            partition.writer.write(result)
        try:
            await send_result(results, result)  # a received result is delivered, even now
        except (BrokenResourceError, ClosedResourceError):
            self.cancel(RESULTS_NOT_READ)

    async def _fail_rest(self, partition: _Partition, error: str, results: Channel[Result]) -> None:
        for i, target in enumerate(partition.targets):
            if not partition.received[i]:
                await self._deliver(
                    partition, i, Result.failed(target, Kind.PROTOCOL, error), results
                )
        if partition.writer is not None:  # a failed partition is not complete: run it again
            partition.writer.discard()
            partition.writer = None

    def _report_cancelled(self, results: Channel[Result], left: list[Target]) -> None:
        """Send a CANCELLED result for every target read but not finished, and for `left`."""
        reason = self._cancel_reason or "cancelled"
        now = self._clock()
        leftovers: list[tuple[Target, float]] = []
        for partition in self._unfinished():
            since = partition.started if partition.started is not None else now
            received = partition.received or [False] * len(partition.targets)
            leftovers += [
                (t, since) for t, done in zip(partition.targets, received, strict=True) if not done
            ]
        leftovers += [(target, now) for target in left]
        try:
            for target, since in leftovers:
                results.send_nowait(
                    Result.cancelled(target, reason, elapsed=now - since), force=True
                )
        except (BrokenResourceError, ClosedResourceError):
            return  # nobody is reading results any more
