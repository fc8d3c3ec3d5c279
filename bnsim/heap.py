"""Keep the garbage collector out of a pass that allocates many small objects.

Building a schedule or simulating one allocates tens to hundreds of thousands of objects. Each
allocation burst triggers collections, and every full collection re-scans the whole heap (the
imported modules, the network, earlier schedules): a sixth of a fast run, half an analytic one, a
fifth of building DenseNet-121's schedules. `frozen_heap` moves what exists to the permanent
generation (`gc.freeze`) and pauses the collector for the duration of a pass: what a pass makes is
freed by reference counting (its boxes, streams and rows hold no cycles), and the few cycles it
leaves (a finished SimPy environment) are collected after it, when the frozen objects return to the
oldest generation and the collector runs again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_depth = 0  # nesting depth: only the outermost pass unfreezes


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Exempt the objects that exist now from garbage collection, and pause the collector, while
    the block runs."""
    global _depth  # noqa: PLW0603 (one counter per process, as the collector itself is)
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
