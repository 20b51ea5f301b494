"""The transport's errors that a caller tells apart by type, and httpx's mapped onto them.

httpx.RemoteProtocolError
  └── EmptyReply   the connection closed before any byte of a response
"""

from __future__ import annotations

import httpx

__all__ = ["EmptyReply", "as_empty_reply"]


class EmptyReply(httpx.RemoteProtocolError):
    """The server closed the connection before sending any byte of a response."""

    def __init__(self) -> None:
        super().__init__("server disconnected without sending a response")


def as_empty_reply(exc: httpx.RemoteProtocolError) -> EmptyReply | None:
    """An `EmptyReply` for `exc` when it says so in the words of httpx's own transports.

    httpcore (under httpx's transports: HTTP/2, proxies, a caller's client) raises a plain
    `RemoteProtocolError("Server disconnected without sending a response.")`: its text is the
    only sign, so it is read here, at the seam, and nowhere else.
    """
    if isinstance(exc, EmptyReply):
        return exc
    return EmptyReply() if "without sending a response" in str(exc) else None
