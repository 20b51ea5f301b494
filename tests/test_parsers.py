"""Directory inputs are parsed on every core: same results, in the same order, and no
worker process outlives the run, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from clihelpers import FETCHPOOL, cli_env, wait_exit

from fetchpool._parsers import IN_PROCESS


def big_tree(root: Path, documents: int) -> Path:
    """`documents` Markdown files with local links (some broken) and a fragment each."""
    for number in range(documents):
        directory = root / "docs" / f"part{number % 5}"
        directory.mkdir(parents=True, exist_ok=True)
        links = "\n".join(
            f"[l{k}](doc{(number + k) % documents}.md#heading-{k})" for k in range(30)
        )
        (directory / f"doc{number}.md").write_text(
            f"# Doc {number}\n\n## Heading {number % 30}\n\n{links}\n"
            f"[web](http://127.0.0.1:1/{number})\n"
        )
    return root / "docs"


def leftover_processes(mark: str) -> list[int]:
    """Processes (forkserver, workers, resource tracker) started by a run marked `mark`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"FETCHPOOL_TEST_MARK={mark}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def dump(docs: Path, processes: int, mark: str) -> subprocess.CompletedProcess[bytes]:
    env = cli_env({"FETCHPOOL_PARSE_PROCESSES": str(processes), "FETCHPOOL_TEST_MARK": mark})
    return subprocess.run(
        [*FETCHPOOL, "--extract", "--dump", str(docs)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_tree_parsed_in_worker_processes_gives_what_one_process_gives(tmp_path: Path) -> None:
    docs = big_tree(tmp_path, IN_PROCESS * 4)
    mark = uuid.uuid4().hex
    alone = dump(docs, 1, mark)
    parallel = dump(docs, 3, mark)
    assert alone.returncode == parallel.returncode == 0, parallel.stderr
    assert parallel.stdout == alone.stdout  # the same places, in the same order
    assert len(alone.stdout.splitlines()) == IN_PROCESS * 4 * 31
    assert parallel.stderr == b""
    deadline = time.monotonic() + 5
    while leftover_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover_processes(mark) == []


def test_ctrl_c_while_workers_parse_leaves_no_process_and_says_nothing(tmp_path: Path) -> None:
    docs = big_tree(tmp_path, 4000)  # parsing outlasts the wait for its workers, anywhere
    mark = uuid.uuid4().hex
    env = cli_env({"FETCHPOOL_PARSE_PROCESSES": "2", "FETCHPOOL_TEST_MARK": mark})
    proc = subprocess.Popen(
        [*FETCHPOOL, "--extract", "--dump", str(docs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    # Wait until the workers are running, then interrupt the run as a terminal would.
    deadline = time.monotonic() + 30
    while len(leftover_processes(mark)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(leftover_processes(mark)) >= 3, "the worker processes never started"
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = wait_exit(proc, timeout=10)
    assert proc.returncode == 130
    assert stderr == b""
    deadline = time.monotonic() + 5
    while leftover_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover_processes(mark) == []
