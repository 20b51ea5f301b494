"""Link extraction speed and memory: `fetchpool --extract --dump DIR` against `lychee --dump DIR`.

    python benchmarks/extract_dump.py                        # 5,000 files x 500 links, 3 reps
    python benchmarks/extract_dump.py --big                  # one 11 MB Markdown file instead
    python benchmarks/extract_dump.py --files 50 --links 20 --reps 1     # a quick check
    python benchmarks/extract_dump.py --fetchpool /work/wt-x/.venv/bin/fetchpool --results-dir out

A tree of Markdown files is generated under a temporary directory from a fixed seed (`--seed`),
so every run and every tool sees the same bytes. Each file has `--links` link places, a
realistic mix: inline links (some with queries and `#fragments`), reference-style links
(counted once, at their definition), autolinks `<...>`, bare URLs, images, inline HTML
`<a href>`, relative links to other files of the tree (some with `#fragment`, to real
headings) and same-document `#fragment` links. On top of those, each file has fenced and
indented code blocks and code spans holding URLs that must *not* count (about 5% as many).
The files sit in a few nested directories. `--big` writes one file of `--big-mb` MB (11 by
default) from the same generator instead.

Both tools only list links: nothing is fetched. `lychee --dump` performs no request (its help:
"Don't perform any link checking"); `--offline` is not added because it also drops every http
link from the dump (it keeps only `file://` links). Every generated URL is on 127.0.0.0/8
anyway, so even a tool that fetched would stay on loopback. The contract's
`fetchpool --extract --dump DIR` prints `URL<TAB>SOURCE<TAB>LINE` per place and exits 0; lychee
prints one URL per line. Their counts differ a little by what each counts (lychee turns
relative links into `file://` URLs and keeps reference links at their use); both are reported
next to the number generated.

Each rep runs every tool once, in a fixed order (A B, A B, ...), each through a fresh GNU
`/usr/bin/time`, so peak RSS is that tool's own largest process. Output goes to a file in the
temp dir (same cost for both), then its lines are counted. Reported: median wall, files/s,
links/s (the tool's own count / median wall), peak RSS (median and max over reps), CPU, links
dumped, wall ratio to lychee. Goals (issue 12): fetchpool faster than lychee, peak RSS < 150
MB; the 11 MB file under 500 MB.

A tool that fails (e.g. a fetchpool built before `--dump` exists: exit 2, "No such option")
is reported with its error in the table and not run again; the script does not crash.
`--results-dir DIR` writes every rep as JSON. The temp dir is removed at the end, also on
Ctrl-C or SIGTERM, unless `--keep`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peerrun import (
    BENCH_VENV_BIN,
    Run,
    clean_up,
    fmt,
    interrupts_as_keyboard_interrupt,
    markdown_table,
    median,
    save_results,
    short_error,
    timed_run,
    tool_command,
    version_of,
)

RSS_GOAL_MB = 150
BIG_RSS_LIMIT_MB = 500
DIRS = (
    "docs",
    "docs/guide",
    "docs/guide/advanced",
    "docs/api/v1",
    "docs/api/v2",
    "blog/2025",
    "blog/2026",
    "reference",
)
_WORD_TEXT = (
    "install config release deploy cache proxy worker queue timeout retry shard crawl "
    "extract anchor heading table report summary token header cookie redirect sitemap "
    "robots fragment schema client server stream buffer limit memory"
)
WORDS = _WORD_TEXT.split()
HEADINGS_PER_FILE = 8


# -- the generated tree ---------------------------------------------------------------------


@dataclass
class Tree:
    """What was generated: the files, and how many link places they hold."""

    root: Path
    files: list[Path] = field(default_factory=list)
    links: int = 0  # link places that should count
    code_urls: int = 0  # URLs inside code, which should not
    bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Writer:
    """Renders one Markdown document of `links` link places from a seeded generator."""

    def __init__(self, rng: random.Random, popular: list[str]) -> None:
        self.rng = rng
        self.popular = popular
        self.counter = 0

    def url(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return rng.choice(self.popular)
        self.counter += 1
        scheme = "https" if rng.random() < 0.7 else "http"
        host = f"127.0.{rng.randrange(0, 4)}.{rng.randrange(1, 60)}"
        port = rng.choice(("", "", "", ":8080", ":8443", ":3000"))
        path = "/".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 4)))
        url = f"{scheme}://{host}{port}/{path}/{self.counter}"
        roll = rng.random()
        if roll < 0.15:
            url += f"?page={rng.randrange(1, 50)}&lang=en"
        elif roll < 0.25:
            url += f"#{rng.choice(WORDS)}-{rng.randrange(1, 9)}"
        elif roll < 0.30:
            url += ".html"
        return url

    def text(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def code_url(self) -> str:
        return f"http://127.0.9.{self.rng.randrange(1, 250)}/in-code/{self.rng.randrange(10**6)}"

    def document(
        self, title: str, links: int, relative: Callable[[], str], kinds: dict[str, int]
    ) -> tuple[str, int, int]:
        """(text, link places, code URLs) of one document."""
        rng = self.rng
        out: list[str] = [f"# {title}", "", self.text(12) + ".", ""]
        definitions: list[str] = []
        placed = 0
        code = 0
        heading = 0
        per_heading = max(1, links // HEADINGS_PER_FILE)
        line_items: list[str] = []

        def flush() -> None:
            if line_items:
                out.append(" ".join(line_items))
                line_items.clear()

        while placed < links:
            if placed // per_heading >= heading and heading < HEADINGS_PER_FILE:
                flush()
                heading += 1
                out += ["", f"## Section {heading}", ""]
                if rng.random() < 0.5:  # code that must not count
                    n = rng.randrange(1, 4)
                    out += ["```bash"]
                    out += [f"curl -fsS {self.code_url()} | sh" for _ in range(n)]
                    out += ["```", ""]
                    code += n
                if rng.random() < 0.25:
                    out += ["", f"    wget {self.code_url()}", ""]
                    code += 1
            roll = rng.random()
            word = self.text(rng.randrange(1, 4))
            if roll < 0.32:
                kind, item = "inline", f"See [{word}]({self.url()})."
            elif roll < 0.42:
                ref = f"r{placed}"
                kind, item = "reference", f"Read [{word}][{ref}] now."
                definitions.append(f"[{ref}]: {self.url()}")
            elif roll < 0.50:
                kind, item = "autolink", f"<{self.url()}>"
            elif roll < 0.60:
                kind, item = "bare", f"at {self.url().split('#')[0]} ,"
            elif roll < 0.67:
                kind, item = "image", f"![{word}]({self.url()})"
            elif roll < 0.70:
                kind, item = "html", f'<a href="{self.url()}">{word}</a>'
            elif roll < 0.85:
                kind, item = "relative", f"[{word}]({relative()})"
            elif roll < 0.90:
                target = rng.randrange(1, HEADINGS_PER_FILE + 1)
                kind, item = "fragment", f"[{word}](#section-{target})"
            else:
                kind, item = "inline", f'[{word}]({self.url()} "{word}")'
            kinds[kind] = kinds.get(kind, 0) + 1
            line_items.append(item)
            placed += 1
            if rng.random() < 0.05:  # a code span with a URL: not a link
                line_items.append(f"`{self.code_url()}`")
                code += 1
            if len(line_items) >= rng.randrange(2, 5):
                flush()
                if rng.random() < 0.3:
                    out.append("")
        flush()
        if definitions:
            out += ["", *definitions]
        out.append("")
        return "\n".join(out), placed, code


def _popular(rng: random.Random) -> list[str]:
    return [
        f"https://127.0.{rng.randrange(0, 2)}.{rng.randrange(1, 20)}/{rng.choice(WORDS)}/{i}"
        for i in range(500)
    ]


def generate_tree(root: Path, files: int, links: int, seed: int) -> Tree:
    """`files` Markdown files of `links` link places each under `root`, from `seed`."""
    rng = random.Random(seed)
    writer = Writer(rng, _popular(rng))
    tree = Tree(root)
    paths = [root / DIRS[i % len(DIRS)] / f"page-{i:05d}.md" for i in range(files)]
    for folder in DIRS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):

        def relative(here: Path = path) -> str:
            target = paths[rng.randrange(files)]
            link = os.path.relpath(target, here.parent)
            if rng.random() < 0.5:
                link += f"#section-{rng.randrange(1, HEADINGS_PER_FILE + 1)}"
            return link

        text, placed, code = writer.document(f"Page {i}", links, relative, tree.by_kind)
        data = text.encode()
        path.write_bytes(data)
        tree.files.append(path)
        tree.links += placed
        tree.code_urls += code
        tree.bytes += len(data)
    return tree


def generate_big(root: Path, megabytes: float, seed: int) -> Tree:
    """One Markdown file of about `megabytes` MB: sections of 500 link places, appended."""
    rng = random.Random(seed)
    writer = Writer(rng, _popular(rng))
    tree = Tree(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "big.md"
    siblings = [f"chapter-{k}.md" for k in range(50)]
    target = int(megabytes * 1_000_000)
    part = 0
    with path.open("wb") as f:
        while tree.bytes < target:
            part += 1

            def relative() -> str:
                return rng.choice(siblings) + f"#section-{rng.randrange(1, 9)}"

            text, placed, code = writer.document(f"Part {part}", 500, relative, tree.by_kind)
            # reference names must stay unique across parts
            text = text.replace("][r", f"][p{part}r").replace("\n[r", f"\n[p{part}r")
            data = text.encode()
            f.write(data)
            tree.bytes += len(data)
            tree.links += placed
            tree.code_urls += code
    tree.files.append(path)
    return tree


# -- the runs -------------------------------------------------------------------------------


def count_lines(path: Path) -> int:
    lines = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


@dataclass
class Tool:
    """A tool under test: its command for a tree, and its runs."""

    name: str
    command: list[str] | None  # the argv prefix; None when not installed
    args: Callable[[Path], list[str]]
    ok_codes: tuple[int, ...] = (0,)
    version: str = ""
    runs: list[Run] = field(default_factory=list)
    error: str | None = None  # why it was not run, or why it failed


def make_tools(args: argparse.Namespace) -> list[Tool]:
    fetchpool = tool_command("fetchpool", args.fetchpool)
    lychee = tool_command("lychee", args.lychee, [BENCH_VENV_BIN])
    tools = {
        "fetchpool": Tool(
            "fetchpool",
            fetchpool,
            lambda d: ["--extract", "--dump", "--no-progress", str(d)],
        ),
        "lychee": Tool(
            "lychee",
            lychee,
            lambda d: (
                ["--dump", "--no-progress", "--threads", str(args.threads), str(d)]
                if args.threads
                else ["--dump", "--no-progress", str(d)]
            ),
        ),
    }
    chosen = []
    for name in args.tools.split(","):
        name = name.strip()
        if name not in tools:
            raise SystemExit(f"unknown tool {name!r}: choose among {', '.join(tools)}")
        tool = tools[name]
        if tool.command is None:
            tool.error = f"not found: pass --{name} PATH (or run ../shared/bench/setup.sh)"
        else:
            tool.version = version_of(tool.command)
        chosen.append(tool)
    return chosen


def measure(tools: list[Tool], tree: Tree, work: Path, reps: int, timeout: float) -> None:
    for rep in range(reps):
        for tool in tools:
            if tool.command is None or tool.error:  # not installed, or failed before
                continue
            out = work / f"{tool.name}-{rep}.out"
            err = work / f"{tool.name}-{rep}.err"
            argv = [*tool.command, *tool.args(tree.root)]
            run = timed_run(argv, stdout=out, stderr=err, timeout=timeout, cwd=work)
            run.extra["links_dumped"] = count_lines(out) if out.exists() else 0
            run.extra["argv"] = argv
            out.unlink(missing_ok=True)  # can be hundreds of MB
            tool.runs.append(run)
            if run.timed_out or run.exit_code not in tool.ok_codes:
                tool.error = short_error(run)
            print(
                f"  rep {rep + 1} {tool.name:9}: {run.wall:7.2f} s, "
                f"{fmt(run.peak_rss_mb, '.1f')} MB, {run.extra['links_dumped']:,} links, "
                f"exit {run.exit_code}" + (f"  <- {tool.error}" if tool.error else ""),
                flush=True,
            )


def report(tools: list[Tool], tree: Tree, big: bool) -> tuple[str, list[dict[str, Any]]]:
    good = {t.name: [r for r in t.runs if not t.error] for t in tools}
    walls = {name: median([r.wall for r in runs]) for name, runs in good.items()}
    lychee_wall = walls.get("lychee")
    rows: list[list[str]] = []
    summary: list[dict[str, Any]] = []
    for tool in tools:
        runs = good[tool.name]
        wall = walls[tool.name]
        rss = [r.peak_rss_mb for r in runs if r.peak_rss_mb is not None]
        cpu = [r.cpu for r in runs if r.cpu is not None]
        dumped = sorted({int(r.extra["links_dumped"]) for r in runs})
        if tool.error or wall is None:
            rows.append([tool.name, *["-"] * 8, tool.error or "no run"])
            summary.append({"tool": tool.name, "error": tool.error})
            continue
        limit = BIG_RSS_LIMIT_MB if big else RSS_GOAL_MB
        med_rss = median(rss)
        links = dumped[-1]
        rows.append(
            [
                tool.name,
                f"{wall:.3f}",
                "-" if big else f"{len(tree.files) / wall:,.0f}",
                f"{links / wall:,.0f}",
                f"{fmt(med_rss, '.1f')} (max {fmt(max(rss) if rss else None, '.1f')})",
                fmt(median(cpu)),
                "..".join(f"{d:,}" for d in dumped),
                fmt(wall / lychee_wall if lychee_wall else None, ".2f"),
                "yes" if med_rss is not None and med_rss < limit else "no",
                f"{len(runs)} reps",
            ]
        )
        summary.append(
            {
                "tool": tool.name,
                "median_wall_s": wall,
                "files_per_s": len(tree.files) / wall,
                "links_per_s": links / wall,
                "peak_rss_mb_median": med_rss,
                "peak_rss_mb_max": max(rss) if rss else None,
                "cpu_s_median": median(cpu),
                "links_dumped": dumped,
                "ratio_to_lychee": wall / lychee_wall if lychee_wall else None,
            }
        )
    limit = BIG_RSS_LIMIT_MB if big else RSS_GOAL_MB
    header = [
        "tool",
        "median wall s",
        "files/s",
        "links/s",
        "peak RSS MB",
        "CPU s",
        "links dumped",
        "wall / lychee",
        f"RSS < {limit} MB",
        "notes",
    ]
    return markdown_table(header, rows), summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (benchmarks/extract_dump.py) for what is measured.",
    )
    parser.add_argument("--files", type=int, default=5000, help="Markdown files (5000)")
    parser.add_argument("--links", type=int, default=500, help="link places per file (500)")
    parser.add_argument("--big", action="store_true", help="one big Markdown file instead")
    parser.add_argument("--big-mb", type=float, default=11.0, help="its size in MB (11)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tools", default="fetchpool,lychee", help="fetchpool,lychee")
    parser.add_argument(
        "--fetchpool",
        help="fetchpool command: a path or a quoted command "
        "(default: this checkout's .venv/bin/fetchpool)",
    )
    parser.add_argument("--lychee", help="lychee command (default: PATH, /tmp/benchvenv/bin)")
    parser.add_argument(
        "--threads", type=int, default=0, help="lychee --threads (default: its own, all cores)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="cap per run, seconds")
    parser.add_argument("--results-dir", type=Path, help="write a JSON result here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (printed)")
    parser.add_argument("--tmp", type=Path, help="where to make the temp dir")
    args = parser.parse_args()
    if min(args.files, args.links, args.reps) < 1:
        parser.error("--files, --links and --reps must be >= 1")

    tools = make_tools(args)
    for tool in tools:
        print(f"{tool.name}: {' '.join(tool.command or ['-'])}  ({tool.version or tool.error})")
    work = Path(tempfile.mkdtemp(prefix="fetchpool-extract-", dir=args.tmp))
    try:
        with interrupts_as_keyboard_interrupt():
            started = time.perf_counter()
            if args.big:
                tree = generate_big(work / "tree", args.big_mb, args.seed)
                what = f"one Markdown file of {tree.bytes / 1e6:.1f} MB"
            else:
                tree = generate_tree(work / "tree", args.files, args.links, args.seed)
                what = (
                    f"{len(tree.files):,} Markdown files x {args.links} links in "
                    f"{len(DIRS)} directories ({tree.bytes / 1e6:.0f} MB)"
                )
            print(
                f"generated {what}: {tree.links:,} link places "
                f"({', '.join(f'{k} {v:,}' for k, v in sorted(tree.by_kind.items()))}), "
                f"+ {tree.code_urls:,} URLs in code that must not count; "
                f"{time.perf_counter() - started:.1f} s, seed {args.seed}",
                flush=True,
            )
            measure(tools, tree, work, args.reps, args.timeout)
            table, summary = report(tools, tree, args.big)
            print()
            print(f"**{'big file' if args.big else 'tree'}**: {what}, "
                  f"{tree.links:,} link places generated, {args.reps} reps")  # fmt: skip
            print()
            print(table)
            save_results(
                args.results_dir,
                "extract_dump-big" if args.big else "extract_dump",
                {
                    "scenario": "big" if args.big else "tree",
                    "files": len(tree.files),
                    "links_per_file": None if args.big else args.links,
                    "bytes": tree.bytes,
                    "links_generated": tree.links,
                    "links_by_kind": tree.by_kind,
                    "code_urls": tree.code_urls,
                    "seed": args.seed,
                    "reps": args.reps,
                },
                tools,
                summary,
            )
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        clean_up(work, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
