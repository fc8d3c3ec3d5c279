"""NumPy reference element-wise ops: ReLU and ReLU6, dropout (seeded masks), channel shuffle (a
permutation) and the SGD-with-momentum update."""

from __future__ import annotations

import zlib

import numpy as np

from bnsim.verify.reference.arrays import (
    BoolArray,
    FloatArray,
    _as_float,
)


def relu_fwd(x: FloatArray) -> FloatArray:
    """max(x, 0)."""
    return np.maximum(_as_float(x), 0)


def relu_bwd(dy: FloatArray, y: FloatArray) -> FloatArray:
    """Gradient of relu_fwd from its output y: dy where y > 0, else 0."""
    return np.where(np.asarray(y) > 0, _as_float(dy), 0)


def relu6_fwd(x: FloatArray) -> FloatArray:
    """min(max(x, 0), 6)."""
    return np.clip(_as_float(x), 0, 6)


def relu6_bwd(dy: FloatArray, y: FloatArray) -> FloatArray:
    """Gradient of relu6_fwd from its output y: dy where 0 < y < 6, else 0."""
    y = np.asarray(y)
    return np.where((y > 0) & (y < 6), _as_float(dy), 0)


def _check_p(p: float) -> None:
    if not 0 <= p < 1:
        raise ValueError(f"dropout p must lie in [0, 1), got {p}")


def dropout_mask(layer: str, shape: tuple[int, ...], p: float, seed: int) -> BoolArray:
    """The keep-mask of dropout layer `layer`: one draw per layer and seed, same in every run."""
    _check_p(p)
    rng = np.random.default_rng([seed, zlib.crc32(layer.encode())])
    keep: BoolArray = rng.random(shape) >= p
    return keep


def dropout_fwd(x: FloatArray, mask: BoolArray, *, p: float) -> FloatArray:
    """y = x·mask/(1 − p) (inverted dropout; mask True keeps an element).

    Raises:
        ValueError: p outside [0, 1).
    """
    _check_p(p)
    return np.where(mask, _as_float(x), 0) / (1 - p)


def dropout_bwd(dy: FloatArray, mask: BoolArray, *, p: float) -> FloatArray:
    """dx = dy·mask/(1 − p).

    Raises:
        ValueError: p outside [0, 1).
    """
    _check_p(p)
    return np.where(mask, _as_float(dy), 0) / (1 - p)


def channel_shuffle(x: FloatArray, groups: int) -> FloatArray:
    """Output channel j = input channel (j mod g)·C/g + j div g (ShuffleNet; torchvision's view to
    N × g × C/g × H × W, transpose of the two, view back)."""
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, c // groups, *x.shape[2:])
    return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(x.shape)


def channel_shuffle_bwd(dy: FloatArray, groups: int) -> FloatArray:
    """The inverse permutation: a shuffle by C/g groups."""
    return channel_shuffle(dy, dy.shape[1] // groups)


def sgd_momentum_update(
    w: FloatArray,
    g: FloatArray,
    v: FloatArray,
    *,
    lr: float,
    momentum: float,
    weight_decay: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """One torch.optim.SGD step (no dampening, no Nesterov).

    d = g + weight_decay·w; v_new = momentum·v + d; w_new = w − lr·v_new. A zero v gives torch's
    first step, where the buffer starts as d.

    Args:
        w: parameters.
        g: their gradient.
        v: momentum buffer.
        lr: learning rate.
        momentum: momentum factor.
        weight_decay: L2 penalty factor.

    Returns:
        (w_new, v_new).
    """
    w, g, v = _as_float(w), _as_float(g), _as_float(v)
    d = g + weight_decay * w
    v_new = momentum * v + d
    return w - lr * v_new, v_new
