"""Read and parse the documents of a directory input on every core, in their walk order.

Parsing Markdown is the cost of link checking a docs tree (markdown-it-py is pure Python, and
one process gets one core), so once a walk has more than a handful of documents the rest are
read, decoded and parsed in a pool of worker processes, one per core; the results come back
in walk order, at most a few per worker ahead, so memory stays bounded whatever the tree.

The workers are quiet and disposable: they ignore Ctrl-C (the run handles it and reports what
was unfinished), write nothing to the terminal, and end when the pool is shut down or, if the
run leaves first (`os._exit`), when their pipe to it closes. `FETCHPOOL_PARSE_PROCESSES` sets
how many there are (`1`: parse in the run's own process).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from ._extract import Document, document_type, parse_document
from ._source import decode_document

__all__ = ["Parsed", "parse_file", "parse_text", "parse_tree"]

IN_PROCESS = 16
"""Documents of a walk parsed in the run's own process before workers are started: a small
tree is done before a worker process would have started."""

AHEAD_PER_WORKER = 4
"""Documents submitted but not yet taken, per worker: bounds memory, keeps workers busy."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """One document read and parsed: its links and anchors, or why it could not be.

    `undecodable` holds the reason and the offset of the first bad byte of a document that
    is not valid UTF-8 (or UTF-16/32 by its byte-order mark); `unreadable` the OS error.
    """

    name: str
    document: Document | None = None
    undecodable: tuple[str, int] | None = None
    unreadable: str | None = None


def parse_file(name: str) -> Parsed:
    """Read, decode and parse the local document `name` (in a worker, or in the run)."""
    try:
        text = decode_document(Path(name).read_bytes())
    except OSError as exc:
        return Parsed(name, unreadable=(exc.strerror or str(exc)).lower())
    except UnicodeDecodeError as exc:
        return Parsed(name, undecodable=(exc.reason, exc.start))
    return Parsed(name, parse_text(name, text))


def parse_text(name: str, text: str) -> Document:
    """The links (and, for Markdown and HTML, the anchors) of a local document's text, read
    as its file name says (standard input, `-`, is plain text)."""
    doc_type = document_type(name)
    mdx = True if doc_type == "markdown" and name.lower().endswith(".mdx") else None
    return parse_document(text, doc_type, want_anchors=doc_type != "text", mdx=mdx)


def _processes() -> int:
    configured = os.environ.get("FETCHPOOL_PARSE_PROCESSES", "")
    if configured.isdigit():
        return max(1, int(configured))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _quiet_worker() -> None:
    """A worker ignores the terminal's signals and writes nothing to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _start_helpers_quietly() -> None:
    """Start multiprocessing's forkserver and resource tracker with standard error closed.

    Both outlive a run that leaves with `os._exit` by a moment, and the tracker then warns
    about the semaphores it cleans up: words for nobody, on the user's terminal.
    """
    from multiprocessing import forkserver, resource_tracker

    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
        forkserver.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


async def parse_tree(names: Iterable[str]) -> AsyncIterator[Parsed]:
    """Each document of `names` parsed, in order: the first few here, the rest in workers."""
    pending: Iterator[str] = iter(names)
    for name in islice(pending, IN_PROCESS):
        yield parse_file(name)
        await asyncio.sleep(0)  # a signal, the display: the loop runs between documents
    workers = _processes()
    if workers < 2:
        for name in pending:
            yield parse_file(name)
            await asyncio.sleep(0)
        return
    import multiprocessing

    # forkserver, not fork: the run has threads (resolver, display) a fork would copy mid-lock.
    context = multiprocessing.get_context("forkserver")
    _start_helpers_quietly()
    processes = context.Pool(workers, _quiet_worker)
    loop = asyncio.get_running_loop()
    window: deque[asyncio.Future[Parsed]] = deque()

    def submit(name: str) -> asyncio.Future[Parsed]:
        future: asyncio.Future[Parsed] = loop.create_future()

        def settle(value: Parsed | BaseException) -> None:
            if future.done():
                return
            if isinstance(value, BaseException):
                future.set_exception(value)
            else:
                future.set_result(value)

        def deliver(value: Parsed | BaseException) -> None:  # on the pool's result thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, value)

        processes.apply_async(parse_file, (name,), callback=deliver, error_callback=deliver)
        return future

    finished = False
    try:
        for name in pending:
            window.append(submit(name))
            if len(window) >= workers * AHEAD_PER_WORKER:
                yield await window.popleft()
        while window:
            yield await window.popleft()
        finished = True
    finally:
        if finished:
            processes.close()  # every document is parsed: the workers end on their own
            await asyncio.to_thread(processes.join)
        else:
            processes.terminate()  # cancelled: stop the workers now, mid-document
