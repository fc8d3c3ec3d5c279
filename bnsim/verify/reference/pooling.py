"""NumPy reference pooling, forward and backward: max, average (count_include_pad, ceil_mode as
torch.nn.functional), adaptive and global average. bnsim.verify.reference re-exports them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bnsim.verify.reference.arrays import (
    FloatArray,
    Pair,
    _as_float,
    _check_out_hw,
    _crop,
    _offset,
    _out_hw,
    _pad,
)


def _canvas_hw(in_hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Size of the padded input plus any extra right margin that ceil_mode windows reach."""
    return (
        max(in_hw[0] + 2 * padding[0], (out_hw[0] - 1) * stride[0] + kernel[0]),
        max(in_hw[1] + 2 * padding[1], (out_hw[1] - 1) * stride[1] + kernel[1]),
    )


def _check_pool(kernel: Pair, padding: Pair) -> None:
    if 2 * padding[0] > kernel[0] or 2 * padding[1] > kernel[1]:
        raise ValueError(f"padding {padding} exceeds half the kernel {kernel} (as torch forbids)")


def maxpool2d_fwd(
    x: FloatArray,
    *,
    kernel: Pair,
    stride: Pair,
    padding: Pair = (0, 0),
    ceil_mode: bool = False,
) -> tuple[FloatArray, NDArray[np.uint8]]:
    """Max pooling, as torch.nn.functional.max_pool2d (padding never wins: it counts as −inf).

    Args:
        x: input, N×C×H×W.
        kernel: (KH, KW) window; KH·KW must be at most 255.
        stride: (h, w) step between windows.
        padding: (h, w) on each side, at most half the kernel.
        ceil_mode: round the output size up; a window may not start in the right padding.

    Returns:
        (y, index): y is N×C×OH×OW; index (uint8, shaped like y) is the argmax position inside
        each window, kh·KW + kw; the first maximum wins on ties and NaN propagates, as in torch.

    Raises:
        ValueError: kernel area above 255, padding above half the kernel, or no output.
    """
    x = _as_float(x)
    kh, kw = kernel
    if kh * kw > 255:
        raise ValueError(f"kernel {kernel} has more than 255 positions; index is uint8")
    _check_pool(kernel, padding)
    in_hw = (x.shape[2], x.shape[3])
    out_hw = _out_hw(in_hw, kernel, stride, padding, (1, 1), ceil_mode)
    canvas_hw = _canvas_hw(in_hw, out_hw, kernel, stride, padding)
    xp = _pad(x, padding, value=-np.inf, canvas_hw=canvas_hw)
    # torch starts each window at its first input (not padding) element, so an all −inf window
    # still points into the input: `is_input` and `seen_input` reproduce that.
    is_input = np.zeros(canvas_hw, dtype=bool)
    is_input[padding[0] : padding[0] + in_hw[0], padding[1] : padding[1] + in_hw[1]] = True
    seen_input = np.zeros(out_hw, dtype=bool)
    y = np.full((*x.shape[:2], *out_hw), -np.inf, dtype=x.dtype)
    index = np.zeros(y.shape, dtype=np.uint8)
    for i in range(kh):
        for j in range(kw):
            where = _offset(i, j, out_hw, stride)
            candidate, tap_is_input = xp[where], is_input[where[2:]]
            better = (candidate > y) | np.isnan(candidate) | (tap_is_input & ~seen_input)
            seen_input |= tap_is_input
            y = np.where(better, candidate, y)
            index[better] = i * kw + j
    return y, index


def maxpool2d_bwd(
    dy: FloatArray,
    index: NDArray[np.uint8],
    *,
    input_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair = (0, 0),
) -> FloatArray:
    """Gradient of maxpool2d_fwd: each dy goes to its window's argmax; overlapping windows add.

    Args:
        dy: gradient of the output, N×C×OH×OW.
        index: the index returned by maxpool2d_fwd.
        input_hw: (H, W) of the forward input.
        kernel, stride, padding: as in the forward pass.

    Returns:
        dx, N×C×H×W.

    Raises:
        ValueError: index and dy differ in shape.
    """
    dy = _as_float(dy)
    if np.shape(index) != dy.shape:
        raise ValueError(f"index is {np.shape(index)} but dy is {dy.shape}")
    kh, kw = kernel
    out_hw = (dy.shape[2], dy.shape[3])
    canvas_hw = _canvas_hw(input_hw, out_hw, kernel, stride, padding)
    dxp = np.zeros((*dy.shape[:2], *canvas_hw), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[_offset(i, j, out_hw, stride)] += np.where(index == i * kw + j, dy, 0)
    return _crop(dxp, input_hw, padding)


def _avg_divisor(
    in_size: int, out_size: int, kernel: int, stride: int, padding: int, count_include_pad: bool
) -> NDArray[np.int64]:
    """Per-output window length along one axis, by torch's avg_pool2d rule.

    With count_include_pad the window is clipped to the padded input (which matters for the
    extra windows of ceil_mode); without it, to the input itself.
    """
    start = np.arange(out_size) * stride - padding
    end = np.minimum(start + kernel, in_size + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, in_size) - np.maximum(start, 0)


def _avg_divisors(
    in_hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pair, count_include_pad: bool
) -> NDArray[np.int64]:
    rows = _avg_divisor(in_hw[0], out_hw[0], kernel[0], stride[0], padding[0], count_include_pad)
    cols = _avg_divisor(in_hw[1], out_hw[1], kernel[1], stride[1], padding[1], count_include_pad)
    return np.outer(rows, cols)


def avgpool2d_fwd(
    x: FloatArray,
    *,
    kernel: Pair,
    stride: Pair,
    padding: Pair = (0, 0),
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> FloatArray:
    """Average pooling, as torch.nn.functional.avg_pool2d, divisors included.

    Args:
        x: input, N×C×H×W.
        kernel: (KH, KW) window.
        stride: (h, w) step between windows.
        padding: (h, w) zeros on each side, at most half the kernel.
        ceil_mode: round the output size up; a window may not start in the right padding.
        count_include_pad: divide by the window clipped to the padded input (True) or to the
            input (False).

    Returns:
        y, N×C×OH×OW.

    Raises:
        ValueError: padding above half the kernel, or no output.
    """
    x = _as_float(x)
    _check_pool(kernel, padding)
    in_hw = (x.shape[2], x.shape[3])
    out_hw = _out_hw(in_hw, kernel, stride, padding, (1, 1), ceil_mode)
    xp = _pad(x, padding, canvas_hw=_canvas_hw(in_hw, out_hw, kernel, stride, padding))
    total = np.zeros((*x.shape[:2], *out_hw), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            total += xp[_offset(i, j, out_hw, stride)]
    divisor = _avg_divisors(in_hw, out_hw, kernel, stride, padding, count_include_pad)
    return total / divisor.astype(x.dtype)


def avgpool2d_bwd(
    dy: FloatArray,
    *,
    input_hw: Pair,
    kernel: Pair,
    stride: Pair,
    padding: Pair = (0, 0),
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> FloatArray:
    """Gradient of avgpool2d_fwd: each dy, over its divisor, goes to every tap of its window.

    Args:
        dy: gradient of the output, N×C×OH×OW.
        input_hw: (H, W) of the forward input.
        kernel, stride, padding, ceil_mode, count_include_pad: as in the forward pass.

    Returns:
        dx, N×C×H×W.

    Raises:
        ValueError: dy's size does not match input_hw and the pooling parameters.
    """
    dy = _as_float(dy)
    _check_pool(kernel, padding)
    out_hw = _out_hw(input_hw, kernel, stride, padding, (1, 1), ceil_mode)
    _check_out_hw(dy, out_hw, "avgpool2d_bwd")
    divisor = _avg_divisors(input_hw, out_hw, kernel, stride, padding, count_include_pad)
    share = dy / divisor.astype(dy.dtype)
    dxp = np.zeros(
        (*dy.shape[:2], *_canvas_hw(input_hw, out_hw, kernel, stride, padding)), dtype=dy.dtype
    )
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            dxp[_offset(i, j, out_hw, stride)] += share
    return _crop(dxp, input_hw, padding)


def _adaptive_matrix(in_size: int, out_size: int, dtype: np.dtype[Any]) -> FloatArray:
    """out×in averaging matrix: row i averages [floor(i·in/out), ceil((i+1)·in/out))."""
    i = np.arange(out_size)
    start = (i * in_size) // out_size
    end = -((-(i + 1) * in_size) // out_size)
    position = np.arange(in_size)
    inside = (position >= start[:, None]) & (position < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avgpool2d_fwd(x: FloatArray, *, output_hw: Pair) -> FloatArray:
    """Adaptive average pooling, as torch.nn.functional.adaptive_avg_pool2d.

    Args:
        x: input, N×C×H×W.
        output_hw: (OH, OW).

    Returns:
        y, N×C×OH×OW.
    """
    x = _as_float(x)
    rows = _adaptive_matrix(x.shape[2], output_hw[0], x.dtype)
    cols = _adaptive_matrix(x.shape[3], output_hw[1], x.dtype)
    y: FloatArray = np.einsum("ih,nchw,jw->ncij", rows, x, cols)
    return y


def adaptive_avgpool2d_bwd(dy: FloatArray, *, input_hw: Pair) -> FloatArray:
    """Gradient of adaptive_avgpool2d_fwd.

    Args:
        dy: gradient of the output, N×C×OH×OW.
        input_hw: (H, W) of the forward input.

    Returns:
        dx, N×C×H×W.
    """
    dy = _as_float(dy)
    rows = _adaptive_matrix(input_hw[0], dy.shape[2], dy.dtype)
    cols = _adaptive_matrix(input_hw[1], dy.shape[3], dy.dtype)
    dx: FloatArray = np.einsum("ih,ncij,jw->nchw", rows, dy, cols)
    return dx


def global_avgpool_fwd(x: FloatArray) -> FloatArray:
    """Mean over H and W: N×C×H×W → N×C×1×1."""
    y: FloatArray = _as_float(x).mean(axis=(2, 3), keepdims=True)
    return y


def global_avgpool_bwd(dy: FloatArray, *, input_hw: Pair) -> FloatArray:
    """Gradient of global_avgpool_fwd: dy/(H·W) to every position of an H×W map."""
    dy = _as_float(dy)
    share = dy / math.prod(input_hw)
    return np.broadcast_to(share, (*dy.shape[:2], *input_hw)).copy()
