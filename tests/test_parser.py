"""The sans-IO response parser against h11, on generated responses cut at random places.

h11 (httpcore's HTTP/1.1 engine) is the reference: for every generated response, both parsers
must see the same status, reason, headers, body bytes and end of message, however the bytes
are split into reads; and both must refuse the same malformed inputs. The generator is seeded,
so a failure names the seed that reproduces it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import h11
import httpx
import pytest

from fetchpool._transport import EmptyReply, as_empty_reply
from fetchpool._transport._parser import DONE, UNTIL_CLOSE, ResponseParser

SEEDS = range(400)
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~"
_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t"
_REASONS = ["OK", "Not Found", "", "Moved Permanently", "I'm a teapot", "Weird  reason ."]


def _token(rng: random.Random) -> str:
    return "".join(rng.choice(_TOKEN_CHARS) for _ in range(rng.randint(1, 12)))


def _value(rng: random.Random) -> str:
    text = "".join(rng.choice(_VALUE_CHARS) for _ in range(rng.randint(0, 30)))
    return text.strip(" \t")


def generate(seed: int) -> tuple[bytes, bool]:
    """One response as bytes, and whether its body is delimited by the end of the connection."""
    rng = random.Random(seed)
    status = rng.choice([200, 201, 204, 301, 304, 404, 418, 500, 503, rng.randint(200, 599)])
    version = rng.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])
    headers = [(_token(rng), _value(rng)) for _ in range(rng.randint(0, 8))]
    # No framing headers among the random ones: the framing is chosen below.
    headers = [
        (n, v)
        for n, v in headers
        if n.lower() not in ("content-length", "transfer-encoding", "connection")
    ]
    body = rng.randbytes(rng.choice([0, 1, 10, 100, 5000, rng.randint(0, 70000)]))
    framing = rng.choice(["length", "chunked", "close"])
    if status in (204, 304):
        framing, body = "length", b""
    until_close = False
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
        payload = body
    elif framing == "chunked" and version == b"HTTP/1.1":
        headers.append(("Transfer-Encoding", rng.choice(["chunked", "Chunked"])))
        pieces = []
        rest = body
        while rest:
            n = rng.randint(1, max(1, len(rest)))
            ext = rng.choice(["", ";a=b", ";x"])
            pieces.append(b"%x%s\r\n%s\r\n" % (n, ext.encode(), rest[:n]))
            rest = rest[n:]
        trailer = rng.choice([b"", b"X-Trailer: yes\r\n"])
        payload = b"".join(pieces) + b"0\r\n" + trailer + b"\r\n"
    else:
        headers.append(("Connection", "close"))
        payload = body
        until_close = True
    rng.shuffle(headers)
    reason = rng.choice(_REASONS).encode()
    head = b"%s %d %s\r\n" % (version, status, reason)
    head += b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in headers)
    return head + b"\r\n" + payload, until_close


def splits(data: bytes, rng: random.Random) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        n = rng.choice([1, 2, 7, 100, 4096, len(data)])
        yield data[i : i + n]
        i += n


def _fields(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # Names compare case-insensitively; h11 also lower-cases the Transfer-Encoding value.
    return [(n.lower(), v.lower() if n.lower() == b"transfer-encoding" else v) for n, v in fields]


def with_h11(data: bytes, pieces: list[bytes], until_close: bool) -> tuple[object, ...]:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    head: object = None
    body = bytearray()
    ended = False
    feeds = [*pieces, b""] if until_close else pieces
    for piece in feeds:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.Response):
                head = (
                    event.status_code,
                    event.reason,
                    _fields(list(event.headers)),
                )
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                ended = True
            elif isinstance(event, h11.ConnectionClosed):
                break
    return head, bytes(body), ended


def with_ours(pieces: list[bytes], until_close: bool) -> tuple[object, ...]:
    parser = ResponseParser()
    parser.expect(is_head=False)
    for piece in pieces:
        parser.feed(piece)
    if until_close:
        assert parser.state == UNTIL_CLOSE or parser.state == DONE
        assert parser.eof_error() is None
    head = None
    if parser.head is not None:
        _, status, reason, fields = parser.head
        head = (status, reason, _fields(fields))
    return head, b"".join(parser.chunks), parser.state == DONE


@pytest.mark.parametrize("seed", SEEDS)
def test_parser_agrees_with_h11_on_generated_responses(seed: int) -> None:
    data, until_close = generate(seed)
    pieces = list(splits(data, random.Random(seed + 1_000_000)))
    assert with_ours(pieces, until_close) == with_h11(data, pieces, until_close), seed


MALFORMED = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 70_000,  # a head over 64 KiB, still unfinished
]


def _all_events(conn: h11.Connection) -> None:
    while conn.next_event() not in (h11.NEED_DATA, h11.PAUSED):
        pass


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_parser_refuses_what_h11_refuses(data: bytes) -> None:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    with pytest.raises(h11.RemoteProtocolError):
        _all_events(conn)
    parser = ResponseParser()
    parser.expect(is_head=False)
    with pytest.raises(httpx.RemoteProtocolError):
        parser.feed(data)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "5 bytes missing"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "chunked body"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "middle of the response headers"),
        (b"", "without sending a response"),
    ],
)
def test_an_end_of_connection_mid_message_says_what_was_cut(data: bytes, text: str) -> None:
    parser = ResponseParser()
    parser.expect(is_head=False)
    if data:
        parser.feed(data)
    error = parser.eof_error()
    assert isinstance(error, httpx.RemoteProtocolError)
    assert text in str(error)


def test_an_end_of_connection_before_any_byte_is_an_empty_reply() -> None:
    parser = ResponseParser()
    parser.expect(is_head=False)
    assert isinstance(parser.eof_error(), EmptyReply)


def test_httpx_transports_empty_reply_is_mapped_to_the_typed_one() -> None:
    # httpcore's words, under httpx's own transports (HTTP/2, proxies, a caller's client).
    foreign = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    assert isinstance(as_empty_reply(foreign), EmptyReply)
    assert as_empty_reply(httpx.RemoteProtocolError("illegal status line")) is None
