"""sampling: BN statistics estimated from a few data (Chen et al., TNNLS 2020; docs/schemes.md).

Applied on top of another scheme (`sampling` alone is `baseline+sampling`). Batch and feature
sampling make every statistics op read only the selected elements (bnsim.schedule.selection); the
backward still reduces Σdy and Σdy·x̂ over all elements, and the BN apply backward carries the exact
gradient through the sampled statistics. Virtual-dataset normalization first pushes a few synthetic
samples through the layers that lead to a BN (a forward pass at the small batch, every layer its own
kernel), takes every BN's statistics from them, and treats those statistics as constants in
backward; the real forward then computes no statistics.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph import rebuild
from bnsim.schedule import Op, OpKind
from bnsim.schedule.draft import Draft
from bnsim.schedule.selection import Sampling, select
from bnsim.schedule.training import lower_forward
from bnsim.schemes.rewrite import batchnorm_layers, use_one_pass_statistics

VIRTUAL_PREFIX = "virtual/"


class SamplingOptions(BaseModel):
    """Options of the sampling modifier."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    method: Literal["batch", "feature", "virtual"] = Field(
        default="batch", description="batch (BS), feature (FS) or virtual (VDN) sampling"
    )
    fraction: float = Field(default=0.125, gt=0, le=1, description="fraction of the data sampled")
    seed: int = Field(default=0, ge=0, description="seed of the random selection")

    def rule(self) -> Sampling:
        """The sampling rule these options describe."""
        return Sampling(self.method, self.fraction, self.seed)


def rewrite(draft: Draft, options: SamplingOptions) -> None:
    """Make every BN's statistics sampled."""
    sampling = options.rule()
    if sampling.method == "virtual":
        _virtual_dataset(draft, sampling)
        return
    rule = (("sampling", (sampling.method, sampling.fraction, sampling.seed)),)
    for kernel in draft.kernels:
        draft.set_ops(kernel, tuple(_sampled(draft, op, sampling, rule) for op in kernel.ops))


def _sampled(draft: Draft, op: Op, sampling: Sampling, rule: tuple[tuple[str, object], ...]) -> Op:
    if op.kind is OpKind.BN_GRAD_APPLY:
        return replace(op, attrs=(*op.attrs, *rule))
    if op.kind is not OpKind.BN_STATS:
        return op
    shape = draft.network.in_shapes(op.layer)[0]
    selected = select(sampling, op.layer, shape).elements_per_channel() * shape.c
    flops = op.flops * selected // shape.num_elements()
    return replace(op, attrs=(*op.attrs, *rule), flops=flops)


def _virtual_dataset(draft: Draft, sampling: Sampling) -> None:
    network = draft.network
    batch_norms = batchnorm_layers(network)
    needed = set(batch_norms).union(*(nx.ancestors(network.graph, bn) for bn in batch_norms))
    virtual = lower_forward(
        rebuild(network, batch=sampling.virtual_batch(network.batch)), needed, prefix=VIRTUAL_PREFIX
    )
    for bn in batch_norms:
        use_one_pass_statistics(virtual, bn)
    _drop_unused_kernels(virtual)
    for kernel in draft.kernels:
        kept = tuple(
            replace(op, attrs=(*op.attrs, ("stats_gradient", False)))
            if op.kind is OpKind.BN_GRAD_APPLY
            else op
            for op in kernel.ops
            if op.kind is not OpKind.BN_STATS
        )
        if kept:
            draft.set_ops(kernel, kept)
        else:
            draft.remove_kernel(kernel)
    for tensor in virtual.tensors.values():
        draft.add_tensor(tensor)
    draft.insert_kernels(0, virtual.kernels)


def _drop_unused_kernels(draft: Draft) -> None:
    """Remove kernels of a forward-only pass whose outputs nothing needs (the last BN's apply)."""
    needed: set[str] = set()
    for kernel in reversed(draft.kernels):
        writes = {name for op in kernel.ops for name in op.writes}
        keeps_stats = any(op.kind is OpKind.BN_STATS for op in kernel.ops)
        if keeps_stats or writes & needed:
            needed.update(name for op in kernel.ops for name in op.reads)
        else:
            draft.remove_kernel(kernel)
