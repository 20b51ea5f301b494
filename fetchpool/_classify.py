"""Why a fetch failed: an exception raised while fetching becomes a `Failure` (kind, message).

Errors are recognised by type: the standard library's (`socket.gaierror`, `ssl.SSLError`,
`OSError`), httpx's, the transport's `EmptyReply`, and the fetcher's own, each of which
carries its kind:

    FetchFailure
      ├── RedirectError  (_redirects) too many redirects, a loop, a bad Location   redirect
      ├── _TooLarge      (_fetch)     a body to save over `max_filesize`            size
      └── _SaveError     (_fetch)     a body that could not be saved                invalid
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import httpx

from ._decode import DecodeError
from ._models import Kind
from ._tls import describe_verify_error
from ._transport import EmptyReply, lookup_in_progress

__all__ = ["Failure", "FetchFailure", "classify", "deadline_failure"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified error: why an attempt failed, in words a person understands."""

    kind: Kind
    message: str
    transient: bool = False  # worth another attempt although of its kind (DNS: EAI_AGAIN)


class FetchFailure(Exception):
    """A failure the fetcher itself finds (a redirect loop, a body too large); its message is
    the result's error as it stands."""

    kind = Kind.PROTOCOL


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (cycle-safe)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _describe_oserror(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if exc.errno is not None and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _describe_tls(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {describe_verify_error(exc)}"
    reason = exc.reason or str(exc)
    return f"TLS: {str(reason).lower().replace('_', ' ')}"


def classify(exc: BaseException, *, timeout: float) -> Failure:
    """Map an exception raised while fetching to a `Failure` (kind and message)."""
    causes = _chain(exc)
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            detail = cause.strerror or str(cause)
            # A time-out or SERVFAIL may pass; "no such name" is an answer.
            again = cause.errno == socket.EAI_AGAIN
            if detail.startswith("DNS "):  # already says it ("DNS lookup timed out")
                return Failure(Kind.DNS, detail, again)
            return Failure(Kind.DNS, f"DNS: {detail.lower()}", again)
        if isinstance(cause, ssl.SSLError):
            return Failure(Kind.TLS, _describe_tls(cause))
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return Failure(Kind.TIMEOUT, f"timed out after {timeout:g} s")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return Failure(Kind.INVALID, f"invalid URL: {exc}")
    if isinstance(exc, FetchFailure):
        return Failure(exc.kind, str(exc))
    if isinstance(exc, DecodeError):
        return Failure(Kind.PROTOCOL, str(exc))
    if isinstance(exc, EmptyReply):
        # The connection was closed on us before any response (curl: "Empty reply from server").
        return Failure(Kind.CONNECT, "server closed the connection without a response")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        message = str(exc).rstrip(".") or "protocol error"
        return Failure(Kind.PROTOCOL, message[0].lower() + message[1:])
    oserrors = [c for c in causes if isinstance(c, OSError) and not isinstance(c, TimeoutError)]
    if oserrors:
        # The innermost error with an errno is the most specific ("connection refused").
        specific = next((c for c in reversed(oserrors) if c.errno is not None), oserrors[-1])
        return Failure(Kind.CONNECT, _describe_oserror(specific))
    if isinstance(exc, httpx.ConnectError | httpx.ReadError | httpx.WriteError):
        text = str(exc) or "connection failed"
        return Failure(Kind.CONNECT, text[0].lower() + text[1:])
    if isinstance(exc, httpx.HTTPError):
        return Failure(Kind.PROTOCOL, str(exc) or type(exc).__name__)
    return Failure(Kind.PROTOCOL, f"unexpected error: {type(exc).__name__}: {exc}")


def deadline_failure(timeout: float) -> Failure:
    """Why the deadline around a fetch ended it: a DNS lookup that had no answer in time
    (the resolver marks one in progress), else a time-out."""
    if lookup_in_progress.get() is not None:
        lookup_in_progress.set(None)
        return Failure(Kind.DNS, f"DNS lookup timed out (no answer in {timeout:g} s)")
    return classify(TimeoutError(), timeout=timeout)
