"""The `bnsim` commands that describe and check: workloads, hw, membench, schemes, verify."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bnsim import __version__
from bnsim.cli.options import write_text
from bnsim.errors import EXIT_OK, EXIT_UNEXPECTED, ConfigError
from bnsim.report.tables import markdown_table, text_table

# Library modules that pull in networkx, pydantic or matplotlib are imported inside the handlers
# that need them, so that `bnsim --help` and argument errors answer at once.


# --- workloads ---


def workloads_list_command(args: argparse.Namespace) -> int:
    from bnsim.graph.zoo import BUILDERS
    from bnsim.report.catalog import zoo_documents, zoo_table

    documents = zoo_documents()
    if args.json:
        print(json.dumps(documents, indent=2))
        return EXIT_OK
    table = zoo_table(documents)
    print(markdown_table(*table) if args.markdown else text_table(*table))
    print(f"\nbuilders for workload files: {', '.join(BUILDERS)}" if not args.markdown else "")
    return EXIT_OK


def workloads_show_command(args: argparse.Namespace) -> int:
    from bnsim.graph import load_workload, summarize
    from bnsim.report.catalog import describe_network

    network = load_workload(args.workload, batch=args.batch, image=args.image)
    if args.json:
        print(json.dumps(summarize(network).to_dict(), indent=2))
        return EXIT_OK
    print(describe_network(network))
    return EXIT_OK


def workloads_export_command(args: argparse.Namespace) -> int:
    from bnsim.graph import load_workload
    from bnsim.graph.load import network_to_dot, network_to_graphml, network_to_yaml

    network = load_workload(args.workload, batch=args.batch, image=args.image)
    writers = {"yaml": network_to_yaml, "graphml": network_to_graphml, "dot": network_to_dot}
    text = writers[args.format](network)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(Path(args.out), text)
        print(f"wrote {args.out} ({len(network.layers) - 1} layers, {args.format})")
    return EXIT_OK


# --- hardware ---


def hw_show_command(args: argparse.Namespace) -> int:
    from bnsim.config.machine import load_machine
    from bnsim.report.machine import describe_machine, machine_document

    machine = load_machine(args.file, args.set)
    if args.json:
        print(json.dumps(machine_document(machine), indent=2))
        return EXIT_OK
    print(describe_machine(machine))
    return EXIT_OK


def hw_keys_command(args: argparse.Namespace) -> int:
    from bnsim.config.keys import describe_keys

    header = ["key", "type", "unit", "required", "meaning"]
    rows = [
        [
            doc.path,
            doc.type_name,
            doc.unit,
            "yes"
            if doc.required
            else f"with {doc.section}"
            if doc.section
            else f"no (default {doc.default})",
            doc.description,
        ]
        for doc in describe_keys()
    ]
    print(markdown_table(header, rows) if args.markdown else text_table(header, rows))
    return EXIT_OK


def membench_command(args: argparse.Namespace) -> int:
    from bnsim.config.machine import load_machine
    from bnsim.report.membench import describe_membench, membench_document
    from bnsim.sim.membench import KERNELS, run_kernel

    machine = load_machine(args.hw, args.set)
    kernels = args.kernel or list(KERNELS)
    try:
        results = [run_kernel(machine, kernel, args.array_size, args.cores) for kernel in kernels]
    except ValueError as error:
        raise ConfigError(f"membench: {error}") from None
    peak = machine.dram.peak_bandwidth_bytes_per_second()
    print(describe_membench(machine.name, peak, results))
    if args.json:
        write_text(Path(args.json), json.dumps(membench_document(machine.name, results), indent=2))
    return EXIT_OK


# --- schemes and verification ---


def schemes_command(args: argparse.Namespace) -> int:
    from bnsim.report.catalog import describe_schemes

    print(describe_schemes())
    return EXIT_OK


def verify_command(args: argparse.Namespace) -> int:
    from bnsim.config.machine import load_machine
    from bnsim.graph import load_workload
    from bnsim.report.verification import describe_verification, verify_document
    from bnsim.schemes import parse_scheme
    from bnsim.verify import verify

    machine = load_machine(args.hw, args.set)
    network = load_workload(args.workload)
    specs = [parse_scheme(text) for text in args.scheme or ["fission", "bnff", "recompute"]]
    reports = [
        verify(
            network,
            spec,
            seed=args.seed,
            width_divisor=args.width_divisor,
            machine=machine,
        )
        for spec in specs
    ]
    print(f"{network.name}, down-scaled: channels ÷{args.width_divisor}, every layer kept")
    print(describe_verification(reports))
    if args.json:
        write_text(
            Path(args.json),
            json.dumps(verify_document(network.name, reports, __version__), indent=2) + "\n",
        )
        print(f"wrote {args.json}")
    return EXIT_OK if all(r.passed for r in reports) else EXIT_UNEXPECTED
