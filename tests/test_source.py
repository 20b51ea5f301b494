"""Input lines: parsing rules, line splitting, and lazy reading of files and pipes."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from fetchpool import Target, TargetReader, open_inputs, parse_line
from fetchpool._config import MAX_LINE
from fetchpool._source import (
    _PLAIN_URL,
    Input,
    _check_url_fully,
    _LineSplitter,
    check_url,
    count_targets,
)


def test_surrounding_whitespace_is_stripped() -> None:
    target = parse_line(b"  \thttp://example.test/a \r", source="f", line=3)
    assert target == Target("http://example.test/a", "f", 3, None)


@pytest.mark.parametrize("raw", [b"", b"   ", b"\t", b"# a comment", b"   # indented comment"])
def test_blank_lines_and_comments_are_skipped(raw: bytes) -> None:
    assert parse_line(raw) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"ftp://example.test/", "invalid URL: unsupported scheme 'ftp'"),
        (b"mailto:someone@example.test", "invalid URL: unsupported scheme 'mailto'"),
        (b"example.test/no-scheme", "invalid URL: no scheme (expected http:// or https://)"),
        (b"http:/one-slash", "invalid URL: expected '//' after the scheme"),
        (b"http://", "invalid URL: no host"),
        (b"http://exa mple.test/", "invalid URL: contains a space"),
        (b"http://example.test/\x00", "invalid URL: contains control character '\\x00'"),
        (b"http://example.test/\x1b[2J", "invalid URL: contains control character '\\x1b'"),
        (b"http://example.test:99999/", "invalid URL: Port out of range 0-65535"),
        (b"http://example.test:0/", "invalid URL: port 0"),
        (b"http://[::1/", "invalid URL: Invalid IPv6 URL"),
        (b"\xff\xfehttp://example.test/", "invalid URL: not valid UTF-8"),
    ],
)
def test_a_line_that_is_not_a_fetchable_url_is_invalid_not_fatal(raw: bytes, reason: str) -> None:
    target = parse_line(raw, source="in.txt", line=7)
    assert target is not None
    assert target.invalid == reason
    assert (target.source, target.line) == ("in.txt", 7)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "HTTPS://Example.Test/Path?q=1#frag",
        "http://[::1]:8080/",
        "http://bücher.example/",
        "http://xn--bcher-kva.example/",
        "http://example.test/[bold]red[/bold]",
    ],
)
def test_http_and_https_urls_are_valid(url: str) -> None:
    target = parse_line(url.encode())
    assert target is not None
    assert target.invalid is None
    assert target.url == url


def _near_urls(count: int, seed: int = 5) -> list[str]:
    """URL-like strings, most valid, many a character or two away from invalid."""
    rng = random.Random(seed)
    schemes = ["http", "https", "HTTP", "Https", "http", "https", "htp", "http2", "ftp", ""]
    schemes.append("http\u017f")  # LATIN SMALL LETTER LONG S: case-folds to "s"
    hosts = ["a", "h.test", "127.0.0.1", "x-y.z", "h_1", "[::1]", "", "u@h", "u:p@h", "ä.test"]
    ports = ["", ":", ":0", ":1", ":80", ":65535", ":65536", ":99999", ":00080", ":8a", ":123456"]
    tails = ["", "/", "/p", "?q=1", "#f", "/a b", "/a\tb", "/\x7f", "/\x85", "/é", "/%zz", "/[x]"]
    extra = [" ", "\x00", "@", ":", "/", "[", "]", "#", "?", "%", "\\", "~", "é", "\x9f"]
    urls = []
    for _ in range(count):
        url = rng.choice(schemes) + rng.choice(["://"] * 6 + [":/", ":", "//"])
        url += rng.choice(hosts) + rng.choice(ports) + rng.choice(tails)
        if rng.random() < 0.3:
            at = rng.randrange(len(url) + 1)
            url = url[:at] + rng.choice(extra) + url[at:]
        urls.append(url)
    return urls


def test_check_url_fast_path_agrees_with_the_full_check() -> None:
    urls = _near_urls(20_000)
    verdicts = [check_url(url) for url in urls]
    assert verdicts == [_check_url_fully(url) for url in urls]
    # The sample covers both outcomes, and the fast path decided many of the valid ones.
    valid = [url for url, verdict in zip(urls, verdicts, strict=True) if verdict is None]
    assert len(urls) / 20 < len(valid) < len(urls) * 0.9
    assert sum(_PLAIN_URL.fullmatch(url) is not None for url in valid) > len(urls) / 50


def test_a_line_over_64_kib_is_invalid_with_a_short_preview() -> None:
    target = parse_line(b"http://example.test/" + b"a" * MAX_LINE)
    assert target is not None
    assert target.invalid == "invalid URL: line over 64 KiB"
    assert len(target.url) < 300


def split_lines(chunks: Iterator[bytes]) -> list[bytes]:
    splitter = _LineSplitter()
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines + splitter.end()


def test_split_lines_handles_crlf_and_a_last_line_without_newline() -> None:
    chunks = [b"a\r\nb", b"\nc"]
    assert list(split_lines(iter(chunks))) == [b"a", b"b", b"c"]


def test_split_lines_never_buffers_an_overlong_line_whole() -> None:
    # A 1 MiB line followed by a normal one, fed in small chunks: the long line
    # is reported once (cut short) and the next line is intact.
    piece = b"x" * 4096
    chunks = [piece] * 256 + [b"\nhttp://example.test/next\n"]
    lines = list(split_lines(iter(chunks)))
    assert len(lines) == 2
    assert len(lines[0]) == MAX_LINE + 1
    assert lines[1] == b"http://example.test/next"


def _read_all(reader: TargetReader) -> list[Target]:
    async def collect() -> list[Target]:
        return [t async for t in reader]

    return asyncio.run(asyncio.wait_for(collect(), 10))


def test_several_files_are_read_in_order_with_source_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    one = tmp_path / "one.txt"
    two = tmp_path / "two.txt"
    one.write_bytes(b"# header\nhttp://a.test/1\n\nhttp://a.test/2\n")
    two.write_bytes(b"http://b.test/1\nftp://nope\n")
    reader = TargetReader(open_inputs([str(one), str(two)]))
    targets = _read_all(reader)
    assert [(t.url, t.source, t.line) for t in targets] == [
        ("http://a.test/1", str(one), 2),
        ("http://a.test/2", str(one), 4),
        ("http://b.test/1", str(two), 1),
        ("ftp://nope", str(two), 2),
    ]
    assert reader.done
    assert reader.read_count == 4


def test_counted_targets_are_the_targets_the_reader_yields(tmp_path) -> None:  # type: ignore[no-untyped-def]
    one = tmp_path / "one.txt"
    one.write_bytes(
        "http://a.test/1\r\n"
        "\u00a0\n"  # blank once decoded (str.strip, not bytes.strip)
        "\u2003# an indented comment\n"
        "  \t\n".encode()
        + b"#"
        + b"x" * (MAX_LINE + 10)
        + b"\n"  # over 64 KiB: reported, though it starts with #
        + b"\xff\xfe\n"  # not UTF-8: reported
        + b"http://a.test/last-without-newline"
    )
    two = tmp_path / "two.txt"
    two.write_bytes(b"")
    inputs = open_inputs([str(one), str(two)])
    counted = count_targets(inputs)
    targets = _read_all(TargetReader(inputs))
    assert counted == len(targets) == 4


def test_a_pipe_is_not_counted_up_front() -> None:
    read_fd, write_fd = os.pipe()
    try:
        assert count_targets([Input("-", read_fd)]) is None
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_a_pipe_is_read_lazily_as_lines_arrive() -> None:
    read_fd, write_fd = os.pipe()

    async def scenario() -> list[str]:
        reader = TargetReader(open_inputs(["-"], stdin_fd=read_fd))
        seen: list[str] = []
        os.write(write_fd, b"http://a.test/1\n")
        iterator = aiter(reader)
        # The first line is handed out while the writer still holds the pipe open.
        first = await asyncio.wait_for(anext(iterator), 5)
        seen.append(first.url)
        os.write(write_fd, b"http://a.test/2\n")
        os.close(write_fd)
        seen.extend([t.url async for t in iterator])
        return seen

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 10)) == [
            "http://a.test/1",
            "http://a.test/2",
        ]
    finally:
        os.close(read_fd)


def test_waiting_on_an_idle_pipe_does_not_block_cancellation() -> None:
    read_fd, write_fd = os.pipe()

    async def scenario() -> None:
        reader = TargetReader(open_inputs(["-"], stdin_fd=read_fd))
        task = asyncio.ensure_future(anext(aiter(reader)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 5))
    finally:
        os.close(write_fd)
        os.close(read_fd)


def test_an_unreadable_file_is_reported_before_anything_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError):
        open_inputs([str(tmp_path / "missing.txt")])
    with pytest.raises(IsADirectoryError):
        open_inputs([str(tmp_path)])


def test_leftovers_of_a_filtered_reader_are_filtered_and_counted_like_every_other_line(
    tmp_path: Path,
) -> None:
    from fetchpool._filter import LinkFilter
    from fetchpool._links import FilteredTargets
    from fetchpool._stats import InputCounts

    path = tmp_path / "urls.txt"
    path.write_bytes(b"http://a.test/1\nhttp://skip.test/2\nhttp://a.test/3\nnot a url\n")
    counts = InputCounts()
    source = FilteredTargets(
        TargetReader(open_inputs([str(path)])), LinkFilter(exclude=["skip"]), counts
    )

    async def first() -> Target:
        return await anext(aiter(source))

    assert asyncio.run(first()).url == "http://a.test/1"
    # The rest of the chunk was read but never handed out: what a cancel reports.
    assert [t.url for t in source.leftovers()] == ["http://a.test/3", "not a url"]
    assert (counts.excluded, source.leftovers()) == (1, [])
