"""Checks of the test suite's own DNS server (tests/dnsserver.py), with dnslib as the client.

All on 127.0.0.1 in this process's network namespace; no root needed.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]
from dnsserver import DNSRules, DNSServerProcess, DNSTestServer

TIMEOUT = 5.0
MANY = [f"127.0.0.{i}" for i in range(1, 61)]  # 60 A records: over 512 bytes


def ask(
    port: int, name: str, qtype: str = "A", *, tcp: bool = False, timeout: float = TIMEOUT
) -> DNSRecord | None:
    """The server's reply, or None when it gave none within `timeout`."""
    try:
        data = DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=timeout)
    except TimeoutError:
        return None
    return DNSRecord.parse(data)


def answers(reply: DNSRecord | None) -> list[str]:
    assert reply is not None
    return [str(rr.rdata) for rr in reply.rr]


@pytest.fixture
def dns() -> Iterator[DNSTestServer]:
    addresses = {
        "b.test": ["127.0.0.2", "::1"],
        "*.many.test": MANY,
        "outside.example": "127.0.0.3",
    }
    with DNSTestServer(addresses=addresses, delays={"*.wait.test": 0.2}) as server:
        yield server


def test_zone_names_answer_loopback_a_and_nodata_for_aaaa(dns: DNSTestServer) -> None:
    reply = ask(dns.port, "a.test")
    assert reply is not None
    assert reply.header.rcode == RCODE.NOERROR
    assert answers(reply) == ["127.0.0.1"]
    nodata = ask(dns.port, "a.test", "AAAA")
    assert nodata is not None
    assert (nodata.header.rcode, answers(nodata)) == (RCODE.NOERROR, [])
    assert answers(ask(dns.port, "A.Test.", "TXT")) == []
    assert dns.queries("a.test") == 3
    assert dns.queries("A.TEST.", "aaaa") == 1
    assert dns.stats().counts == {("a.test", "A"): 1, ("a.test", "AAAA"): 1, ("a.test", "TXT"): 1}


def test_aaaa_on_request() -> None:
    with DNSTestServer(aaaa=True) as server:
        assert answers(ask(server.port, "a.test", "AAAA")) == ["::1"]
        assert answers(ask(server.port, "a.test", "A")) == ["127.0.0.1"]


def test_configured_addresses_by_name_and_pattern(dns: DNSTestServer) -> None:
    assert answers(ask(dns.port, "b.test")) == ["127.0.0.2"]
    assert answers(ask(dns.port, "b.test", "AAAA")) == ["::1"]
    assert answers(ask(dns.port, "x.many.test", tcp=True)) == MANY
    assert answers(ask(dns.port, "outside.example")) == ["127.0.0.3"]


def test_error_rcodes_and_refused_outside_the_zone(dns: DNSTestServer) -> None:
    for name, rcode in [
        ("x.nx.test", RCODE.NXDOMAIN),
        ("x.servfail.test", RCODE.SERVFAIL),
        ("example.com", RCODE.REFUSED),
    ]:
        reply = ask(dns.port, name)
        assert reply is not None, name
        assert (reply.header.rcode, answers(reply)) == (rcode, []), name


def test_blackhole_never_answers_but_counts(dns: DNSTestServer) -> None:
    assert ask(dns.port, "x.blackhole.test", timeout=0.3) is None
    assert ask(dns.port, "x.blackhole.test", tcp=True, timeout=0.3) is None
    assert dns.queries("x.blackhole.test", "A") == 2
    assert dns.tcp_total() == 1


def test_delays_by_pattern_are_concurrent_timers(dns: DNSTestServer) -> None:
    start = time.monotonic()
    assert answers(ask(dns.port, "a.test")) == ["127.0.0.1"]
    assert time.monotonic() - start < 0.15
    # Five queries at once for a name delayed 0.2 s: all answered after about 0.2 s, not 1 s.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        start = time.monotonic()
        for i in range(5):
            sock.sendto(DNSRecord.question(f"n{i}.wait.test").pack(), ("127.0.0.1", dns.port))
        replies = [DNSRecord.parse(sock.recv(4096)) for _ in range(5)]
        elapsed = time.monotonic() - start
    assert 0.19 <= elapsed < 0.9  # serial answers would take 1 s
    assert sorted(str(r.q.qname) for r in replies) == [f"n{i}.wait.test." for i in range(5)]
    rules = dns.rules
    assert rules.delay_for("x.slow.test") == 0.5  # the default slow zone stays
    assert rules.delay_for("x.wait.test") == 0.2
    assert rules.delay_for("a.test") == 0.0


def test_udp_truncates_what_tcp_carries(dns: DNSTestServer) -> None:
    reply = ask(dns.port, "x.many.test")
    assert reply is not None
    assert reply.header.tc == 1
    assert answers(ask(dns.port, "x.many.test", tcp=True)) == MANY
    assert dns.tcp_total() == 1


def test_reset_and_total(dns: DNSTestServer) -> None:
    ask(dns.port, "a.test")
    ask(dns.port, "b.test", "AAAA")
    assert dns.total() == 2
    dns.reset()
    assert dns.total() == 0
    assert dns.queries("a.test") == 0
    assert dns.stats().resets == 1
    assert dns.errors == []


def test_only_loopback_addresses_are_served() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DNSRules(addresses={"a.test": "192.0.2.1"})


def test_script_counts_into_its_stats_file(tmp_path: Path) -> None:
    rules = DNSRules(delay=0.05, addresses={"b.test": "127.0.0.2"})
    with DNSServerProcess.start(tmp_path / "dns.json", rules=rules) as server:
        start = time.monotonic()
        reply = ask(server.port, "b.test")
        assert time.monotonic() - start >= 0.05
        assert answers(reply) == ["127.0.0.2"]
        # Counted in the file before the answer left.
        assert server.queries("b.test", "A") == 1
        assert ask(server.port, "x.nx.test", tcp=True) is not None
        assert (server.total(), server.tcp_total()) == (2, 1)
        server.reset()
        assert server.total() == 0
        assert server.queries("b.test") == 0
    assert server.process.returncode == 0


def test_script_with_stats_on_demand_counts_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "dns.json"
    with DNSServerProcess.start(path, on_demand=True) as server:
        assert ask(server.port, "a.test") is not None
        assert ask(server.port, "b.test", "AAAA") is not None
        assert json.loads(path.read_text())["total"] == 0  # not written per query
        assert server.stats().counts == {("a.test", "A"): 1, ("b.test", "AAAA"): 1}
        server.reset()
        assert server.total() == 0
        # Fast: a burst of queries in a row, each answered, all counted.
        start = time.monotonic()
        for i in range(200):
            assert ask(server.port, f"h{i}.test") is not None
        assert time.monotonic() - start < 5
        assert server.total() == 200
    assert server.process.returncode == 0
    assert json.loads(path.read_text())["total"] == 200  # written at exit


def test_script_stops_by_itself(tmp_path: Path) -> None:
    server = DNSServerProcess.start(tmp_path / "dns.json", extra_args=["--max-seconds", "0.3"])
    try:
        assert server.process.wait(TIMEOUT) == 0
    finally:
        server.stop()
    assert QTYPE.A == 1  # dnslib's numbers, which the script's counts are named from
