"""recompute: fused CONV+BN+ReLU recomputing BN/ReLU outputs instead of storing them (§2.4).

After Wang, Hao and Li (J. Xidian Univ. 2020): the same fission and fusion as bnff, but a BN/ReLU
output that convs consume is never written: each consumer conv normalizes (+ ReLU) its input on
every load, and the backward recomputes it from the stored BN input and the per-channel statistics
wherever it is needed (the ReLU mask in the consumer's backward-data epilogue, the consumer's weight
gradient). Outputs that no conv consumes are stored as in bnff. Trades element-wise FLOPs for DRAM
traffic.
"""

from __future__ import annotations

from bnsim.schedule.draft import Draft
from bnsim.schemes.bnff import BNFFOptions, fission_and_fusion

RecomputeOptions = BNFFOptions


def rewrite(draft: Draft, options: RecomputeOptions) -> None:
    """Fission, fusion and recomputation of every BN layer."""
    fission_and_fusion(draft, wide_limit=options.wide_limit, recompute=True)
