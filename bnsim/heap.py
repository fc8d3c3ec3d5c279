"""Keep the garbage collector off the existing heap while a pass allocates many small objects.

Building a schedule or simulating one allocates tens to hundreds of thousands of objects. Each
allocation burst triggers collections, and every full collection re-scans the whole heap (the
imported modules, the network, earlier schedules): a sixth of a fast run, half an analytic one, a
fifth of building DenseNet-121's schedules. `frozen_heap` moves what exists to the permanent
generation (`gc.freeze`) for the duration of a pass, so collections scan only what the pass makes;
nothing is left uncollected, because the frozen objects return to the oldest generation afterwards.
Imports nothing from bnsim.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_depth = 0  # nesting depth: only the outermost pass unfreezes


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Exempt the objects that exist now from garbage collection while the block runs."""
    global _depth  # noqa: PLW0603 (one counter per process, as the collector itself is)
    gc.freeze()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.unfreeze()
