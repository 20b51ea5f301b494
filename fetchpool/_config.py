"""Run settings and their defaults: the one place every default lives.

The CLI help, the README and the library all read the defaults from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._errors import SettingError
from ._version import __version__

DEFAULT_WORKERS = 8
MAX_WORKERS = 1000
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 2
DEFAULT_ACCEPT = "200-299"
DEFAULT_MAX_CACHE_AGE = "1d"
DEFAULT_USER_AGENT = f"fetchpool/{__version__}"
MAX_REDIRECTS = 10
DEFAULT_MAX_PAGES = 100_000  # pages a crawl follows (--max-pages)
BODY_CAP = 1024 * 1024  # bytes read per response before the rest is abandoned
MAX_LINE = 64 * 1024  # longest input line accepted, in bytes
METHODS = ("GET", "HEAD")
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class StatusSet:
    """A set of HTTP status codes given as ranges, such as `200-299,301,403`."""

    ranges: tuple[tuple[int, int], ...]
    _codes: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every status a response can carry is three digits, so this set stays small.
        codes = frozenset(
            code for lo, hi in self.ranges for code in range(max(lo, 100), min(hi, 999) + 1)
        )
        object.__setattr__(self, "_codes", codes)

    def __contains__(self, status: object) -> bool:
        return isinstance(status, int) and status in self._codes

    def __str__(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)

    @classmethod
    def parse(cls, text: str) -> StatusSet:
        """Parse `200-299,301`; raise `SettingError` (for `accept`) on anything else."""
        ranges: list[tuple[int, int]] = []
        for part in text.split(","):
            m = re.fullmatch(r"\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?", part)
            if not m:
                raise SettingError("accept", repr(text), "expected codes like 200-299,301")
            lo = int(m.group(1))
            hi = int(m.group(2) or lo)
            if not (100 <= lo <= hi <= 599):
                raise SettingError(
                    "accept", repr(text), f"{part.strip()} is not a range of codes 100-599"
                )
            ranges.append((lo, hi))
        return cls(tuple(ranges))


# An HTTP header name or cookie name (RFC 9110 "token").
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def check_header_text(
    name: str, value: str, *, shown: str | None = None, ascii_only: bool = True
) -> None:
    """A value that goes into a request header must be on one line (and printable ASCII,
    unless it is encoded on the way, as `user` is); else a `SettingError` for `name` that
    shows `shown`."""
    if any(c in value for c in "\r\n\0"):
        raise SettingError(name, shown, "the value contains a line break or NUL")
    if ascii_only and not value.isascii():
        raise SettingError(name, shown, "the value contains a non-ASCII character")


def _name_and_value(text: str, sep: str, setting: str, expected: str) -> tuple[str, str]:
    name, found, value = text.partition(sep)
    name = name.strip()
    if not found or not _TOKEN.fullmatch(name):
        raise SettingError(setting, repr(text), f"expected {expected}")
    return name, value.strip()


def parse_header(text: str) -> tuple[str, str]:
    """Parse one `Name: value` header; raise `SettingError` (for `header`) otherwise."""
    name, value = _name_and_value(text, ":", "header", "'Name: value'")
    check_header_text("header", value, shown=repr(text))
    return name, value


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that shapes how URLs are fetched. Frozen; build a new one to change it.

    Args:
        workers: number of concurrent fetch workers (1..1000).
        timeout: hard wall-clock limit per URL, in seconds, over all attempts.
        retries: extra attempts for transient failures.
        accept: status codes counted as OK.
        method: `GET` or `HEAD`.
        follow_redirects: follow 3xx responses (at most `MAX_REDIRECTS` hops).
        headers: extra request headers, in order.
        user_agent: the User-Agent header.
        verify: verify TLS certificates.
        cacert: a PEM file of CA certificates trusted in addition to the default store
            (OpenSSL's default paths, `SSL_CERT_FILE`, `SSL_CERT_DIR`; see `fetchpool._tls`).
        per_host: at most this many requests in flight to one host (None: no limit).
        body_cap: bytes of body read per response before the rest is abandoned.
        accept_timeouts: count a result of kind `timeout` as OK.
        rate: at most this many requests started per second, whole run (None: no limit).
        save_dir: stream every OK body to a file under this directory.
        max_filesize: with `save_dir`, a larger body is a FAIL of kind `size`.
        overwrite: with `save_dir`, replace existing files (else pick a new name).
        http2: allow HTTP/2.
        proxy: proxy URL for all requests (None: the *_PROXY environment variables).
        user: `USER:PASSWORD` for basic auth, sent only to the input URLs' origins.
        bearer: a bearer token, sent only to the input URLs' origins.
        cookies: `(name, value)` cookies, sent only to the input URLs' origins.
    """

    workers: int = DEFAULT_WORKERS
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    accept: StatusSet = field(default_factory=lambda: StatusSet.parse(DEFAULT_ACCEPT))
    method: str = "GET"
    follow_redirects: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    user_agent: str = DEFAULT_USER_AGENT
    verify: bool = True
    cacert: str | None = None
    per_host: int | None = None
    body_cap: int = BODY_CAP
    accept_timeouts: bool = False
    rate: float | None = None
    save_dir: str | None = None
    max_filesize: int | None = None
    overwrite: bool = False
    http2: bool = False
    proxy: str | None = None
    user: str | None = None
    bearer: str | None = None
    cookies: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not (1 <= self.workers <= MAX_WORKERS):
            raise SettingError("workers", str(self.workers), f"must be 1..{MAX_WORKERS}")
        if not (self.timeout > 0) or self.timeout == float("inf"):
            raise SettingError("timeout", f"{self.timeout:g}", "must be a positive number")
        if self.retries < 0:
            raise SettingError("retries", str(self.retries), "must be 0 or more")
        if self.method not in METHODS:
            raise SettingError("method", repr(self.method), "must be GET or HEAD")
        if self.per_host is not None and self.per_host < 1:
            raise SettingError("per_host", str(self.per_host), "must be 1 or more")
        if self.rate is not None and not (0 < self.rate < float("inf")):
            raise SettingError("rate", f"{self.rate:g}", "must be a positive number")
        if self.max_filesize is not None and self.max_filesize < 0:
            raise SettingError("max_filesize", str(self.max_filesize), "must be 0 or more")
        if self.user is not None and ":" not in self.user:
            raise SettingError("user", None, "expected USER:PASSWORD")
        check_header_text("user_agent", self.user_agent)
        if self.bearer is not None:
            check_header_text("bearer", self.bearer)
        if self.user is not None:
            check_header_text("user", self.user, ascii_only=False)  # sent base64-encoded
        if self.proxy is not None and not re.match(r"(?i)(https?|socks5h?)://[^/]", self.proxy):
            raise SettingError("proxy", repr(self.proxy), "expected http://host:port")


def parse_cookie(text: str) -> tuple[str, str]:
    """Parse one `NAME=VALUE` cookie; raise `SettingError` (for `cookie`) otherwise."""
    name, value = _name_and_value(text, "=", "cookie", "NAME=VALUE")
    if ";" in value:
        raise SettingError("cookie", repr(text), "the value contains ';'")
    check_header_text("cookie", value, shown=repr(text))
    return name, value


# --output-dir and --engine ray: URLs per partition, and the host buckets partitions are cut from.
DEFAULT_PARTITION_SIZE = 1000
PARTITION_BUCKETS = 64
