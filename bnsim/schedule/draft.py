"""A Draft: a training iteration being built and rewritten, kernels in order, tensors by name;
`freeze` makes it a Schedule. Names of tensors, iteration spaces and op costs the lowering and
every scheme share."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bnsim.graph import Network, TensorShape
from bnsim.schedule import (
    NO_REORDERS,
    Axis,
    Kernel,
    Op,
    OpKind,
    Phase,
    Placement,
    Reorders,
    Schedule,
    Tensor,
    TensorRole,
    check_schedule,
)

LABELS = "labels"


SGD_DEFAULTS = (
    ("lr", 0.1),
    ("momentum", 0.9),
    ("weight_decay", 1e-4),
)  # ImageNet recipes (He et al.)


# FLOPs per element of the element-wise ops (an FMA counts 2): the conventions of docs/schemes.md.
FLOPS_PER_ELEMENT = {
    "bn_stats_mean": 1,  # Σx
    "bn_stats_var": 3,  # Σ(x-μ)²: subtract, FMA
    "bn_stats_both": 3,  # Σx, Σx²: add, FMA
    OpKind.BN_APPLY: 2,  # x·scale + shift
    OpKind.BN_GRAD_REDUCE: 4,  # Σdy; Σdy·(x-μ): subtract, FMA
    OpKind.BN_GRAD_APPLY: 4,  # k1·dy + k2·x + k3: two FMAs
    OpKind.RELU_FWD: 1,
    OpKind.RELU_BWD: 1,
    OpKind.ACTIVATION_FWD: 4,  # exp (or a clamp), add, reciprocal or divide, multiply
    OpKind.ACTIVATION_BWD: 5,
    OpKind.SCALE_FWD: 1,
    OpKind.SCALE_BWD: 1,
    OpKind.SCALE_GRAD: 2,  # Σ dy·x: FMA
    OpKind.DROPOUT_FWD: 1,
    OpKind.DROPOUT_BWD: 1,
    OpKind.STOCHASTIC_DEPTH_FWD: 1,
    OpKind.STOCHASTIC_DEPTH_BWD: 1,
    OpKind.SGD_UPDATE: 6,  # d = g + λw; v = μv + d; w -= lr·v: three FMAs
    "loss_fwd_per_logit": 5,
    "loss_bwd_per_logit": 2,
}


@dataclass(eq=False)  # identity: drafts are removed from lists by identity
class DraftKernel:
    """A kernel under construction; schemes move ops between draft kernels (through its Draft)."""

    name: str
    phase: Phase
    ops: tuple[Op, ...]  # replaced only by Draft.set_ops, which keeps the Draft's index right
    space: tuple[Axis, ...]

    def main_op(self) -> Op:
        """The op that defines the iteration space."""
        return next(op for op in self.ops if op.placement is Placement.MAIN)


class Draft:
    """A mutable schedule: tensors and kernels in order.

    Schemes change kernels only through `add_kernel`, `remove_kernel`, `insert_kernels` and
    `set_ops`, which keep an index from (op kind, layer) to the kernels holding such ops, so that
    `find` does not scan the whole draft.
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        self.tensors: dict[str, Tensor] = {}
        self._kernels: list[DraftKernel] = []
        self._holders: dict[tuple[OpKind, str], list[DraftKernel]] = {}

    @property
    def kernels(self) -> tuple[DraftKernel, ...]:
        """The kernels, in order."""
        return tuple(self._kernels)

    def add_tensor(self, tensor: Tensor) -> str:
        """Register a tensor (idempotent for an identical one); returns its name."""
        existing = self.tensors.get(tensor.name)
        assert existing is None or existing == tensor, f"tensor {tensor.name} defined twice"
        self.tensors[tensor.name] = tensor
        return tensor.name

    def add_kernel(self, name: str, phase: Phase, op: Op, space: tuple[Axis, ...]) -> DraftKernel:
        """Append a one-op kernel."""
        kernel = DraftKernel(name=name, phase=phase, ops=(op,), space=space)
        self._kernels.append(kernel)
        self._index(kernel)
        return kernel

    def remove_kernel(self, kernel: DraftKernel) -> None:
        """Drop a kernel (its ops go with it)."""
        self._kernels.remove(kernel)
        self._unindex(kernel)

    def insert_kernels(self, position: int, kernels: tuple[DraftKernel, ...]) -> None:
        """Insert kernels (of another draft) before `position`."""
        self._kernels[position:position] = kernels
        for kernel in kernels:
            self._index(kernel)

    def set_ops(self, kernel: DraftKernel, ops: tuple[Op, ...]) -> None:
        """Replace a kernel's ops."""
        self._unindex(kernel)
        kernel.ops = ops
        self._index(kernel)

    def find(self, kind: OpKind, layer: str, **attrs: Any) -> DraftKernel:
        """The first kernel holding an op of `kind` for `layer` (with the given attrs).

        Raises:
            KeyError: no such op.
        """
        holders = [
            kernel
            for kernel in self._holders.get((kind, layer), ())
            if any(
                op.kind is kind
                and op.layer == layer
                and all(op.attr(key) == value for key, value in attrs.items())
                for op in kernel.ops
            )
        ]
        if not holders:
            raise KeyError(f"no {kind} op for layer {layer} {attrs or ''}")
        if len(holders) == 1:
            return holders[0]
        return min(holders, key=self._kernels.index)

    def _index(self, kernel: DraftKernel) -> None:
        for key in {(op.kind, op.layer) for op in kernel.ops}:
            self._holders.setdefault(key, []).append(kernel)

    def _unindex(self, kernel: DraftKernel) -> None:
        for key in {(op.kind, op.layer) for op in kernel.ops}:
            self._holders[key].remove(kernel)

    def freeze(
        self, scheme: str, options: tuple[tuple[str, Any], ...], reorders: Reorders = NO_REORDERS
    ) -> Schedule:
        """The immutable, checked Schedule, with stashed activations marked.

        Raises:
            SimulationError: the draft is not a legal schedule.
        """
        backward_reads = {
            name
            for kernel in self.kernels
            if kernel.phase is not Phase.FWD
            for name in (n for op in kernel.ops for n in op.reads)
        }
        tensors = {
            name: replace(tensor, role=TensorRole.STASHED_ACTIVATION)
            if tensor.role is TensorRole.ACTIVATION and name in backward_reads
            else tensor
            for name, tensor in self.tensors.items()
        }
        schedule = Schedule(
            network=self.network,
            scheme=scheme,
            options=options,
            kernels=tuple(
                Kernel(name=k.name, phase=k.phase, ops=k.ops, space=k.space) for k in self.kernels
            ),
            tensors=tensors,
            reorders=reorders,
        )
        check_schedule(schedule)
        return schedule


def act(layer: str) -> str:
    """Name of a layer's forward output tensor."""
    return f"act:{layer}"


def grad(layer: str) -> str:
    """Name of the (summed) gradient with respect to a layer's output."""
    return f"grad:{layer}"


def nchw_space(shape: TensorShape) -> tuple[Axis, ...]:
    """Iteration space over samples, channels and rows of an NCHW tensor."""
    return (Axis("n", shape.n), Axis("c", shape.c), Axis("h", shape.h))


def nh_space(shape: TensorShape) -> tuple[Axis, ...]:
    return (Axis("n", shape.n), Axis("h", shape.h))


def nc_space(shape: TensorShape) -> tuple[Axis, ...]:
    return (Axis("n", shape.n), Axis("c", shape.c))
