"""Which elements a sampled BN statistics op reads: one rule for executor, trace and tests.

Batch sampling (BS) takes all C×H×W values of k = max(1, round(fraction·N)) samples; feature
sampling (FS) takes one spatial patch of about fraction·H·W pixels from every feature map of every
sample; both are drawn per layer from a seeded generator, so every interpreter sees the same
selection. Virtual-dataset normalization (VDN) pushes max(1, round(fraction·N)) synthetic samples
through the network instead (see bnsim.schemes.sampling). After Chen et al., IEEE TNNLS 2020.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bnsim.graph import TensorShape

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Method = Literal["batch", "feature", "virtual"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """A sampling rule: method, fraction of the data, seed."""

    method: Method
    fraction: float
    seed: int

    def virtual_batch(self, batch: int) -> int:
        """Number of virtual samples VDN pushes through the network for a mini-batch of `batch`."""
        return max(1, round(self.fraction * batch))


@dataclass(frozen=True, slots=True)
class Selection:
    """The elements one BN layer's statistics read: samples × a rows × cols patch, all channels."""

    samples: tuple[int, ...]
    rows: tuple[int, int]  # [start, stop)
    cols: tuple[int, int]

    def mask(self, shape: TensorShape) -> NDArray[np.bool_]:
        """A boolean mask of shape (N, 1, H, W), True on selected elements."""
        import numpy as np  # noqa: PLC0415 (numpy loads on first use)

        mask = np.zeros((shape.n, 1, shape.h, shape.w), dtype=bool)
        mask[list(self.samples), :, self.rows[0] : self.rows[1], self.cols[0] : self.cols[1]] = True
        return mask

    def elements_per_channel(self) -> int:
        """Selected elements of each channel (the m of the statistics)."""
        return len(self.samples) * (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])

    def touched_bytes(self, shape: TensorShape, element_bytes: int, line_bytes: int) -> int:
        """Bytes of the distinct cache lines an NCHW read of the selection touches.

        Each selected row of each feature map is a contiguous run; a run touches every line it
        overlaps, and a line shared by two runs (short rows) is counted once.

        >>> sel = Selection(samples=(0,), rows=(0, 2), cols=(0, 8))
        >>> sel.touched_bytes(TensorShape(1, 1, 2, 8), 4, 64)  # two 32 B rows share one line
        64
        """
        row_bytes, plane_bytes = shape.w * element_bytes, shape.h * shape.w * element_bytes
        first, last = self.cols[0] * element_bytes, self.cols[1] * element_bytes - 1
        lines, previous = 0, -1
        for n in self.samples:
            for c in range(shape.c):
                plane = (n * shape.c + c) * plane_bytes
                for row in range(*self.rows):
                    start_line = (plane + row * row_bytes + first) // line_bytes
                    end_line = (plane + row * row_bytes + last) // line_bytes
                    lines += end_line - max(start_line, previous + 1) + 1
                    previous = end_line
        return lines * line_bytes


def select(sampling: Sampling, layer: str, shape: TensorShape) -> Selection:
    """The elements of `layer`'s BN input (shape `shape`) that its statistics read.

    >>> select(Sampling("batch", 0.25, 0), "bn1", TensorShape(8, 4, 6, 6)).elements_per_channel()
    72
    >>> select(Sampling("feature", 0.25, 0), "bn1", TensorShape(8, 4, 6, 6)).elements_per_channel()
    72
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    rng = np.random.default_rng([sampling.seed, zlib.crc32(layer.encode())])
    if sampling.method == "batch":
        count = max(1, round(sampling.fraction * shape.n))
        samples = tuple(sorted(int(i) for i in rng.choice(shape.n, size=count, replace=False)))
        return Selection(samples=samples, rows=(0, shape.h), cols=(0, shape.w))
    if sampling.method == "feature":
        side = math.sqrt(sampling.fraction)
        height = min(shape.h, max(1, round(side * shape.h)))
        width = min(shape.w, max(1, round(side * shape.w)))
        row = int(rng.integers(0, shape.h - height + 1))
        col = int(rng.integers(0, shape.w - width + 1))
        return Selection(
            samples=tuple(range(shape.n)), rows=(row, row + height), cols=(col, col + width)
        )
    raise ValueError(f"method {sampling.method!r} selects no elements of the real batch")
