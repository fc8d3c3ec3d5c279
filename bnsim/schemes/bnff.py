"""bnff: BN Fission-n-Fusion (Jung et al., SysML 2019), and the fusion rules recompute shares.

For each BN (docs/schemes.md, bnff): - forward: Σx, Σx² in the producer conv's epilogue (a separate
one-pass kernel when the input is not one conv's output: concatenation, pool); normalize + ReLU in
the consumer conv's prologue, which stores z once; when no conv consumes the output, normalize (+
add) + ReLU as one element-wise kernel. - backward, mirrored: ReLU-backward and the BN reductions in
the consumer conv's backward-data epilogue (or one element-wise kernel); the BN apply (dx) in the
producer conv's backward-data prologue. - convs with `wide_limit` or more input channels stay
unfused, as in the published kernels.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph import LayerKind, Network
from bnsim.graph.layer import INPUT_GRADIENT_ACTIVATIONS
from bnsim.schedule import Op, OpKind, Placement, TensorRole
from bnsim.schedule.draft import FLOPS_PER_ELEMENT, Draft, DraftKernel, act, grad
from bnsim.schemes.rewrite import (
    ACTIVATION_KINDS,
    RELU_KINDS,
    BNChain,
    backward_weight_host,
    batchnorm_layers,
    bn_chain,
    fuse,
    make_transient,
    use_one_pass_statistics,
)


class BNFFOptions(BaseModel):
    """Options of bnff (and recompute)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    wide_limit: int | None = Field(
        default=1024,
        gt=0,
        description="convs with this many input channels or more stay unfused (null: fuse all)",
    )


def rewrite(draft: Draft, options: BNFFOptions) -> None:
    """Fission and fusion of every BN layer."""
    fission_and_fusion(draft, wide_limit=options.wide_limit, recompute=False)


def fission_and_fusion(draft: Draft, *, wide_limit: int | None, recompute: bool) -> None:
    """bnff's rewrites; with `recompute`, BN/ReLU outputs that convs consume are never stored."""
    for bn in batchnorm_layers(draft.network):
        chain = bn_chain(draft.network, bn, wide_limit=wide_limit, activations=ACTIVATION_KINDS)
        _fuse_forward(draft, chain, recompute)
        try:
            reduce_kernel = draft.find(OpKind.BN_GRAD_REDUCE, bn)
        except KeyError:
            continue  # nothing upstream of this BN needs a gradient
        _fuse_backward(draft, chain, reduce_kernel, recompute)


def _fuse_forward(draft: Draft, chain: BNChain, recompute: bool) -> None:
    bn = chain.bn
    stats = use_one_pass_statistics(draft, bn)
    if chain.producer_conv is not None:
        fuse(draft, draft.find(OpKind.CONV_FWD, chain.producer_conv), stats, Placement.EPILOGUE)
    apply_kernel = draft.find(OpKind.BN_APPLY, bn)
    activation = chain.activation
    relu_kernel = (
        draft.find(_forward_kind(draft.network, activation), activation) if activation else None
    )
    # the BN output stays stored where the activation's backward reads it (SiLU, hard-swish)
    bn_output_kept = activation is not None and _reads_its_input(draft.network, activation)
    if chain.consumer_convs:
        if recompute:
            _normalize_on_every_load(draft, chain, apply_kernel, relu_kernel)
            return
        host = draft.find(OpKind.CONV_FWD, chain.consumer_convs[0])
        fuse(draft, host, apply_kernel, Placement.PROLOGUE)
        if relu_kernel is not None:
            fuse(draft, host, relu_kernel, Placement.PROLOGUE)
            if not bn_output_kept:
                make_transient(draft, act(bn))
    elif chain.add is not None:
        host = draft.find(OpKind.ADD_FWD, chain.add)
        fuse(draft, host, apply_kernel, Placement.PROLOGUE)
        make_transient(draft, act(bn))
        if chain.add_activation is not None:
            add_relu = draft.find(OpKind.RELU_FWD, chain.add_activation)
            if add_relu is not host:  # the add's other BN input may have fused it already
                fuse(draft, host, add_relu, Placement.EPILOGUE)
                make_transient(draft, act(chain.add))
    elif relu_kernel is not None:
        fuse(draft, apply_kernel, relu_kernel, Placement.EPILOGUE)
        if not bn_output_kept:
            make_transient(draft, act(bn))


def _fuse_backward(
    draft: Draft, chain: BNChain, reduce_kernel: DraftKernel, recompute: bool
) -> None:
    bn = chain.bn
    relu = chain.activation
    if len(chain.consumer_convs) == 1:
        host = draft.find(OpKind.CONV_BWD_DATA, chain.consumer_convs[0])
        if relu is not None:
            relu_backward = draft.find(_backward_kind(draft.network, relu), relu)
            if recompute:
                _recompute_output(draft, chain, relu_backward, Placement.PROLOGUE, "mask")
            fuse(draft, host, relu_backward, Placement.EPILOGUE)
            make_transient(draft, grad(relu))
        fuse(draft, host, reduce_kernel, Placement.EPILOGUE)
    elif chain.add is not None and chain.add_activation is not None:
        fuse(
            draft,
            draft.find(OpKind.RELU_BWD, chain.add_activation),
            reduce_kernel,
            Placement.EPILOGUE,
        )
    elif relu is not None:
        relu_backward = draft.find(_backward_kind(draft.network, relu), relu)
        if recompute and chain.consumer_convs:
            _recompute_output(draft, chain, relu_backward, Placement.PROLOGUE, "mask")
        fuse(draft, relu_backward, reduce_kernel, Placement.EPILOGUE)
    if recompute:
        for conv in chain.consumer_convs:
            weight_kernel = draft.find(OpKind.CONV_BWD_WEIGHT, conv)
            _recompute_output(draft, chain, weight_kernel, Placement.PROLOGUE, f"for:{conv}")
    if chain.producer_conv is not None:
        host = backward_weight_host(draft, chain.producer_conv)
        fuse(draft, host, draft.find(OpKind.BN_GRAD_APPLY, bn), Placement.PROLOGUE)


def _normalize_on_every_load(
    draft: Draft, chain: BNChain, apply_kernel: DraftKernel, relu_kernel: DraftKernel | None
) -> None:
    """recompute's forward: every consumer conv normalizes (+ ReLU) its input as it loads it."""
    ops = [*apply_kernel.ops, *(relu_kernel.ops if relu_kernel else [])]
    for conv in chain.consumer_convs:
        host = draft.find(OpKind.CONV_FWD, conv)
        main_index = host.ops.index(host.main_op())
        prologue = tuple(
            replace(op, placement=Placement.PROLOGUE, attrs=(*op.attrs, ("per_load", True)))
            for op in ops
        )
        draft.set_ops(host, (*host.ops[:main_index], *prologue, *host.ops[main_index:]))
    draft.remove_kernel(apply_kernel)
    make_transient(draft, act(chain.bn))
    if relu_kernel is not None:
        draft.remove_kernel(relu_kernel)
        make_transient(draft, act(chain.output_layer()))


def _recompute_output(
    draft: Draft, chain: BNChain, kernel: DraftKernel, placement: Placement, tag: str
) -> None:
    """Recompute what `kernel` reads of the chain, the BN output y (a SiLU's backward reads it)
    or the chain's output z, from the stored BN input, and read that.

    The recomputed copies are transient tensors named after the originals with `~{tag}` appended.
    """
    stored = act(chain.output_layer())
    reads_z = any(stored in op.reads for op in kernel.ops)
    reads_y = chain.activation is not None and any(act(chain.bn) in op.reads for op in kernel.ops)
    if not (reads_z or reads_y):
        return
    bn_output, out_output = act(chain.bn) + f"~{tag}", stored + f"~{tag}"
    network = draft.network
    bn_shape = network.out_shape(chain.bn)
    shape = (bn_shape.n, bn_shape.c, bn_shape.h, bn_shape.w)
    recompute_z = chain.activation is not None and reads_z
    copies = [(bn_output, chain.bn)] + ([(out_output, chain.output_layer())] if recompute_z else [])
    for name, layer in copies:
        draft.add_tensor(
            replace(
                draft.tensors[act(layer)],
                name=name,
                shape=shape,
                transient=True,
                role=TensorRole.ACTIVATION,
            )
        )
    elements = bn_shape.num_elements()
    x = network.layer(chain.bn).inputs[0]
    name = chain.bn
    recomputed = [
        Op(
            kind=OpKind.BN_APPLY,
            layer=name,
            placement=placement,
            flops=2 * elements,
            reads=(
                draft_tensor_of(draft, x),
                f"mean:{name}",
                f"var:{name}",
                f"gamma:{name}",
                f"beta:{name}",
            ),
            writes=(bn_output,),
            attrs=(("recompute", True),),
        )
    ]
    if recompute_z:
        assert chain.activation is not None
        kind = _forward_kind(network, chain.activation)
        recomputed.append(
            Op(
                kind=kind,
                layer=chain.activation,
                placement=placement,
                reads=(bn_output,),
                writes=(out_output,),
                flops=FLOPS_PER_ELEMENT[kind] * elements,
                attrs=(("recompute", True),),
            )
        )
    elif chain.activation is None:
        out_output = bn_output
    renamed = {stored: out_output, act(chain.bn): bn_output}
    rewritten = [
        replace(op, reads=tuple(renamed.get(read, read) for read in op.reads)) for op in kernel.ops
    ]
    main_index = next(i for i, op in enumerate(rewritten) if op.placement is Placement.MAIN)
    draft.set_ops(kernel, (*rewritten[:main_index], *recomputed, *rewritten[main_index:]))


def _reads_its_input(network: Network, activation: str) -> bool:
    return network.layer(activation).layer_kind.value in INPUT_GRADIENT_ACTIVATIONS


def _forward_kind(network: Network, activation: str) -> OpKind:
    """The op kind of an activation layer's forward: ReLU's own, or the smooth activations'."""
    relu = network.layer(activation).layer_kind in RELU_KINDS
    return OpKind.RELU_FWD if relu else OpKind.ACTIVATION_FWD


def _backward_kind(network: Network, activation: str) -> OpKind:
    relu = network.layer(activation).layer_kind in RELU_KINDS
    return OpKind.RELU_BWD if relu else OpKind.ACTIVATION_BWD


def draft_tensor_of(draft: Draft, layer: str) -> str:
    """The tensor holding `layer`'s output in the draft (flatten layers alias their input)."""
    network = draft.network
    while network.layer(layer).layer_kind is LayerKind.FLATTEN:
        layer = network.layer(layer).inputs[0]
    return act(layer)
