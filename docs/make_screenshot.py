"""Regenerate docs/screenshot.svg: a real fetchpool run against the local test server, drawn by
the table display into a recording Rich console and exported as SVG.

    python docs/make_screenshot.py              # the end of the run: rows and summary
    python docs/make_screenshot.py --frame live # mid-run: rows so far and the live region
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from httpserver import HTTPTestServer  # noqa: E402

from fetchpool import Pool, Result, Settings, Target, check_url  # noqa: E402
from fetchpool._stats import RunStats  # noqa: E402
from fetchpool.cli.table import MAX_WORKER_ROWS, TableSink, _LiveRegion  # noqa: E402

WIDTH = 110
PATHS = [
    "/ok/index.html",
    "/ok/docs/getting-started",
    "/redirect/2",
    "/status/404/old-page",
    "/ok/api/v1/users?page=2",
    "/delay/4000/slow-report",
    "/ok/blog/2024/11/a-rather-long-article-title-that-goes-on-and-on-until-it-must-be-cut",
    "/status/500/broken",
    "/ok/assets/app.css",
    "/hang",
    "/reset",
    "/ok/assets/app.js",
    "/status/403/private",
    "/delay/300/search?q=fetchpool",
    "/ok/about",
]
LINES = ["ftp://files.example/archive.tar.gz"]  # not fetchable: a FAIL of kind `invalid`


async def _targets(base: str) -> AsyncIterator[Target]:
    for number, text in enumerate([base + p for p in PATHS] + LINES, start=1):
        yield Target(text, "urls.txt", number, check_url(text))


async def _run(base: str, console: Console, frame: str) -> None:
    settings = Settings(workers=3, timeout=2.0, retries=0)
    stats = RunStats()
    async with Pool(settings) as pool:
        sink = TableSink(console=console, view=pool, stats=stats)
        sink.start()
        send, receive = anyio.create_memory_object_stream[Result](settings.workers)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.run, _targets(base), send)
            async with receive:
                async for result in receive:
                    stats.add(result)
                    sink.write(result)
                    if frame == "live" and result.url.endswith("/about"):
                        # Only the stuck URLs are left: let them run a while, then draw the
                        # live region as a person would see it at that moment.
                        await anyio.sleep(1.5)
                        console.print(_LiveRegion(stats, pool, time.monotonic, MAX_WORKER_ROWS))
                        tg.cancel_scope.cancel()
        if frame == "final":
            sink.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", choices=["final", "live"], default="final")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.svg")
    args = parser.parse_args()
    # Not interactive: rows print as they come and nothing is redrawn, so the recording
    # holds exactly what stays on the screen.
    console = Console(
        file=io.StringIO(),
        width=WIDTH,
        record=True,
        force_terminal=True,
        force_interactive=False,
        color_system="truecolor",
    )
    with HTTPTestServer() as server:
        console.print("$ fetchpool urls.txt --workers 3 --timeout 2 --retries 0", style="bold")
        asyncio.run(_run(server.base, console, args.frame))
    args.out.write_text(console.export_svg(title="fetchpool", clear=False))
    print(console.export_text(clear=True))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
