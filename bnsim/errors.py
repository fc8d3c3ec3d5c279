"""The exception hierarchy: every error bnsim raises on purpose derives from BnsimError.

Leaf module: imports nothing from bnsim. The CLI maps ConfigError and WorkloadError to exit status
2, InfeasibleError to 3; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

# the command line's exit statuses (bnsim.cli; bnsim.__main__ for an interrupt while it loads)
EXIT_OK, EXIT_UNEXPECTED, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class BnsimError(Exception):
    """Base class: catch this to catch everything bnsim raises on purpose."""


class ConfigError(BnsimError, ValueError):
    """Raised for a bad, missing or unknown key or value in a hardware config or --set override."""


class WorkloadError(BnsimError, ValueError):
    """Raised for a bad network: unknown layer kind, dangling input, cycle, shape mismatch."""


class InfeasibleError(BnsimError):
    """Raised when valid inputs cannot be mapped (tile larger than a cache, scheme inapplicable)."""


class SimulationError(BnsimError, RuntimeError):
    """Raised when a simulation goes wrong (deadlock, illegal schedule, event budget exceeded)."""


class VerificationError(BnsimError):
    """Raised when a restructured or tiled execution disagrees with the layer-by-layer reference."""
