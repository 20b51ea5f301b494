"""The exceptions fetchpool raises to its caller, in the library's own words.

    FetchpoolError
      └── UsageError        a bad setting or an unreadable input; the CLI exits 2
            └── SettingError  a value one parameter cannot take; `name` says which

A URL that fails is not an exception: it is a `Result` with outcome FAIL. The library names
its own parameters (`workers`, `accept`); the CLI says which option sets each.
"""

from __future__ import annotations


class FetchpoolError(Exception):
    """Base class of fetchpool's exceptions."""


class UsageError(FetchpoolError):
    """A bad setting or input that stops the run before anything is fetched."""


class SettingError(UsageError):
    """A value that the parameter `name` cannot take: `invalid workers 0: must be 1..1000`.

    Args:
        name: the parameter, as the library spells it (`workers`, `max_filesize`).
        value: the value as shown in the message (`0`, `'2xx'`), or None to leave it out.
        problem: what is wrong with it.
    """

    def __init__(self, name: str, value: str | None, problem: str) -> None:
        self.name = name
        self.value = value
        self.problem = problem
        shown = "" if value is None else f" {value}"
        super().__init__(f"invalid {name}{shown}: {problem}")
