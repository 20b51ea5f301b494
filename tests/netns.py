"""Network namespaces for end-to-end tests of name resolution (Linux, root, iproute2).

`NetNS` creates a namespace of its own (`fptest-<pid>-<n>`) whose only interface is `lo`, so
nothing in it can reach anything but itself; writes `/etc/netns/<name>/resolv.conf`
(`nameserver 127.0.0.1`, `options timeout:T attempts:1`), `hosts` (localhost plus given
entries) and `nsswitch.conf` (the machine's, with `hosts: files dns`), which `ip netns exec`
bind-mounts over /etc for each command it runs; and on exit kills every process it started,
stops its servers, and removes the namespace and /etc/netns/<name>, also after a failure.
Before it starts any command or server it checks again that `lo` is the only interface, and
refuses (NetnsError) otherwise.

Inside it:

- `ns.run([...])` / `ns.popen([...])`: a command via `ip netns exec`, so it resolves names
  through the files above, i.e. through the namespace's own DNS server on 127.0.0.1:53.
- `ns.start_dns(...)`: tests/dnsserver.py as a subprocess on 127.0.0.1:53, read through its
  stats file (`DNSServerProcess`).
- `ns.start_http(...)`: a tests/httpserver.py `HTTPTestServer` reachable at
  `http://<any>.test:<port>/...` from inside.

Why the HTTP server runs in this process, in a thread that has entered the namespace with
setns(2), rather than as a subprocess: a network namespace is a per-thread attribute and a
socket lives in the namespace of the thread that created it, so the server's own thread only
has to call setns before it binds; everything else stays as it is. The test then has the
server object itself: its TLS context (a trustme certificate, no key files), its counters
(`hits`, `requests`), and no port to parse from a child's output nor a child to reap. The
DNS server, on the other hand, runs as a subprocess: it must also work as a standalone script,
and its answer delays are then not shared with the test process's GIL.

Use the `netns` fixture of tests/conftest.py; a test that makes a `NetNS` itself calls
`require_netns()` first (skip without root or `ip`, fail instead when CI is set).

Processes started here get SIGTERM then SIGKILL (their whole process group) at exit; the DNS
script also exits by itself when its parent dies. A namespace left behind by a test process
that was killed outright is removed by the next `NetNS` (its pid is gone, and it is older than
5 minutes).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnsserver import DNSRules, DNSServerProcess
from httpserver import HTTPTestServer

__all__ = [
    "NetNS",
    "NetnsError",
    "NetnsHTTPServer",
    "Resolution",
    "enter_netns",
    "find_ip",
    "netns_unavailable_reason",
    "require_netns",
]

NETNS_DIR = Path("/var/run/netns")  # where `ip netns add` mounts a namespace
ETC_NETNS = Path("/etc/netns")
PREFIX = "fptest"
_CLONE_NEWNET = 0x40000000
_STALE_AGE = 300.0  # seconds
_STOP_TIMEOUT = 5.0
_RUN_TIMEOUT = 30.0
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_counter = itertools.count()

_RESOLVE = """
import json, socket, sys, time
start = time.monotonic()
try:
    infos = socket.getaddrinfo(sys.argv[1], 80, int(sys.argv[2]), socket.SOCK_STREAM)
    found, error = sorted({info[4][0] for info in infos}), None
except socket.gaierror as exc:
    found, error = [], exc.errno
print(json.dumps({"addresses": found, "error": error, "elapsed": time.monotonic() - start}))
"""


@dataclass(frozen=True)
class Resolution:
    """What getaddrinfo gave inside: the addresses, or the gaierror number (socket.EAI_NONAME
    for NXDOMAIN, socket.EAI_AGAIN for a time-out or SERVFAIL), and how long it took (s)."""

    addresses: tuple[str, ...]
    error: int | None
    elapsed: float


class NetnsError(RuntimeError):
    """The namespace could not be set up, or is not (any longer) isolated."""


def find_ip() -> str | None:
    """The `ip` command (iproute2), also in /usr/sbin or /sbin when PATH lacks them."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which("ip", path=path)


def netns_unavailable_reason() -> str | None:
    """Why network namespace tests cannot run here, or None when they can."""
    if not hasattr(os, "geteuid") or not Path("/proc/self/ns/net").exists():
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns add, port 53)"
    if find_ip() is None:
        return "network namespace tests need `ip` (iproute2)"
    return None


def require_netns() -> None:
    """Skip the calling test when namespaces cannot be used here; fail it instead when the
    CI environment variable is set (CI runs as root and must run these tests)."""
    import pytest

    reason = netns_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the network namespace tests: {reason}")
    pytest.skip(reason)


def enter_netns(path: str | os.PathLike[str]) -> None:
    """Move the calling thread (only it) into the network namespace mounted at `path`.

    Sockets this thread creates afterwards belong to that namespace, whichever thread uses
    them later. Python 3.11 has no os.setns, hence libc's."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


class NetnsHTTPServer(HTTPTestServer):
    """An `HTTPTestServer` whose thread enters a network namespace before it binds: reachable
    from inside that namespace only. `url_for("a.test", "/ok")` gives a URL by name."""

    def __init__(
        self,
        netns_path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host=host, ssl_context=ssl_context)
        self.netns_path = netns_path

    def url_for(self, name: str, path: str = "/") -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{name}:{self.port}{path}"

    def _run(self) -> None:
        try:
            enter_netns(self.netns_path)
        except OSError as exc:
            self._startup_error = exc
            self._ready.set()
            return
        super()._run()


def _hosts_lines(entries: Mapping[str, str | Sequence[str]]) -> list[str]:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for name, value in entries.items():
        for address in (value,) if isinstance(value, str) else value:
            if not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"{name} -> {address}: hosts entries must be loopback addresses")
            lines.append(f"{address}\t{name}")
    return lines


class NetNS:
    """A network namespace of this test's own; a context manager. See the module docstring.

    Args:
        resolver_timeout: resolv.conf `options timeout:` in whole seconds (attempts:1).
        hosts: extra /etc/hosts entries inside, name -> address(es), loopback only.
        resolver_options: more resolv.conf options, e.g. ["use-vc"] or ["edns0"].
    """

    def __init__(
        self,
        *,
        resolver_timeout: int = 2,
        hosts: Mapping[str, str | Sequence[str]] | None = None,
        resolver_options: Sequence[str] = (),
    ) -> None:
        ip = find_ip()
        if ip is None:
            raise NetnsError("`ip` (iproute2) not found")
        self.ip = ip
        self.name = ""
        self.resolver_timeout = resolver_timeout
        self._hosts = dict(hosts or {})
        self._resolver_options = list(resolver_options)
        self._processes: list[subprocess.Popen[Any]] = []
        self._http: list[NetnsHTTPServer] = []
        self._dns: list[DNSServerProcess] = []
        self._tmp: Path | None = None
        self._created = False

    # -- paths ------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The namespace's mount point (for setns)."""
        return NETNS_DIR / self.name

    @property
    def etc_dir(self) -> Path:
        return ETC_NETNS / self.name

    @property
    def tmp(self) -> Path:
        """A scratch directory removed at exit (stats files, logs)."""
        assert self._tmp is not None, "namespace not entered"
        return self._tmp

    # -- set-up and tear-down ---------------------------------------------------------------

    def __enter__(self) -> NetNS:
        for target in ("resolv.conf", "hosts"):
            if not (Path("/etc") / target).exists():
                raise NetnsError(f"/etc/{target} is missing: `ip netns exec` cannot bind over it")
        _remove_stale(self.ip)
        try:
            self._create()
            self._tmp = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
            self._ip("-n", self.name, "link", "set", "lo", "up")
            self.etc_dir.mkdir(parents=True, exist_ok=True)
            self.set_resolver(self.resolver_timeout, self._resolver_options)
            self.set_hosts(self._hosts)
            self._write_nsswitch()
            self.check_isolated()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _create(self) -> None:
        existing = set(self.list_namespaces(self.ip))
        while True:
            name = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
            if name not in existing and not (ETC_NETNS / name).exists():
                break
        self.name = name
        self._ip("netns", "add", name)
        self._created = True

    def close(self) -> None:
        """Stop everything started inside and delete the namespace; safe to call twice."""
        errors: list[str] = []
        for dns in self._dns:
            _try(errors, dns.stop)
        for server in self._http:
            _try(errors, server.stop)
        for process in self._processes:
            _try(errors, functools.partial(_kill_group, process))
        self._dns.clear()
        self._http.clear()
        self._processes.clear()
        if self._created:
            _try(errors, lambda: _kill_all_inside(self.ip, self.name))
            _try(errors, lambda: self._ip("netns", "delete", self.name))
            self._created = False
        if self.name:
            _try(errors, lambda: shutil.rmtree(self.etc_dir, ignore_errors=True))
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if errors:
            raise NetnsError("tearing down the namespace: " + "; ".join(errors))

    # -- configuration (takes effect for commands started afterwards) -----------------------

    def set_resolver(
        self,
        timeout: int = 2,
        options: Sequence[str] = (),
        *,
        nameserver: str = "127.0.0.1",
        search: Sequence[str] = (),
    ) -> None:
        """Rewrite resolv.conf: `nameserver` (a loopback address; see `start_dns(host=)`),
        `search` domains when given, `timeout:T attempts:1` and `options`."""
        if timeout < 1:
            raise ValueError("the resolver timeout is in whole seconds, at least 1")
        if not ipaddress.ip_address(nameserver).is_loopback:
            raise ValueError(f"{nameserver}: the name server must be a loopback address")
        self.resolver_timeout = timeout
        opts = " ".join([f"timeout:{timeout}", "attempts:1", *options])
        text = f"nameserver {nameserver}\n"
        if search:
            text += f"search {' '.join(search)}\n"
        text += f"options {opts}\n"
        (self.etc_dir / "resolv.conf").write_text(text)

    def set_hosts(self, entries: Mapping[str, str | Sequence[str]]) -> None:
        """Rewrite the hosts file: localhost, then `entries` (name -> loopback address(es))."""
        (self.etc_dir / "hosts").write_text("\n".join(_hosts_lines(entries)) + "\n")

    def _write_nsswitch(self) -> None:
        # Resolution inside must be hosts file then DNS only: no nss-resolve (which would ask
        # the machine's systemd-resolved over a Unix socket, outside the namespace), no mDNS.
        host_file = Path("/etc/nsswitch.conf")
        if not host_file.exists():
            return  # glibc's default for hosts is dns then files: fine
        lines = [
            line
            for line in host_file.read_text().splitlines()
            if not re.match(r"\s*hosts\s*:", line)
        ]
        lines.append("hosts: files dns")
        (self.etc_dir / "nsswitch.conf").write_text("\n".join(lines) + "\n")

    # -- isolation --------------------------------------------------------------------------

    def interfaces(self) -> list[str]:
        out = self._ip("-n", self.name, "-j", "link", "show").stdout
        return [str(link["ifname"]) for link in json.loads(out or "[]")]

    def check_isolated(self) -> None:
        """Raise NetnsError unless `lo` is the only interface (nothing can leave)."""
        others = [name for name in self.interfaces() if name != "lo"]
        if others:
            raise NetnsError(
                f"namespace {self.name} has interfaces besides lo: {', '.join(others)}; refusing"
            )

    # -- running things inside --------------------------------------------------------------

    def popen(
        self,
        command: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start `command` inside (its own process group; killed at exit if still running).

        Its environment is this process's without proxy variables, plus `env`; the other
        keyword arguments go to subprocess.Popen."""
        self.check_isolated()
        full_env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
        full_env.update(env or {})
        process = subprocess.Popen(
            [self.ip, "netns", "exec", self.name, *map(str, command)],
            env=full_env,
            start_new_session=True,
            **kwargs,
        )
        self._processes.append(process)
        return process

    def run(
        self,
        command: Sequence[str | os.PathLike[str]],
        *,
        input: str | None = None,
        timeout: float = _RUN_TIMEOUT,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` inside to completion, stdout and stderr captured as text. After
        `timeout` seconds its process group is killed and TimeoutExpired raised."""
        process = self.popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise
        finally:
            if process.returncode is not None:
                self._processes.remove(process)
        args = [str(c) for c in command]
        result = subprocess.CompletedProcess(args, process.returncode, out, err)
        if check:
            result.check_returncode()
        return result

    def resolve(
        self, name: str, family: int = socket.AF_UNSPEC, timeout: float = _RUN_TIMEOUT
    ) -> Resolution:
        """getaddrinfo(name) as a process inside sees it (hosts file, then the namespace's DNS)."""
        result = self.run(
            [sys.executable, "-c", _RESOLVE, name, str(int(family))], timeout=timeout, check=True
        )
        data = json.loads(result.stdout)
        return Resolution(tuple(data["addresses"]), data["error"], data["elapsed"])

    def start_dns(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 53,
        rules: DNSRules | None = None,
        zone: str = "test",
        delay: float = 0.0,
        delays: Mapping[str, float] | None = None,
        addresses: Mapping[str, str | Sequence[str]] | None = None,
        aaaa: bool = False,
        ttl: int = 60,
    ) -> DNSServerProcess:
        """tests/dnsserver.py inside, on `host`:`port` (the resolv.conf nameserver at 53).
        Delays in seconds; see DNSRules. Its counts are written on demand (each read asks for
        them), so it keeps up with bursts of thousands of queries a second. Stopped at exit."""
        rules = rules or DNSRules(
            zone=zone,
            delay=delay,
            delays=delays or {},
            addresses=addresses or {},
            aaaa=aaaa,
            ttl=ttl,
        )
        stats = self.tmp / f"dns-{len(self._dns)}.json"
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"{host}: the DNS server must listen on a loopback address")
        dns = DNSServerProcess.start(
            stats,
            host=host,
            port=port,
            rules=rules,
            popen=self.popen,
            extra_args=["--watch-parent"],
            on_demand=True,
        )
        self._dns.append(dns)
        return dns

    def start_http(
        self, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
    ) -> NetnsHTTPServer:
        """An HTTP (or, with `ssl_context`, HTTPS) test server inside, on `host` and a free
        port; reachable from commands run inside only. Stopped at exit."""
        self.check_isolated()
        server = NetnsHTTPServer(self.path, host=host, ssl_context=ssl_context)
        server.start()
        self._http.append(server)
        return server

    # -- helpers ----------------------------------------------------------------------------

    def _ip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _ip(self.ip, *args)

    @staticmethod
    def list_namespaces(ip: str) -> list[str]:
        out = _ip(ip, "netns", "list").stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]


def _ip(ip: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [ip, *args], capture_output=True, text=True, timeout=_RUN_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def _try(errors: list[str], action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - teardown goes on; reported together at the end
        errors.append(f"{type(exc).__name__}: {exc}")


def _kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the process group, SIGKILL after a bounded wait; reap; close the pipes.
    (What outlives the leader is still in the namespace: `_kill_all_inside` gets it.)"""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(_STOP_TIMEOUT)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _kill_all_inside(ip: str, name: str) -> None:
    """SIGKILL every process still in namespace `name` (none of them is this process), and
    wait (bounded) until none is left."""
    deadline = time.monotonic() + _STOP_TIMEOUT
    while True:
        pids = [int(p) for p in _ip(ip, "netns", "pids", name).stdout.split()]
        pids = [p for p in pids if p != os.getpid()]
        if not pids:
            return
        if time.monotonic() > deadline:
            raise NetnsError(f"processes left in {name}: {pids}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


_OURS = re.compile(rf"^{PREFIX}-(\d+)-\d+$")


def _remove_stale(ip: str, min_age: float = _STALE_AGE) -> None:
    """Delete namespaces of this kind left by a test process that no longer exists, once
    they are `min_age` seconds old (a pid of another PID namespace is not seen alive)."""
    for name in NetNS.list_namespaces(ip):
        match = _OURS.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            age = time.time() - (NETNS_DIR / name).stat().st_mtime
        except OSError:
            continue
        if age < min_age:
            continue
        try:
            _kill_all_inside(ip, name)
            _ip(ip, "netns", "delete", name)
        except NetnsError:
            continue
        shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
        for scratch in Path(tempfile.gettempdir()).glob(f"{name}-*"):
            shutil.rmtree(scratch, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
