"""`python -m bnsim` and the `bnsim` command: the command-line interface, which Ctrl-C ends with one
line and status 130 from the first instant, while it loads too."""

import sys

from bnsim.errors import EXIT_INTERRUPTED


def run() -> int:
    """Load the command-line interface and run one command; the exit status."""
    try:
        from bnsim.cli import main  # noqa: PLC0415 (an interrupt may land while it loads)

        return main()
    except KeyboardInterrupt:  # outside the command itself (bnsim.cli.main handles that)
        print("bnsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(run())
