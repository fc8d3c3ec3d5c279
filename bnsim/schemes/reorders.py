"""Layout reorders around convolutions: the copies a library makes when a framework keeps tensors in
a layout the library's convolution kernels do not take (docs/frameworks.md).

PyTorch keeps activations NCHW and weights OIHW; oneDNN's training convolutions on AVX-512 run on
16-channel blocks (nChw16c, weights OIhw16i16o). Each call then reorders, as separate primitives
(PyTorch's `mkldnn_convolution` and its backward, through ideep's `reorder_if_differ_in`): before
the kernel every activation and weight it reads into a fresh blocked buffer, after it every
activation and weight gradient it writes back to the framework's layout. Nothing is cached across
calls, so backward-weight reorders the saved input and the output gradient again. The exception
is a first layer: with fewer than 16 input channels the forward kernel reads its NCHW input
directly, and with at most 3 so does the weight-gradient kernel (oneDNN's `is_1stconv`; seen in
PyTorch 2.13's ONEDNN_VERBOSE log, docs/frameworks.md). `add_reorders` inserts these copies into a
draft as REORDER kernels.
"""

from __future__ import annotations

from dataclasses import replace

from bnsim.graph.layer import Conv2d
from bnsim.schedule import (
    Axis,
    ElementType,
    Op,
    OpKind,
    Reorders,
    Tensor,
    TensorRole,
    memory_reads,
)
from bnsim.schedule.draft import Draft, DraftKernel

# oneDNN's kernels read a plain (nchw) input directly below this many input channels
PLAIN_INPUT_CHANNELS = {OpKind.CONV_FWD: 16, OpKind.CONV_BWD_WEIGHT: 4}
_CONVOLUTIONS = frozenset((OpKind.CONV_FWD, OpKind.CONV_BWD_DATA, OpKind.CONV_BWD_WEIGHT))
_ACTIVATION_ROLES = frozenset(
    (
        TensorRole.INPUT,
        TensorRole.ACTIVATION,
        TensorRole.STASHED_ACTIVATION,
        TensorRole.ACTIVATION_GRADIENT,
    )
)
_WEIGHT_ROLES = frozenset((TensorRole.WEIGHT, TensorRole.WEIGHT_GRADIENT))


def add_reorders(draft: Draft, reorders: Reorders) -> None:
    """Put a REORDER kernel before each convolution kernel for every operand it reads in a layout
    it does not take, and after it for every result, the kernel reading and writing the copies."""
    if not reorders:
        return
    for kernel in draft.kernels:
        main = kernel.main_op()
        if main.kind not in _CONVOLUTIONS:
            continue
        layer = draft.network.layer(main.layer)
        assert isinstance(layer, Conv2d)
        # oneDNN's first-layer kernels read a plain input: the main op's first operand in the
        # forward and weight-gradient passes (backward-data reads a gradient)
        plain_input = (
            main.reads[0]
            if layer.groups == 1
            and draft.tensors[main.reads[0]].shape[1] < PLAIN_INPUT_CHANNELS.get(main.kind, 0)
            else None
        )
        reads = {
            name: _copy(draft, kernel, name)
            for name in memory_reads(kernel.ops)
            if name != plain_input and _reordered(draft.tensors[name], reorders)
        }
        writes = {
            name: _copy(draft, kernel, name)
            for name in dict.fromkeys(name for op in kernel.ops for name in op.writes)
            if not draft.tensors[name].transient and _reordered(draft.tensors[name], reorders)
        }
        if not reads and not writes:
            continue
        draft.set_ops(kernel, tuple(_renamed(op, {**reads, **writes}) for op in kernel.ops))
        position = draft.kernels.index(kernel)
        before = tuple(_reorder(draft, kernel, name, copy) for name, copy in reads.items())
        after = tuple(_reorder(draft, kernel, copy, name) for name, copy in writes.items())
        draft.insert_kernels(position + 1, after)
        draft.insert_kernels(position, before)


def _reordered(tensor: Tensor, reorders: Reorders) -> bool:
    if tensor.transient or tensor.element is not ElementType.DATA or len(tensor.shape) != 4:
        return False
    if tensor.role in _ACTIVATION_ROLES:
        return reorders.activations
    return tensor.role in _WEIGHT_ROLES and reorders.weights


def _copy(draft: Draft, kernel: DraftKernel, name: str) -> str:
    """A copy of tensor `name` in the library's layout, made for `kernel` alone."""
    tensor = draft.tensors[name]
    return draft.add_tensor(
        replace(tensor, name=f"{name}@{kernel.name}", storage="", library_layout=True)
    )


def _renamed(op: Op, names: dict[str, str]) -> Op:
    return replace(
        op,
        reads=tuple(names.get(name, name) for name in op.reads),
        writes=tuple(names.get(name, name) for name in op.writes),
        reduces=tuple(names.get(name, name) for name in op.reduces),
    )


def _reorder(draft: Draft, kernel: DraftKernel, source: str, target: str) -> DraftKernel:
    """A one-op kernel copying `source` into `target` in the other layout."""
    n, c, h, _ = draft.tensors[target].shape
    op = Op(kind=OpKind.REORDER, layer=kernel.main_op().layer, reads=(source,), writes=(target,))
    # weights (n: output channels) are walked like activations: a copy has no other order
    space = (Axis("n", n), Axis("c", c), Axis("h", h))
    return DraftKernel(
        name=f"{kernel.name}.reorder:{target}", phase=kernel.phase, ops=(op,), space=space
    )
