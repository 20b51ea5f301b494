"""The `fetchpool` command: options to settings, the run, signals and the exit status."""

from __future__ import annotations

import asyncio
import enum
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Annotated, TextIO

import anyio
import typer

from .. import _config as defaults
from .._config import Settings, StatusSet, parse_header
from .._errors import UsageError
from .._models import Result
from .._pool import Pool
from .._source import TargetReader, open_inputs
from .._stats import RunStats
from .._version import __version__
from .sinks import LineSink, ResultSink

# After the first signal, the process is gone by this time even if a stage hangs.
WATCHDOG_SECONDS = 3.0


class ExitStatus(enum.IntEnum):
    """The exit codes of the contract."""

    OK = 0
    FAILURES = 1
    USAGE = 2
    OUTPUT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe
    SIGINT = 130
    SIGTERM = 143


class OutputFormat(enum.StrEnum):
    """The values of `--format`."""

    AUTO = "auto"
    TABLE = "table"
    PLAIN = "plain"
    JSONL = "jsonl"
    CSV = "csv"


class Method(enum.StrEnum):
    """The values of `--method`."""

    GET = "GET"
    HEAD = "HEAD"


@dataclass
class Env:
    """The process's streams and whether each is a terminal; swapped in tests."""

    stdin_fd: int = 0
    stdout: IO[bytes] = field(default_factory=lambda: sys.stdout.buffer)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool = field(default_factory=lambda: os.isatty(0))
    stdout_isatty: bool = field(default_factory=lambda: sys.stdout.isatty())
    stderr_isatty: bool = field(default_factory=lambda: sys.stderr.isatty())


@dataclass
class _RunState:
    signal: int | None = None
    output_closed: bool = False


def _version_callback(value: bool) -> None:
    if value:
        print(f"fetchpool {__version__}")
        raise typer.Exit(0)


app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command(
    help="Fetch the URLs in FILE... (or standard input) with a fixed pool of workers, "
    "and print one OK/FAIL result per URL as it finishes."
)
def command(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[FILE]...", help="Files of URLs, one per line; '-' or none: standard input."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            help=f"Concurrent fetch workers (1..{defaults.MAX_WORKERS}).",
        ),
    ] = defaults.DEFAULT_WORKERS,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", "-t", help="Hard wall-clock limit per URL, in seconds, all steps included."
        ),
    ] = defaults.DEFAULT_TIMEOUT,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            help="Extra attempts for transient failures (connection errors, timeouts, "
            "429, 502, 503, 504).",
        ),
    ] = defaults.DEFAULT_RETRIES,
    accept: Annotated[
        str, typer.Option("--accept", help="Status codes counted as OK, e.g. 200-299,301,403.")
    ] = defaults.DEFAULT_ACCEPT,
    method: Annotated[Method, typer.Option("--method", help="Request method.")] = Method.GET,
    no_follow: Annotated[
        bool,
        typer.Option(
            "--no-follow",
            help=f"Do not follow redirects (else at most {defaults.MAX_REDIRECTS} hops).",
        ),
    ] = False,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra request header 'Name: value' (repeatable)."),
    ] = None,
    user_agent: Annotated[
        str, typer.Option("--user-agent", help="The User-Agent header.")
    ] = defaults.DEFAULT_USER_AGENT,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify TLS certificates.")
    ] = False,
    per_host: Annotated[
        int | None,
        typer.Option("--per-host", help="At most N requests in flight to one host at once."),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format; auto is table on a terminal, else plain.",
        ),
    ] = OutputFormat.AUTO,
    failures_only: Annotated[
        bool, typer.Option("--failures-only", help="Print only results that are not OK.")
    ] = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No live progress display on standard error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> int:
    env = Env()
    settings = Settings(
        workers=workers,
        timeout=timeout,
        retries=retries,
        accept=StatusSet.parse(accept),
        method=method.value,
        follow_redirects=not no_follow,
        headers=tuple(parse_header(h) for h in header or ()),
        user_agent=user_agent,
        verify=not insecure,
        per_host=per_host,
    )
    paths = files or []
    if not paths and env.stdin_isatty:
        raise UsageError("no input: give a FILE of URLs, or pipe URLs into standard input")
    fmt = output_format
    if fmt is OutputFormat.AUTO:
        fmt = OutputFormat.TABLE if env.stdout_isatty else OutputFormat.PLAIN
    try:
        inputs = open_inputs(paths, stdin_fd=env.stdin_fd)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else "input"
        raise UsageError(f"cannot read {name}: {(exc.strerror or str(exc)).lower()}") from exc
    return int(
        run_cli(
            settings,
            inputs=inputs,
            fmt=fmt,
            failures_only=failures_only,
            progress=not no_progress,
            env=env,
        )
    )


def _make_sink(fmt: OutputFormat, *, failures_only: bool, env: Env) -> ResultSink:
    if fmt is OutputFormat.TABLE:
        # The Rich table arrives with the terminal issue; until then a terminal gets plain.
        return LineSink(env.stdout, "plain", failures_only=failures_only)
    return LineSink(env.stdout, fmt.value, failures_only=failures_only)


def run_cli(
    settings: Settings,
    *,
    inputs: Sequence[object],
    fmt: OutputFormat,
    failures_only: bool,
    progress: bool,
    env: Env,
) -> ExitStatus:
    """Run the fetch with signal handling; return the exit status."""
    stats = RunStats()
    sink = _make_sink(fmt, failures_only=failures_only, env=env)
    state = _RunState()
    reader = TargetReader(inputs)  # type: ignore[arg-type]
    asyncio.run(_run(settings, reader, sink, stats, state, env))
    if state.signal is not None:
        return ExitStatus.SIGTERM if state.signal == signal.SIGTERM else ExitStatus.SIGINT
    if state.output_closed:
        return ExitStatus.OUTPUT_CLOSED
    return ExitStatus.OK if stats.failed == 0 and stats.cancelled == 0 else ExitStatus.FAILURES


def _install_signal_handlers(pool: Pool, state: _RunState) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(signum: int, frame: object) -> None:
        if state.signal is not None:
            os._exit(128 + state.signal)  # a second signal: leave at once
        state.signal = signum
        name = signal.Signals(signum).name
        loop.call_soon_threadsafe(pool.cancel, f"interrupted by {name}")
        watchdog = threading.Timer(WATCHDOG_SECONDS, os._exit, args=(128 + signum,))
        watchdog.daemon = True
        watchdog.start()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


async def _run(
    settings: Settings,
    reader: TargetReader,
    sink: ResultSink,
    stats: RunStats,
    state: _RunState,
    env: Env,
) -> None:
    async with Pool(settings) as pool:
        _install_signal_handlers(pool, state)
        send, receive = anyio.create_memory_object_stream[Result](settings.workers)
        try:
            sink.start()
        except BrokenPipeError:
            _output_closed(pool, state, env)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run_pool, pool, reader, send)
            async with receive:
                async for result in receive:
                    stats.add(result)
                    if not state.output_closed:
                        _write(sink, result, pool, state, env)
                    # Take every result that is ready, then flush once.
                    while True:
                        try:
                            more = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        stats.add(more)
                        if not state.output_closed:
                            _write(sink, more, pool, state, env)
                    if not state.output_closed:
                        try:
                            sink.flush()
                        except BrokenPipeError:
                            _output_closed(pool, state, env)
        if pool.cancelled and state.signal is not None:
            stats.interrupted = pool.cancelled
        if not state.output_closed:
            try:
                sink.finish()
            except BrokenPipeError:
                _output_closed(pool, state, env)
    from .summary import format_summary

    env.stderr.write(format_summary(stats) + "\n")
    env.stderr.flush()


async def _run_pool(
    pool: Pool, reader: TargetReader, send: anyio.abc.ObjectSendStream[Result]
) -> None:
    await pool.run(reader, send, on_cancel=reader.buffered)


def _write(sink: ResultSink, result: Result, pool: Pool, state: _RunState, env: Env) -> None:
    try:
        sink.write(result)
    except BrokenPipeError:
        _output_closed(pool, state, env)


def _output_closed(pool: Pool, state: _RunState, env: Env) -> None:
    """Standard output was closed (`| head -1`): stop quietly, write nothing more there."""
    state.output_closed = True
    pool.cancel("output closed")
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, env.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the command and exit with its status."""
    command_ = typer.main.get_command(app)
    try:
        status = command_.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name="fetchpool",
            standalone_mode=False,
        )
    except UsageError as exc:
        print(f"fetchpool: error: {exc}", file=sys.stderr)
        sys.exit(ExitStatus.USAGE)
    except typer.TyperException as exc:
        message = " ".join(exc.format_message().split())
        print(f"fetchpool: error: {message}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", ExitStatus.USAGE))
    except KeyboardInterrupt:
        sys.exit(ExitStatus.SIGINT)
    sys.exit(int(status or 0))
