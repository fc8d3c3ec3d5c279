"""NumPy reference forward and backward kernels of CNN training: the definition of every op.

Tensors are NCHW. Each function is plain, vectorised NumPy written for clarity, not speed; a
schedule computes the right numbers exactly when it matches these. Results keep the floating
dtype of the inputs (float32 in, float32 out); integer inputs are computed in float64. Window
ops follow torch.nn.functional (conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d) including
ceil_mode and count_include_pad. Bad arguments raise ValueError.

The ops live by family (conv, norm, elementwise, pooling, linear); this package names them all.
"""

from __future__ import annotations

from bnsim.verify.reference.arrays import BoolArray, FloatArray, IntArray, Pair
from bnsim.verify.reference.conv import (
    conv2d_bwd_data,
    conv2d_bwd_weight,
    conv2d_fwd,
)
from bnsim.verify.reference.elementwise import (
    channel_shuffle,
    channel_shuffle_bwd,
    dropout_bwd,
    dropout_fwd,
    dropout_mask,
    relu6_bwd,
    relu6_fwd,
    relu_bwd,
    relu_fwd,
    sgd_momentum_update,
)
from bnsim.verify.reference.linear import (
    linear_bwd_data,
    linear_bwd_weight,
    linear_fwd,
    softmax_cross_entropy_bwd,
    softmax_cross_entropy_fwd,
)
from bnsim.verify.reference.norm import (
    batchnorm_apply,
    batchnorm_bwd,
    batchnorm_stats,
)
from bnsim.verify.reference.pooling import (
    adaptive_avgpool2d_bwd,
    adaptive_avgpool2d_fwd,
    avgpool2d_bwd,
    avgpool2d_fwd,
    global_avgpool_bwd,
    global_avgpool_fwd,
    maxpool2d_bwd,
    maxpool2d_fwd,
)

__all__ = [
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Pair",
    "adaptive_avgpool2d_bwd",
    "adaptive_avgpool2d_fwd",
    "avgpool2d_bwd",
    "avgpool2d_fwd",
    "batchnorm_apply",
    "batchnorm_bwd",
    "batchnorm_stats",
    "channel_shuffle",
    "channel_shuffle_bwd",
    "conv2d_bwd_data",
    "conv2d_bwd_weight",
    "conv2d_fwd",
    "dropout_bwd",
    "dropout_fwd",
    "dropout_mask",
    "global_avgpool_bwd",
    "global_avgpool_fwd",
    "linear_bwd_data",
    "linear_bwd_weight",
    "linear_fwd",
    "maxpool2d_bwd",
    "maxpool2d_fwd",
    "relu6_bwd",
    "relu6_fwd",
    "relu_bwd",
    "relu_fwd",
    "sgd_momentum_update",
    "softmax_cross_entropy_bwd",
    "softmax_cross_entropy_fwd",
]
