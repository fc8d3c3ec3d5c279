"""How finely to simulate: the fidelity, tiles per core and bytes per step (none of them changes
what the machine or its library does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bnsim.config.machine import Machine
from bnsim.errors import ConfigError

DEFAULT_STEP_BYTES = 512 << 10  # half of cmp16's L2: a step's accesses fit in the private cache


Fidelity = Literal["fast", "line", "analytic"]


FIDELITIES: tuple[Fidelity, ...] = ("fast", "line", "analytic")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """How finely to simulate; none of these changes what the machine or its library does.

    fidelity: "fast" (range caches, the default), "line" (exact set-associative line caches) or
        "analytic" (tensor-level stack distances and a roofline; no tiles).
    tiles_per_core: the fewest steps each of a core's work items is simulated in.
    step_bytes: the most bytes of accesses one step issues (None: DEFAULT_STEP_BYTES); a work item
        takes as many steps as its accesses need, each issuing an equal share of every stream.
    allow_slow: run line fidelity even when it is estimated to take long (`--force`).
    """

    fidelity: Fidelity = "fast"
    tiles_per_core: int = 1
    step_bytes: int | None = None
    allow_slow: bool = False

    def check(self, machine: Machine) -> None:
        """Raises ConfigError if these options cannot simulate `machine`."""
        if self.fidelity not in FIDELITIES:
            raise ConfigError(
                f"unknown fidelity {self.fidelity!r}; expected one of {', '.join(FIDELITIES)}"
            )
        if self.tiles_per_core < 1:
            raise ConfigError(f"tiles per core must be ≥ 1, got {self.tiles_per_core}")
        line = machine.llc.block_bytes
        if self.step_bytes is not None and self.step_bytes < line:
            raise ConfigError(
                f"step must be at least one cache line ({line} B), got {self.step_bytes} B"
            )

    def step(self) -> int:
        """The most bytes one step issues."""
        return DEFAULT_STEP_BYTES if self.step_bytes is None else self.step_bytes
