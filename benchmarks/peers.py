"""fetchpool against the tools people use today, side by side, on 127.0.0.1 only.

One command runs the shared harness (`../shared/bench/compare.py`: a local test
server, interleaved reps, medians, ratios to ideal and to the peers) with this
checkout's `fetchpool` first on PATH, for each scenario asked for:

    python benchmarks/peers.py                       # startup latency throughput
    python benchmarks/peers.py memory --reps 1       # 1,000,000 URLs through stdin
    python benchmarks/peers.py latency --tools fetchpool,lychee,ref-aiohttp
    python benchmarks/peers.py internet internet-dnsfault   # DNS, TLS, 500 hosts (root)

Peers that are not installed (lychee, curl, the aiohttp/httpx references) are
listed as skipped by the harness. `bash ../shared/bench/setup.sh` installs them.
Results go to a temporary directory (the shared one is read-only), whose path
is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "bench" / "compare.py"
BENCH_PYTHON = Path("/tmp/benchvenv/bin/python")  # where setup.sh puts uvloop, aiohttp, lychee
DEFAULT_SCENARIOS = ("startup", "latency", "throughput")
DEFAULT_TOOLS = "fetchpool,lychee,curl-parallel,ref-aiohttp,ref-httpx"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--tools", default=DEFAULT_TOOLS)
    parser.add_argument("--reps", type=int, default=3)
    args, extra = parser.parse_known_args()

    if not HARNESS.is_file():
        print(f"the shared harness is not at {HARNESS}", file=sys.stderr)
        return 2
    fetchpool = shutil.which("fetchpool", path=str(Path(sys.executable).parent))
    if fetchpool is None:
        print("install fetchpool into this Python first: pip install '.[fast]'", file=sys.stderr)
        return 2
    python = str(BENCH_PYTHON) if BENCH_PYTHON.exists() else sys.executable
    env = dict(os.environ, PATH=f"{Path(fetchpool).parent}{os.pathsep}{os.environ['PATH']}")
    results = tempfile.mkdtemp(prefix="fetchpool-bench-")
    status = 0
    for scenario in args.scenarios:
        command = [python, str(HARNESS), scenario, "--tools", args.tools, "--reps", str(args.reps)]
        command += ["--results-dir", results, *extra]
        print("$", " ".join(command), flush=True)
        status = subprocess.call(command, env=env) or status
    print(f"results: {results}")
    return status


if __name__ == "__main__":
    sys.exit(main())
