"""Fetch one URL into one `Result`: its attempts within the URL's deadline, and the body of
each final response (read up to the cap and discarded, read into a `Page`, or saved).

The rules it applies have modules of their own: `_retry` (whether to try again and after how
long), `_redirects` (following a chain), `_headers` (what each request carries), `_classify`
(an exception as a kind and a message), `_client` (the transport requests go to).

`Fetcher.fetch()` never raises for a URL that fails: every failure becomes a
`Result` whose `kind` says why. Only cancellation propagates.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import httpx

from ._classify import Failure, FetchFailure, classify, deadline_failure
from ._client import make_transport as make_transport  # _pool imports it from here
from ._client import transport_for
from ._config import MAX_REDIRECTS, TRANSIENT_STATUSES, Settings
from ._deadline import Deadlines
from ._decode import BodyDecoder, DecodeError
from ._headers import RequestHeaders
from ._models import Kind, Outcome, Result, Target
from ._redirects import REDIRECT_BODY_CAP, RedirectChain, RedirectError, redirect_location
from ._retry import Jitter, backoff, is_transient
from ._transport import as_empty_reply

if TYPE_CHECKING:
    from ._rate import RateLimiter
    from ._save import SaveDir

PAGE_CAP = 10 * 1024 * 1024  # the most of a page that is read to find its links or anchors
_NO_BODY = httpx.ByteStream(b"")  # the body of every request fetchpool sends (GET or HEAD)


class _TooLarge(FetchFailure):
    """A body to save is over `max_filesize`."""

    kind = Kind.SIZE


class _SaveError(FetchFailure):
    """A body could not be saved (no safe name, or the file system refused)."""

    kind = Kind.INVALID


class ResultLookup(Protocol):
    """A cache of earlier OK results (see `fetchpool._cache.ResultCache`)."""

    def get(self, url: str) -> _Cached | None: ...


class _Cached(Protocol):
    def to_result(self, target: Target) -> Result: ...


class Page:
    """The body of a page that link checking reads (its links, its anchors), kept in memory.

    Pass one to `Fetcher.fetch(target, page=...)`: when the final response's status is
    accepted, its body is read whole up to `cap` bytes (decoded from gzip or deflate) instead
    of being discarded; `final_url` and `content_type` say what it is. A page is always
    fetched with GET.
    """

    __slots__ = ("body", "cap", "content_type", "final_url")

    def __init__(self, cap: int = PAGE_CAP) -> None:
        self.cap = cap
        self.body = b""
        self.content_type = ""
        self.final_url = ""

    @property
    def is_html(self) -> bool:
        """True when the response said it is HTML (`text/html` or `application/xhtml+xml`)."""
        media = self.content_type.split(";", 1)[0].strip().lower()
        return media in ("text/html", "application/xhtml+xml")

    def text(self) -> str:
        """The body as text: by the charset the response names, else UTF-8, with replacement."""
        charset = "utf-8"
        for parameter in self.content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"').lower()
        try:
            return self.body.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", "replace")


@dataclass(slots=True)
class _Attempt:
    """What one attempt (with its redirects) produced."""

    status: int | None = None
    reason: str | None = None
    final_url: str | None = None
    bytes_read: int = 0
    http_version: str | None = None
    retry_after: str | None = None
    failure: Failure | None = None
    save_path: Path | None = None  # reserved once per target, kept across attempts
    saved_to: str | None = None


class Fetcher:
    """Fetches targets by the rules of `Settings`, every request through one transport.

    Every request goes to `transport.handle_async_request()`, whatever the mode (fetchpool's
    own transport, HTTP/2, proxies, a caller's client): redirects, credentials, cookies and
    headers are handled here, the same way for all.

    Args:
        client: a shared `httpx.AsyncClient`, used when no `transport` is given: a client from
            `make_client` through its transport, any other through `client.send()` (its
            transport, proxies, TLS and auth apply; its default headers and cookies do not).
        settings: the run settings.
        clock: monotonic clock, injectable for tests.
        sleep: async sleep, injectable for tests.
        cache: earlier OK results; a URL found there is not fetched again.
        transport: where requests go (see `make_transport`); it wins over `client`.
        jitter: draws the backoff's random part from [low, high]; pass a seeded
            `random.Random().uniform` (or a constant) for repeatable waits.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cache: ResultLookup | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        jitter: Jitter = random.uniform,
    ) -> None:
        if transport is None:
            if client is None:
                raise TypeError("Fetcher needs a client or a transport")
            transport = transport_for(client)
        # Straight to the transport: the client layer (cookie jar, auth flow, header merging)
        # costs more per request than the transport itself, and fetchpool does those parts.
        self._transport = transport
        # No per-step timers in the transport: the deadline around the whole fetch
        # already bounds every step, and a timer per read costs time per request.
        self._extensions = {"timeout": httpx.Timeout(None).as_dict()}
        self._settings = settings
        self._deadlines = Deadlines(settings.timeout)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._cache = cache
        self._headers = RequestHeaders(settings)
        self._rate: RateLimiter | None = None
        if settings.rate:
            from ._rate import RateLimiter

            self._rate = RateLimiter(settings.rate, clock=clock)
        self._save: SaveDir | None = None
        if settings.save_dir:
            from ._save import SaveDir

            self._save = SaveDir(Path(settings.save_dir), overwrite=settings.overwrite)

    async def fetch(
        self, target: Target, page: Page | None = None, *, follow_redirects: bool | None = None
    ) -> Result:
        """Fetch one target; always returns its one result (raises only on cancellation).

        With `page`, an accepted response's body is read into it (see `Page`) and the request
        is a GET whatever `settings.method` says; a cached result is not used, as it has no body.
        `follow_redirects` overrides the setting for this fetch (a robots.txt is read through
        its redirects whatever the run does with its links: RFC 9309 §2.3.1.2).
        """
        follow = self._settings.follow_redirects if follow_redirects is None else follow_redirects
        if target.invalid is not None:
            return Result.failed(target, Kind.INVALID, target.invalid)
        if (
            page is None
            and self._cache is not None
            and (cached := self._cache.get(target.url)) is not None
        ):
            return cached.to_result(target)
        settings = self._settings
        if self._rate is not None:
            # Waiting for a `rate` slot is queueing, not fetching: it is not on the URL's clock.
            await self._rate.acquire()
        start = self._clock()
        deadline = start + settings.timeout
        attempts = 0
        attempt = _Attempt()
        try:
            with self._deadlines.scope():
                while True:
                    attempts += 1
                    if attempts > 1:
                        attempt = _Attempt(save_path=attempt.save_path)
                    await self._attempt(target, attempt, attempts, page, follow)
                    if attempts > settings.retries or not is_transient(
                        attempt.failure, attempt.status
                    ):
                        break
                    wait = self._backoff(attempts, attempt.retry_after)
                    if self._clock() + wait >= deadline:
                        break
                    await self._sleep(wait)
        except TimeoutError:
            # What the last attempt saw so far (a status, some bytes) is kept.
            attempt.failure = deadline_failure(settings.timeout)
        return self._result(target, attempt, attempts, self._clock() - start)

    def _backoff(self, attempts: int, retry_after_header: str | None) -> float:
        return backoff(attempts, retry_after_header, jitter=self._jitter)

    def _result(self, target: Target, attempt: _Attempt, attempts: int, elapsed: float) -> Result:
        failure = attempt.failure
        status = attempt.status
        error = None if failure is None else failure.message
        if failure is None and status is not None and status not in self._settings.accept:
            reason = f" {attempt.reason}" if attempt.reason else ""
            failure = Failure(Kind.HTTP, f"HTTP {status}{reason}")
            error = failure.message
        if failure is not None and failure.kind is Kind.TIMEOUT and self._settings.accept_timeouts:
            error = f"{failure.message} (accepted by --accept-timeouts)"
            failure = None
        return Result(
            url=target.url,
            source=target.source,
            line=target.line,
            outcome=Outcome.OK if failure is None else Outcome.FAIL,
            status=status,
            reason=attempt.reason,
            elapsed=elapsed,
            attempts=attempts,
            final_url=attempt.final_url,
            error=error,
            kind=None if failure is None else failure.kind,
            bytes_read=attempt.bytes_read,
            http_version=attempt.http_version,
            saved_to=attempt.saved_to,
        )

    async def _attempt(
        self,
        target: Target,
        attempt: _Attempt,
        attempt_number: int,
        page: Page | None,
        follow_redirects: bool,
    ) -> None:
        """One attempt: send, follow redirects, read the body up to the cap.

        Fills in `attempt` as it goes, so a deadline that cuts it short still
        leaves what was seen (status, bytes read).
        """
        settings = self._settings
        try:
            url = httpx.URL(target.url)
            authorization = None  # from the URL's own credentials, for its origin only
            if target.credentials is not None:
                url = url.copy_with(userinfo=b"")  # sent as a header, never in the URL
                if not self._headers.has_authorization:
                    authorization = target.credentials.basic_authorization()
            chain = RedirectChain(url, settings.method if page is None else "GET")
            for hop in range(MAX_REDIRECTS + 1):
                if self._rate is not None and (hop or attempt_number > 1):
                    await self._rate.acquire()  # later requests of this URL (the first waited)
                request = self._request(chain, authorization)
                try:
                    response = await self._transport.handle_async_request(request)
                except httpx.RemoteProtocolError as exc:
                    if (empty := as_empty_reply(exc)) is None or empty is exc:
                        raise
                    raise empty from exc
                response.request = request
                try:
                    status = attempt.status = response.status_code
                    attempt.reason = response.reason_phrase
                    # The URL as read until a redirect is followed (httpx may normalise it).
                    attempt.final_url = str(response.url) if hop else target.url
                    attempt.http_version = response.http_version
                    if status in TRANSIENT_STATUSES:
                        attempt.retry_after = response.headers.get("retry-after")
                    location = redirect_location(response) if follow_redirects else None
                    if location:
                        await self._drain(response, REDIRECT_BODY_CAP, None)
                        chain.follow(response, location)
                        continue
                    if page is not None and status in settings.accept:
                        await self._read_page(response, page, attempt)
                    elif (
                        self._save is not None
                        and chain.method != "HEAD"
                        and status in settings.accept
                    ):
                        await self._save_body(target, response, attempt)
                    else:
                        await self._drain(response, settings.body_cap, attempt)
                    return
                finally:
                    # A transport's response: closing its stream is all aclose() would do,
                    # without httpx's per-call context manager.
                    await cast(httpx.AsyncByteStream, response.stream).aclose()
            raise RedirectError(f"too many redirects (more than {MAX_REDIRECTS})")
        except Exception as exc:  # noqa: BLE001 - every failure becomes data
            attempt.failure = classify(exc, timeout=settings.timeout)

    def _request(self, chain: RedirectChain, authorization: str | None) -> httpx.Request:
        """The chain's next request, with the headers its hop carries."""
        headers = self._headers.for_hop(chain.same_origin, authorization, chain.cookie)
        # `stream=` skips httpx's body encoding and automatic headers (our requests
        # have no body; the transport adds Host): a third of the cost.
        return httpx.Request(
            chain.method, chain.url, headers=headers, stream=_NO_BODY, extensions=self._extensions
        )

    async def _save_body(self, target: Target, response: httpx.Response, attempt: _Attempt) -> None:
        """Stream the whole decoded body to a temporary file, then rename it into place.

        `max_filesize` counts the decoded bytes written; decoding stops as soon as it is over.
        """
        save = self._save
        assert save is not None
        limit = self._settings.max_filesize
        too_large = f"body over --max-filesize ({limit or 0:,} bytes)"
        # Not httpx's decoders (aiter_bytes): they inflate a whole read at once, unbounded.
        decoder = BodyDecoder(response.headers.get_list("content-encoding", split_commas=True))
        length = response.headers.get("content-length", "")
        if limit is not None and decoder.identity and length.isdigit() and int(length) > limit:
            raise _TooLarge(too_large)
        try:
            if attempt.save_path is None:
                attempt.save_path = save.reserve(target.url)
            handle, temp = save.open_temp(attempt.save_path)
        except (OSError, ValueError) as exc:
            raise _SaveError(f"cannot save: {exc}") from exc
        try:
            with handle:
                written = 0
                async for chunk in cast(httpx.AsyncByteStream, response.stream):
                    for piece in decoder.feed(chunk):
                        if limit is not None and written + len(piece) > limit:
                            raise _TooLarge(too_large)
                        try:
                            handle.write(piece)
                        except OSError as exc:
                            raise _SaveError(f"cannot save: {exc.strerror or exc}") from exc
                        written += len(piece)
                        attempt.bytes_read = written
                        if not decoder.identity:
                            # One read can inflate to a thousand pieces: let the others run.
                            await asyncio.sleep(0)
                decoder.finish()
            try:
                save.commit(temp, attempt.save_path)
            except OSError as exc:
                raise _SaveError(f"cannot save: {exc}") from exc
        except BaseException:
            save.discard(temp)
            raise
        attempt.saved_to = str(attempt.save_path)

    @staticmethod
    async def _read_page(response: httpx.Response, page: Page, attempt: _Attempt) -> None:
        """Read the body into `page`, decoded, up to its cap (the rest is left unread)."""
        page.final_url = str(response.url)
        page.content_type = response.headers.get("content-type", "")
        if response.is_stream_consumed:  # built in memory, e.g. by a mock transport
            page.body = response.content[: page.cap]
            attempt.bytes_read = len(page.body)
            return
        try:
            decoder = BodyDecoder(response.headers.get_list("content-encoding", split_commas=True))
        except DecodeError:
            return  # a coding fetchpool cannot undo (br, zstd): the page's links are not read
        pieces: list[bytes] = []
        size = 0
        raw = 0
        try:
            async for chunk in cast(httpx.AsyncByteStream, response.stream):
                raw += len(chunk)
                attempt.bytes_read = raw
                for piece in decoder.feed(chunk):
                    pieces.append(piece)
                    size += len(piece)
                    if size >= page.cap:
                        break
                if size >= page.cap:
                    break
            else:
                decoder.finish()
        except DecodeError:
            pass  # a corrupt or cut-short encoding: the links are read from what decoded
        page.body = b"".join(pieces)[: page.cap]

    @staticmethod
    async def _drain(response: httpx.Response, cap: int, attempt: _Attempt | None) -> None:
        """Read and discard the body, stopping once `cap` bytes were read."""
        if response.request.method == "HEAD":
            return
        if response.is_stream_consumed:  # built in memory, e.g. by a mock transport
            if attempt is not None:
                attempt.bytes_read = len(response.content)
            return
        total = 0
        # The raw stream itself: aiter_raw() would only re-chunk it and count bytes again.
        body = cast(httpx.AsyncByteStream, response.stream)
        async for chunk in body:
            total += len(chunk)
            if attempt is not None:
                # What arrived past the cap in the last chunk is dropped unread.
                attempt.bytes_read = min(total, cap)
            if total >= cap:
                break
