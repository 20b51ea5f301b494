"""Crawling a whole site: `fetchpool --recursive` against `linkinator --recurse` (and muffet).

    python benchmarks/crawl.py                              # 10,000 pages x 50 links, 3 reps
    python benchmarks/crawl.py --pages 200 --reps 1         # a quick check
    python benchmarks/crawl.py --tools linkinator --reps 1  # the peers only
    python benchmarks/crawl.py --fetchpool /work/wt-x/.venv/bin/fetchpool --results-dir out

The site is generated (from `--seed`) into a temporary directory and served by nginx
(Debian's /usr/sbin/nginx, from a config written into the same temp dir: foreground,
`daemon off`, `--nginx-workers` worker processes (2), an access log of its own). It listens on
127.0.0.1:PORT (the site) and on 127.0.0.2:PORT (a second origin). Nothing leaves 127.0.0.0/8.

The site: `--pages` HTML pages (10,000), `/index.html` and `/sNN/pNNNNN.html` in 20 section
directories, each with `--links` link places (50): a stylesheet `<link>`, a home link `/`,
links to pages 2i+1 and 2i+2 (so every page is reachable from `/`), an `<img>`, on some pages a
PDF, and the rest links to random pages, written root-relative, relative, absolute, or with a
`#fragment` of the target. Planted: one broken internal link (404) on every 50th page, and on
every 20th page a link to a page of the second origin, a few of which do not exist (404). The
second origin's pages link to `/trap/...` pages that a crawler must not follow (it may check
a link to another origin, not crawl it): the access log shows any request for them.

The tools, all at the same concurrency (`--workers`, default 64, as in the shared harness's
throughput scenario; linkinator's default is 100, muffet's 512, fetchpool's 8), retries off
where there is a flag, timeout 10 s:

* fetchpool: `fetchpool --recursive URL --format jsonl --workers W --timeout 10 --retries 0
  --no-progress` (the contract, section "Crawling a site"; one jsonl row per link place).
  A fetchpool without `--recursive` (main before issue 13) exits 2 with "No such option": that
  is reported in the table and the run goes on without it. `--fetchpool PATH` picks the build.
* linkinator: `linkinator URL --recurse --concurrency W --timeout 10000 --format json`
  (from /tmp/npm-linkinator, the shared harness's setup.sh). It follows links on the start
  URL's host and checks the others once.
* muffet (a Go program): `muffet --max-connections W --max-connections-per-host W --timeout 10
  --format json --verbose URL`, when `muffet` is on PATH or given with `--muffet PATH`. It
  cannot be installed on this machine from a registry reachable here: Debian has no `muffet`
  package, npm and PyPI have no package of that name, and though Debian's golang-go (1.19) can
  be installed, the Go module proxy that `go install` needs is not reachable. It is then listed
  as skipped with that reason.

Each rep runs every tool once, in a fixed order (A B C, A B C, ...), each through a fresh GNU
`/usr/bin/time` (peak RSS of the tool's largest process). Reported per tool: median wall,
pages/s (site pages / median wall), links checked (the tool's own rows: places for fetchpool,
its result entries for the others) and distinct URLs, broken links found, the planted broken
links it found (`found/planted`, the correctness column) and any it reported broken that were
not planted, peak RSS, CPU, and from the server's access log: requests per origin, distinct
pages fetched, URLs requested more than once, and requests for `/trap/` (followed another
origin). Goals (issue 13): fetchpool's wall <= the fastest peer, peak RSS <= 150 MB.

What to know when reading the figures:

* linkinator 7.6.1 opens about one TCP connection per request (10,098 connections for 10,335
  requests at full size), reports a broken link once per page that links to it (so its rows
  exceed its distinct URLs), and when its process is CPU-bound, requests wait past its
  timeout and come back BROKEN with status 0: these show up as "not planted" broken links,
  and as URLs it never requested.
* fetchpool's jsonl has one row per link place plus one for the start URL (source `<args>`),
  and its server requests include `/robots.txt` (the contract obeys it).
* The machine's 2 cores are shared by the tool, nginx, this script, and whatever else runs;
  compare the tools within one run, and look at CPU s as well as wall time.

`--results-dir DIR` writes every rep as JSON. nginx is stopped (by its PID) and the temp dir
removed at the end, also on Ctrl-C or SIGTERM, unless `--keep` (which keeps the directory, not
the server).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peerrun import (
    NPM_BIN,
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

HOST1 = "127.0.0.1"
HOST2 = "127.0.0.2"
NGINX = Path("/usr/sbin/nginx")
SECTIONS = 20
BROKEN_EVERY = 50  # one planted broken internal link on every 50th page
EXTERNAL_EVERY = 20  # a link to the second origin on every 20th page
EXTERNAL_PAGES = 50  # distinct pages of the second origin that are linked
EXTERNAL_MISSING_EVERY = 10  # of which every 10th does not exist
IMAGES = 200
PDFS = 50
RSS_GOAL_MB = 150
MUFFET_SKIP = (
    "not installable here: no Debian package, nothing on npm or PyPI, and the Go module proxy "
    "is unreachable (pass --muffet PATH to a muffet binary)"
)


# -- the site -------------------------------------------------------------------------------


@dataclass
class Site:
    """The generated site and what a perfect crawler would do on it."""

    root: Path  # served at http://127.0.0.1:PORT/
    external: Path  # served at http://127.0.0.2:PORT/
    port: int
    pages: int
    places: int = 0  # link places on all pages
    origin1_paths: set[str] = field(default_factory=set)  # distinct paths to request
    origin2_paths: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)  # absolute URLs planted broken
    bytes: int = 0

    @property
    def base1(self) -> str:
        return f"http://{HOST1}:{self.port}"

    @property
    def base2(self) -> str:
        return f"http://{HOST2}:{self.port}"


def page_path(i: int) -> str:
    return "/index.html" if i == 0 else f"/s{i % SECTIONS:02d}/p{i:05d}.html"


def _relative(from_path: str, to_path: str) -> str:
    return os.path.relpath(to_path, os.path.dirname(from_path)).replace(os.sep, "/")


def generate_site(work: Path, pages: int, links: int, port: int, seed: int) -> Site:
    """Write the two origins' files under `work`; return what a perfect crawl would see."""
    rng = random.Random(seed)
    site = Site(work / "site", work / "external", port, pages)
    for s in range(SECTIONS):
        (site.root / f"s{s:02d}").mkdir(parents=True, exist_ok=True)
    (site.root / "assets").mkdir()
    (site.external / "ext").mkdir(parents=True)
    (site.external / "trap").mkdir()
    for k in range(IMAGES):
        (site.root / "assets" / f"img-{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for k in range(PDFS):
        (site.root / "assets" / f"doc-{k}.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (site.root / "assets" / "site.css").write_text("body { margin: 0 auto; }\n")
    (site.root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    for k in range(EXTERNAL_PAGES):
        if k % EXTERNAL_MISSING_EVERY == EXTERNAL_MISSING_EVERY - 1:
            continue  # planted: linked but absent
        traps = "".join(f'<li><a href="/trap/{k}-{j}.html">more {j}</a></li>\n' for j in range(5))
        (site.external / "ext" / f"{k}.html").write_text(
            f"<!doctype html><html><head><title>External {k}</title></head><body>\n"
            f"<h1>External {k}</h1><ul>\n{traps}</ul></body></html>\n"
        )
        for j in range(5):
            (site.external / "trap" / f"{k}-{j}.html").write_text("<!doctype html><p>trap</p>\n")

    for i in range(pages):
        here = page_path(i)
        items: list[tuple[str, str]] = []  # (kind, html)
        items.append(("asset", '<link rel="stylesheet" href="/assets/site.css">'))
        items.append(("page", '<a href="/">Home</a>'))
        for child in (2 * i + 1, 2 * i + 2):
            if child < pages:
                items.append(("page", f'<a href="{_relative(here, page_path(child))}">Next</a>'))
        if i % BROKEN_EVERY == BROKEN_EVERY // 2:
            missing = f"/s{i % SECTIONS:02d}/missing-{i}.html"
            site.broken.add(site.base1 + missing)
            site.origin1_paths.add(missing)
            items.append(("broken", f'<a href="{missing}">Old page</a>'))
        if i % EXTERNAL_EVERY == 3:
            k = (i // EXTERNAL_EVERY) % EXTERNAL_PAGES
            url = f"{site.base2}/ext/{k}.html"
            site.origin2_paths.add(f"/ext/{k}.html")
            if k % EXTERNAL_MISSING_EVERY == EXTERNAL_MISSING_EVERY - 1:
                site.broken.add(url)
            items.append(("external", f'<a href="{url}">Elsewhere</a>'))
        img = f"/assets/img-{rng.randrange(IMAGES)}.png"
        items.append(("asset", f'<img src="{img}" alt="figure">'))
        site.origin1_paths.add(img)
        if rng.random() < 0.3:
            pdf = f"/assets/doc-{rng.randrange(PDFS)}.pdf"
            items.append(("asset", f'<a href="{pdf}">PDF</a>'))
            site.origin1_paths.add(pdf)
        while len(items) < links:
            target = page_path(rng.randrange(1, pages)) if pages > 1 else "/index.html"
            roll = rng.random()
            if roll < 0.4:
                href = target
            elif roll < 0.7:
                href = _relative(here, target)
            elif roll < 0.85:
                href = site.base1 + target
            else:
                href = f"{target}#sec-{rng.randrange(1, 4)}"
            items.append(("page", f'<a href="{href}">Page {rng.randrange(10**4)}</a>'))
        site.places += len(items)
        head = [item for kind, item in items if item.startswith("<link")]
        body = [item for kind, item in items if not item.startswith("<link")]
        lines = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Page {i}</title>",
            *head,
            "</head><body>",
            f'<h1 id="top">Page {i}</h1>',
        ]
        for n in range(0, len(body), 5):
            if n % 15 == 0:
                lines.append(f'<h2 id="sec-{n // 15 + 1}">Section {n // 15 + 1}</h2>')
            lines.append("<p>Some text " + " and ".join(body[n : n + 5]) + ".</p>")
        lines += ["</body></html>", ""]
        data = "\n".join(lines).encode()
        path = site.root / here.lstrip("/")
        path.write_bytes(data)
        site.bytes += len(data)
    site.origin1_paths.update(page_path(i) for i in range(1, pages))
    site.origin1_paths.update({"/", "/assets/site.css"})
    return site


# -- the server -----------------------------------------------------------------------------

NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 65536;
events {{
    worker_connections 8192;
    use epoll;
}}
http {{
    types {{
        text/html html;
        text/css css;
        image/png png;
        application/pdf pdf;
        text/plain txt;
    }}
    default_type application/octet-stream;
    log_format counts '$server_addr $request_method $request_uri $status $connection';
    access_log {tmp}/access.log counts;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    open_file_cache max=30000 inactive=120s;
    server_tokens off;
    server {{
        listen {host1}:{port} backlog=4096;
        root {site};
        index index.html;
    }}
    server {{
        listen {host2}:{port} backlog=4096;
        root {external};
    }}
}}
"""


def _die_with_parent() -> None:
    """In the nginx master, before exec: SIGTERM when this script dies (prctl PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def free_port() -> int:
    """A port free on both loopback addresses (probed, then released)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((HOST1, 0))
            port: int = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind((HOST2, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@dataclass
class Server:
    """A running nginx and where its access log is."""

    proc: subprocess.Popen[bytes]
    log: Path
    tmp: Path

    def log_offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def requests_since(self, offset: int) -> list[tuple[str, str, str, str, str]]:
        """(address, method, uri, status, connection serial) of every request after `offset`."""
        time.sleep(0.3)  # the last requests are logged just after their response went out
        with self.log.open("rb") as f:
            f.seek(offset)
            data = f.read().decode("utf-8", "replace")
        rows = []
        for line in data.splitlines():
            parts = line.split(" ")
            if len(parts) == 5:
                rows.append((parts[0], parts[1], parts[2], parts[3], parts[4]))
        return rows


def _get(host: str, port: int, path: str) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextlib.contextmanager
def nginx(site: Site, work: Path, workers: int) -> Iterator[Server]:
    """nginx in the foreground on both addresses; stopped by its PID on the way out."""
    tmp = work / "nginx"
    tmp.mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers,
            tmp=tmp,
            host1=HOST1,
            host2=HOST2,
            port=site.port,
            site=site.root,
            external=site.external,
        )
    )
    # nginx's workers run as `nobody` when it is started as root: they must read the site.
    for folder in (work, site.root, site.external):
        folder.chmod(0o755)
    proc = subprocess.Popen(
        [str(NGINX), "-c", str(conf), "-p", f"{tmp}/", "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches this script only; it stops nginx itself
        preexec_fn=_die_with_parent,
    )
    server = Server(proc, tmp / "access.log", tmp)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                error = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
                raise RuntimeError(f"nginx exited with {proc.returncode}: {error.strip()}")
            try:
                if _get(HOST1, site.port, "/") == 200 and _get(HOST2, site.port, "/ext/0.html"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer on port {site.port} within 10 s")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM to the master: fast shutdown of it and its workers
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: master and workers
                proc.wait()


# -- the tools ------------------------------------------------------------------------------


@dataclass
class Parsed:
    """What a tool's own output says: link rows, distinct URLs, the broken ones."""

    rows: int = 0
    urls: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)
    problem: str | None = None
    why: dict[str, str] = field(default_factory=dict)  # broken URL -> the tool's words

    def add(self, url: str, broken: bool, why: object = None) -> None:
        self.rows += 1
        self.urls.add(url)
        if broken:
            self.broken.add(url)
            if url not in self.why:
                self.why[url] = str(why)[:200]


def _norm(url: str, base: str | None) -> str:
    absolute = urljoin(base, url) if base else url
    clean = urldefrag(absolute).url
    parts = urlsplit(clean)
    return clean + "/" if parts.path == "" and not parts.query else clean


def parse_fetchpool(text: str) -> Parsed:
    """jsonl: one object per link place (url, outcome, source = page URL, ...)."""
    parsed = Parsed()
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            parsed.problem = f"not JSON: {line[:80]!r}"
            continue
        url = _norm(str(row.get("url", "")), row.get("source"))
        broken = row.get("outcome") not in ("ok", None)
        parsed.add(url, broken, f"{row.get('status')} {row.get('kind')}: {row.get('error')}")
    return parsed


def parse_linkinator(text: str) -> Parsed:
    """--format json: {"passed": ..., "links": [{"url", "status", "state", "parent"}]}."""
    parsed = Parsed()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        parsed.problem = f"output is not JSON: {exc}"
        return parsed
    for link in data.get("links", []):
        if link.get("state") == "SKIPPED":
            continue
        url = _norm(str(link.get("url", "")), link.get("parent"))
        why = f"{link.get('status')}: {json.dumps(link.get('failureDetails'))}"
        parsed.add(url, link.get("state") == "BROKEN", why)
    return parsed


def parse_muffet(text: str) -> Parsed:
    """--format json --verbose: [{"url": page, "links": [{"url", "status"?, "error"?}]}]."""
    parsed = Parsed()
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        parsed.problem = f"output is not JSON: {exc}"
        return parsed
    for page in data if isinstance(data, list) else []:
        base = page.get("url")
        for link in page.get("links", []):
            url = _norm(str(link.get("url", "")), base)
            parsed.add(url, bool(link.get("error")), link.get("error"))
    return parsed


@dataclass
class Tool:
    name: str
    command: list[str] | None
    args: Callable[[str], list[str]]
    parse: Callable[[str], Parsed]
    ok_codes: tuple[int, ...]
    version: str = ""
    runs: list[Run] = field(default_factory=list)
    error: str | None = None


def make_tools(args: argparse.Namespace) -> list[Tool]:
    w, t = str(args.workers), args.timeout_per_link
    catalogue = {
        "fetchpool": Tool(
            "fetchpool",
            tool_command("fetchpool", args.fetchpool),
            lambda url: [
                "--recursive",
                url,
                "--format",
                "jsonl",
                "--workers",
                w,
                "--timeout",
                str(t),
                "--retries",
                "0",
                "--no-progress",
            ],
            parse_fetchpool,
            (0, 1),  # 1: some links failed, as planted
        ),
        "linkinator": Tool(
            "linkinator",
            tool_command("linkinator", args.linkinator, [NPM_BIN]),
            lambda url: [
                url,
                "--recurse",
                "--concurrency",
                w,
                "--timeout",
                str(int(t * 1000)),
                "--format",
                "json",
            ],
            parse_linkinator,
            (0, 1),
        ),
        "muffet": Tool(
            "muffet",
            tool_command("muffet", args.muffet),
            lambda url: [
                "--max-connections",
                w,
                "--max-connections-per-host",
                w,
                "--timeout",
                str(int(t)),
                "--format",
                "json",
                "--verbose",
                url,
            ],
            parse_muffet,
            (0, 1),
        ),
    }
    tools = []
    for name in (n.strip() for n in args.tools.split(",")):
        if name not in catalogue:
            raise SystemExit(f"unknown tool {name!r}: choose among {', '.join(catalogue)}")
        tool = catalogue[name]
        if tool.command is None:
            tool.error = (
                MUFFET_SKIP
                if name == "muffet"
                else f"not found: pass --{name} PATH (or run ../shared/bench/setup.sh)"
            )
        else:
            tool.version = version_of(tool.command)
        tools.append(tool)
    return tools


def server_counts(site: Site, requests: list[tuple[str, str, str, str, str]]) -> dict[str, Any]:
    """What the access log says about one run."""
    per_addr = Counter(addr for addr, _, _, _, _ in requests)
    per_url = Counter((addr, uri.split("#")[0]) for addr, _, uri, _, _ in requests)
    page_paths = {page_path(i) for i in range(1, site.pages)} | {"/"}
    pages = {uri for (addr, uri) in per_url if addr == HOST1 and uri in page_paths}
    return {
        "requests_origin1": per_addr.get(HOST1, 0),
        "requests_origin2": per_addr.get(HOST2, 0),
        "connections": len({conn for _, _, _, _, conn in requests}),
        "methods": dict(Counter(method for _, method, _, _, _ in requests)),
        "distinct_pages_fetched": len(pages),
        "urls_requested_more_than_once": sum(1 for n in per_url.values() if n > 1),
        "trap_requests": sum(
            n for (addr, uri), n in per_url.items() if addr == HOST2 and "/trap/" in uri
        ),
        "ideal_requests": len(site.origin1_paths) + len(site.origin2_paths),
    }


def measure(tools: list[Tool], site: Site, server: Server, work: Path, args: Any) -> None:
    start = site.base1 + "/"
    for rep in range(args.reps):
        for tool in tools:
            if tool.command is None or tool.error:
                continue
            out, err = work / f"{tool.name}-{rep}.out", work / f"{tool.name}-{rep}.err"
            argv = [*tool.command, *tool.args(start)]
            offset = server.log_offset()
            run = timed_run(argv, stdout=out, stderr=err, timeout=args.cap, cwd=work)
            run.extra["argv"] = argv
            run.extra["server"] = server_counts(site, server.requests_since(offset))
            text = out.read_text(errors="replace") if out.exists() else ""
            parsed = tool.parse(text) if text else Parsed(problem="no output")
            found = site.broken & parsed.broken
            run.extra.update(
                links_checked=parsed.rows,
                distinct_urls=len(parsed.urls),
                broken_reported=len(parsed.broken),
                planted_found=len(found),
                planted=len(site.broken),
                planted_missed=sorted(site.broken - parsed.broken)[:20],
                not_planted_broken={
                    url: parsed.why.get(url, "") for url in sorted(parsed.broken - site.broken)[:20]
                },
                not_planted_broken_count=len(parsed.broken - site.broken),
                parse_problem=parsed.problem,
            )
            tool.runs.append(run)
            if run.timed_out or run.exit_code not in tool.ok_codes:
                tool.error = short_error(run)
            elif parsed.rows == 0:
                tool.error = f"exit {run.exit_code} but no result rows ({parsed.problem})"
            s = run.extra["server"]
            print(
                f"  rep {rep + 1} {tool.name:10}: {run.wall:7.2f} s, "
                f"{fmt(run.peak_rss_mb, '.1f')} MB, {parsed.rows:,} links, "
                f"broken {len(found)}/{len(site.broken)} planted "
                f"(+{len(parsed.broken - site.broken)} other), "
                f"server {s['requests_origin1']:,}+{s['requests_origin2']:,} req "
                f"{s['connections']:,} conns, "
                f"exit {run.exit_code}" + (f"  <- {tool.error}" if tool.error else ""),
                flush=True,
            )


def value_range(values: list[int]) -> str:
    """`12,345`, or `12,300..12,345` when the reps differ."""
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}..{high:,}"


def report(tools: list[Tool], site: Site) -> tuple[str, list[dict[str, Any]]]:
    rows: list[list[str]] = []
    summary: list[dict[str, Any]] = []
    for tool in tools:
        runs = [] if tool.error else tool.runs
        wall = median([r.wall for r in runs])
        if tool.error or wall is None:
            rows.append([tool.name, *["-"] * 10, tool.error or "no run"])
            summary.append({"tool": tool.name, "error": tool.error})
            continue
        rss = [r.peak_rss_mb for r in runs if r.peak_rss_mb is not None]
        cpu = [r.cpu for r in runs if r.cpu is not None]
        last = runs[-1].extra

        def span(key: str, rs: list[Run] = runs) -> str:
            return value_range([r.extra[key] for r in rs])

        def sspan(key: str, rs: list[Run] = runs) -> str:
            return value_range([r.extra["server"][key] for r in rs])

        found = sorted({r.extra["planted_found"] for r in runs})
        rows.append(
            [
                tool.name,
                f"{wall:.2f}",
                f"{site.pages / wall:,.0f}",
                f"{span('links_checked')} ({span('distinct_urls')} URLs)",
                span("broken_reported"),
                f"{'..'.join(map(str, found))}/{len(site.broken)}"
                + (
                    f", +{last['not_planted_broken_count']} not planted"
                    if last["not_planted_broken_count"]
                    else ""
                ),
                f"{fmt(median(rss), '.1f')} (max {fmt(max(rss) if rss else None, '.1f')})",
                fmt(median(cpu)),
                f"{sspan('requests_origin1')} + {sspan('requests_origin2')} "
                f"/ {sspan('connections')}",
                f"{sspan('distinct_pages_fetched')}/{site.pages}",
                f"{sspan('urls_requested_more_than_once')} / {sspan('trap_requests')}",
                f"{len(runs)} reps",
            ]
        )
        summary.append(
            {
                "tool": tool.name,
                "median_wall_s": wall,
                "pages_per_s": site.pages / wall,
                "peak_rss_mb_median": median(rss),
                "peak_rss_mb_max": max(rss) if rss else None,
                "cpu_s_median": median(cpu),
                "links_checked": [r.extra["links_checked"] for r in runs],
                "planted_found": found,
                "server": [r.extra["server"] for r in runs],
            }
        )
    header = [
        "tool",
        "median wall s",
        "pages/s",
        "links checked",
        "broken reported",
        "planted broken found",
        "peak RSS MB",
        "CPU s",
        "server req (origin 1 + 2) / conns",
        "pages fetched",
        "URLs fetched >1 / trap req",
        "notes",
    ]
    return markdown_table(header, rows), summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (benchmarks/crawl.py) for what is measured.",
    )
    parser.add_argument("--pages", type=int, default=10_000, help="HTML pages (10000)")
    parser.add_argument("--links", type=int, default=50, help="link places per page (50)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=64, help="concurrency of every tool (64)")
    parser.add_argument(
        "--timeout-per-link", type=float, default=10, help="per-request timeout, s (10)"
    )
    parser.add_argument("--cap", type=float, default=900, help="wall-clock cap per run, s (900)")
    parser.add_argument("--tools", default="fetchpool,linkinator,muffet")
    parser.add_argument(
        "--fetchpool",
        help="fetchpool command: a path or a quoted command "
        "(default: this checkout's .venv/bin/fetchpool)",
    )
    parser.add_argument("--linkinator", help="default: PATH, /tmp/npm-linkinator")
    parser.add_argument("--muffet", help="default: PATH")
    parser.add_argument("--nginx-workers", type=int, default=2)
    parser.add_argument("--results-dir", type=Path, help="write a JSON result here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (printed)")
    parser.add_argument("--tmp", type=Path, help="where to make the temp dir")
    args = parser.parse_args()
    if min(args.pages, args.reps, args.workers) < 1 or args.links < 8:
        parser.error("--pages, --reps, --workers must be >= 1 and --links >= 8")
    if not NGINX.exists():
        parser.error(f"{NGINX} not found: apt-get install nginx-light")

    tools = make_tools(args)
    for tool in tools:
        print(f"{tool.name}: {' '.join(tool.command or ['-'])}  ({tool.version or tool.error})")
    work = Path(tempfile.mkdtemp(prefix="fetchpool-crawl-", dir=args.tmp))
    try:
        with interrupts_as_keyboard_interrupt():
            started = time.perf_counter()
            site = generate_site(work, args.pages, args.links, free_port(), args.seed)
            print(
                f"generated {site.pages:,} pages x {args.links} links ({site.places:,} places, "
                f"{site.bytes / 1e6:.0f} MB), {len(site.broken)} planted broken links, "
                f"{len(site.origin1_paths) + len(site.origin2_paths):,} distinct URLs; "
                f"{time.perf_counter() - started:.1f} s, seed {args.seed}",
                flush=True,
            )
            with nginx(site, work, args.nginx_workers) as server:
                print(f"nginx pid {server.proc.pid}: {site.base1}/ and {site.base2}/", flush=True)
                measure(tools, site, server, work, args)
            table, summary = report(tools, site)
            print()
            print(
                f"**crawl**: {site.pages:,} pages x {args.links} links, nginx "
                f"{args.nginx_workers} workers, concurrency {args.workers}, {args.reps} reps; "
                f"ideal: each of {len(site.origin1_paths) + len(site.origin2_paths):,} "
                "distinct URLs requested once, 0 trap requests"
            )
            print()
            print(table)
            save_results(
                args.results_dir,
                "crawl",
                {
                    "pages": site.pages,
                    "links_per_page": args.links,
                    "places": site.places,
                    "planted_broken": sorted(site.broken),
                    "distinct_urls": len(site.origin1_paths) + len(site.origin2_paths),
                    "workers": args.workers,
                    "nginx_workers": args.nginx_workers,
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
