"""bnsim: where CNN training's memory traffic goes, and what restructuring batch norm saves.

The public API listed in `__all__` is what notebooks and scripts use; `bnsim.cli` is a thin shell
over it. Names are imported on first use (PEP 562), so that `bnsim --help` does not pay for networkx
and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.5.0"

_EXPORTS = {
    "BnsimError": "bnsim.errors",
    "ConfigError": "bnsim.errors",
    "InfeasibleError": "bnsim.errors",
    "SimulationError": "bnsim.errors",
    "VerificationError": "bnsim.errors",
    "WorkloadError": "bnsim.errors",
    "Machine": "bnsim.hw",
    "load_machine": "bnsim.hw",
    "Network": "bnsim.graph",
    "load_workload": "bnsim.graph",
    "build_network": "bnsim.graph",
    "summarize": "bnsim.graph",
    "from_torch": "bnsim.graph.fx",
    "build_schedule": "bnsim.schemes",
    "SimOptions": "bnsim.trace",
    "library_reorders": "bnsim.trace",
    "simulate": "bnsim.sim",
    "make_point": "bnsim.point",
    "run_point": "bnsim.point",
    "point_document": "bnsim.point",
    "RunResult": "bnsim.result",
    "runs_from_document": "bnsim.result",
    "sweep": "bnsim.sweeps",
}
# exported under another name: `bnsim.verify` is also the module, which importing it would shadow
_RENAMED = {"verify_scheme": ("bnsim.verify", "verify")}
# modules a notebook reaches through the package: `bnsim.layers.Conv2d(...)`, `bnsim.plots.roofline`
_MODULES = {"layers": "bnsim.graph.layer", "plots": "bnsim.report.plots"}

__all__ = [
    "BnsimError",
    "ConfigError",
    "InfeasibleError",
    "Machine",
    "Network",
    "RunResult",
    "SimOptions",
    "SimulationError",
    "VerificationError",
    "WorkloadError",
    "__version__",
    "build_network",
    "build_schedule",
    "from_torch",
    "layers",
    "library_reorders",
    "load_machine",
    "load_workload",
    "make_point",
    "plots",
    "point_document",
    "run_point",
    "runs_from_document",
    "simulate",
    "summarize",
    "sweep",
    "verify_scheme",
]

if TYPE_CHECKING:
    from bnsim.errors import (
        BnsimError,
        ConfigError,
        InfeasibleError,
        SimulationError,
        VerificationError,
        WorkloadError,
    )
    from bnsim.graph import Network, build_network, load_workload, summarize
    from bnsim.graph import layer as layers
    from bnsim.graph.fx import from_torch
    from bnsim.hw import Machine, load_machine
    from bnsim.point import make_point, point_document, run_point
    from bnsim.report import plots
    from bnsim.result import RunResult, runs_from_document
    from bnsim.schemes import build_schedule
    from bnsim.sim import simulate
    from bnsim.sweeps import sweep
    from bnsim.trace import SimOptions, library_reorders
    from bnsim.verify import verify as verify_scheme


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        module, attribute = _RENAMED[name]
        return getattr(importlib.import_module(module), attribute)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'bnsim' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
