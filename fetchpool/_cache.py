"""A persistent cache of OK link-check results (`--cache FILE`), so CI reruns skip good links.

Failures are never cached. The file is JSON Lines: a header line with the format
version, then one entry per URL; it is replaced atomically on save.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import SettingError
from ._models import Outcome, Result, Target

CACHE_FORMAT = "fetchpool-cache"
CACHE_VERSION = 1

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Parse `90s`, `30m`, `12h`, `1d` or a bare number of seconds, the `max_age` of
    `ResultCache.load`; raise `SettingError` (for `max_age`) else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", text)
    if not m:
        raise SettingError("max_age", repr(text), "expected a duration such as 90s, 30m, 12h or 1d")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds):
        raise SettingError("max_age", repr(text), "too large")
    return seconds


@dataclass(frozen=True, slots=True)
class CachedEntry:
    """What the cache remembers of one OK result."""

    url: str
    status: int | None
    final_url: str | None
    checked_at: float  # seconds since the epoch

    def to_result(self, target: Target) -> Result:
        """The OK result reported for `target` instead of fetching it.

        `attempts` is 0 and `elapsed` 0.0: nothing was sent in this run; `cached` is True.
        """
        return Result(
            url=target.url,
            source=target.source,
            line=target.line,
            outcome=Outcome.OK,
            status=self.status,
            final_url=self.final_url,
            cached=True,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "final_url": self.final_url,
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_json(cls, data: object) -> CachedEntry:
        """Build an entry from a decoded line; raise `ValueError` when it is malformed."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        url, status = data.get("url"), data.get("status")
        final_url, checked_at = data.get("final_url"), data.get("checked_at")
        if not isinstance(url, str):
            raise ValueError("url is not a string")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise ValueError("status is not an integer")
        if final_url is not None and not isinstance(final_url, str):
            raise ValueError("final_url is not a string")
        if isinstance(checked_at, bool) or not isinstance(checked_at, int | float):
            raise ValueError("checked_at is not a number")
        if not math.isfinite(checked_at):
            raise ValueError("checked_at is not finite")
        return cls(url=url, status=status, final_url=final_url, checked_at=float(checked_at))


def _header_line() -> str:
    return json.dumps({"format": CACHE_FORMAT, "version": CACHE_VERSION}) + "\n"


def _entry_line(entry: CachedEntry) -> str:
    return json.dumps(entry.to_json(), ensure_ascii=False) + "\n"


class ResultCache:
    """OK results by URL, each valid for `max_age` seconds after it was checked.

    Args:
        path: the cache file, written by `save()`.
        max_age: seconds an entry stays valid.
        clock: returns the current time in seconds since the epoch.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_age = max_age
        self._clock = clock
        self._entries: dict[str, CachedEntry] = {}
        self.warning: str | None = None  # set by load() when the file could not be used

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> ResultCache:
        """Read the cache at `path`. Never raises for a bad file.

        A missing file gives an empty cache. An unreadable file, one of another
        format or version, or malformed lines give an empty cache (or one without
        those lines) and set `warning` to a line the CLI should print.
        """
        cache = cls(path, max_age=max_age, clock=clock)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cache
        except (OSError, UnicodeDecodeError) as exc:
            cache.warning = f"ignoring cache {path}: cannot read it ({exc})"
            return cache
        lines = text.splitlines()
        if not lines:
            return cache
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = None
        if not (
            isinstance(header, dict)
            and header.get("format") == CACHE_FORMAT
            and header.get("version") == CACHE_VERSION
        ):
            cache.warning = (
                f"ignoring cache {path}: not a fetchpool cache of version {CACHE_VERSION}"
            )
            return cache
        bad = 0
        for line in lines[1:]:
            if not line.strip():
                continue
            try:
                entry = CachedEntry.from_json(json.loads(line))
            except ValueError:
                bad += 1
                continue
            cache._entries[entry.url] = entry
        if bad:
            cache.warning = f"cache {path}: ignored {bad} malformed line{'s' * (bad != 1)}"
        return cache

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, entry: CachedEntry, now: float) -> bool:
        # An entry stamped in the future (clock skew) is not trusted: refetching is safe.
        return 0.0 <= now - entry.checked_at < self.max_age

    def get(self, url: str) -> CachedEntry | None:
        """The entry for `url` when it is younger than `max_age`, else None."""
        entry = self._entries.get(url)
        if entry is None or not self._fresh(entry, self._clock()):
            return None
        return entry

    def put(self, result: Result) -> None:
        """Remember an OK result; a FAIL forgets the URL; a CANCELLED one changes nothing.

        An OK result without a status (a timeout let through by `--accept-timeouts`)
        is not remembered: the link was never seen to answer. Nor is one served from
        this cache (no attempt made): it must not renew its own entry.
        """
        if result.outcome is Outcome.OK and result.status is not None and result.attempts:
            self._entries[result.url] = CachedEntry(
                url=result.url,
                status=result.status,
                final_url=result.final_url,
                checked_at=self._clock(),
            )
        elif result.outcome is Outcome.FAIL:
            self._entries.pop(result.url, None)

    def _lines(self) -> Iterator[str]:
        yield _header_line()
        now = self._clock()
        for entry in self._entries.values():
            if self._fresh(entry, now):  # expired entries would only grow the file
                yield _entry_line(entry)

    def save(self) -> None:
        """Write the cache atomically: a temporary file in the same directory, then a rename.

        Raises `OSError` when the file cannot be written; the old file is then untouched.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.writelines(self._lines())
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(OSError):
                # mkstemp makes the file 0600; keep the mode an existing cache had.
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)
            os.replace(tmp, self.path)
        except BaseException:
            # Also on KeyboardInterrupt: never leave a temporary file behind.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
