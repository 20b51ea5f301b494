"""Undo a response's Content-Encoding as a stream, a bounded piece at a time.

It exists because httpx's decoders are unbounded: they call zlib's `decompress(data)` without
`max_length`, so one 64 KiB read of a gzip bomb (zeros compress about a thousandfold) comes
back as one 64 MB piece, and a few workers saving bombs hold gigabytes. Here every call to
zlib asks for at most `PIECE_BYTES` of output, and what zlib could not inflate yet stays in
its `unconsumed_tail` until the caller asks for the next piece. A caller that stops asking
(its size limit is reached) stops the decompression there.

Codings: `gzip` and `x-gzip` (several members one after the other, as `cat a.gz b.gz`, and
zero padding after the last, as gzip(1) and Python's `gzip` module accept them), `deflate`
(zlib-wrapped as RFC 9110 says, or a bare deflate stream as some servers send; httpx accepts
both) and `identity`. Stacked codings (`Content-Encoding: deflate, gzip`) are undone last
first. Anything else (`br`, `zstd`, `compress`) is refused before a byte is read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zlib import _Decompress

__all__ = ["PIECE_BYTES", "BodyDecoder", "DecodeError"]

PIECE_BYTES = 256 * 1024
"""The most one call to zlib may inflate: the bound on memory per decoding step."""

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


class DecodeError(Exception):
    """A body that cannot be decoded: an unknown coding, or a truncated or corrupt stream."""


def _zlib_header(data: bytes) -> bool:
    """True when `data` starts with a zlib header (RFC 1950), not a bare deflate stream.

    The header is CM=8 (deflate) in the low nibble of its first byte, and the two bytes read
    as a 16-bit number are a multiple of 31. A bare stream practically never starts so: its
    first block would have to be a non-final stored block with nonzero padding bits.
    """
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _Inflater:
    """One gzip or deflate layer: compressed bytes in, pieces of at most `limit` bytes out."""

    def __init__(self, coding: str, limit: int) -> None:
        self._coding = coding
        self._gzip = coding != "deflate"
        self._limit = limit
        self._zlib: _Decompress | None = None  # None between streams (gzip members)
        self._ends = 0  # streams (members) inflated to their end
        self._head = b""  # bytes kept until it is known how the next stream starts

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate `data`, yielding each piece as soon as it is out (lazily: stop at will)."""
        while True:
            if self._zlib is None:
                data = self._begin(data)
                if self._zlib is None:
                    return
            inflater = self._zlib
            try:
                piece = inflater.decompress(data, self._limit)
            except zlib.error as exc:
                reason = str(exc).rpartition(": ")[2]  # "Error -3 while decompressing data: ..."
                raise DecodeError(f"corrupt {self._coding} body: {reason}") from exc
            if piece:
                yield piece
            if inflater.eof:
                self._zlib = None
                self._ends += 1
                data = inflater.unused_data
            else:
                data = inflater.unconsumed_tail
                # A full piece may leave output inside zlib even when all input is taken.
                if not data and len(piece) < self._limit:
                    return

    def _begin(self, data: bytes) -> bytes:
        """Start the next stream if `data` (after what was kept) says how; return its input."""
        if self._ends and not self._gzip:
            return b""  # after the end of a deflate stream: ignored, as zlib and httpx do
        data = self._head + data
        if self._ends:
            data = data.lstrip(b"\0")  # padding after a gzip member
        if len(data) < 2:
            self._head = data
            return b""
        self._head = b""
        if self._gzip:
            if self._ends and not data.startswith(_GZIP_MAGIC):
                raise DecodeError(f"corrupt {self._coding} body: data after the end is not gzip")
            wbits = _GZIP_WBITS
        else:
            wbits = _ZLIB_WBITS if _zlib_header(data) else _RAW_WBITS
        self._zlib = zlib.decompressobj(wbits)
        return data

    def finish(self) -> None:
        """The input has ended: raise `DecodeError` if a stream was cut short."""
        if self._zlib is not None or self._head:
            raise DecodeError(f"truncated {self._coding} body")


class BodyDecoder:
    """Decodes one response body by its Content-Encoding, in pieces of bounded size.

    Args:
        codings: the Content-Encoding values in the order the server applied them, e.g.
            `headers.get_list("content-encoding", split_commas=True)`; `identity` and empty
            entries are skipped, case does not matter.
        piece_bytes: the most one decompression step may produce.

    Raises:
        DecodeError: a coding that cannot be decoded (before any body byte is read).
    """

    def __init__(self, codings: Iterable[str], *, piece_bytes: int = PIECE_BYTES) -> None:
        layers: list[_Inflater] = []
        for coding in codings:
            name = coding.strip().lower()
            if name in ("", "identity"):
                continue
            if name not in ("gzip", "x-gzip", "deflate"):
                raise DecodeError(f"cannot decode Content-Encoding {coding.strip()!r}")
            layers.append(_Inflater(name, piece_bytes))
        layers.reverse()  # the last coding applied is the first undone
        self._layers = layers

    @property
    def identity(self) -> bool:
        """True when the body is not encoded: `feed` yields its input unchanged."""
        return not self._layers

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of `data`, the next part of the body, produced lazily."""
        return self._through(0, data)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._layers):
            if data:
                yield data
            return
        for piece in self._layers[index].feed(data):
            yield from self._through(index + 1, piece)

    def finish(self) -> None:
        """The body has ended: raise `DecodeError` if it was truncated."""
        for layer in self._layers:
            layer.finish()
