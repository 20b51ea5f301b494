"""The one-line live progress display on standard error, used when standard output is
redirected to a file (never when it is a pipe or a terminal: see `runner.Env.progress_allowed`).

Also holds what the table display shares with it: the counts line.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from .._stats import RunStats
from .view import RunSnapshot, RunView

REFRESH_PER_SECOND = 10


def format_duration(seconds: float) -> str:
    """`0:07`, `12:34`, `1:02:03`: a clock-style duration for elapsed time and ETA."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def counts_line(stats: RunStats, snapshot: RunSnapshot) -> Text:
    """`1,234/20,000 done · 1,230 OK · 4 FAIL · 8 in flight · 2,345 URLs/s · 0:08 · ETA 0:30`."""
    total = snapshot.total
    in_flight = len(snapshot.in_flight)
    rate = stats.rate()
    elapsed = stats.elapsed()
    line = Text()
    line.append(f"{stats.done:,}", style="bold")
    if total is not None:
        line.append(f"/{total:,}", style="bold")
    line.append(" done", style="dim")
    sep = (" · ", "dim")
    line.append(*sep)
    line.append(f"{stats.ok:,} OK", style="green")
    line.append(*sep)
    line.append(f"{stats.failed:,} FAIL", style="red" if stats.failed else "dim")
    if stats.cancelled:
        line.append(*sep)
        line.append(f"{stats.cancelled:,} CANCELLED", style="yellow")
    line.append(*sep)
    line.append(f"{in_flight:,} in flight", style="cyan")
    line.append(*sep)
    line.append(f"{rate:,.0f} URLs/s" if rate >= 10 else f"{rate:.1f} URLs/s")
    line.append(*sep)
    line.append(format_duration(elapsed), style="dim")
    if total is not None and rate > 0 and stats.done < total:
        line.append(*sep)
        line.append(f"ETA {format_duration((total - stats.done) / rate)}")
    return line


class _ProgressRenderable:
    """Re-reads the stats each time Live draws it, so nothing has to push updates."""

    def __init__(self, stats: RunStats, view: RunView) -> None:
        self._stats = stats
        self._view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = counts_line(self._stats, self._view.snapshot)
        line.no_wrap = True
        line.overflow = "ellipsis"
        yield line


class ProgressLine:
    """A one-line live progress display (done / total, OK, FAIL, URLs/s), erased when stopped.

    Draws only when `console` is an interactive terminal; otherwise every method is a no-op,
    so nothing decorative reaches a pipe or a file.

    Args:
        console: where to draw, normally `Console(stderr=True)`.
        view: the running pool's published view (total, in-flight workers).
        stats: the run's statistics, polled on a timer.
        refresh_per_second: redraw rate.
    """

    def __init__(
        self,
        *,
        console: Console,
        view: RunView,
        stats: RunStats,
        refresh_per_second: float = REFRESH_PER_SECOND,
    ) -> None:
        self.console = console
        self._live: Live | None = None
        if console.is_interactive:
            self._live = Live(
                _ProgressRenderable(stats, view),
                console=console,
                auto_refresh=True,
                refresh_per_second=refresh_per_second,
                transient=True,
                redirect_stdout=False,  # stdout is the machine-readable output
                redirect_stderr=True,
            )

    @property
    def active(self) -> bool:
        """True when a live line is (or will be) drawn."""
        return self._live is not None

    def start(self) -> None:
        """Start drawing (no-op when the console is not a terminal)."""
        if self._live is not None and not self._live.is_started:
            self._live.start(refresh=True)

    def update(self) -> None:
        """Redraw now; not needed in normal use, the line refreshes on a timer."""
        if self._live is not None and self._live.is_started:
            self._live.refresh()

    def stop(self) -> None:
        """Stop and erase the line. Safe to call twice, or without `start()`."""
        if self._live is not None and self._live.is_started:
            self._live.stop()
