"""The headers of every request a run sends: the plain set, the secret set that stays on the
input URL's origin, and the per-hop additions (a URL's own credentials, a chain's cookies)."""

from __future__ import annotations

import httpx

from ._config import Settings
from ._models import basic_authorization

__all__ = ["SENSITIVE_HEADERS", "RequestHeaders"]

# Headers a user may pass with -H that must not follow a redirect to another origin.
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class RequestHeaders:
    """The header sets of one run, built once from its `Settings`.

    Plain headers (User-Agent, Accept, Accept-Encoding, the caller's others) go with every
    request; secret ones (Authorization, Cookie, Proxy-Authorization, from `headers`, `user`,
    `bearer`, `cookies`) only while a redirect chain stays on the origin it started from.
    """

    __slots__ = ("_plain", "_plain_only", "_secrets", "_with_secrets", "has_authorization")

    def __init__(self, settings: Settings) -> None:
        given = {name.lower() for name, _ in settings.headers}
        defaults = [
            ("User-Agent", settings.user_agent),
            ("Accept", "*/*"),
            # Bodies that are only discarded may come compressed; a saved one should not need
            # decoding (a server that compresses anyway is decoded as a stream, see _decode).
            ("Accept-Encoding", "identity" if settings.save_dir else "gzip, deflate"),
        ]
        plain = [(k, v) for k, v in defaults if k.lower() not in given]
        plain += [(k, v) for k, v in settings.headers if k.lower() not in SENSITIVE_HEADERS]
        secrets = {k.lower(): (k, v) for k, v in settings.headers if k.lower() in SENSITIVE_HEADERS}
        # `user` and `bearer` replace an Authorization among `headers`; `cookies` add to a Cookie.
        if settings.user is not None:
            secrets["authorization"] = ("Authorization", basic_authorization(settings.user))
        if settings.bearer is not None:
            secrets["authorization"] = ("Authorization", f"Bearer {settings.bearer}")
        if settings.cookies:
            cookies = [f"{name}={value}" for name, value in settings.cookies]
            if "cookie" in secrets:
                cookies.insert(0, secrets["cookie"][1])
            secrets["cookie"] = ("Cookie", "; ".join(cookies))
        # An Authorization of the run's own wins over the credentials of a URL, as curl's -u
        # and -H do.
        self.has_authorization = "authorization" in secrets
        self._plain = plain
        self._secrets = list(secrets.values())
        # Built once: httpx copies a Headers object without normalising it again.
        self._with_secrets = httpx.Headers(plain + self._secrets)
        self._plain_only = httpx.Headers(plain)

    def for_hop(
        self, same_origin: bool, authorization: str | None = None, cookie: str | None = None
    ) -> httpx.Headers:
        """The headers of one request of a redirect chain.

        Args:
            same_origin: the chain is still on the origin of the URL as read; the secret set
                and `authorization` go only then.
            authorization: from the URL's own credentials.
            cookie: the Cookie header of cookies set earlier in the chain, sent after the
                run's own.
        """
        if authorization is None and cookie is None:
            return self._with_secrets if same_origin else self._plain_only
        headers = list(self._plain)
        if same_origin:
            headers += self._secrets
            if authorization is not None:
                headers.append(("Authorization", authorization))
        if cookie is not None:
            for index, (name, value) in enumerate(headers):
                if name.lower() == "cookie":
                    headers[index] = (name, f"{value}; {cookie}")
                    break
            else:
                headers.append(("Cookie", cookie))
        return httpx.Headers(headers)
