"""The memory system of a machine: its private caches, shared LLC and DRAM channels as one model.

`memory_system(machine, caches)` builds bnsim.sim._memory.MemorySystem (the model itself, compiled
from Cython) from a hardware config: the last private cache level, the LLC, the DRAM channels'
interleaving and the rates they sustain (bnsim.sim.dramrate), and the store policy; "range" caches
for fast fidelity, set-associative "line" caches for line fidelity.
"""

from __future__ import annotations

from typing import Literal

from bnsim.config.machine import Machine
from bnsim.errors import InfeasibleError
from bnsim.sim._memory import MemorySystem
from bnsim.sim.dramrate import channel_rates

CacheModel = Literal["range", "line"]

# per cached line at most: a tag, an owner-and-dirty word and an arrival step, plus its share of
# the set's header and padding (bnsim/sim/_memory.pyx, LineCache)
LINE_STATE_BYTES = 16
MAX_LINE_STATE_BYTES = 4 << 30


def memory_system(machine: Machine, caches: CacheModel = "range") -> MemorySystem:
    """The memory system of `machine`.

    `caches` is "range" (fast fidelity) or "line" (line fidelity).

    Raises:
        InfeasibleError: line caches whose state would not fit in this computer's memory.
    """
    if caches == "line":
        lines = (
            machine.cores.count * machine.private.size_bytes + machine.llc.size_bytes
        ) // machine.llc.block_bytes
        if lines * LINE_STATE_BYTES > MAX_LINE_STATE_BYTES:
            raise InfeasibleError(
                f"line fidelity would hold {lines:.3g} cache lines ({machine.name}: "
                f"{machine.cores.count} private caches and the LLC), about "
                f"{lines * LINE_STATE_BYTES / 2**30:.0f} GiB of cache state; use --fidelity fast "
                "(its caches hold byte ranges, not lines)"
            )
    return MemorySystem(
        cores=machine.cores.count,
        private_size_bytes=machine.private.size_bytes,
        llc_size_bytes=machine.llc.size_bytes,
        inclusive=machine.llc.inclusive,
        nontemporal=machine.compute.nontemporal_stores == "always",
        line=machine.llc.block_bytes,
        channels=machine.dram.channels,
        interleave=machine.dram.interleave_bytes(),
        rates=[rate / machine.cores.clock_hz for rate in channel_rates(machine)],
        latency_cycles=machine.dram.latency_s * machine.cores.clock_hz,
        caches=caches,
        private_ways=machine.private.ways,
        llc_ways=machine.llc.ways,
    )
