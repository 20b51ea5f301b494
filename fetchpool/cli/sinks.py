"""Machine-readable output: pure `format_*` functions and the sink that writes them.

`plain` (TAB-separated), `jsonl` and `csv` each have one pure function from a
`Result` to text; `LineSink` writes them, flushing after every batch, so a
pipe sees each result as soon as it finishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any, Protocol

from .._models import Outcome, Result
from .._records import RECORD_FIELDS, record_of
from .literal import printable, printable_json, printable_lines

CSV_FIELDS = RECORD_FIELDS


def detail(result: Result) -> str:
    """The DETAIL column: the error, or the final URL when a redirect was followed."""
    if result.error is not None:
        return result.error
    if result.redirected:
        return result.final_url or ""
    return ""


def as_record(result: Result) -> dict[str, Any]:
    """The fields of jsonl and csv, in their documented order."""
    return record_of(result)


def format_plain(result: Result) -> str:
    """`OUTCOME<TAB>STATUS<TAB>SECONDS<TAB>URL<TAB>DETAIL` and a newline."""
    status = "-" if result.status is None else str(result.status)
    return (
        f"{result.outcome.label}\t{status}\t{result.elapsed:.3f}\t"
        f"{printable(result.url)}\t{printable(detail(result))}\n"
    )


def format_jsonl(result: Result) -> str:
    """One JSON object and a newline (JSON escapes every control character)."""
    return printable_json(json.dumps(as_record(result), ensure_ascii=False)) + "\n"


def format_csv_header() -> str:
    """The CSV header row."""
    return ",".join(CSV_FIELDS) + "\r\n"


def format_csv(result: Result) -> str:
    """One CSV row; text fields have control characters escaped."""
    record = as_record(result)
    row = ["" if v is None else printable(v) if isinstance(v, str) else v for v in record.values()]
    import csv  # only --format csv needs it (about 0.5 ms of start-up otherwise)
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue()


FORMATTERS: dict[str, tuple[Callable[[Result], str], str]] = {
    "plain": (format_plain, ""),
    "jsonl": (format_jsonl, ""),
    "csv": (format_csv, format_csv_header()),
}


class ResultSink(Protocol):
    """Where results go, one by one, as they finish."""

    def start(self) -> None:
        """Called once before the first result."""

    def write(self, result: Result) -> None:
        """Take one finished result (may buffer it until `flush`)."""

    def flush(self) -> None:
        """Push out what was written; called after each batch of results."""

    def finish(self) -> None:
        """Called once at the end, after the last result."""


class LineSink:
    """Writes one line per result, as each finishes: plain, jsonl, csv or github.

    Args:
        stream: a binary output stream (standard output's buffer).
        line: the line of a result, newline included, or None for a result with no line.
        header: written once before the first result (the CSV header row).
        failures_only: write only results that are not OK.
    """

    def __init__(
        self,
        stream: IO[bytes],
        line: Callable[[Result], str | None],
        *,
        header: str = "",
        failures_only: bool = False,
    ) -> None:
        self._stream = stream
        self._line = line
        self._header = header
        self._failures_only = failures_only
        self._lines: list[str] = []

    def start(self) -> None:
        if self._header:
            self._lines.append(self._header)
            self.flush()

    def write(self, result: Result) -> None:
        if self._failures_only and result.outcome is Outcome.OK:
            return
        line = self._line(result)
        if line is not None:
            self._lines.append(line)

    def flush(self) -> None:
        if self._lines:
            data = "".join(self._lines).encode("utf-8", "surrogateescape")
            self._lines.clear()
            self._stream.write(data)
            self._stream.flush()

    def finish(self) -> None:
        self.flush()


class DocumentSink:
    """`--format markdown|sarif`: one document on standard output at the end.

    Only failures are kept in memory; OK results are counted.
    """

    def __init__(
        self, stream: IO[bytes], fmt: str, *, summary: Callable[[], str], version: str
    ) -> None:
        from .reports import ReportCollector

        self._stream = stream
        self._fmt = fmt
        self._summary = summary
        self._version = version
        self._collector = ReportCollector()

    def start(self) -> None:
        pass

    def write(self, result: Result) -> None:
        self._collector.add(result)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        # The documents escape their data for their own syntax; control characters
        # that the syntax allows inside a string are escaped here, so none reach a terminal.
        if self._fmt == "sarif":
            text = self._collector.render_sarif(tool_version=self._version)
            text = printable_json(text)
        else:
            text = self._collector.render_markdown(self._summary())
            text = printable_lines(text)
        if not text.endswith("\n"):
            text += "\n"
        self._stream.write(text.encode("utf-8", "surrogateescape"))
        self._stream.flush()


class GithubSink(LineSink):
    """`--format github`: one `::error` workflow command per failing place, as each finishes;
    at the end, when anything failed, one more `::error::` with the totals (GitHub shows only
    the first 10 annotations of a step), and the Markdown report appended to the file that
    `GITHUB_STEP_SUMMARY` names, when it is set.

    Args:
        stream: standard output's buffer.
        summary: the run's one-line summary, for the report's heading.
        step_summary: the path of the job's step summary file (None: none is written).
        warn: gets a warning when the step summary cannot be written.
    """

    def __init__(
        self,
        stream: IO[bytes],
        *,
        summary: Callable[[], str],
        step_summary: str | None,
        warn: Callable[[str], None],
    ) -> None:
        from .reports import ReportCollector, github_line

        super().__init__(stream, github_line)
        self._summary = summary
        self._step_summary = step_summary
        self._warn = warn
        self._collector = ReportCollector()

    def write(self, result: Result) -> None:
        super().write(result)
        self._collector.add(result)

    def finish(self) -> None:
        from .reports import github_totals

        totals = github_totals(self._collector)
        if totals is not None:
            self._lines.append(printable(totals) + "\n")
        self.flush()
        if self._step_summary:
            report = printable_lines(self._collector.render_markdown(self._summary()))
            try:
                with open(self._step_summary, "a", encoding="utf-8", errors="replace") as out:
                    out.write(report)
            except OSError as exc:
                self._warn(f"cannot write the step summary {self._step_summary}: {exc}")
