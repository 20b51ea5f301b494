"""A `Result` as a flat record (the fields of jsonl and csv) and back again.

The record is what `--format jsonl` prints, what `--output-dir` stores per
partition, and what `fetch_columns()` hands to a data frame; reading a stored
record back gives the same `Result`.
"""

from __future__ import annotations

from typing import Any

from ._models import Kind, Outcome, Result

RECORD_FIELDS = (
    "url",
    "outcome",
    "status",
    "elapsed",
    "attempts",
    "final_url",
    "error",
    "source",
    "line",
    "kind",
    "bytes",
    "http_version",
    "saved_to",
    "cached",
)


def record_of(result: Result) -> dict[str, Any]:
    """The fields of jsonl and csv, in their documented order."""
    return {
        "url": result.url,
        "outcome": result.outcome.value,
        "status": result.status,
        "elapsed": round(result.elapsed, 6),
        "attempts": result.attempts,
        "final_url": result.final_url,
        "error": result.error,
        "source": result.source,
        "line": result.line,
        "kind": None if result.kind is None else result.kind.value,
        "bytes": result.bytes_read,
        "http_version": result.http_version,
        "saved_to": result.saved_to,
        "cached": result.cached,
    }


def result_of(record: dict[str, Any]) -> Result:
    """The `Result` a record was made from (`record_of` inverted); raise ValueError if malformed."""
    try:
        kind = record.get("kind")
        return Result(
            url=str(record["url"]),
            source=str(record["source"]),
            line=int(record["line"]),
            outcome=Outcome(record["outcome"]),
            status=None if record.get("status") is None else int(record["status"]),
            elapsed=float(record.get("elapsed") or 0.0),
            attempts=int(record.get("attempts") or 0),
            final_url=record.get("final_url"),
            error=record.get("error"),
            kind=None if kind is None else Kind(kind),
            bytes_read=int(record.get("bytes") or 0),
            http_version=record.get("http_version"),
            saved_to=record.get("saved_to"),
            cached=bool(record.get("cached")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a result record: {exc}") from None
