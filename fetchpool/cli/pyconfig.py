"""Default option values from `[tool.fetchpool]` in the nearest `pyproject.toml`.

The values are checked here, so a bad one is a usage error naming the file; the CLI
hands them to Click as its `default_map`, so the command line still wins.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .._config import Settings, StatusSet, parse_cookie, parse_header
from .._errors import UsageError
from .errors import usage_message

PYPROJECT = "pyproject.toml"


def _parse_duration(text: str) -> float:
    from .._cache import parse_duration

    return parse_duration(text)


def _parse_shard(text: str) -> tuple[int, int]:
    from .._filter import parse_shard

    return parse_shard(text)


FORMATS = ("auto", "table", "plain", "jsonl", "csv", "github", "markdown", "sarif")

ValueKind = Literal["int", "float", "str", "bool", "list", "duration", "path"]


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """The TOML type a `[tool.fetchpool]` key takes and an optional check of its value.

    `check` raises `UsageError` for a bad value; it reuses the parsers the CLI uses.
    """

    kind: ValueKind
    check: Callable[[object], object] | None = None


def _settings(field: str) -> Callable[[object], object]:
    # The same validation as the CLI's: Settings checks its own fields.
    def check(value: object) -> object:
        changes: dict[str, Any] = {field: value}
        return dataclasses.replace(Settings(), **changes)

    return check


def _regexes(option: Literal["include", "exclude"]) -> Callable[[object], object]:
    def check(value: object) -> object:
        assert isinstance(value, list)
        patterns = [str(v) for v in value]
        from .._filter import LinkFilter

        if option == "include":
            return LinkFilter(include=patterns)
        return LinkFilter(exclude=patterns)

    return check


def _positive(option: str) -> Callable[[object], object]:
    def check(value: object) -> object:
        assert isinstance(value, float)
        if not (value > 0 and math.isfinite(value)):
            raise UsageError(f"invalid --{option} {value:g}: must be a positive number")
        return value

    return check


def _each(check: Callable[[str], object]) -> Callable[[object], object]:
    def check_all(values: object) -> object:
        assert isinstance(values, list)
        return [check(v) for v in values]

    return check_all


def _format(value: object) -> object:
    if value not in FORMATS:
        raise UsageError(f"invalid --format {value!r}: must be one of {', '.join(FORMATS)}")
    return value


ENGINES = ("local", "ray")


def _engine(value: object) -> object:
    if value not in ENGINES:
        raise UsageError(f"invalid --engine {value!r}: must be one of {', '.join(ENGINES)}")
    return value


def _positive_int(option: str) -> Callable[[object], object]:
    def check(value: object) -> object:
        assert isinstance(value, int)
        if value < 1:
            raise UsageError(f"invalid --{option} {value}: must be at least 1")
        return value

    return check


# Keys are the long options with `-` turned into `_`: the Click parameter names.
KNOWN_OPTIONS: dict[str, OptionSpec] = {
    "workers": OptionSpec("int", _settings("workers")),
    "timeout": OptionSpec("float", _settings("timeout")),
    "retries": OptionSpec("int", _settings("retries")),
    "accept": OptionSpec("str", lambda v: StatusSet.parse(str(v))),
    "method": OptionSpec("str", _settings("method")),
    "no_follow": OptionSpec("bool"),
    "header": OptionSpec("list", _each(parse_header)),
    "user_agent": OptionSpec("str"),
    "insecure": OptionSpec("bool"),
    "cacert": OptionSpec("path"),
    "per_host": OptionSpec("int", _settings("per_host")),
    "format": OptionSpec("str", _format),
    "failures_only": OptionSpec("bool"),
    "no_progress": OptionSpec("bool"),
    "quiet": OptionSpec("bool"),
    "save": OptionSpec("path"),
    "overwrite": OptionSpec("bool"),
    "max_filesize": OptionSpec("int", _settings("max_filesize")),
    "max_time": OptionSpec("float", _positive("max-time")),
    "http2": OptionSpec("bool"),
    "proxy": OptionSpec("str"),
    "user": OptionSpec("str"),
    "bearer": OptionSpec("str"),
    "cookie": OptionSpec("list", _each(parse_cookie)),
    "rate": OptionSpec("float", _settings("rate")),
    "extract": OptionSpec("bool"),
    "root_dir": OptionSpec("path"),
    "check_fragments": OptionSpec("bool"),
    "dump": OptionSpec("bool"),
    "recursive": OptionSpec("bool"),
    "max_depth": OptionSpec("int"),
    "max_pages": OptionSpec("int"),
    "sitemap": OptionSpec("bool"),
    "ignore_robots": OptionSpec("bool"),
    "exclude": OptionSpec("list", _regexes("exclude")),
    "include": OptionSpec("list", _regexes("include")),
    "cache": OptionSpec("path"),
    "max_cache_age": OptionSpec("duration", lambda v: _parse_duration(str(v))),
    "accept_timeouts": OptionSpec("bool"),
    "shard": OptionSpec("str", lambda v: _parse_shard(str(v))),
    "engine": OptionSpec("str", _engine),
    "ray_address": OptionSpec("str"),
    "output_dir": OptionSpec("path"),
    "partition_size": OptionSpec("int", _positive_int("partition-size")),
}

_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "list": "a list of strings",
    "duration": 'a duration such as "12h" or a number of seconds',
    "path": "a path (string)",
}


def find_pyproject(start: Path) -> Path | None:
    """The nearest `pyproject.toml` in `start` or one of its parents, or None."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for directory in (here, *here.parents):
        candidate = directory / PYPROJECT
        if candidate.is_file():
            return candidate
    return None


def _shown(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # TOML dates and times
        return repr(value)


def _coerce(kind: ValueKind, value: object, base: Path) -> object:
    """The value as the CLI option takes it; raise `TypeError` when its TOML type is wrong."""
    if isinstance(value, bool):
        if kind == "bool":
            return value
    elif isinstance(value, int | float):
        if kind == "int" and isinstance(value, int):
            return value
        if kind == "float":
            return float(value)
        if kind == "duration":
            return f"{value:g}"
    elif isinstance(value, str):
        if kind in ("str", "duration"):
            return value
        if kind == "list":
            return [value]  # a lone string is a list of one
        if kind == "path" and value:
            # Relative to the pyproject.toml, as other tools' settings are, not to the cwd.
            return str(base / Path(value).expanduser())
    elif isinstance(value, list) and kind == "list" and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError


def _key(raw: str) -> str:
    return raw.replace("-", "_")


def parse_options(path: Path, table: object) -> dict[str, object]:
    """Check a `[tool.fetchpool]` table read from `path`; return it keyed by Click names.

    Raises `UsageError` naming `path` for an unknown key, a key given twice (as
    `max-time` and `max_time`), a value of the wrong type, or a bad value.
    """
    where = f"{path}: [tool.fetchpool]"
    if not isinstance(table, dict):
        raise UsageError(f"{where}: expected a table, got {_shown(table)}")
    options: dict[str, object] = {}
    seen: dict[str, str] = {}
    for raw_key, value in table.items():
        key = _key(raw_key)
        spec = KNOWN_OPTIONS.get(key)
        if spec is None:
            import difflib  # only for the rare misspelt key

            close = difflib.get_close_matches(key, KNOWN_OPTIONS, n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise UsageError(f"{where}: unknown option {raw_key!r}{hint}")
        if key in seen:
            raise UsageError(f"{where}: {raw_key!r} and {seen[key]!r} are the same option")
        seen[key] = raw_key
        try:
            coerced = _coerce(spec.kind, value, path.parent)
        except TypeError:
            raise UsageError(
                f"{where} {raw_key}: expected {_EXPECTED[spec.kind]}, got {_shown(value)}"
            ) from None
        if spec.check is not None:
            try:
                spec.check(coerced)
            except UsageError as exc:
                raise UsageError(f"{where} {raw_key}: {usage_message(exc)}") from None
        options[key] = coerced
    return options


# At the start of a line: `[tool.fetchpool]`, `[tool.fetchpool.x]` or the header left
# unclosed, with the spaces and quotes TOML allows; or a key `tool.fetchpool... =`.
_OUR_TABLE = r"""^[ \t]*(?:\[\[?[ \t]*)?tool[ \t]*\.[ \t]*(["']?)fetchpool\1[ \t]*(?:[\].=]|$)"""


def _names_our_table(text: str) -> bool:
    """Whether a pyproject.toml text that does not parse looks meant to configure fetchpool."""
    return re.search(_OUR_TABLE, text, re.MULTILINE) is not None


def load_pyproject_options(start: Path) -> tuple[Path | None, dict[str, object]]:
    """Find the nearest `pyproject.toml` from `start` upwards and read `[tool.fetchpool]`.

    Returns the file (None when there is none) and its options keyed by Click
    parameter name (`max-time` and `max_time` both become `max_time`), with
    `cache`, `save` and `cacert` made relative to the file's directory. A file without the
    table gives no options; the search does not go on past it.

    A file that is not valid TOML is ignored with a warning on standard error when
    its text has no `[tool.fetchpool]` (see `_names_our_table`): it belongs to some
    other project, and a broken one should not stop a link check in its directory.

    Raises:
        UsageError: naming the file, when it cannot be read, is not valid TOML but
            names `[tool.fetchpool]`, or holds an unknown option or a bad value.
    """
    path = find_pyproject(start)
    if path is None:
        return None, {}
    import tomllib  # only once a pyproject.toml was found

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = " ".join(str(exc).split())
        if _names_our_table(data.decode(errors="replace")):
            raise UsageError(f"{path}: invalid TOML: {reason}") from None
        # Some other project's file, broken: not ours to reject, but say why it was skipped.
        print(
            f"fetchpool: warning: {path}: ignored: invalid TOML ({reason}) "
            "and no [tool.fetchpool] in it",
            file=sys.stderr,
        )
        return path, {}
    tool = document.get("tool", {})
    if not isinstance(tool, dict) or "fetchpool" not in tool:
        return path, {}
    return path, parse_options(path, tool["fetchpool"])


class ClickParameter(Protocol):
    """The part of a Click parameter `default_map_for` reads."""

    @property
    def name(self) -> str | None: ...

    @property
    def opts(self) -> Sequence[str]: ...


class ClickCommand(Protocol):
    """The part of a Click command `default_map_for` reads."""

    @property
    def params(self) -> Sequence[ClickParameter]: ...


def default_map_for(command: ClickCommand, options: Mapping[str, object]) -> dict[str, object]:
    """Re-key `options` by the Click parameter that owns each long option.

    Click's `default_map` is keyed by parameter name, which need not be the option's
    (`--format` may be the parameter `output_format`). An option the command does not
    have is left out: it is valid in the file but not (yet) on this command line.
    """
    owner: dict[str, str] = {}
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and param.name:
                owner[opt[2:].replace("-", "_")] = param.name
    return {owner[key]: value for key, value in options.items() if key in owner}
