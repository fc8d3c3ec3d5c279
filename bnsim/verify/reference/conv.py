"""NumPy reference convolutions (grouped, strided, dilated, padded), forward and backward."""

from __future__ import annotations

import numpy as np

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
