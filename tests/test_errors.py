"""The library's errors name its own parameters; the CLI's messages name the options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import fetchpool
from fetchpool._cache import parse_duration
from fetchpool._config import parse_cookie, parse_header
from fetchpool._errors import SettingError
from fetchpool._save import SaveDir
from fetchpool.cli.errors import usage_message


@pytest.mark.parametrize(
    ("make", "library", "cli"),
    [
        (lambda: fetchpool.Settings(workers=0), "invalid workers 0: must be 1..1000", None),
        (
            lambda: fetchpool.Settings(per_host=0),
            "invalid per_host 0: must be 1 or more",
            "invalid --per-host 0: must be 1 or more",
        ),
        (
            lambda: fetchpool.Settings(user="nocolon"),
            "invalid user: expected USER:PASSWORD",
            "invalid --user: expected USER:PASSWORD",
        ),
        (
            lambda: fetchpool.StatusSet.parse("2xx"),
            "invalid accept '2xx': expected codes like 200-299,301",
            "invalid --accept value '2xx': expected codes like 200-299,301",
        ),
        (
            lambda: parse_header("no colon"),
            "invalid header 'no colon': expected 'Name: value'",
            "invalid --header 'no colon': expected 'Name: value'",
        ),
        (
            lambda: parse_cookie("a=1;b=2"),
            "invalid cookie 'a=1;b=2': the value contains ';'",
            "invalid --cookie 'a=1;b=2': the value contains ';'",
        ),
        (
            lambda: parse_duration("soon"),
            "invalid max_age 'soon': expected a duration such as 90s, 30m, 12h or 1d",
            "invalid --max-cache-age value 'soon': expected a duration such as 90s, 30m, 12h or 1d",
        ),
    ],
)
def test_a_bad_value_names_the_parameter_and_the_cli_names_the_option(
    make: object, library: str, cli: str | None
) -> None:
    assert callable(make)
    with pytest.raises(SettingError) as info:
        make()
    assert str(info.value) == library
    assert usage_message(info.value) == (cli or library.replace("invalid ", "invalid --", 1))


def test_a_bad_save_directory_is_the_save_option_to_the_cli(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SettingError) as info:
        SaveDir(file)
    assert info.value.name == "save_dir"
    assert usage_message(info.value) == f"invalid --save {file}: not a directory"


def test_the_core_names_no_option() -> None:
    makers: list[Callable[[], object]] = [
        lambda: fetchpool.Settings(timeout=0),
        lambda: fetchpool.Settings(rate=-1),
    ]
    for make in makers:
        with pytest.raises(SettingError) as info:
            make()
        assert "--" not in str(info.value)


def test_an_error_that_is_not_about_a_setting_is_printed_as_it_is() -> None:
    assert usage_message(fetchpool.UsageError("no input")) == "no input"
