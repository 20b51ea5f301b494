"""Following redirects: which responses redirect, to what URL, with what method, and which
credentials and cookies each hop of a chain carries.

Each rule is a small function that cites where it comes from; `RedirectChain` keeps the
state of one attempt's chain (where it started, the cookies it set, what it has requested).
"""

from __future__ import annotations

import urllib.request

import httpx

from ._classify import FetchFailure
from ._models import Kind

__all__ = [
    "REDIRECT_BODY_CAP",
    "REDIRECT_STATUSES",
    "RedirectChain",
    "RedirectError",
    "origin",
    "redirect_location",
    "redirect_method",
    "redirect_url",
]

# RFC 9110 §15.4: the 3xx codes that carry a Location to follow (300, 304 and 305 do not).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
REDIRECT_BODY_CAP = 64 * 1024  # read this much of a redirect's body to keep the connection


class RedirectError(FetchFailure):
    """Too many redirects, a loop, or a Location that cannot be followed."""

    kind = Kind.REDIRECT


def redirect_location(response: httpx.Response) -> str | None:
    """The Location to follow from `response`, or None when it is not a redirect.

    RFC 9110 §10.2.2: a 3xx response's Location names the target to follow; a redirect
    without one is the final response.
    """
    if response.status_code not in REDIRECT_STATUSES:
        return None
    return response.headers.get("location") or None


def redirect_method(method: str, status: int) -> str:
    """The method of the request that follows a `status` redirect of a `method` request.

    RFC 9110 §15.4.4: after a 303, a user agent sends GET (HEAD stays HEAD). §15.4.2 and
    §15.4.3 allow a user agent to change a POST to GET after a 301 or 302, as browsers do.
    307 and 308 (§15.4.8, §15.4.9) keep the method.
    """
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def redirect_url(base: httpx.URL, location: str) -> httpx.URL:
    """The URL a `Location` of a response to `base` points to.

    RFC 9110 §10.2.2: Location is a URI reference, resolved against the target URI
    (RFC 3986 §5). Only http and https are followed. A Location's userinfo is dropped: only
    the input URL's own credentials are ever sent, so no output shows a Location's.

    Raises:
        RedirectError: the Location is not a URL, or names another scheme.
    """
    try:
        url = base.join(location)
    except httpx.InvalidURL as exc:
        raise RedirectError(f"bad redirect Location: {exc}") from exc
    if url.userinfo:
        url = url.copy_with(userinfo=b"")
    if url.scheme not in ("http", "https"):
        raise RedirectError(f"redirect to unsupported scheme {url.scheme!r}")
    return url


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """RFC 6454 §4: an origin is scheme, host and port."""
    return (url.scheme, url.host, url.port)


def cookie_header(jar: httpx.Cookies, url: httpx.URL) -> str | None:
    """The Cookie header `jar` sends to `url`: RFC 6265 §5.4's rules (domain, path, secure,
    expiry), as the standard library's cookie jar applies them."""
    probe = urllib.request.Request(str(url))
    jar.jar.add_cookie_header(probe)
    return probe.get_header("Cookie")


class RedirectChain:
    """One attempt's requests, from the URL as read through the redirects it follows.

    Attributes:
        url: the URL of the next request.
        method: its method.
        same_origin: the chain has not left the origin it started from. Credentials go only
            while it is true: RFC 9110 §11.6.2 scopes them to a protection space on one
            origin, and a user agent must not leak them to another origin (§15.4).
        cookie: the Cookie header of the cookies set during this chain (RFC 6265 §5.3), for
            its later hops only; None until a redirect sets one.
        redirects: how many redirects were followed.
    """

    __slots__ = (
        "_first_origin",
        "_jar",
        "_seen",
        "cookie",
        "method",
        "redirects",
        "same_origin",
        "url",
    )

    def __init__(self, url: httpx.URL, method: str) -> None:
        self.url = url
        self.method = method
        self.same_origin = True
        self.cookie: str | None = None
        self.redirects = 0
        self._first_origin: tuple[str, str, int | None] | None = None  # once a redirect is followed
        # Made when a redirect sets a cookie, so a chain without Set-Cookie never builds a jar.
        self._jar: httpx.Cookies | None = None
        self._seen: set[tuple[str, str | None]] = set()  # (URL, cookies sent): a repeat is a loop

    def follow(self, response: httpx.Response, location: str) -> None:
        """Move on to the request that `response`, a redirect to `location`, asks for.

        Raises:
            RedirectError: a Location that cannot be followed, or a loop.
        """
        if self._first_origin is None:
            self._first_origin = origin(self.url)
        self._seen.add((str(self.url), self.cookie))
        url = redirect_url(response.url, location)
        if "set-cookie" in response.headers:
            if self._jar is None:
                self._jar = httpx.Cookies()
            self._jar.extract_cookies(response)
        if self._jar is not None:
            self.cookie = cookie_header(self._jar, url)
        self.redirects += 1
        # The same URL with other cookies is a new request (a cookie gate).
        if (str(url), self.cookie) in self._seen:
            raise RedirectError(f"redirect loop after {self.redirects} redirects")
        self.same_origin = self.same_origin and origin(url) == self._first_origin
        self.method = redirect_method(self.method, response.status_code)
        self.url = url
