"""Ending a run by signal: SIGINT and SIGTERM under pipes and under a real pseudo-terminal.

The contract: exit 130 / 143, every URL read but not finished is reported CANCELLED (in every
format), the process is gone within one second, and a second Ctrl-C exits at once.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
from clihelpers import (
    cli_env,
    parse_csv,
    parse_jsonl,
    parse_plain,
    parse_summary,
    read_lines_until,
    spawn_fetchpool,
    wait_exit,
    wait_signal_handlers,
    write_lines,
)
from httpserver import HTTPTestServer, wait_until
from ptyhelpers import run_to_end, spawn_on_terminal

# The contract allows one second from the signal to the process being gone. The test measures
# from just before kill() to the moment waitpid() returns, on a loaded 2-core CI machine, so it
# allows the 1.0 s of the contract plus 0.5 s for scheduling noise.
GONE_WITHIN = 1.5
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")
EXIT_CODE = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Run:
    """A `fetchpool` run whose first URLs finished and whose workers all hang."""

    proc: subprocess.Popen[bytes]
    urls: list[str]
    fmt: str
    ok_count: int
    early: list[bytes]  # the output lines already read before the signal


def _lines(server: HTTPTestServer, tag: str, ok_count: int, hang_count: int) -> list[str]:
    return [server.url(f"/ok/{tag}/{i}") for i in range(1, ok_count + 1)] + [
        server.url(f"/hang/{tag}/{i}") for i in range(ok_count + 1, ok_count + hang_count + 1)
    ]


def _start_hanging_run(
    server: HTTPTestServer,
    tmp_path: Path,
    fmt: str,
    *,
    ok_count: int = 3,
    hang_count: int = 20,
    workers: int = 4,
) -> Run:
    tag = uuid.uuid4().hex
    urls = _lines(server, tag, ok_count, hang_count)
    path = write_lines(tmp_path / "urls.txt", urls)
    proc = spawn_fetchpool(path, "--workers", str(workers), "--timeout", "30", "--format", fmt)
    # Wait for the first results (csv: and its header), then for every worker to be stuck on
    # a hanging URL: the signal then lands in the middle of a run with work in flight.
    early = read_lines_until(proc, ok_count + (fmt == "csv"), timeout=10)
    busy = wait_until(lambda: server.hits(f"/hang/{tag}/") >= workers, 10)
    assert busy, f"only {server.hits(f'/hang/{tag}/')} hanging requests reached the server"
    return Run(proc, urls, fmt, ok_count, early)


def _signal_and_wait(proc: subprocess.Popen[bytes], signum: int) -> tuple[bytes, bytes, float]:
    # Keep draining stdout and stderr while waiting: the cancelled results may not fit in a
    # pipe buffer, and a writer blocked on a full pipe would look like a slow exit.
    started = time.monotonic()
    proc.send_signal(signum)
    out, err = wait_exit(proc, 10)
    gone_after = time.monotonic() - started
    return out, err, gone_after


def _results(run: Run, out: bytes) -> list[tuple[int, str, str]]:
    """(line, outcome, error) of every result printed, in any of the three formats."""
    text = b"\n".join(run.early) + b"\n" + out
    line_of = {url: i for i, url in enumerate(run.urls, start=1)}
    if run.fmt == "plain":
        return [(line_of[f[3]], f[0].lower(), f[4]) for f in parse_plain(text) if len(f) == 5]
    if run.fmt == "jsonl":
        return [(r["line"], r["outcome"], r["error"] or "") for r in parse_jsonl(text)]
    _, rows = parse_csv(text)
    return [(int(r["line"]), r["outcome"], r["error"]) for r in rows]


def _assert_nothing_lost(run: Run, out: bytes, err: bytes) -> list[int]:
    """Every line read yields exactly one result; finished ones OK, unfinished CANCELLED.
    Returns the lines reported as cancelled."""
    results = _results(run, out)
    lines = [line for line, _, _ in results]
    assert len(lines) == len(set(lines)), f"a line was reported twice: {sorted(lines)}"
    # The reader reads in order, so the lines it took are a prefix of the file: a gap would be
    # a URL read and then lost.
    assert sorted(lines) == list(range(1, len(lines) + 1)), sorted(lines)
    by_line = {line: (outcome, error) for line, outcome, error in results}
    for line in range(1, run.ok_count + 1):
        assert by_line[line][0] == "ok", by_line[line]
    cancelled = [line for line, (outcome, _) in by_line.items() if outcome == "cancelled"]
    assert all(by_line[line][1] for line in cancelled), "a CANCELLED result without error text"
    assert len(lines) == run.ok_count + len(cancelled), by_line
    # At least every URL that was in flight (one per worker) was read and is cancelled.
    assert len(cancelled) >= 4, cancelled
    summary = parse_summary(err)
    assert (summary.done, summary.ok, summary.failed, summary.cancelled) == (
        len(lines),
        run.ok_count,
        0,
        len(cancelled),
    )
    text = err.decode(errors="replace")
    assert "Traceback" not in text, text
    return cancelled


@pytest.mark.parametrize("fmt", ["plain", "jsonl", "csv"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_reports_every_unfinished_url_as_cancelled(
    server: HTTPTestServer, tmp_path: Path, fmt: str, signum: signal.Signals
) -> None:
    run = _start_hanging_run(server, tmp_path, fmt)
    out, err, gone_after = _signal_and_wait(run.proc, signum)
    assert run.proc.returncode == EXIT_CODE[signum], err
    _assert_nothing_lost(run, out, err)
    assert gone_after < GONE_WITHIN, f"still running {gone_after:.2f} s after {signum.name}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_process_is_gone_within_one_second_of_signal(
    server: HTTPTestServer, tmp_path: Path, signum: signal.Signals
) -> None:
    # Many workers stuck at once: cancelling all of them must still fit in the second.
    run = _start_hanging_run(server, tmp_path, "jsonl", hang_count=400, workers=100)
    out, err, gone_after = _signal_and_wait(run.proc, signum)
    assert gone_after < GONE_WITHIN, f"still running {gone_after:.2f} s after {signum.name}"
    assert run.proc.returncode == EXIT_CODE[signum], err
    cancelled = _assert_nothing_lost(run, out, err)
    assert len(cancelled) >= 100


def test_input_not_yet_read_when_cancelled_is_left_unread(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    run = _start_hanging_run(server, tmp_path, "jsonl", hang_count=100_000, workers=4)
    out, err, _ = _signal_and_wait(run.proc, signal.SIGINT)
    assert run.proc.returncode == 130, err
    cancelled = _assert_nothing_lost(run, out, err)
    # Input is read lazily: a cancelled run has not swallowed (and reported) the whole file.
    assert len(cancelled) < 100_000 // 2, len(cancelled)


def test_second_ctrl_c_exits_at_once(server: HTTPTestServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    path = write_lines(tmp_path / "urls.txt", [server.url(f"/ok/{tag}/{i}") for i in range(20_000)])
    # Nobody reads stdout: once the pipe is full the run is stuck writing, so the first
    # Ctrl-C cannot finish its orderly exit. The second one must end the process anyway.
    proc = spawn_fetchpool(path, "--workers", "4", "--format", "plain")
    try:
        assert wait_until(lambda: server.hits(f"/ok/{tag}/") >= 300, 15), "run never got going"

        def stalled() -> bool:
            before = server.hits(f"/ok/{tag}/")
            time.sleep(0.2)
            return server.hits(f"/ok/{tag}/") == before

        assert wait_until(stalled, 10), "the run never blocked on its full stdout pipe"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)  # the first signal is being handled
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        gone_after = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        wait_exit(proc, 5)
    assert gone_after < 0.5, f"still running {gone_after:.2f} s after the second Ctrl-C"
    assert proc.returncode == 130


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_waiting_on_stdin_exits_within_one_second(
    server: HTTPTestServer, signum: signal.Signals
) -> None:
    tag = uuid.uuid4().hex
    ok, hang = server.url(f"/ok/{tag}"), server.url(f"/hang/{tag}")
    proc = spawn_fetchpool("--format", "jsonl", "--timeout", "30", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        proc.stdin.write(f"{ok}\n{hang}\n".encode())
        proc.stdin.flush()
        [first] = read_lines_until(proc, 1, timeout=10)
        assert wait_until(lambda: server.hits(f"/hang/{tag}") >= 1, 10)
        time.sleep(0.2)  # the reader is now blocked on a pipe that stays open and silent
        out, err, gone_after = _signal_and_wait(proc, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdin.close()
    assert gone_after < GONE_WITHIN, f"still running {gone_after:.2f} s after {signum.name}"
    assert proc.returncode == EXIT_CODE[signum], err
    records = parse_jsonl(first + b"\n" + out)
    assert [(r["url"], r["outcome"]) for r in records] == [(ok, "ok"), (hang, "cancelled")]
    summary = parse_summary(err)
    assert (summary.done, summary.ok, summary.cancelled) == (2, 1, 1)


def test_ctrl_c_before_any_input_exits_130(server: HTTPTestServer) -> None:
    proc = spawn_fetchpool("--format", "plain", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        # Nothing is ever written: once the command is up, it can only be waiting on stdin.
        wait_signal_handlers(proc)
        time.sleep(0.2)
        out, err, gone_after = _signal_and_wait(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdin.close()
    assert gone_after < GONE_WITHIN, gone_after
    assert proc.returncode == 130, err
    assert out == b""
    assert parse_summary(err).done == 0
    assert b"Traceback" not in err


# -- under a real pseudo-terminal ----------------------------------------------------------


@contextlib.contextmanager
def _on_terminal(*args: str) -> Iterator[pexpect.spawn[bytes]]:
    """fetchpool on a pseudo-terminal; killed on the way out if a test left it running."""
    child = spawn_on_terminal(args, rows=50, cols=200, env=cli_env(), timeout=10)
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def _wait_gone(child: pexpect.spawn[bytes]) -> tuple[str, float]:
    started = time.monotonic()
    screen = run_to_end(child, timeout=10)
    return screen, time.monotonic() - started


def test_ctrl_c_typed_at_terminal_cancels_and_exits_130(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    urls = _lines(server, tag, 2, 12)
    path = write_lines(tmp_path / "urls.txt", urls)
    # The default format: on a terminal that is the display meant for people.
    with _on_terminal(str(path), "--workers", "4", "--timeout", "30") as child:
        assert wait_until(lambda: server.hits(f"/hang/{tag}/") >= 4, 10)
        time.sleep(0.2)
        child.sendintr()  # types the terminal's INTR character (^C)
        screen, gone_after = _wait_gone(child)
    assert gone_after < GONE_WITHIN, f"still running {gone_after:.2f} s after ^C"
    assert child.exitstatus == 130, screen
    assert "Traceback" not in screen, screen
    # Finished rows stay on screen: read the rows of the display, whatever its styling.
    text = _ANSI.sub("", screen).replace("\r", "\n").replace("^C", "")
    rows: dict[int, list[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] in {"OK", "FAIL", "CANCELLED"} and fields[3] in urls:
            rows.setdefault(urls.index(fields[3]) + 1, []).append(fields[0])
    assert rows == {1: ["OK"], 2: ["OK"]}, rows
    # The cancelled URLs are one line, not a row each; the summary counts the same number.
    counted = re.findall(r"^(\d+) cancelled \(interrupted by SIGINT\)$", text, re.MULTILINE)
    assert len(counted) == 1, text
    assert int(counted[0]) >= 4, text
    assert re.search(rf"\b{counted[0]} CANCELLED\b", text), text


def test_ctrl_c_typed_at_terminal_in_plain_format_reports_every_url(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    urls = _lines(server, tag, 2, 12)
    path = write_lines(tmp_path / "urls.txt", urls)
    with _on_terminal(str(path), "--workers", "4", "--timeout", "30", "-f", "plain") as child:
        assert wait_until(lambda: server.hits(f"/hang/{tag}/") >= 4, 10)
        time.sleep(0.2)
        child.sendintr()
        screen, gone_after = _wait_gone(child)
    assert gone_after < GONE_WITHIN, gone_after
    assert child.exitstatus == 130, screen
    # The terminal echoes the typed ^C into the output.
    lines = screen.replace("^C", "").splitlines()
    rows = [line.split("\t") for line in lines if line.count("\t") == 4]
    reported = [urls.index(fields[3]) + 1 for fields in rows]
    assert len(reported) == len(set(reported)), reported
    assert sorted(reported) == list(range(1, len(reported) + 1)), reported
    outcomes = {urls.index(f[3]) + 1: f[0] for f in rows}
    assert outcomes[1] == outcomes[2] == "OK"
    assert [o for line, o in outcomes.items() if line > 2] == ["CANCELLED"] * (len(rows) - 2)
    assert len(rows) - 2 >= 4, rows  # at least the 4 in flight were reported CANCELLED
    assert parse_summary(screen.encode()).done == len(rows)


def test_second_ctrl_c_typed_at_terminal_exits_at_once(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    path = write_lines(tmp_path / "urls.txt", _lines(server, tag, 0, 50))
    with _on_terminal(str(path), "--workers", "8", "-f", "plain") as child:
        assert wait_until(lambda: server.hits(f"/hang/{tag}/") >= 8, 10)
        child.sendintr()
        child.sendintr()
        screen, gone_after = _wait_gone(child)
    assert gone_after < GONE_WITHIN, gone_after
    assert child.exitstatus == 130, screen
    assert "Traceback" not in screen, screen


def test_ctrl_c_while_terminal_input_is_awaited_exits_within_one_second(
    server: HTTPTestServer,
) -> None:
    # `-` names standard input explicitly, so a terminal is read; the user types one URL.
    with _on_terminal("-", "--format", "plain") as child:
        child.sendline(server.url("/ok/typed"))
        child.expect(r"OK\t200\t")
        time.sleep(0.2)
        child.sendintr()
        screen, gone_after = _wait_gone(child)
    assert gone_after < GONE_WITHIN, gone_after
    assert child.exitstatus == 130, screen
    assert "Traceback" not in screen, screen


def test_sigterm_on_terminal_exits_143(server: HTTPTestServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    path = write_lines(tmp_path / "urls.txt", _lines(server, tag, 1, 10))
    with _on_terminal(str(path), "--workers", "4", "-f", "jsonl") as child:
        assert wait_until(lambda: server.hits(f"/hang/{tag}/") >= 4, 10)
        child.kill(signal.SIGTERM)
        screen, gone_after = _wait_gone(child)
    assert gone_after < GONE_WITHIN, gone_after
    assert child.exitstatus == 143, screen
    records = _json_lines(screen)
    assert records[0]["outcome"] == "ok"
    assert sum(r["outcome"] == "cancelled" for r in records) >= 4


def _json_lines(screen: str) -> list[dict[str, object]]:
    return parse_jsonl(
        "\n".join(line for line in screen.splitlines() if line.startswith("{")).encode()
    )
