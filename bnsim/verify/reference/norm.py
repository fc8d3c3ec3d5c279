"""NumPy reference batch normalization: statistics (of all or a mask of the samples), the
normalize-and-scale pass, and the backward pass."""

from __future__ import annotations

import numpy as np

from bnsim.verify.reference.arrays import (
    _AXES_NHW,
    BoolArray,
    FloatArray,
    _as_float,
)


def _channel(v: FloatArray) -> FloatArray:
    """A per-channel vector shaped 1×C×1×1 to broadcast against NCHW."""
    return _as_float(v).reshape(1, -1, 1, 1)


def _mask_counts(x: FloatArray, sample_mask: BoolArray) -> tuple[BoolArray, FloatArray]:
    """The mask broadcast to x's shape, and the number of selected elements per channel."""
    mask = np.broadcast_to(np.asarray(sample_mask, dtype=bool), x.shape)
    counts = mask.sum(axis=_AXES_NHW)
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0).tolist()
        raise ValueError(f"sample_mask selects no element of channels {empty}")
    return mask, counts.astype(x.dtype)


def batchnorm_stats(
    x: FloatArray, *, sample_mask: BoolArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Per-channel mean and biased variance over N, H, W (two-pass, centred variance).

    Args:
        x: input, N×C×H×W.
        sample_mask: optional boolean array broadcastable to x (e.g. N×1×1×1 to sample images,
            1×1×H×W or N×C×H×W to sample features); the statistics then cover the selected
            elements only, and each channel may select a different number of them.

    Returns:
        (mean, var), each of C elements.

    Raises:
        ValueError: the mask selects no element of some channel.
    """
    x = _as_float(x)
    if sample_mask is None:
        mean = x.mean(axis=_AXES_NHW)
        var = np.square(x - _channel(mean)).mean(axis=_AXES_NHW)
        return mean, var
    mask, counts = _mask_counts(x, sample_mask)
    mean = np.where(mask, x, 0).sum(axis=_AXES_NHW) / counts
    var = np.where(mask, np.square(x - _channel(mean)), 0).sum(axis=_AXES_NHW) / counts
    return mean, var


def batchnorm_apply(
    x: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    *,
    eps: float,
) -> FloatArray:
    """y = gamma·(x − mean)/sqrt(var + eps) + beta, per channel.

    Args:
        x: input, N×C×H×W.
        mean: per-channel mean (C elements).
        var: per-channel variance (C elements).
        gamma: per-channel scale (C elements).
        beta: per-channel shift (C elements).
        eps: added to the variance.

    Returns:
        y, shaped like x.
    """
    x_hat = (_as_float(x) - _channel(mean)) / np.sqrt(_channel(var) + eps)
    y: FloatArray = _channel(gamma) * x_hat + _channel(beta)
    return y


def batchnorm_bwd(
    dy: FloatArray,
    x: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    gamma: FloatArray,
    *,
    eps: float,
    sample_mask: BoolArray | None = None,
    stats_gradient: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Exact gradient of batchnorm_apply when mean and var came from batchnorm_stats.

    With S the elements the statistics were taken over (all of N, H, W when sample_mask is None)
    and m_S their per-channel count, x̂ = (x − mean)/σ and σ = sqrt(var + eps):
    dx_i = gamma/σ·(dy_i − [i∈S]/m_S·(Σ dy + x̂_i·Σ dy·x̂)), the sums over all of the channel's
    elements, selected or not (every element is normalised with these statistics).

    Args:
        dy: gradient of the output, N×C×H×W.
        x: the forward input.
        mean: the per-channel mean used in the forward pass.
        var: the per-channel variance used in the forward pass.
        gamma: per-channel scale.
        eps: added to the variance.
        sample_mask: the mask the statistics were computed with (see batchnorm_stats).
        stats_gradient: False treats mean and var as constants (statistics taken from other,
            virtual samples): dx = gamma/σ·dy.

    Returns:
        (dx, dgamma, dbeta): dx shaped like x; dgamma = Σ dy·x̂ and dbeta = Σ dy over all
        elements, C each.

    Raises:
        ValueError: the mask selects no element of some channel.
    """
    dy, x = _as_float(dy), _as_float(x)
    inv_sigma = 1.0 / np.sqrt(_channel(var) + eps)
    x_hat = (x - _channel(mean)) * inv_sigma
    dbeta = dy.sum(axis=_AXES_NHW)
    dgamma = (dy * x_hat).sum(axis=_AXES_NHW)
    scale = _channel(gamma) * inv_sigma
    if not stats_gradient:
        return scale * dy, dgamma, dbeta
    if sample_mask is None:
        in_stats: FloatArray | float = 1.0
        counts = np.full(x.shape[1], x.size // x.shape[1], dtype=x.dtype)
    else:
        mask, counts = _mask_counts(x, sample_mask)
        in_stats = mask.astype(x.dtype)
    correction = in_stats / _channel(counts) * (_channel(dbeta) + x_hat * _channel(dgamma))
    return scale * (dy - correction), dgamma, dbeta
