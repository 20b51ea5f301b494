"""The CLI's words for the library's errors: a `SettingError` names the option that sets
the parameter it is about (`invalid workers 0` becomes `invalid --workers 0`)."""

from __future__ import annotations

from .._errors import SettingError, UsageError

__all__ = ["option_words", "usage_message"]

# Where the option is not `--` and the parameter with `-` for `_`, or the message names
# what the value is.
_OPTION_WORDS = {
    "accept": "--accept value",
    "exclude": "--exclude regex",
    "include": "--include regex",
    "max_age": "--max-cache-age value",
    "save_dir": "--save",
    "shard": "--shard value",
}


def option_words(name: str) -> str:
    """How an error message names the option that sets the library parameter `name`."""
    return _OPTION_WORDS.get(name, "--" + name.replace("_", "-"))


def usage_message(exc: UsageError) -> str:
    """The message the CLI prints for `exc` (after `fetchpool: error: `)."""
    if isinstance(exc, SettingError):
        shown = "" if exc.value is None else f" {exc.value}"
        return f"invalid {option_words(exc.name)}{shown}: {exc.problem}"
    return str(exc)
