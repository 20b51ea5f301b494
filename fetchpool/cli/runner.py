"""One run of the command: input → pool → sink, with signals, deadline, cache and exit status."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol, Self, TextIO, TypeVar

from .._channel import Channel, EndOfStream
from .._config import Settings
from .._links import Places, extract_targets, filter_targets, keep
from .._models import Result, Target
from .._pool import Pool
from .._source import Input, TargetReader, count_targets
from .._stats import RunStats
from .sinks import ResultSink

if TYPE_CHECKING:
    from .._cache import ResultCache
    from .._filter import LinkFilter
    from .._partition import OutputDir

T = TypeVar("T")
R = TypeVar("R")

# After the first signal the process is gone by this time, even if some stage hangs.
WATCHDOG_SECONDS = 3.0
DEADLINE_REASON = "run deadline reached"


class ExitStatus(enum.IntEnum):
    """The exit codes of the contract."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    SIGINT = 130
    OUTPUT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe
    SIGTERM = 143


def is_pipe(fd: int) -> bool:
    """True when `fd` is a pipe or a socket (`| jq`, `| less`, `| head`, a socketpair)."""
    try:
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@dataclass
class Env:
    """The process's streams and whether each is a terminal; swapped in tests."""

    stdin_fd: int = 0
    stdout: IO[bytes] = field(default_factory=lambda: sys.stdout.buffer)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool = field(default_factory=lambda: os.isatty(0))
    stdout_isatty: bool = field(default_factory=lambda: sys.stdout.isatty())
    stdout_is_pipe: bool = field(default_factory=lambda: is_pipe(1))
    stderr_isatty: bool = field(default_factory=lambda: sys.stderr.isatty())

    @property
    def progress_allowed(self) -> bool:
        """Whether the one-line progress display may be drawn on standard error.

        Only when standard output is redirected to a file (or another non-pipe, non-terminal)
        and standard error is a terminal. Never when standard output is a pipe: the program
        reading it (`| jq`, `| less`, `| head`) may be writing to the same terminal, and the
        progress line would be torn into its output.
        """
        return self.stderr_isatty and not self.stdout_isatty and not self.stdout_is_pipe


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What to do, beyond the fetch settings: where input comes from and how it is filtered."""

    inputs: Sequence[Input]
    extract: bool = False
    link_filter: LinkFilter | None = None
    cache: ResultCache | None = None
    max_time: float | None = None
    engine: str = "local"  # or "ray"
    ray_address: str | None = None
    output_dir: OutputDir | None = None
    partition_size: int | None = None  # for a new output directory (else the default)


class RunPool(Protocol):
    """What a run uses of its pool: a local `Pool`, or one of the partitioned engines."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def run(
        self,
        targets: AsyncIterator[Target],
        results: Channel[Result],
        *,
        on_cancel: Callable[[], list[Target]] | None = None,
    ) -> None: ...
    def cancel(self, reason: str = ...) -> None: ...
    @property
    def cancelled(self) -> str | None: ...
    @property
    def total(self) -> int | None: ...
    def in_flight(self) -> Sequence[tuple[Target, float]]: ...


def make_pool(settings: Settings, plan: RunPlan) -> RunPool:
    """The pool of the plan's engine; with an output directory, one that writes partitions."""
    if plan.engine == "ray":
        from .._config import DEFAULT_PARTITION_SIZE, PARTITION_BUCKETS
        from .._partition import Partitioner
        from .._ray import RayPool

        partitioner = (
            plan.output_dir.partitioner()
            if plan.output_dir is not None
            else Partitioner(plan.partition_size or DEFAULT_PARTITION_SIZE, PARTITION_BUCKETS)
        )
        return RayPool(
            settings,
            address=plan.ray_address,
            partitioner=partitioner,
            output_dir=plan.output_dir,
        )
    pool = Pool(settings, cache=plan.cache)
    if plan.output_dir is not None:
        from .._partitioned import PartitionedPool

        return PartitionedPool(pool, plan.output_dir)
    return pool


@dataclass
class _State:
    signal: int | None = None
    deadline_reached: bool = False
    output_closed: bool = False
    pool_done: bool = False
    input_error: str | None = None


class RunView:
    """What the live displays poll: busy workers and the total, once known."""

    def __init__(self, pool: RunPool) -> None:
        self._pool = pool
        self.counted: int | None = None  # URL lines counted up front in regular files

    def in_flight(self) -> Sequence[tuple[Target, float]]:
        return self._pool.in_flight()

    @property
    def total(self) -> int | None:
        total = self._pool.total
        return total if total is not None else self.counted


def execute(
    settings: Settings,
    plan: RunPlan,
    *,
    make_sink: Callable[[RunView], ResultSink],
    stats: RunStats,
    env: Env,
    make_display: Callable[[RunView], Display] | None = None,
    count_total: bool = False,
) -> ExitStatus:
    """Run the fetch to the end (drain, signal or deadline); return the exit status.

    Args:
        settings: the fetch settings.
        plan: the inputs and how they are read and filtered.
        make_sink: builds the output sink, given the live view of the run.
        stats: the run statistics, filled in as results arrive.
        env: the standard streams.
        make_display: builds a live display on standard error, if one is wanted.
        count_total: count the URL lines of regular files up front, for the display.
    """
    state = _State()
    try:
        _run_loop(_run(settings, plan, make_sink, stats, state, env, make_display, count_total))
    finally:
        if plan.cache is not None:
            try:
                plan.cache.save()
            except OSError as exc:
                env.stderr.write(f"fetchpool: warning: cannot write the cache: {exc}\n")
    if state.signal is not None:
        return ExitStatus.SIGTERM if state.signal == signal.SIGTERM else ExitStatus.SIGINT
    if state.output_closed:
        return ExitStatus.OUTPUT_CLOSED
    if state.deadline_reached or state.input_error or stats.failed or stats.cancelled:
        return ExitStatus.FAILURES
    return ExitStatus.OK


def _run_loop(coro: object) -> None:
    """Run on uvloop when the `fast` extra is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


class Display(Protocol):
    """A live display on standard error (see `progress.ProgressLine`)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


def _hard_exit(status: int) -> None:
    """Leave at once; a live display may have hidden the terminal's cursor, so show it."""
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                os.write(fd, b"\x1b[?25h\n")
        except OSError:
            pass
    os._exit(status)


def _install_signal_handlers(pool: RunPool, state: _State) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int, frame: object) -> None:
        if state.signal is not None:
            _hard_exit(128 + state.signal)  # a second signal: leave at once
        state.signal = signum
        name = signal.Signals(signum).name
        loop.call_soon_threadsafe(pool.cancel, f"interrupted by {name}")
        watchdog = threading.Timer(WATCHDOG_SECONDS, _hard_exit, args=(128 + signum,))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _targets(
    plan: RunPlan, stats: RunStats, places: Places | None, errors: list[str]
) -> tuple[AsyncIterator[Target], Callable[[], list[Target]] | None, TargetReader | None]:
    if places is not None:
        documents = extract_targets(
            plan.inputs, places, link_filter=plan.link_filter, counts=stats, errors=errors
        )
        return documents, None, None
    reader = TargetReader(plan.inputs)
    targets: AsyncIterator[Target] = aiter(reader)
    link_filter = plan.link_filter
    if link_filter is None:
        return targets, reader.buffered, reader

    def buffered() -> list[Target]:
        # Read but not handed out at cancellation: filtered like every other line.
        return [
            t for t in reader.buffered() if t.invalid is not None or keep(t.url, link_filter, stats)
        ]

    return filter_targets(targets, link_filter, stats), buffered, reader


async def _run(
    settings: Settings,
    plan: RunPlan,
    make_sink: Callable[[RunView], ResultSink],
    stats: RunStats,
    state: _State,
    env: Env,
    make_display: Callable[[RunView], Display] | None,
    count_total: bool,
) -> None:
    places = Places() if plan.extract else None
    read_errors: list[str] = []
    targets, buffered, reader = _targets(plan, stats, places, read_errors)

    async with make_pool(settings, plan) as pool:
        _install_signal_handlers(pool, state)
        view = RunView(pool)

        async def count() -> None:
            view.counted = await _on_daemon_thread(count_targets, plan.inputs)

        display = make_display(view) if make_display is not None else None
        output = _Output(make_sink(view), stats, pool, state, env, plan.cache, places)
        output.start()
        if display is not None:
            display.start()
        try:
            results = Channel[Result](settings.workers)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_run_pool(pool, targets, results, buffered, state))
                helpers = []
                if plan.max_time is not None:
                    helpers.append(tg.create_task(_deadline(plan.max_time, pool, state)))
                if count_total and reader is not None and plan.link_filter is None:
                    helpers.append(tg.create_task(count()))
                async for result in results:
                    output.take(result)
                    while True:  # take every result that is ready, then flush once
                        try:
                            output.take(results.receive_nowait())
                        except (asyncio.QueueEmpty, EndOfStream):
                            break
                    output.flush()
                output.take_late()
                for helper in helpers:  # the deadline and the line count, if still going
                    helper.cancel()
        finally:
            if display is not None:
                display.stop()
        if pool.cancelled is not None and not state.output_closed:
            stats.interrupted = pool.cancelled
        stats.read_back = getattr(pool, "reused", 0)  # the partitioned engines' count
        stats.stop()  # every report of the run (summary, document, table) shows one wall time
        output.finish()
    if reader is not None and reader.error is not None:
        read_errors.append(reader.error)
    for error in read_errors:
        state.input_error = error
        env.stderr.write(f"fetchpool: error: {error}\n")


async def _run_pool(
    pool: RunPool,
    targets: AsyncIterator[Target],
    results: Channel[Result],
    buffered: Callable[[], list[Target]] | None,
    state: _State,
) -> None:
    await pool.run(targets, results, on_cancel=buffered)
    state.pool_done = True


def _on_daemon_thread(function: Callable[[T], R], argument: T) -> asyncio.Future[R]:
    """Run `function(argument)` on a daemon thread: an exit never waits for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(value: R | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value, error = function(argument), None
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting task
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="fetchpool-count", daemon=True).start()
    return future


async def _deadline(seconds: float, pool: RunPool, state: _State) -> None:
    await asyncio.sleep(seconds)
    if pool.cancelled is None and not state.pool_done:
        state.deadline_reached = True
        pool.cancel(DEADLINE_REASON)


class _Output:
    """Feeds results to the sink, the statistics and the cache; survives a closed stdout."""

    def __init__(
        self,
        sink: ResultSink,
        stats: RunStats,
        pool: RunPool,
        state: _State,
        env: Env,
        cache: ResultCache | None,
        places: Places | None,
    ) -> None:
        self._sink = sink
        self._stats = stats
        self._pool = pool
        self._state = state
        self._env = env
        self._cache = cache
        self._places = places

    def _guard(self, action: Callable[[], None]) -> None:
        if self._state.output_closed:
            return
        try:
            action()
        except BrokenPipeError:
            self._closed()

    def start(self) -> None:
        self._guard(self._sink.start)

    def take(self, result: Result) -> None:
        if self._cache is not None:
            self._cache.put(result)
        if self._places is None:
            self._write(result)
        else:
            for placed in self._places.expand(result):
                self._write(placed)

    def take_late(self) -> None:
        if self._places is not None:
            for result in self._places.take_late():
                self._write(result)
            self.flush()

    def _write(self, result: Result) -> None:
        self._stats.add(result)
        if not self._state.output_closed:
            try:
                self._sink.write(result)
            except BrokenPipeError:
                self._closed()

    def flush(self) -> None:
        self._guard(self._sink.flush)

    def finish(self) -> None:
        self._guard(self._sink.finish)

    def _closed(self) -> None:
        """Standard output was closed (`| head -1`): stop quietly, write nothing more there."""
        self._state.output_closed = True
        self._pool.cancel("output closed")
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._env.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
