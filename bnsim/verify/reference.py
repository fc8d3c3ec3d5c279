"""NumPy reference forward and backward kernels of CNN training: the definition of every op.

Tensors are NCHW. Each function is plain, vectorised NumPy written for clarity, not speed; a
schedule computes the right numbers exactly when it matches these. Results keep the floating
dtype of the inputs (float32 in, float32 out); integer inputs are computed in float64. Window
ops follow torch.nn.functional (conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d) including
ceil_mode and count_include_pad. Bad arguments raise ValueError.
"""

from __future__ import annotations

import math
import zlib
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


def _check_conv(num_channels: int, w_shape: tuple[int, ...], groups: int) -> None:
    out_channels, group_channels = w_shape[0], w_shape[1]
    if groups < 1 or num_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide input channels ({num_channels}) "
            f"and output channels ({out_channels})"
        )
    if group_channels != num_channels // groups:
        raise ValueError(
            f"weight has {group_channels} input channels per group, expected "
            f"{num_channels // groups} ({num_channels} channels / {groups} groups)"
        )


def conv2d_fwd(
    x: FloatArray,
    w: FloatArray,
    b: FloatArray | None = None,
    *,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> FloatArray:
    """2-D convolution (cross-correlation), as torch.nn.functional.conv2d.

    Args:
        x: input, N×C×H×W.
        w: weights, OC×(C/groups)×KH×KW.
        b: bias of OC elements, or None.
        stride: (h, w) step between windows.
        padding: (h, w) zeros added on each side.
        dilation: (h, w) spacing of the kernel taps.
        groups: channel groups; groups == C == OC is a depthwise convolution.

    Returns:
        y, N×OC×OH×OW.

    Raises:
        ValueError: shapes and groups do not agree, or the kernel does not fit.
    """
    x, w = _as_float(x), _as_float(w)
    n, c, h, width = x.shape
    oc, cg, kh, kw = w.shape
    _check_conv(c, w.shape, groups)
    out_hw = _out_hw((h, width), (kh, kw), stride, padding, dilation, ceil=False)
    xp = _pad(x, padding)
    wg = w.reshape(groups, oc // groups, cg, kh, kw)
    y = np.zeros((n, groups, oc // groups, *out_hw), dtype=np.result_type(x, w))
    for i in range(kh):
        for j in range(kw):
            patch = xp[_offset(i, j, out_hw, stride, dilation)].reshape(n, groups, cg, *out_hw)
            y += np.einsum("ngchw,goc->ngohw", patch, wg[:, :, :, i, j])
    y = y.reshape(n, oc, *out_hw)
    if b is not None:
        y = y + _as_float(b).reshape(1, oc, 1, 1)
    return y


def conv2d_bwd_data(
    dy: FloatArray,
    w: FloatArray,
    *,
    input_hw: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> FloatArray:
    """Gradient of conv2d_fwd with respect to its input x.

    Args:
        dy: gradient of the output, N×OC×OH×OW.
        w: weights, OC×(C/groups)×KH×KW.
        input_hw: (H, W) of x; several input sizes give the same output size.
        stride, padding, dilation, groups: as in the forward pass.

    Returns:
        dx, N×C×H×W.

    Raises:
        ValueError: dy's size does not match input_hw, or shapes and groups do not agree.
    """
    dy, w = _as_float(dy), _as_float(w)
    n, oc = dy.shape[:2]
    _, cg, kh, kw = w.shape
    c = cg * groups
    _check_conv(c, w.shape, groups)
    out_hw = _out_hw(input_hw, (kh, kw), stride, padding, dilation, ceil=False)
    _check_out_hw(dy, out_hw, "conv2d_bwd_data")
    dxp = np.zeros(
        (n, c, input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1]),
        dtype=np.result_type(dy, w),
    )
    dyg = dy.reshape(n, groups, oc // groups, *out_hw)
    wg = w.reshape(groups, oc // groups, cg, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contribution = np.einsum("ngohw,goc->ngchw", dyg, wg[:, :, :, i, j])
            dxp[_offset(i, j, out_hw, stride, dilation)] += contribution.reshape(n, c, *out_hw)
    return _crop(dxp, input_hw, padding)


def conv2d_bwd_weight(
    x: FloatArray,
    dy: FloatArray,
    *,
    kernel_hw: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
    groups: int = 1,
) -> FloatArray:
    """Gradient of conv2d_fwd with respect to its weights (the bias gradient is Σ dy over N,H,W).

    Args:
        x: the forward input, N×C×H×W.
        dy: gradient of the output, N×OC×OH×OW.
        kernel_hw: (KH, KW).
        stride, padding, dilation, groups: as in the forward pass.

    Returns:
        dw, OC×(C/groups)×KH×KW.

    Raises:
        ValueError: dy's size does not match x, or groups do not divide the channels.
    """
    x, dy = _as_float(x), _as_float(dy)
    n, c, h, width = x.shape
    oc = dy.shape[1]
    kh, kw = kernel_hw
    if groups < 1 or c % groups or oc % groups:
        raise ValueError(f"groups={groups} must divide input ({c}) and output ({oc}) channels")
    out_hw = _out_hw((h, width), kernel_hw, stride, padding, dilation, ceil=False)
    _check_out_hw(dy, out_hw, "conv2d_bwd_weight")
    xp = _pad(x, padding)
    cg = c // groups
    dyg = dy.reshape(n, groups, oc // groups, *out_hw)
    dw = np.zeros((groups, oc // groups, cg, kh, kw), dtype=np.result_type(x, dy))
    for i in range(kh):
        for j in range(kw):
            patch = xp[_offset(i, j, out_hw, stride, dilation)].reshape(n, groups, cg, *out_hw)
            dw[:, :, :, i, j] = np.einsum("ngchw,ngohw->goc", patch, dyg)
    return dw.reshape(oc, cg, kh, kw)


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


def _canvas_hw(in_hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """Size of the padded input plus any extra right margin that ceil_mode windows reach."""
    return (
        max(in_hw[0] + 2 * padding[0], (out_hw[0] - 1) * stride[0] + kernel[0]),
        max(in_hw[1] + 2 * padding[1], (out_hw[1] - 1) * stride[1] + kernel[1]),
    )


def _crop(dxp: FloatArray, input_hw: Pair, padding: Pair) -> FloatArray:
    """The input region of a padded gradient canvas."""
    return dxp[:, :, padding[0] : padding[0] + input_hw[0], padding[1] : padding[1] + input_hw[1]]


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


def _flat(a: FloatArray, what: str) -> FloatArray:
    """N×F from N×F or N×F×1×1."""
    a = _as_float(a)
    if a.ndim == 4 and a.shape[2:] == (1, 1):
        return a.reshape(a.shape[0], a.shape[1])
    if a.ndim != 2:
        raise ValueError(f"{what} must be N×F or N×F×1×1, got shape {a.shape}")
    return a


def _like(a: FloatArray, reference: FloatArray) -> FloatArray:
    """a (N×F) reshaped to N×F×1×1 if reference is 4-D."""
    return a.reshape(*a.shape, 1, 1) if np.ndim(reference) == 4 else a


def linear_fwd(x: FloatArray, w: FloatArray, b: FloatArray | None = None) -> FloatArray:
    """y = x·wᵀ + b, as torch.nn.functional.linear.

    Args:
        x: input, N×IN or N×IN×1×1.
        w: weights, OUT×IN.
        b: bias of OUT elements, or None.

    Returns:
        y, N×OUT (N×OUT×1×1 for a 4-D x).

    Raises:
        ValueError: x is neither N×IN nor N×IN×1×1.
    """
    y = _flat(x, "x") @ _as_float(w).T
    if b is not None:
        y = y + _as_float(b)
    return _like(y, x)


def linear_bwd_data(dy: FloatArray, w: FloatArray) -> FloatArray:
    """dx = dy·w, of shape N×IN (N×IN×1×1 for a 4-D dy).

    Raises:
        ValueError: dy is neither N×OUT nor N×OUT×1×1.
    """
    return _like(_flat(dy, "dy") @ _as_float(w), dy)


def linear_bwd_weight(x: FloatArray, dy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(dw, db) = (dyᵀ·x, Σ_n dy): OUT×IN and OUT elements.

    Raises:
        ValueError: x or dy is neither 2-D nor N×F×1×1.
    """
    dy_flat = _flat(dy, "dy")
    return dy_flat.T @ _flat(x, "x"), dy_flat.sum(axis=0)


def _check_labels(labels: IntArray, num_samples: int, num_classes: int) -> IntArray:
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (num_samples,):
        raise ValueError(
            f"labels must be {num_samples} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    return labels


def softmax_cross_entropy_fwd(logits: FloatArray, labels: IntArray) -> tuple[float, FloatArray]:
    """Mean over the batch of −log softmax(logits)[label], via log-sum-exp.

    Args:
        logits: N×K or N×K×1×1.
        labels: N integer class indices in [0, K).

    Returns:
        (loss, log_probs): the mean loss, and log-softmax shaped like logits.

    Raises:
        ValueError: bad logits shape, or labels of the wrong type, length or range.
    """
    z = _flat(logits, "logits")
    labels = _check_labels(labels, z.shape[0], z.shape[1])
    shifted = z - z.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(z.shape[0]), labels].mean()
    return float(loss), _like(log_probs, logits)


def softmax_cross_entropy_bwd(
    log_probs: FloatArray, labels: IntArray, *, scale: float = 1.0
) -> FloatArray:
    """d(loss)/d(logits)·scale = (softmax − onehot(labels))·scale/N, shaped like log_probs.

    Args:
        log_probs: from softmax_cross_entropy_fwd.
        labels: N integer class indices.
        scale: multiplies the gradient (e.g. a loss scale).

    Returns:
        dlogits.

    Raises:
        ValueError: bad shape, or labels of the wrong type, length or range.
    """
    lp = _flat(log_probs, "log_probs")
    labels = _check_labels(labels, lp.shape[0], lp.shape[1])
    grad = np.exp(lp)
    grad[np.arange(lp.shape[0]), labels] -= 1
    return _like(grad * (scale / lp.shape[0]), log_probs)


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
