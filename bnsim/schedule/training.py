"""Lower a forward Network to one training iteration, every layer its own kernel(s).

The iteration is: forward in network order, the loss, backward in reverse order (data gradient, then
weight gradient, per layer), then an SGD-with-momentum update of every parameter tensor. A tensor
read by several layers gets its gradient contributions summed by a `grad_accumulate` kernel;
residual adds and flatten views pass their gradient on without a kernel. Schemes rewrite the
resulting Draft (schemes/rewrite.py) and freeze it into a Schedule.
"""

from __future__ import annotations

from bnsim.graph import LayerKind, Network
from bnsim.graph.layer import (
    INPUT_GRADIENT_ACTIVATIONS,
    ChannelShuffle,
    Chunk,
    Conv2d,
    Layer,
    Linear,
)
from bnsim.schedule import (
    Axis,
    Op,
    OpKind,
    Phase,
    TensorRole,
)
from bnsim.schedule.draft import (
    FLOPS_PER_ELEMENT,
    LABELS,
    SGD_DEFAULTS,
    Draft,
    act,
    grad,
    nc_space,
    nchw_space,
    nh_space,
)
from bnsim.schedule.lowering import ForwardLowering


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


class _Lowering(ForwardLowering):
    """The forward rules and the backward pass's: gradients, their contributions, the update."""

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
        self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, nh_space(self.net.out_shape(name)))

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
            self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, nc_space(in_shape))
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
            self.kernel(f"{name}.bwd_data", Phase.BWD_DATA, op, nc_space(self.net.out_shape(name)))
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
            space = nchw_space(in_shapes[0]) if conv else nc_space(in_shapes[0])
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
            self.kernel(f"{name}.bwd_data.scale", Phase.BWD_DATA, op, nc_space(shape))

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
