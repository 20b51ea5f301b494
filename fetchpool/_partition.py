"""Partitions of a run by host, and `--output-dir`: one JSON Lines file per partition.

A URL's partition depends on the input alone, so a second run over the same
input finds the same partitions: the URL's host picks one of `buckets` buckets
(a stable hash, as for `--shard`), and the k-th URL of a bucket goes to that
bucket's partition number `k // size`. A host therefore lives in one bucket,
and a bucket's partitions are run one after another, never two at once, so
`--per-host` holds across partitions and machines.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ._errors import UsageError
from ._filter import shard_of
from ._models import Result, Target
from ._records import record_of, result_of

MANIFEST = "fetchpool-partitions.json"
SUFFIX = ".jsonl"


@dataclass(frozen=True, slots=True, order=True)
class PartitionId:
    """A partition: its host bucket and its number within the bucket."""

    bucket: int
    number: int

    @property
    def name(self) -> str:
        """The partition's file name without suffix, e.g. `part-0007-000002`."""
        return f"part-{self.bucket:04d}-{self.number:06d}"


class Partitioner:
    """Assigns each target read to its partition, deterministically from the input alone.

    Args:
        size: URLs per partition (the last partition of a bucket may hold fewer).
        buckets: the number of host buckets.
    """

    def __init__(self, size: int, buckets: int) -> None:
        if size < 1 or buckets < 1:
            raise ValueError("partition size and bucket count must be at least 1")
        self.size = size
        self.buckets = buckets
        self._counts = [0] * buckets

    def bucket_of(self, target: Target) -> int:
        """The bucket of a target's host (a target with no host goes to bucket 0)."""
        return shard_of(target.url, self.buckets) - 1

    def assign(self, target: Target) -> tuple[PartitionId, bool]:
        """The target's partition, and whether the target is that partition's last."""
        bucket = self.bucket_of(target)
        k = self._counts[bucket]
        self._counts[bucket] = k + 1
        return PartitionId(bucket, k // self.size), (k + 1) % self.size == 0


class PartitionWriter:
    """Writes one partition's results to a temporary file; `commit()` renames it into place."""

    def __init__(self, directory: Path, pid: PartitionId) -> None:
        self.pid = pid
        self._final = directory / f"{pid.name}{SUFFIX}"
        self._temporary = directory / f".{pid.name}{SUFFIX}.tmp"
        self._file: IO[str] | None = None

    def write(self, result: Result) -> None:
        """Append one result (the file is opened at the first)."""
        if self._file is None:
            self._file = open(self._temporary, "w", encoding="utf-8")  # noqa: SIM115 - kept open
        self._file.write(json.dumps(record_of(result), ensure_ascii=False) + "\n")

    def commit(self) -> None:
        """The partition is complete: make its file appear under its final name, atomically."""
        if self._file is None:
            self._file = open(self._temporary, "w", encoding="utf-8")  # noqa: SIM115
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._temporary, self._final)

    def discard(self) -> None:
        """The partition did not complete (cancelled): remove its temporary file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temporary)


class OutputDir:
    """The directory of `--output-dir`: a manifest and one `part-*.jsonl` per complete partition.

    The manifest records the partitioning (size and buckets); a later run over
    the same directory partitions by it, whatever it is given, so that it finds
    the same partitions.

    Args:
        path: the directory; made if missing.
        size: URLs per partition, for a new directory.
        buckets: host buckets, for a new directory.

    Raises:
        UsageError: when the directory cannot be made or its manifest is not ours.
    """

    def __init__(self, path: Path, *, size: int, buckets: int) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            manifest = path / MANIFEST
            if manifest.exists():
                data = json.loads(manifest.read_text(encoding="utf-8"))
                size, buckets = int(data["partition_size"]), int(data["buckets"])
            else:
                temporary = path / f".{MANIFEST}.tmp"
                temporary.write_text(
                    json.dumps({"partition_size": size, "buckets": buckets}) + "\n",
                    encoding="utf-8",
                )
                os.replace(temporary, manifest)
            for stale in path.glob(f".part-*{SUFFIX}.tmp"):  # left by a run that was killed
                stale.unlink()
        except OSError as exc:
            raise UsageError(f"cannot use {path} as output directory: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{path / MANIFEST} is not a fetchpool partition manifest") from None
        self.size = size
        self.buckets = buckets

    def partitioner(self) -> Partitioner:
        """A partitioner that cuts the input as every run over this directory does."""
        return Partitioner(self.size, self.buckets)

    def is_complete(self, pid: PartitionId) -> bool:
        """Whether an earlier run completed this partition."""
        return (self.path / f"{pid.name}{SUFFIX}").is_file()

    def read(self, pid: PartitionId) -> list[Result]:
        """The results of a complete partition (lines that do not parse are skipped)."""
        results = []
        with open(self.path / f"{pid.name}{SUFFIX}", encoding="utf-8") as file:
            for line in file:
                try:
                    results.append(result_of(json.loads(line)))
                except ValueError:
                    continue
        return results

    def writer(self, pid: PartitionId) -> PartitionWriter:
        """A writer for an incomplete partition's results."""
        return PartitionWriter(self.path, pid)
