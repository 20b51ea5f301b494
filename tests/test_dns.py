"""Name resolution end to end, as the contract promises it ("The real network" -> DNS, and
"Ending a run"): fetchpool runs inside network namespaces of the tests' own (tests/netns.py),
against a real DNS server that can be slow, never answer, or say NXDOMAIN or SERVFAIL
(tests/dnsserver.py), and fetches from an HTTP server it reaches by name.

Each test is named after the promise it checks and runs with both resolver backends: the
system's getaddrinfo on threads (the default, FETCHPOOL_RESOLVER unset) and c-ares
(FETCHPOOL_RESOLVER=c-ares).
Where the event loop matters (a stuck lookup must neither starve the others nor keep the
process alive), the library runs too, in a small script under `asyncio.run` and under
`uvloop.run`; the CLI itself runs on uvloop. Runs that go on at once each get a namespace, and
so a DNS server, of their own: one name server taking every run's bursts would test itself.

Root and iproute2 needed: skipped without them, failed instead under CI.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from clihelpers import FETCHPOOL, cli_env, wait_signal_handlers
from dnsserver import DNSServerProcess
from netns import NetNS, NetnsHTTPServer, require_netns

BACKENDS = ["c-ares", "system"]
RUNNERS = ["cli", "asyncio", "uvloop"]  # the CLI (on uvloop), the library on each loop
WAIT = 20.0  # bound on any run; the slowest here needs about 4 s

# The library, as a user would run it: URLs on stdin, one JSON line per result, flushed.
LIBRARY = """
import asyncio, json, sys
import fetchpool

async def main():
    urls = [line.strip() for line in sys.stdin if line.strip()]
    async for result in fetchpool.fetch(urls, **json.loads(sys.argv[2])):
        kind = None if result.kind is None else result.kind.value
        record = {"url": result.url, "outcome": result.outcome.value, "kind": kind,
                  "error": result.error, "elapsed": result.elapsed}
        print(json.dumps(record), flush=True)

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


@pytest.fixture(autouse=True)
def _resolver_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # netns.popen starts from this process's environment: "system" means really unset.
    monkeypatch.delenv("FETCHPOOL_RESOLVER", raising=False)


@pytest.fixture
def namespaces() -> Iterator[Callable[[], NetNS]]:
    """Makes more namespaces, for runs that go on at once; all removed at the end."""
    require_netns()
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(NetNS())


def asked_per_lookup(backend: str, lookups: int) -> range:
    """The queries of one type that `lookups` lookups cost with resolv.conf's `attempts:1`:
    one each for glibc; up to three more each for c-ares, whose tries the resolver raises by
    three so that its short adaptive waits end in a retransmit rather than a failure."""
    if backend == "system":
        return range(lookups, lookups + 1)
    return range(lookups, 4 * lookups + 1)


def resolver_env(backend: str) -> dict[str, str]:
    env = cli_env()
    env.pop("FETCHPOOL_RESOLVER", None)
    if backend == "c-ares":
        env["FETCHPOOL_RESOLVER"] = "c-ares"
    return env


def command(
    runner: str,
    *,
    workers: int = 8,
    timeout: float = 10,
    retries: int = 0,
    options: Sequence[str] = (),
) -> list[str]:
    """fetchpool's CLI (`runner` "cli", jsonl out) or the library script on a given loop."""
    if runner == "cli":
        limits = ["--workers", str(workers), "--timeout", f"{timeout:g}", "--retries", str(retries)]
        return [*FETCHPOOL, "--format", "jsonl", "--no-progress", *limits, *options, "-"]
    assert not options, "the library script takes no CLI options"
    settings = {"workers": workers, "timeout": timeout, "retries": retries}
    return [sys.executable, "-c", LIBRARY, runner, json.dumps(settings)]


_run_ids = itertools.count()


class Running:
    """A command started inside a namespace, stdin a pipe: its stdout lines are timed as they
    arrive and its exit is timed, by a reader thread. Every wait is bounded."""

    def __init__(self, ns: NetNS, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.stderr_path = ns.tmp / f"stderr-{next(_run_ids)}.txt"
        with self.stderr_path.open("wb") as err:
            # cwd: the scratch directory, so `python -c` imports the installed fetchpool, not a
            # checkout that happens to be the current directory.
            self.process: subprocess.Popen[bytes] = ns.popen(
                argv,
                env=env,
                cwd=ns.tmp,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.lines: list[tuple[float, bytes]] = []
        self.exited_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line))
        self.process.wait()
        self.exited_at = time.monotonic()

    def send(self, lines: Sequence[str], *, close: bool = False) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write("".join(f"{line}\n" for line in lines).encode())
        stdin.flush()
        if close:
            stdin.close()

    def wait_lines(self, count: int, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            if time.monotonic() > deadline or not self._reader.is_alive():
                raise AssertionError(f"wanted {count} result lines, got {self.describe()}")
            time.sleep(0.01)

    def wait(self, timeout: float = WAIT) -> bool:
        """Wait for the exit; True when it came by itself, False when the process had to be
        killed after `timeout` seconds."""
        self._reader.join(timeout)
        if not self._reader.is_alive():
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reader.join(timeout)
        return False

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for _, line in self.lines]

    @property
    def exit_delay(self) -> float:
        """Seconds from the last result line to the process's exit."""
        assert self.lines, "no result line"
        assert self.exited_at is not None, "still running"
        return self.exited_at - self.lines[-1][0]

    def describe(self) -> str:
        out = b"".join(line for _, line in self.lines).decode(errors="replace")
        err = self.stderr_path.read_text(errors="replace")
        return f"exit {self.process.returncode}\nstdout: {out[-3000:]}\nstderr: {err[-3000:]}"


def run(
    ns: NetNS, argv: Sequence[str], backend: str, urls: Sequence[str], timeout: float = WAIT
) -> Running:
    """Run to the end with `urls` on stdin; fails when the run does not end by itself."""
    running = Running(ns, argv, resolver_env(backend))
    running.send(urls, close=True)
    assert running.wait(timeout), f"did not exit within {timeout} s; {running.describe()}"
    return running


def by_url(running: Running, urls: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The run's records by URL, after checking that each URL has exactly one."""
    records = running.records
    found = {record["url"]: record for record in records}
    assert len(records) == len(found), f"a URL reported twice; {running.describe()}"
    assert set(found) == set(urls), running.describe()
    return found


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


# -- a lookup that never answers --------------------------------------------------------------


def _mixed_urls(http: NetnsHTTPServer, healthy: int, blackholed: int) -> tuple[list[str], set[str]]:
    """`healthy` distinct healthy hosts with `blackholed` blackholed names spread among them
    (one every so often from the start, so dead lookups pile up all through the run)."""
    step = (healthy + blackholed) // blackholed
    urls: list[str] = []
    dead: set[str] = set()
    for i in range(healthy + blackholed):
        if i % step == 0 and len(dead) < blackholed:
            url = http.url_for(f"dead{len(dead)}.blackhole.test", f"/ok/{i}")
            dead.add(url)
        else:
            url = http.url_for(f"host{i}.test", f"/ok/{i}")
        urls.append(url)
    return urls, dead


BlackholeRuns = dict[tuple[str, str], tuple[Running, list[str], set[str]]]


@pytest.fixture(scope="module")
def blackhole_runs() -> Iterator[BlackholeRuns]:
    """The contract's numbers, 20 blackholed names among 500 healthy hosts, run once per
    backend and runner, all at once (each in a namespace of its own), and awaited.

    The resolver's timeout (5 s, glibc's default) outlives --timeout 3: a dead lookup outlasts
    its URL, as with the old loop.getaddrinfo(), where it held one of the event loop's few
    executor threads all that time and the healthy hosts' lookups queued behind it."""
    require_netns()
    started: BlackholeRuns = {}
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as stack:
        patch.delenv("FETCHPOOL_RESOLVER", raising=False)
        for backend, runner in itertools.product(BACKENDS, RUNNERS):
            ns = stack.enter_context(NetNS(resolver_timeout=5))
            ns.start_dns(delay=0.02)
            http = ns.start_http()
            urls, dead = _mixed_urls(http, healthy=500, blackholed=20)
            argv = command(runner, workers=50, timeout=3, retries=0)
            running = Running(ns, argv, resolver_env(backend))
            running.send(urls, close=True)
            started[backend, runner] = (running, urls, dead)
        deadline = time.monotonic() + WAIT
        for running, _, _ in started.values():
            # A run that lingers after its results is for the "Ending a run" test to judge.
            running.wait(max(0.0, deadline - time.monotonic()))
        yield started


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lookup_that_never_answers_costs_only_the_urls_of_its_own_host(
    backend: str, runner: str, blackhole_runs: BlackholeRuns
) -> None:
    running, urls, dead = blackhole_runs[backend, runner]
    records = {record["url"]: record for record in running.records}
    failed = {url for url, record in records.items() if record["outcome"] != "ok"}
    wrongly = sorted(failed - dead)
    examples = [(url, records[url]["kind"], records[url]["error"]) for url in wrongly[:3]]
    assert not wrongly, f"{len(wrongly)} healthy URLs failed, e.g. {examples}"
    records = by_url(running, urls)
    assert failed == dead, f"blackholed URLs that did not fail: {dead - failed}"
    for url in dead:
        assert records[url]["kind"] == "dns", records[url]
        assert records[url]["error"].startswith("DNS lookup timed out"), records[url]


# -- a lookup the deadline cuts off -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lookup_the_per_url_deadline_cuts_off_is_a_dns_failure(
    backend: str, netns: NetNS
) -> None:
    netns.set_resolver(timeout=10)  # the resolver would wait 10 s; the URL has 0.5
    dns = netns.start_dns()
    http = netns.start_http()
    stuck, fine = http.url_for("stuck.blackhole.test", "/ok/1"), http.url_for("fine.test", "/ok/2")
    running = run(netns, command("cli", workers=2, timeout=0.5), backend, [stuck, fine])
    records = by_url(running, [stuck, fine])
    record = records[stuck]
    assert (record["outcome"], record["kind"]) == ("fail", "dns"), record
    assert record["error"] == "DNS lookup timed out (no answer in 0.5 s)"
    assert 0.45 <= record["elapsed"] < 1.5
    assert records[fine]["outcome"] == "ok"
    assert dns.queries("stuck.blackhole.test", "A") == 1


# -- ending a run while a lookup is stuck -----------------------------------------------------

# How each run ends, and the outcome and exit status of its one (stuck) URL.
ENDINGS: dict[str, tuple[str, int]] = {
    "timeout": ("fail", 1),  # the CLI, --timeout 1
    "max-time": ("cancelled", 1),  # the CLI, --max-time 1
    "sigint": ("cancelled", 130),  # the CLI, SIGINT once the lookup is under way
    "asyncio": ("fail", 0),  # the library under asyncio.run, timeout 1
    "uvloop": ("fail", 0),  # the library under uvloop.run, timeout 1
}


def _ending_command(ending: str) -> list[str]:
    if ending == "timeout":
        return command("cli", timeout=1)
    if ending == "max-time":
        return command("cli", timeout=30, options=["--max-time", "1"])
    if ending == "sigint":
        return command("cli", timeout=30)
    return command(ending, timeout=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_process_exits_within_a_second_of_its_last_result_while_a_lookup_is_stuck(
    backend: str, namespaces: Callable[[], NetNS]
) -> None:
    name = "stuck.blackhole.test"
    started: dict[str, tuple[Running, DNSServerProcess, str]] = {}
    for ending in ENDINGS:
        ns = namespaces()
        ns.set_resolver(timeout=10)  # the lookup would hold on for 10 s
        dns = ns.start_dns()
        url = ns.start_http().url_for(name, "/ok/1")
        running = Running(ns, _ending_command(ending), resolver_env(backend))
        running.send([url], close=True)
        started[ending] = (running, dns, url)
    running, dns, _ = started["sigint"]
    wait_signal_handlers(running.process)
    wait_until(lambda: dns.queries(name) > 0, "the lookup started")
    running.process.send_signal(signal.SIGINT)
    for ending, (running, _, url) in started.items():
        exited = running.wait(WAIT)
        assert exited, f"{ending}: did not exit within {WAIT} s; {running.describe()}"
        [record] = by_url(running, [url]).values()
        outcome, status = ENDINGS[ending]
        assert record["outcome"] == outcome, (ending, record)
        if outcome == "fail":
            assert record["kind"] == "dns", (ending, record)
        assert running.process.returncode == status, (ending, running.describe())
        assert running.exit_delay < 1.0, f"{ending}: exited {running.exit_delay:.2f} s late"


# -- one lookup per host, for the whole run ---------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_urls_of_one_host_share_one_lookup_reused_for_the_rest_of_the_run(
    backend: str, netns: NetNS
) -> None:
    netns.set_resolver(timeout=1)
    # TTL 0: c-ares's own cache keeps nothing, so the reuse seen here is fetchpool's.
    dns = netns.start_dns(delay=0.2, ttl=0)
    http = netns.start_http()
    first = [http.url_for("shared.test", f"/ok/a{i}") for i in range(50)]
    second = [http.url_for("shared.test", f"/ok/b{i}") for i in range(50)]
    # Connection: close, so every URL opens a connection of its own and needs the address.
    argv = command("cli", workers=50, options=["-H", "Connection: close"])
    running = Running(netns, argv, resolver_env(backend))
    running.send(first)
    running.wait_lines(len(first))
    after_first = dns.stats()
    running.send(second, close=True)
    assert running.wait(), running.describe()
    records = by_url(running, first + second)
    assert {record["outcome"] for record in records.values()} == {"ok"}, running.describe()
    assert http.connections_total == 100  # each URL looked its host up (or found it known)
    assert after_first.queries("shared.test", "A") == 1
    assert after_first.queries("shared.test", "AAAA") <= 1
    assert dns.stats().counts == after_first.counts  # the second batch asked nothing


# -- NXDOMAIN and SERVFAIL --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_nxdomain_is_a_dns_failure_asked_once_per_run(backend: str, netns: NetNS) -> None:
    dns = netns.start_dns(delay=0.05)
    http = netns.start_http()
    # 10 at once share the lookup; the 20 after them find its answer kept.
    urls = [http.url_for("gone.nx.test", f"/ok/{i}") for i in range(30)]
    running = run(netns, command("cli", workers=10), backend, urls)
    for record in by_url(running, urls).values():
        assert (record["outcome"], record["kind"]) == ("fail", "dns"), record
        assert record["error"] == "DNS: name or service not known", record
    assert dns.queries("gone.nx.test", "A") == 1
    assert dns.queries("gone.nx.test", "AAAA") <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_servfail_is_a_dns_failure_that_is_not_cached(backend: str, netns: NetNS) -> None:
    dns = netns.start_dns()
    http = netns.start_http()
    urls = [http.url_for("flaky.servfail.test", f"/ok/{i}") for i in range(2)]
    # One after the other: the second URL asks again, for a SERVFAIL may not last.
    running = run(netns, command("cli", workers=1), backend, urls)
    for record in by_url(running, urls).values():
        assert (record["outcome"], record["kind"]) == ("fail", "dns"), record
        assert record["error"].startswith("DNS: temporary failure in name resolution"), record
    assert dns.queries("flaky.servfail.test", "A") in asked_per_lookup(backend, lookups=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_servfail_is_asked_again_on_a_retry(backend: str, netns: NetNS) -> None:
    dns = netns.start_dns()
    url = netns.start_http().url_for("flaky.servfail.test", "/ok/1")
    running = run(netns, command("cli", retries=1), backend, [url])
    [record] = by_url(running, [url]).values()
    assert (record["outcome"], record["kind"]) == ("fail", "dns"), record
    assert record["attempts"] == 2, record
    assert dns.queries("flaky.servfail.test", "A") in asked_per_lookup(backend, lookups=2)


# -- the system's configuration ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_hosts_file_is_honoured(backend: str, netns: NetNS) -> None:
    # DNS would say 127.0.0.1 for both.test and nothing (REFUSED) for files-only.example; the
    # server listens on 127.0.0.2 only, where the hosts file points.
    netns.set_hosts({"files-only.example": "127.0.0.2", "both.test": "127.0.0.2"})
    dns = netns.start_dns()
    http = netns.start_http(host="127.0.0.2")
    urls = [http.url_for("files-only.example", "/ok/1"), http.url_for("both.test", "/ok/2")]
    running = run(netns, command("cli"), backend, urls)
    records = by_url(running, urls)
    assert {record["outcome"] for record in records.values()} == {"ok"}, running.describe()
    assert dns.total() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_resolv_conf_is_honoured(backend: str, netns: NetNS) -> None:
    # resolv.conf names 127.0.0.53, not the usual 127.0.0.1, and a search domain.
    netns.set_resolver(timeout=1, nameserver="127.0.0.53", search=["sub.test"])
    elsewhere = netns.start_dns()  # on 127.0.0.1:53, which resolv.conf does not name
    named = netns.start_dns(host="127.0.0.53")
    http = netns.start_http()
    urls = [http.url_for("full.test", "/ok/1"), http.url_for("short", "/ok/2")]
    running = run(netns, command("cli"), backend, urls)
    records = by_url(running, urls)
    assert {record["outcome"] for record in records.values()} == {"ok"}, running.describe()
    assert named.queries("full.test", "A") == 1
    assert named.queries("short.sub.test", "A") == 1  # short + the search domain
    assert elsewhere.total() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_resolv_conf_timeout_is_honoured_after_quick_answers(
    backend: str, netns: NetNS
) -> None:
    netns.set_resolver(timeout=2)  # glibc waits 2 s for an answer, whatever came before
    dns = netns.start_dns(delay=0.01, delays={"*.slow.test": 0.6})
    http = netns.start_http()
    quick = [http.url_for(f"quick{i}.test", f"/ok/{i}") for i in range(20)]
    slow = http.url_for("late.slow.test", "/ok/slow")
    # One at a time: the quick answers come first, then the slow one (well within 2 s).
    running = run(netns, command("cli", workers=1), backend, [*quick, slow])
    records = by_url(running, [*quick, slow])
    assert records[slow]["outcome"] == "ok", records[slow]
    assert {record["outcome"] for record in records.values()} == {"ok"}
    # glibc waits; c-ares retransmits after its short adaptive wait, within the same budget.
    assert dns.queries("late.slow.test", "A") in asked_per_lookup(backend, lookups=1)


# -- throughput -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_burst_of_new_names_loses_no_lookup(backend: str, netns: NetNS) -> None:
    # A smoke test, not a timing: 500 names at once through 200 workers must all resolve
    # (no query lost to an overflowing name server), each asked at most once per type.
    netns.set_resolver(timeout=1)
    dns = netns.start_dns(delay=0.02)
    http = netns.start_http()
    hosts = [f"burst{i}.test" for i in range(500)]
    urls = [http.url_for(host, f"/ok/{i}") for i, host in enumerate(hosts)]
    running = run(netns, command("cli", workers=200), backend, urls)
    records = by_url(running, urls)
    failed = [(url, r["kind"], r["error"]) for url, r in records.items() if r["outcome"] != "ok"]
    assert not failed, f"{len(failed)} failed, e.g. {failed[:3]}"
    stats = dns.stats()
    asked = {host: stats.queries(host) for host in hosts}
    assert max(asked.values()) <= 2, {host: n for host, n in asked.items() if n > 2}
