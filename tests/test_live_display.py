"""When the live displays are drawn, under a real pseudo-terminal (issue #15, items 1 and 8a).

The contract: the one-line progress display on standard error is drawn only when standard
output is redirected to a file and standard error is a terminal; when standard output is a
pipe nothing is drawn; `--no-progress` turns every live display off (also the table's busy
workers); `-q, --quiet` leaves results (and errors) only: no progress, no summary.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from clihelpers import FETCHPOOL, cli_env, run_fetchpool, write_lines
from httpserver import HTTPTestServer
from ptyhelpers import (
    command_line,
    exit_status,
    open_terminal,
    run_to_end,
    screen_lines,
    spawn_on_terminal,
)

from fetchpool.cli.runner import Env, is_pipe

COLS, ROWS = 100, 30

# Anything a live display needs and result lines never contain: cursor up/down/left/right,
# column and position moves, erasing, hiding or showing the cursor.
CURSOR_MOVEMENT = re.compile(r"\x1b\[(?:\d*(?:;\d*)*[ABCDEFGHJKf]|\?25[lh])")
ANY_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ROW = re.compile(r"^(OK|FAIL|CANCELLED)[ \t]+(\d{3}|-)[ \t]")


def _env() -> dict[str, str]:
    return cli_env({"TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)})


def _slow_urls(server: HTTPTestServer, tag: str, count: int = 8) -> list[str]:
    """URLs that keep 2 workers busy for about half a second: time for a live display."""
    return [server.url(f"/delay/120/{tag}-{i}") for i in range(count)]


def _shell_on_pty(command: str) -> tuple[int, str]:
    """Run `sh -c command` on a pseudo-terminal; its exit status and all it wrote there."""
    child = spawn_on_terminal([command], shell=True, rows=ROWS, cols=COLS, env=_env(), timeout=30)
    raw = run_to_end(child)
    return exit_status(child), raw


def _screen(raw: str) -> list[str]:
    """The non-blank lines a terminal shows after receiving `raw`."""
    return [line for line in screen_lines(raw, COLS, ROWS) if line]


def _stderr_on_pty(args: Sequence[str | Path], stdout: int) -> tuple[int, bytes]:
    """Run fetchpool with standard error on a pseudo-terminal and standard output on `stdout`
    (a pipe's or a socket's descriptor); its exit status and the bytes it wrote to stderr."""
    master, slave = open_terminal(ROWS, COLS)
    try:
        proc = subprocess.Popen(
            [*FETCHPOOL, *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=slave,
            env=_env(),
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every copy of the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, b"".join(chunks)


# -- where the decision is made ---------------------------------------------------------------


def test_is_pipe_tells_pipes_and_sockets_from_files_and_terminals(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    left, right = socket.socketpair()
    master, slave = open_terminal()
    with open(tmp_path / "out", "wb") as file, open(os.devnull, "wb") as devnull:
        try:
            assert is_pipe(write_end)
            assert is_pipe(left.fileno())
            assert not is_pipe(file.fileno())
            assert not is_pipe(devnull.fileno())
            assert not is_pipe(slave)
        finally:
            for fd in (read_end, write_end, master, slave):
                os.close(fd)
            left.close()
            right.close()
    assert not is_pipe(10_000)  # not open: not a pipe


@pytest.mark.parametrize(
    ("stdout_isatty", "stdout_is_pipe", "stderr_isatty", "allowed"),
    [
        (False, False, True, True),  # > out.tsv at a terminal
        (False, True, True, False),  # | jq at a terminal
        (True, False, True, False),  # all at a terminal: the table's own display
        (False, False, False, False),  # > out.tsv 2> err.log
        (False, True, False, False),  # in a pipeline, stderr captured
    ],
)
def test_the_progress_line_is_allowed_only_for_stdout_to_a_file_and_stderr_at_a_terminal(
    stdout_isatty: bool, stdout_is_pipe: bool, stderr_isatty: bool, allowed: bool
) -> None:
    env = Env(
        stdout_isatty=stdout_isatty, stdout_is_pipe=stdout_is_pipe, stderr_isatty=stderr_isatty
    )
    assert env.progress_allowed is allowed


# -- "When standard output is a pipe (| jq, | less, | head), nothing is drawn" ----------------


def test_when_stdout_is_a_pipe_nothing_is_drawn_on_the_terminal(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    # `fetchpool urls.txt --format jsonl | cat`: cat writes the results to the same terminal.
    urls = _slow_urls(server, "pipe")
    path = write_lines(tmp_path / "urls.txt", urls)
    status, raw = _shell_on_pty(
        command_line(path, "--format", "jsonl", "--workers", "2") + " | cat"
    )
    assert status == 0, raw
    assert "\x1b" not in raw  # no progress line, no cursor movement, no erasing
    assert "done ·" not in raw
    assert "URLs/s ·" not in raw
    lines = raw.replace("\r\n", "\n").splitlines()
    results = [json.loads(line) for line in lines if line.startswith("{")]
    assert sorted(r["url"] for r in results) == sorted(urls)  # every line whole, none glued
    assert sum(line.startswith("8 URLs: 8 ok") for line in lines) == 1  # the summary stays


def test_when_stdout_is_a_pipe_to_head_nothing_is_glued_to_the_first_result(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.url(f"/ok/head-{i}") for i in range(3)] + _slow_urls(server, "head", 6)
    path = write_lines(tmp_path / "urls.txt", urls)
    _, raw = _shell_on_pty(command_line(path, "--workers", "2") + " | head -3")
    assert "\x1b" not in raw
    assert "done ·" not in raw
    lines = raw.replace("\r\n", "\n").splitlines()
    rows = [line for line in lines if ROW.match(line)]
    assert len(rows) == 3
    assert all(line.split("\t")[3] in urls for line in rows)
    assert "Traceback" not in raw


@pytest.mark.parametrize("kind", ["pipe", "socket"])
def test_when_stdout_is_a_pipe_or_socket_nothing_is_drawn_on_stderr(
    server: HTTPTestServer, tmp_path: Path, kind: str
) -> None:
    urls = _slow_urls(server, kind)
    path = write_lines(tmp_path / "urls.txt", urls)
    # No reader thread is needed: 8 result lines fit in any pipe or socket buffer.
    if kind == "pipe":
        read_end, write_end = os.pipe()
        with os.fdopen(read_end, "rb") as reader:
            try:
                status, err = _stderr_on_pty([path, "--workers", "2"], stdout=write_end)
            finally:
                os.close(write_end)
            out = reader.read()
    else:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            status, err = _stderr_on_pty([path, "--workers", "2"], stdout=theirs.fileno())
            theirs.shutdown(socket.SHUT_WR)
            out = b"".join(iter(lambda: ours.recv(65536), b""))
    assert status == 0, err
    assert b"\x1b" not in err  # no progress bytes, no escape sequences
    assert b"done \xc2\xb7" not in err
    assert err.replace(b"\r\n", b"\n").startswith(b"8 URLs: 8 ok")  # only the summary
    assert len(out.splitlines()) == 8


# -- "When standard output is redirected to a file ... a one-line live progress display" -----


@pytest.mark.parametrize("target", ["file", "devnull"])
def test_when_stdout_is_redirected_to_a_file_the_progress_line_is_drawn_on_stderr_and_erased(
    server: HTTPTestServer, tmp_path: Path, target: str
) -> None:
    urls = _slow_urls(server, f"file-{target}")
    path = write_lines(tmp_path / "urls.txt", urls)
    out = tmp_path / "out.tsv" if target == "file" else Path(os.devnull)
    status, raw = _shell_on_pty(
        command_line(path, "--workers", "2") + f" > {shlex.quote(str(out))}"
    )
    assert status == 0, raw
    assert "/8 done" in ANY_SEQUENCE.sub("", raw)  # the progress line was drawn...
    assert CURSOR_MOVEMENT.search(raw)
    lines = _screen(raw)
    assert not any("done ·" in line for line in lines)  # ...and erased at the end
    assert lines[0].startswith("8 URLs: 8 ok")  # the summary remains
    if target == "file":
        text = out.read_text()
        assert len(text.splitlines()) == 8
        assert "\x1b" not in text


# -- "-q, --quiet: no progress display and no summary; results (and errors) only" -------------


def test_quiet_plain_at_a_terminal_prints_results_only_no_summary(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = _slow_urls(server, "quiet-plain")
    path = write_lines(tmp_path / "urls.txt", urls)
    status, raw = _shell_on_pty(command_line(path, "--workers", "2", "--format", "plain", "-q"))
    assert status == 0, raw
    assert "\x1b" not in raw
    lines = raw.replace("\r\n", "\n").splitlines()
    assert len(lines) == 8
    assert all(ROW.match(line) for line in lines)


def test_quiet_with_stdout_to_a_file_draws_nothing_on_the_terminal(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = _slow_urls(server, "quiet-file")
    path = write_lines(tmp_path / "urls.txt", urls)
    out = tmp_path / "out.tsv"
    command = command_line(path, "--workers", "2", "--quiet") + f" > {shlex.quote(str(out))}"
    status, raw = _shell_on_pty(command)
    assert status == 0, raw
    assert raw == ""  # no progress line, no summary
    assert len(out.read_text().splitlines()) == 8


def test_quiet_table_at_a_terminal_prints_rows_only_no_live_region_no_summary(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [*_slow_urls(server, "quiet-table"), server.url("/status/404/quiet-table")]
    path = write_lines(tmp_path / "urls.txt", urls)
    status, raw = _shell_on_pty(command_line(path, "--workers", "2", "--quiet"))
    assert status == 1, raw  # the 404
    assert not CURSOR_MOVEMENT.search(raw)
    assert "in flight" not in raw
    lines = _screen(raw)
    assert len(lines) == len(urls)
    assert all(ROW.match(line) for line in lines), lines
    assert "Summary" not in raw
    assert "p50" not in raw


@pytest.mark.parametrize("fmt", ["plain", "jsonl", "csv", "table"])
def test_quiet_leaves_stderr_empty_in_every_format(
    server: HTTPTestServer, tmp_path: Path, fmt: str
) -> None:
    path = write_lines(
        tmp_path / "urls.txt", [server.url(f"/ok/quiet-{fmt}-{i}") for i in range(3)]
    )
    proc = run_fetchpool(path, "--format", fmt, "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == (4 if fmt == "csv" else 3)  # csv: the header row, then the results
    assert "Summary" not in proc.stdout.decode()


def test_quiet_still_prints_errors(tmp_path: Path) -> None:
    proc = run_fetchpool(tmp_path / "missing.txt", "-q")
    assert proc.returncode == 2
    assert proc.stderr.startswith(b"fetchpool: error: cannot read")


def test_quiet_can_be_set_in_pyproject(server: HTTPTestServer, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.fetchpool]\nquiet = true\n")
    path = write_lines(tmp_path / "urls.txt", [server.url("/ok/quiet-pyproject")])
    proc = run_fetchpool(path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert proc.stdout.startswith(b"OK\t200\t")


# -- "--no-progress: no live progress display" (also the table's live region) ---------------


def test_no_progress_table_at_a_terminal_streams_rows_without_a_live_region(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = _slow_urls(server, "no-progress-table")
    path = write_lines(tmp_path / "urls.txt", urls)
    status, raw = _shell_on_pty(command_line(path, "--workers", "2", "--no-progress"))
    assert status == 0, raw
    assert not CURSOR_MOVEMENT.search(raw)  # nothing drawn and erased: no live region
    assert "in flight" not in raw
    lines = _screen(raw)
    rows = [line for line in lines if ROW.match(line)]
    assert len(rows) == len(urls)
    assert any(line.startswith("Summary") for line in lines)  # the summary still ends the run
    assert "8 URLs" in raw
