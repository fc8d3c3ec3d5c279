"""bnsim: where CNN training's memory traffic goes, and what restructuring batch norm saves.

The public API listed in `__all__` is what notebooks and scripts use; `bnsim.cli` is a thin shell
over it. Names are imported on first use (PEP 562), so that `bnsim --help` does not pay for networkx
and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
    "summarize": "bnsim.graph",
}

__all__ = [
    "BnsimError",
    "ConfigError",
    "InfeasibleError",
    "Machine",
    "Network",
    "SimulationError",
    "VerificationError",
    "WorkloadError",
    "__version__",
    "load_machine",
    "load_workload",
    "summarize",
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
    from bnsim.graph import Network, load_workload, summarize
    from bnsim.hw import Machine, load_machine


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bnsim' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
