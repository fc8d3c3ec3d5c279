"""Type stub of the compiled DRAM model (bnsim/sim/_dram.pyx)."""

from typing import Any

from numpy.typing import NDArray

def serve(
    device: Any,
    channels: int,
    controller: Any,
    arrival: NDArray[Any],
    source: NDArray[Any],
    channel: NDArray[Any],
    rank: NDArray[Any],
    bankgroup: NDArray[Any],
    bank: NDArray[Any],
    row: NDArray[Any],
    write: NDArray[Any],
) -> tuple[list[int], list[tuple[int, ...]]]: ...
