"""The Rich consoles of the command, made in one place (NO_COLOR is honoured by Rich)."""

from __future__ import annotations

from rich.console import Console


def stdout_console() -> Console:
    """The console for the table on standard output."""
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    """The console for the progress line on standard error."""
    return Console(stderr=True, highlight=False, soft_wrap=False)
