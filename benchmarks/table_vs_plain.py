"""Is the live table as fast as plain output? Runs fetchpool inside a real pseudo-terminal.

    python benchmarks/table_vs_plain.py                # the CLI: 20,000 URLs, table vs plain
    python benchmarks/table_vs_plain.py --sink-only    # the display alone: cost per row in µs

The CLI mode starts the test suite's HTTP server (tests/httpserver.py) in a child process on
127.0.0.1, writes N `/ok/<i>` URLs to a temporary file and runs `fetchpool FILE --format table`
and `--format plain` alternately in a pty of 200x50 (output drained continuously), REPS times
each, then prints the medians and the ratio table/plain (the goal is at most 1.10).

The sink-only mode feeds N synthetic results straight to `TableSink` and, for comparison,
writes the same results as plain lines, each in a pty; it reports the extra cost per row.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import pty
import select
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SERVER_CHILD = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from httpserver import HTTPTestServer
with HTTPTestServer() as server:
    print(server.base, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """The test suite's server in its own process (so it does not share our GIL)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER_CHILD, str(ROOT / "tests")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"test server did not start: {base!r}")
        yield base
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_in_pty(argv: Sequence[str], *, cols: int, rows: int, timeout: float) -> Run:
    """Run `argv` with stdin/stdout/stderr on a fresh pty of cols x rows, draining its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    for name in ("NO_COLOR", "COLUMNS", "LINES"):  # the pty's own size and colours, as for a user
        env.pop(name, None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    received = 0
    deadline = started + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.perf_counter()))
            if not ready:
                proc.kill()
                raise TimeoutError(f"{argv} took more than {timeout} s")
            try:
                chunk = os.read(master, 1 << 16)
            except OSError as exc:  # EIO: every writer closed the pty
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            received += len(chunk)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        os.close(master)
    return Run(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, received)


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds, CPU seconds of the child (user + system), output bytes."""

    wall: float
    cpu: float
    size: int


@contextlib.contextmanager
def external_server(command: str) -> Iterator[str]:
    """A server started by `command` that prints its port (or base URL) on its first line."""
    proc = subprocess.Popen(shlex.split(command), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        yield f"http://127.0.0.1:{first}" if first.isdigit() else first
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_cli(args: argparse.Namespace) -> int:
    command = shlex.split(args.command) if args.command else [sys.executable, "-m", "fetchpool"]
    server = external_server(args.server) if args.server else local_server()
    with server as base, tempfile.TemporaryDirectory() as tmp:
        urls = Path(tmp) / "urls.txt"
        urls.write_text("".join(f"{base}/ok/{i}\n" for i in range(args.urls)))
        print(f"{args.urls:,} URLs against {base}, {args.workers} workers, "
              f"pty {args.cols}x{args.rows}, {args.reps} reps each")  # fmt: skip
        runs: dict[str, list[Run]] = {"table": [], "plain": []}
        for rep in range(args.reps):
            for fmt in ("table", "plain") if rep % 2 == 0 else ("plain", "table"):
                argv = [*command, str(urls), "--format", fmt, "--workers", str(args.workers)]
                run = run_in_pty(argv, cols=args.cols, rows=args.rows, timeout=600)
                runs[fmt].append(run)
                print(f"  rep {rep + 1} {fmt:5}: {run.wall:6.2f} s wall, {run.cpu:6.2f} s CPU "
                      f"({run.size / 1e6:.1f} MB output)")  # fmt: skip
    return report(runs, args.urls, args.goal)


def report(runs: dict[str, list[Run]], n: int, goal: float) -> int:
    """Print the medians and ratios; exit status 1 when the wall-time ratio misses the goal."""
    wall = {fmt: statistics.median(r.wall for r in rs) for fmt, rs in runs.items()}
    cpu = {fmt: statistics.median(r.cpu for r in rs) for fmt, rs in runs.items()}
    ratio = wall["table"] / wall["plain"]
    print(f"median wall: table {wall['table']:.3f} s, plain {wall['plain']:.3f} s, "
          f"ratio table/plain {ratio:.3f} (goal <= {goal:.2f})")  # fmt: skip
    print(f"median CPU:  table {cpu['table']:.3f} s, plain {cpu['plain']:.3f} s, "
          f"ratio {cpu['table'] / cpu['plain']:.3f}; "
          f"extra CPU per row {(cpu['table'] - cpu['plain']) / n * 1e6:+.1f} µs")  # fmt: skip
    return 0 if ratio <= goal else 1


# -- sink-only mode: the display alone, fed synthetic results in a child process -------------


def _sink_child(fmt: str, n: int, out: str) -> None:
    from rich.console import Console

    from fetchpool._models import Kind, Outcome, Result
    from fetchpool._stats import RunStats
    from fetchpool.cli.sinks import format_plain
    from fetchpool.cli.table import TableSink
    from fetchpool.cli.view import RunSnapshot, RunView

    results = [
        Result(url=f"http://127.0.0.1:8000/ok/{i}", source="urls.txt", line=i + 1,
               outcome=Outcome.OK, status=200, elapsed=0.001 + (i % 97) / 1000)
        if i % 50 else
        Result(url=f"http://127.0.0.1:8000/status/404/{i}", source="urls.txt", line=i + 1,
               outcome=Outcome.FAIL, status=404, elapsed=0.002, error="HTTP 404 Not Found",
               kind=Kind.HTTP)
        for i in range(n)
    ]  # fmt: skip
    stats = RunStats()
    started = time.perf_counter()
    if fmt == "table":
        sink = TableSink(console=Console(), view=RunView(RunSnapshot(total=n)), stats=stats)
        sink.start()
        for result in results:
            stats.add(result)
            sink.write(result)
        sink.finish()
    else:
        stdout = sys.stdout.buffer
        for result in results:
            stats.add(result)
            stdout.write(format_plain(result).encode())
            stdout.flush()
    seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds}))


def bench_sink(args: argparse.Namespace) -> int:
    times: dict[str, list[float]] = {"table": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "t.json")
        print(f"{args.urls:,} synthetic results, pty {args.cols}x{args.rows}, {args.reps} reps")
        for rep in range(args.reps):
            for fmt in ("table", "plain") if rep % 2 == 0 else ("plain", "table"):
                argv = [sys.executable, __file__, "--child", fmt, "--urls", str(args.urls),
                        "--out", out]  # fmt: skip
                run_in_pty(argv, cols=args.cols, rows=args.rows, timeout=300)  # times itself
                seconds = json.loads(Path(out).read_text())["seconds"]
                times[fmt].append(seconds)
                print(f"  rep {rep + 1} {fmt:5}: {seconds:6.3f} s "
                      f"({seconds / args.urls * 1e6:.1f} µs/row)")  # fmt: skip
    table, plain = statistics.median(times["table"]), statistics.median(times["plain"])
    print(f"median table {table:.3f} s, plain {plain:.3f} s: table costs "
          f"{table / args.urls * 1e6:.1f} µs/row, plain {plain / args.urls * 1e6:.1f} µs/row, "
          f"extra {(table - plain) / args.urls * 1e6:.1f} µs/row")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--cols", type=int, default=200)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--goal", type=float, default=1.10)
    parser.add_argument(
        "--command", help="how to run fetchpool (default: this python -m fetchpool)"
    )
    parser.add_argument(
        "--server",
        help="command of an HTTP server on 127.0.0.1 that prints its port first "
        "(default: tests/httpserver.py in a child process)",
    )
    parser.add_argument("--sink-only", action="store_true", help="time the display alone")
    parser.add_argument("--child", choices=["table", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _sink_child(args.child, args.urls, args.out)
        return 0
    return bench_sink(args) if args.sink_only else bench_cli(args)


if __name__ == "__main__":
    sys.exit(main())
