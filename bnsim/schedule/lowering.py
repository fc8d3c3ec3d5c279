"""The forward pass lowered layer by layer: each layer's kernels, tensors and parameters."""

from __future__ import annotations

import math
from typing import Any

from bnsim.graph import LayerKind, Network
from bnsim.graph.layer import (
    ChannelShuffle,
    Chunk,
    Conv2d,
    Layer,
    Linear,
    MaxPool2d,
)
from bnsim.graph.network import INPUT_NAME
from bnsim.schedule import (
    Axis,
    ElementType,
    Op,
    OpKind,
    Phase,
    Tensor,
    TensorRole,
)
from bnsim.schedule.draft import (
    FLOPS_PER_ELEMENT,
    LABELS,
    Draft,
    act,
    nc_space,
    nchw_space,
    nh_space,
)


class ForwardLowering:
    """Per-layer lowering rules of the forward pass, sharing the tensor bookkeeping of one draft
    (bnsim.schedule.training adds the backward pass's)."""

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
            self.kernel(f"{name}.fwd", Phase.FWD, op, nc_space(out_shape))
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
        self.kernel(f"{name}.fwd", Phase.FWD, op, nc_space(out_shape))

    def copy_forward(self, layer: Chunk | ChannelShuffle, x: str) -> None:
        """A chunk (its channel range, copied as a convolution's input) or a channel shuffle (all
        channels of some rows at a time: each output row gathers every input channel)."""
        shape = self.net.out_shape(layer.name)
        attrs: tuple[tuple[str, Any], ...]
        if isinstance(layer, Chunk):
            channels = layer.channel_range(self.net.in_shapes(layer.name)[0].c)
            kind, attrs, space = OpKind.CHUNK_FWD, (("channels", channels),), nchw_space(shape)
        else:
            kind, attrs, space = OpKind.SHUFFLE_FWD, (("groups", layer.groups),), nh_space(shape)
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
        self.kernel(f"{name}.fwd", Phase.FWD, op, nc_space(out_shape))

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
