"""The end-of-run summary: plain text for standard error, or a Rich table for the table display.

Both read a `RunStats` and nothing else; `format_summary` is pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._models import Kind
from .._stats import RunStats

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from rich.console import Console, ConsoleOptions, RenderableType
    from rich.measure import Measurement
    from rich.segment import Segment
    from rich.text import Text


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def format_seconds(seconds: float) -> str:
    """`850 µs`, `12 ms`, `1.23 s`, `2 min 5 s`: a latency or wall time for people."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.0f} ms" if seconds >= 0.0995 else f"{seconds * 1e3:.1f} ms"
    if seconds < 60.0:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s"


def _format_rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"


def _failure_kinds(stats: RunStats) -> list[tuple[Kind, int]]:
    # Cancelled URLs have their own total; this breakdown is about why URLs failed.
    return [(k, n) for k, n in stats.by_kind.most_common() if k is not Kind.CANCELLED]


def _interruption(stats: RunStats) -> str | None:
    if stats.interrupted is None:
        return None
    return f"{stats.interrupted}: {_plural(stats.cancelled, 'URL')} cancelled"


# Why links were not checked (`RunStats.unchecked`), as the summary words it.
_UNCHECKED = {
    "scheme": "other schemes (mailto:, tel:, ...)",
    "template": "templates",
    "preconnect": "preconnect origins",
    "relative": "relative links on standard input",
    "root-relative": "root-relative (give --root-dir to check them)",
}


def _skipped_parts(stats: RunStats) -> list[str]:
    parts = []
    if stats.excluded:
        parts.append(f"{stats.excluded:,} excluded")
    if stats.other_shards:
        parts.append(f"{stats.other_shards:,} in other shards")
    for reason, count in sorted(stats.unchecked.items()):
        parts.append(f"{count:,} {_UNCHECKED.get(reason, reason)}")
    if stats.undecodable:
        parts.append(f"{_plural(stats.undecodable, 'document')} not UTF-8")
    return parts


def _skipped(stats: RunStats) -> str | None:
    parts = _skipped_parts(stats)
    return ", ".join(parts) if parts else None


def _read_back(stats: RunStats) -> str:
    return f"{_plural(stats.read_back, 'result')} of complete partitions of --output-dir"


def _latencies(stats: RunStats) -> str | None:
    p50, p95 = stats.latency(0.5), stats.latency(0.95)
    if p50 is None or p95 is None:
        return None
    return (
        f"p50 {format_seconds(p50)}, p95 {format_seconds(p95)}, "
        f"max {format_seconds(stats.max_latency)}"
    )


def format_summary(stats: RunStats) -> str:
    """The summary as a few plain-text lines (no trailing newline), for standard error.

    Example::

        3 URLs: 2 ok, 1 failed, 0 cancelled in 1.23 s (2.4 URLs/s)
        failures by kind: http 1
        failures by status: 404 x1
        latency: p50 12.0 ms, p95 230 ms, max 1.00 s
    """
    lines = [
        f"{_plural(stats.done, 'URL')}: {stats.ok:,} ok, {stats.failed:,} failed, "
        f"{stats.cancelled:,} cancelled in {format_seconds(stats.elapsed())} "
        f"({_format_rate(stats.rate())} URLs/s)"
    ]
    kinds = _failure_kinds(stats)
    if kinds:
        lines.append("failures by kind: " + ", ".join(f"{k.value} {n:,}" for k, n in kinds))
    if stats.by_status:
        lines.append(
            "failures by status: "
            + ", ".join(f"{s} x{n:,}" for s, n in sorted(stats.by_status.items()))
        )
    latencies = _latencies(stats)
    if latencies:
        lines.append(f"latency: {latencies}")
    skipped = _skipped(stats)
    if skipped:
        lines.append(f"not checked: {skipped}")
    if stats.read_back:
        lines.append(f"read back: {_read_back(stats)}")
    interruption = _interruption(stats)
    if interruption:
        lines.append(interruption)
    return "\n".join(lines)


class _Items:
    """Items of one summary row, each kept whole: those that do not fit go to the next line.

    Only an item wider than the whole column is ever folded.
    """

    def __init__(self, items: Sequence[Text], separator: str = " · ", style: str = "") -> None:
        self.items = [item for item in items if item.cell_len]
        self.separator = separator
        self.style = style

    def _lines(self, width: int) -> list[Text]:
        from rich.text import Text

        lines: list[Text] = []
        line: Text | None = None
        for item in self.items:
            if line is not None and line.cell_len + len(self.separator) + item.cell_len <= width:
                line.append(self.separator)
                line.append_text(item)
                continue
            if line is not None:
                lines.append(line)
            line = Text(style=self.style)
            line.append_text(item)
        if line is not None:
            lines.append(line)
        return lines

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        widest = max((item.cell_len for item in self.items), default=0)
        whole = sum(item.cell_len for item in self.items)
        whole += len(self.separator) * max(len(self.items) - 1, 0)
        return Measurement(widest, whole).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        from rich.segment import Segment

        width = options.max_width
        for line in self._lines(width):
            # A single item wider than the column is the only thing that folds.
            parts = [line] if line.cell_len <= width else line.wrap(console, width, overflow="fold")
            for part in parts:
                yield from part.render(console)
                yield Segment.line()


def _item(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(text, style=style)


def summary_renderable(stats: RunStats) -> RenderableType:
    """The final summary table of the table display."""
    # Rich is imported here, not at module level: plain output never needs it.
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.ROUNDED,
        show_header=False,
        title="Summary",
        title_justify="left",
        title_style="bold",
        padding=(0, 1),
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column()

    table.add_row(
        "results",
        _Items(
            [
                _item(_plural(stats.done, "URL"), "bold"),
                _item(f"{stats.ok:,} OK", "green"),
                _item(f"{stats.failed:,} FAIL", "red" if stats.failed else "dim"),
                _item(f"{stats.cancelled:,} CANCELLED", "yellow" if stats.cancelled else "dim"),
            ],
            separator="   ",
        ),
    )
    kinds = _failure_kinds(stats)
    if kinds:
        table.add_row(
            "failures by kind",
            _Items([_item(f"{k.value} {n:,}") for k, n in kinds], style="red"),
        )
    if stats.by_status:
        table.add_row(
            "failures by status",
            _Items([_item(f"{s} x{n:,}") for s, n in sorted(stats.by_status.items())], style="red"),
        )
    p50, p95 = stats.latency(0.5), stats.latency(0.95)
    if p50 is not None and p95 is not None:
        table.add_row(
            "latency",
            _Items(
                [
                    _item(f"p50 {format_seconds(p50)}"),
                    _item(f"p95 {format_seconds(p95)}"),
                    _item(f"max {format_seconds(stats.max_latency)}"),
                ]
            ),
        )
    table.add_row(
        "throughput",
        _Items(
            [
                _item(f"{_format_rate(stats.rate())} URLs/s"),
                _item(f"wall time {format_seconds(stats.elapsed())}"),
            ]
        ),
    )
    skipped = [_item(part) for part in _skipped_parts(stats)]
    if skipped:
        table.add_row("not checked", _Items(skipped, separator=", ", style="dim"))
    if stats.read_back:
        table.add_row("read back", _Items([_item(_read_back(stats))]))

    interruption = _interruption(stats)
    if interruption is None:
        return table
    return Group(table, Text(interruption, style="bold yellow"))
