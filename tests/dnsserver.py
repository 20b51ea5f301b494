"""A real DNS server (UDP and TCP, asyncio, dnslib) for tests of name resolution.

It answers by name, with no recursion and nothing outside its rules:

- `*.blackhole.<zone>` never answers: the query is read, counted and dropped.
- `*.nx.<zone>` NXDOMAIN; `*.servfail.<zone>` SERVFAIL (both after the name's delay).
- a name in `addresses` (exact name or fnmatch pattern such as `*.multi.test`, in or out of the
  zone): its A records for an A query, its AAAA records for AAAA; a type it has no address of
  gets NOERROR with no answer (NODATA).
- any other name in the zone (default `test`): A 127.0.0.1; AAAA ::1 when `aaaa=True`, else
  NODATA. Other query types: NODATA.
- anything else: REFUSED at once.

Every answer waits the name's delay: the first pattern of `delays` that matches (default
`*.slow.<zone>` 0.5 s, overridable), else `delay` (default 0). Delays are timers, so queries
are answered concurrently. Every address served must be a loopback one (127.0.0.0/8, ::1):
whatever resolves through this server stays on the machine.

Queries are counted per (name, type), name lowercased without the final dot, type as its
mnemonic ("A", "AAAA", "HTTPS"...); blackholed ones too.

Two ways to run it:

- in-process: `DNSTestServer` runs its own event loop in a daemon thread (start(), stop(), a
  context manager), by default on 127.0.0.1 and a free port (the same number for UDP and TCP).
- as a script, e.g. inside a network namespace on port 53::

      python tests/dnsserver.py --port 53 --delay-ms 20 --delay '*.slow.test=500' \\
          --answer 'b.test=127.0.0.2,::1' --stats-file /tmp/dns.json

  It prints `ready <port>` on stdout once it listens, then nothing more. With --stats-file it
  rewrites that JSON file (atomically) on each query, before answering it, so a client that got
  its answer can read its query counted. With --stats-on-demand as well it writes the file only
  when asked (SIGUSR1), at a reset and at exit: a rewrite per query costs O(names seen) plus a
  rename, which on ext4 caps the server at a few hundred queries a second, too slow for bursts.
  Every write bumps "snapshots" in the file. SIGUSR1 rewrites the file, SIGUSR2 resets the
  counts (and bumps "resets"), SIGTERM/SIGINT/SIGHUP stop it. --watch-parent ends it when
  its parent goes, --max-seconds after that long. `DNSServerProcess` starts it and reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import ipaddress
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from dnslib import AAAA, OPCODE, QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]
from loopthread import STOP_TIMEOUT, LoopThreadServer

__all__ = ["DNSRules", "DNSServerProcess", "DNSStats", "DNSTestServer"]

SCRIPT = Path(__file__).resolve()

_START_TIMEOUT = 10.0
_UDP_LIMIT = 512  # without EDNS0
_SLOW_DELAY = 0.5


def _normalize(name: str) -> str:
    return name.rstrip(".").lower()


def _check_loopback(address: str) -> str:
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"{address}: only loopback addresses (127.0.0.0/8, ::1) may be served")
    return address


@dataclass(frozen=True)
class DNSRules:
    """What the server answers; see the module docstring. Delays are in seconds.

    `addresses` maps a name or fnmatch pattern to one address or a list (IPv4 and/or IPv6, all
    loopback); `delays` maps fnmatch patterns to seconds, checked in order before the default
    `*.slow.<zone>` 0.5 s.
    """

    zone: str = "test"
    delay: float = 0.0
    delays: Mapping[str, float] = field(default_factory=dict)
    addresses: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    aaaa: bool = False
    ttl: int = 60

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", _normalize(self.zone))
        delays = {_normalize(p): float(s) for p, s in self.delays.items()}
        delays.setdefault(f"*.slow.{self.zone}", _SLOW_DELAY)
        object.__setattr__(self, "delays", delays)
        addresses: dict[str, tuple[str, ...]] = {}
        for pattern, value in self.addresses.items():
            values = (value,) if isinstance(value, str) else tuple(value)
            addresses[_normalize(pattern)] = tuple(_check_loopback(a) for a in values)
        object.__setattr__(self, "addresses", addresses)
        if self.delay < 0 or any(s < 0 for s in delays.values()):
            raise ValueError("delays must not be negative")

    def delay_for(self, name: str) -> float:
        for pattern, seconds in self.delays.items():
            if fnmatch.fnmatchcase(name, pattern):
                return seconds
        return self.delay

    def addresses_for(self, name: str) -> tuple[str, ...] | None:
        """The configured addresses of `name` (exact match first, then patterns), or None."""
        exact = self.addresses.get(name)
        if exact is not None:
            return tuple(exact)
        for pattern, values in self.addresses.items():
            if fnmatch.fnmatchcase(name, pattern):
                return tuple(values)
        return None

    def in_zone(self, name: str, sub: str = "") -> bool:
        """Whether `name` is strictly below `<sub>.<zone>` (or in the zone when sub is "")."""
        suffix = f"{sub}.{self.zone}" if sub else self.zone
        return (name == suffix and not sub) or name.endswith("." + suffix)

    def argv(self) -> list[str]:
        """These rules as the script's command-line options."""
        args = ["--zone", self.zone, "--delay-ms", _ms(self.delay), "--ttl", str(self.ttl)]
        for pattern, seconds in self.delays.items():
            args += ["--delay", f"{pattern}={_ms(seconds)}"]
        for pattern, values in self.addresses.items():
            args += ["--answer", f"{pattern}={','.join(values)}"]
        if self.aaaa:
            args.append("--aaaa")
        return args


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g}"


@dataclass(frozen=True)
class DNSStats:
    """A snapshot of the query counts."""

    counts: Mapping[tuple[str, str], int]
    tcp: int = 0
    resets: int = 0

    def queries(self, name: str, qtype: str | None = None) -> int:
        """Queries for `name` (any case, final dot or not) of type `qtype`, or of any type."""
        name = _normalize(name)
        wanted = None if qtype is None else qtype.upper()
        return sum(n for (q, t), n in self.counts.items() if q == name and wanted in (None, t))

    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        by_name: dict[str, dict[str, int]] = {}
        for (name, qtype), n in sorted(self.counts.items()):
            by_name.setdefault(name, {})[qtype] = n
        return {"total": self.total(), "tcp": self.tcp, "resets": self.resets, "queries": by_name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DNSStats:
        counts = {
            (name, qtype): int(n)
            for name, types in data["queries"].items()
            for qtype, n in types.items()
        }
        return cls(counts, tcp=int(data["tcp"]), resets=int(data["resets"]))


class DNSTestServer(LoopThreadServer):
    """The DNS server in a daemon thread of this process; see the module docstring.

    Thread-safe statistics: `queries(name, qtype=None)`, `total()`, `tcp_total()`, `stats()`
    (a `DNSStats` snapshot), `reset()`; `errors` keeps what the event loop's exception handler
    got (a bug in the server). `on_query(server)`, when given, is called in the
    server's thread after each query is counted and before it is answered.

    Args:
        host: address to listen on (UDP and TCP).
        port: 0 picks a free port (the same for UDP and TCP); see `port` after start().
        rules: what to answer; the keyword arguments below build one when it is None.
    """

    NAME = "DNS test server"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: DNSRules | None = None,
        zone: str = "test",
        delay: float = 0.0,
        delays: Mapping[str, float] | None = None,
        addresses: Mapping[str, str | Sequence[str]] | None = None,
        aaaa: bool = False,
        ttl: int = 60,
        on_query: Callable[[DNSTestServer], None] | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.rules = rules or DNSRules(
            zone=zone,
            delay=delay,
            delays=delays or {},
            addresses=addresses or {},
            aaaa=aaaa,
            ttl=ttl,
        )
        self.on_query = on_query
        self._counts: Counter[tuple[str, str]] = Counter()
        self._tcp = 0
        self._resets = 0
        self._lock = threading.Lock()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[dict[str, Any]] = []

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> DNSStats:
        with self._lock:
            return DNSStats(dict(self._counts), tcp=self._tcp, resets=self._resets)

    def queries(self, name: str, qtype: str | None = None) -> int:
        return self.stats().queries(name, qtype)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def tcp_total(self) -> int:
        with self._lock:
            return self._tcp

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._tcp = 0
            self._resets += 1

    # -- life cycle -------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        # Errors the loop would print (a bug in a handler) are kept for a test to inspect.
        loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        try:
            loop.run_until_complete(self._bind())
        except BaseException as exc:  # noqa: BLE001 - re-raised by start() in the caller thread
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        attempts = 20 if self.port == 0 else 1
        for attempt in range(attempts):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UDP(self), local_addr=(self.host, self.port)
            )
            port: int = udp.get_extra_info("sockname")[1]
            try:
                tcp = await asyncio.start_server(self._on_tcp, self.host, port)
            except OSError:
                # The free UDP port is taken for TCP: try another pair.
                udp.close()
                if attempt == attempts - 1:
                    raise
                continue
            self._udp, self._tcp_server, self.port = udp, tcp, port
            return

    async def _shutdown(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT)
        if self._tcp_server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._tcp_server.wait_closed(), STOP_TIMEOUT)
        # Transports close their sockets in a callback of the next loop iteration.
        for _ in range(3):
            await asyncio.sleep(0)
        asyncio.get_running_loop().stop()

    # -- answering --------------------------------------------------------------------------

    def answer(self, data: bytes, *, tcp: bool) -> tuple[bytes | None, float]:
        """The reply to one query message (None: no reply) and how long to wait before it."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - not DNS: ignore it, as a server would
            return None, 0.0
        if request.header.qr:
            return None, 0.0  # a response, not a query
        reply = request.reply()
        if request.header.opcode != OPCODE.QUERY or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.questions else RCODE.FORMERR
            return reply.pack(), 0.0
        question = request.q
        name = _normalize(str(question.qname))
        qtype = str(QTYPE.get(question.qtype))
        with self._lock:
            self._counts[(name, qtype)] += 1
            self._tcp += tcp
        if self.on_query is not None:
            self.on_query(self)
        rules = self.rules
        if rules.in_zone(name, "blackhole"):
            return None, 0.0
        delay = rules.delay_for(name)
        if rules.in_zone(name, "nx"):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack(), delay
        if rules.in_zone(name, "servfail"):
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack(), delay
        addresses = rules.addresses_for(name)
        if addresses is None:
            if not rules.in_zone(name):
                reply.header.rcode = RCODE.REFUSED
                reply.header.aa = 0
                return reply.pack(), 0.0
            addresses = ("127.0.0.1", "::1") if rules.aaaa else ("127.0.0.1",)
        for address in addresses:
            is_v6 = ipaddress.ip_address(address).version == 6
            if question.qtype in (QTYPE.AAAA, QTYPE.ANY) and is_v6:
                reply.add_answer(RR(question.qname, QTYPE.AAAA, rdata=AAAA(address), ttl=rules.ttl))
            elif question.qtype in (QTYPE.A, QTYPE.ANY) and not is_v6:
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=rules.ttl))
        packed: bytes = reply.pack()
        if not tcp and len(packed) > _udp_limit(request):
            packed = reply.truncate().pack()
        return packed, delay

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply, delay = self.answer(await reader.readexactly(length), tcp=True)
                if reply is not None:
                    # Each answer on its own timer: queries on one connection overlap.
                    send = asyncio.ensure_future(_send_tcp(writer, reply, delay))
                    pending.add(send)
                    send.add_done_callback(pending.discard)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for send in pending:
                send.cancel()
            self._tasks.discard(task)
            writer.transport.abort()


async def _send_tcp(writer: asyncio.StreamWriter, reply: bytes, delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
    writer.write(struct.pack("!H", len(reply)) + reply)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _udp_limit(request: Any) -> int:
    """The largest UDP reply the client takes: 512, or its EDNS0 buffer size."""
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return max(_UDP_LIMIT, int(rr.rclass))
    return _UDP_LIMIT


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: DNSTestServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (3.11's selector datagram transport is no subclass of asyncio.DatagramTransport.)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply, delay = self.server.answer(data, tcp=False)
        if reply is None or self.transport is None:
            return
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._send, reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


# -- a server in a subprocess ---------------------------------------------------------------


class DNSServerProcess:
    """The script running in a subprocess (e.g. inside a network namespace), read through its
    --stats-file. Same statistics API as `DNSTestServer`; `stop()` ends it (bounded).

    Start it with `DNSServerProcess.start(stats_file, ...)`; `popen` runs the command (default
    subprocess.Popen; a namespace passes its own, which wraps it in `ip netns exec`). With
    `on_demand=True` the script writes its counts only when asked: every read of them sends
    SIGUSR1 and waits (bounded) for the fresh file; the script then answers thousands of
    queries a second instead of a few hundred.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        stats_file: Path,
        port: int,
        *,
        on_demand: bool = False,
    ) -> None:
        self.process = process
        self.stats_file = stats_file
        self.port = port
        self.on_demand = on_demand

    @classmethod
    def start(
        cls,
        stats_file: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: DNSRules | None = None,
        popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
        extra_args: Sequence[str] = (),
        timeout: float = _START_TIMEOUT,
        on_demand: bool = False,
    ) -> DNSServerProcess:
        """Run the script and wait (at most `timeout` s) for its ready line."""
        rules = rules or DNSRules()
        log = stats_file.with_suffix(".log")
        command = [sys.executable, str(SCRIPT), "--host", host, "--port", str(port)]
        command += ["--stats-file", str(stats_file), *rules.argv(), *extra_args]
        if on_demand:
            command.append("--stats-on-demand")
        with log.open("wb") as err:
            process = popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            line = _read_line(process, timeout)
            if not line.startswith(b"ready "):
                raise RuntimeError(f"unexpected first line {line!r}")
        except (OSError, RuntimeError, ValueError) as exc:  # TimeoutError is an OSError
            _end(process)
            raise RuntimeError(
                f"DNS server did not start: {exc}\n{log.read_text(errors='replace')}"
            ) from None
        return cls(process, stats_file, int(line.split()[1]), on_demand=on_demand)

    def _read(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stats_file.read_text())
        return data

    def stats(self, timeout: float = STOP_TIMEOUT) -> DNSStats:
        """The counts now (on demand: after asking the script for a fresh file)."""
        if self.on_demand and self.process.poll() is None:
            before = self._read()["snapshots"]
            self.process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + timeout
            while (data := self._read())["snapshots"] == before:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the DNS server did not write its counts")
                time.sleep(0.005)
            return DNSStats.from_json(data)
        return DNSStats.from_json(self._read())

    def queries(self, name: str, qtype: str | None = None) -> int:
        return self.stats().queries(name, qtype)

    def total(self) -> int:
        return self.stats().total()

    def tcp_total(self) -> int:
        return self.stats().tcp

    def reset(self, timeout: float = STOP_TIMEOUT) -> None:
        """Zero the counts; returns once the stats file shows it."""
        before = self.stats().resets
        self.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while self._read()["resets"] == before:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the DNS server did not reset its counts")
            time.sleep(0.01)

    def stop(self) -> None:
        _end(self.process)

    def __enter__(self) -> DNSServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise TimeoutError(f"no ready line within {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"exited with {process.wait(STOP_TIMEOUT)}")
            data += chunk
    return data.split(b"\n", 1)[0]


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a bounded wait; closes the pipes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


# -- the script -----------------------------------------------------------------------------


class _StatsWriter:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._snapshots = 0

    def write(self, server: DNSTestServer) -> None:
        if self.path is None:
            return
        # Snapshot and write under one lock: a later snapshot is never overwritten by an older.
        with self._lock:
            self._snapshots += 1
            data = {
                "pid": os.getpid(),
                "port": server.port,
                "snapshots": self._snapshots,
                **server.stats().to_json(),
            }
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)


def _pattern_value(text: str) -> tuple[str, str]:
    pattern, sep, value = text.partition("=")
    if not sep or not pattern or not value:
        raise argparse.ArgumentTypeError(f"expected PATTERN=VALUE, got {text!r}")
    return pattern, value


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (see the ready line)")
    parser.add_argument("--zone", default="test")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="default delay of answers")
    parser.add_argument(
        "--delay", type=_pattern_value, action="append", default=[], metavar="PATTERN=MS"
    )
    parser.add_argument(
        "--answer", type=_pattern_value, action="append", default=[], metavar="NAME=ADDR[,ADDR]"
    )
    parser.add_argument("--aaaa", action="store_true", help="zone names also get AAAA ::1")
    parser.add_argument("--ttl", type=int, default=60)
    parser.add_argument("--stats-file", type=Path)
    parser.add_argument(
        "--stats-on-demand", action="store_true", help="write the stats file on SIGUSR1 only"
    )
    parser.add_argument("--watch-parent", action="store_true", help="exit when the parent goes")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="exit after; 0: never")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    rules = DNSRules(
        zone=args.zone,
        delay=args.delay_ms / 1000,
        delays={p: float(ms) / 1000 for p, ms in args.delay},
        addresses={p: value.split(",") for p, value in args.answer},
        aaaa=args.aaaa,
        ttl=args.ttl,
    )
    writer = _StatsWriter(args.stats_file)
    parent = os.getppid()
    deadline = time.monotonic() + args.max_seconds if args.max_seconds > 0 else None
    wanted = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
    # Blocked before the server thread starts (it inherits the mask), taken by sigtimedwait.
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    on_query = None if args.stats_on_demand else writer.write
    server = DNSTestServer(host=args.host, port=args.port, rules=rules, on_query=on_query)
    server.start()
    try:
        writer.write(server)
        print(f"ready {server.port}", flush=True)
        while True:
            info = signal.sigtimedwait(wanted, 0.2)
            if info is None:
                if args.watch_parent and os.getppid() != parent:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
            elif info.si_signo == signal.SIGUSR1:
                writer.write(server)
            elif info.si_signo == signal.SIGUSR2:
                server.reset()
                writer.write(server)
            else:
                break
    finally:
        server.stop()
        writer.write(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
