"""A sans-IO HTTP/1.1 response parser: bytes in, a head, body pieces and an end out.

`ResponseParser` knows nothing of sockets or event loops. Feed it what arrived with
`feed()`; it sets `head` once the status line and headers are complete, hands each body
piece to `_push()` and marks the end of the message with `state == DONE`. A connection
subclasses it and overrides `_push()` and `_wake()` to apply flow control and wake the
reader; on its own (as the differential test against h11 uses it) it collects the body in
`chunks`.

The rules are RFC 9112's, with h11's limits: a head over 64 KiB is an error, bare LF line
ends and obsolete line folding are tolerated, a `Transfer-Encoding` whose last coding is not
`chunked` reads until the connection closes, and conflicting `Content-Length` values are
rejected.
"""

from __future__ import annotations

import re
from collections import deque

import httpx

from ._errors import EmptyReply

__all__ = [
    "BROKEN",
    "CHUNKED",
    "DONE",
    "HEAD",
    "IDLE",
    "LENGTH",
    "MAX_CHUNK_LINE",
    "MAX_HEAD_BYTES",
    "UNTIL_CLOSE",
    "Head",
    "ResponseParser",
    "parse_fields",
    "parse_fields_fully",
]


MAX_HEAD_BYTES = 64 * 1024  # status line + headers; more is a protocol error, as in h11
MAX_CHUNK_LINE = 4 * 1024  # a chunk-size line or one trailer line

_HEAD_END = re.compile(rb"\n\r?\n")
# Header lines that are all plainly `name: value` CR LF (no folding, no bare CR or LF, no
# space in a name) are split without checks line by line; other blocks take the full parser.
PLAIN_FIELDS = re.compile(rb"(?:[^:\s]+:[^\r\n]*\r\n)*[^:\s]+:[^\r\n]*\r?")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Parser states.
IDLE = 0  # no response expected
HEAD = 1  # waiting for (the rest of) the status line and headers
LENGTH = 2  # body framed by Content-Length
CHUNKED = 3  # chunked body
UNTIL_CLOSE = 4  # body ends when the server closes
DONE = 5  # response complete
BROKEN = 6  # protocol error or connection lost mid-response

# Sub-states of the chunked parser.
_CH_SIZE = 0
_CH_DATA = 1
_CH_DATA_END = 2
_CH_TRAILER = 3

# (http version, status, reason phrase, header fields)
Head = tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]


def parse_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of the header lines that follow the status line."""
    if not block:
        return []
    if not PLAIN_FIELDS.fullmatch(block):
        return parse_fields_fully(block)
    headers = []
    for line in block.rstrip(b"\r").split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers.append((name, value.strip(b" \t")))
    return headers


def parse_fields_fully(block: bytes) -> list[tuple[bytes, bytes]]:
    """`parse_fields` for any block: bare LF, obsolete folding, and the checks."""
    headers: list[tuple[bytes, bytes]] = []
    for line in block.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            # Obsolete line folding: the line continues the previous header's value.
            if not headers:
                raise httpx.RemoteProtocolError("malformed header (continuation first)")
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or b" " in name or b"\t" in name:
            raise httpx.RemoteProtocolError(f"malformed header line {bytes(line[:80])!r}")
        headers.append((name, value.strip(b" \t")))
    return headers


def _content_length(value: bytes) -> int:
    # "5, 5" is allowed when every value is the same (RFC 9110 section 8.6).
    values = {v.strip(b" \t") for v in value.split(b",")} if b"," in value else {value}
    if len(values) != 1:
        raise httpx.RemoteProtocolError("conflicting Content-Length values")
    (v,) = values
    if not v.isdigit() or len(v) > 18:
        raise httpx.RemoteProtocolError(f"invalid Content-Length {bytes(v[:20])!r}")
    return int(v)


class ResponseParser:
    """Parses one HTTP/1.1 response after another from the bytes fed to it.

    Call `expect(is_head)` before each response, then `feed()` what arrives, and `eof()`
    when the peer closes. `feed()` raises `httpx.RemoteProtocolError` on malformed input;
    after that the parser is unusable.
    """

    def __init__(self) -> None:
        self.state = IDLE
        self.is_head = False  # the request was HEAD: no body follows the head
        self.keep_alive = True  # the connection may carry another response after this one
        self.received = False  # any byte of the current response arrived (set by the feeder)
        self.head: Head | None = None
        self.remaining = 0
        self.chunk_state = _CH_SIZE
        self.head_buf = bytearray()
        self.head_scan = 0
        self.line_buf = bytearray()
        self.trailer_bytes = 0
        self.chunks: deque[bytes] = deque()

    # -- hooks ----------------------------------------------------------------------------------

    def _push(self, data: bytes) -> None:
        """A piece of body arrived. Collected in `chunks` unless overridden (then it wakes)."""
        self.chunks.append(data)

    def _wake(self) -> None:
        """The head, a body piece or the end arrived. Nothing to do unless overridden."""

    # -- driving --------------------------------------------------------------------------------

    def expect(self, *, is_head: bool) -> None:
        """Get ready for the next response (to a HEAD request when `is_head`)."""
        self.state = HEAD
        self.is_head = is_head
        self.keep_alive = True
        self.received = False
        self.head = None

    def feed(self, data: bytes) -> None:
        """Parse `data`; bytes past the end of the response mark the connection unusable."""
        self.received = True
        while data:
            state = self.state
            if state == HEAD:
                data = self._feed_head(data)
            elif state == LENGTH:
                n = self.remaining
                if len(data) < n:
                    self.remaining = n - len(data)
                    self._push(data)
                    return
                self._push(data[:n])
                self.remaining = 0
                data = data[n:]
                self._finish()
            elif state == CHUNKED:
                data = self._feed_chunked(data)
            elif state == UNTIL_CLOSE:
                self._push(data)
                return
            else:
                # Bytes after the end of the response (pipelining junk, a second response).
                self.keep_alive = False
                return

    def eof_error(self) -> Exception | None:
        """The peer closed: finish a read-until-close body (None), or say what was cut short."""
        state = self.state
        if state == UNTIL_CLOSE:
            self._finish()
            return None
        if state == HEAD:
            if not self.received:
                return EmptyReply()
            return httpx.RemoteProtocolError(
                "server disconnected in the middle of the response headers"
            )
        if state == LENGTH:
            return httpx.RemoteProtocolError(
                f"server disconnected before the end of the body ({self.remaining} bytes missing)"
            )
        if state == CHUNKED:
            return httpx.RemoteProtocolError("server disconnected in the middle of a chunked body")
        return None

    # -- the head -------------------------------------------------------------------------------

    def _feed_head(self, data: bytes) -> bytes:
        buf = self.head_buf
        whole: bytes | bytearray
        if buf:
            buf += data
            whole = buf
        else:
            # Tolerate blank lines before the status line (RFC 9112 section 2.2).
            if data[:1] in (b"\r", b"\n"):
                data = data.lstrip(b"\r\n")
                if not data:
                    return b""
            whole = data
        m = _HEAD_END.search(whole, self.head_scan)
        if m is None:
            if len(whole) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response headers are too large (over 64 KiB)")
            if not buf:
                buf += data
            self.head_scan = max(0, len(whole) - 2)
            return b""
        end = m.start()
        if end > MAX_HEAD_BYTES:
            raise httpx.RemoteProtocolError("response headers are too large (over 64 KiB)")
        head = bytes(whole[:end])
        rest = bytes(whole[m.end() :])
        if buf:
            buf.clear()
        self.head_scan = 0
        self._parse_head(head)
        return rest

    def _parse_head(self, head: bytes) -> None:
        status_line, _, block = head.partition(b"\n")
        if status_line.endswith(b"\r"):
            status_line = status_line[:-1]
        parts = status_line.split(b" ", 2)
        version = parts[0]
        if len(parts) < 2 or not (version == b"HTTP/1.1" or version == b"HTTP/1.0"):
            raise httpx.RemoteProtocolError(
                f"malformed status line {bytes(status_line[:80])!r}"
                if status_line.startswith(b"HTTP/")
                else "response is not HTTP/1.x (bad status line)"
            )
        code = parts[1]
        if len(code) != 3 or not code.isdigit():
            raise httpx.RemoteProtocolError(f"malformed status code {bytes(code[:20])!r}")
        status = int(code)
        if status < 100:
            raise httpx.RemoteProtocolError(f"invalid status code {status}")
        reason = parts[2] if len(parts) == 3 else b""

        headers = parse_fields(block)
        content_length: int | None = None
        chunked = False
        has_te = False
        conn_close = False
        conn_keep_alive = False
        for name, value in headers:
            n = len(name)
            if n == 14 or n == 17 or n == 10:
                lname = name.lower()
                if lname == b"content-length":
                    cl = _content_length(value)
                    if content_length is not None and cl != content_length:
                        raise httpx.RemoteProtocolError("conflicting Content-Length headers")
                    content_length = cl
                elif lname == b"transfer-encoding":
                    has_te = True
                    chunked = value.rsplit(b",", 1)[-1].strip(b" \t").lower() == b"chunked"
                elif lname == b"connection":
                    tokens = value.lower()
                    if b"close" in tokens:
                        conn_close = True
                    if b"keep-alive" in tokens:
                        conn_keep_alive = True

        if 100 <= status < 200 and status != 101:
            return  # informational: the real response follows; stay in HEAD

        if version == b"HTTP/1.1":
            if conn_close:
                self.keep_alive = False
        elif not conn_keep_alive or conn_close:
            self.keep_alive = False
        self.head = (version, status, reason, headers)

        if self.is_head or status == 204 or status == 304 or status == 101:
            if status == 101:
                self.keep_alive = False
            self._finish()
        elif has_te:
            if chunked:
                self.state = CHUNKED
                self.chunk_state = _CH_SIZE
            else:
                self.state = UNTIL_CLOSE
                self.keep_alive = False
        elif content_length is not None:
            if content_length == 0:
                self._finish()
            else:
                self.state = LENGTH
                self.remaining = content_length
        else:
            self.state = UNTIL_CLOSE
            self.keep_alive = False
        self._wake()

    # -- chunked bodies -------------------------------------------------------------------------

    def _take_line(self, data: bytes) -> tuple[bytes | None, bytes]:
        i = data.find(b"\n")
        buf = self.line_buf
        if i < 0:
            buf += data
            if len(buf) > MAX_CHUNK_LINE:
                raise httpx.RemoteProtocolError("chunked encoding line too long")
            return None, b""
        if buf:
            buf += data[:i]
            line = bytes(buf)
            buf.clear()
        else:
            line = data[:i]
        if len(line) > MAX_CHUNK_LINE:
            raise httpx.RemoteProtocolError("chunked encoding line too long")
        if line.endswith(b"\r"):
            line = line[:-1]
        return line, data[i + 1 :]

    def _feed_chunked(self, data: bytes) -> bytes:
        while data:
            cs = self.chunk_state
            if cs == _CH_DATA:
                n = self.remaining
                if len(data) < n:
                    self.remaining = n - len(data)
                    self._push(data)
                    return b""
                self._push(data[:n])
                data = data[n:]
                self.remaining = 0
                self.chunk_state = _CH_DATA_END
                continue
            line, data = self._take_line(data)
            if line is None:
                return b""
            if cs == _CH_SIZE:
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not _HEX.fullmatch(size_text):
                    raise httpx.RemoteProtocolError(
                        f"malformed chunk size {bytes(size_text[:20])!r}"
                    )
                size = int(size_text, 16)
                if size == 0:
                    self.chunk_state = _CH_TRAILER
                    self.trailer_bytes = 0
                else:
                    self.remaining = size
                    self.chunk_state = _CH_DATA
            elif cs == _CH_DATA_END:
                if line:
                    raise httpx.RemoteProtocolError("malformed chunked body (no CRLF after data)")
                self.chunk_state = _CH_SIZE
            else:  # trailers, ignored; an empty line ends the message
                if not line:
                    self._finish()
                    return data
                self.trailer_bytes += len(line)
                if self.trailer_bytes > MAX_HEAD_BYTES:
                    raise httpx.RemoteProtocolError("chunked trailers are too large")
        return b""

    def _finish(self) -> None:
        self.state = DONE
        self._wake()
