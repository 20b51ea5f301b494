"""The `fetchpool` command: Typer options → settings and a run plan; usage errors → exit 2."""

# No `from __future__ import annotations` here: Typer reads the option annotations at every
# start, and string annotations would cost an eval() each (about 4 ms of start-up in all).

import contextlib
import enum
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import _config as defaults
from .._config import (
    DEFAULT_MAX_CACHE_AGE,
    DEFAULT_MAX_PAGES,
    Settings,
    StatusSet,
    parse_cookie,
    parse_header,
)
from .._errors import UsageError
from .._models import Result
from .._source import Input, open_inputs
from .._stats import RunStats
from .._version import __version__
from .errors import usage_message
from .runner import Display, Env, ExitStatus, RunPlan, execute
from .sinks import FORMATTERS, DocumentSink, LineSink, ResultSink
from .view import RunView

if TYPE_CHECKING:
    from .._cache import ResultCache
    from .._filter import LinkFilter
    from .._links import LinkOptions
    from .._partition import OutputDir


class OutputFormat(enum.StrEnum):
    """The values of `--format`."""

    AUTO = "auto"
    TABLE = "table"
    PLAIN = "plain"
    JSONL = "jsonl"
    CSV = "csv"
    GITHUB = "github"
    MARKDOWN = "markdown"
    SARIF = "sarif"


class Method(enum.StrEnum):
    """The values of `--method`."""

    GET = "GET"
    HEAD = "HEAD"


def _version_callback(value: bool) -> None:
    if value:
        print(f"fetchpool {__version__}")
        raise typer.Exit(0)


# The panels of `--help`, in the order of each one's first option below (Typer draws panels
# only in its Rich help, hence "rich" below; Rich is imported only when help is printed).
INPUT_PANEL = "Input"  # the FILE argument; an option panel of the same name would be a second box
FETCHING_PANEL = "Fetching"
CONNECTION_PANEL = "Connections and credentials"
OUTPUT_PANEL = "Output"
LINK_CHECKING_PANEL = "Link checking"
CRAWL_PANEL = "Crawling a site"
SCALE_PANEL = "More than one machine"


class Engine(enum.StrEnum):
    """The values of `--engine`."""

    LOCAL = "local"
    RAY = "ray"


EPILOG = """\
Examples (in a clone of the repository):

  fetchpool urls.example.txt

  fetchpool --extract README.md -f jsonl | jq -c 'select(.outcome != "ok")'

  cat urls.example.txt | fetchpool -w 64 -f csv > results.csv

  fetchpool --extract -f github --cache .fetchpool-cache.jsonl README.md docs

  fetchpool --recursive http://127.0.0.1:8000/ --check-fragments
"""

# Typer's --install-completion / --show-completion: typer.main imports its completion code
# (and shellingham) whether or not they are added, so they cost only their two parameters
# (about 0.3 ms, measured); shellingham runs only when one of them is given.
app = typer.Typer(
    add_completion=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command(
    help="Fetch the URLs in FILE... (or standard input) with a fixed pool of workers, "
    "and print one OK/FAIL result per URL as it finishes.",
    epilog=EPILOG,
)
def command(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[FILE]...",
            help="Files of URLs, one per line; '-' or none: standard input. An argument that "
            "starts with http:// or https:// is itself a URL to check.",
            show_default=False,
            rich_help_panel=INPUT_PANEL,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            metavar="N",
            help=f"Concurrent fetch workers (1..{defaults.MAX_WORKERS}).",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = defaults.DEFAULT_WORKERS,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            "-t",
            metavar="SECONDS",
            help="Hard wall-clock limit per URL in seconds: DNS, connect, TLS, redirects, body.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = defaults.DEFAULT_TIMEOUT,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            metavar="N",
            help="Extra attempts for transient failures (connection errors, timeouts, "
            "429, 502, 503, 504), with backoff; Retry-After is honoured.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = defaults.DEFAULT_RETRIES,
    accept: Annotated[
        str,
        typer.Option(
            "--accept",
            metavar="LIST",
            help="Status codes counted as OK, e.g. 200-299,301,403.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = defaults.DEFAULT_ACCEPT,
    method: Annotated[
        Method,
        typer.Option(
            "--method",
            help="Request method.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = Method.GET,
    no_follow: Annotated[
        bool,
        typer.Option(
            "--no-follow",
            help=f"Do not follow redirects (else at most {defaults.MAX_REDIRECTS} hops).",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = False,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar="'NAME: VALUE'",
            help="Extra request header 'Name: value' (repeatable).",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = None,
    user_agent: Annotated[
        str,
        typer.Option(
            "--user-agent",
            metavar="TEXT",
            help="The User-Agent header.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = defaults.DEFAULT_USER_AGENT,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Do not verify TLS certificates.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = False,
    cacert: Annotated[
        str | None,
        typer.Option(
            "--cacert",
            metavar="FILE",
            help="Also trust the CA certificates in FILE (PEM); SSL_CERT_FILE and "
            "SSL_CERT_DIR are honoured as OpenSSL and curl do.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    per_host: Annotated[
        int | None,
        typer.Option(
            "--per-host",
            metavar="N",
            help="At most N requests in flight to one host at once.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output: auto (table on a terminal, else plain), table, plain, jsonl, csv, "
            "github, markdown, sarif.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = OutputFormat.AUTO,
    failures_only: Annotated[
        bool,
        typer.Option(
            "--failures-only",
            help="Print only results that are not OK.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    no_progress: Annotated[
        bool,
        typer.Option(
            "--no-progress",
            help="No live display: no progress line on standard error, no busy workers "
            "below the table.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress display and no summary: results (and errors) only.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    save: Annotated[
        str | None,
        typer.Option(
            "--save",
            help="Stream every OK body to a file under DIR.",
            metavar="DIR",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="With --save, replace existing files.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    max_filesize: Annotated[
        int | None,
        typer.Option(
            "--max-filesize",
            help="With --save, a larger body is a FAIL.",
            metavar="BYTES",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            "--max-time",
            metavar="SECONDS",
            help="Whole-run deadline in seconds; unfinished URLs are CANCELLED.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = None,
    http2: Annotated[
        bool,
        typer.Option(
            "--http2",
            help="Allow HTTP/2.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = False,
    proxy: Annotated[
        str | None,
        typer.Option(
            "--proxy",
            metavar="URL",
            help="Proxy for all requests (default: *_PROXY variables).",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER:PASSWORD",
            help="Basic auth USER:PASSWORD, sent only to the input URLs' origins.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    bearer: Annotated[
        str | None,
        typer.Option(
            "--bearer",
            envvar="FETCHPOOL_BEARER",
            show_envvar=True,
            metavar="TOKEN",
            help="Bearer token, sent only to the input URLs' origins.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    cookie: Annotated[
        list[str] | None,
        typer.Option(
            "--cookie",
            metavar="NAME=VALUE",
            help="Cookie NAME=VALUE (repeatable), scoped like --user.",
            rich_help_panel=CONNECTION_PANEL,
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            metavar="N",
            help="At most N requests started per second, whole run.",
            rich_help_panel=FETCHING_PANEL,
        ),
    ] = None,
    extract: Annotated[
        bool,
        typer.Option(
            "--extract",
            help="Inputs are documents (files, directories, page URLs): check their links.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = False,
    root_dir: Annotated[
        str | None,
        typer.Option(
            "--root-dir",
            metavar="DIR",
            help="With --extract, resolve root-relative links (/docs/x) under DIR.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = None,
    check_fragments: Annotated[
        bool,
        typer.Option(
            "--check-fragments",
            help="Also check #fragments of links to remote HTML pages.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = False,
    dump: Annotated[
        bool,
        typer.Option(
            "--dump",
            help="Print the links that would be checked (URL, source, line); fetch none.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = False,
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive",
            "-r",
            help="Crawl: check every page of the URL arguments' sites, and their links.",
            rich_help_panel=CRAWL_PANEL,
        ),
    ] = False,
    max_depth: Annotated[
        int | None,
        typer.Option(
            "--max-depth",
            metavar="N",
            min=0,
            help="Follow pages at most N links away from a start page (default: unlimited).",
            rich_help_panel=CRAWL_PANEL,
        ),
    ] = None,
    max_pages: Annotated[
        int,
        typer.Option(
            "--max-pages",
            metavar="N",
            min=1,
            help="Follow at most N pages; the rest are checked, not followed.",
            rich_help_panel=CRAWL_PANEL,
        ),
    ] = DEFAULT_MAX_PAGES,
    sitemap: Annotated[
        bool,
        typer.Option(
            "--sitemap",
            help="Also start from each start origin's /sitemap.xml.",
            rich_help_panel=CRAWL_PANEL,
        ),
    ] = False,
    ignore_robots: Annotated[
        bool,
        typer.Option(
            "--ignore-robots",
            help="Follow pages that robots.txt disallows (links are always checked).",
            rich_help_panel=CRAWL_PANEL,
        ),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Skip URLs matching REGEX (repeatable).",
            metavar="REGEX",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            help="Check only URLs matching some REGEX (repeatable).",
            metavar="REGEX",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="Remember OK results in FILE; skip them next time.",
            metavar="FILE",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = None,
    max_cache_age: Annotated[
        str,
        typer.Option(
            "--max-cache-age",
            metavar="DURATION",
            help="How long a cached OK result holds: 90s, 30m, 12h, 1d.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = DEFAULT_MAX_CACHE_AGE,
    accept_timeouts: Annotated[
        bool,
        typer.Option(
            "--accept-timeouts",
            help="Count a timeout as OK.",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="Check only shard K of N (by host), e.g. 2/4.",
            metavar="K/N",
            rich_help_panel=LINK_CHECKING_PANEL,
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            case_sensitive=False,
            help="Where URLs are fetched: this process (local) or a Ray cluster (ray; needs "
            "fetchpool[ray]), in partitions by host.",
            rich_help_panel=SCALE_PANEL,
        ),
    ] = Engine.LOCAL,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDRESS",
            help="With --engine ray: the cluster (default: RAY_ADDRESS, else a local cluster).",
            rich_help_panel=SCALE_PANEL,
        ),
    ] = None,
    output_dir: Annotated[
        str | None,
        typer.Option(
            "--output-dir",
            metavar="DIR",
            help="Also write results as JSON Lines, one file per partition; a rerun with the "
            "same input skips complete partitions (resume).",
            rich_help_panel=SCALE_PANEL,
        ),
    ] = None,
    partition_size: Annotated[
        int,
        typer.Option(
            "--partition-size",
            metavar="N",
            help="URLs per partition, for --engine ray and a new --output-dir.",
            rich_help_panel=SCALE_PANEL,
        ),
    ] = defaults.DEFAULT_PARTITION_SIZE,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> int:
    env = Env()
    paths = files or []
    if max_time is not None and not (0 < max_time < float("inf")):
        raise UsageError(f"invalid --max-time {max_time:g}: must be a positive number")
    settings = Settings(
        workers=workers,
        timeout=timeout,
        retries=retries,
        accept=StatusSet.parse(accept),
        method=method.value,
        follow_redirects=not no_follow,
        headers=tuple(parse_header(h) for h in header or ()),
        user_agent=user_agent,
        verify=not insecure,
        cacert=cacert,
        per_host=per_host,
        accept_timeouts=accept_timeouts,
        rate=rate,
        save_dir=save,
        max_filesize=max_filesize,
        overwrite=overwrite,
        http2=http2,
        proxy=proxy,
        user=user,
        bearer=bearer or None,
        cookies=tuple(parse_cookie(c) for c in cookie or ()),
    )
    _check_settings(settings)
    link_filter = _link_filter(include, exclude, shard)
    result_cache = _result_cache(cache, max_cache_age, env)
    partition_dir = _engine_checks(
        engine,
        ray_address,
        output_dir,
        partition_size,
        extract=extract,
        recursive=recursive,
        cache=cache is not None,
    )
    extract = _link_checking_checks(
        paths,
        extract=extract,
        recursive=recursive,
        dump=dump,
        root_dir=root_dir,
        crawl_options=max_depth is not None
        or sitemap
        or ignore_robots
        or max_pages != DEFAULT_MAX_PAGES,
    )
    if not paths and env.stdin_isatty:
        raise UsageError("no input: give a FILE of URLs, or pipe URLs into standard input")
    fmt = output_format
    if fmt is OutputFormat.AUTO:
        fmt = OutputFormat.TABLE if env.stdout_isatty else OutputFormat.PLAIN
    try:
        inputs = open_inputs(paths, stdin_fd=env.stdin_fd, directories=extract)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else "input"
        raise UsageError(f"cannot read {name}: {(exc.strerror or str(exc)).lower()}") from exc
    _raise_open_file_limit(settings.workers)
    links = None
    if extract:
        links = _link_options(
            paths,
            link_filter,
            root_dir=root_dir,
            check_fragments=check_fragments,
            recursive=recursive,
            max_depth=max_depth,
            max_pages=max_pages,
            sitemap=sitemap,
            ignore_robots=ignore_robots,
        )
    if dump:
        return _dump(settings, inputs, links, env, max_time)
    plan = RunPlan(
        inputs=inputs,
        extract=extract,
        link_filter=link_filter,
        cache=result_cache,
        max_time=max_time,
        links=links,
        engine=engine.value,
        ray_address=ray_address,
        output_dir=partition_dir,
        partition_size=partition_size,
    )
    live = not (no_progress or quiet)
    return _run(settings, plan, env, fmt, live=live, quiet=quiet, failures_only=failures_only)


# -- the steps of `command`: check the options, build what the run needs, run it ---------


def _check_settings(settings: Settings) -> None:
    """Checks that would otherwise fail at the first URL: a bad --save DIR or --cacert FILE,
    --http2 without h2."""
    if settings.save_dir is not None:
        from .._save import SaveDir

        SaveDir(Path(settings.save_dir), overwrite=settings.overwrite)
    if settings.cacert is not None:
        from .._tls import check_cacert

        check_cacert(settings.cacert)
    if settings.http2:
        _require_h2()


def _link_filter(
    include: list[str] | None, exclude: list[str] | None, shard: str | None
) -> "LinkFilter | None":
    """The --include/--exclude/--shard filter, when any of them is given."""
    if not (include or exclude or shard):
        return None
    from .._filter import LinkFilter, parse_shard

    return LinkFilter(
        include=include or (),
        exclude=exclude or (),
        shard=parse_shard(shard) if shard else None,
    )


def _result_cache(cache: str | None, max_cache_age: str, env: Env) -> "ResultCache | None":
    """The --cache file, loaded (a damaged one is a warning, not an error)."""
    if cache is None:
        return None
    from .._cache import ResultCache, parse_duration

    result_cache = ResultCache.load(Path(cache), max_age=parse_duration(max_cache_age))
    if result_cache.warning:
        env.stderr.write(f"fetchpool: warning: {result_cache.warning}\n")
    return result_cache


def _engine_checks(
    engine: Engine,
    ray_address: str | None,
    output_dir: str | None,
    partition_size: int,
    *,
    extract: bool,
    recursive: bool,
    cache: bool,
) -> "OutputDir | None":
    """Check --engine, --ray-address, --partition-size; return the --output-dir, opened."""
    if partition_size < 1:
        raise UsageError(f"invalid --partition-size {partition_size}: must be at least 1")
    if engine is Engine.RAY:
        _require_ray(extract=extract, recursive=recursive, cache=cache)
    if ray_address is not None and engine is not Engine.RAY:
        raise UsageError("--ray-address needs --engine ray")
    if output_dir is None:
        return None
    # Link checking's results are per place and a crawl's pages are found by fetching
    # them: neither is a list of URLs that partitions can be resumed from.
    if extract or recursive:
        option = "--extract" if extract else "--recursive"
        raise UsageError(f"--output-dir does not work with {option} yet")
    from .._partition import OutputDir

    return OutputDir(Path(output_dir), size=partition_size, buckets=defaults.PARTITION_BUCKETS)


def _link_checking_checks(
    paths: Sequence[str],
    *,
    extract: bool,
    recursive: bool,
    dump: bool,
    root_dir: str | None,
    crawl_options: bool,
) -> bool:
    """Check the link-checking and crawl options together; return whether the inputs are
    documents (--extract, which --recursive implies)."""
    if recursive:
        from .._source import is_url_argument

        if dump:
            raise UsageError("--dump cannot list a crawl: its pages must be fetched to find them")
        if not any(map(is_url_argument, paths)):
            raise UsageError("--recursive needs a start URL (http:// or https://) to crawl")
        extract = True
    elif crawl_options:
        raise UsageError("--max-depth, --max-pages, --sitemap and --ignore-robots need --recursive")
    if (root_dir is not None or dump) and not extract:
        option = "--root-dir" if root_dir is not None else "--dump"
        raise UsageError(f"{option} needs --extract (it is about the links of documents)")
    if root_dir is not None and not os.path.isdir(root_dir):
        raise UsageError(f"invalid --root-dir {root_dir!r}: not a directory")
    return extract


def _link_options(
    paths: Sequence[str],
    link_filter: "LinkFilter | None",
    *,
    root_dir: str | None,
    check_fragments: bool,
    recursive: bool,
    max_depth: int | None,
    max_pages: int,
    sitemap: bool,
    ignore_robots: bool,
) -> "LinkOptions":
    """How links are checked, and with --recursive which pages of a crawl are followed."""
    from .._links import LinkOptions

    crawl = None
    if recursive:
        from .._crawl import CrawlRules
        from .._source import is_url_argument

        crawl = CrawlRules(
            filter(is_url_argument, paths),
            max_depth=max_depth,
            max_pages=max_pages,
            robots=not ignore_robots,
            sitemap=sitemap,
        )
    return LinkOptions(
        root_dir=root_dir, check_fragments=check_fragments, link_filter=link_filter, crawl=crawl
    )


def _run(
    settings: Settings,
    plan: RunPlan,
    env: Env,
    fmt: OutputFormat,
    *,
    live: bool,
    quiet: bool,
    failures_only: bool,
) -> int:
    """Run the plan with the output, the live displays and the summary `fmt` asks for."""
    stats = RunStats()
    show_progress = fmt is not OutputFormat.TABLE and live and env.progress_allowed
    status = execute(
        settings,
        plan,
        make_sink=lambda view: _make_sink(
            fmt,
            view,
            stats,
            failures_only=failures_only,
            env=env,
            live=live,
            summary=not quiet,
            places=plan.extract,
        ),
        stats=stats,
        env=env,
        make_display=(lambda view: _make_progress(view, stats)) if show_progress else None,
        count_total=show_progress or (fmt is OutputFormat.TABLE and live),
    )
    if fmt is not OutputFormat.TABLE and not quiet:
        from .summary import format_summary

        env.stderr.write(format_summary(stats) + "\n")
        env.stderr.flush()
    return int(status)


def _dump(
    settings: Settings,
    inputs: Sequence[Input],
    links: "LinkOptions | None",
    env: Env,
    max_time: float | None,
) -> int:
    """--dump: print every place of every link that would be checked; check none.

    Page URLs among the inputs are still fetched (their links are in them); nothing else is.
    """
    writer = _DumpWriter(env)
    stats = RunStats()
    sink = _PageFailures(env, writer)
    plan = RunPlan(inputs=inputs, extract=True, links=links, dump=writer.write, max_time=max_time)
    status = execute(settings, plan, make_sink=lambda view: sink, stats=stats, env=env)
    writer.flush()
    for failure in sink.failures:
        why = failure.error or f"HTTP {failure.status}"
        env.stderr.write(
            f"fetchpool: warning: cannot read page {failure.url}: {why}; its links are not listed\n"
        )
    if status is ExitStatus.FAILURES and not sink.failures:
        return int(status)  # an input that could not be read to the end
    # The contract: --dump exits 0, a page that could not be read included (warned above).
    return int(ExitStatus.OK if status is ExitStatus.FAILURES else status)


class _DumpWriter:
    """`--dump`'s lines on standard output, written in blocks (a million places are a million
    lines); a closed pipe (`| head`) ends the run at once and quietly, as the contract asks."""

    BLOCK = 64 * 1024

    def __init__(self, env: Env) -> None:
        self._stdout = env.stdout
        self._lines: list[str] = []
        self._size = 0

    def write(self, url: str, source: str, line: int) -> None:
        from .literal import printable

        text = f"{printable(url)}\t{printable(source)}\t{line}\n"
        self._lines.append(text)
        self._size += len(text)
        if self._size >= self.BLOCK:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = "".join(self._lines).encode("utf-8", "replace")
        self._lines.clear()
        self._size = 0
        try:
            self._stdout.write(data)
            self._stdout.flush()
        except BrokenPipeError:
            # Nothing more can be said: leave now, as a closed pipe would (141), quietly.
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
            os._exit(ExitStatus.OUTPUT_CLOSED)


class _PageFailures:
    """The sink of a `--dump` run: only page inputs are fetched; their failures are kept."""

    def __init__(self, env: Env, writer: _DumpWriter) -> None:
        self._env = env
        self._writer = writer
        self.failures: list[Result] = []

    def start(self) -> None:
        pass

    def write(self, result: Result) -> None:
        if not result.ok:
            self.failures.append(result)

    def flush(self) -> None:
        self._writer.flush()  # a page's links are out as soon as it is read

    def finish(self) -> None:
        pass


def _require_h2() -> None:
    try:
        import h2  # noqa: F401
    except ImportError:
        raise UsageError("--http2 needs the h2 package: pip install 'fetchpool[http2]'") from None


def _require_ray(*, extract: bool, recursive: bool, cache: bool) -> None:
    """`--engine ray` needs the `ray` extra, and works on lists of URLs without --cache."""
    import importlib.util  # only here: a plain run does not look for Ray

    if importlib.util.find_spec("ray") is None:
        raise UsageError("--engine ray needs Ray: pip install 'fetchpool[ray]'")
    if extract or recursive:
        option = "--extract" if extract else "--recursive"
        raise UsageError(f"--engine ray does not work with {option} yet")
    if cache:
        raise UsageError("--engine ray does not work with --cache yet")


def _make_sink(
    fmt: OutputFormat,
    view: RunView,
    stats: RunStats,
    *,
    failures_only: bool,
    env: Env,
    live: bool = True,
    summary: bool = True,
    places: bool = False,
) -> ResultSink:
    if fmt is OutputFormat.TABLE:
        from .table import TableSink
        from .terminal import stdout_console

        return TableSink(
            console=stdout_console(),
            view=view,
            stats=stats,
            failures_only=failures_only,
            live=live,
            summary=summary,
            places=places,
        )
    if fmt is OutputFormat.GITHUB:
        from .sinks import GithubSink
        from .summary import format_summary

        def warn(message: str) -> None:
            env.stderr.write(f"fetchpool: warning: {message}\n")

        return GithubSink(
            env.stdout,
            summary=lambda: format_summary(stats).splitlines()[0],
            step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None,
            warn=warn,
        )
    if fmt in (OutputFormat.MARKDOWN, OutputFormat.SARIF):
        from .summary import format_summary

        return DocumentSink(
            env.stdout,
            fmt.value,
            summary=lambda: format_summary(stats).splitlines()[0],
            version=__version__,
        )
    line, header = FORMATTERS[fmt.value]
    return LineSink(env.stdout, line, header=header, failures_only=failures_only)


def _make_progress(view: RunView, stats: RunStats) -> Display:
    from .progress import ProgressLine
    from .terminal import stderr_console

    return ProgressLine(console=stderr_console(), view=view, stats=stats)


def _raise_open_file_limit(workers: int) -> None:
    """Raise the soft descriptor limit toward the hard one, as most network tools do: each
    worker may hold a socket, and the transport sizes its budget of idle keep-alive
    connections (one per host over hundreds of hosts) to what the limit leaves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = workers * 2 + 64  # below this, connections may fail
    target = max(wanted, 65536)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    new = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < wanted:
        print(
            f"fetchpool: warning: the open-file limit ({new}) is low for {workers} workers; "
            "some connections may fail (raise it with `ulimit -n`)",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the command and exit with its status."""
    from .pyconfig import default_map_for, load_pyproject_options

    command_ = typer.main.get_command(app)
    try:
        _, options = load_pyproject_options(Path.cwd(), command_)
        status = command_.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name="fetchpool",
            standalone_mode=False,
            default_map=default_map_for(command_, options),  # the command line still wins
        )
    except UsageError as exc:
        print(f"fetchpool: error: {usage_message(exc)}", file=sys.stderr)
        sys.exit(ExitStatus.USAGE)
    except typer.TyperException as exc:
        message = " ".join(exc.format_message().split())
        print(f"fetchpool: error: {message}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", ExitStatus.USAGE))
    except KeyboardInterrupt:
        sys.exit(ExitStatus.SIGINT)
    except BrokenPipeError:
        os._exit(ExitStatus.OUTPUT_CLOSED)
    if argv is not None:
        sys.exit(int(status or 0))
    # The console script: every result, report and cache file is written and closed, so
    # skip the interpreter's teardown (freeing each kept connection, TLS object and module
    # costs about 20 ms after a run over hundreds of hosts) and leave now.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(int(status or 0))
