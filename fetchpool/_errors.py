"""The one exception fetchpool raises to its caller.

    FetchpoolError
      └── UsageError   a bad option value or an unreadable input; the CLI exits 2

A URL that fails is not an exception: it is a `Result` with outcome FAIL.
"""

from __future__ import annotations


class FetchpoolError(Exception):
    """Base class of fetchpool's exceptions."""


class UsageError(FetchpoolError):
    """A bad setting or input that stops the run before anything is fetched."""
