"""Process pools that end at once and quietly on Ctrl-C (shared by runs, cross-checks and sweeps).

Workers ignore SIGINT, so that only the parent reacts to Ctrl-C (otherwise every worker prints its
own KeyboardInterrupt traceback); on KeyboardInterrupt in the parent the pool's pending tasks are
cancelled and its workers terminated, instead of waiting for the tasks in flight.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor of `workers` processes that Ctrl-C stops at once."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_interrupts)
    try:
        yield pool
    except BaseException:
        # the workers would otherwise finish their tasks first; a stored sweep point is already safe
        processes = list(getattr(pool, "_processes", {}).values())  # CPython's worker table
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    else:
        pool.shutdown(wait=True)
