"""Compare HTTP transports under httpx (and plain aiohttp) against a local benchmark server.

Usage (from the repo root):

    python benchmarks/transport_bench.py                 # throughput + latency, 3 reps, ~3 min
    python benchmarks/transport_bench.py --profile       # pyinstrument profile of FastTransport
    python benchmarks/transport_bench.py --only throughput --loops uvloop --reps 5

It starts the shared benchmark server (`../shared/bench/server.py`: nginx with 2 workers for
throughput when nginx is installed, else the python backend; the python backend for latency),
then runs every client variant in its own fresh process, interleaved rep by rep, and prints the
median URLs/s and ratios. Every request goes to 127.0.0.1. Each worker does
`async with client.stream("GET", url) as r: async for _ in r.aiter_raw(): pass`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = REPO.parent / "shared" / "bench" / "server.py"

# name -> description; "stock" is slow (O(connections x waiters) pool), so it gets a smaller N.
VARIANTS = {
    "stock": "httpx.AsyncClient, default transport (httpcore 1.0.9)",
    "fast": "httpx.AsyncClient(transport=FastTransport), client.stream()",
    "fast-nocookie": "FastTransport, client.stream(), cookie jar that ignores Set-Cookie",
    "fast-send": "FastTransport, client.send(pre-built request, stream=True)",
    "fast-raw": "FastTransport.handle_async_request() directly, no AsyncClient",
    "httpx-aiohttp": "httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport)",
    "aiohttp": "plain aiohttp.ClientSession (reference)",
}


# -- child side: one variant, one loop, one run ------------------------------------------------


class _IgnoreCookies(CookieJar):
    """A jar that never stores cookies: httpx parses Set-Cookie through http.cookiejar."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass


async def _run_workers(
    urls_n: int, workers: int, fetch: Callable[[str], Awaitable[int]], base: str, path: str
) -> tuple[float, int]:
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=workers * 4)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        while True:
            i = await queue.get()
            if i is None:
                return
            try:
                if await fetch(f"{base}{path}{i}") == 200:
                    ok += 1
            except Exception as exc:  # noqa: BLE001 - a failed URL is reported, not fatal
                print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)

    start = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for i in range(urls_n):  # fed lazily: the queue is bounded
        await queue.put(i)
    for _ in tasks:
        await queue.put(None)
    await asyncio.gather(*tasks)
    return time.perf_counter() - start, ok


async def _child(variant: str, n: int, workers: int, base: str, path: str) -> dict[str, Any]:
    import httpx

    sys.path.insert(0, str(REPO))
    from fetchpool._transport import FastTransport

    timeout = httpx.Timeout(10.0)
    if variant == "aiohttp":
        import aiohttp

        conn = aiohttp.TCPConnector(limit=workers, limit_per_host=workers)
        async with aiohttp.ClientSession(
            connector=conn, timeout=aiohttp.ClientTimeout(total=10)
        ) as session:

            async def fetch_aiohttp(url: str) -> int:
                async with session.get(url) as resp:
                    async for _ in resp.content.iter_any():
                        pass
                    return resp.status

            elapsed, ok = await _run_workers(n, workers, fetch_aiohttp, base, path)
        return {"elapsed": elapsed, "ok": ok}

    transport: httpx.AsyncBaseTransport | None
    if variant == "stock":
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        transport = httpx.AsyncHTTPTransport(limits=limits)
    elif variant == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        transport = AiohttpTransport(limits=limits)
    else:
        transport = FastTransport(max_connections=workers)

    cookies: CookieJar | None = _IgnoreCookies() if variant == "fast-nocookie" else None
    async with httpx.AsyncClient(transport=transport, timeout=timeout, cookies=cookies) as client:
        if variant == "fast-send":

            async def fetch(url: str) -> int:
                request = client.build_request("GET", url)
                response = await client.send(request, stream=True)
                try:
                    async for _ in response.aiter_raw():
                        pass
                finally:
                    await response.aclose()
                return response.status_code

        elif variant == "fast-raw":
            assert transport is not None
            ext = {"timeout": timeout.as_dict()}
            raw_transport = transport

            async def fetch(url: str) -> int:
                request = httpx.Request("GET", url, extensions=ext)
                response = await raw_transport.handle_async_request(request)
                try:
                    async for _ in response.stream:  # type: ignore[union-attr]
                        pass
                finally:
                    await response.aclose()
                return response.status_code

        else:

            async def fetch(url: str) -> int:
                async with client.stream("GET", url) as response:
                    async for _ in response.aiter_raw():
                        pass
                    return response.status_code

        elapsed, ok = await _run_workers(n, workers, fetch, base, path)
    return {"elapsed": elapsed, "ok": ok}


def child_main(args: argparse.Namespace) -> None:
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    coro = _child(args.variant, args.n, args.workers, args.base, args.path)
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        result = asyncio.run(coro)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result))


# -- parent side: servers, interleaved reps, table --------------------------------------------


class Server:
    """The shared benchmark server in a child process; prints its port on the first line."""

    def __init__(self, script: Path, backend: str, workers: int) -> None:
        cmd = [sys.executable, str(script), "--port", "0", "--workers", str(workers)]
        if backend == "nginx":
            cmd += ["--backend", "nginx"]
        self.label = f"{backend}:{workers}"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise SystemExit(f"benchmark server did not start: {line!r}")
        self.base = f"http://127.0.0.1:{int(line)}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_child(
    variant: str, loop: str, n: int, workers: int, base: str, path: str, profile: bool = False
) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "_child", variant, loop, str(n), str(workers), base, path]
    if profile:
        cmd.append("--profile")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(f"  {variant}/{loop} failed: {proc.stderr.strip()[-400:]}", file=sys.stderr)
        return None
    if profile:
        print(proc.stderr)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def available(variant: str, loop: str) -> bool:
    mods = {"httpx-aiohttp": "httpx_aiohttp", "aiohttp": "aiohttp"}
    needed = [mods[variant]] if variant in mods else []
    if loop == "uvloop":
        needed.append("uvloop")
    code = "".join(f"import {m};" for m in needed) or "pass"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def scenario(
    title: str,
    rows: list[tuple[str, str, int]],
    workers: int,
    base: str,
    path: str,
    reps: int,
    ideal: Callable[[int], float] | None,
) -> None:
    print(f"\n## {title}")
    rows = [r for r in rows if available(r[0], r[1])]
    times: dict[tuple[str, str], list[float]] = {(v, lp): [] for v, lp, _ in rows}
    oks: dict[tuple[str, str], set[int]] = {(v, lp): set() for v, lp, _ in rows}
    for rep in range(reps):
        for variant, loop, n in rows:
            res = run_child(variant, loop, n, workers, base, path)
            if res is not None:
                times[(variant, loop)].append(res["elapsed"])
                oks[(variant, loop)].add(res["ok"])
        print(f"  rep {rep + 1}/{reps} done", file=sys.stderr)
    ref = {
        loop: n / statistics.median(times[("aiohttp", loop)])
        for v, loop, n in rows
        if v == "aiohttp" and times[("aiohttp", loop)]
    }
    header = "| variant | loop | N | median s | URLs/s | x aiohttp (same loop) | ok/N |"
    if ideal:
        header += " x ideal |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for variant, loop, n in rows:
        ts = times[(variant, loop)]
        if not ts:
            print(f"| {variant} | {loop} | {n} | failed | | | |")
            continue
        med = statistics.median(ts)
        rate = n / med
        ratio = f"{rate / ref[loop]:.2f}" if loop in ref else "-"
        ok = "/".join(str(o) for o in sorted(oks[(variant, loop)]))
        line = f"| {variant} | {loop} | {n} | {med:.3f} | {rate:,.0f} | {ratio} | {ok}/{n} |"
        if ideal:
            line += f" {med / ideal(n):.2f} |"
        print(line)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        ap = argparse.ArgumentParser()
        ap.add_argument("_child")
        for name in ("variant", "loop"):
            ap.add_argument(name)
        ap.add_argument("n", type=int)
        ap.add_argument("workers", type=int)
        ap.add_argument("base")
        ap.add_argument("path")
        ap.add_argument("--profile", action="store_true")
        child_main(ap.parse_args())
        return

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server-script", type=Path, default=DEFAULT_SERVER)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=20000, help="URLs in throughput")
    ap.add_argument("--stock-n", type=int, default=2000, help="URLs for the slow stock transport")
    ap.add_argument("--workers", type=int, default=64)
    ap.add_argument("--loops", default="asyncio,uvloop")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--only", choices=["throughput", "latency"], default=None)
    ap.add_argument("--profile", action="store_true", help="profile FastTransport and exit")
    args = ap.parse_args()
    loops = args.loops.split(",")
    variants = [v for v in args.variants.split(",") if v]

    print(f"# transport_bench: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs")
    for v in variants:
        print(f"- {v}: {VARIANTS[v]}")

    backend = "nginx" if shutil.which("nginx") else "python"
    if args.profile:
        server = Server(args.server_script, backend, 2)
        try:
            for variant in ("fast", "fast-raw"):
                print(f"\n## profile: {variant}, {args.n} x /ok/, {args.workers} workers, uvloop")
                run_child(variant, "uvloop", args.n, args.workers, server.base, "/ok/", True)
        finally:
            server.close()
        return

    if args.only in (None, "throughput"):
        server = Server(args.server_script, backend, 2)
        try:
            rows = [
                (v, lp, args.stock_n if v == "stock" else args.n) for lp in loops for v in variants
            ]
            scenario(
                f"throughput: /ok/i, {args.workers} workers, server {server.label}",
                rows,
                args.workers,
                server.base,
                "/ok/",
                args.reps,
                None,
            )
        finally:
            server.close()

    if args.only in (None, "latency"):
        server = Server(args.server_script, "python", 1)
        try:
            rows = [(v, lp, 2000) for lp in loops for v in variants if v != "stock"]
            scenario(
                "latency: 2000 x /delay/50/i, 100 workers, server python:1 (ideal 1.0 s)",
                rows,
                100,
                server.base,
                "/delay/50/",
                args.reps,
                lambda n: -(-n // 100) * 0.05,
            )
        finally:
            server.close()


if __name__ == "__main__":
    main()
