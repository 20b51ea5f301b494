"""The CI report formats: GitHub workflow commands, a Markdown summary and a SARIF 2.1.0 log.

`format_github` is streamed, one line per failing place; the Markdown and SARIF documents are
written once at the end from a `ReportCollector`, which keeps only the failures.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from .._models import Kind, Outcome, Result
from .literal import printable

__all__ = [
    "SARIF_SCHEMA_URI",
    "ReportCollector",
    "format_github",
    "format_markdown",
    "format_sarif",
]

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://pypi.org/project/fetchpool/"
STEP_SUMMARY_BUDGET = 1000 * 1000  # bytes; GitHub refuses a step summary over 1024 KiB
STDIN = "-"

# One SARIF rule per kind, in the enum's order so a rule's index never moves.
_RULE_DESCRIPTIONS: dict[Kind, str] = {
    Kind.HTTP: "The server answered with a status outside the accepted ones.",
    Kind.TIMEOUT: "The link did not answer within the time limit.",
    Kind.DNS: "The host name could not be resolved.",
    Kind.CONNECT: "The connection to the host failed.",
    Kind.TLS: "The TLS handshake or the certificate check failed.",
    Kind.PROTOCOL: "The server broke the HTTP protocol.",
    Kind.REDIRECT: "Too many redirects, or a redirect loop.",
    Kind.INVALID: "The link is not a fetchable http(s) URL.",
    Kind.SIZE: "The body was larger than the size limit.",
    Kind.CANCELLED: "The check was cancelled before it finished.",
    Kind.MISSING: "The local file that the link names does not exist.",
    Kind.FRAGMENT: "The anchor that the link names is not in the target document.",
}
_RULE_INDEX = {kind: index for index, kind in enumerate(Kind)}


def _kind(result: Result) -> Kind:
    if result.kind is not None:
        return result.kind
    # A non-OK result always carries a kind; this only guards against a missing one.
    return Kind.CANCELLED if result.outcome is Outcome.CANCELLED else Kind.HTTP


def _title(result: Result) -> str:
    kind = _kind(result)
    if kind is Kind.CANCELLED:
        return "link not checked (cancelled)"
    if kind is Kind.HTTP and result.status is not None:
        return f"broken link (http {result.status})"
    return f"broken link ({kind.value})"


def _detail(result: Result) -> str:
    if result.error:
        return result.error
    if result.status is not None:
        return f"HTTP {result.status} {result.reason or ''}".rstrip()
    return _kind(result).value


def _message(result: Result) -> str:
    return f"{result.url}: {_detail(result)}"


# -- GitHub workflow commands -----------------------------------------------------------


def _escape_data(text: str) -> str:
    # The escaping of GitHub's own toolkit (@actions/core, command.ts); "%" must come first.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(result: Result) -> str | None:
    """One `::error ...::...` workflow command for a result that is not OK, else None.

    For standard input (`-`) there is no file to annotate, so `file=` and `line=` are left out
    and the error shows on the run instead of on a line of the pull request.
    """
    if result.ok:
        return None
    properties: list[tuple[str, str]] = []
    if result.source != STDIN:
        properties.append(("file", result.source))
        if result.line > 0:
            properties.append(("line", str(result.line)))
    properties.append(("title", _title(result)))
    joined = ",".join(f"{name}={_escape_property(value)}" for name, value in properties)
    return f"::error {joined}::{_escape_data(_message(result))}"


def github_line(result: Result) -> str | None:
    """`format_github` as an output line: printable (GitHub shows it in the job log too)."""
    command = format_github(result)
    return None if command is None else printable(command) + "\n"


def github_totals(collector: ReportCollector) -> str | None:
    """The last `::error::` of a github run: how many places failed, by kind; None when
    every link was OK (GitHub shows only a step's first 10 annotations, so this line says
    how many there were)."""
    failures = collector.failures
    if not failures:
        return None
    kinds: dict[str, int] = {}
    for result in failures:
        kind = _kind(result).value
        kinds[kind] = kinds.get(kind, 0) + 1
    by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    noun = "place" if len(failures) == 1 else "places"
    message = (
        f"fetchpool: {len(failures)} failing link {noun} of {collector.total} checked "
        f"({by_kind}); every one is in the log and the job summary"
    )
    return f"::error title=fetchpool link check::{_escape_data(message)}"


# -- the end-of-run collector -------------------------------------------------------------


class ReportCollector:
    """Counts every result and keeps only the failing ones, for the end-of-run documents.

    OK results are counted and dropped, so memory grows with the failures, not the run.
    """

    def __init__(self) -> None:
        self.total = 0
        self._failures: list[Result] = []

    def add(self, result: Result) -> None:
        """Take one result (any outcome)."""
        self.total += 1
        if not result.ok:
            self._failures.append(result)

    @property
    def failures(self) -> Sequence[Result]:
        """The results that were not OK, in the order they were added."""
        return tuple(self._failures)

    @property
    def ok(self) -> int:
        """How many results were OK."""
        return self.total - len(self._failures)

    def render_markdown(
        self,
        stats_line: str = "",
        *,
        max_rows: int | None = None,
        max_bytes: int = STEP_SUMMARY_BUDGET,
    ) -> str:
        """A Markdown report for `$GITHUB_STEP_SUMMARY`: heading, counts, every failure in a
        table, grouped by file.

        Args:
            stats_line: the run's one-line summary, shown under the heading (escaped).
            max_rows: at most this many failure rows (None: as many as fit `max_bytes`).
            max_bytes: the rows stop before the report would pass this size, and the rest are
                counted in one line, so it stays under GitHub's 1 MiB limit for a step summary.
        """
        lines = ["## fetchpool link check", ""]
        if stats_line:
            lines += [_markdown_text(stats_line), ""]
        failed = len(self._failures)
        if not failed:
            noun = "link" if self.total == 1 else "links"
            lines.append(f"All {self.total} {noun} OK.")
            return "\n".join(lines) + "\n"
        lines += [
            f"**{failed} failed** of {self.total} checked ({self.ok} OK).",
            "",
            "| Place | URL | Status | Kind | Error |",
            "| --- | --- | --- | --- | --- |",
        ]
        # Grouped by file, in line order; the files in the order their first failure came.
        order: dict[str, int] = {}
        for result in self._failures:
            order.setdefault(result.source, len(order))
        grouped = sorted(self._failures, key=lambda r: (order[r.source], r.line))
        size = sum(len(line.encode()) + 1 for line in lines) + 100  # + the closing line
        shown = 0
        for result in grouped[:max_rows]:
            cells = (
                _place(result),
                result.url,
                "-" if result.status is None else str(result.status),
                _kind(result).value,
                _detail(result),
            )
            row = "| " + " | ".join(_markdown_text(cell) for cell in cells) + " |"
            size += len(row.encode()) + 1
            if size > max_bytes:
                break
            lines.append(row)
            shown += 1
        if failed > shown:
            lines += ["", f"… and {failed - shown} more failures not shown."]
        return "\n".join(lines) + "\n"

    def render_sarif(
        self,
        *,
        tool_version: str,
        information_uri: str = INFORMATION_URI,
        root: str | os.PathLike[str] | None = None,
    ) -> str:
        """A SARIF 2.1.0 log (JSON text): one run, one result per failing place.

        Args:
            tool_version: fetchpool's version, for `tool.driver.version`.
            information_uri: where to read about the tool.
            root: directory that artifact URIs are made relative to (default: the working
                directory); sources outside it are given as `file:` URIs.
        """
        base = Path(root) if root is not None else Path.cwd()
        rules = [
            {
                "id": _rule_id(kind),
                "name": _rule_name(kind),
                "shortDescription": {"text": _RULE_DESCRIPTIONS[kind]},
                "defaultConfiguration": {"level": "error"},
            }
            for kind in Kind
        ]
        results = [_sarif_result(result, base) for result in self._failures]
        log = {
            "$schema": SARIF_SCHEMA_URI,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "fetchpool",
                            "version": tool_version,
                            "informationUri": information_uri,
                            "rules": rules,
                        }
                    },
                    "columnKind": "unicodeCodePoints",
                    "results": results,
                }
            ],
        }
        return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def format_markdown(results: Iterable[Result], stats_line: str = "") -> str:
    """A Markdown report of `results` (see `ReportCollector.render_markdown`)."""
    collector = ReportCollector()
    for result in results:
        collector.add(result)
    return collector.render_markdown(stats_line)


def format_sarif(results: Iterable[Result], *, tool_version: str) -> str:
    """A SARIF 2.1.0 log of `results` (see `ReportCollector.render_sarif`)."""
    collector = ReportCollector()
    for result in results:
        collector.add(result)
    return collector.render_sarif(tool_version=tool_version)


# -- Markdown -----------------------------------------------------------------------------

# Characters that could open markup in a table cell: HTML and the table's own pipes become
# entities, inline Markdown is backslash-escaped, so a hostile URL stays one literal cell.
_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "`": "&#96;"}
_MARKDOWN_BACKSLASHED = frozenset("\\*_[]!~$#")


def _markdown_text(text: str) -> str:
    text = " ".join(text.splitlines())
    out: list[str] = []
    for char in text:
        if char in _MARKDOWN_ENTITIES:
            out.append(_MARKDOWN_ENTITIES[char])
        elif char in _MARKDOWN_BACKSLASHED:
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"&#{ord(char)};")
    return "".join(out)


def _place(result: Result) -> str:
    return f"{result.source}:{result.line}" if result.line > 0 else result.source


# -- SARIF --------------------------------------------------------------------------------


def _rule_id(kind: Kind) -> str:
    return f"fetchpool/{kind.value}"


def _rule_name(kind: Kind) -> str:
    return "BrokenLink" + kind.value.capitalize()


def _artifact_uri(source: str, base: Path) -> str:
    """A URI reference for a result's source: relative with forward slashes when possible."""
    path = PurePath(source)
    if path.is_absolute():
        try:
            path = Path(source).relative_to(base)
        except ValueError:
            return Path(source).as_uri()
    relative = posixpath.normpath(path.as_posix())
    return quote(relative, safe="/")


def _sarif_result(result: Result, base: Path) -> dict[str, Any]:
    kind = _kind(result)
    entry: dict[str, Any] = {
        "ruleId": _rule_id(kind),
        "ruleIndex": _RULE_INDEX[kind],
        "level": "error",
        "message": {"text": f"{_title(result).capitalize()}: {_message(result)}"},
    }
    if result.source != STDIN:
        uri = _artifact_uri(result.source, base)
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if result.line > 0:
            physical["region"] = {"startLine": result.line}
        entry["locations"] = [{"physicalLocation": physical}]
        # Stable across runs even when the line moves, so code scanning keeps one alert.
        digest = hashlib.sha256(f"{uri}\0{result.url}".encode()).hexdigest()[:32]
        entry["partialFingerprints"] = {"fetchpoolLink/v1": digest}
    return entry
