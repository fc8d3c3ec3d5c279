"""docs/architecture.md's one-way data flow, enforced: who may import whom, print or exit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bnsim"
ANY = "bnsim.*"  # a rule that allows every bnsim module: the command line and the package's exports

# module prefix → bnsim modules it may import (beyond itself and its own sub-package).
ALLOWED = {
    "bnsim.errors": set(),
    "bnsim.units": {"bnsim.errors"},
    "bnsim.config.datafile": {"bnsim.errors"},
    "bnsim.config.dramdevice": set(),
    "bnsim.config.parts": {"bnsim.units"},
    "bnsim.config.dram": {"bnsim.units", "bnsim.config.parts", "bnsim.config.dramdevice"},
    "bnsim.config.machine": {
        "bnsim.errors",
        "bnsim.units",
        "bnsim.config.datafile",
        "bnsim.config.parts",
        "bnsim.config.dram",
        "bnsim.config.dramdevice",
    },
    "bnsim.config.keys": {"bnsim.config.machine", "bnsim.config.parts"},
    "bnsim.graph": {"bnsim.errors", "bnsim.units", "bnsim.config.datafile", "bnsim.graph"},
    "bnsim.schedule": {"bnsim.errors", "bnsim.graph"},
    "bnsim.schedule.footprint": {"bnsim.schedule", "bnsim.graph"},
    "bnsim.schedule.selection": {"bnsim.graph"},
    # a network lowered to one training iteration: the schedule every scheme starts from
    "bnsim.schedule.training": {"bnsim.errors", "bnsim.graph", "bnsim.heap"},
    "bnsim.config": set(),
    "bnsim.experiment": set(),
    "bnsim.schemes": {
        "bnsim.errors",
        "bnsim.config.datafile",
        "bnsim.graph",
        "bnsim.schedule",
        "bnsim.schedule.selection",
        "bnsim.schemes",
        "bnsim.heap",
    },
    "bnsim.trace.dataflow": {
        "bnsim.schedule",
        "bnsim.graph",
        "bnsim.config.machine",
        "bnsim.trace.dataflow",
    },
    # the functional interpreter: NumPy kernels running a schedule tile by tile (its kernels need
    # only the graph and the schedule; verifying builds schedules and lays out weights as the
    # machine's library would)
    "bnsim.verify": {
        "bnsim.config.machine",
        "bnsim.trace.dataflow",
        "bnsim.errors",
        "bnsim.graph",
        "bnsim.schedule",
        "bnsim.schemes",
    },
    "bnsim.verify.reference": {"bnsim.errors", "bnsim.graph", "bnsim.schedule"},
    "bnsim.verify.activations": {"bnsim.errors", "bnsim.graph", "bnsim.schedule"},
    "bnsim.verify.execute": {"bnsim.errors", "bnsim.graph", "bnsim.schedule"},
    "bnsim.verify.network": {"bnsim.errors", "bnsim.graph", "bnsim.schedule"},
    "bnsim.result": set(),
    "bnsim.result.timeline": set(),
    "bnsim.experiment.parallel": set(),
    "bnsim.heap": set(),
    "bnsim.files": set(),
    "bnsim.experiment.point": {
        "bnsim.experiment.parallel",
        "bnsim.graph",
        "bnsim.config.machine",
        "bnsim.schemes",
        "bnsim.trace",
        "bnsim.sim",
        "bnsim.result",
        "bnsim.result.timeline",
    },
    "bnsim.experiment.crosscheck": {
        "bnsim.experiment.parallel",
        "bnsim.experiment.point",
        "bnsim.result",
        "bnsim.schemes",
        "bnsim.trace",
    },
    "bnsim.experiment.sweeps": {
        "bnsim.files",
        "bnsim",  # the package's own names: __version__
        "bnsim.config.keys",
        "bnsim.units",
        "bnsim.errors",
        "bnsim.config.datafile",
        "bnsim.graph",
        "bnsim.config.machine",
        "bnsim.experiment.parallel",
        "bnsim.experiment.point",
        "bnsim.result",
        "bnsim.schemes",
        "bnsim.trace",
    },
    "bnsim.trace._tiles": set(),  # the compiled inner loop of bnsim.trace
    "bnsim.trace": {
        "bnsim.trace._tiles",
        "bnsim.trace.dataflow",
        "bnsim.errors",
        "bnsim.graph",
        "bnsim.config.machine",
        "bnsim.schedule",
        "bnsim.schedule.footprint",
        "bnsim.schedule.selection",
    },
    "bnsim.sim": {
        "bnsim.trace._tiles",
        "bnsim.trace.dataflow",
        "bnsim.units",
        "bnsim.errors",
        "bnsim.graph",
        "bnsim.config.machine",
        "bnsim.config.dram",
        "bnsim.config.dramdevice",
        "bnsim.schedule",
        "bnsim.trace",
        "bnsim.result",
        "bnsim.result.timeline",
        "bnsim.sim",
        "bnsim.heap",
    },
    "bnsim.report": {
        "bnsim.files",
        "bnsim.errors",
        "bnsim.units",
        "bnsim.report",
        "bnsim.result",
        "bnsim.result.timeline",
    },
    "bnsim.report.membench": {"bnsim.units", "bnsim.report", "bnsim.sim.membench"},
    # a machine described for people: its config and what the DRAM model sustains
    "bnsim.report.machine": {
        "bnsim.units",
        "bnsim.report",
        "bnsim.config.machine",
        "bnsim.config.dramdevice",
        "bnsim.sim.dramrate",
        "bnsim.trace",
    },
    "bnsim.report.summary": {
        "bnsim.units",
        "bnsim.report",
        "bnsim.result",
        "bnsim.graph.layer",
        "bnsim.experiment.point",
    },
    "bnsim.report.crosscheck": {
        "bnsim.report",
        "bnsim.experiment.crosscheck",
        "bnsim.experiment.point",
    },
    "bnsim.report.verification": {"bnsim.report", "bnsim.verify"},
    "bnsim.report.catalog": {"bnsim.units", "bnsim.report", "bnsim.graph", "bnsim.schemes"},
    # a report reads a result document's machine, or a sweep's store
    "bnsim.report.html": {
        "bnsim.errors",
        "bnsim.files",
        "bnsim.config.machine",
        "bnsim.report",
        "bnsim.result",
        "bnsim.experiment.sweeps",
    },
    "bnsim.cli": {ANY},
    "bnsim.__init__": {ANY},
    "bnsim.__main__": {"bnsim.cli", "bnsim.errors"},
}
THIRD_PARTY = {
    "bnsim.config.machine": {"yaml", "pydantic"},
    "bnsim.config.parts": {"pydantic"},
    "bnsim.config.dram": {"pydantic"},
    "bnsim.config.keys": {"pydantic"},
    "bnsim.config.datafile": {"yaml", "pydantic"},
    "bnsim.graph": {"yaml", "pydantic", "networkx"},
    "bnsim.graph.fx": {"torch", "torchvision"},  # optional (bnsim[torch]), imported when called
    "bnsim.graph.onnximport": {"onnx"},  # optional (bnsim[onnx]), imported only when called
    "bnsim.schedule.selection": {"numpy"},
    "bnsim.schemes": {"yaml", "pydantic", "networkx"},
    "bnsim.verify": {"numpy"},
    "bnsim.schedule.training": {"yaml", "pydantic", "networkx"},
    "bnsim.sim": {"simpy"},
    "bnsim.sim.analytic": {"numpy"},  # the stack distances, vectorised
    "bnsim.sim.analyticplan": {"numpy"},  # the schedule as columns
    "bnsim.sim.membench": {"numpy"},  # request streams built as arrays
    "bnsim.sim.dramrate": {"numpy"},  # request streams built as arrays
    "bnsim.sim.dram": {"numpy"},  # request streams as arrays for the compiled model
    "bnsim.config.dramdevice": {"numpy"},  # addresses decoded as arrays
    "bnsim.sim.stackmodel": {"numpy"},
    "bnsim.sim.passes": {"numpy"},
    "bnsim.report": {"matplotlib"},
    "bnsim.experiment.sweeps": {"pydantic", "dask", "pandas"},
    "bnsim.result": {"pandas"},  # optional (bnsim[notebook]), imported when called
}
STDLIB_OK = {
    "__future__",
    "base64",
    "html",
    "signal",
    "argparse",
    "bisect",
    "collections",
    "concurrent",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "difflib",
    "enum",
    "functools",
    "gc",
    "hashlib",
    "heapq",
    "importlib",
    "io",
    "operator",
    "os",
    "itertools",
    "json",
    "logging",
    "math",
    "pathlib",
    "re",
    "sys",
    "types",
    "time",
    "typing",
    "weakref",
    "zlib",
}


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = (
            ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 2 else ".".join(parts)
        )
        found.append((name, path))
    return found


def rule_for(module: str, table: dict[str, set[str]]) -> set[str] | None:
    keys = [key for key in table if module == key or module.startswith(key + ".")]
    return table[max(keys, key=len)] if keys else None


def imports_of(source: str) -> set[str]:
    """The modules a source imports; `from bnsim import X` is bnsim.X for a submodule X and the
    package itself ("bnsim") for a name it defines (__version__)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "bnsim" and node.level == 0:
            for alias in node.names:
                submodule = (PACKAGE / f"{alias.name}.py").exists() or (
                    PACKAGE / alias.name
                ).is_dir()
                names.add(f"bnsim.{alias.name}" if submodule else "bnsim")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(module: str, source: str) -> list[str]:
    """The imports of `source`, as module `module`, that its layering rules forbid."""
    allowed = rule_for(module, ALLOWED)
    if allowed is None:
        return [f"{module} has no layering rule: add it to ALLOWED"]
    own_package = module.rsplit(".", 1)[0] if module.count(".") > 1 else module
    found = []
    for name in sorted(imports_of(source)):
        if name == "bnsim" or name.startswith("bnsim."):
            ok = (
                ANY in allowed
                or name == own_package
                or name.startswith(own_package + ".")
                # "bnsim" allows the package's own names, not its submodules
                or any(name == a or (a != "bnsim" and name.startswith(a + ".")) for a in allowed)
            )
        else:
            top = name.split(".")[0]
            ok = (
                top in STDLIB_OK
                or top in (rule_for(module, THIRD_PARTY) or set())
                or module == "bnsim.cli"
                or module.startswith("bnsim.cli.")
            )
        if not ok:
            found.append(f"{module} must not import {name}")
    return found


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_follow_the_data_flow(module: str, path: Path) -> None:
    assert violations(module, path.read_text()) == []


@pytest.mark.parametrize(
    ("module", "line"),
    [
        (
            "bnsim.experiment.sweeps",
            "import bnsim.cli",
        ),  # its rule lists the package for __version__
        ("bnsim.experiment.sweeps", "from bnsim import cli"),
        ("bnsim.result", "from bnsim.sim import simulate"),
        ("bnsim.report.summary", "import bnsim.sim"),
        ("bnsim.graph.layer", "import numpy"),
    ],
)
def test_a_forbidden_import_is_caught(module: str, line: str) -> None:
    """The rules are not vacuous: each of these, added to a module, breaks them."""
    path = dict(modules())[module]
    assert violations(module, path.read_text()) == []
    assert violations(module, path.read_text() + "\n" + line + "\n")


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_only_the_cli_prints_or_exits(module: str, path: Path) -> None:
    if module in ("bnsim.cli", "bnsim.__main__") or module.startswith("bnsim.cli."):
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            assert called not in ("print", "sys.exit", "exit", "quit", "logging.basicConfig"), (
                f"{module} calls {called}; only bnsim.cli may"
            )


def test_every_module_says_its_job_in_its_first_docstring_line() -> None:
    for module, path in modules():
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring, f"{module} has no module docstring"
        assert docstring.splitlines()[0].strip(), f"{module}'s docstring starts with a blank line"
