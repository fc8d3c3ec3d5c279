"""Turn a Schedule into timed steps with FLOPs and address ranges: layout, work split, accesses.

Every stored tensor gets a base address in one flat address space (`layout`); each kernel's work is
split over the cores as the machine's library splits it (`dataflow`); each core's boxes become
steps (`_tiles`), each listing, in op order, the byte ranges each op reads and writes (which part
of an operand: `regions`) tagged with its op and tensor, and the core cycles of its work (`costs`).
`tracing.Trace` ties them together, kernel by kernel, lazily; `options` says how finely.
"""

from __future__ import annotations

from bnsim.trace.layout import library_reorders
from bnsim.trace.options import DEFAULT_STEP_BYTES, FIDELITIES, Fidelity, SimOptions
from bnsim.trace.tracing import Trace
from bnsim.trace.work import BoxWork, Reduction, Source

__all__ = [
    "DEFAULT_STEP_BYTES",
    "FIDELITIES",
    "BoxWork",
    "Fidelity",
    "Reduction",
    "SimOptions",
    "Source",
    "Trace",
    "library_reorders",
]
