"""`[tool.fetchpool]` defaults from the nearest pyproject.toml, and the CI integration files."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from fetchpool._errors import UsageError
from fetchpool.cli.pyconfig import (
    CHECKS,
    OptionSpec,
    default_map_for,
    find_pyproject,
    load_pyproject_options,
    schema_of,
)

REPO = Path(__file__).resolve().parent.parent

# The long options of the contract, each settable in [tool.fetchpool].
CONTRACT_LONG_OPTIONS = [
    "workers",
    "timeout",
    "retries",
    "accept",
    "method",
    "no-follow",
    "header",
    "user-agent",
    "insecure",
    "cacert",
    "per-host",
    "format",
    "failures-only",
    "no-progress",
    "quiet",
    "save",
    "max-filesize",
    "max-time",
    "http2",
    "proxy",
    "user",
    "bearer",
    "cookie",
    "rate",
    "extract",
    "exclude",
    "include",
    "cache",
    "max-cache-age",
    "accept-timeouts",
    "shard",
    "overwrite",
    "root-dir",
    "check-fragments",
    "dump",
    "recursive",
    "max-depth",
    "max-pages",
    "sitemap",
    "ignore-robots",
    "engine",
    "ray-address",
    "output-dir",
    "partition-size",
]


def write_pyproject(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_pyproject_is_found_upwards_from_a_nested_directory(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.fetchpool]\nworkers = 3\n")
    nested = tmp_path / "docs" / "guide" / "deep"
    nested.mkdir(parents=True)
    assert load_pyproject_options(nested) == (path.resolve(), {"workers": 3})


def test_the_nearest_pyproject_is_the_one_read(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.fetchpool]\nworkers = 3\n")
    inner = write_pyproject(tmp_path / "sub", "[tool.fetchpool]\nworkers = 5\n")
    assert load_pyproject_options(tmp_path / "sub") == (inner.resolve(), {"workers": 5})


def test_a_pyproject_without_the_table_gives_no_options(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, '[project]\nname = "x"\n[tool.ruff]\nline-length = 90\n')
    assert load_pyproject_options(tmp_path) == (path.resolve(), {})


def test_no_pyproject_up_to_the_root_gives_no_options(tmp_path: Path) -> None:
    if find_pyproject(tmp_path) is not None:
        pytest.skip("a parent of the temporary directory holds a pyproject.toml")
    assert load_pyproject_options(tmp_path) == (None, {})


def test_keys_may_be_spelt_with_dashes_or_underscores(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        """
        [tool.fetchpool]
        max-time = 30
        per_host = 2
        user-agent = "docs-check"
        no-follow = true
        accept_timeouts = true
        """,
    )
    _, options = load_pyproject_options(tmp_path)
    assert options == {
        "max_time": 30.0,
        "per_host": 2,
        "user_agent": "docs-check",
        "no_follow": True,
        "accept_timeouts": True,
    }


def test_one_option_spelt_both_ways_is_a_usage_error(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.fetchpool]\nmax-time = 1\nmax_time = 2\n")
    with pytest.raises(UsageError, match="same option") as info:
        load_pyproject_options(tmp_path)
    assert str(path) in str(info.value)


def test_repeatable_options_take_lists(tmp_path: Path) -> None:
    write_pyproject(
        tmp_path,
        r"""
        [tool.fetchpool]
        exclude = ['localhost', '^https://example\.com/']
        include = ["https://"]
        header = ["Accept: text/html", "X-Trace: 1"]
        cookie = ["session=abc"]
        """,
    )
    _, options = load_pyproject_options(tmp_path)
    assert options["exclude"] == ["localhost", r"^https://example\.com/"]
    assert options["include"] == ["https://"]
    assert options["header"] == ["Accept: text/html", "X-Trace: 1"]
    assert options["cookie"] == ["session=abc"]


def test_a_lone_string_for_a_repeatable_option_is_a_list_of_one(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.fetchpool]\nexclude = 'localhost'\n")
    assert load_pyproject_options(tmp_path)[1] == {"exclude": ["localhost"]}


def test_numbers_and_durations_take_the_form_the_option_takes(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.fetchpool]\ntimeout = 5\nmax-cache-age = 3600\nrate = 2.5\n")
    assert load_pyproject_options(tmp_path)[1] == {
        "timeout": 5.0,
        "max_cache_age": "3600",
        "rate": 2.5,
    }


def test_cache_and_save_paths_are_relative_to_the_pyproject(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.fetchpool]\ncache = '.fetchpool-cache.jsonl'\nsave = 'out'\n")
    nested = tmp_path / "docs"
    nested.mkdir()
    _, options = load_pyproject_options(nested)
    assert options["cache"] == str(tmp_path.resolve() / ".fetchpool-cache.jsonl")
    assert options["save"] == str(tmp_path.resolve() / "out")


def test_a_value_of_the_wrong_type_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, '[tool.fetchpool]\nworkers = "x"\n')
    with pytest.raises(UsageError) as info:
        load_pyproject_options(tmp_path)
    assert (
        str(info.value)
        == f'{path.resolve()}: [tool.fetchpool] workers: expected an integer, got "x"'
    )


@pytest.mark.parametrize(
    "line",
    [
        "workers = 0",
        "workers = true",
        "timeout = -1",
        "retries = -1",
        "accept = '200-299,abc'",
        "method = 'POST'",
        "header = ['no colon']",
        "header = [1, 2]",
        "per-host = 0",
        "format = 'xml'",
        "max-time = 0",
        "rate = -1",
        "cookie = ['novalue']",
        "cookie = ['a b=1']",
        "cookie = ['a=1; b=2']",
        "exclude = ['(unclosed']",
        "include = ['[a-']",
        "max-cache-age = 'soon'",
        "shard = '5/4'",
        "shard = 2",
        "insecure = 'yes'",
        "cache = ''",
        "max-filesize = -1",
        "tool = { nested = 1 }",
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_file(tmp_path: Path, line: str) -> None:
    path = write_pyproject(tmp_path, f"[tool.fetchpool]\n{line}\n")
    with pytest.raises(UsageError) as info:
        load_pyproject_options(tmp_path)
    assert str(info.value).startswith(f"{path.resolve()}: [tool.fetchpool]")


def test_an_unknown_option_is_a_usage_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.fetchpool]\nwokers = 3\n")
    with pytest.raises(UsageError) as info:
        load_pyproject_options(tmp_path)
    message = str(info.value)
    assert str(path.resolve()) in message
    assert "unknown option 'wokers'" in message
    assert "'workers'" in message


def test_invalid_toml_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, "[tool.fetchpool\nworkers = 3\n")
    with pytest.raises(UsageError, match="invalid TOML") as info:
        load_pyproject_options(tmp_path)
    assert str(path.resolve()) in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        "[tool.fetchpool]\nworkers = 3\n[project\n",
        '[ tool . "fetchpool" ]\nworkers = = 3\n',
        "[tool.fetchpool.extra]\nx = [\n",
        "[tool]\nruff.line-length = 100\ntool.fetchpool.workers = \n",
    ],
)
def test_invalid_toml_naming_our_table_is_a_usage_error(
    tmp_path: Path, body: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_pyproject(tmp_path, body)
    with pytest.raises(UsageError, match="invalid TOML") as info:
        load_pyproject_options(tmp_path)
    assert str(path.resolve()) in str(info.value)
    assert "\n" not in str(info.value)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "body",
    [
        '[project]\nname = "x"\nversion = \n',
        '[project.scripts]\nfetchpool = "fetchpool.cli.app:main"\n[tool.ruff\n',
        "# [tool.fetchpool] is not set here\n[tool.black]\nline-length = = 1\n",
        '[tool.fetchpoolish]\nx = "\n',
    ],
)
def test_invalid_toml_without_our_table_is_ignored_with_one_warning(
    tmp_path: Path, body: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_pyproject(tmp_path, body)
    nested = tmp_path / "docs"
    nested.mkdir()
    assert load_pyproject_options(nested) == (path.resolve(), {})
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"fetchpool: warning: {path.resolve()}: ignored: invalid TOML (")
    assert "no [tool.fetchpool]" in line


def test_a_pyproject_that_is_not_utf8_is_treated_as_invalid_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_bytes(b'[project]\nname = "caf\xe9"\n')
    assert load_pyproject_options(tmp_path) == (path.resolve(), {})
    assert "invalid TOML" in capsys.readouterr().err
    path.write_bytes(b'[tool.fetchpool]\nuser-agent = "caf\xe9"\n')
    with pytest.raises(UsageError, match="invalid TOML"):
        load_pyproject_options(tmp_path)


def test_a_non_table_tool_fetchpool_is_a_usage_error(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool]\nfetchpool = 3\n")
    with pytest.raises(UsageError, match="expected a table"):
        load_pyproject_options(tmp_path)


def fetchpool_schema() -> dict[str, OptionSpec]:
    app_module = pytest.importorskip("fetchpool.cli.app")
    return schema_of(typer.main.get_command(app_module.app))


def test_every_long_option_of_the_contract_can_be_set() -> None:
    assert set(fetchpool_schema()) == {name.replace("-", "_") for name in CONTRACT_LONG_OPTIONS}


def test_the_keys_and_their_types_come_from_the_cli_options_themselves() -> None:
    # One definition: the options declared in app.py; the file only adds checks.
    schema = fetchpool_schema()
    kinds = {key: spec.kind for key, spec in schema.items()}
    assert kinds["workers"] == "int"
    assert kinds["timeout"] == "float"
    assert kinds["insecure"] == "bool"
    assert kinds["header"] == "list"
    assert kinds["cache"] == "path"
    assert kinds["max_cache_age"] == "duration"
    assert kinds["format"] == "str"
    assert "version" not in schema  # acts and exits: nothing to configure
    assert set(CHECKS) <= set(schema)  # every check is of an option that exists
    assert schema["workers"].check is CHECKS["workers"]


def test_the_command_line_wins_over_pyproject_defaults(tmp_path: Path) -> None:
    # The CLI's wiring: the pyproject options, re-keyed by parameter name, become
    # Click's default_map, which Click consults only for options not on the command line.
    write_pyproject(
        tmp_path, "[tool.fetchpool]\nworkers = 3\nexclude = ['a', 'b']\nformat = 'csv'\n"
    )
    _, options = load_pyproject_options(tmp_path)
    app = typer.Typer()

    @app.command()
    def run(
        workers: Annotated[int, typer.Option("--workers", "-w")] = 8,
        exclude: Annotated[list[str] | None, typer.Option("--exclude")] = None,
        retries: Annotated[int, typer.Option("--retries")] = 2,
        output_format: Annotated[str, typer.Option("--format", "-f")] = "auto",
    ) -> None:
        print(workers, exclude, retries, output_format)

    defaults = default_map_for(typer.main.get_command(app), options)
    assert defaults == {"workers": 3, "exclude": ["a", "b"], "output_format": "csv"}
    runner = CliRunner()
    assert runner.invoke(app, [], default_map=defaults).output == "3 ['a', 'b'] 2 csv\n"
    args = ["-w", "5", "--exclude", "c", "-f", "plain"]
    assert runner.invoke(app, args, default_map=defaults).output == "5 ['c'] 2 plain\n"


# The integration files: they must at least be well-formed YAML of the expected shape.


def load_yaml(name: str) -> object:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def test_the_pre_commit_hook_walks_the_whole_tree_when_markdown_or_html_changes() -> None:
    import re

    hooks = load_yaml(".pre-commit-hooks.yaml")
    assert isinstance(hooks, list)
    (hook,) = (h for h in hooks if h["id"] == "fetchpool")
    assert hook["language"] == "python"
    # The tree, not the changed files: a change may break a local link in another file.
    assert hook["entry"] == "fetchpool --extract --format plain ."
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for name in ("README.md", "docs/a.markdown", "site/index.html", "x.htm", "a.mdx", "B.Rmd"):
        assert files.search(name), name
    for name in ("setup.py", "notes.txt", "README.md.orig"):
        assert not files.search(name), name


def test_the_github_action_checks_the_repository_directory_with_github_format() -> None:
    action = load_yaml("action.yml")
    assert isinstance(action, dict)
    assert set(action["inputs"]) >= {"args", "files", "python-version", "version"}
    assert action["inputs"]["files"]["default"] == "."  # walked by fetchpool, no globbing
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    assert any(str(s.get("uses", "")).startswith("actions/setup-python@") for s in steps)
    scripts = "\n".join(s.get("run", "") for s in steps)
    # fetchpool is not on PyPI: the action installs its own checkout, whatever `version` says.
    (install,) = (s for s in steps if s.get("name") == "Install fetchpool")
    assert install["env"] == {"ACTION_PATH": "${{ github.action_path }}"}
    assert 'pip install --disable-pip-version-check "$ACTION_PATH"' in install["run"]
    assert "==" not in scripts
    assert "PyPI" not in action["inputs"]["version"]["description"].replace("not on PyPI", "")
    assert "fetchpool --extract --format github" in scripts
    assert all(s.get("shell") == "bash" for s in steps if "run" in s)
    # Inputs reach the scripts through env, never pasted into the script text.
    assert "${{" not in scripts


def test_the_license_is_an_spdx_expression_with_a_backend_that_reads_it() -> None:
    # A TOML table for `project.license` makes current setuptools print a deprecation
    # banner at every `pip install .`; the SPDX string needs setuptools 77 or later.
    import tomllib

    document = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert document["project"]["license"] == "MIT"
    assert document["build-system"]["requires"] == ["setuptools>=77"]


def test_the_readme_installs_from_the_repository_not_the_package_index() -> None:
    # fetchpool is not on PyPI: `pip install fetchpool` would install someone else's
    # package or nothing. And its first examples must run in a clone as written.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pip install fetchpool" not in readme
    assert "pip install git+https://github.com/OWNER/fetchpool@" in readme
    assert "pipx install ." in readme
    assert "uv tool install ." in readme
    assert "## First five minutes" in readme
    head = readme.split("## Install and run")[0]
    for name in ("README.md", "urls.example.txt"):
        assert name in head
        assert (REPO / name).is_file()
    assert "docs/*.md" not in head
