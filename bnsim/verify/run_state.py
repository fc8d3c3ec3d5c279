"""The state of one execution of a schedule: its tensors, a tile's scratch, the partial sums of
reducing ops, and what a tile's op reads and writes (regions of tensors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bnsim.schedule import (
    ElementType,
    Op,
    Schedule,
)
from bnsim.schedule.footprint import (
    Region,
)

Array = NDArray[Any]


@dataclass
class RunState:
    """The tensors of one execution, and access to regions of them."""

    schedule: Schedule
    dtype: type[np.floating[Any]]
    dropout_seed: int
    store: dict[str, Array] = field(default_factory=dict)
    scratch: dict[str, Array] = field(default_factory=dict)
    partials: dict[tuple[int, str], Array] = field(default_factory=dict)

    def initialize(self, initial: Mapping[str, Array]) -> None:
        for name, tensor in self.schedule.tensors.items():
            if tensor.transient:
                continue
            if name in initial:
                self.store[name] = np.array(
                    initial[name], dtype=self._type(tensor.element), copy=True
                )
            else:
                self.store[name] = self._blank(tensor.shape, tensor.element)

    def _type(self, element: ElementType) -> Any:
        return {ElementType.UINT8: np.uint8, ElementType.INT64: np.int64}.get(element, self.dtype)

    def _blank(self, shape: tuple[int, ...], element: ElementType) -> Array:
        if element is ElementType.DATA:
            return np.full(shape, np.nan, dtype=self.dtype)
        return np.zeros(shape, dtype=self._type(element))

    # --- tensor access ---------------------------------------------------------------------------

    def array(self, name: str) -> Array:
        tensor = self.schedule.tensors[name]
        if not tensor.transient:
            return self.store[name]
        if name not in self.scratch:
            self.scratch[name] = self._blank(tensor.shape, tensor.element)
        return self.scratch[name]

    def read(self, name: str, region: Region, shape: tuple[int, ...] | None = None) -> Array:
        """A region (n, c, h bounds) of a 4-D tensor, viewed with `shape` first if given."""
        full = self.array(name)
        if shape is not None:
            full = full.reshape(shape)
        return full[region_index(region, full.ndim)]

    def write(self, name: str, region: Region, value: Array) -> None:
        """Store `value` into a region of a tensor (flattened views are reshaped to the region)."""
        target = self.array(name)[region_index(region, self.array(name).ndim)]
        target[...] = value.reshape(target.shape)

    def channels(self, name: str, region: Region) -> Array:
        start, stop = region.get("c", (0, self.array(name).shape[0]))
        return self.array(name)[start:stop]

    def add_partial(self, index: int, key: str, size: int, start: int, value: Array) -> None:
        partial = self.partials.setdefault((index, key), np.zeros(size, dtype=self.dtype))
        partial[start : start + value.shape[0]] += value

    def layer(self, op: Op) -> Any:
        return self.schedule.network.layer(op.layer)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.schedule.tensors[name].shape


def region_index(region: Region, ndim: int) -> tuple[slice, ...]:
    axes = ("n", "c", "h")[:ndim]
    return tuple(slice(*region[axis]) if axis in region else slice(None) for axis in axes)


# what runs one op on a region of a tile; what combines its partial sums at the kernel's barrier
Runner = Callable[[RunState, int, Op, Region], None]
Finalizer = Callable[[RunState, int, Op], None]
