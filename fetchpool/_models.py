"""The values that flow through fetchpool: a URL as read (`Target`) and its `Result`.

Both are frozen, slotted dataclasses; a failed URL is data (a `Result` with a
`Kind`), never an exception.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    """How a URL ended."""

    OK = "ok"
    FAIL = "fail"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The upper-case word used in plain output and the table (`OK`, `FAIL`, ...)."""
        return self.name


class Kind(enum.Enum):
    """Why a result is not OK (`None` on an OK result)."""

    HTTP = "http"  # a status outside --accept
    TIMEOUT = "timeout"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    PROTOCOL = "protocol"
    REDIRECT = "redirect"  # too many hops, or a loop
    INVALID = "invalid"  # the input line is not a fetchable URL
    SIZE = "size"  # body over --max-filesize
    CANCELLED = "cancelled"
    # Added after CANCELLED so the SARIF rule index of every earlier kind stays put.
    MISSING = "missing"  # a local file that does not exist
    FRAGMENT = "fragment"  # an anchor that is not in the target document


@dataclass(frozen=True, slots=True)
class LocalLink:
    """A link in a local document to a file: checked on the file system, never fetched.

    `path` is the absolute path the link resolves to; `fragment` the anchor to look for in
    it (None when the link has none). `Target.url` stays the link as written.
    """

    path: str
    fragment: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """The user and password of a URL's userinfo, percent-decoded; the password is never shown.

    Decoded with `surrogateescape`, so percent-escapes that are not UTF-8 are sent back as the
    very bytes they stood for, as curl sends them.
    """

    user: str
    password: str = field(repr=False)

    def basic_authorization(self) -> str:
        """The value of an `Authorization: Basic` header for these credentials."""
        return basic_authorization(f"{self.user}:{self.password}")


def basic_authorization(user_password: str) -> str:
    """`Basic <base64>` for `USER:PASSWORD` (as --user gives it), bytes kept as given."""
    pair = user_password.encode("utf-8", "surrogateescape")
    return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True, slots=True)
class Target:
    """One non-skipped input line: the URL text as read, and where it stood.

    `invalid` holds the reason when the line is not a fetchable http(s) URL;
    such a target still yields exactly one (FAIL) result.

    `url` is what every output shows, so a password in the URL is not in it: a target made
    by `fetchpool.parse_line` or `fetch()` shows it as `***` (`https://user:***@host/`) and
    keeps the userinfo in `credentials` (never printed), which the fetcher sends as Basic auth
    to that URL's origin. A target built directly is taken as it is.

    Link checking adds what to check beyond the status: `local` for a link to a local file
    (checked on the file system), `fragment` for an anchor to find in the fetched HTML page,
    and `page` for a page whose links are read (a page input of `--extract`, a page of a
    crawl): the crawl depth it stands at; `sitemap` for a sitemap whose URLs start a crawl.
    """

    url: str
    source: str = "-"
    line: int = 0
    invalid: str | None = None
    credentials: Credentials | None = field(default=None, repr=False)
    local: LocalLink | None = None
    fragment: str | None = None
    page: int | None = None
    sitemap: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """The one result of one `Target`.

    `cached` is True when the result was served from `--cache` instead of being fetched in
    this run (then `attempts` is 0); `local` when it was checked on the file system (a link
    to a local file), not fetched.
    """

    url: str
    source: str
    line: int
    outcome: Outcome
    status: int | None = None
    reason: str | None = None
    elapsed: float = 0.0
    attempts: int = 0
    final_url: str | None = None
    error: str | None = None
    kind: Kind | None = None
    bytes_read: int = 0
    http_version: str | None = None
    saved_to: str | None = None
    cached: bool = False
    local: bool = False

    @property
    def ok(self) -> bool:
        """True when the outcome is OK."""
        return self.outcome is Outcome.OK

    @property
    def redirected(self) -> bool:
        """True when a redirect was followed to another URL."""
        return self.final_url is not None and self.final_url != self.url

    @classmethod
    def failed(
        cls,
        target: Target,
        kind: Kind,
        error: str,
        *,
        elapsed: float = 0.0,
        attempts: int = 0,
    ) -> Result:
        """A FAIL (or, for `Kind.CANCELLED`, a CANCELLED) result with no response."""
        outcome = Outcome.CANCELLED if kind is Kind.CANCELLED else Outcome.FAIL
        return cls(
            url=target.url,
            source=target.source,
            line=target.line,
            outcome=outcome,
            elapsed=elapsed,
            attempts=attempts,
            error=error,
            kind=kind,
        )

    @classmethod
    def cancelled(cls, target: Target, reason: str, *, elapsed: float = 0.0) -> Result:
        """The CANCELLED result of a target that was read but not finished."""
        return cls.failed(target, Kind.CANCELLED, reason, elapsed=elapsed)
