"""Checks of the network namespace fixture (tests/netns.py): real name resolution through the
namespace's DNS server, its hosts file, an HTTP server reached by name, isolation, clean-up.

Root and iproute2 needed: skipped without them, failed instead under CI.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import trustme
from clihelpers import FETCHPOOL, cli_env, parse_jsonl
from netns import ETC_NETNS, NETNS_DIR, NetNS, NetnsError, _remove_stale, find_ip, require_netns

FETCH = """
import sys, urllib.request
context = None
if len(sys.argv) > 2:
    import ssl
    context = ssl.create_default_context(cafile=sys.argv[2])
with urllib.request.urlopen(sys.argv[1], timeout=5, context=context) as response:
    print(response.status, response.read().decode().strip())
"""


def test_name_resolves_through_the_dns_server_after_its_delay(netns: NetNS) -> None:
    dns = netns.start_dns(delay=0.3)
    found = netns.resolve("a.test", socket.AF_INET)
    assert (found.addresses, found.error) == (("127.0.0.1",), None)
    assert 0.3 <= found.elapsed < 1.5
    assert dns.queries("a.test", "A") == 1
    # The plain C library tool sees the same (A and AAAA asked, NODATA for AAAA).
    result = netns.run(["getent", "ahosts", "b.test"], timeout=10)
    assert result.returncode == 0, result
    assert {line.split()[0] for line in result.stdout.splitlines()} == {"127.0.0.1"}
    assert dns.queries("b.test") >= 1


def test_blackholed_name_times_out_after_the_resolver_timeout(netns: NetNS) -> None:
    netns.set_resolver(timeout=1)
    dns = netns.start_dns()
    found = netns.resolve("x.blackhole.test", socket.AF_INET)
    assert (found.addresses, found.error) == ((), socket.EAI_AGAIN)
    assert 0.9 <= found.elapsed < 2.5
    assert dns.queries("x.blackhole.test", "A") == 1


def test_nxdomain_and_servfail(netns: NetNS) -> None:
    dns = netns.start_dns()
    nx = netns.resolve("x.nx.test", socket.AF_INET)
    assert (nx.addresses, nx.error) == ((), socket.EAI_NONAME)
    servfail = netns.resolve("x.servfail.test", socket.AF_INET)
    assert (servfail.addresses, servfail.error) == ((), socket.EAI_AGAIN)
    assert max(nx.elapsed, servfail.elapsed) < 0.9  # answered, not timed out
    assert dns.queries("x.nx.test") == 1
    assert dns.queries("x.servfail.test") >= 1


def test_hosts_entry_resolves_without_a_dns_query(netns: NetNS) -> None:
    netns.set_hosts({"h.test": "127.0.0.9"})
    dns = netns.start_dns()
    found = netns.resolve("h.test", socket.AF_INET)
    assert (found.addresses, found.error) == (("127.0.0.9",), None)
    assert netns.resolve("localhost", socket.AF_INET).addresses == ("127.0.0.1",)
    assert dns.total() == 0


def test_resolver_configuration_names_the_server_and_the_search_domains(netns: NetNS) -> None:
    netns.set_resolver(timeout=1, nameserver="127.0.0.53", search=["sub.test"])
    default = netns.start_dns()  # 127.0.0.1:53, not in resolv.conf any more
    named = netns.start_dns(host="127.0.0.53", addresses={"short.sub.test": "127.0.0.7"})
    found = netns.resolve("short", socket.AF_INET)
    assert (found.addresses, found.error) == (("127.0.0.7",), None)
    assert named.queries("short.sub.test", "A") == 1
    assert default.total() == 0
    with pytest.raises(ValueError, match="loopback"):
        netns.set_resolver(nameserver="192.0.2.1")


def test_http_server_inside_is_reached_by_name(netns: NetNS) -> None:
    dns = netns.start_dns(addresses={"c.test": "127.0.0.1"})
    server = netns.start_http()
    url = server.url_for("a.test", "/ok/python")
    result = netns.run([sys.executable, "-c", FETCH, url], timeout=10)
    assert (result.returncode, result.stdout) == (0, "200 ok\n"), result
    # fetchpool itself, run inside like a test of its resolver would run it.
    url = server.url_for("c.test", "/ok/fetchpool")
    command = [*FETCHPOOL, "--format", "jsonl", "--no-progress", "-"]
    result = netns.run(command, input=url + "\n", env=cli_env(), timeout=20)
    assert result.returncode == 0, result
    [record] = parse_jsonl(result.stdout.encode())
    assert (record["url"], record["outcome"], record["status"]) == (url, "ok", 200)
    assert server.hits("/ok/") == 2
    assert dns.queries("a.test", "A") == 1
    assert dns.queries("c.test") >= 1
    # The server is in the namespace only: this process cannot connect to it.
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", server.port), 1),
    ):
        pass


def test_https_server_inside_with_a_trustme_certificate(
    netns: NetNS, tls_ca: trustme.CA, tls_ca_file: Path
) -> None:
    netns.start_dns()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("a.test").configure_cert(context)
    server = netns.start_http(ssl_context=context)
    url = server.url_for("a.test", "/ok/tls")
    result = netns.run([sys.executable, "-c", FETCH, url, str(tls_ca_file)], timeout=10)
    assert (result.returncode, result.stdout) == (0, "200 ok\n"), result


def _ip() -> str:
    ip = find_ip()
    assert ip is not None
    return ip


def _gone(name: str) -> bool:
    listed = subprocess.run([_ip(), "netns", "list"], capture_output=True, text=True, check=True)
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    return name not in names and not (NETNS_DIR / name).exists() and not (ETC_NETNS / name).exists()


@pytest.mark.parametrize("fail", [False, True], ids=["clean-exit", "exception"])
def test_exit_removes_the_namespace_and_everything_started_inside(fail: bool) -> None:
    require_netns()
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext(), NetNS() as ns:
        dns = ns.start_dns()
        sleeper = ns.popen(["sleep", "60"])
        http = ns.start_http()
        name = ns.name
        assert (ETC_NETNS / name / "resolv.conf").exists()
        if fail:
            raise RuntimeError("the test failed")
    assert _gone(name)
    assert sleeper.poll() is not None
    assert dns.process.poll() is not None
    assert http._thread is None  # stopped and joined


def _add_link(ns_name: str, link: str) -> None:
    """An extra interface inside: a dummy, else an empty bridge (no dummy module here)."""
    for kind in ("dummy", "bridge"):
        added = subprocess.run(
            [_ip(), "-n", ns_name, "link", "add", link, "type", kind], capture_output=True
        )
        if added.returncode == 0:
            return
    raise AssertionError(f"cannot add a link in {ns_name}: {added.stderr!r}")


def test_a_namespace_with_another_interface_is_refused(netns: NetNS) -> None:
    _add_link(netns.name, "d0")
    with pytest.raises(NetnsError, match="d0"):
        netns.run(["true"])
    with pytest.raises(NetnsError, match="d0"):
        netns.start_dns()
    with pytest.raises(NetnsError, match="d0"):
        netns.start_http()


def test_set_up_refuses_a_namespace_with_another_interface() -> None:
    require_netns()

    class WithLink(NetNS):
        def set_hosts(self, entries: Mapping[str, str | Sequence[str]]) -> None:
            super().set_hosts(entries)
            _add_link(self.name, "d1")

    ns = WithLink()
    with pytest.raises(NetnsError, match="d1"), ns:
        pass
    assert _gone(ns.name)


def test_a_namespace_left_by_a_dead_test_process_is_removed() -> None:
    require_netns()
    ip = _ip()
    dead = subprocess.Popen(["true"])
    dead.wait(5)
    name = f"fptest-{dead.pid}-0"
    subprocess.run([ip, "netns", "add", name], check=True)
    (ETC_NETNS / name).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    sleeper = subprocess.Popen([ip, "netns", "exec", name, "sleep", "60"])
    try:
        _remove_stale(ip, min_age=0)
        assert sleeper.wait(5) == -9
        assert _gone(name)
        assert not scratch.exists()
    finally:
        sleeper.kill()
        sleeper.wait(5)
        subprocess.run([ip, "netns", "delete", name], capture_output=True, check=False)


def test_resolver_files_are_the_ones_inside(netns: NetNS) -> None:
    netns.set_resolver(timeout=3, options=["edns0"])
    result = netns.run(["cat", "/etc/resolv.conf", "/etc/nsswitch.conf"], check=True)
    lines = result.stdout.splitlines()
    assert lines[:2] == ["nameserver 127.0.0.1", "options timeout:3 attempts:1 edns0"]
    assert "hosts: files dns" in lines
    links = json.loads(netns.run(["ip", "-j", "link", "show"], check=True).stdout)
    assert [(link["ifname"], "UP" in link["flags"]) for link in links] == [("lo", True)]
