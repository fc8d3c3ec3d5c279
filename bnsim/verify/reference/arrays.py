"""What the NumPy reference ops share: array types, float conversion, window sizes, padding."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

FloatArray: TypeAlias = NDArray[np.floating[Any]]


BoolArray: TypeAlias = NDArray[np.bool_]


IntArray: TypeAlias = NDArray[np.integer[Any]]


Pair: TypeAlias = tuple[int, int]


_AXES_NHW = (0, 2, 3)


def _as_float(a: NDArray[Any]) -> FloatArray:
    """The array itself if it is floating point, else a float64 copy."""
    array = np.asarray(a)
    if np.issubdtype(array.dtype, np.floating):
        return array
    return array.astype(np.float64)


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil: bool) -> int:
    """Output length of a sliding window, as torch computes it (pooling_output_shape in ATen)."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1  # torch: the last window must start inside the input or its left padding
    if out < 1:
        raise ValueError(
            f"window of {kernel} (dilation {dilation}) does not fit an input of {size} "
            f"with padding {padding}"
        )
    return out


def _out_hw(
    in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceil: bool
) -> Pair:
    return (
        _out_size(in_hw[0], kernel[0], stride[0], padding[0], dilation[0], ceil),
        _out_size(in_hw[1], kernel[1], stride[1], padding[1], dilation[1], ceil),
    )


def _check_out_hw(dy: FloatArray, expected: Pair, what: str) -> None:
    if tuple(dy.shape[2:]) != expected:
        raise ValueError(f"{what}: dy is {dy.shape[2]}×{dy.shape[3]}, expected {expected}")


def _pad(
    x: FloatArray, padding: Pair, value: float = 0.0, canvas_hw: Pair | None = None
) -> FloatArray:
    """Pad H and W by `padding` on both sides, then on the right up to `canvas_hw` if given."""
    ph, pw = padding
    eh = ew = 0
    if canvas_hw is not None:
        eh = canvas_hw[0] - (x.shape[2] + 2 * ph)
        ew = canvas_hw[1] - (x.shape[3] + 2 * pw)
    widths = ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew))
    return np.pad(x, widths, mode="constant", constant_values=value)


def _offset(
    kh: int, kw: int, out_hw: Pair, stride: Pair, dilation: Pair = (1, 1)
) -> tuple[slice, slice, slice, slice]:
    """Index of the padded-input elements that kernel offset (kh, kw) meets, one per output."""
    rows = slice(kh * dilation[0], kh * dilation[0] + stride[0] * (out_hw[0] - 1) + 1, stride[0])
    cols = slice(kw * dilation[1], kw * dilation[1] + stride[1] * (out_hw[1] - 1) + 1, stride[1])
    return slice(None), slice(None), rows, cols


def _crop(dxp: FloatArray, input_hw: Pair, padding: Pair) -> FloatArray:
    """The input region of a padded gradient canvas."""
    return dxp[:, :, padding[0] : padding[0] + input_hw[0], padding[1] : padding[1] + input_hw[1]]
