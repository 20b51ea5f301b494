"""The table display's places, its end-of-run list of failures, and cancelled URLs, checked
line by line against the contract ("The table display"), mostly under a real pseudo-terminal
at 80 and 200 columns."""

from __future__ import annotations

import io
import re
import signal
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pexpect
import pytest
from clihelpers import (
    parse_jsonl,
    parse_summary,
    read_lines_until,
    spawn_fetchpool,
    wait_exit,
    write_lines,
)
from httpserver import HTTPTestServer, wait_until
from ptyhelpers import run_to_end, screen_lines, spawn_on_terminal
from rich.console import Console

from fetchpool._models import Kind, Outcome, Result
from fetchpool._stats import RunStats
from fetchpool.cli.table import TableSink, fit_url
from fetchpool.cli.view import RunView

WIDTHS = [80, 200]
SCREEN_ROWS = 120  # tall enough that nothing of the run scrolls off the screen
ROW = re.compile(r"(OK|FAIL|CANCELLED) ")
LONG_REASON = (
    "the upstream shard refused the request because its replica set was being rebalanced "
    "at the time, please retry"
)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def _spawn(args: list[str], cols: int, cwd: Path | None = None) -> pexpect.spawn[bytes]:
    return spawn_on_terminal(args, rows=SCREEN_ROWS, cols=cols, cwd=cwd)


def _screen(child: pexpect.spawn[bytes], cols: int) -> list[str]:
    """Wait for the end of the run; the final screen's lines, each `cols` cells wide."""
    return screen_lines(run_to_end(child).replace("^C", ""), cols, SCREEN_ROWS, strip=False)


def _after(lines: list[str], title: str) -> list[str]:
    starts = [i for i, line in enumerate(lines) if line.rstrip() == title]
    assert len(starts) == 1, "\n".join(lines)
    return lines[starts[0] :]


# -- "The run ends with a list of the failures, grouped by source, each with its place, its whole
#    URL and its whole error text (not cut to the terminal's width); at most 100, then a count of
#    the rest." --------------------------------------------------------------------------------


@pytest.mark.parametrize("cols", WIDTHS)
def test_the_run_ends_with_a_list_of_the_failures_each_with_its_whole_url_and_whole_error(
    server: HTTPTestServer, tmp_path: Path, cols: int
) -> None:
    long_url = server.url(f"/reason/500/{'p' * 40}/long-tail-{uuid.uuid4().hex}")
    long_url += "?text=" + quote(LONG_REASON)
    assert len(long_url) >= 150
    gone = server.url("/status/404/gone")
    urls = [server.url("/ok/1"), server.url("/ok/2"), gone, long_url, server.url("/ok/3")]
    write_lines(tmp_path / "urls.txt", urls)
    lines = _screen(
        _spawn(["urls.txt", "--format", "table", "--retries", "0"], cols, tmp_path), cols
    )
    text = "\n".join(line.rstrip() for line in lines)
    assert "Traceback" not in text
    failures = _after(lines, "Failures (2)")
    assert failures[1].rstrip() == "urls.txt"  # grouped by source
    # The whole URL: the terminal wraps it, so the screen's lines joined hold it unbroken.
    joined = "".join(failures)
    assert long_url in joined
    assert gone in joined
    # Each with its place and its whole error text (wrapped at spaces, never cut).
    words = " ".join(joined.split())
    assert re.search(r"line 3 404 " + re.escape(gone) + " HTTP 404 Not Found", words), words
    assert f"line 4 500 {long_url} HTTP 500 {LONG_REASON}" in words
    assert "…" not in "".join(
        failures[: failures.index(next(x for x in failures if "Summary" in x))]
    )
    # ...before the summary, which ends the run.
    assert any("Summary" in line for line in failures)
    if cols == 80:
        row = next(line for line in lines if line.startswith("FAIL      500"))
        assert "…" in row  # the row itself is shortened to the terminal's width


def _failure(i: int) -> Result:
    return Result(
        url=f"http://127.0.0.1:8000/status/404/{i}", source="urls.txt", line=i,
        outcome=Outcome.FAIL, status=404, error="HTTP 404 Not Found", kind=Kind.HTTP,
    )  # fmt: skip


def test_the_list_of_failures_shows_at_most_100_then_a_count_of_the_rest() -> None:
    con = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    stats = RunStats()
    sink = TableSink(console=con, view=RunView(), stats=stats)
    sink.start()
    for i in range(1, 131):
        result = _failure(i)
        stats.add(result)
        sink.write(result)
    sink.finish()
    file = con.file
    assert isinstance(file, io.StringIO)
    listed = _after(file.getvalue().splitlines(), "Failures (130)")
    entries = [line for line in listed if line.startswith("  line ")]
    assert len(entries) == 100
    assert entries[-1].endswith("/status/404/100")
    assert "… and 30 more failures (not listed)" in listed


# -- "After Ctrl-C or `--max-time`, the CANCELLED URLs are one line in the table (`N cancelled`),
#    not a row each (the machine formats still have a row each); URLs per second counts only
#    URLs that were fetched." ------------------------------------------------------------------


def _slow_urls(server: HTTPTestServer, tmp_path: Path, tag: str) -> Path:
    urls = [server.url(f"/ok/{tag}/{i}") for i in range(2)]
    urls += [server.url(f"/delay/20000/{tag}/{i}") for i in range(300)]
    return write_lines(tmp_path / "urls.txt", urls)


def _rate_and_wall(text: str) -> tuple[float, float]:
    match = re.search(r"([\d.,]+) URLs/s · wall time ([\d.]+) (ms|s)\b", text)
    assert match is not None, text
    wall = float(match.group(2)) / (1000 if match.group(3) == "ms" else 1)
    return float(match.group(1).replace(",", "")), wall


@pytest.mark.parametrize("cols", WIDTHS)
def test_after_ctrl_c_the_cancelled_urls_are_one_line_in_the_table_and_urls_per_second_counts_only_fetched(  # noqa: E501
    server: HTTPTestServer, tmp_path: Path, cols: int
) -> None:
    tag = uuid.uuid4().hex
    path = _slow_urls(server, tmp_path, tag)
    child = _spawn([str(path), "--workers", "2", "--timeout", "60"], cols)
    try:
        assert wait_until(lambda: server.hits(f"/delay/20000/{tag}/") >= 2, 10)
        time.sleep(0.3)
        child.sendintr()
    except BaseException:
        child.terminate(force=True)
        raise
    lines = _screen(child, cols)
    assert child.exitstatus == 130
    text = "\n".join(line.rstrip() for line in lines)
    assert "Traceback" not in text
    rows = [line for line in text.splitlines() if ROW.match(line)]
    assert [row.split()[0] for row in rows] == ["OK", "OK"], text
    counted = re.findall(r"^(\d+) cancelled \(interrupted by SIGINT\)$", text, re.MULTILINE)
    assert len(counted) == 1, text
    cancelled = int(counted[0])
    assert cancelled >= 2
    assert re.search(rf"\b2 OK\s+0 FAIL\s+{cancelled} CANCELLED\b", text), text
    # Only the 2 URLs fetched count towards URLs per second, not the cancelled ones.
    rate, wall = _rate_and_wall(text)
    assert wall > 0.3
    assert rate == pytest.approx(2 / wall, abs=0.1), text


def test_after_ctrl_c_the_machine_formats_still_have_a_row_each_and_urls_per_second_counts_only_fetched(  # noqa: E501
    server: HTTPTestServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    path = _slow_urls(server, tmp_path, tag)
    proc = spawn_fetchpool(path, "--workers", "2", "--timeout", "60", "--format", "jsonl")
    try:
        early = read_lines_until(proc, 2, timeout=10)
        assert wait_until(lambda: server.hits(f"/delay/20000/{tag}/") >= 2, 10)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
    finally:
        out, err = wait_exit(proc, 10)
    assert proc.returncode == 130, err
    records = parse_jsonl(b"\n".join(early) + b"\n" + out)
    cancelled = [r for r in records if r["outcome"] == "cancelled"]
    assert len(cancelled) >= 2
    assert len({r["line"] for r in cancelled}) == len(cancelled)  # a row each
    summary = parse_summary(err)
    assert (summary.ok, summary.cancelled) == (2, len(cancelled))
    match = re.search(rb" in ([\d.]+) (ms|s) \(([\d.,]+) URLs/s\)", err)
    assert match is not None, err
    wall = float(match.group(1)) / (1000 if match.group(2) == b"ms" else 1)
    assert float(match.group(3).replace(b",", b"")) == pytest.approx(2 / wall, abs=0.1), err


def test_urls_per_second_counts_only_urls_that_were_fetched() -> None:
    now = [0.0]
    stats = RunStats(clock=lambda: now[0])
    stats.add(_failure(1))
    stats.add(Result(url="http://x/", source="-", line=2, outcome=Outcome.OK, status=200))
    for i in range(300):
        stats.add(
            Result(url=f"http://x/{i}", source="-", line=3 + i, outcome=Outcome.CANCELLED,
                   error="interrupted by SIGINT", kind=Kind.CANCELLED)
        )  # fmt: skip
    now[0] = 2.0
    assert stats.rate() == 1.0


# -- "When the input has places (`--extract`, `--recursive`), each row shows where the link is
#    (`file:line`, or the page URL)." ---------------------------------------------------------


@pytest.mark.parametrize("cols", WIDTHS)
def test_when_the_input_has_places_each_row_shows_where_the_link_is(
    server: HTTPTestServer, tmp_path: Path, cols: int
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(
        "# Guide\n\n"
        f"See [the start]({server.url('/ok/start')}).\n\n"
        f"A [dead link]({server.url('/status/404/dead')}) here.\n"
    )
    lines = _screen(
        _spawn(["--extract", "docs/guide.md", "--format", "table"], cols, tmp_path), cols
    )
    text = "\n".join(line.rstrip() for line in lines)
    rows = {line.split()[0]: line for line in text.splitlines() if ROW.match(line)}
    assert set(rows) == {"OK", "FAIL"}, text
    place = "docs/guide.md" if cols == 200 else "guide.md"
    assert re.search(rf"{re.escape(place)}:3\s+{re.escape(server.url('/ok/start'))}$", rows["OK"])
    assert f"{place}:5 " in rows["FAIL"]
    assert server.url("/status/404/dead") in rows["FAIL"]
    failures = _after(lines, "Failures (1)")
    assert failures[1].rstrip() == "docs/guide.md"
    assert failures[2].split()[:3] == ["line", "5", "404"]


# -- long URLs at 80 columns: cut in the middle of the path, the end kept -----------------------


def test_long_urls_of_one_site_stay_distinguishable_at_80_columns() -> None:
    base = "https://docs.example.org/reference/api/v2/modules/networking/transport/"
    urls = [base + f"{name}.html" for name in ("client", "server", "proxy", "tls", "dns", "pool")]
    shown = {fit_url(url, 36) for url in urls}
    assert len(shown) == len(urls)
    for url in urls:
        short = fit_url(url, 36)
        assert short.startswith("https://docs.")
        assert short.endswith("transport/" + url.rsplit("/", 1)[1])
