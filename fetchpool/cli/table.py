"""The `--format table` display: finished results scroll up as aligned rows while a small
live region below shows the busy workers and the run's counts, then a summary table.

Cost per result is constant: a row is formatted once and printed once (rows are batched
on the refresh timer), and the live region is redrawn on the timer, never per result.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import heapq
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, get_character_cell_size
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from .._models import Outcome, Result, Target
from .._stats import RunStats
from .literal import printable
from .progress import counts_line
from .summary import summary_renderable
from .view import RunView

__all__ = ["TableSink", "fit_end", "fit_middle", "fit_start", "fit_url"]

REFRESH_PER_SECOND = 12
MAX_WORKER_ROWS = 10
ELLIPSIS = "…"

_OUTCOME_WIDTH = len("CANCELLED")
_STATUS_WIDTH = 3
_TIME_WIDTH = 7  # " 0.012s", "30.000s", "1234.5s"
_FIXED_WIDTH = _OUTCOME_WIDTH + 1 + _STATUS_WIDTH + 1 + _TIME_WIDTH + 1
_MIN_FREE = 8  # cells kept for the URL however narrow the terminal
_MIN_PLACE = 10  # cells kept for the place column, when there is one
MAX_LISTED_FAILURES = 100  # the end-of-run list of failures shows at most this many

_OUTCOME_STYLE = {
    Outcome.OK: Style(color="green", bold=True),
    Outcome.FAIL: Style(color="red", bold=True),
    Outcome.CANCELLED: Style(color="yellow", bold=True),
}
_DETAIL_STYLE = {
    Outcome.OK: Style(dim=True),
    Outcome.FAIL: Style(color="red"),
    Outcome.CANCELLED: Style(color="yellow"),
}
_CACHED = "cached"  # the detail of an OK result served from --cache
_TIME_STYLE = Style(dim=True)
_PLACE_STYLE = Style(color="blue")
_DETAIL_LINES = 3  # a detail wrapped under its row takes at most this many lines
_RUNNING = Style(color="cyan")
_SLOW = Style(color="yellow")  # running 5 s or more
_STUCK = Style(color="red")  # running 15 s or more
_OUTCOME_CELL = {o: o.label.ljust(_OUTCOME_WIDTH) for o in Outcome}
_NEWLINE = Segment.line()


def _take_cells(text: str, width: int, *, from_end: bool = False) -> str:
    """The longest prefix (or suffix) of `text` that fits in `width` terminal cells."""
    if width <= 0:
        return ""
    chars = reversed(text) if from_end else iter(text)
    taken: list[str] = []
    used = 0
    for char in chars:
        size = get_character_cell_size(char)
        if used + size > width:
            break
        taken.append(char)
        used += size
    if from_end:
        taken.reverse()
    return "".join(taken)


def fit_middle(text: str, width: int) -> str:
    """`text` shortened to `width` cells by an ellipsis in the middle (kept whole if it fits)."""
    if text.isascii():
        if len(text) <= width:
            return text
        if width <= 1:
            return ELLIPSIS[:width]
        keep = width - 1
        split = keep - keep // 2
        return text[:split] + ELLIPSIS + text[len(text) - keep // 2 :]
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    keep = width - 1
    head = _take_cells(text, keep - keep // 2)
    tail = _take_cells(text, keep - cell_len(head), from_end=True)
    return head + ELLIPSIS + tail


def fit_end(text: str, width: int) -> str:
    """`text` shortened to `width` cells by an ellipsis at the end (kept whole if it fits)."""
    if text.isascii():
        if len(text) <= width:
            return text
        return text[: width - 1] + ELLIPSIS if width >= 1 else ""
    if cell_len(text) <= width:
        return text
    return _take_cells(text, width - 1) + ELLIPSIS if width >= 1 else ""


def fit_start(text: str, width: int) -> str:
    """`text` shortened to `width` cells by an ellipsis at the start (kept whole if it fits).

    For places (`docs/guide/install.md:12`): the file name and line are the part that tells
    two places apart.
    """
    if text.isascii():
        if len(text) <= width:
            return text
        return ELLIPSIS + text[len(text) - width + 1 :] if width >= 2 else ELLIPSIS[:width]
    if cell_len(text) <= width:
        return text
    return (
        ELLIPSIS + _take_cells(text, width - 1, from_end=True) if width >= 2 else ELLIPSIS[:width]
    )


def fit_url(url: str, width: int) -> str:
    """`url` shortened to `width` cells, keeping its origin and as much of its end as fits.

    The end of a path is what tells long URLs of one site apart (`…/v2/guide/install.html`),
    so the ellipsis stands right after the origin (or after the first two fifths of the room, if
    the origin is longer than that), and the end gets all the rest.
    """
    size = len(url) if url.isascii() else cell_len(url)
    if size <= width:
        return url
    if width <= 1:
        return ELLIPSIS[:width]
    keep = width - 1
    scheme = url.find("://")
    slash = url.find("/", scheme + 3) if scheme >= 0 else -1
    origin = slash + 1 if slash >= 0 else keep  # with the slash after it
    head_room = min(origin, keep * 2 // 5)
    if url.isascii():
        return url[:head_room] + ELLIPSIS + url[len(url) - (keep - head_room) :]
    head = _take_cells(url, head_room)
    return head + ELLIPSIS + _take_cells(url, keep - cell_len(head), from_end=True)


def wrap_cells(text: str, width: int, max_lines: int) -> list[str]:
    """`text` broken into lines of at most `width` cells, at spaces where it can be; at most
    `max_lines` lines, the last one cut with an ellipsis if text is left over."""
    lines: list[str] = []
    rest = text
    width = max(width, 1)
    while rest:
        size = len(rest) if rest.isascii() else cell_len(rest)
        if size <= width:
            lines.append(rest)
            break
        if len(lines) == max_lines - 1:
            lines.append(fit_end(rest, width))
            break
        chunk = rest[:width] if rest.isascii() else _take_cells(rest, width)
        space = chunk.rfind(" ")
        if space > len(chunk) // 3 and rest[len(chunk) : len(chunk) + 1] != " ":
            chunk = chunk[:space]
        lines.append(chunk.rstrip(" ") or chunk)
        rest = rest[len(chunk) :].lstrip(" ")
    return lines


def place_of(result: Result) -> str:
    """Where a link stands: `file:line`, or the page URL for a link found on a web page."""
    source = result.source
    if "://" in source:
        return printable(source)
    name = "<stdin>" if source == "-" else printable(source)
    return f"{name}:{result.line}" if result.line else name


def _pad(text: str, width: int) -> str:
    size = len(text) if text.isascii() else cell_len(text)
    return text + " " * (width - size) if size < width else text


def _format_time(seconds: float) -> str:
    if seconds < 100:
        return f"{seconds:6.3f}s"
    if seconds < 10_000:
        return f"{seconds:6.1f}s"
    return f"{seconds:6.0f}s"


@dataclass(frozen=True, slots=True)
class RowLayout:
    """Column widths of result rows for one console width.

    Every row printed at the same width lines up; a resize only changes later rows. With
    `place` (links found in documents) a column after the time shows where each link is.
    """

    url: int
    detail: int
    place: int = 0

    @classmethod
    def for_width(cls, width: int, *, places: bool = False) -> RowLayout:
        """Split what the fixed columns leave between place, URL and detail."""
        free = max(width - _FIXED_WIDTH, _MIN_FREE)
        place = 0
        if places:
            place = min(max(free // 4, _MIN_PLACE), 40)
            free = max(free - place - 1, _MIN_FREE)
        if free < 32:
            return cls(free, 0, place)  # too narrow for two text columns: details go below
        detail = min(max(free * 3 // 8, 16), 60)
        return cls(free - detail - 1, detail, place)

    def segments(self, result: Result) -> list[Segment]:
        """One result as one row of segments (and the lines of a wrapped detail), ending with a
        newline."""
        outcome = result.outcome
        status = "-" if result.status is None else str(result.status)
        fixed = f" {status:>{_STATUS_WIDTH}} "
        url = printable(result.url)
        # A result served from --cache says so, dim, before any redirect target.
        mark = _CACHED if outcome is Outcome.OK and result.cached else ""
        lead = f"{mark} → " if mark else "→ "
        final = printable(result.final_url or "")
        if outcome is Outcome.OK:
            detail = lead + final if result.redirected else mark
        else:
            detail = printable(result.error or result.reason or "")
        row = [
            Segment(_OUTCOME_CELL[outcome], _OUTCOME_STYLE[outcome]),
            Segment(fixed),
            Segment(_format_time(result.elapsed), _TIME_STYLE),
        ]
        if self.place:
            place = _pad(fit_start(place_of(result), self.place), self.place)
            row.append(Segment(" " + place, _PLACE_STYLE))
        free = self.url + 1 + self.detail if self.detail else self.url
        if not detail:
            row.append(Segment(" " + fit_url(url, free) + "\n"))
            return row
        url_cells = len(url) if url.isascii() else cell_len(url)
        detail_cells = len(detail) if detail.isascii() else cell_len(detail)
        if url_cells + 1 + detail_cells <= free:
            # Both fit: the detail stands in its column unless the URL needs part of it.
            url_cell = _pad(url, min(self.url, free - 1 - detail_cells))
            row.append(Segment(f" {url_cell} "))
            row.append(Segment(detail, _DETAIL_STYLE[outcome]))
            row.append(_NEWLINE)
            return row
        if outcome is Outcome.OK and not result.redirected and free - 1 - detail_cells >= _MIN_FREE:
            # Only the cached mark: the URL is shortened to leave room for it, in its column when
            # there is one.
            url_cells = self.url if self.detail else free - 1 - detail_cells
            row.append(Segment(f" {_pad(fit_url(url, url_cells), url_cells)} "))
            row.append(Segment(detail, _DETAIL_STYLE[outcome]))
            row.append(_NEWLINE)
            return row
        if outcome is Outcome.OK and result.redirected and self.detail:
            # A redirect's target: both URLs shortened to their columns, on one line.
            row.append(Segment(f" {_pad(fit_url(url, self.url), self.url)} "))
            target = lead + fit_url(final, max(self.detail - len(lead), 1))
            row.append(Segment(target, _DETAIL_STYLE[outcome]))
            row.append(_NEWLINE)
            return row
        # An error that does not fit beside the URL goes under it, wrapped: the URL gets the
        # whole line, and neither is cut to a sliver.
        row.append(Segment(" " + fit_url(url, free) + "\n"))
        indent = " " * url_column(self.place)
        style = _DETAIL_STYLE[outcome]
        for line in wrap_cells(detail, free, _DETAIL_LINES):
            row.append(Segment(indent))
            row.append(Segment(line, style))
            row.append(_NEWLINE)
        return row


def url_column(place: int) -> int:
    """Cells before the URL: outcome, status, time and, if shown, the place column."""
    return _FIXED_WIDTH + (place + 1 if place else 0)


class _Rows:
    """A batch of finished results, laid out for the console width at the moment of printing."""

    def __init__(self, results: Sequence[Result], places: bool = False) -> None:
        self._results = results
        self._places = places

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        layout = RowLayout.for_width(options.max_width, places=self._places)
        for result in self._results:
            yield from layout.segments(result)


class _LiveRegion:
    """The busy workers (longest-running first) and the counts line, read afresh at each draw."""

    def __init__(
        self, stats: RunStats, view: RunView, clock: Callable[[], float], max_rows: int
    ) -> None:
        self._stats = stats
        self._view = view
        self._clock = clock
        self._max_rows = max_rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        snapshot = self._view.snapshot  # one read: the rows and the counts agree
        busy = snapshot.in_flight
        # Keep the region well inside the screen: Live cannot erase what scrolled away.
        room = min(self._max_rows, max(0, console.height - 3))
        shown: Iterable[tuple[Target, float]]
        if len(busy) > room:
            shown = heapq.nsmallest(max(room - 1, 0), busy, key=lambda item: item[1])
        else:
            shown = sorted(busy, key=lambda item: item[1])
        now = self._clock()
        count = 0
        url_width = max(width - 9, 1)
        # Plain segments, like the rows: this is redrawn many times a second.
        for target, started in shown:
            count += 1
            running = max(0.0, now - started)
            style = _STUCK if running >= 15 else _SLOW if running >= 5 else _RUNNING
            yield Segment(f"{running:7.1f}s ", style)
            yield Segment(fit_middle(printable(target.url), url_width))
            yield _NEWLINE
        if len(busy) > count:
            more = f"        … and {len(busy) - count:,} more in flight"
            yield Segment(fit_end(more, width), _TIME_STYLE)
            yield _NEWLINE
        line = counts_line(self._stats, snapshot)
        line.no_wrap = True
        line.overflow = "ellipsis"
        yield line


class TableSink:
    """The live table for people at a terminal (`--format table`).

    Call `start()`, then `write()` for each finished result, then `finish()`, which stops
    the live region and prints the summary. The sink only reads `stats`: the caller adds
    each result to it. On a console that is not an interactive terminal, or with
    `live=False` (`--no-progress`, `--quiet`), rows are printed as they come and there is no
    live region.

    Args:
        console: where to draw (standard output's console).
        view: the running pool's published view (busy workers, total once known).
        stats: the run's statistics.
        failures_only: print rows only for results that are not OK (counts still count all).
        places: the input has places (`--extract`): each row shows where its link is.
        refresh_per_second: how often rows are flushed and the live region redrawn.
        clock: the clock of the view's start times (`time.monotonic`).
        live: show the live region (busy workers and counts) on an interactive terminal.
        summary: end with the list of failures and the summary table (`--quiet` turns both
            off).
    """

    def __init__(
        self,
        *,
        console: Console,
        view: RunView,
        stats: RunStats,
        failures_only: bool = False,
        places: bool = False,
        refresh_per_second: float = REFRESH_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        live: bool = True,
        summary: bool = True,
    ) -> None:
        self.console = console
        self._summary = summary
        self._stats = stats
        self._failures_only = failures_only
        self._places = places
        # What the end of the run lists: the first failures (constant memory), how many more
        # there were, and the cancelled URLs as one count instead of a row each.
        self._failures: list[Result] = []
        self._more_failures = 0
        self._cancelled = 0
        self._cancel_reason: str | None = None
        self._interval = 1.0 / refresh_per_second
        self._pending: collections.deque[Result] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = False
        self._error: OSError | None = None
        self._live: Live | None = None
        if live and console.is_interactive:
            self._live = Live(
                _LiveRegion(stats, view, clock, MAX_WORKER_ROWS),
                console=console,
                auto_refresh=False,  # our own timer flushes rows and redraws in one print
                transient=True,
                vertical_overflow="crop",
            )

    def start(self) -> None:
        """Show the live region and start the refresh timer (at a terminal, even without
        the live region: rows are then still printed in batches, not one write each)."""
        if not self.console.is_interactive or self._thread is not None:
            return
        if self._live is not None:
            self._live.start(refresh=True)
        self._thread = threading.Thread(target=self._refresh_loop, name="fetchpool-table")
        self._thread.daemon = True
        self._thread.start()

    def write(self, result: Result) -> None:
        """Queue one finished result's row. O(1); it is printed at the next refresh."""
        outcome = result.outcome
        if outcome is not Outcome.OK:
            if outcome is Outcome.CANCELLED:
                # One line at the end says how many: a row each would push the real
                # failures out of the scrollback.
                self._cancelled += 1
                if self._cancel_reason is None:
                    self._cancel_reason = result.error
                return
            if len(self._failures) < MAX_LISTED_FAILURES:
                self._failures.append(result)
            else:
                self._more_failures += 1
        elif self._failures_only:
            return
        if self._error is not None:
            return
        if self._thread is None or self._finished:
            self._print(_Rows((result,), self._places), crop=self._must_crop())
        else:
            self._pending.append(result)

    def flush(self) -> None:
        """Nothing to do: rows go out on the refresh timer (or at once without a terminal)."""

    def refresh(self) -> None:
        """Print the queued rows and redraw the live region now, without waiting for the timer."""
        self._flush(redraw=True)

    def finish(self) -> None:
        """Print the remaining rows, remove the live region and print the summary. Idempotent."""
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._error is not None:
            if self._live is not None and self._live.is_started:
                with contextlib.suppress(OSError):
                    self._live.stop()
            raise self._error
        self._flush()
        if self._live is not None and self._live.is_started:
            self._live.stop()
        if self._cancelled:
            self._print(self._cancelled_line(), end="\n")
        if self._summary:  # --quiet: results only, no failure list and no summary
            if self._failures:
                self._print_failures()
            self._print(summary_renderable(self._stats), end="\n")

    def _cancelled_line(self) -> Text:
        line = Text(f"{self._cancelled:,} cancelled", style=_OUTCOME_STYLE[Outcome.CANCELLED])
        if self._cancel_reason:
            line.append(
                f" ({printable(self._cancel_reason)})", style=_DETAIL_STYLE[Outcome.CANCELLED]
            )
        return line

    def _print_failures(self) -> None:
        """The failures, grouped by source, each with its place, whole URL and whole error."""
        groups: dict[str, list[Result]] = {}
        for result in self._failures:
            groups.setdefault(result.source, []).append(result)
        total = len(self._failures) + self._more_failures
        self._print(Text(""), end="\n")
        title = Text(f"Failures ({total:,})", style="bold red")
        self._print(title, end="\n")
        width = self.console.width
        for source, results in groups.items():
            name = "<stdin>" if source == "-" else printable(source)
            self._print(Text(name, style="bold"), end="\n", crop=False, soft_wrap=True)
            digits = len(str(max(result.line for result in results)))
            for result in results:
                line = Text("  ")
                if result.line:
                    line.append(f"line {result.line:>{digits}}", style=_PLACE_STYLE)
                    line.append("  ")
                status = "-" if result.status is None else str(result.status)
                line.append(f"{status:>{_STATUS_WIDTH}}", style=_OUTCOME_STYLE[Outcome.FAIL])
                line.append("  ")
                line.append(printable(result.url))
                # Neither cut nor broken by us: the terminal wraps it, and copies it whole.
                self._print(line, end="\n", crop=False, soft_wrap=True)
                error = printable(result.error or result.reason or "")
                if error:
                    lines = wrap_cells(error, width - 4, max_lines=len(error))
                    text = Text("\n".join("    " + part for part in lines))
                    text.stylize(_DETAIL_STYLE[Outcome.FAIL])
                    self._print(text, end="\n", crop=False, soft_wrap=True)
        if self._more_failures:
            more = f"… and {self._more_failures:,} more failures (not listed)"
            self._print(Text(more, style="bold red"), end="\n")
        self._print(Text(""), end="\n")

    def _refresh_loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self._flush(redraw=True)
        except OSError as exc:  # the terminal went away: finish() reports it to the caller
            self._error = exc
            self._pending.clear()

    def _must_crop(self) -> bool:
        # Only a terminal narrower than the fixed columns gets rows wider than itself.
        return self.console.width < url_column(_MIN_PLACE if self._places else 0) + _MIN_FREE

    def _print(
        self,
        renderable: RenderableType,
        end: str = "",
        crop: bool = True,
        soft_wrap: bool | None = None,
    ) -> None:
        try:
            self.console.print(renderable, end=end, crop=crop, soft_wrap=soft_wrap)
        except SystemExit:
            # Rich's Console answers a broken pipe by going quiet and raising SystemExit;
            # the caller expects BrokenPipeError, as from every other sink.
            if not self.console.quiet:
                raise
            raise BrokenPipeError(errno.EPIPE, "output closed") from None

    def _flush(self, *, redraw: bool = False) -> None:
        pending = self._pending
        batch = [pending.popleft() for _ in range(len(pending))]
        if batch:
            # While Live runs, this one print also redraws the live region below the rows.
            # Rows are laid out to fit the width, and the live region crops itself: no crop
            # pass is needed (it would cost more than the rows themselves).
            self._print(_Rows(batch, self._places), crop=self._must_crop())
        elif redraw and self._live is not None and self._live.is_started:
            self._live.refresh()
