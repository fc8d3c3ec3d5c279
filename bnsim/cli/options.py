"""Values the `bnsim` command line takes and writes: argument types that refuse bad input before any
work (one line, exit 2), and files written whole or not at all."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bnsim import units
from bnsim.errors import EXIT_BAD_INPUT, ConfigError
from bnsim.files import write_text_whole


def add_overrides(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--set KEY=VALUE`, repeatable: hardware keys overridden before validation."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def size(text: str) -> int:

    try:
        return units.parse_bytes(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def output_file(text: str) -> str:
    """A file to write: refused before any work if it names a folder or its folder is missing."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text}: folder {path.parent} does not exist (bnsim creates no folders for a file)"
        )
    return text


def report_file(text: str) -> str:
    """An HTML file to write, checked as `output_file` checks, with an .html or .htm name."""
    if Path(text).suffix.lower() not in (".html", ".htm"):
        raise argparse.ArgumentTypeError(f"{text}: a report is HTML; name it .html")
    return output_file(text)


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def write_text(path: Path, text: str) -> None:
    """Write an output file whole or not at all (an interrupted run leaves no truncated file)."""
    write_text_whole(path, text)


def check_image_path(path: str) -> None:
    """Refuse an image path whose format is unknown before anything runs."""
    from bnsim.report.plotdata import FORMATS

    if Path(path).suffix.lower().lstrip(".") not in FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the image format from the extension "
            f"{Path(path).suffix or '(none)'!r}; use .png, .svg or .pdf"
        )
