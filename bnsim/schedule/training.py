"""Lower a forward Network to one training iteration, every layer its own kernel(s).

The iteration is: forward in network order, the loss, backward in reverse order (data gradient, then
weight gradient, per layer), then an SGD-with-momentum update of every parameter tensor. A tensor
read by several layers gets its gradient contributions summed by a `grad_accumulate` kernel;
residual adds and flatten views pass their gradient on without a kernel. Schemes rewrite the
resulting Draft (schemes/rewrite.py) and freeze it into a Schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from bnsim.graph import LayerKind, Network, TensorShape
from bnsim.graph.layer import (
    INPUT_GRADIENT_ACTIVATIONS,
    ChannelShuffle,
    Chunk,
    Conv2d,
    Layer,
    Linear,
    MaxPool2d,
)
from bnsim.graph.network import INPUT_NAME
from bnsim.schedule import (
    NO_REORDERS,
    Axis,
    ElementType,
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


def lower_training(network: Network, *, input_grad: bool = False) -> Draft:
    """The baseline draft of one training iteration: every layer its own kernel(s).

    BN statistics take two passes (mean, then centred variance), as Caffe's and MKL-DNN's reference
    kernels do; schemes change that. With `input_grad`, the first layers also compute the gradient
    with respect to the network input (verification compares it; training does not need it).
    """
    lowering = _Lowering(network, Draft(network), input_grad=input_grad)
    for layer in network.layers:
        lowering.forward(layer)
    for layer in reversed(network.layers):
        lowering.backward(layer)
    for layer in network.layers:
        lowering.update(layer)
    return lowering.draft


class _Lowering:
    """Per-layer lowering rules, sharing the tensor bookkeeping of one draft."""

    def __init__(
        self, network: Network, draft: Draft, *, input_grad: bool, prefix: str = ""
    ) -> None:
        self.net = network
        self.draft = draft
        self.prefix = (
            prefix  # names a second forward pass's activations apart (VDN's virtual batch)
        )
        self.tensor_of: dict[str, str] = {}  # layer → tensor holding its output (flatten aliases)
        self.contributions: dict[str, list[str]] = {name: [] for name in network.graph}
        # layer → its chunks' (channel range, output gradient), concatenated by chunk_backward
        self.chunk_gradients: dict[str, list[tuple[tuple[int, int], str]]] = {
            name: [] for name in network.graph
        }
        self.requires_grad = _requires_grad(network, input_grad)

    # --- helpers ---------------------------------------------------------------------------------

    def tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        role: TensorRole,
        layer: str,
        element: ElementType = ElementType.DATA,
    ) -> str:
        return self.draft.add_tensor(
            Tensor(name=name, shape=shape, role=role, layer=layer, element=element)
        )

    def activation(self, layer: Layer) -> str:
        shape = self.net.out_shape(layer.name)
        name = self.tensor(
            self.prefix + act(layer.name),
            (shape.n, shape.c, shape.h, shape.w),
            TensorRole.ACTIVATION,
            layer.name,
        )
        self.tensor_of[layer.name] = name
        return name

    def param(self, prefix: str, layer: Layer, shape: tuple[int, ...]) -> str:
        return self.tensor(f"{prefix}:{layer.name}", shape, TensorRole.WEIGHT, layer.name)

    def inputs(self, layer: Layer) -> tuple[str, ...]:
        return tuple(self.tensor_of[source] for source in layer.inputs)

    def kernel(self, name: str, phase: Phase, op: Op, space: tuple[Axis, ...]) -> None:
        self.draft.add_kernel(self.prefix + name, phase, op, space)

    # --- forward ---------------------------------------------------------------------------------

    def forward(self, layer: Layer) -> None:
        kind = layer.layer_kind
        name = layer.name
        if kind is LayerKind.INPUT:
            shape = self.net.out_shape(name)
            self.tensor_of[name] = self.tensor(
                self.prefix + act(name),
                (shape.n, shape.c, shape.h, shape.w),
                TensorRole.INPUT,
                name,
            )
            return
        if kind is LayerKind.FLATTEN:
            self.tensor_of[name] = self.tensor_of[layer.inputs[0]]
            return
        out_shape = self.net.out_shape(name)
        x = self.inputs(layer)
        if isinstance(layer, Conv2d):
            self.conv_forward(layer, x[0])
        elif kind is LayerKind.BATCHNORM2D:
            self.batchnorm_forward(layer, x[0])
        elif kind in (LayerKind.RELU, LayerKind.RELU6):
            self.elementwise(layer, OpKind.RELU_FWD, x, (self.activation(layer),), Phase.FWD)
        elif kind.category == "activation":
            self.elementwise(layer, OpKind.ACTIVATION_FWD, x, (self.activation(layer),), Phase.FWD)
        elif kind is LayerKind.MUL:
            self.elementwise(layer, OpKind.SCALE_FWD, x, (self.activation(layer),), Phase.FWD)
        elif kind.category == "pool":
            self.pool_forward(layer, x[0])
        elif kind is LayerKind.CONCAT:
            op = Op(kind=OpKind.CONCAT_FWD, layer=name, reads=x, writes=(self.activation(layer),))
            self.kernel(f"{name}.fwd", Phase.FWD, op, _nc_space(out_shape))
        elif kind is LayerKind.ADD:
            flops = (len(x) - 1) * out_shape.num_elements()
            op = Op(
                kind=OpKind.ADD_FWD,
                layer=name,
                reads=x,
                writes=(self.activation(layer),),
                flops=flops,
            )
            self.kernel(f"{name}.fwd", Phase.FWD, op, nchw_space(out_shape))
        elif isinstance(layer, Linear):
            self.linear_forward(layer, x[0])
        elif kind in (LayerKind.DROPOUT, LayerKind.STOCHASTIC_DEPTH):
            self.masked_forward(layer, x)
        elif isinstance(layer, Chunk | ChannelShuffle):
            self.copy_forward(layer, x[0])
        elif kind is LayerKind.SOFTMAX_CROSS_ENTROPY:
            self.loss_forward(layer, x[0])
        else:  # pragma: no cover - every LayerKind is handled above
            raise AssertionError(f"no forward lowering for {kind}")

    def conv_forward(self, layer: Conv2d, x: str) -> None:
        name = layer.name
        in_shapes, out_shape = self.net.in_shapes(name), self.net.out_shape(name)
        params = [
            self.param(
                "w", layer, (layer.out_channels, in_shapes[0].c // layer.groups, *layer.kernel)
            )
        ]
        if layer.bias:
            params.append(self.param("b", layer, (layer.out_channels,)))
        macs = layer.macs(in_shapes, out_shape)
        flops = 2 * macs + (out_shape.num_elements() if layer.bias else 0)
        op = Op(
            kind=OpKind.CONV_FWD,
            layer=name,
            reads=(x, *params),
            writes=(self.activation(layer),),
            flops=flops,
        )
        self.kernel(f"{name}.fwd", Phase.FWD, op, nchw_space(out_shape))

    def pool_forward(self, layer: Layer, x: str) -> None:
        """Max pooling keeps the index of each window's maximum for backward; averages do not."""
        name = layer.name
        out_shape = self.net.out_shape(name)
        writes: tuple[str, ...]
        if isinstance(layer, MaxPool2d):
            index = self.tensor(
                f"{self.prefix}index:{name}",
                (out_shape.n, out_shape.c, out_shape.h, out_shape.w),
                TensorRole.WORKSPACE,
                name,
                ElementType.UINT8,
            )
            writes = (self.activation(layer), index)
            flops = out_shape.num_elements() * math.prod(layer.kernel)
        else:
            writes = (self.activation(layer),)
            flops = self.net.in_shapes(name)[0].num_elements() + out_shape.num_elements()
        op = Op(kind=OpKind.POOL_FWD, layer=name, reads=(x,), writes=writes, flops=flops)
        self.kernel(f"{name}.fwd", Phase.FWD, op, _nc_space(out_shape))

    def copy_forward(self, layer: Chunk | ChannelShuffle, x: str) -> None:
        """A chunk (its channel range, copied as a convolution's input) or a channel shuffle (all
        channels of some rows at a time: each output row gathers every input channel)."""
        shape = self.net.out_shape(layer.name)
        attrs: tuple[tuple[str, Any], ...]
        if isinstance(layer, Chunk):
            channels = layer.channel_range(self.net.in_shapes(layer.name)[0].c)
            kind, attrs, space = OpKind.CHUNK_FWD, (("channels", channels),), nchw_space(shape)
        else:
            kind, attrs, space = OpKind.SHUFFLE_FWD, (("groups", layer.groups),), _nh_space(shape)
        writes = (self.activation(layer),)
        op = Op(kind=kind, layer=layer.name, reads=(x,), writes=writes, attrs=attrs)
        self.kernel(f"{layer.name}.fwd", Phase.FWD, op, space)

    def masked_forward(self, layer: Layer, x: tuple[str, ...]) -> None:
        """Dropout (a byte per element) or stochastic depth (one value per sample, in the data
        type, as torchvision keeps it): the output and the mask backward reads."""
        shape = self.net.out_shape(layer.name)
        name = f"{self.prefix}mask:{layer.name}"
        if layer.layer_kind is LayerKind.DROPOUT:
            dims, element, kind = (
                (shape.n, shape.c, shape.h, shape.w),
                ElementType.UINT8,
                OpKind.DROPOUT_FWD,
            )
        else:
            dims, element, kind = (shape.n, 1, 1, 1), ElementType.DATA, OpKind.STOCHASTIC_DEPTH_FWD
        mask = self.tensor(name, dims, TensorRole.MASK, layer.name, element)
        self.elementwise(layer, kind, x, (self.activation(layer), mask), Phase.FWD)

    def elementwise(
        self,
        layer: Layer,
        kind: OpKind,
        reads: tuple[str, ...],
        writes: tuple[str, ...],
        phase: Phase,
        suffix: str = "",
    ) -> None:
        shape = self.net.out_shape(layer.name)
        op = Op(
            kind=kind,
            layer=layer.name,
            reads=reads,
            writes=writes,
            flops=FLOPS_PER_ELEMENT[kind] * shape.num_elements(),
        )
        self.kernel(f"{layer.name}.{phase.value}{suffix}", phase, op, nchw_space(shape))

    def batchnorm_forward(self, layer: Layer, x: str) -> None:
        name = layer.name
        shape = self.net.out_shape(name)
        channels = (shape.c,)
        mean, var, running_mean, running_var = (
            self.tensor(f"{stat}:{name}", channels, TensorRole.BN_STATISTICS, name)
            for stat in ("mean", "var", "running_mean", "running_var")
        )
        gamma, beta = self.param("gamma", layer, channels), self.param("beta", layer, channels)
        elements = shape.num_elements()
        space = nchw_space(shape)
        mean_op = Op(
            kind=OpKind.BN_STATS,
            layer=name,
            reads=(x,),
            writes=(mean,),
            reduces=(mean,),
            flops=FLOPS_PER_ELEMENT["bn_stats_mean"] * elements,
            attrs=(("part", "mean"),),
        )
        running = (running_mean, running_var)
        var_op = Op(
            kind=OpKind.BN_STATS,
            layer=name,
            reads=(x, mean, *running),
            writes=(var, *running),
            reduces=(var, *running),
            flops=FLOPS_PER_ELEMENT["bn_stats_var"] * elements,
            attrs=(("part", "var"),),
        )
        self.kernel(f"{name}.fwd.mean", Phase.FWD, mean_op, space)
        self.kernel(f"{name}.fwd.var", Phase.FWD, var_op, space)
        apply_op = Op(
            kind=OpKind.BN_APPLY,
            layer=name,
            reads=(x, mean, var, gamma, beta),
            writes=(self.activation(layer),),
            flops=FLOPS_PER_ELEMENT[OpKind.BN_APPLY] * elements,
        )
        self.kernel(f"{name}.fwd.apply", Phase.FWD, apply_op, space)

    def linear_forward(self, layer: Linear, x: str) -> None:
        name = layer.name
        in_features = self.net.in_shapes(name)[0].c
        out_shape = self.net.out_shape(name)
        params = [self.param("w", layer, (layer.out_features, in_features))]
        if layer.bias:
            params.append(self.param("b", layer, (layer.out_features,)))
        flops = 2 * out_shape.n * in_features * layer.out_features + (
            out_shape.num_elements() if layer.bias else 0
        )
        op = Op(
            kind=OpKind.FC_FWD,
            layer=name,
            reads=(x, *params),
            writes=(self.activation(layer),),
            flops=flops,
        )
        self.kernel(f"{name}.fwd", Phase.FWD, op, _nc_space(out_shape))

    def loss_forward(self, layer: Layer, logits: str) -> None:
        name = layer.name
        shape = self.net.in_shapes(name)[0]
        labels = self.tensor(LABELS, (shape.n,), TensorRole.INPUT, INPUT_NAME, ElementType.INT64)
        loss = self.tensor(f"loss:{name}", (1,), TensorRole.ACTIVATION, name)
        log_probs = self.tensor(f"logp:{name}", (shape.n, shape.c), TensorRole.WORKSPACE, name)
        self.tensor_of[name] = loss
        op = Op(
            kind=OpKind.LOSS_FWD,
            layer=name,
            reads=(logits, labels),
            writes=(loss, log_probs),
            reduces=(loss,),
            flops=FLOPS_PER_ELEMENT["loss_fwd_per_logit"] * shape.n * shape.c,
        )
        self.kernel(f"{name}.fwd", Phase.FWD, op, (Axis("n", shape.n),))

    # --- backward --------------------------------------------------------------------------------

    def contribution(self, source: str, consumer: str) -> str:
        """Tensor for `consumer`'s gradient contribution to `source`'s output; registers it."""
        single = len(self.net.consumers(source)) == 1
        name = grad(source) if single else f"grad:{source}@{consumer}"
        shape = self.net.out_shape(source)
        self.tensor(
            name, (shape.n, shape.c, shape.h, shape.w), TensorRole.ACTIVATION_GRADIENT, source
        )
        self.contributions[source].append(name)
        return name

    def output_gradient(self, layer: Layer) -> str | None:
        """The summed gradient of `layer`'s output, accumulating several contributions if needed."""
        if self.chunk_gradients[layer.name]:
            self.chunk_backward(layer)
        parts = self.contributions[layer.name]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        shape = self.net.out_shape(layer.name)
        total = self.tensor(
            grad(layer.name),
            (shape.n, shape.c, shape.h, shape.w),
            TensorRole.ACTIVATION_GRADIENT,
            layer.name,
        )
        op = Op(
            kind=OpKind.GRAD_ACCUMULATE,
            layer=layer.name,
            reads=tuple(parts),
            writes=(total,),
            flops=(len(parts) - 1) * shape.num_elements(),
        )
        self.kernel(f"{layer.name}.bwd_data.accumulate", Phase.BWD_DATA, op, nchw_space(shape))
        return total

    def copy_backward(self, layer: Chunk | ChannelShuffle, g: str) -> None:
        """A chunk's gradient waits for its siblings' (chunk_backward); a shuffle's is undone."""
        name = layer.name
        if isinstance(layer, Chunk):
            channels = layer.channel_range(self.net.in_shapes(name)[0].c)
            self.chunk_gradients[layer.inputs[0]].append((channels, g))
            return
        dx = self.contribution(layer.inputs[0], name)
        attrs = (("groups", layer.groups),)
        op = Op(kind=OpKind.SHUFFLE_BWD, layer=name, reads=(g,), writes=(dx,), attrs=attrs)
        self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, _nh_space(self.net.out_shape(name)))

    def chunk_backward(self, layer: Layer) -> None:
        """The gradients of `layer`'s chunks concatenated into one contribution to its gradient, as
        autograd's split backward does (channels no chunk's gradient covers are zero)."""
        parts = sorted(self.chunk_gradients[layer.name])
        dx = self.contribution(layer.name, "chunks")
        op = Op(
            kind=OpKind.CHUNK_BWD,
            layer=layer.name,
            reads=tuple(gradient for _, gradient in parts),
            writes=(dx,),
            attrs=(("channels", tuple(channels for channels, _ in parts)),),
        )
        space = nchw_space(self.net.out_shape(layer.name))
        self.kernel(f"{layer.name}.bwd_data.chunks", Phase.BWD_DATA, op, space)

    def backward(self, layer: Layer) -> None:
        kind = layer.layer_kind
        name = layer.name
        if kind is LayerKind.INPUT:
            return
        if kind is LayerKind.SOFTMAX_CROSS_ENTROPY:
            self.loss_backward(layer)
            return
        g = self.output_gradient(layer)
        if g is None:
            return  # nothing downstream needs a gradient (no loss reachable)
        needs = [self.requires_grad[source] for source in layer.inputs]
        x = self.inputs(layer)
        if kind in (LayerKind.ADD, LayerKind.FLATTEN):
            for source, wanted in zip(layer.inputs, needs, strict=True):
                if wanted:
                    self.contributions[source].append(g)  # the same gradient, no kernel
            return
        if isinstance(layer, Conv2d | Linear):
            self.matrix_backward(layer, g, x[0], needs[0])
            return
        if kind is LayerKind.BATCHNORM2D:  # its scale and shift need gradients in any case
            self.batchnorm_backward(layer, g, x[0], input_gradient=needs[0])
            return
        if not any(needs):
            return
        if kind in (LayerKind.RELU, LayerKind.RELU6):
            dx = self.contribution(layer.inputs[0], name)
            self.elementwise(layer, OpKind.RELU_BWD, (g, act(name)), (dx,), Phase.BWD_DATA)
        elif kind.category == "activation":
            dx = self.contribution(layer.inputs[0], name)
            saved = x[0] if kind.value in INPUT_GRADIENT_ACTIVATIONS else act(name)
            self.elementwise(layer, OpKind.ACTIVATION_BWD, (g, saved), (dx,), Phase.BWD_DATA)
        elif kind is LayerKind.MUL:
            self.scale_backward(layer, g, x, needs)
        elif kind is LayerKind.DROPOUT:
            dx = self.contribution(layer.inputs[0], name)
            self.elementwise(layer, OpKind.DROPOUT_BWD, (g, f"mask:{name}"), (dx,), Phase.BWD_DATA)
        elif kind is LayerKind.STOCHASTIC_DEPTH:
            dx = self.contribution(layer.inputs[0], name)
            keep = (g, f"mask:{name}")
            self.elementwise(layer, OpKind.STOCHASTIC_DEPTH_BWD, keep, (dx,), Phase.BWD_DATA)
        elif isinstance(layer, Chunk | ChannelShuffle):
            self.copy_backward(layer, g)
        elif kind in (
            LayerKind.MAXPOOL,
            LayerKind.AVGPOOL,
            LayerKind.ADAPTIVE_AVGPOOL,
            LayerKind.GLOBAL_AVGPOOL,
        ):
            dx = self.contribution(layer.inputs[0], name)
            reads = (g, f"index:{name}") if kind is LayerKind.MAXPOOL else (g,)
            in_shape = self.net.in_shapes(name)[0]
            op = Op(
                kind=OpKind.POOL_BWD,
                layer=name,
                reads=reads,
                writes=(dx,),
                flops=self.net.out_shape(name).num_elements(),
            )
            self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, _nc_space(in_shape))
        elif kind is LayerKind.CONCAT:
            slices = tuple(index for index, need in enumerate(needs) if need)
            parts = tuple(self.contribution(layer.inputs[index], name) for index in slices)
            op = Op(
                kind=OpKind.CONCAT_BWD,
                layer=name,
                reads=(g,),
                writes=parts,
                attrs=(("slices", slices),),
            )
            self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, _nc_space(self.net.out_shape(name)))
        else:  # pragma: no cover
            raise AssertionError(f"no backward lowering for {kind}")

    def matrix_backward(self, layer: Conv2d | Linear, g: str, x: str, needs_data: bool) -> None:
        name = layer.name
        conv = isinstance(layer, Conv2d)
        in_shapes = self.net.in_shapes(name)
        out_shape = self.net.out_shape(name)
        matrix_flops = 2 * layer.macs(in_shapes, out_shape)
        w = f"w:{name}"
        if needs_data:
            dx = self.contribution(layer.inputs[0], name)
            op = Op(
                kind=OpKind.CONV_BWD_DATA if conv else OpKind.FC_BWD_DATA,
                layer=name,
                reads=(g, w),
                writes=(dx,),
                flops=matrix_flops,
            )
            space = nchw_space(in_shapes[0]) if conv else _nc_space(in_shapes[0])
            self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, space)
        grads = [
            self.tensor(f"dw:{name}", self.draft.tensors[w].shape, TensorRole.WEIGHT_GRADIENT, name)
        ]
        bias_flops = 0
        if layer.bias:
            grads.append(
                self.tensor(
                    f"db:{name}",
                    self.draft.tensors[f"b:{name}"].shape,
                    TensorRole.WEIGHT_GRADIENT,
                    name,
                )
            )
            bias_flops = out_shape.num_elements()
        op = Op(
            kind=OpKind.CONV_BWD_WEIGHT if conv else OpKind.FC_BWD_WEIGHT,
            layer=name,
            reads=(x, g),
            writes=tuple(grads),
            reduces=tuple(grads),
            flops=matrix_flops + bias_flops,
        )
        self.kernel(
            f"{name}.bwd_weight",
            Phase.BWD_WEIGHT,
            op,
            # output channels outermost: each thread owns whole channel blocks of the weight
            # gradient, so partial sums cross threads only where a block's samples (or, for a
            # convolution, output rows) are split
            (Axis("c", out_shape.c), Axis("n", out_shape.n))
            + ((Axis("h", out_shape.h),) if conv else ()),
        )

    def batchnorm_backward(self, layer: Layer, g: str, x: str, *, input_gradient: bool) -> None:
        """dgamma and dbeta (the reduce kernel), and dx (the apply kernel) if `input_gradient`."""
        name = layer.name
        shape = self.net.out_shape(name)
        channels = (shape.c,)
        dgamma = self.tensor(f"dgamma:{name}", channels, TensorRole.WEIGHT_GRADIENT, name)
        dbeta = self.tensor(f"dbeta:{name}", channels, TensorRole.WEIGHT_GRADIENT, name)
        mean, var = f"mean:{name}", f"var:{name}"
        elements = shape.num_elements()
        reduce_op = Op(
            kind=OpKind.BN_GRAD_REDUCE,
            layer=name,
            reads=(g, x, mean, var),
            writes=(dgamma, dbeta),
            reduces=(dgamma, dbeta),
            flops=FLOPS_PER_ELEMENT[OpKind.BN_GRAD_REDUCE] * elements,
        )
        self.kernel(f"{name}.bwd_data.reduce", Phase.BWD_DATA, reduce_op, nchw_space(shape))
        if not input_gradient:
            return
        dx = self.contribution(layer.inputs[0], name)
        apply_op = Op(
            kind=OpKind.BN_GRAD_APPLY,
            layer=name,
            reads=(g, x, mean, var, f"gamma:{name}", dgamma, dbeta),
            writes=(dx,),
            flops=FLOPS_PER_ELEMENT[OpKind.BN_GRAD_APPLY] * elements,
        )
        self.kernel(f"{name}.bwd_data.apply", Phase.BWD_DATA, apply_op, nchw_space(shape))

    def scale_backward(self, layer: Layer, g: str, x: tuple[str, ...], needs: list[bool]) -> None:
        """dx = dy·s over the map; ds = Σ dy·x per sample and channel, a kernel over (n, c)."""
        name = layer.name
        shape = self.net.out_shape(name)
        if needs[0]:
            dx = self.contribution(layer.inputs[0], name)
            self.elementwise(layer, OpKind.SCALE_BWD, (g, x[1]), (dx,), Phase.BWD_DATA)
        if needs[1]:
            ds = self.contribution(layer.inputs[1], name)
            op = Op(
                kind=OpKind.SCALE_GRAD,
                layer=name,
                reads=(g, x[0]),
                writes=(ds,),
                flops=FLOPS_PER_ELEMENT[OpKind.SCALE_GRAD] * shape.num_elements(),
            )
            self.kernel(f"{name}.bwd_data.scale", Phase.BWD_DATA, op, _nc_space(shape))

    def loss_backward(self, layer: Layer) -> None:
        name = layer.name
        source = layer.inputs[0]
        shape = self.net.in_shapes(name)[0]
        dlogits = self.contribution(source, name)
        op = Op(
            kind=OpKind.LOSS_BWD,
            layer=name,
            reads=(f"logp:{name}", LABELS),
            writes=(dlogits,),
            flops=FLOPS_PER_ELEMENT["loss_bwd_per_logit"] * shape.n * shape.c,
        )
        self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, (Axis("n", shape.n),))

    # --- update ----------------------------------------------------------------------------------

    def update(self, layer: Layer) -> None:
        for prefix, grad_prefix in (
            ("w", "dw"),
            ("b", "db"),
            ("gamma", "dgamma"),
            ("beta", "dbeta"),
        ):
            param = f"{prefix}:{layer.name}"
            if param not in self.draft.tensors:
                continue
            tensor = self.draft.tensors[param]
            velocity = self.tensor(
                f"v:{param}", tensor.shape, TensorRole.OPTIMIZER_STATE, layer.name
            )
            op = Op(
                kind=OpKind.SGD_UPDATE,
                layer=layer.name,
                reads=(param, f"{grad_prefix}:{layer.name}", velocity),
                writes=(param, velocity),
                flops=FLOPS_PER_ELEMENT[OpKind.SGD_UPDATE] * tensor.num_elements(),
                attrs=SGD_DEFAULTS,
            )
            self.kernel(
                f"{layer.name}.update.{prefix}",
                Phase.UPDATE,
                op,
                (Axis("e", tensor.num_elements()),),
            )


def lower_forward(network: Network, layers: set[str], *, prefix: str) -> Draft:
    """A forward-only draft of `layers` (a set closed under inputs), names prefixed by `prefix`.

    Parameters and BN statistics keep their names, so the pass shares them with the main iteration
    (VDN's virtual batch computes the statistics the real batch then uses).
    """
    lowering = _Lowering(network, Draft(network), input_grad=False, prefix=prefix)
    for layer in network.layers:
        if layer.name in layers:
            lowering.forward(layer)
    return lowering.draft


def _nh_space(shape: TensorShape) -> tuple[Axis, ...]:
    return (Axis("n", shape.n), Axis("h", shape.h))


def _nc_space(shape: TensorShape) -> tuple[Axis, ...]:
    return (Axis("n", shape.n), Axis("c", shape.c))


def _requires_grad(network: Network, input_grad: bool) -> dict[str, bool]:
    """Whether each layer's output needs a gradient: parameters upstream, or the input itself."""
    needs: dict[str, bool] = {}
    for layer in network.layers:
        if layer.layer_kind is LayerKind.INPUT:
            needs[layer.name] = input_grad
        else:
            has_params = layer.param_count(network.in_shapes(layer.name)) > 0
            needs[layer.name] = has_params or any(needs[source] for source in layer.inputs)
    return needs
