"""The README's command lines stay true to the CLI: every `district-benchmarks …` line it shows (in code blocks and
inline code) parses with the real command line — the command exists and takes those options and values."""
from __future__ import annotations

import re
import shlex

import click
import pytest

from loader import paths
from loader.cli import cli

README = (paths.REPO_ROOT / "README.md").read_text(encoding="utf-8")


def command_lines(text: str) -> list[str]:
    """`district-benchmarks …` invocations: lines of fenced code blocks (after any VAR=value prefix or a `$`
    prompt, joined over trailing backslashes) and inline code spans."""
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            m = re.search(r"(?:^|[\s;&|(])(district-benchmarks(?:\s.*)?)$", line.strip().removeprefix("$ "))
            if m:
                found.append(m.group(1).split(" #")[0].strip())
    found += [s for s in re.findall(r"`(district-benchmarks[^`]*)`", text)]
    return found


LINES = command_lines(README)


def parse(argv: list[str]) -> None:
    """Parse argv as the CLI would (types, choices, callbacks), down to the leaf command, without running it."""
    command: click.Command = cli
    args = list(argv)
    while isinstance(command, click.Group):
        assert args, "a group without a command"
        name = args.pop(0)
        sub = command.commands.get(name)
        assert sub is not None, f"no command {name!r}"
        command = sub
    command.make_context(command.name or "", args, resilient_parsing=False)


def test_the_readme_shows_commands():
    assert len(LINES) >= 10 and any("run --sample" in ln for ln in LINES)


@pytest.mark.parametrize("line", LINES)
def test_readme_command_parses(line):
    argv = shlex.split(line)[1:]
    if {"--help", "-h", "--version"} & set(argv) or not argv:
        return
    try:
        parse(argv)
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        pytest.fail(f"`{line}`: {exc.format_message()}")


def test_a_wrong_option_is_caught():
    with pytest.raises(click.ClickException):
        parse(["run", "--smaple"])
    with pytest.raises(click.ClickException):
        parse(["ingest", "--years", "20x5"])
    with pytest.raises(AssertionError):
        parse(["shwo", "4100030"])
