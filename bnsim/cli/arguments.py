"""The `bnsim` command line's arguments: every subcommand, its options, their types and help."""

from __future__ import annotations

import argparse
from typing import Any

from bnsim import __version__
from bnsim.cli.inspect import (
    hw_keys_command,
    hw_show_command,
    membench_command,
    schemes_command,
    verify_command,
    workloads_export_command,
    workloads_list_command,
    workloads_show_command,
)
from bnsim.cli.options import (
    Parser,
    add_overrides,
    output_file,
    positive_int,
    report_file,
    size,
)
from bnsim.cli.simulate import (
    PLOT_KINDS,
    crosscheck_command,
    plot_command,
    report_command,
    run_command,
    sweep_command,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(
        prog="bnsim",
        description="Where CNN training's memory traffic goes, and what restructuring batch norm "
        "saves: a cycle-level simulator.",
    )
    parser.add_argument("--version", action="version", version=f"bnsim {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold on stderr (default WARNING)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    _add_workloads(commands)
    _add_run(commands)
    _add_sweep(commands)
    _add_plot(commands)
    _add_schemes_and_verify(commands)
    _add_membench(commands)
    _add_hw(commands)
    return parser


def _add_workloads(commands: Any) -> None:
    """`bnsim workloads list|show|export|import`."""
    workloads = commands.add_parser("workloads", help="list, inspect and export networks")
    workload_commands = workloads.add_subparsers(
        dest="subcommand", required=True, parser_class=Parser
    )
    listing = workload_commands.add_parser("list", help="the model zoo")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument("--markdown", action="store_true", help="print a Markdown table")
    listing.set_defaults(handler=workloads_list_command)
    for name, handler, text in (
        ("show", workloads_show_command, "size facts of one network"),
        ("export", workloads_export_command, "write a network as YAML, GraphML or DOT"),
        (
            "import",
            workloads_export_command,
            "an ONNX file as a workload YAML file (export's YAML)",
        ),
    ):
        sub = workload_commands.add_parser(name, help=text)
        sub.add_argument("workload", help="zoo model name, workload YAML or ONNX file path")
        sub.add_argument(
            "--batch", type=positive_int, help="mini-batch size (default: the workload's)"
        )
        sub.add_argument("--image", type=positive_int, help="input height = width in pixels")
        sub.set_defaults(handler=handler)
        if name == "show":
            sub.add_argument("--json", action="store_true", help="print a JSON document to stdout")
        elif name == "import":
            sub.set_defaults(format="yaml")
            sub.add_argument(
                "--out", type=output_file, help="the workload YAML file to write (default: stdout)"
            )
        else:
            sub.add_argument("--format", choices=["yaml", "graphml", "dot"], default="yaml")
            sub.add_argument("--out", type=output_file, help="output file (default: stdout)")


def _add_run(commands: Any) -> None:
    """`bnsim run` and `bnsim crosscheck`."""
    run = commands.add_parser("run", help="simulate one training iteration under each scheme")
    _add_point_arguments(run, "simulate")
    run.add_argument(
        "--fidelity",
        choices=["fast", "line", "analytic"],
        default="fast",
        help="fast (default): tile events, fully associative LRU caches tracked as byte ranges; "
        "line: tile events, exact set-associative caches of lines; analytic: tensor-level stack "
        "distances and a roofline, no tiles (docs/model.md, Fidelity)",
    )
    run.add_argument(
        "--csv",
        metavar="FILE",
        type=output_file,
        help="write traffic and time by phase and layer kind",
    )
    run.add_argument(
        "--plot",
        metavar="FILE",
        type=output_file,
        help="draw the DRAM traffic breakdown (.png, .svg or .pdf)",
    )
    run.add_argument(
        "--timeline",
        metavar="FILE",
        type=output_file,
        help="write a Chrome/Perfetto trace (JSON) of tiles on cores, DRAM channels and the LLC",
    )
    run.add_argument(
        "--report",
        metavar="FILE.html",
        type=report_file,
        help="write a single-file HTML report: summary, breakdowns, figures, machine",
    )
    run.set_defaults(handler=run_command)
    check = commands.add_parser(
        "crosscheck",
        help="simulate each scheme at line, fast and analytic fidelity and compare them",
    )
    _add_point_arguments(check, "cross-check")
    check.set_defaults(handler=crosscheck_command)


def _add_point_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """The arguments that define a point: machine, workload, schemes, options, outputs."""
    parser.add_argument("--hw", required=True, help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    parser.add_argument(
        "--workload",
        required=True,
        help="zoo model name, workload YAML or ONNX file, or torchvision:NAME",
    )
    parser.add_argument(
        "--scheme",
        action="append",
        metavar="SPEC",
        help=f"scheme to {verb}, repeatable (default: baseline and bnff)",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        help="mini-batch size (default: the workload file's own, else 32)",
    )
    parser.add_argument("--image", type=positive_int, help="input height = width in pixels")
    add_overrides(parser, "override a hardware key, e.g. --set llc.size=32MiB (repeatable)")
    parser.add_argument(
        "--force",
        "--allow-slow",
        dest="allow_slow",
        action="store_true",
        help="run line fidelity even if estimated to take over an hour",
    )
    parser.add_argument(
        "--tiles-per-core",
        type=positive_int,
        default=1,
        help="simulate each work item of a core in at least this many steps (a simulation "
        "grain: results move by under 2%%; default 1)",
    )
    parser.add_argument(
        "--step",
        type=size,
        metavar="SIZE",
        help="the most bytes one simulation step issues, e.g. 64KiB (default 512KiB; finer "
        "is slower, and moves results by under 2%%)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        help="simulations to run at once in separate processes (default: as many as CPUs)",
    )
    parser.add_argument(
        "--json", metavar="FILE", type=output_file, help="write the result document as JSON"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _add_sweep(commands: Any) -> None:
    """`bnsim sweep`."""
    sweep = commands.add_parser(
        "sweep", help="simulate a grid of points in parallel, storing each as it finishes"
    )
    sweep.add_argument("file", nargs="?", help="a sweep YAML file instead of the flags below")
    sweep.add_argument("--hw", help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    sweep.add_argument(
        "--workload", action="append", metavar="W", help="zoo model or workload YAML, repeatable"
    )
    sweep.add_argument(
        "--scheme", action="append", metavar="SPEC", help="repeatable (default: baseline and bnff)"
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="a grid axis, repeatable: a hardware key, batch, image, workload or scheme with "
        "values v1,v2,... or a range START..STOP*FACTOR or START..STOP+STEP "
        "(e.g. llc.size=2MiB..64MiB*2)",
    )
    add_overrides(sweep, "fixed hardware override")
    sweep.add_argument(
        "--batch",
        type=positive_int,
        help="mini-batch size (default: the workload file's own, else 32)",
    )
    sweep.add_argument("--image", type=positive_int, help="input height = width in pixels")
    sweep.add_argument(
        "--fidelity", choices=["fast", "line", "analytic"], default="fast", help="default fast"
    )
    sweep.add_argument("--tiles-per-core", type=positive_int, default=1, help="default 1")
    sweep.add_argument(
        "--step", type=size, metavar="SIZE", help="the most bytes one step issues (default 512KiB)"
    )
    sweep.add_argument("--out", required=True, metavar="DIR", help="the sweep's folder (its store)")
    sweep.add_argument(
        "--jobs", type=positive_int, help="processes (local) or workers (Dask); default: CPUs"
    )
    sweep.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="local processes (default) or Dask (pip install 'bnsim[dask]')",
    )
    sweep.add_argument(
        "--scheduler", metavar="ADDRESS", help="a Dask scheduler (default: start a LocalCluster)"
    )
    sweep.add_argument(
        "--retry-failed", action="store_true", help="run the stored failed points again"
    )
    sweep.add_argument(
        "--plot", action="store_true", help="draw speedup and traffic against the first grid key"
    )
    sweep.add_argument(
        "--report",
        metavar="FILE.html",
        type=report_file,
        help="write a single-file HTML report of the sweep when it ends",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    sweep.set_defaults(handler=sweep_command)


def _add_plot(commands: Any) -> None:
    """`bnsim plot`."""
    from bnsim.report.plotdata import SWEEP_METRICS

    plot = commands.add_parser("plot", help="draw figures from saved result documents")
    plot.add_argument(
        "results",
        nargs="+",
        metavar="RESULT.json|DIR",
        help="result documents of bnsim run --json, or one bnsim sweep folder",
    )
    plot.add_argument(
        "--kind",
        choices=PLOT_KINDS,
        default="traffic",
        help="traffic or time breakdown per scheme (default traffic); speedup: a metric against "
        "--x over several documents; layers: DRAM traffic per layer of two schemes; roofline: "
        "every kernel under the machine's roofs",
    )
    plot.add_argument(
        "--x", metavar="PARAMETER", help="for --kind speedup: llc.size, cores.count, batch, ..."
    )
    plot.add_argument(
        "--metric",
        choices=list(SWEEP_METRICS),
        default="speedup",
        help="for --kind speedup: what to draw against --x (default speedup)",
    )
    plot.add_argument(
        "--schemes", metavar="A,B,...", help="only these schemes, in this order (default: all)"
    )
    plot.add_argument(
        "--out", required=True, type=output_file, help="image file: .png, .svg or .pdf"
    )
    plot.set_defaults(handler=plot_command)
    report = commands.add_parser(
        "report", help="write a single-file HTML report of a result document or a sweep folder"
    )
    report.add_argument(
        "source",
        metavar="RESULT.json|DIR",
        help="a document of bnsim run --json, or a sweep folder",
    )
    report.add_argument(
        "--out", required=True, metavar="FILE.html", type=report_file, help="the report to write"
    )
    report.set_defaults(handler=report_command)


def _add_schemes_and_verify(commands: Any) -> None:
    """`bnsim schemes` and `bnsim verify`."""
    schemes = commands.add_parser("schemes", help="the restructuring schemes and their options")
    schemes.set_defaults(handler=schemes_command)
    check = commands.add_parser(
        "verify", help="prove schemes compute what the reference computes (NumPy, down-scaled)"
    )
    check.add_argument(
        "--workload",
        required=True,
        help="zoo model name, workload YAML or ONNX file, or torchvision:NAME",
    )
    check.add_argument(
        "--scheme",
        action="append",
        metavar="SPEC",
        help="scheme to verify, repeatable (default: fission, bnff, recompute)",
    )
    check.add_argument(
        "--hw",
        default="hwconfigs/cmp16.yaml",
        help="machine whose kernel library splits the kernels into the tiles verified "
        "(default: hwconfigs/cmp16.yaml)",
    )
    add_overrides(check, "override a hardware key of --hw (repeatable)")
    check.add_argument("--seed", type=int, default=0, help="seed of data, weights and tile order")
    check.add_argument(
        "--width-divisor",
        type=positive_int,
        default=8,
        help="divide every layer's channels by this (default 8)",
    )
    check.add_argument("--json", metavar="FILE", type=output_file, help="write the reports as JSON")
    check.set_defaults(handler=verify_command)


def _add_membench(commands: Any) -> None:
    """`bnsim membench`."""
    from bnsim.sim.membench import KERNELS

    bench = commands.add_parser(
        "membench", help="STREAM's kernels on the simulated machine's DRAM (GB/s, row hits, bus)"
    )
    bench.add_argument("--hw", required=True, help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    bench.add_argument(
        "--kernel",
        action="append",
        choices=list(KERNELS),
        help="a kernel to run (repeatable; default: all)",
    )
    bench.add_argument(
        "--array-size",
        type=size,
        default=None,
        metavar="SIZE",
        help="bytes per array, e.g. 64MiB (default: four times the LLC, STREAM's rule)",
    )
    bench.add_argument(
        "--cores", type=positive_int, default=None, help="cores that run it (default: all)"
    )
    add_overrides(
        bench, "override a hardware key, e.g. --set cores.prefetch.distance=0 (repeatable)"
    )
    bench.add_argument(
        "--json", metavar="FILE", type=output_file, help="also write the results as JSON"
    )
    bench.set_defaults(handler=membench_command)


def _add_hw(commands: Any) -> None:
    """`bnsim hw show|keys`."""
    hw = commands.add_parser("hw", help="inspect hardware configs")
    hw_commands = hw.add_subparsers(dest="subcommand", required=True, parser_class=Parser)
    show = hw_commands.add_parser("show", help="print the resolved machine with derived peaks")
    show.add_argument("file", help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    add_overrides(show, "override a key before validation, e.g. --set llc.size=32MiB (repeatable)")
    show.add_argument("--json", action="store_true", help="print the resolved machine as JSON")
    show.set_defaults(handler=hw_show_command)
    keys = hw_commands.add_parser("keys", help="every config key with its unit and meaning")
    keys.add_argument("--markdown", action="store_true", help="print a Markdown table")
    keys.set_defaults(handler=hw_keys_command)
