"""Reference NumPy forward and backward of the smooth activations and of channel scaling.

SiLU, sigmoid, hard-swish and hard-sigmoid as PyTorch defines them (torch.nn's documentation and
ATen's `silu_backward`, `sigmoid_backward`, `hardswish_backward`, `hardsigmoid_backward`), and the
channel-wise product of squeeze-and-excitation. Sigmoid's backward reads its output, the others'
their input, as PyTorch's autograd saves them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.floating[Any]]


def _float(a: NDArray[Any]) -> FloatArray:
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def sigmoid(x: FloatArray) -> FloatArray:
    """1 / (1 + exp(−x)), without overflow for large |x|."""
    x = _float(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def activation_fwd(kind: str, x: FloatArray) -> FloatArray:
    """The activation `kind` (silu, sigmoid, hardswish, hardsigmoid) of x."""
    x = _float(x)
    if kind == "silu":
        return x * sigmoid(x)
    if kind == "sigmoid":
        return sigmoid(x)
    if kind == "hardswish":
        return x * np.clip(x + 3, 0, 6) / 6
    if kind == "hardsigmoid":
        return np.clip(x + 3, 0, 6) / 6
    raise ValueError(f"unknown activation {kind!r}")


def activation_bwd(kind: str, dy: FloatArray, saved: FloatArray) -> FloatArray:
    """dx of activation `kind` from dy and what its backward reads: the output for sigmoid, the
    input for the others."""
    dy, saved = _float(dy), _float(saved)
    if kind == "sigmoid":
        return dy * saved * (1 - saved)
    if kind == "silu":
        s = sigmoid(saved)
        return dy * s * (1 + saved * (1 - s))
    if kind == "hardswish":
        return np.where(saved < -3, 0, np.where(saved <= 3, dy * (saved / 3 + 0.5), dy))
    if kind == "hardsigmoid":
        return np.where((saved > -3) & (saved < 3), dy / 6, 0)
    raise ValueError(f"unknown activation {kind!r}")


def scale_fwd(x: FloatArray, s: FloatArray) -> FloatArray:
    """x (N×C×H×W) times s (N×C×1×1), channel by channel."""
    return _float(x) * _float(s)


def scale_bwd_data(dy: FloatArray, s: FloatArray) -> FloatArray:
    """dx of scale_fwd."""
    return _float(dy) * _float(s)


def scale_bwd_scale(dy: FloatArray, x: FloatArray) -> FloatArray:
    """ds of scale_fwd: dy·x summed over each channel's pixels (N×C×1×1)."""
    total: FloatArray = (_float(dy) * _float(x)).sum(axis=(2, 3), keepdims=True)
    return total
