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


# What the options need beyond their type: the same checks the CLI makes, so a bad value is
# a usage error naming the file. Keyed by long option (`-` as `_`). Which options exist, and
# the TOML type each takes, come from the command itself (`schema_of`): the CLI's option
# declarations in `app.py` are the one definition of the options.
CHECKS: dict[str, Callable[[object], object]] = {
    "workers": _settings("workers"),
    "timeout": _settings("timeout"),
    "retries": _settings("retries"),
    "accept": lambda v: StatusSet.parse(str(v)),
    "method": _settings("method"),
    "header": _each(parse_header),
    "per_host": _settings("per_host"),
    "format": _format,
    "max_filesize": _settings("max_filesize"),
    "max_time": _positive("max-time"),
    "cookie": _each(parse_cookie),
    "rate": _settings("rate"),
    "exclude": _regexes("exclude"),
    "include": _regexes("include"),
    "max_cache_age": lambda v: _parse_duration(str(v)),
    "shard": lambda v: _parse_shard(str(v)),
    "engine": _engine,
    "partition_size": _positive_int("partition-size"),
}

# Options that act and exit instead of configuring a run: nothing to set in pyproject.toml.
NOT_SETTABLE = frozenset({"version", "help", "install_completion", "show_completion"})

# Click type names (`ParamType.name`) and metavars, as TOML value kinds.
_INT: ValueKind = "int"
_FLOAT: ValueKind = "float"
_NUMBER_KINDS: dict[str, ValueKind] = {
    name: kind
    for kind, names in ((_INT, ("int", "integer")), (_FLOAT, ("float",)))
    for base in names
    for name in (base, f"{base} range")
}
_METAVAR_KINDS: dict[str, ValueKind] = {"FILE": "path", "DIR": "path", "DURATION": "duration"}


def _kind(param: ClickParameter) -> ValueKind:
    """The TOML type a `[tool.fetchpool]` key takes, from its Click parameter."""
    if getattr(param, "multiple", False):
        return "list"
    if getattr(param, "is_flag", False):
        return "bool"
    type_name = str(getattr(getattr(param, "type", None), "name", ""))
    if type_name in _NUMBER_KINDS:
        return _NUMBER_KINDS[type_name]
    return _METAVAR_KINDS.get(str(getattr(param, "metavar", None)), "str")


def schema_of(command: ClickCommand) -> dict[str, OptionSpec]:
    """The `[tool.fetchpool]` keys: every long option of `command` that configures a run,
    keyed with `-` as `_`, each with its TOML type and its check (`CHECKS`)."""
    schema: dict[str, OptionSpec] = {}
    for param in command.params:
        for opt in param.opts:
            key = opt[2:].replace("-", "_")
            if opt.startswith("--") and key not in NOT_SETTABLE:
                schema[key] = OptionSpec(_kind(param), CHECKS.get(key))
    return schema


def _command() -> ClickCommand:
    """fetchpool's own command (the CLI module is only imported when no command is given)."""
    import typer

    from .app import app

    return typer.main.get_command(app)


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


def parse_options(path: Path, table: object, schema: Mapping[str, OptionSpec]) -> dict[str, object]:
    """Check a `[tool.fetchpool]` table read from `path` against `schema` (see
    `schema_of`); return it keyed by long option, `-` as `_`.

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
        spec = schema.get(key)
        if spec is None:
            import difflib  # only for the rare misspelt key

            close = difflib.get_close_matches(key, schema, n=1)
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


def load_pyproject_options(
    start: Path, command: ClickCommand | None = None
) -> tuple[Path | None, dict[str, object]]:
    """Find the nearest `pyproject.toml` from `start` upwards and read `[tool.fetchpool]`,
    whose keys are the long options of `command` (default: fetchpool's own).

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
    return path, parse_options(path, tool["fetchpool"], schema_of(command or _command()))


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
