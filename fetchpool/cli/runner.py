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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol, Self, TextIO, TypeVar

from .._channel import Channel, EndOfChannel, WouldBlock
from .._config import Settings
from .._links import FilteredTargets, LinkOptions, LinkSource, Places
from .._models import Result, Target
from .._pool import Check, Pool
from .._source import Input, TargetReader, TargetSource, count_targets
from .._stats import InputCounts, RunStats
from .sinks import ResultSink
from .view import PUBLISH_INTERVAL, RunSnapshot, RunView

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
    links: LinkOptions | None = None  # with `extract`: how links are checked
    dump: Callable[[str, str, int], None] | None = None  # --dump: each place goes here
    engine: str = "local"  # or "ray"
    ray_address: str | None = None
    output_dir: OutputDir | None = None  # not with `extract` (a usage error in the CLI)
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
    async def run(self, targets: TargetSource, results: Channel[Result]) -> None: ...
    def cancel(self, reason: str = ...) -> None: ...
    @property
    def cancelled(self) -> str | None: ...
    @property
    def total(self) -> int | None: ...
    @property
    def read_count(self) -> int: ...
    def in_flight(self) -> Sequence[tuple[Target, float]]: ...


def make_pool(settings: Settings, plan: RunPlan, check: Check | None = None) -> RunPool:
    """The pool of the plan's engine; with an output directory, one that writes partitions.

    Only the local `Pool` checks links (`check`): the partitioned engines take lists of URLs.
    """
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
    if plan.output_dir is not None:
        from .._partitioned import PartitionedPool

        return PartitionedPool(Pool(settings, cache=plan.cache), plan.output_dir)
    return Pool(settings, cache=plan.cache, check=check)


@dataclass
class _Run:
    """One run of the command: what it was given and what happened to it, in one object
    (lychee's `CommandParams`) instead of parameters handed from function to function."""

    settings: Settings
    plan: RunPlan
    env: Env
    stats: RunStats  # written by the output stage only (`_Output`)
    make_sink: Callable[[RunView], ResultSink]
    make_display: Callable[[RunView], Display] | None = None
    count_total: bool = False
    input_counts: InputCounts = field(default_factory=InputCounts)  # the input stage's own
    # What happened, for the exit status.
    signal: int | None = None
    deadline_reached: bool = False
    output_closed: bool = False
    pool_done: bool = False
    input_error: str | None = None


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
    run = _Run(settings, plan, env, stats, make_sink, make_display, count_total)
    try:
        _run_loop(_run(run))
    finally:
        if plan.cache is not None:
            try:
                plan.cache.save()
            except OSError as exc:
                env.stderr.write(f"fetchpool: warning: cannot write the cache: {exc}\n")
    if run.signal is not None:
        return ExitStatus.SIGTERM if run.signal == signal.SIGTERM else ExitStatus.SIGINT
    if run.output_closed:
        return ExitStatus.OUTPUT_CLOSED
    if run.deadline_reached or run.input_error or stats.failed or stats.cancelled:
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


def _install_signal_handlers(pool: RunPool, run: _Run) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int, frame: object) -> None:
        if run.signal is not None:
            _hard_exit(128 + run.signal)  # a second signal: leave at once
        run.signal = signum
        name = signal.Signals(signum).name
        loop.call_soon_threadsafe(pool.cancel, f"interrupted by {name}")
        watchdog = threading.Timer(WATCHDOG_SECONDS, _hard_exit, args=(128 + signum,))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


class _Input(TargetSource, Protocol):
    """The input stage as the run sees it: a `TargetSource` that says why it ended early."""

    @property
    def errors(self) -> list[str]:
        """Why input ended before its end (an unreadable file), in order."""
        ...


def _open_input(run: _Run) -> _Input:
    """The input stage: the links of documents (`--extract`), or a URL list, filtered or not."""
    plan = run.plan
    if plan.extract:
        options = plan.links or LinkOptions(link_filter=plan.link_filter)

        def warn(message: str) -> None:
            run.env.stderr.write(f"fetchpool: warning: {message}\n")

        places = None if plan.dump is not None else Places()
        return LinkSource(plan.inputs, places, options, run.input_counts, warn=warn, dump=plan.dump)
    reader = TargetReader(plan.inputs)
    if plan.link_filter is None:
        return reader
    return FilteredTargets(reader, plan.link_filter, run.input_counts)


def _link_checking(run: _Run, source: _Input) -> tuple[Check | None, Places | None]:
    """What a worker does with a link-checking target, and where its places are kept."""
    if not isinstance(source, LinkSource):
        return None, None
    from .._check import LinkChecker

    robots = None
    crawl = run.plan.links.crawl if run.plan.links is not None else None
    if crawl is not None and crawl.robots:
        from .._crawl import Robots

        robots = Robots(run.settings.user_agent, source.warn)
    fragments = run.plan.links is not None and run.plan.links.check_fragments
    return LinkChecker(source, robots=robots, fragments=fragments), source.places


async def _run(run: _Run) -> None:
    """input → pool → results channel → output, until the pool closes the channel."""
    source = _open_input(run)
    check, places = _link_checking(run, source)
    async with make_pool(run.settings, run.plan, check) as pool:
        _install_signal_handlers(pool, run)
        view = RunView()
        publisher = _Publisher(pool, view)

        async def count() -> None:
            publisher.counted = await _on_daemon_thread(count_targets, run.plan.inputs)

        results = Channel[Result](run.settings.workers)
        display = run.make_display(view) if run.make_display is not None else None
        output = _Output(run.make_sink(view), run, results, places)
        output.start()
        if display is not None:
            display.start()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_run_pool(pool, source, results, run))
                helpers = []
                if run.plan.max_time is not None:
                    helpers.append(tg.create_task(_deadline(run.plan.max_time, pool, run)))
                if run.count_total and isinstance(source, TargetReader):
                    helpers.append(tg.create_task(count()))
                if run.count_total or display is not None:  # a live display reads the view
                    helpers.append(tg.create_task(publisher.run()))
                await output.consume()
                for helper in helpers:  # the deadline, the line count, the publisher
                    helper.cancel()
        finally:
            if display is not None:
                display.stop()
        # The partitioned engines' results read back from complete partitions.
        output.finish(pool.cancelled, pool.read_count, getattr(pool, "reused", 0))
    for error in source.errors:
        run.input_error = error
        run.env.stderr.write(f"fetchpool: error: {error}\n")


async def _run_pool(pool: RunPool, source: _Input, results: Channel[Result], run: _Run) -> None:
    await pool.run(source, results)
    run.pool_done = True


class _Publisher:
    """Publishes the pool's state to the displays' `RunView`, from the event loop (see `view`)."""

    def __init__(self, pool: RunPool, view: RunView) -> None:
        self._pool = pool
        self._view = view
        self.counted: int | None = None  # URL lines counted up front in regular files

    def publish(self) -> None:
        total = self._pool.total
        snapshot = RunSnapshot(
            tuple(self._pool.in_flight()), total if total is not None else self.counted
        )
        self._view.publish(snapshot)

    async def run(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(PUBLISH_INTERVAL)


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


async def _deadline(seconds: float, pool: RunPool, run: _Run) -> None:
    await asyncio.sleep(seconds)
    if pool.cancelled is None and not run.pool_done:
        run.deadline_reached = True
        pool.cancel(DEADLINE_REASON)


class _Output:
    """The output stage: feeds results to the sink, the statistics and the cache; the one
    writer of the run's statistics. A closed stdout closes the results' receive side, which
    is how this stage tells the pool to stop."""

    def __init__(
        self,
        sink: ResultSink,
        run: _Run,
        results: Channel[Result],
        places: Places | None,
    ) -> None:
        self._sink = sink
        self._run = run
        self._stats = run.stats
        self._results = results
        self._cache = run.plan.cache
        self._places = places
        self.taken = 0  # results taken from the pool (one per target)

    def _guard(self, action: Callable[[], None]) -> None:
        if self._run.output_closed:
            return
        try:
            action()
        except BrokenPipeError:
            self._closed()

    def start(self) -> None:
        self._guard(self._sink.start)

    async def consume(self) -> None:
        """Take results until the pool closes the channel or standard output is closed."""
        run = self._run
        results = self._results
        ended = False
        while not ended and not run.output_closed:
            try:
                self.take(await results.receive())
                while not run.output_closed:  # take every result that is ready, then flush once
                    self.take(results.receive_nowait())
            except WouldBlock:
                pass
            except EndOfChannel:
                ended = True
            self.take_late()
            self.flush()

    def take(self, result: Result) -> None:
        self.taken += 1
        if self._cache is not None:
            self._cache.put(result)
        if self._places is None:
            self._write(result)
        else:
            for index, placed in enumerate(self._places.expand(result)):
                self._write(placed, again=index > 0)

    def take_late(self) -> None:
        """Write the results of places found after their link's result was written."""
        if self._places is not None:
            for result in self._places.take_late():
                self._write(result, again=True)

    def _write(self, result: Result, *, again: bool = False) -> None:
        self._stats.add(result, again=again)
        if not self._run.output_closed:
            try:
                self._sink.write(result)
            except BrokenPipeError:
                self._closed()

    def flush(self) -> None:
        self._guard(self._sink.flush)

    def finish(self, cancelled: str | None, read: int, read_back: int = 0) -> None:
        """End the run's statistics (why it was cut short, what the input counted, the wall
        time every report shows), then the sink's output (summary, document, table).

        `read` is how many targets the pool read: after standard output was closed, those
        whose results were never taken are counted as cancelled, so the summary on standard
        error still accounts for every URL read. `read_back` is how many results the
        partitioned engines read back from complete partitions of `--output-dir`.
        """
        stats = self._stats
        if self._run.output_closed:
            stats.add_unreported(max(0, read - self.taken), "output closed")
        elif cancelled is not None:
            stats.interrupted = cancelled
        stats.add_input(self._run.input_counts)
        stats.read_back = read_back
        stats.stop()
        self._guard(self._sink.finish)

    def _closed(self) -> None:
        """Standard output was closed (`| head -1`): stop quietly, write nothing more there."""
        self._run.output_closed = True
        self._results.close_receive()  # the pool sees it and stops
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._run.env.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
