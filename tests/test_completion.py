"""Shell completion: Typer's `--show-completion` / `--install-completion` and the
`_FETCHPOOL_COMPLETE` protocol that the installed script speaks to `fetchpool`."""

from __future__ import annotations

import subprocess

import pytest
from clihelpers import FETCHPOOL, RUN_TIMEOUT, cli_env


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FETCHPOOL, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=cli_env(env),
        check=False,
    )


def test_show_completion_prints_a_bash_script_for_fetchpool() -> None:
    # `--show-completion` detects the shell it runs under (shellingham, from the process
    # tree): run it from bash, without letting bash exec it in its own place.
    proc = subprocess.run(
        ["bash", "-c", '"$@"; exit $?', "bash", *FETCHPOOL, "--show-completion"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=cli_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "_FETCHPOOL_COMPLETE=complete_bash" in proc.stdout
    assert "complete -o default -F _fetchpool_completion fetchpool" in proc.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o default -F _fetchpool_completion fetchpool"),
        ("zsh", "#compdef fetchpool"),
        ("fish", "complete --command fetchpool"),
    ],
)
def test_the_script_for_a_named_shell(shell: str, marker: str) -> None:
    # The completion protocol names the shell itself: nothing is detected.
    proc = _run(env={"_FETCHPOOL_COMPLETE": f"source_{shell}"})
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout


def test_completing_an_option_prefix_suggests_the_option() -> None:
    proc = _run(
        env={
            "_FETCHPOOL_COMPLETE": "complete_bash",
            "COMP_WORDS": "fetchpool --form",
            "COMP_CWORD": "1",
        }
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["--format"]


def test_completing_the_value_of_format_lists_the_formats() -> None:
    proc = _run(
        env={
            "_FETCHPOOL_COMPLETE": "complete_bash",
            "COMP_WORDS": "fetchpool --format j",
            "COMP_CWORD": "2",
        }
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["jsonl"]


def test_help_lists_the_completion_options() -> None:
    proc = _run("--help", env={"COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr
    assert "--install-completion" in proc.stdout
    assert "--show-completion" in proc.stdout
