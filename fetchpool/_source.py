"""Input: turn lines of bytes into `Target` values, reading files and pipes lazily.

`parse_line()` is pure. `TargetReader` reads each input a chunk at a time,
only when the pool asks for more, so a producer that pauses sees its first
results before it writes again. Pipes and terminals are read on a daemon
thread so that waiting for input never delays cancellation.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import stat
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from ._config import MAX_LINE
from ._models import Credentials, Target

CHUNK = 64 * 1024
PREVIEW = 200  # characters of an over-long line kept in its result
_SCHEMES = ("http", "https")
# Characters that never belong in a URL as typed: controls, DEL, and spaces.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f]")


# The common case, an ASCII http(s) URL with a plain host name or IPv4 address: one regex
# match decides it valid and without userinfo. Anything else (userinfo, IPv6, IDN, odd ports)
# gets the full check.
# The scheme is spelt out: with (?i), U+017F (long s) would match "s" too.
_PLAIN_URL = re.compile(
    r"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(?::([0-9]{1,5}))?(?:[/?#][^\x00-\x20\x7f-\x9f]*)?"
)


def check_url(text: str) -> str | None:
    """Return why `text` is not a fetchable http(s) URL, or None when it is."""
    return make_target(text).invalid


def _check_url_fully(text: str) -> str | None:
    scheme, sep, rest = text.partition(":")
    if not sep or not scheme.isascii() or not scheme.isalpha():
        return "invalid URL: no scheme (expected http:// or https://)"
    if scheme.lower() not in _SCHEMES:
        return f"invalid URL: unsupported scheme {scheme!r}"
    if found := _FORBIDDEN.search(text):
        bad = found.group()
        what = "a space" if bad == " " else f"control character {bad!r}"
        return f"invalid URL: contains {what}"
    if not rest.startswith("//"):
        return "invalid URL: expected '//' after the scheme"
    try:
        parts = urlsplit(text)
        port = parts.port  # validates the port
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if not parts.hostname:
        return "invalid URL: no host"
    if port == 0:
        return "invalid URL: port 0"
    return None


def split_credentials(text: str) -> tuple[str, Credentials | None]:
    """`text` with the password of its userinfo shown as `***`, and the userinfo's credentials.

    The authority is cut as httpx cuts it (up to the first `/`, `?` or `#`; userinfo up to the
    last `@`), so the host of the masked text is the host that is fetched. A user without a
    password (`https://user@host/`) has nothing to hide: the text stays, the password is empty.
    Text without `scheme://` or without userinfo is returned as is, with None.
    """
    begin = text.find("://")
    if begin < 0:
        return text, None
    begin += 3
    end = len(text)
    for stop in "/?#":
        found = text.find(stop, begin, end)
        if found >= 0:
            end = found
    at = text.rfind("@", begin, end)
    if at <= begin:
        return text, None
    user, _, password = text[begin:at].partition(":")
    credentials = Credentials(_decode(user), _decode(password))
    if not password:
        return text, credentials
    return f"{text[:begin]}{user}:***{text[at:]}", credentials


def _decode(text: str) -> str:
    return unquote(text, errors="surrogateescape")


def make_target(text: str, source: str = "-", line: int = 0, invalid: str | None = None) -> Target:
    """The `Target` of a URL as read: checked (unless `invalid` already says why it is not
    fetchable), with a password in it shown as `***` and its credentials kept apart.

    The one place where targets are made from text (input lines, extracted links, `fetch()`).
    """
    if invalid is None:
        plain = _PLAIN_URL.fullmatch(text)
        if plain is not None and (plain[1] is None or 0 < int(plain[1]) <= 65535):
            return Target(text, source, line)  # valid, and no userinfo in its host part
        invalid = _check_url_fully(text)
    if "@" not in text:
        return Target(text, source, line, invalid)
    shown, credentials = split_credentials(text)
    return Target(shown, source, line, invalid, credentials)


def _line_text(raw: bytes, encoding: str = "UTF-8") -> tuple[str, str | None] | None:
    """The text of an input line and why it cannot be a URL (None when it may be);
    None for a blank line or a `#` comment. The one place these rules live.

    `raw` is UTF-8; `encoding` names what the input was written in (see `_Decoder`), for the
    error of a line whose bytes were not valid in it."""
    if len(raw) > MAX_LINE:
        preview = raw[:PREVIEW].decode("utf-8", "replace").strip() + "…"
        return preview, f"invalid URL: line over {MAX_LINE // 1024} KiB"
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace").strip(), f"invalid URL: not valid {encoding}"
    if not text or text.startswith("#"):
        return None
    return text, None


def parse_line(
    raw: bytes, *, source: str = "-", line: int = 0, encoding: str = "UTF-8"
) -> Target | None:
    """Turn one input line (UTF-8, without its newline) into a `Target`.

    Returns None for blank lines and `#` comments. A line that is not a
    fetchable URL still becomes a `Target`, with `invalid` set to the reason.
    `encoding` names the input's own encoding, for the error of an undecodable line.
    """
    read = _line_text(raw, encoding)
    if read is None:
        return None
    text, invalid = read
    return make_target(text, source, line, invalid)


def count_targets(inputs: Sequence[Input]) -> int | None:
    """How many targets regular-file inputs will yield, read with pread so their offsets
    stay where the reader needs them; None when an input is a pipe or a terminal."""
    if not inputs or not all(i.is_regular_file for i in inputs):
        return None
    total = 0
    for source in inputs:
        if source.urls is not None:
            total += len(source.urls)
            continue
        splitter = _LineSplitter()
        decoder = _Decoder()
        offset = 0
        while chunk := os.pread(source.fd, CHUNK * 16, offset):
            offset += len(chunk)
            lines = splitter.feed(decoder.feed(chunk))
            total += sum(_line_text(raw) is not None for raw in lines)
        lines = splitter.feed(decoder.end()) + splitter.end()
        total += sum(_line_text(raw) is not None for raw in lines)
    return total


URL_ARGUMENTS = "<args>"
"""The source name of URLs given on the command line instead of in a file."""


def is_url_argument(argument: str) -> bool:
    """True for a command-line argument that is itself a URL to check, not a file name."""
    return argument[:8].lower().startswith(("http://", "https://"))


@dataclass(slots=True)
class Input:
    """An opened input: its display name and file descriptor; or, for URLs given as
    arguments, the URLs themselves (`fd` is -1) and the line number of the first."""

    name: str
    fd: int
    urls: tuple[str, ...] | None = None
    first_line: int = 1
    directory: bool = False  # a directory of documents (link checking), walked when read

    @property
    def is_regular_file(self) -> bool:
        """True for a regular file (read inline, counted up front); also True for URL
        arguments, which are as readily counted. False for pipes and terminals."""
        if self.urls is not None:
            return True
        return stat.S_ISREG(os.fstat(self.fd).st_mode)


# What an undecodable stretch of UTF-16 or UTF-32 input becomes: a lone surrogate, which
# decoding valid input never yields and which UTF-8 encoding with surrogateescape turns into
# the byte 0xFF, never valid UTF-8, so its line is reported invalid like a bad UTF-8 line.
_INVALID = "fetchpool.invalid-input"


def _mark_invalid(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\udcff", exc.end


codecs.register_error(_INVALID, _mark_invalid)

# Byte-order marks, longest first where one is a prefix of another (UTF-32 LE before UTF-16 LE).
_BOMS: tuple[tuple[bytes, str | None, str], ...] = (
    (codecs.BOM_UTF8, None, "UTF-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


class _Decoder:
    """Turns an input's bytes into UTF-8 bytes, chunk by chunk, by the byte-order mark at
    its start: a UTF-8 BOM is dropped; UTF-16 and UTF-32 are decoded incrementally (never
    more than the chunk at hand) and re-encoded; anything else is passed on as it is.

    Until the first bytes decide (at most 4, fewer for most inputs), nothing is passed on.
    """

    __slots__ = ("_decoder", "_head", "encoding")

    def __init__(self) -> None:
        self._head: bytes | None = b""  # the first bytes while undecided; None once decided
        self._decoder: codecs.IncrementalDecoder | None = None
        self.encoding = "UTF-8"  # the input's encoding, for error messages

    def feed(self, chunk: bytes) -> bytes:
        if self._head is not None:
            head = self._head + chunk
            if any(len(bom) > len(head) and bom.startswith(head) for bom, _, _ in _BOMS):
                self._head = head  # could still be a byte-order mark: wait for more
                return b""
            chunk = self._decide(head)
        if self._decoder is None:
            return chunk
        return self._decoder.decode(chunk).encode("utf-8", "surrogateescape")

    def end(self) -> bytes:
        data = b""
        if self._head is not None:
            data = self._decide(self._head)
            if self._decoder is not None:
                data = self._decoder.decode(data).encode("utf-8", "surrogateescape")
        if self._decoder is None:
            return data
        return data + self._decoder.decode(b"", final=True).encode("utf-8", "surrogateescape")

    def _decide(self, head: bytes) -> bytes:
        self._head = None
        for bom, codec, name in _BOMS:
            if head.startswith(bom):
                self.encoding = name
                if codec is not None:
                    self._decoder = codecs.getincrementaldecoder(codec)(_INVALID)
                return head[len(bom) :]
        return head


class _LineSplitter:
    """Cuts chunks into lines; a line over MAX_LINE is cut short, never buffered whole."""

    __slots__ = ("_carry", "_overflow")

    def __init__(self) -> None:
        self._carry = b""
        self._overflow = False  # inside a line already known to be too long

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = chunk.split(b"\n")
        lines[0] = self._carry + lines[0]
        self._carry = lines.pop()
        if self._overflow and lines:
            # The first piece ends the over-long line; it was already reported.
            lines.pop(0)
            self._overflow = False
        if len(self._carry) > MAX_LINE and not self._overflow:
            lines.append(self._carry[: MAX_LINE + 1])
            self._carry = b""
            self._overflow = True
        elif self._overflow:
            self._carry = b""
        return [line[:-1] if line.endswith(b"\r") else line for line in lines]

    def end(self) -> list[bytes]:
        carry, self._carry = self._carry, b""
        if self._overflow or not carry:
            return []
        return [carry[:-1] if carry.endswith(b"\r") else carry]


class _ThreadedChunks:
    """Reads a pipe or terminal on a daemon thread, one chunk per request.

    The thread reads only when asked (no read-ahead), so input that the run
    never asked for stays unread; a thread blocked in `read` is abandoned at
    exit instead of holding up cancellation.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._wanted = threading.Semaphore(0)
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"fetchpool-read-{fd}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wanted.acquire()
            try:
                data = os.read(self._fd, CHUNK)
                error: OSError | None = None
            except OSError as exc:
                data, error = b"", exc
            try:
                self._loop.call_soon_threadsafe(self._deliver, data, error)
            except RuntimeError:  # the loop is closed: the run is over
                return
            if not data:
                return

    def _deliver(self, data: bytes, error: OSError | None) -> None:
        future, self._future = self._future, None
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(data)

    async def read(self) -> bytes:
        self._future = self._loop.create_future()
        self._wanted.release()
        return await self._future


@runtime_checkable
class TargetSource(Protocol):
    """The input stage as the pool reads it: targets, then, after a cancel, the leftovers.

    The pool iterates the source; when the run is cancelled it asks `leftovers()` for the
    targets the source had already read but not handed over, and reports each CANCELLED
    instead of silently dropping it. The source never calls into the pool.
    """

    def __aiter__(self) -> AsyncIterator[Target]: ...

    def leftovers(self) -> list[Target]:
        """Targets read from the input but never handed out (taken once)."""
        ...


class TargetReader:
    """Reads targets from inputs, one after another, as one lazy stream (a `TargetSource`).

    Args:
        inputs: the opened inputs, in order.

    `read_count` and `done` let a display show the total once input is fully
    read. After cancellation, `leftovers()` gives the targets of lines that
    were already read from the input but not yet handed out, so that they can
    be reported instead of silently dropped.
    """

    def __init__(self, inputs: Sequence[Input]) -> None:
        self._inputs = list(inputs)
        self._pending: deque[Target] = deque()
        self.read_count = 0
        self.done = False
        self.errors: list[str] = []  # why reading stopped early (an I/O error)

    def __aiter__(self) -> AsyncIterator[Target]:
        return self._read_all()

    async def _read_all(self) -> AsyncIterator[Target]:
        for source in self._inputs:
            if source.urls is not None:
                for line_no, url in enumerate(source.urls, source.first_line):
                    # As the bytes given (argv undecodable as UTF-8 is a FAIL, as in a file).
                    target = parse_line(os.fsencode(url), source=source.name, line=line_no)
                    if target is not None:
                        self.read_count += 1
                        yield target
                continue
            splitter = _LineSplitter()
            decoder = _Decoder()
            line_no = 0
            threaded = None if source.is_regular_file else _ThreadedChunks(source.fd)
            while True:
                try:
                    if threaded is None:
                        chunk = os.read(source.fd, CHUNK)
                    else:
                        chunk = await threaded.read()
                except OSError as exc:
                    # What was read still gets its results; the rest of the input is lost.
                    reason = (exc.strerror or str(exc)).lower()
                    self.errors.append(f"cannot read {source.name}: {reason}")
                    chunk = b""
                if chunk:
                    lines = splitter.feed(decoder.feed(chunk))
                else:
                    lines = splitter.feed(decoder.end()) + splitter.end()
                for raw in lines:
                    line_no += 1
                    target = parse_line(
                        raw, source=source.name, line=line_no, encoding=decoder.encoding
                    )
                    if target is not None:
                        self._pending.append(target)
                while self._pending:
                    self.read_count += 1
                    yield self._pending.popleft()
                if not chunk:
                    break
            if self.errors:
                break
        self.done = True

    def leftovers(self) -> list[Target]:
        """Targets already read from the input but not handed out yet (for cancellation)."""
        pending = list(self._pending)
        self._pending.clear()
        return pending


def open_inputs(
    paths: Sequence[str], *, stdin_fd: int = 0, directories: bool = False
) -> list[Input]:
    """Open every input up front, so an unreadable file is reported before fetching.

    An argument that starts with `http://` or `https://` is a URL, not a file name: each
    run of such arguments becomes one input named `<args>`, in command-line order among
    the files, its line numbers counting the URL arguments from 1. No paths: standard input.
    With `directories` (link checking), a directory is an input too, walked later.

    Raises:
        OSError: a file cannot be opened (the CLI reports it as a usage error).
    """
    inputs: list[Input] = []
    url_count = 0
    for path in paths or ["-"]:
        if is_url_argument(path):
            url_count += 1
            last = inputs[-1] if inputs else None
            if last is not None and last.urls is not None:
                last.urls += (path,)
            else:
                inputs.append(Input(URL_ARGUMENTS, -1, (path,), url_count))
            continue
        if path == "-":
            inputs.append(Input("-", stdin_fd))
            continue
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            if not directories:
                raise IsADirectoryError(21, "Is a directory", path)
            inputs.append(Input(path, -1, directory=True))
            continue
        inputs.append(Input(path, fd))
    return inputs


def decode_document(data: bytes) -> str:
    """The text of a document: by its byte-order mark (UTF-16, UTF-32; a UTF-8 one is
    dropped), else UTF-8.

    Raises:
        UnicodeDecodeError: the document is not valid in its encoding (Latin-1 text, say).
    """
    decoder = _Decoder()
    utf8 = decoder.feed(data) + decoder.end()
    try:
        return utf8.decode("utf-8")
    except UnicodeDecodeError as exc:
        exc.reason = f"not valid {decoder.encoding}"
        raise


async def read_document(source: Input) -> str:
    """The whole text of an input (for `--extract`), decoded by `decode_document`.

    A pipe is read on a daemon thread, as for URL lists, so Ctrl-C is not delayed.

    Raises:
        OSError: the input cannot be read.
        UnicodeDecodeError: it is not valid UTF-8 (or UTF-16/32 by its byte-order mark).
    """
    if source.urls is not None:
        raise ValueError("page URLs are documents to fetch, not to read")
    threaded = None if source.is_regular_file else _ThreadedChunks(source.fd)
    chunks: list[bytes] = []
    while True:
        chunk = os.read(source.fd, CHUNK) if threaded is None else await threaded.read()
        if not chunk:
            break
        chunks.append(chunk)
    return decode_document(b"".join(chunks))
