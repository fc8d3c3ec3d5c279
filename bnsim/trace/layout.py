"""How a schedule's tensors lie in memory on a machine: the library's layout of activations
(nChw16c, nchw or nhwc), channel padding, base addresses in one flat address space (made once per
schedule and layout), and the layout copies the library makes around its convolutions.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import NamedTuple

from bnsim.config.machine import Machine
from bnsim.schedule import (
    FIXED_ELEMENT_BYTES,
    Reorders,
    Schedule,
    Tensor,
    TensorRole,
)
from bnsim.trace._tiles import (
    BLOCKED,
    CHANNEL_BLOCK,
    CHANNELS_LAST,
    PLAIN,
    Layout,
)

PAGE_BYTES = 4096


class MemoryLayout(NamedTuple):
    """A schedule's tensors in memory (read-only: Traces of one layout share it)."""

    base: Mapping[str, int]  # name → base address
    size: int  # bytes of them all
    stored: Mapping[str, int]  # name → bytes in memory (channel padding included)
    # name → (base address, bytes per element, shape, order): what `runs` needs
    info: Mapping[str, Layout]


# a layout follows from the schedule, the bytes of a data element and the activations' order in
# memory: made once per schedule and layout, as one schedule is simulated on many machines
_LAYOUTS: weakref.WeakKeyDictionary[Schedule, dict[tuple[int, int], MemoryLayout]] = (
    weakref.WeakKeyDictionary()
)


def library_reorders(machine: Machine) -> Reorders:
    """The layout copies `machine`'s library makes around its convolutions: what a schedule for
    it is built with (`build_schedule(..., reorders=library_reorders(machine))`)."""
    compute = machine.compute
    return Reorders.of(compute.library, compute.framework, compute.layout)


_ACTIVATION_ROLES = (
    TensorRole.ACTIVATION,
    TensorRole.STASHED_ACTIVATION,
    TensorRole.ACTIVATION_GRADIENT,
)


_WEIGHT_ROLES = frozenset((TensorRole.WEIGHT, TensorRole.WEIGHT_GRADIENT))


def _reorders_text(reorders: Reorders) -> str:
    copied = [name for name in ("activations", "weights") if getattr(reorders, name)]
    return f"reorders of {' and '.join(copied)}" if copied else "no layout reorders"


_ORDERS = {"nchw": PLAIN, "nChw16c": BLOCKED, "nhwc": CHANNELS_LAST}


def _padded(channels: int) -> int:
    return -(-channels // CHANNEL_BLOCK) * CHANNEL_BLOCK


def tensor_format(
    tensor: Tensor, data_bytes: int, order_of_activations: int
) -> tuple[int, int, int]:
    """(bytes per element, order in memory, bytes in memory) of `tensor`, its data elements of
    `data_bytes` and activations in `order_of_activations`.

    A copy in the library's layout (`library_layout`) is blocked: only oneDNN reorders."""
    shape = tensor.shape
    elements = math.prod(shape)
    fixed = FIXED_ELEMENT_BYTES.get(tensor.element)  # None: the machine's data type
    if fixed is not None:
        return fixed, PLAIN, elements * fixed
    element = data_bytes
    if len(shape) != 4 or tensor.role in _WEIGHT_ROLES:
        return element, PLAIN, elements * element
    if tensor.library_layout:
        order = BLOCKED
    elif tensor.role in _ACTIVATION_ROLES:
        order = order_of_activations
    elif tensor.role is TensorRole.INPUT and order_of_activations == CHANNELS_LAST:
        order = CHANNELS_LAST  # channels-last training converts the images too
    else:
        return element, PLAIN, elements * element
    if order == BLOCKED:
        return element, order, elements // shape[1] * _padded(shape[1]) * element
    return element, order, elements * element


def lay_out(schedule: Schedule, data_bytes: int, order: int, alignment: int) -> MemoryLayout:
    """Where every stored tensor lies (in order of creation), and what its ranges need."""
    base: dict[str, int] = {}
    stored: dict[str, int] = {}
    info: dict[str, Layout] = {}
    address = alignment
    for name, tensor in schedule.tensors.items():
        if tensor.transient:
            continue
        element, kept_order, size = tensor_format(tensor, data_bytes, order)
        stored[name] = size
        if tensor.storage:  # in place: the same bytes as the tensor it overwrites
            base[name] = base[tensor.storage]
            info[name] = (base[name], element, tensor.shape, kept_order)
            continue
        base[name] = address
        info[name] = (address, element, tensor.shape, kept_order)
        address += -(-size // alignment) * alignment
    return MemoryLayout(base, address, stored, info)
