"""The terminal display: aligned result rows, the live region, the summary and the stderr
progress line, rendered on fixed-width Rich consoles writing to strings."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from clihelpers import FETCHPOOL, write_lines
from httpserver import HTTPTestServer
from ptyhelpers import run_to_end, screen_lines, spawn_on_terminal
from rich.cells import cell_len
from rich.console import Console

from fetchpool._models import Kind, Outcome, Result, Target
from fetchpool._stats import RunStats
from fetchpool.cli.literal import printable
from fetchpool.cli.progress import ProgressLine
from fetchpool.cli.summary import format_summary, summary_renderable
from fetchpool.cli.table import TableSink, fit_middle
from fetchpool.cli.view import RunSnapshot, RunView

BASE = "http://127.0.0.1:8000"
LONG_URL = BASE + "/start-of-path/" + "x" * 150 + "/end-of-path.html"
HOSTILE_URL = BASE + "/[bold red]x[/]\x1b[2J\r\x07"
HOSTILE_ERROR = "boom \x1b[31m[red]red[/red]\x1b]0;title\x07"


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dumb TERM or a user's NO_COLOR would change what Rich draws.
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


def view_of(busy: Sequence[tuple[Target, float]] = (), total: int | None = None) -> RunView:
    """A run view with the busy workers and total the test sets, as if published."""
    return RunView(RunSnapshot(tuple(busy), total))


def console(width: int, *, interactive: bool = False, color: bool = False) -> Console:
    return Console(
        file=io.StringIO(),
        width=width,
        height=24,
        force_terminal=True,
        force_interactive=interactive,
        color_system="truecolor" if color else None,
    )


def output(con: Console) -> str:
    file = con.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def screen(text: str, width: int, height: int = 24) -> list[str]:
    """The screen a terminal of this size shows after receiving `text`."""
    return screen_lines(text.replace("\n", "\r\n"), width, height)


def ok(url: str, *, elapsed: float = 0.012, final_url: str | None = None) -> Result:
    return Result(
        url=url, source="-", line=1, outcome=Outcome.OK, status=200, elapsed=elapsed,
        final_url=final_url,
    )  # fmt: skip


def fail(url: str, error: str, *, status: int | None = None, kind: Kind = Kind.HTTP) -> Result:
    return Result(
        url=url, source="-", line=1, outcome=Outcome.FAIL, status=status, elapsed=0.25,
        error=error, kind=kind,
    )  # fmt: skip


def cancelled(url: str) -> Result:
    return Result.cancelled(Target(url), "interrupted by SIGINT", elapsed=1.5)


def run_sink(
    con: Console,
    results: Sequence[Result],
    *,
    view: RunView | None = None,
    failures_only: bool = False,
) -> RunStats:
    stats = RunStats()
    sink = TableSink(console=con, view=view or view_of(), stats=stats, failures_only=failures_only)
    sink.start()
    for result in results:
        stats.add(result)
        sink.write(result)
    sink.finish()
    return stats


SAMPLE = [
    ok(BASE + "/ok/1"),
    fail(BASE + "/status/404", "HTTP 404 Not Found", status=404),
    fail(BASE + "/slow", "timeout after 2 s", kind=Kind.TIMEOUT),
    ok(BASE + "/redirect/1", final_url=BASE + "/ok/final"),
    cancelled(BASE + "/delay/5000"),
]


# CANCELLED results are one `N cancelled` line at the end, not a row each.
SAMPLE_ROWS = [r for r in SAMPLE if r.outcome is not Outcome.CANCELLED]


def row_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"(OK|FAIL|CANCELLED) ", line)]


@pytest.mark.parametrize("width", [80, 200])
def test_rows_line_up_in_columns(width: int) -> None:
    con = console(width)
    run_sink(con, SAMPLE)
    rows = row_lines(output(con))
    assert len(rows) == len(SAMPLE_ROWS)
    url_columns = {row.index("http://") for row in rows}
    assert len(url_columns) == 1
    details = ["HTTP 404 Not Found", "timeout after 2 s", "→ "]
    detail_columns = {row.index(d) for row in rows for d in details if d in row}
    assert len(detail_columns) == 1
    assert all(cell_len(row) <= width for row in rows)


def test_rows_show_outcome_status_time_url_and_detail() -> None:
    con = console(120)
    run_sink(con, SAMPLE)
    rows = row_lines(output(con))
    assert rows[0].split() == ["OK", "200", "0.012s", BASE + "/ok/1"]
    assert rows[1].split()[:4] == ["FAIL", "404", "0.250s", BASE + "/status/404"]
    assert rows[1].endswith("HTTP 404 Not Found")
    assert rows[2].split()[:2] == ["FAIL", "-"]
    assert rows[3].endswith("→ " + BASE + "/ok/final")
    assert len(rows) == 4
    assert "1 cancelled (interrupted by SIGINT)" in output(con).splitlines()


def test_long_url_is_shortened_in_the_middle_at_80_columns() -> None:
    con = console(80)
    run_sink(con, [fail(LONG_URL, "HTTP 500 Internal Server Error", status=500), ok(LONG_URL)])
    rows = row_lines(output(con))
    for row in rows:
        assert "…" in row
        assert "http://127.0.0.1:" in row
        assert "end-of-path.html" in row
        assert cell_len(row) <= 80


def test_nothing_is_cut_at_200_columns() -> None:
    # Longer than the URL column: it borrows room the detail does not need.
    url = BASE + "/" + "a" * 90 + "/page.html"
    error = "HTTP 503 Service Unavailable (after 3 attempts)"
    final = BASE + "/final/" + "b" * 20
    con = console(200)
    run_sink(con, [fail(url, error, status=503), ok(url, final_url=final)])
    rows = row_lines(output(con))
    assert "…" not in "".join(rows)
    assert all(url in row for row in rows)
    assert rows[0].endswith(error)
    assert rows[1].endswith(final)


@pytest.mark.parametrize("width", [40, 80, 200])
def test_a_result_served_from_the_cache_is_marked_cached_in_the_detail_column(width: int) -> None:
    final = BASE + "/ok/final"
    results = [
        replace(ok(BASE + "/ok/1"), cached=True),
        replace(ok(LONG_URL), cached=True),
        replace(ok(BASE + "/redirect/1", final_url=final), cached=True),
        ok(BASE + "/ok/2"),
    ]
    con = console(width)
    run_sink(con, results)
    lines = output(con).splitlines()
    rows = row_lines(output(con))
    assert len(rows) == 4
    assert all(cell_len(line) <= width for line in lines)
    assert rows[0].endswith(" cached")
    assert rows[1].endswith(" cached")
    if width >= 80:
        assert "end-of-path.html" in rows[1]
        assert " cached → " in rows[2]
    redirect_lines = lines[lines.index(rows[2]) : lines.index(rows[3])]
    assert "cached →" in "\n".join(redirect_lines)  # under the row when it does not fit beside
    assert "cached" not in rows[3]
    if width == 200:
        assert rows[2].endswith("cached → " + final)


def test_a_url_with_no_detail_may_use_the_detail_space() -> None:
    url = BASE + "/" + "c" * 30
    con = console(80)
    run_sink(con, [ok(url)])
    assert url in output(con)


def test_wide_characters_are_shortened_by_terminal_cells() -> None:
    url = "http://例え.テスト/" + "とても長いパス" * 10
    short = fit_middle(url, 31)
    assert cell_len(short) <= 31
    assert short.startswith("http://例え")
    assert short.endswith("パス")
    con = console(80)
    results = [
        fail(url, "HTTP 404 Not Found", status=404),
        fail("http://例え.テスト/パス", "HTTP 404 Not Found", status=404),
        fail(BASE, "x", status=500),
    ]
    run_sink(con, results)
    rows = row_lines(output(con))
    assert all(cell_len(row) <= 80 for row in rows)
    assert cell_len(rows[1][: rows[1].index("HTTP 404")]) == rows[2].index("x")


def test_markup_and_escape_sequences_from_outside_render_literally() -> None:
    hostile = [
        fail(HOSTILE_URL, HOSTILE_ERROR, status=500),
        ok(HOSTILE_URL, final_url=BASE + "/[/]\x1b[1A"),
        Result(
            url=BASE + "/reason",
            source="-",
            line=1,
            outcome=Outcome.FAIL,
            status=418,
            reason="I'm a [blink]teapot[/blink]\x1b[5m",
            kind=Kind.HTTP,
        ),
    ]
    con = console(200)
    run_sink(con, hostile)
    text = output(con)
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\x07" not in text
    assert "/[bold red]x[/]\\x1b[2J\\x0d\\x07" in text
    assert "boom \\x1b[31m[red]red[/red]\\x1b]0;title\\x07" in text
    assert "/[/]\\x1b[1A" in text
    assert "I'm a [blink]teapot[/blink]\\x1b[5m" in text


def test_outside_text_cannot_inject_escapes_into_a_coloured_live_display() -> None:
    con = console(200, interactive=True, color=True)
    view = view_of(busy=[(Target(HOSTILE_URL), 0.0)])
    run_sink(con, [fail(HOSTILE_URL, HOSTILE_ERROR, status=500)], view=view)
    text = output(con)
    # Rich's own styling and cursor control remain; nothing else may start with ESC.
    leftover = re.sub(r"\x1b\[[0-9;?]*[mlhAKG]", "", text)
    assert "\x1b" not in leftover
    assert "\x07" not in leftover
    assert "\\x1b[2J" in text


def test_printable_escapes_control_and_bidi_characters() -> None:
    assert printable("plain [b]text[/b] ünïcode") == "plain [b]text[/b] ünïcode"
    assert printable("a\x1bb\tc\x7fd\x9be") == "a\\x1bb\\x09c\\x7fd\\x9be"
    assert printable("evil\u202egnp.exe") == "evil\\u202egnp.exe"


def test_failures_only_prints_only_rows_that_are_not_ok() -> None:
    con = console(100)
    stats = run_sink(con, SAMPLE, failures_only=True)
    rows = row_lines(output(con))
    assert [row.split()[0] for row in rows] == ["FAIL", "FAIL"]
    assert stats.ok == 2  # the summary still counts every result
    assert "5 URLs" in output(con)
    assert re.search(r"5 URLs\s+2 OK\s+2 FAIL\s+1 CANCELLED", output(con))


def test_resizing_mid_run_lays_out_later_rows_for_the_new_width() -> None:
    url = BASE + "/" + "r" * 120
    con = console(200)
    stats = RunStats()
    sink = TableSink(console=con, view=view_of(), stats=stats)
    sink.start()
    sink.write(fail(url, "HTTP 404 Not Found", status=404))
    con.width = 80
    sink.write(fail(url, "HTTP 404 Not Found", status=404))
    sink.finish()
    wide, narrow = row_lines(output(con))
    assert cell_len(wide) <= 200
    assert "…" not in wide
    assert cell_len(narrow) <= 80
    assert "…" in narrow


def test_live_region_shows_busy_workers_longest_running_first_and_the_counts() -> None:
    now = 1000.0
    view = view_of(
        busy=[
            (Target(BASE + "/delay/1"), now - 1.0),
            (Target(BASE + "/stuck"), now - 42.0),
            (Target(BASE + "/delay/7"), now - 7.0),
        ],
        total=100,
    )
    con = console(100, interactive=True)
    stats = RunStats()
    sink = TableSink(console=con, view=view, stats=stats, clock=lambda: now)
    sink.start()
    for result in SAMPLE:
        stats.add(result)
        sink.write(result)
    sink.refresh()
    lines = screen(output(con), 100)
    rows = row_lines("\n".join(lines))
    assert len(rows) == len(SAMPLE_ROWS)
    live = [line for line in lines if line and not re.match(r"(OK|FAIL|CANCELLED) ", line)]
    assert live[0].split() == ["42.0s", BASE + "/stuck"]
    assert live[1].split() == ["7.0s", BASE + "/delay/7"]
    assert live[2].split() == ["1.0s", BASE + "/delay/1"]
    counts = live[3]
    for part in ("5/100 done", "2 OK", "2 FAIL", "1 CANCELLED", "3 in flight", "URLs/s", "ETA"):
        assert part in counts
    sink.finish()


def test_live_region_is_capped_and_says_how_many_more_are_in_flight() -> None:
    view = view_of(busy=[(Target(f"{BASE}/w/{i}"), float(i)) for i in range(40)])
    con = console(80, interactive=True)
    sink = TableSink(console=con, view=view, stats=RunStats(), clock=lambda: 100.0)
    sink.start()
    sink.refresh()
    lines = [line for line in screen(output(con), 80) if line]
    assert len(lines) <= 12
    assert lines[0].endswith("/w/0")  # the longest-running one
    assert any("and 31 more in flight" in line for line in lines)
    assert "40 in flight" in lines[-1]
    sink.finish()


def test_finish_clears_the_live_region_and_ends_with_the_summary() -> None:
    view = view_of(busy=[(Target(BASE + "/delay/9"), 0.0)], total=5)
    con = console(100, interactive=True)
    stats = run_sink(con, SAMPLE, view=view)
    lines = [line for line in screen(output(con), 100, 40) if line]
    assert not any("in flight" in line for line in lines)
    assert not any("/delay/9" in line for line in lines)
    assert len(row_lines("\n".join(lines))) == len(SAMPLE_ROWS)
    assert lines[len(SAMPLE_ROWS)] == "1 cancelled (interrupted by SIGINT)"
    assert lines[len(SAMPLE_ROWS) + 1] == "Failures (2)"
    assert "Summary" in lines[len(SAMPLE_ROWS) + 7]
    assert stats.done == 5
    assert any(re.search(r"5 URLs\s+2 OK\s+2 FAIL\s+1 CANCELLED", line) for line in lines)


def test_every_row_is_printed_exactly_once_under_a_burst() -> None:
    con = console(120, interactive=True)
    results = [ok(f"{BASE}/ok/{i}-end") for i in range(3000)]
    run_sink(con, results)
    text = output(con)
    for i in (0, 1, 1499, 2999):
        assert text.count(f"/ok/{i}-end") == 1
    assert len(re.findall(r"/ok/\d+-end", text)) == 3000


def test_outcomes_are_green_red_and_yellow() -> None:
    con = console(100, color=True)
    run_sink(con, SAMPLE)
    rows = output(con).splitlines()[: len(SAMPLE)]
    colours = {"OK": "32", "FAIL": "31", "CANCELLED": "33"}  # SGR green, red, yellow
    for row, result in zip(rows, SAMPLE, strict=True):
        label = result.outcome.label
        if label == "CANCELLED":
            assert row.startswith("\x1b[1;33m1 cancelled"), row
        else:
            assert row.startswith(f"\x1b[1;{colours[label]}m{label}"), row


def test_no_color_leaves_no_colour_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    con = console(100, color=True)
    run_sink(con, SAMPLE)
    text = output(con)
    assert "FAIL" in text
    assert not re.search(r"\x1b\[[0-9;]*3[0-9][;m]", text)


def _stats_for_summary() -> RunStats:
    now = [0.0]
    stats = RunStats(clock=lambda: now[0])
    stats.add(ok(BASE + "/1", elapsed=0.010))
    stats.add(ok(BASE + "/2", elapsed=0.020))
    stats.add(fail(BASE + "/3", "HTTP 404 Not Found", status=404))
    stats.add(fail(BASE + "/4", "HTTP 500 Internal Server Error", status=500))
    stats.add(fail(BASE + "/5", "HTTP 404 Not Found", status=404))
    stats.add(fail(BASE + "/6", "timeout after 2 s", kind=Kind.TIMEOUT))
    stats.add(cancelled(BASE + "/7"))
    stats.add(cancelled(BASE + "/8"))
    now[0] = 2.0
    return stats


def test_plain_summary_counts_outcomes_failures_and_latency() -> None:
    text = format_summary(_stats_for_summary())
    lines = text.splitlines()
    # URLs per second counts the 6 fetched, not the 2 cancelled.
    assert lines[0] == "8 URLs: 2 ok, 4 failed, 2 cancelled in 2.00 s (3.0 URLs/s)"
    assert "failures by kind: http 3, timeout 1" in lines
    assert "failures by status: 404 x2, 500 x1" in lines
    assert re.search(r"^latency: p50 \S+ ms, p95 \S+ ms, max 250 ms$", text, re.M)
    assert "interrupted" not in text


def test_plain_summary_says_the_run_was_interrupted_and_how_many_were_cancelled() -> None:
    stats = _stats_for_summary()
    stats.interrupted = "interrupted by SIGINT"
    stats.excluded = 3
    assert format_summary(stats).splitlines()[-2:] == [
        "not checked: 3 excluded",
        "interrupted by SIGINT: 2 URLs cancelled",
    ]


def test_plain_summary_of_an_empty_run() -> None:
    assert format_summary(RunStats(clock=lambda: 0.0)) == (
        "0 URLs: 0 ok, 0 failed, 0 cancelled in 0 µs (0.0 URLs/s)"
    )


@pytest.mark.parametrize("width", [80, 200])
def test_summary_table_groups_failures_and_shows_latency_rate_and_interruption(
    width: int,
) -> None:
    stats = _stats_for_summary()
    stats.interrupted = "run deadline reached"
    stats.other_shards = 4
    con = console(width)
    con.print(summary_renderable(stats))
    text = output(con)
    for part in (
        "8 URLs", "2 OK", "4 FAIL", "2 CANCELLED",
        "http 3 · timeout 1", "404 x2 · 500 x1",
        "p50", "p95", "max 250 ms",
        "3.0 URLs/s", "wall time 2.00 s",
        "4 in other shards",
        "run deadline reached: 2 URLs cancelled",
    ):  # fmt: skip
        assert part in text
    assert all(cell_len(line) <= width for line in text.splitlines())


def test_progress_line_draws_counts_and_leaves_nothing_when_stopped() -> None:
    con = console(80, interactive=True)
    stats = RunStats()
    for result in SAMPLE:
        stats.add(result)
    progress = ProgressLine(console=con, view=view_of(total=10), stats=stats)
    assert progress.active
    progress.start()
    progress.update()
    drawn = output(con)
    assert "5/10 done" in drawn
    assert "2 OK" in drawn
    assert "2 FAIL" in drawn
    assert "URLs/s" in drawn
    progress.stop()
    progress.stop()
    assert all(line == "" for line in screen(output(con), 80))


def test_progress_line_draws_nothing_when_not_on_a_terminal() -> None:
    file = io.StringIO()
    con = Console(file=file, width=80)
    progress = ProgressLine(console=con, view=view_of(), stats=RunStats())
    assert not progress.active
    progress.start()
    progress.update()
    progress.stop()
    assert file.getvalue() == ""


def test_table_sink_without_a_terminal_prints_rows_and_summary_without_live_region() -> None:
    file = io.StringIO()
    con = Console(file=file, width=100)
    run_sink(con, SAMPLE, view=view_of(busy=[(Target(BASE + "/busy"), 0.0)]))
    text = file.getvalue()
    assert "\x1b" not in text
    assert "/busy" not in text
    assert len(row_lines(text)) == len(SAMPLE_ROWS)
    assert "Summary" in text


# -- the whole command under a real pseudo-terminal -------------------------------------------


def _run_on_terminal(urls: Sequence[str], tmp_path: Path, cols: int, rows: int) -> list[str]:
    """Run `fetchpool FILE` on a pty of cols x rows; return the final screen's lines."""
    path = write_lines(tmp_path / "urls.txt", urls)
    child = spawn_on_terminal([path, "--workers", "3", "--timeout", "5"], rows=rows, cols=cols)
    raw = run_to_end(child)
    assert child.exitstatus == 1  # some URLs fail on purpose
    return screen_lines(raw, cols, rows)


def _terminal_urls(server: HTTPTestServer) -> tuple[list[str], str]:
    long_url = server.url("/ok/" + "-".join(["segment"] * 14) + "/last-part.html")
    urls = [server.url(f"/ok/{i}") for i in range(5)]
    urls += [server.url("/status/404/gone"), long_url, server.url("/ok/[red]x[/red]")]
    return urls, long_url


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (200, 50)])
def test_the_command_on_a_terminal_ends_with_rows_and_the_summary(
    server: HTTPTestServer, tmp_path: Path, cols: int, rows: int
) -> None:
    urls, long_url = _terminal_urls(server)
    lines = _run_on_terminal(urls, tmp_path, cols, rows)
    text = "\n".join(lines)
    assert "Traceback" not in text
    assert "in flight" not in text  # the live region is gone
    table_rows = row_lines(text)
    assert len(table_rows) == len(urls)
    assert all(cell_len(line) <= cols for line in lines)
    assert any(line.startswith("FAIL      404") and "HTTP 404" in line for line in table_rows)
    assert "/ok/[red]x[/red]" in text  # markup shown literally
    assert "8 URLs" in text
    assert "7 OK" in text
    assert "p50" in text
    assert "p95" in text
    if cols == 80:
        assert long_url not in text
        assert any("…" in row and row.endswith("last-part.html") for row in table_rows)
    else:
        assert long_url in text


class _ClosingFile(io.StringIO):
    """A terminal that goes away (e.g. the window is closed) once `broken` is set."""

    broken = False

    def write(self, text: str) -> int:
        if self.broken:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


class _ExitingConsole(Console):
    """Rich's own answer to a broken pipe (quiet, then SystemExit), minus its dup2 of fd 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise SystemExit(1)


class _RaisingConsole(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("console_class", [_ExitingConsole, _RaisingConsole])
def test_a_terminal_that_goes_away_is_reported_by_finish_not_by_a_thread_traceback(
    console_class: type[Console],
) -> None:
    file = _ClosingFile()
    con = console_class(file=file, width=80, force_terminal=True, force_interactive=True)
    sink = TableSink(console=con, view=view_of(), stats=RunStats(), refresh_per_second=50)
    sink.start()
    file.broken = True
    sink.write(ok(BASE + "/ok/1"))
    deadline = time.monotonic() + 5
    while sink._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.write(ok(BASE + "/ok/2"))  # dropped: nowhere to show it
    with pytest.raises(BrokenPipeError):
        sink.finish()
    sink.finish()  # a second call does nothing


@pytest.mark.parametrize("console_class", [_ExitingConsole, _RaisingConsole])
def test_a_closed_pipe_without_a_terminal_raises_broken_pipe(console_class: type[Console]) -> None:
    file = _ClosingFile()
    con = console_class(file=file, width=80)
    sink = TableSink(console=con, view=view_of(), stats=RunStats())
    sink.start()
    file.broken = True
    with pytest.raises(BrokenPipeError):
        sink.write(ok(BASE + "/ok/1"))


def _to_file_at_a_terminal(urls: Sequence[str], tmp_path: Path, *args: str) -> tuple[str, Path]:
    """`fetchpool FILE --workers 2 ARGS > out.tsv` with stderr on a terminal: what the
    terminal got, and the output file (the run must succeed)."""
    path = write_lines(tmp_path / "urls.txt", urls)
    out = tmp_path / "out.tsv"
    command = " ".join([*FETCHPOOL, str(path), "--workers", "2", *args, ">", str(out)])
    child = spawn_on_terminal([command], shell=True)
    raw = run_to_end(child)
    assert child.exitstatus == 0
    return raw, out


def test_progress_on_stderr_is_erased_when_stdout_is_a_file(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.url(f"/delay/150/progress-{i}") for i in range(12)]
    raw, out = _to_file_at_a_terminal(urls, tmp_path)
    assert "/12 done" in re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", raw)  # progress was drawn...
    lines = [line for line in screen_lines(raw, 80, 24) if line]
    assert not any("done ·" in line for line in lines)  # ...and erased
    assert lines[0].startswith("12 URLs: 12 ok")  # the plain summary remains
    assert len(out.read_text().splitlines()) == 12
    assert "\x1b" not in out.read_text()


def test_no_progress_draws_nothing_on_stderr_even_at_a_terminal(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.url(f"/delay/150/no-progress-{i}") for i in range(8)]
    raw, out = _to_file_at_a_terminal(urls, tmp_path, "--no-progress")
    assert "\x1b" not in raw  # no live display: no cursor movement, no erasing
    assert "done ·" not in raw
    assert raw.strip().startswith("8 URLs: 8 ok")  # only the summary reaches the terminal
    assert len(out.read_text().splitlines()) == 8


# Statuses and how often each fails: with Rich's word wrapping, `418 x12` and `503 x3` were cut
# in two at 80 columns.
_STATUS_COUNTS = {
    400: 3, 404: 1, 405: 1, 406: 1, 408: 12, 409: 12, 410: 3, 411: 12, 412: 12, 414: 12,
    415: 12, 418: 12, 422: 3, 429: 1, 500: 3, 501: 1, 502: 12, 503: 3,
}  # fmt: skip


def _summary_items_are_whole(lines: Sequence[str]) -> None:
    start = max(i for i, line in enumerate(lines) if line.startswith("Summary"))
    box = "\n".join(lines[start:])
    for status, count in _STATUS_COUNTS.items():
        assert re.search(rf"(?<![\d,]){status} x{count}(?!\d)", box), (status, box)
    for pattern in (
        r"[\d,]+ URLs\b", r"[\d,]+ OK\b", r"[\d,]+ FAIL\b", r"[\d,]+ CANCELLED\b",
        r"p50 [\d.]+ [µm]?s\b", r"p95 [\d.]+ [µm]?s\b", r"max [\d.]+ [µm]?s\b",
        r"[\d.,]+ URLs/s", r"wall time [\d.]+ [µm]?s\b",
    ):  # fmt: skip
        assert re.search(pattern, box), (pattern, box)


def test_the_summary_keeps_each_item_on_one_line_at_80_columns() -> None:
    stats = RunStats()
    for i in range(3):
        stats.add(ok(f"{BASE}/{i}"))
    for status, count in _STATUS_COUNTS.items():
        for _ in range(count):
            stats.add(fail(f"{BASE}/{status}", f"HTTP {status}", status=status))
    con = console(80)
    con.print(summary_renderable(stats))
    lines = output(con).splitlines()
    assert all(cell_len(line) <= 80 for line in lines)
    _summary_items_are_whole(lines)


def test_the_summary_on_an_80_column_terminal_splits_no_item_across_lines(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    urls = [server.url(f"/ok/{i}") for i in range(3)]
    for status, count in _STATUS_COUNTS.items():
        urls += [server.url(f"/status/{status}/{i}") for i in range(count)]
    lines = _run_on_terminal(urls, tmp_path, 80, 40)
    assert "Traceback" not in "\n".join(lines)
    assert all(cell_len(line) <= 80 for line in lines)
    _summary_items_are_whole(lines)


def test_a_second_run_with_cache_marks_the_cached_rows_on_a_terminal(
    server: HTTPTestServer, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "urls.txt", [server.url(f"/ok/cache-{i}") for i in range(3)])
    cache = tmp_path / "cache.jsonl"
    screens = []
    for _ in range(2):
        child = spawn_on_terminal([path, "--cache", cache])
        raw = run_to_end(child)
        assert child.exitstatus == 0
        screens.append(row_lines("\n".join(screen_lines(raw, 80, 24))))
    first, second = screens
    assert len(first) == len(second) == 3
    assert not any("cached" in row for row in first)
    assert all(row.endswith(" cached") and "/ok/cache-" in row for row in second)
