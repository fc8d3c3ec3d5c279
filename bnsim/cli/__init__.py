"""The `bnsim` command: parse arguments, call one library function, print a summary, exit.

The only package that prints, configures logging or exits: `arguments` declares the commands,
`commands` holds what each does (a call into the Python API, its output formatted by bnsim.report).
Exit codes: 0 ok; 2 bad input (usage, config or workload error: one line on stderr, no traceback);
3 infeasible; 1 anything unexpected (with traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from bnsim.cli.arguments import build_parser
from bnsim.errors import (
    EXIT_BAD_INPUT,
    EXIT_INFEASIBLE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    BnsimError,
    ConfigError,
    InfeasibleError,
    WorkloadError,
)

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one bnsim command; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except (
        SystemExit
    ) as stop:  # --help, --version and usage errors: argparse has printed its message
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
    logging.basicConfig(level=args.log_level, format="bnsim: %(levelname)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ConfigError, WorkloadError) as err:
        print(f"bnsim: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InfeasibleError as err:
        print(f"bnsim: infeasible: {err}", file=sys.stderr)
        return EXIT_INFEASIBLE
    except BnsimError as err:
        print(f"bnsim: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_UNEXPECTED
    except KeyboardInterrupt:
        print("bnsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`); nothing more to say
        return EXIT_OK
