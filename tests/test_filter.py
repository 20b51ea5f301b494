"""The link filter: `--include`/`--exclude` regexes and `--shard K/N` by host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fetchpool._errors import SettingError, UsageError
from fetchpool._filter import LinkFilter, parse_shard, shard_of
from fetchpool.cli.errors import usage_message

REPO = Path(__file__).resolve().parent.parent


def test_no_patterns_keep_every_url() -> None:
    f = LinkFilter()
    assert f.decide("https://example.com/") == "keep"
    assert f.decide("http://localhost:8000/x") == "keep"


def test_exclude_drops_urls_matching_any_pattern() -> None:
    f = LinkFilter(exclude=[r"localhost", r"\.internal/"])
    assert f.decide("http://localhost:8000/") == "excluded"
    assert f.decide("https://wiki.internal/page") == "excluded"
    assert f.decide("https://example.com/") == "keep"


def test_include_keeps_only_urls_matching_some_pattern() -> None:
    f = LinkFilter(include=[r"^https://docs\.", r"github\.com"])
    assert f.decide("https://docs.python.org/3/") == "keep"
    assert f.decide("https://github.com/x/y") == "keep"
    assert f.decide("https://example.com/") == "excluded"


def test_exclude_wins_over_include() -> None:
    f = LinkFilter(include=[r"example\.com"], exclude=[r"/private/"])
    assert f.decide("https://example.com/public/") == "keep"
    assert f.decide("https://example.com/private/a") == "excluded"


def test_patterns_are_searched_anywhere_in_the_url() -> None:
    # re.search, not re.match: no need to write a leading `.*`.
    assert LinkFilter(exclude=["example"]).decide("https://www.example.com/") == "excluded"


@pytest.mark.parametrize("option", ["include", "exclude"])
def test_bad_regex_is_a_usage_error_naming_the_option_and_pattern(option: str) -> None:
    with pytest.raises(UsageError) as info:
        LinkFilter(**{option: ["ok", "(unclosed"]})  # type: ignore[arg-type]
    # The library names its parameter; the CLI, the option that sets it.
    assert isinstance(info.value, SettingError)
    assert info.value.name == option
    assert f"--{option}" in usage_message(info.value)
    assert "(unclosed" in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"), [("1/1", (1, 1)), ("3/4", (3, 4)), (" 2 / 8 ", (2, 8))]
)
def test_parse_shard_accepts_k_of_n(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "1", "a/b", "-1/4", "1/4/2", ""])
def test_parse_shard_rejects_anything_but_1_le_k_le_n(text: str) -> None:
    with pytest.raises(UsageError, match=r"^invalid shard ") as info:
        parse_shard(text)
    assert "--shard" in usage_message(info.value)


# Fixed values: if the hash changes, shards move between releases and CI matrices
# silently check different links; this test makes such a change deliberate.
@pytest.mark.parametrize(
    ("host", "of4", "of1000"),
    [
        ("example.com", 3, 711),
        ("example.org", 2, 462),
        ("localhost", 3, 423),
        ("127.0.0.1", 1, 197),
        ("docs.python.org", 4, 980),
        ("github.com", 2, 726),
    ],
)
def test_shard_numbers_are_fixed(host: str, of4: int, of1000: int) -> None:
    assert shard_of(f"https://{host}/", 4) == of4
    assert shard_of(f"https://{host}/", 1000) == of1000


def test_shard_does_not_depend_on_the_python_hash_seed() -> None:
    code = (
        "from fetchpool._filter import shard_of;"
        "print([shard_of(f'https://h{i}.example/', 97) for i in range(50)])"
    )
    outputs = set()
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stderr
        outputs.add(run.stdout)
    assert len(outputs) == 1


def test_same_host_lands_in_one_shard_whatever_port_path_case_or_userinfo() -> None:
    urls = [
        "https://example.com/",
        "http://example.com:8080/a/b?q=1#frag",
        "HTTPS://EXAMPLE.COM/Other",
        "https://user:secret@Example.Com:443/x",
        "https://example.com./trailing-dot",
    ]
    for n in (2, 3, 4, 16, 1000):
        assert len({shard_of(u, n) for u in urls}) == 1


def test_unicode_and_punycode_spellings_of_a_host_land_in_one_shard() -> None:
    for n in (4, 1000):
        assert shard_of("https://bücher.example/", n) == shard_of(
            "https://xn--bcher-kva.example/x", n
        )
        assert shard_of("https://BÜCHER.example/", n) == shard_of("https://bücher.example/", n)


@pytest.mark.parametrize("url", ["mailto:a@b.c", "not a url", "http://[::1", "", "file:///x"])
def test_url_without_a_host_goes_to_shard_1(url: str) -> None:
    assert shard_of(url, 4) == 1


def test_decide_puts_urls_of_other_shards_aside() -> None:
    assert LinkFilter(shard=(3, 4)).decide("https://example.com/") == "keep"
    assert LinkFilter(shard=(1, 4)).decide("https://example.com/") == "other-shard"
    # The regexes are applied first: an excluded URL is counted as excluded.
    f = LinkFilter(exclude=["example"], shard=(1, 4))
    assert f.decide("https://example.com/") == "excluded"


def test_four_shards_partition_the_urls_with_every_host_in_one_shard() -> None:
    hosts = [f"host{i}.example" for i in range(40)]
    urls = [
        f"https://{host}{':8443' if j % 3 == 0 else ''}/page/{j}"
        for j in range(5)
        for host in hosts
    ]
    assert len(urls) == 200
    kept = {
        k: [u for u in urls if LinkFilter(shard=(k, 4)).decide(u) == "keep"] for k in range(1, 5)
    }
    union = [u for k in kept for u in kept[k]]
    assert sorted(union) == sorted(urls)  # every URL in some shard, none in two
    assert all(kept[k] for k in kept)  # 40 hosts spread over all four shards
    for host in hosts:
        assert sum(any(f"//{host}" in u for u in kept[k]) for k in kept) == 1
