"""`--engine ray` against a plain run: URLs/s, the driver's peak RSS, and the cost of a partition.

Starts a small keep-alive HTTP server of its own on several loopback addresses (one host
each, so the run has several partitions' worth of hosts), a 2-CPU Ray head node on
127.0.0.100 (in a session of its own, stopped by its process group at the end; never
`ray stop`), then times, each `--repeat` times (median reported):

* `plain`: `fetchpool -q -f plain -w W urls.txt` in this process's machine;
* `ray`: the same with `--engine ray --ray-address 127.0.0.100:PORT --partition-size P`;
* `ray-small`: the same with small partitions, for the overhead of one partition:
  (wall(small) - wall(ray)) / (partitions(small) - partitions(ray));
* `ray-1`: one URL on the cluster: the driver's fixed start-up (connect, first task).

Peak RSS is the driver's own (`wait4`), Ray's workers not included. Everything stays on
127.0.0.0/8; token authentication is on, with a token of this script's own.

    python benchmarks/ray_scaling.py                   # 20 000 URLs over 8 hosts, 3 repeats
    python benchmarks/ray_scaling.py --urls 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NODE_IP = "127.0.0.100"
FETCHPOOL = str(Path(sys.executable).parent / "fetchpool")
RAY = str(Path(sys.executable).parent / "ray")

SERVER = r"""
import asyncio, sys
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"

class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        n = self.buffer.count(b"\r\n\r\n")  # GETs without bodies: one request per header block
        if n:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * n)

async def main():
    loop = asyncio.get_running_loop()
    port = int(sys.argv[1])
    for host in sys.argv[2:]:
        await loop.create_server(Http, host, port, backlog=1024)
    print("ready", flush=True)
    await asyncio.Event().wait()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def run(
    command: list[str], env: dict[str, str], stdin_urls: Path | None = None
) -> tuple[float, int, int]:
    """Run to the end; return wall seconds, peak RSS of the process in KiB, exit status.

    With `stdin_urls`, that file is piped through standard input (not given as a file).
    """
    started = time.monotonic()
    source = open(stdin_urls, "rb") if stdin_urls else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        command,
        stdin=source or subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    if source is not None:
        source.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{err[-2000:]}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_maxrss, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=20000)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--partition-size", type=int, default=1000)
    parser.add_argument("--small-partition-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--stdin-urls", type=int, default=200000, help="URLs piped through stdin, once each"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fpbench-", dir="/tmp"))
    hosts = [f"127.0.0.{41 + i}" for i in range(args.hosts)]
    port = free_port(hosts[0])
    urls = work / "urls.txt"
    with open(urls, "w") as file:
        for i in range(args.urls):
            file.write(f"http://{hosts[i % len(hosts)]}:{port}/ok/{i}\n")
    many = work / "many.txt"
    with open(many, "w") as file:
        for i in range(args.stdin_urls):
            file.write(f"http://{hosts[i % len(hosts)]}:{port}/ok/{i}\n")
    one = work / "one.txt"
    one.write_text(f"http://{hosts[0]}:{port}/ok/one\n")

    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        {
            "NO_PROXY": "*",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
    )
    env.pop("RAY_ADDRESS", None)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), *hosts], stdout=subprocess.PIPE, env=env
    )
    assert server.stdout is not None
    server.stdout.readline()
    ray_port = free_port(NODE_IP)
    head_log = open(work / "head.log", "wb")  # noqa: SIM115 - closed at the end
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--block",
            f"--node-ip-address={NODE_IP}",
            f"--port={ray_port}",
            "--num-cpus=2",
            f"--object-store-memory={200 * 1024 * 1024}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={work / 'ray'}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=head_log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while b"Ray runtime started" not in (work / "head.log").read_bytes():
            if time.monotonic() > deadline or head.poll() is not None:
                raise SystemExit("the Ray head did not start")
            time.sleep(0.2)
        base = [FETCHPOOL, "-q", "-f", "plain", "-w", str(args.workers)]
        ray = ["--engine", "ray", "--ray-address", f"{NODE_IP}:{ray_port}"]
        configs = {
            "plain": ([*base, str(urls)], args.urls),
            "ray": (
                [*base, *ray, "--partition-size", str(args.partition_size), str(urls)],
                args.urls,
            ),
            "ray-small": (
                [*base, *ray, "--partition-size", str(args.small_partition_size), str(urls)],
                args.urls,
            ),
            "ray-1": ([*base, *ray, str(one)], 1),
        }
        figures: dict[str, tuple[float, int]] = {}
        for name, (command, _) in configs.items():
            walls, rss = [], []
            for _ in range(args.repeat):
                wall, peak, _status = run(command, env)
                walls.append(wall)
                rss.append(peak)
            figures[name] = (statistics.median(walls), int(statistics.median(rss)))
        print(
            f"{args.urls} URLs over {args.hosts} hosts, -w {args.workers}, median of {args.repeat}"
        )
        print(f"{'run':<10} {'wall s':>8} {'URLs/s':>8} {'driver peak RSS':>16}")
        for name, (_command, count) in configs.items():
            wall, rss = figures[name]
            rate = f"{count / wall:8.0f}" if count > 1 else f"{'-':>8}"
            print(f"{name:<10} {wall:8.2f} {rate} {rss / 1024:13.0f} MB")
        print(f"{args.stdin_urls} URLs through standard input, once each:")
        for name, command in (
            ("plain", base),
            ("ray", [*base, *ray, "--partition-size", str(args.partition_size)]),
        ):
            wall, peak, _status = run(command, env, stdin_urls=many)
            rate = args.stdin_urls / wall
            print(f"  {name:<8} {wall:8.2f} s {rate:8.0f} URLs/s {peak / 1024:6.0f} MB peak RSS")
        startup = figures["ray-1"][0]
        for name in ("ray", "ray-small"):
            wall = figures[name][0]
            print(
                f"{name} without the driver's start-up: {args.urls / (wall - startup):.0f} URLs/s"
            )

        def partitions(size: int) -> int:  # as the driver cuts them
            from fetchpool._config import PARTITION_BUCKETS
            from fetchpool._models import Target
            from fetchpool._partition import Partitioner

            cutter = Partitioner(size, PARTITION_BUCKETS)
            with open(urls) as file:
                return len({cutter.assign(Target(line.strip()))[0] for line in file})

        big, small = partitions(args.partition_size), partitions(args.small_partition_size)
        extra = (figures["ray-small"][0] - figures["ray"][0]) / (small - big)
        print(f"partitions: {big} of {args.partition_size}, {small} of {args.small_partition_size}")
        print(f"overhead per partition: {extra * 1000:.0f} ms")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head_log.close()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
