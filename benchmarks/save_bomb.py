"""Peak memory of `--save` against decompression bombs: the contract's 8 workers x 2 GiB.

    python benchmarks/save_bomb.py                          # 8 workers, 8 bombs of 2 GiB each
    python benchmarks/save_bomb.py --size 256MiB --dir /dev/shm
    python benchmarks/save_bomb.py --max-filesize 100MB     # stop each bomb at 100 MB

The test suite's HTTP server (tests/httpserver.py) runs in a child process of its own on
127.0.0.1 and serves `/gzip-bomb/<size>/<i>`: about 2 MB of gzip per 2 GiB of zeros, sent with
`Content-Encoding: gzip` even though `--save` asks for `identity`. fetchpool saves them all
(`--workers`, `--format jsonl`) into a temporary directory, and its peak RSS is read from the
kernel's accounting of that one child (`os.wait4`), so the server is not counted. Linux does
count, in a child's peak, the memory it had before exec, i.e. this script's (vfork): that
floor, this script's own peak, is printed too. The saved files are checked (size) and deleted
at the end; without `--max-filesize` that is size x count bytes of disk (16 GiB by default),
so point `--dir` somewhere with room. The contract's bound is 150 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 150

_SERVER_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from httpserver import HTTPTestServer
with HTTPTestServer() as server:
    print(server.base, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""

_UNITS = {"": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str) -> int:
    """`2GiB`, `256MiB`, `100MB` or a bare number of bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(match[1]) * _UNITS[(match[2] or "").upper()]


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """The test suite's server in its own process (its memory and CPU are not ours)."""
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
            proc.wait()


def run_measured(argv: list[str], stdout: int) -> tuple[int, float, float, float, float]:
    """Run `argv`: its exit status, peak RSS in MB (by wait4), wall, user and system seconds."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    peak_mb = usage.ru_maxrss * 1024 / 1e6  # Linux: KiB
    return proc.returncode, peak_mb, wall, usage.ru_utime, usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--count", type=int, help="bombs to save (default: --workers)")
    parser.add_argument("--size", type=parse_size, default=2 * 2**30, help="inflated size")
    parser.add_argument("--max-filesize", type=parse_size, help="passed on to fetchpool")
    parser.add_argument("--dir", type=Path, help="where the save directory goes (default: TMPDIR)")
    args = parser.parse_args()
    count = args.count or args.workers
    fetchpool = shutil.which("fetchpool", path=str(Path(sys.executable).parent))
    command = [fetchpool] if fetchpool else [sys.executable, "-m", "fetchpool"]

    with local_server() as base, tempfile.TemporaryDirectory(dir=args.dir) as work:
        urls = [f"{base}/gzip-bomb/{args.size}/{i}" for i in range(count)]
        started = time.perf_counter()
        # A HEAD makes the server compress the bomb once (it is cached) before the clock starts.
        urllib.request.urlopen(urllib.request.Request(urls[0], method="HEAD"), timeout=600)
        print(f"server: {args.size:,} zeros compressed in {time.perf_counter() - started:.1f} s")
        url_file = Path(work, "urls.txt")
        url_file.write_text("".join(url + "\n" for url in urls))
        out = Path(work, "out")
        argv = [*command, str(url_file), "--save", str(out), "--workers", str(args.workers)]
        argv += ["--format", "jsonl", "--timeout", "3600"]
        if args.max_filesize is not None:
            argv += ["--max-filesize", str(args.max_filesize)]
        print("$", " ".join(argv), flush=True)
        report = Path(work, "report.jsonl")
        with report.open("wb") as sink:
            status, peak_mb, wall, user, system = run_measured(argv, sink.fileno())
        records = [json.loads(line) for line in report.read_text().splitlines()]
        written = 0
        for record in records:
            if record["saved_to"]:
                size = Path(record["saved_to"]).stat().st_size
                assert size == record["bytes"] == args.size, record
                written += size
        outcomes = sorted(f"{r['outcome']}:{r['kind']}" for r in records)
        print(f"exit status {status}; results: {', '.join(outcomes)}")
        print(f"inflated bytes saved: {written:,}")
        floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
        print(f"peak RSS of fetchpool: {peak_mb:.0f} MB (contract: under {LIMIT_MB} MB)")
        print(f"  (not below this script's own peak, {floor:.0f} MB: Linux counts it in)")
        print(f"wall time: {wall:.1f} s (CPU: {user:.1f} s user, {system:.1f} s system)")
        return 0 if peak_mb < LIMIT_MB and len(records) == count else 1


if __name__ == "__main__":
    sys.exit(main())
