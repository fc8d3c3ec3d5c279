"""Draft rewrites that schemes compose: fuse kernels, make tensors transient, find BN chains.

A scheme is a sequence of these rewrites on the baseline draft; `Draft.freeze` then proves the
result legal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bnsim.graph import LayerKind, Network
from bnsim.graph.layer import Conv2d
from bnsim.schedule import Op, OpKind, Placement, TensorRole
from bnsim.schedule.draft import Draft, DraftKernel


def fuse(draft: Draft, host: DraftKernel, guest: DraftKernel, placement: Placement) -> None:
    """Move all ops of `guest` into `host`: prologue (before its main op) or epilogue (at the end).

    The host keeps its position, name and iteration space; the guest kernel disappears.
    """
    assert host is not guest, f"cannot fuse kernel {host.name} into itself"
    assert placement is not Placement.MAIN
    moved = tuple(replace(op, placement=placement) for op in guest.ops)
    draft.remove_kernel(guest)
    if placement is Placement.PROLOGUE:
        main_index = host.ops.index(host.main_op())
        draft.set_ops(host, (*host.ops[:main_index], *moved, *host.ops[main_index:]))
    else:
        draft.set_ops(host, (*host.ops, *moved))


def make_transient(draft: Draft, name: str) -> None:
    """Mark a tensor as never stored (it must then live inside one kernel: freeze checks)."""
    draft.tensors[name] = replace(draft.tensors[name], transient=True)


def run_in_place(draft: Draft, kind: OpKind, layer: str) -> bool:
    """Let `layer`'s forward op `kind` write its output over an input that no other op reads, as
    PyTorch's `inplace=True` ReLU and `out += identity` do: the output takes that input's memory.
    False (nothing changes) when every input of the output's shape is read elsewhere."""
    op = draft.find(kind, layer).main_op()
    output = draft.tensors[op.writes[0]]
    for name in op.reads:
        tensor = draft.tensors[name]
        if (
            tensor.role is not TensorRole.ACTIVATION
            or tensor.transient
            or (tensor.shape, tensor.element) != (output.shape, output.element)
        ):
            continue
        if all(
            other is op or name not in other.reads
            for kernel in draft.kernels
            for other in kernel.ops
        ):
            draft.tensors[output.name] = replace(output, storage=name)
            return True
    return False


def use_one_pass_statistics(draft: Draft, bn: str) -> DraftKernel:
    """Replace a BN's mean and variance passes by one pass computing Σx and Σx² together."""
    mean_kernel = draft.find(OpKind.BN_STATS, bn, part="mean")
    var_kernel = draft.find(OpKind.BN_STATS, bn, part="var")
    mean_op, var_op = mean_kernel.main_op(), var_kernel.main_op()
    x, mean = mean_op.reads[0], mean_op.writes[0]
    var, running_mean, running_var = var_op.writes
    elements = draft.network.in_shapes(bn)[0].num_elements()
    both = Op(
        kind=OpKind.BN_STATS,
        layer=bn,
        reads=(x, running_mean, running_var),
        writes=(mean, var, running_mean, running_var),
        reduces=(mean, var, running_mean, running_var),
        flops=3 * elements,
        attrs=(("part", "both"),),
    )
    draft.set_ops(mean_kernel, (both,))
    mean_kernel.name = mean_kernel.name.removesuffix(".mean") + ".stats"  # keeps a pass prefix
    draft.remove_kernel(var_kernel)
    return mean_kernel


@dataclass(frozen=True, slots=True)
class BNChain:
    """How one BN layer sits among its neighbours, the facts every fusion decision needs."""

    bn: str
    producer_conv: str | None  # conv whose output only this BN reads (None: concat, pool, ...)
    activation: str | None  # the activation (ReLU, ReLU6, SiLU, ...) that alone reads the BN output
    consumer_convs: tuple[str, ...]  # convs reading the (activated) output, if every reader is one
    add: str | None  # residual add that alone reads the BN output (no ReLU in between)
    add_activation: str | None  # ReLU that alone reads that add's output

    def output_layer(self) -> str:
        """The layer whose output the consumers read (the activation if there is one)."""
        return self.activation or self.bn


RELU_KINDS = (LayerKind.RELU, LayerKind.RELU6)
# every activation a BN's normalize can take in: ReLU's, and the smooth ones
ACTIVATION_KINDS = (
    *RELU_KINDS,
    LayerKind.SILU,
    LayerKind.SIGMOID,
    LayerKind.HARDSWISH,
    LayerKind.HARDSIGMOID,
)


def bn_chain(
    network: Network,
    bn: str,
    *,
    wide_limit: int | None,
    activations: tuple[LayerKind, ...] = RELU_KINDS,
) -> BNChain:
    """Analyse the neighbourhood of BN layer `bn`; `activations` are the kinds that may follow it.

    Convs with `wide_limit` or more input channels count as not fusable (the published BNFF kernels
    left them unfused); `wide_limit=None` fuses every conv.
    """

    def fusable_conv(name: str) -> bool:
        layer = network.layer(name)
        if not isinstance(layer, Conv2d):
            return False
        return wide_limit is None or network.in_shapes(name)[0].c < wide_limit

    def only_consumer(name: str, kinds: tuple[LayerKind, ...]) -> str | None:
        consumers = network.consumers(name)
        if len(consumers) == 1 and network.layer(consumers[0]).layer_kind in kinds:
            return consumers[0]
        return None

    source = network.layer(bn).inputs[0]
    producer = source if fusable_conv(source) and network.consumers(source) == (bn,) else None
    activation = only_consumer(bn, activations)
    out = activation or bn
    readers = network.consumers(out)
    consumer_convs = readers if readers and all(fusable_conv(name) for name in readers) else ()
    # the first consumer to run normalizes into the stored output, so it must load every element:
    # a strided 1×1 convolution (RegNet's first shortcut) skips pixels that its sibling reads
    if consumer_convs and not reads_every_pixel(network, consumer_convs[0]):
        consumer_convs = ()
    add = only_consumer(bn, (LayerKind.ADD,)) if activation is None else None
    add_activation = only_consumer(add, RELU_KINDS) if add else None
    return BNChain(
        bn=bn,
        producer_conv=producer,
        activation=activation,
        consumer_convs=tuple(consumer_convs),
        add=add,
        add_activation=add_activation,
    )


def reads_every_pixel(network: Network, conv: str) -> bool:
    """Whether convolution `conv`'s windows together cover every pixel of its input."""
    layer = network.layer(conv)
    assert isinstance(layer, Conv2d)
    x, y = network.in_shapes(conv)[0], network.out_shape(conv)
    for size, out, kernel, stride, padding, dilation in zip(
        (x.h, x.w),
        (y.h, y.w),
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.dilation,
        strict=True,
    ):
        gapless = stride <= kernel if dilation == 1 else stride == 1
        last = (out - 1) * stride - padding + dilation * (kernel - 1)  # the last pixel read
        if not gapless or last < size - 1:
            return False
    return True


def batchnorm_layers(network: Network) -> list[str]:
    """Names of the BN layers, in network order."""
    return [layer.name for layer in network.layers_of_kind(LayerKind.BATCHNORM2D)]


def backward_weight_host(draft: Draft, conv: str) -> DraftKernel:
    """The kernel that first reads a conv's output gradient.

    Its backward-data kernel, or, for a conv whose input needs no gradient (the first conv), its
    backward-weight kernel.
    """
    try:
        return draft.find(OpKind.CONV_BWD_DATA, conv)
    except KeyError:
        return draft.find(OpKind.CONV_BWD_WEIGHT, conv)
