"""What a library user writes with `fetchpool.fetch()` passes `mypy --strict`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fetchpool

USE_WITH_ACLOSING = """\
import contextlib

import fetchpool


async def main() -> None:
    async with contextlib.aclosing(fetchpool.fetch(["https://example.org/"], workers=2)) as results:
        async for result in results:
            print(result.url, result.outcome)
"""


def test_fetch_in_aclosing_as_its_docstring_recommends_passes_mypy_strict(tmp_path: Path) -> None:
    snippet = tmp_path / "use.py"
    snippet.write_text(USE_WITH_ACLOSING)
    root = Path(fetchpool.__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), snippet],
        capture_output=True,
        env={**os.environ, "MYPYPATH": str(root)},
        cwd=tmp_path,
        timeout=55,
    )
    assert done.returncode == 0, done.stdout.decode()
