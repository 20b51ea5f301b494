"""Regenerate docs/screenshot.svg: a real fetchpool run against the local test server, drawn by
the table display into a recording Rich console and exported as SVG.

    python docs/make_screenshot.py              # the end of the run: rows and summary
    python docs/make_screenshot.py --frame live # mid-run: rows so far and the live region
    python docs/make_screenshot.py --width 80 --out docs/screenshot-80.svg  # another width
    python docs/make_screenshot.py --widths     # screenshot.svg and the 80/120/200 ones
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from httpserver import HTTPTestServer  # noqa: E402

from fetchpool import Pool, Result, Settings, Target, check_url  # noqa: E402
from fetchpool._channel import Channel  # noqa: E402
from fetchpool._stats import RunStats  # noqa: E402
from fetchpool.cli.table import MAX_WORKER_ROWS, TableSink, _LiveRegion  # noqa: E402
from fetchpool.cli.view import RunSnapshot, RunView  # noqa: E402

WIDTH = 110  # docs/screenshot.svg, the README's main picture
WIDTHS = (80, 120, 200)  # docs/screenshot-<width>.svg, the README's terminal-table section
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
        view = RunView()
        sink = TableSink(console=console, view=view, stats=stats)
        sink.start()
        results = Channel[Result](settings.workers)
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(pool.run(_targets(base), results))
            async for result in results:
                stats.add(result)
                sink.write(result)
                if frame == "live" and result.url.endswith("/about"):
                    # Only the stuck URLs are left: let them run a while, then draw the
                    # live region as a person would see it at that moment.
                    await asyncio.sleep(1.5)
                    view.publish(RunSnapshot(tuple(pool.in_flight()), pool.total))
                    console.print(_LiveRegion(stats, view, time.monotonic, MAX_WORKER_ROWS))
                    run.cancel()
                    break
        if frame == "final":
            sink.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", choices=["final", "live"], default="final")
    parser.add_argument("--width", type=int, default=WIDTH, help="terminal columns")
    parser.add_argument("--out", type=Path, help="the SVG file (default: docs/screenshot.svg)")
    parser.add_argument(
        "--widths",
        action="store_true",
        help=f"write screenshot.svg and screenshot-N.svg for N in {', '.join(map(str, WIDTHS))}",
    )
    args = parser.parse_args()
    if args.widths:
        if args.out is not None:
            parser.error("--widths writes its own files: no --out")
        _render(args.frame, WIDTH, ROOT / "docs" / "screenshot.svg")
        for width in WIDTHS:
            _render(args.frame, width, ROOT / "docs" / f"screenshot-{width}.svg")
        return
    if args.width < 40:
        parser.error("--width must be at least 40")
    _render(args.frame, args.width, args.out or ROOT / "docs" / "screenshot.svg")


def _render(frame: str, width: int, out: Path) -> None:
    # Not interactive: rows print as they come and nothing is redrawn, so the recording
    # holds exactly what stays on the screen.
    console = Console(
        file=io.StringIO(),
        width=width,
        record=True,
        force_terminal=True,
        force_interactive=False,
        color_system="truecolor",
    )
    with HTTPTestServer() as server:
        console.print("$ fetchpool urls.txt --workers 3 --timeout 2 --retries 0", style="bold")
        asyncio.run(_run(server.base, console, frame))
    out.write_text(console.export_svg(title="fetchpool", clear=False))
    print(console.export_text(clear=True))
    print(f"wrote {out} ({width} columns)", file=sys.stderr)


if __name__ == "__main__":
    main()
