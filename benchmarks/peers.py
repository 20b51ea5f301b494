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
# The harness lives in shared/ beside the clone; FETCHPOOL_BENCH_HARNESS or --harness
# point elsewhere (a clone somewhere else, or a copy of shared/ of your own).
DEFAULT_HARNESS = ROOT.parent / "shared" / "bench" / "compare.py"
BENCH_PYTHON = Path("/tmp/benchvenv/bin/python")  # where setup.sh puts uvloop, aiohttp, lychee
DEFAULT_SCENARIOS = ("startup", "latency", "throughput")
DEFAULT_TOOLS = "fetchpool,lychee,curl-parallel,ref-aiohttp,ref-httpx"
SCRIPTS = "Scripts" if os.name == "nt" else "bin"


def find_fetchpool() -> Path | None:
    """This checkout's `fetchpool`: beside the running Python (a venv it was installed into),
    else in the clone's own `.venv` (the README's set-up), so a plain `python` finds it too."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / SCRIPTS):
        found = shutil.which("fetchpool", path=str(folder))
        if found is not None:
            return Path(found)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--tools", default=DEFAULT_TOOLS)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--harness",
        type=Path,
        default=Path(os.environ.get("FETCHPOOL_BENCH_HARNESS", DEFAULT_HARNESS)),
        help="the shared harness, compare.py (default: $FETCHPOOL_BENCH_HARNESS, "
        "else ../shared/bench/compare.py beside the clone)",
    )
    args, extra = parser.parse_known_args()

    harness: Path = args.harness
    if not harness.is_file():
        print(
            f"the shared harness is not at {harness}: pass --harness PATH/compare.py "
            "or set FETCHPOOL_BENCH_HARNESS",
            file=sys.stderr,
        )
        return 2
    fetchpool = find_fetchpool()
    if fetchpool is None:
        print(
            "no fetchpool beside this Python nor in .venv: install the clone first, "
            "e.g. python3 -m venv .venv && .venv/bin/pip install '.[fast]'",
            file=sys.stderr,
        )
        return 2
    print(f"fetchpool: {fetchpool}", flush=True)
    python = str(BENCH_PYTHON) if BENCH_PYTHON.exists() else sys.executable
    # The harness puts its own Python's folder (the bench venv) before PATH; a fetchpool
    # installed there would win. BENCH_EXTRA_PATH comes before both.
    extra_path = os.pathsep.join(
        p for p in (str(fetchpool.parent), os.environ.get("BENCH_EXTRA_PATH", "")) if p
    )
    env = dict(
        os.environ,
        PATH=f"{fetchpool.parent}{os.pathsep}{os.environ['PATH']}",
        BENCH_EXTRA_PATH=extra_path,
    )
    results = tempfile.mkdtemp(prefix="fetchpool-bench-")
    status = 0
    for scenario in args.scenarios:
        command = [python, str(harness), scenario, "--tools", args.tools, "--reps", str(args.reps)]
        command += ["--results-dir", results, *extra]
        print("$", " ".join(command), flush=True)
        status = subprocess.call(command, env=env) or status
    print(f"results: {results}")
    return status


if __name__ == "__main__":
    sys.exit(main())
