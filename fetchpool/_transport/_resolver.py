"""Host names to addresses for a whole run: one lookup per name, shared, cached, never starved.

`loop.getaddrinfo()` runs glibc's blocking resolver on a small thread pool (6 threads for
asyncio on 2 cores, libuv's 4 under uvloop). A lookup that a deadline abandons keeps its thread
until glibc gives up, so a few names whose DNS never answers hold every thread and every other
host's lookup queues behind them; and at exit `asyncio.run()` joins that pool, so the process
lingers for the resolver's whole timeout. `Resolver` fixes both and asks DNS once per name:

* concurrent connections to one host share one lookup, and its answer (or a "no such name")
  is kept for the rest of the run; a failure that may be transient (time-out, SERVFAIL, no
  server) is not kept, so a retry asks again;
* a waiter that is cancelled (its URL's deadline) stops waiting at once and frees nothing
  else: the lookup itself goes on and its answer still fills the cache;
* lookups run in a backend that has no small shared pool in the way and keeps nothing alive
  at exit.

Two backends, chosen by measurement (see the README, "DNS"):

* `ThreadBackend` (the default): the system's `getaddrinfo`, so resolv.conf, the hosts file
  and every NSS module (mDNS, LDAP, nscd) behave exactly as for any other program, on daemon
  threads started on demand. A lookup stuck in glibc holds one thread until glibc gives up;
  when all `max_threads` are taken that way, further lookups overflow to c-ares rather than
  queue behind them.
* `AresBackend`: c-ares through `pycares`, fully asynchronous on c-ares's own event thread,
  any number of lookups at once, no threads held. Chosen with `FETCHPOOL_RESOLVER=c-ares`.
  It reads resolv.conf, the hosts file and nsswitch's `hosts:` order, but times each try
  out after five times the server's recent average answer (at least 250 ms) instead of
  resolv.conf's `timeout:`, so a slow answer among quick ones costs retransmits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import queue

__all__ = [
    "ADDRESS_ATTEMPT_TIMEOUT",
    "AresBackend",
    "Backend",
    "Resolver",
    "ThreadBackend",
    "is_ip_literal",
    "lookup_in_progress",
    "make_backend",
]

# Seconds for each address but the last of a host with several: an address that swallows
# SYNs (broken IPv6, say) must not use up the whole deadline before the next is tried.
ADDRESS_ATTEMPT_TIMEOUT = 2.0

# (address family, socket address without its port); the port is set per connection.
Address = tuple[int, tuple[Any, ...]]
Done = Callable[[list[Address] | None, OSError | None], None]

# Set to the host name while this task waits for a lookup and left set when the wait is
# cancelled, so the fetcher can tell a deadline that cut off DNS from any other time-out.
lookup_in_progress: ContextVar[str | None] = ContextVar("lookup_in_progress", default=None)

# gaierror codes whose answer is final for the run ("no such name"); others may be transient.
_FINAL = frozenset(
    code
    for code in (
        getattr(socket, "EAI_NONAME", None),
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
)


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (nothing to look up)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Backend(Protocol):
    """Runs one lookup and calls `done(addresses, None)` or `done(None, error)` exactly once.

    `done` may be called from any thread, or before `start` returns; `error` is a
    `socket.gaierror` whose text says what went wrong. `start` returns the seconds the
    `Resolver` should give the lookup before it fails it as timed out, or None when the
    backend bounds it itself.
    """

    name: str

    def start(self, host: str, done: Done) -> float | None: ...

    def close(self) -> None: ...


class ThreadBackend:
    """The system resolver (`socket.getaddrinfo`) on daemon threads, grown on demand.

    A lookup stuck in glibc holds one thread until glibc gives up. Idle threads leave after
    `idle_seconds`, and being daemons they never keep the process alive. When all
    `max_threads` are busy, a lookup goes to `overflow` (made on first need; c-ares by
    default) instead of waiting for a thread, so names whose DNS never answers cannot hold
    up the others however many there are; without one it waits for a thread.
    """

    name = "system"

    def __init__(
        self,
        max_threads: int = 128,
        idle_seconds: float = 10.0,
        overflow: Callable[[], Backend] | None = None,
    ) -> None:
        self._max = max_threads
        self._idle_seconds = idle_seconds
        self._overflow_factory = overflow
        self._overflow: Backend | None = None
        import queue  # deferred: a run whose URLs are all IP addresses never needs it

        self._empty = queue.Empty
        self._jobs: queue.SimpleQueue[tuple[str, Done] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # alive
        self._idle = 0  # waiting for a job
        self._queued = 0  # jobs put and not yet taken
        self._closed = False
        self.overflowed = 0  # lookups handed to the overflow backend

    @property
    def threads(self) -> int:
        """Threads alive now."""
        return self._threads

    def start(self, host: str, done: Done) -> float | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("resolver is closed")
            full = self._queued >= self._idle and self._threads >= self._max
            if not full or not self._overflow_ready():
                self._jobs.put((host, done))
                self._queued += 1
                spawn = self._queued > self._idle and self._threads < self._max
                if spawn:
                    self._threads += 1
                overflow = None
            else:
                overflow = self._overflow
                self.overflowed += 1
        if overflow is not None:
            return overflow.start(host, done)
        if spawn:
            threading.Thread(target=self._work, name="fetchpool-dns", daemon=True).start()
        return None

    def _overflow_ready(self) -> bool:
        if self._overflow is None and self._overflow_factory is not None:
            try:
                self._overflow = self._overflow_factory()
            except Exception:  # noqa: BLE001 - no c-ares here: wait for a thread instead
                self._overflow_factory = None
        return self._overflow is not None

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except self._empty:
                with self._lock:
                    self._idle -= 1
                    if self._queued == 0:
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                if job is None:
                    self._threads -= 1
                    return
                self._queued -= 1
            host, done = job
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                done(None, exc)
            else:
                done([(info[0], info[4]) for info in infos], None)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in range(self._threads):
                self._jobs.put(None)
        if self._overflow is not None:
            self._overflow.close()


_ARES_ERRORS: dict[str, tuple[int, str]] = {
    # c-ares status name -> (gaierror code, text as glibc words it where there is a glibc twin)
    "ARES_ENOTFOUND": (socket.EAI_NONAME, "Name or service not known"),
    "ARES_ENODATA": (socket.EAI_NONAME, "Name or service not known"),
    "ARES_ENONAME": (socket.EAI_NONAME, "Name or service not known"),
    "ARES_ETIMEOUT": (socket.EAI_AGAIN, "DNS lookup timed out"),
    "ARES_ESERVFAIL": (socket.EAI_AGAIN, "Temporary failure in name resolution (SERVFAIL)"),
    "ARES_EREFUSED": (socket.EAI_AGAIN, "Temporary failure in name resolution (REFUSED)"),
    "ARES_ECONNREFUSED": (socket.EAI_AGAIN, "Temporary failure in name resolution"),
    "ARES_EBADNAME": (socket.EAI_NONAME, "invalid host name"),
}


def resolver_timing(
    path: str = "/etc/resolv.conf", environ: Mapping[str, str] | None = None
) -> tuple[float, int]:
    """(seconds per try, tries) as glibc reads them: `options timeout:N attempts:M` in
    resolv.conf, then `RES_OPTIONS` in the environment; glibc's defaults are 5 s and 2, and
    its caps 30 s and 5."""
    timeout, attempts = 5.0, 2
    lines: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line for line in handle if line.startswith("options")]
    except OSError:
        pass
    env = os.environ if environ is None else environ
    words = [word for line in lines for word in line.split()[1:]]
    words += env.get("RES_OPTIONS", "").split()
    for word in words:
        name, _, value = word.partition(":")
        if not value.isdigit():
            continue
        if name == "timeout":
            timeout = float(min(max(int(value), 1), 30))
        elif name == "attempts":
            attempts = min(max(int(value), 1), 5)
    return timeout, attempts


class AresBackend:
    """c-ares through `pycares`: asynchronous lookups on c-ares's own event thread.

    c-ares (since 1.32) waits for an answer only five times the server's recent average
    answer time (at least 250 ms), not resolv.conf's `timeout:`, so one slow answer among
    quick ones would fail early. So c-ares is given more tries (it doubles its wait on each
    round), and the lookup is given the time glibc would give it, `timeout` x `attempts`
    (`budget`): the `Resolver` fails it as timed out then, whatever c-ares is still doing.

    Args:
        servers: name servers to ask instead of resolv.conf's (`"127.0.0.1"`), for tests.
        port: their UDP and TCP port (53).
        timeout: seconds per try (default: resolv.conf's `options timeout:`, as glibc).
        tries: tries (default: resolv.conf's `options attempts:`, as glibc).
    """

    name = "c-ares"

    def __init__(
        self,
        *,
        servers: list[str] | None = None,
        port: int | None = None,
        timeout: float | None = None,
        tries: int | None = None,
    ) -> None:
        import pycares  # deferred: only runs that look a name up pay for it

        conf_timeout, conf_tries = resolver_timing()
        timeout = conf_timeout if timeout is None else timeout
        tries = conf_tries if tries is None else tries
        self.budget = timeout * tries
        self._pycares = pycares
        self._errorcode: dict[int, str] = pycares.errno.errorcode
        self._channel = pycares.Channel(
            servers=servers,
            udp_port=port,
            tcp_port=port,
            timeout=timeout,
            # Three more tries: c-ares doubles its short adaptive wait each round (0.25, 0.5,
            # 1, 2 s, less some jitter), so an answer that comes within the budget is waited
            # for, at a retransmit, and the budget rather than c-ares decides the end.
            tries=tries + 3,
        )

    def start(self, host: str, done: Done) -> float | None:
        def callback(result: Any, error: int | None) -> None:
            if error:
                done(None, self._error(error))
                return
            addrs: list[Address] = []
            for node in result.nodes:
                ip, *rest = node.addr
                addrs.append((node.family, (ip.decode("ascii"), *rest)))
            if addrs:
                done(addrs, None)
            else:
                done(None, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))

        self._channel.getaddrinfo(
            host, None, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, callback=callback
        )
        return self.budget

    def _error(self, code: int) -> socket.gaierror:
        name = self._errorcode.get(code, "")
        eai, text = _ARES_ERRORS.get(name, (socket.EAI_FAIL, ""))
        if not text:
            text = str(self._pycares.errno.strerror(code) or f"DNS lookup failed ({name or code})")
        return socket.gaierror(eai, text)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._channel.close()


def make_backend() -> Backend:
    """`FETCHPOOL_RESOLVER=c-ares`: c-ares; else the system resolver on threads, which
    overflows to c-ares when its threads are all held by lookups that do not end."""
    if os.environ.get("FETCHPOOL_RESOLVER", "").lower() in ("c-ares", "ares", "cares"):
        try:
            return AresBackend()
        except Exception:  # noqa: BLE001 - no pycares, or c-ares could not start: fall back
            pass
    return ThreadBackend(overflow=AresBackend)


class _Lookup:
    """One lookup, shared by every connection that waits for its host."""

    __slots__ = ("future", "host", "overdue", "started", "waiters")

    def __init__(self, host: str, future: asyncio.Future[list[Address]]) -> None:
        self.host = host
        self.future = future
        self.waiters = 0
        self.started = False  # handed to the backend (else queued for a slot)
        self.overdue: asyncio.TimerHandle | None = None  # frees the slot of a slow lookup


class Resolver:
    """Resolves host names for one run: coalesced, cached, on a backend made on first use.

    At most `max_active` lookups are sent at once, so that a burst of hundreds of new names
    does not overflow the name server's socket buffers (lost queries cost a resolver
    time-out each); a lookup that has not been answered after `slow_after` seconds stops
    counting against that limit, so names whose DNS never answers cannot hold up the rest.

    Args:
        backend: the lookup engine, or a factory for one (default `make_backend`); a factory
            is called at the first lookup, so a run that only has IP addresses never loads
            a resolver library.
        max_active: lookups in flight at once, slow ones not counted.
        slow_after: seconds after which a lookup no longer counts as in flight.
    """

    def __init__(
        self,
        backend: Backend | Callable[[], Backend] | None = None,
        *,
        max_active: int = 64,
        slow_after: float = 0.25,
    ) -> None:
        self._backend: Backend | None = None
        self._factory: Callable[[], Backend] = make_backend
        if callable(backend) and not hasattr(backend, "start"):
            self._factory = backend
        elif backend is not None:
            self._backend = backend  # type: ignore[assignment]
        self._max_active = max_active
        self._slow_after = slow_after
        self._active = 0
        self._queued: deque[_Lookup] = deque()
        self._answers: dict[str, list[Address] | OSError] = {}
        self._pending: dict[str, _Lookup] = {}

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend

    def cached(self, host: str) -> list[Address] | None:
        """The addresses kept for `host`, without a lookup (None: not known, or no such name)."""
        answer = self._answers.get(host)
        return answer if isinstance(answer, list) else None

    async def resolve(self, host: str) -> list[Address]:
        """The addresses of `host`; raises `socket.gaierror` when there are none."""
        answer = self._answers.get(host)
        if answer is not None:
            if isinstance(answer, list):
                return answer
            raise socket.gaierror(answer.errno, answer.strerror)  # a fresh one: no traceback pile
        lookup = self._pending.get(host)
        if lookup is None:
            lookup = self._new(host)
        lookup.waiters += 1
        token = lookup_in_progress.set(host)
        try:
            # shield: one waiter's deadline must not cancel the lookup the others share.
            addrs = await asyncio.shield(lookup.future)
        except asyncio.CancelledError:
            raise  # lookup_in_progress stays set: the deadline cut this lookup off
        except BaseException:
            lookup_in_progress.reset(token)
            raise
        finally:
            lookup.waiters -= 1
            if lookup.waiters == 0 and not lookup.started:
                self._drop_queued(lookup)  # nobody wants it any more: never send it
        lookup_in_progress.reset(token)
        return addrs

    def _new(self, host: str) -> _Lookup:
        loop = asyncio.get_running_loop()
        lookup = _Lookup(host, loop.create_future())
        self._pending[host] = lookup
        if self._active < self._max_active:
            self._send(lookup, loop)
        else:
            self._queued.append(lookup)
        return lookup

    def _drop_queued(self, lookup: _Lookup) -> None:
        if self._pending.get(lookup.host) is lookup:
            del self._pending[lookup.host]
        with contextlib.suppress(ValueError):
            self._queued.remove(lookup)
        lookup.future.cancel()

    def _free_slot(self, lookup: _Lookup) -> None:
        """`lookup` stops counting as in flight (answered, or slow): send the next one."""
        if lookup.overdue is None:
            return  # already freed
        lookup.overdue.cancel()
        lookup.overdue = None
        self._active -= 1
        while self._queued and self._active < self._max_active:
            nxt = self._queued.popleft()
            if not nxt.future.done():
                self._send(nxt, nxt.future.get_loop())

    def _send(self, lookup: _Lookup, loop: asyncio.AbstractEventLoop) -> None:
        host = lookup.host
        future = lookup.future
        lookup.started = True
        self._active += 1
        lookup.overdue = loop.call_later(self._slow_after, self._free_slot, lookup)

        def settle(addrs: list[Address] | None, error: OSError | None) -> None:
            # On the loop's thread.
            self._free_slot(lookup)
            if self._pending.get(host) is lookup:
                del self._pending[host]
            if addrs is not None:
                self._answers[host] = addrs
                if not future.done():
                    future.set_result(addrs)
                return
            assert error is not None
            if isinstance(error, socket.gaierror) and error.errno in _FINAL:
                self._answers[host] = error
            if not future.done():
                future.set_exception(error)
                if lookup.waiters == 0:
                    future.exception()  # nobody waits any more: do not log it as unretrieved

        def done(addrs: list[Address] | None, error: OSError | None) -> None:
            # On the backend's thread (or this one): hand the answer to the loop.
            with contextlib.suppress(RuntimeError):  # a closed loop: the run is over
                loop.call_soon_threadsafe(settle, addrs, error)

        try:
            budget = self.backend.start(host, done)
        except Exception as exc:  # noqa: BLE001 - a backend that cannot start is a DNS failure
            err = socket.gaierror(socket.EAI_FAIL, f"DNS resolver failed: {exc}")
            settle(None, err)
            return
        if budget is not None and not future.done():
            expired = socket.gaierror(socket.EAI_AGAIN, "DNS lookup timed out")
            timer = loop.call_later(budget, settle, None, expired)
            future.add_done_callback(lambda _: timer.cancel())

    def close(self) -> None:
        """Stop the backend; lookups still running are abandoned."""
        for lookup in self._queued:
            lookup.future.cancel()
        self._queued.clear()
        for lookup in self._pending.values():
            if lookup.overdue is not None:
                lookup.overdue.cancel()
        if self._backend is not None:
            self._backend.close()
