"""The documentation keeps up with the code: every command and flag, example and figure."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from bnsim.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """'bnsim run' → its option strings, for every (sub)command."""
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(commands(sub, (*prefix, name)))
    options = [
        option
        for action in parser._actions
        for option in action.option_strings
        if option not in ("-h", "--help")
    ]
    if prefix:
        found[" ".join(("bnsim", *prefix))] = options
    return found


def test_cli_md_names_every_command_and_flag() -> None:
    text = (DOCS / "cli.md").read_text()
    missing = [
        f"{command} {option}"
        for command, options in commands(build_parser()).items()
        for option in options
        if option not in text
    ]
    missing += [command for command in commands(build_parser()) if command not in text]
    assert not missing, f"docs/cli.md does not mention: {', '.join(missing)}"


def test_examples_md_describes_every_example() -> None:
    text = (DOCS / "examples.md").read_text()
    for script in (REPO / "examples").glob("*.py"):
        assert f"## {script.name}" in text, f"docs/examples.md has no section on {script.name}"


def test_every_figure_the_docs_show_is_committed_and_small() -> None:
    shown = {
        (page.parent / target).resolve()
        for page in [*DOCS.glob("*.md"), REPO / "README.md"]
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page.read_text())
    }
    assert shown, "no figures found"
    for figure in shown:
        assert figure.exists(), f"{figure} is shown but missing"
        assert figure.stat().st_size < 200_000, f"{figure} is over 200 kB"
