"""bnsim: where CNN training's memory traffic goes, and what restructuring batch norm saves.

The public API listed in `__all__` is what notebooks and scripts use; `bnsim.cli` is a thin shell
over it. Names are imported on first use (PEP 562), so that `bnsim --help` does not pay for networkx
and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.5.0"

# every public name: "module:attribute", or "module" for a module reached through the package
# (`bnsim.layers.Conv2d(...)`, `bnsim.plots.roofline`). `verify_scheme` is renamed: `bnsim.verify`
# is also the module, which importing it would shadow. The TYPE_CHECKING imports below mirror this
# table for type checkers (tests/unit/test_result.py checks that they agree).
_PUBLIC = {
    "BnsimError": "bnsim.errors:BnsimError",
    "ConfigError": "bnsim.errors:ConfigError",
    "InfeasibleError": "bnsim.errors:InfeasibleError",
    "SimulationError": "bnsim.errors:SimulationError",
    "VerificationError": "bnsim.errors:VerificationError",
    "WorkloadError": "bnsim.errors:WorkloadError",
    "Machine": "bnsim.config.machine:Machine",
    "load_machine": "bnsim.config.machine:load_machine",
    "Network": "bnsim.graph:Network",
    "load_workload": "bnsim.graph:load_workload",
    "build_network": "bnsim.graph:build_network",
    "summarize": "bnsim.graph:summarize",
    "from_torch": "bnsim.graph.fx:from_torch",
    "build_schedule": "bnsim.schemes:build_schedule",
    "SimOptions": "bnsim.trace:SimOptions",
    "library_reorders": "bnsim.trace:library_reorders",
    "simulate": "bnsim.sim:simulate",
    "make_point": "bnsim.experiment.point:make_point",
    "run_point": "bnsim.experiment.point:run_point",
    "point_document": "bnsim.experiment.point:point_document",
    "RunResult": "bnsim.result:RunResult",
    "runs_from_document": "bnsim.result:runs_from_document",
    "sweep": "bnsim.experiment.sweeps:sweep",
    "verify_scheme": "bnsim.verify:verify",
    "layers": "bnsim.graph.layer",
    "plots": "bnsim.report.plots",
}

__all__ = ["__version__", *sorted(_PUBLIC)]  # noqa: PLE0604 (built from the one table)

if TYPE_CHECKING:  # `import X as X`: a re-export, for type checkers
    from bnsim.config.machine import Machine as Machine
    from bnsim.config.machine import load_machine as load_machine
    from bnsim.errors import BnsimError as BnsimError
    from bnsim.errors import ConfigError as ConfigError
    from bnsim.errors import InfeasibleError as InfeasibleError
    from bnsim.errors import SimulationError as SimulationError
    from bnsim.errors import VerificationError as VerificationError
    from bnsim.errors import WorkloadError as WorkloadError
    from bnsim.experiment.point import make_point as make_point
    from bnsim.experiment.point import point_document as point_document
    from bnsim.experiment.point import run_point as run_point
    from bnsim.experiment.sweeps import sweep as sweep
    from bnsim.graph import Network as Network
    from bnsim.graph import build_network as build_network
    from bnsim.graph import layer as layers  # noqa: F401 (renamed: in __all__ through _PUBLIC)
    from bnsim.graph import load_workload as load_workload
    from bnsim.graph import summarize as summarize
    from bnsim.graph.fx import from_torch as from_torch
    from bnsim.report import plots as plots
    from bnsim.result import RunResult as RunResult
    from bnsim.result import runs_from_document as runs_from_document
    from bnsim.schemes import build_schedule as build_schedule
    from bnsim.sim import simulate as simulate
    from bnsim.trace import SimOptions as SimOptions
    from bnsim.trace import library_reorders as library_reorders
    from bnsim.verify import verify as verify_scheme  # noqa: F401 (renamed, as above)


def __getattr__(name: str) -> Any:
    target = _PUBLIC.get(name)
    if target is None:
        raise AttributeError(f"module 'bnsim' has no attribute '{name}'")
    module, _, attribute = target.partition(":")
    found = importlib.import_module(module)
    return getattr(found, attribute) if attribute else found


def __dir__() -> list[str]:
    return sorted(__all__)
