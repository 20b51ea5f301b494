"""Which links a run checks: `--include`/`--exclude` regexes and `--shard K/N` by host.

The shard of a URL depends only on its host and a fixed hash, so every machine and
Python version puts a host's links in the same shard and `--per-host` still holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from ._errors import SettingError

Decision = Literal["keep", "excluded", "other-shard"]


def parse_shard(text: str) -> tuple[int, int]:
    """Parse a shard `K/N`; raise `SettingError` (for `shard`) unless 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise SettingError("shard", repr(text), "expected K/N, such as 1/4")
    k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= k <= n:
        raise SettingError("shard", repr(text), "K must be between 1 and N")
    return k, n


def shard_host(url: str) -> str | None:
    """The host a URL is sharded by: lower-cased, no port or userinfo, IDNA-encoded."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if not host:
        return None
    host = host.rstrip(".")
    try:
        # IDNA so `bücher.example` and `xn--bcher-kva.example` are one host.
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host


def shard_of(url: str, n: int) -> int:
    """The 1-based shard (of `n`) that `url` falls in; a URL with no host goes to shard 1.

    Uses BLAKE2b rather than `hash()`, whose value for strings changes per process.
    """
    if n < 1:
        raise ValueError(f"number of shards must be at least 1, got {n}")
    host = shard_host(url)
    if host is None:
        return 1
    digest = hashlib.blake2b(host.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n + 1


def _compile(name: str, patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise SettingError(name, repr(pattern), str(exc)) from None
    return tuple(compiled)


class LinkFilter:
    """Decides whether a URL is checked, excluded, or belongs to another shard.

    Args:
        include: regexes; when any are given, a URL must match (`re.search`) one of them.
        exclude: regexes; a URL matching any of them is excluded.
        shard: `(K, N)` to keep only URLs whose host falls in shard K of N.
    """

    __slots__ = ("_exclude", "_include", "_shard")

    def __init__(
        self,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        shard: tuple[int, int] | None = None,
    ) -> None:
        self._include = _compile("include", include)
        self._exclude = _compile("exclude", exclude)
        if shard is not None and not 1 <= shard[0] <= shard[1]:
            raise SettingError("shard", f"{shard[0]}/{shard[1]}", "K must be 1..N")
        self._shard = shard

    def decide(self, url: str) -> Decision:
        """`keep`, `excluded` (by the regexes) or `other-shard`."""
        if self._include and not any(p.search(url) for p in self._include):
            return "excluded"
        if any(p.search(url) for p in self._exclude):
            return "excluded"
        if self._shard is not None:
            k, n = self._shard
            if shard_of(url, n) != k:
                return "other-shard"
        return "keep"
