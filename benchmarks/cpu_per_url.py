"""CPU work per URL, counted in instructions: a figure that does not drift with machine load.

Wall-clock timings on a shared 2-core VM drift by about ±30 % from minute to minute, so a
change worth 3 % cannot be seen in them. `valgrind --tool=callgrind` counts the instructions
a process executes instead; for the same program and input the count repeats to within
about 0.1 %, whatever else the machine is doing. This script runs a command twice under
callgrind, over N URLs and over one URL, against a local server on 127.0.0.1, and prints

    (instructions(N) - instructions(1)) / (N - 1)

the instructions per URL with start-up taken out, and the start-up itself. User-space
only: the kernel's share (socket calls) is not counted, and neither is the server's.

    python benchmarks/cpu_per_url.py                          # fetchpool on PATH, 2000 URLs
    python benchmarks/cpu_per_url.py --against ref-aiohttp    # and the aiohttp reference
    python benchmarks/cpu_per_url.py --command "/tmp/old/bin/fetchpool"

Needs valgrind; the server is the shared harness's (`../shared/bench/server.py`, nginx
when installed, else Python).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "bench"
BENCH_PYTHON = Path("/tmp/benchvenv/bin/python")
PEERS = {
    "ref-aiohttp": "{python} {bench}/ref/aiohttp_fetch.py {file} --workers {workers}",
    "ref-httpx": "{python} {bench}/ref/httpx_fetch.py {file} --workers {workers}",
}


def instructions(command: list[str]) -> int:
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind gave no count for {shlex.join(command)}:\n{done.stderr}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--command", default="fetchpool", help="fetchpool to measure")
    parser.add_argument("--against", default="", help="comma list: ref-aiohttp, ref-httpx")
    parser.add_argument("--urls", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--backend", default="nginx" if shutil.which("nginx") else "python")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    python = str(BENCH_PYTHON) if BENCH_PYTHON.exists() else sys.executable
    server = subprocess.Popen(
        [python, str(BENCH / "server.py"), "--port", "0", "--backend", args.backend],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().strip().split()[-1])
        with tempfile.TemporaryDirectory(prefix="fetchpool-cpu-") as tmp:
            many, one = Path(tmp, "many.txt"), Path(tmp, "one.txt")
            urls = [f"http://127.0.0.1:{port}/ok/{i}\n" for i in range(args.urls)]
            many.write_text("".join(urls))
            one.write_text(urls[0])
            tools = {"fetchpool": f"{args.command} {{file}} --workers {{workers}} --format plain"}
            tools |= {name: PEERS[name] for name in filter(None, args.against.split(","))}
            print(f"{'tool':12} {'instr/URL':>10} {'start-up instr':>15}  ({args.urls} URLs)")
            for name, template in tools.items():
                counts = []
                for path in (many, one):
                    command = template.format(
                        python=python, bench=BENCH, file=path, workers=args.workers
                    )
                    counts.append(instructions(shlex.split(command)))
                per_url = (counts[0] - counts[1]) / (args.urls - 1)
                print(f"{name:12} {per_url:10,.0f} {counts[1]:15,}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
