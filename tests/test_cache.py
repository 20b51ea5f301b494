"""The `--cache FILE` result cache and `--max-cache-age` durations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fetchpool import _cache
from fetchpool._cache import CachedEntry, ResultCache, parse_duration
from fetchpool._errors import UsageError
from fetchpool._models import Kind, Outcome, Result, Target
from fetchpool.cli.errors import usage_message

DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ok(url: str, *, status: int = 200, final_url: str | None = None) -> Result:
    return Result(url=url, source="README.md", line=3, outcome=Outcome.OK, status=status,
                  final_url=final_url, elapsed=0.2, attempts=1)  # fmt: skip


def fail(url: str) -> Result:
    return Result.failed(Target(url, "README.md", 4), Kind.HTTP, "404 Not Found")


def test_an_ok_result_is_kept_and_survives_a_save_and_load(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.jsonl"
    cache = ResultCache.load(path, max_age=DAY, clock=clock)
    cache.put(ok("https://a.example/", final_url="https://a.example/home"))
    cache.save()
    again = ResultCache.load(path, max_age=DAY, clock=clock)
    assert again.warning is None
    assert again.get("https://a.example/") == CachedEntry(
        url="https://a.example/",
        status=200,
        final_url="https://a.example/home",
        checked_at=clock.now,
    )


def test_a_missing_cache_file_is_an_empty_cache_without_warning(tmp_path: Path) -> None:
    cache = ResultCache.load(tmp_path / "nope.jsonl", max_age=DAY)
    assert len(cache) == 0
    assert cache.warning is None
    assert cache.get("https://a.example/") is None


def test_failures_are_never_cached(tmp_path: Path) -> None:
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=DAY, clock=FakeClock())
    cache.put(fail("https://broken.example/"))
    assert cache.get("https://broken.example/") is None
    cache.save()
    assert "broken.example" not in (tmp_path / "c.jsonl").read_text()


def test_a_failure_evicts_the_cached_ok_result_of_that_url(tmp_path: Path) -> None:
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=DAY, clock=FakeClock())
    cache.put(ok("https://flaky.example/"))
    cache.put(fail("https://flaky.example/"))
    assert cache.get("https://flaky.example/") is None


def test_a_cancelled_result_leaves_the_cache_alone(tmp_path: Path) -> None:
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=DAY, clock=FakeClock())
    cache.put(ok("https://a.example/"))
    cache.put(Result.cancelled(Target("https://a.example/"), "interrupted"))
    cache.put(Result.cancelled(Target("https://b.example/"), "interrupted"))
    assert cache.get("https://a.example/") is not None
    assert cache.get("https://b.example/") is None


def test_an_accepted_timeout_is_not_cached(tmp_path: Path) -> None:
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=DAY, clock=FakeClock())
    slow = Result(url="https://slow.example/", source="-", line=1, outcome=Outcome.OK,
                  kind=Kind.TIMEOUT, error="timed out after 30 s")  # fmt: skip
    cache.put(slow)
    assert cache.get("https://slow.example/") is None


def test_a_result_served_from_the_cache_does_not_renew_its_entry(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=DAY, clock=clock)
    cache.put(ok("https://a.example/"))
    clock.now += DAY * 0.9
    entry = cache.get("https://a.example/")
    assert entry is not None
    cache.put(entry.to_result(Target("https://a.example/", "README.md", 3)))
    clock.now += DAY * 0.2  # a day after the real check: stale, though used in between
    assert cache.get("https://a.example/") is None


def test_entries_expire_after_max_age(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=3600, clock=clock)
    cache.put(ok("https://a.example/"))
    clock.now += 3599
    assert cache.get("https://a.example/") is not None
    clock.now += 1
    assert cache.get("https://a.example/") is None


def test_expiry_uses_the_max_age_of_the_loading_run(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.jsonl"
    cache = ResultCache.load(path, max_age=DAY, clock=clock)
    cache.put(ok("https://a.example/"))
    cache.save()
    clock.now += 120
    assert ResultCache.load(path, max_age=60, clock=clock).get("https://a.example/") is None
    assert ResultCache.load(path, max_age=600, clock=clock).get("https://a.example/") is not None


def test_an_entry_stamped_in_the_future_is_not_trusted(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = ResultCache.load(tmp_path / "c.jsonl", max_age=DAY, clock=clock)
    cache.put(ok("https://a.example/"))
    clock.now -= 3600  # the clock went back, or the file came from a skewed machine
    assert cache.get("https://a.example/") is None


def test_expired_entries_are_dropped_on_save(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.jsonl"
    cache = ResultCache.load(path, max_age=60, clock=clock)
    cache.put(ok("https://old.example/"))
    clock.now += 120
    cache.put(ok("https://new.example/"))
    cache.save()
    text = path.read_text()
    assert "new.example" in text
    assert "old.example" not in text


def test_the_cache_file_has_a_format_version(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    cache = ResultCache.load(path, max_age=DAY, clock=FakeClock())
    cache.put(ok("https://a.example/"))
    cache.save()
    header, entry = (json.loads(line) for line in path.read_text().splitlines())
    assert header == {"format": "fetchpool-cache", "version": 1}
    assert entry["url"] == "https://a.example/"
    assert entry["status"] == 200


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    cache = ResultCache.load(path, max_age=DAY, clock=FakeClock())
    cache.put(ok("https://a.example/"))
    cache.save()
    cache.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


def test_save_creates_the_cache_directory(tmp_path: Path) -> None:
    path = tmp_path / ".cache" / "fetchpool" / "c.jsonl"
    cache = ResultCache.load(path, max_age=DAY, clock=FakeClock())
    cache.put(ok("https://a.example/"))
    cache.save()
    assert ResultCache.load(path, max_age=DAY, clock=FakeClock()).get("https://a.example/")


@pytest.mark.parametrize("crash", [OSError("disk full"), KeyboardInterrupt()])
def test_a_crash_while_saving_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: BaseException
) -> None:
    clock = FakeClock()
    path = tmp_path / "c.jsonl"
    cache = ResultCache.load(path, max_age=DAY, clock=clock)
    cache.put(ok("https://a.example/"))
    cache.save()
    before = path.read_bytes()

    for i in range(10):
        cache.put(ok(f"https://new{i}.example/"))
    written = 0
    real_entry_line = _cache._entry_line

    def entry_line_then_crash(entry: CachedEntry) -> str:
        nonlocal written
        written += 1
        if written == 5:  # some lines are already in the temporary file
            raise crash
        return real_entry_line(entry)

    monkeypatch.setattr(_cache, "_entry_line", entry_line_then_crash)
    with pytest.raises(type(crash)):
        cache.save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]


@pytest.mark.parametrize(
    "content",
    [
        b"this is not json\n",
        b'{"format": "something-else", "version": 1}\n',
        b'{"format": "fetchpool-cache", "version": 99}\n{"url": "https://a.example/"}\n',
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]\n",
    ],
)
def test_a_corrupt_cache_file_gives_an_empty_cache_and_a_warning(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    cache = ResultCache.load(path, max_age=DAY, clock=FakeClock())
    assert len(cache) == 0
    assert cache.warning is not None
    assert str(path) in cache.warning


def test_malformed_lines_are_skipped_and_the_good_ones_kept(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "c.jsonl"
    good = {"url": "https://a.example/", "status": 200, "final_url": None, "checked_at": clock.now}
    lines = [
        json.dumps({"format": "fetchpool-cache", "version": 1}),
        json.dumps(good),
        "{truncated",
        json.dumps({"url": 5, "status": 200, "final_url": None, "checked_at": clock.now}),
        json.dumps({"url": "https://b.example/", "status": "200", "checked_at": clock.now}),
        json.dumps({"url": "https://c.example/", "status": 200, "checked_at": True}),
    ]
    path.write_text("\n".join(lines) + "\n")
    cache = ResultCache.load(path, max_age=DAY, clock=clock)
    assert len(cache) == 1
    assert cache.get("https://a.example/") is not None
    assert cache.warning is not None
    assert "4 malformed lines" in cache.warning


def test_an_unreadable_cache_path_gives_a_warning_not_a_crash(tmp_path: Path) -> None:
    cache = ResultCache.load(tmp_path, max_age=DAY)  # a directory, not a file
    assert len(cache) == 0
    assert cache.warning is not None


def test_a_cache_hit_becomes_an_ok_result_at_the_new_place() -> None:
    entry = CachedEntry("https://a.example/", 200, "https://a.example/home", 1.0)
    result = entry.to_result(Target("https://a.example/", "docs/x.md", 12))
    assert result.outcome is Outcome.OK
    assert (result.source, result.line, result.status) == ("docs/x.md", 12, 200)
    assert result.final_url == "https://a.example/home"
    assert result.attempts == 0  # nothing was sent in this run
    assert result.cached


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("1d", 86400),
        ("45", 45),
        ("1.5h", 5400),
        ("0", 0),
        (" 2d ", 172800),
    ],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "1w", "-5m", "1 day", "1dd", "inf", "nan", "1e3", "1D"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(UsageError, match=r"^invalid max_age ") as info:
        parse_duration(text)
    assert "--max-cache-age" in usage_message(info.value)
