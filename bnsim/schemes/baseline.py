"""baseline: every layer its own kernel(s), as Caffe + MKL-DNN run it (docs/schemes.md).

Options: `bn_stats_passes` (2: a mean pass then a variance pass; 1: Σx and Σx² in one pass),
`fuse_bn_relu` (normalize + ReLU in one kernel, and ReLU-backward + the BN backward reductions in
one, as oneDNN and cuDNN offer), `inplace_relu` and `inplace_add` (the ReLU's output, the residual
sum, written over an input nothing else reads, as PyTorch's `ReLU(inplace=True)` and torchvision's
`out += identity` do).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph import LayerKind
from bnsim.schedule import OpKind, Placement
from bnsim.schedule.draft import Draft, act
from bnsim.schemes.rewrite import (
    batchnorm_layers,
    bn_chain,
    fuse,
    make_transient,
    run_in_place,
    use_one_pass_statistics,
)


class BaselineOptions(BaseModel):
    """Options of the baseline scheme."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    bn_stats_passes: Literal[1, 2] = Field(
        default=2,
        description="passes over the BN input for the statistics (1: Σx and Σx² together)",
    )
    fuse_bn_relu: bool = Field(default=False, description="BN and the ReLU after it in one kernel")
    inplace_relu: bool = Field(
        default=False, description="ReLU writes over its input when nothing else reads it"
    )
    inplace_add: bool = Field(
        default=False, description="a residual add writes over an input nothing else reads"
    )


def rewrite(draft: Draft, options: BaselineOptions) -> None:
    """Apply the baseline options to the baseline draft."""
    for bn in batchnorm_layers(draft.network):
        if options.bn_stats_passes == 1:
            use_one_pass_statistics(draft, bn)
        chain = bn_chain(draft.network, bn, wide_limit=None)
        if options.fuse_bn_relu and chain.activation is not None:
            fuse_normalize_and_relu(draft, bn, chain.activation)
    in_place: dict[LayerKind, OpKind] = (
        {LayerKind.ADD: OpKind.ADD_FWD} if options.inplace_add else {}
    )
    if options.inplace_relu:
        in_place |= {LayerKind.RELU: OpKind.RELU_FWD, LayerKind.RELU6: OpKind.RELU_FWD}
    for layer in draft.network.layers if in_place else ():
        kind = in_place.get(LayerKind(layer.kind))
        if kind is not None:
            run_in_place(draft, kind, layer.name)


def fuse_normalize_and_relu(draft: Draft, bn: str, relu: str) -> None:
    """Normalize + ReLU as one element-wise kernel, and ReLU-backward + BN reductions as another."""
    fuse(
        draft,
        draft.find(OpKind.BN_APPLY, bn),
        draft.find(OpKind.RELU_FWD, relu),
        Placement.EPILOGUE,
    )
    make_transient(draft, act(bn))
    try:
        relu_backward = draft.find(OpKind.RELU_BWD, relu)
    except KeyError:
        return  # no backward through this ReLU (nothing upstream needs a gradient)
    fuse(draft, relu_backward, draft.find(OpKind.BN_GRAD_REDUCE, bn), Placement.EPILOGUE)
