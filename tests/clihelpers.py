"""Helpers for running the installed `fetchpool` command in a subprocess and reading its output.

Every wait here is bounded: a command that hangs fails the test instead of stalling the suite.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FETCHPOOL",
    "Summary",
    "cli_env",
    "parse_csv",
    "parse_jsonl",
    "parse_plain",
    "parse_summary",
    "read_lines_until",
    "run_fetchpool",
    "spawn_fetchpool",
    "wait_exit",
    "wait_signal_handlers",
    "write_lines",
]

# Generous bound for a command that should finish at once; a hang fails after this.
RUN_TIMEOUT = 20.0


def _fetchpool_command() -> list[str]:
    script = Path(sys.executable).parent / "fetchpool"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "fetchpool"]


FETCHPOOL: list[str] = _fetchpool_command()
"""The installed console script next to this interpreter, else `python -m fetchpool`."""

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child `fetchpool`: no proxy (all traffic stays on 127.0.0.1),
    no colour, and unbuffered Python so nothing is hidden in a buffer at a signal."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["NO_PROXY"] = "*"
    env["no_proxy"] = "*"
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("FETCHPOOL_BEARER", None)
    env.update(extra or {})
    return env


def run_fetchpool(
    *args: str | os.PathLike[str],
    input: bytes | None = None,
    timeout: float = RUN_TIMEOUT,
    command: Sequence[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: int | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `fetchpool *args` to completion (bounded) and capture stdout and stderr as bytes;
    `env` adds to (or overrides) the test environment of `cli_env`."""
    if input is None and stdin is None:
        stdin = subprocess.DEVNULL
    return subprocess.run(
        [*(command or FETCHPOOL), *map(str, args)],
        input=input,
        stdin=stdin,
        capture_output=True,
        timeout=timeout,
        env=cli_env(env),
        cwd=cwd,
        check=False,
    )


def spawn_fetchpool(
    *args: str | os.PathLike[str],
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start `fetchpool *args` without waiting; the caller must end it (see `wait_exit`)."""
    return subprocess.Popen(
        [*FETCHPOOL, *map(str, args)],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=cli_env(),
    )


def wait_exit(proc: subprocess.Popen[bytes], timeout: float = RUN_TIMEOUT) -> tuple[bytes, bytes]:
    """Wait (bounded) for `proc` to end and return what is left on its stdout and stderr.
    On timeout the process is killed and the test fails with what it printed."""
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None  # communicate() would try to flush it
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        raise AssertionError(
            f"fetchpool did not exit within {timeout} s\nstdout: {out!r}\nstderr: {err!r}"
        ) from None
    return out or b"", err or b""


def wait_signal_handlers(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until `proc` catches SIGTERM, i.e. the command has installed its signal handlers
    (Python itself catches only SIGINT at start-up). Linux: reads SigCgt in /proc."""
    status = Path(f"/proc/{proc.pid}/status")
    sigterm_bit = 1 << (15 - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"fetchpool exited early with {proc.returncode}")
        try:
            caught = next(
                int(line.split()[1], 16)
                for line in status.read_text().splitlines()
                if line.startswith("SigCgt:")
            )
        except (OSError, StopIteration):
            caught = 0
        if caught & sigterm_bit:
            return
        time.sleep(0.01)
    raise AssertionError(f"fetchpool did not install its signal handlers within {timeout} s")


def read_lines_until(
    proc: subprocess.Popen[bytes], count: int, timeout: float = RUN_TIMEOUT
) -> list[bytes]:
    """Read `count` complete lines from `proc.stdout` as they come, waiting at most `timeout`
    seconds overall. Reads the raw pipe, so nothing is held back in a Python buffer."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while buffer.count(b"\n") < count:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"wanted {count} lines within {timeout} s, got {buffer!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"stdout closed after {buffer!r}, wanted {count} lines")
            buffer += chunk
    lines = buffer.split(b"\n")
    # Anything after the wanted lines would be lost; a test that reads on must not see any.
    assert b"\n".join(lines[count:]) == b"", f"more output than expected: {buffer!r}"
    return lines[:count]


def write_lines(path: Path, lines: Iterable[str | bytes]) -> Path:
    """Write one line per item (str as UTF-8, bytes as is) with `\\n` endings; returns path."""
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


def parse_plain(stdout: bytes) -> list[list[str]]:
    """The TAB-separated fields of every plain output line."""
    return [line.split("\t") for line in stdout.decode().splitlines()]


def parse_jsonl(stdout: bytes) -> list[dict[str, Any]]:
    """One dict per jsonl line; a line that is not a JSON object fails the test."""
    records = []
    for line in stdout.decode().splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


def parse_csv(stdout: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of csv output."""
    reader = csv.reader(io.StringIO(stdout.decode(), newline=""))
    rows = list(reader)
    assert rows, "csv output has no header row"
    header = rows[0]
    return header, [dict(zip(header, row, strict=True)) for row in rows[1:]]


@dataclass(frozen=True)
class Summary:
    """The counts of the summary's first line: `N URLs: a ok, b failed, c cancelled in ...`."""

    done: int
    ok: int
    failed: int
    cancelled: int


_SUMMARY = re.compile(
    r"^([\d,]+) URLs?: ([\d,]+) ok, ([\d,]+) failed, ([\d,]+) cancelled\b", re.MULTILINE
)


def parse_summary(stderr: bytes) -> Summary:
    """Find the summary line on stderr; fails the test when there is none."""
    text = stderr.decode(errors="replace")
    match = _SUMMARY.search(text)
    assert match is not None, f"no summary line on stderr: {text!r}"
    done, ok, failed, cancelled = (int(g.replace(",", "")) for g in match.groups())
    return Summary(done, ok, failed, cancelled)
