"""fetchpool (or a shell command) under a real pseudo-terminal, and the screen it leaves there.

What every terminal test shares, in one place: a pseudo-terminal of a given size
(`open_terminal`, or `spawn_on_terminal` through pexpect), waiting for the end of the run
(`run_to_end`), and what a terminal of that size shows after receiving the output
(`screen_lines`, through pyte).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import struct
import termios
from collections.abc import Sequence
from pathlib import Path

import pexpect
import pyte
from clihelpers import FETCHPOOL, cli_env


def open_terminal(rows: int = 24, cols: int = 80) -> tuple[int, int]:
    """A new pseudo-terminal of `rows` x `cols`: (controller fd, terminal fd); close both."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return controller, terminal


def command_line(*args: str | Path) -> str:
    """fetchpool with `args`, quoted for `sh -c`."""
    return " ".join(shlex.quote(str(a)) for a in [*FETCHPOOL, *args])


def spawn_on_terminal(
    args: Sequence[str | Path],
    *,
    rows: int = 24,
    cols: int = 80,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    cwd: Path | None = None,
    shell: bool = False,
) -> pexpect.spawn[bytes]:
    """fetchpool with `args` on a pseudo-terminal of `rows` x `cols` (`shell`: `sh -c args[0]`).

    `env` defaults to the test environment with `TERM=xterm-256color`.
    """
    if shell:
        program, argv = "/bin/sh", ["-c", str(args[0])]
    else:
        program, argv = FETCHPOOL[0], [*FETCHPOOL[1:], *map(str, args)]
    return pexpect.spawn(
        program,
        argv,
        env=env if env is not None else cli_env({"TERM": "xterm-256color"}),
        timeout=timeout,
        dimensions=(rows, cols),
        cwd=str(cwd) if cwd is not None else None,
    )


def run_to_end(child: pexpect.spawn[bytes], timeout: float = -1) -> str:
    """Wait for the end of the run, close the terminal; all the child wrote there, decoded.

    `timeout` -1: the child's own.
    """
    try:
        child.expect(pexpect.EOF, timeout=timeout)
    finally:
        child.close(force=True)
    before = child.before
    assert isinstance(before, bytes)
    return before.decode("utf-8", errors="replace")


def exit_status(child: pexpect.spawn[bytes]) -> int:
    """The closed child's exit status, as a shell reports it (128 + N when killed by N)."""
    if child.exitstatus is not None:
        return int(child.exitstatus)
    assert child.signalstatus is not None
    return 128 + int(child.signalstatus)


def screen_lines(raw: str, cols: int, rows: int = 24, *, strip: bool = True) -> list[str]:
    """The lines a terminal of `cols` x `rows` shows after receiving `raw`: right-stripped, or
    (`strip=False`) each `cols` cells wide, so that lines the terminal wrapped join again."""
    screen = pyte.Screen(cols, rows)
    pyte.Stream(screen).feed(raw)
    return [line.rstrip() for line in screen.display] if strip else list(screen.display)
