"""fission: BN split into a statistics kernel and an apply kernel, nothing fused (docs/schemes.md).

The control experiment for bnff: the same sub-layers bnff fuses, each run as its own kernel.
Forward: `bn_stats` (Σx and Σx² in one pass) then `bn_apply`; backward: `bn_grad_reduce` then
`bn_grad_apply`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bnsim.schedule.draft import Draft
from bnsim.schemes.rewrite import batchnorm_layers, use_one_pass_statistics


class FissionOptions(BaseModel):
    """fission has no options."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def rewrite(draft: Draft, options: FissionOptions) -> None:
    """Split every BN's statistics into one one-pass kernel."""
    del options
    for bn in batchnorm_layers(draft.network):
        use_one_pass_statistics(draft, bn)
