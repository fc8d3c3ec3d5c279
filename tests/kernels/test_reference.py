"""The NumPy reference kernels: gradients against finite differences, hand-worked values, dtypes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose
from numpy.typing import NDArray

from bnsim.verify import reference as ref

Array = NDArray[Any]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def numeric_gradient(f: Callable[[Array], Any], x: Array, dy: Any, eps: float = 1e-6) -> Array:
    """Central differences of Σ f(x)·dy with respect to every element of x (x is restored)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        plus = np.sum(np.asarray(f(x)) * dy)
        x[i] = original - eps
        minus = np.sum(np.asarray(f(x)) * dy)
        x[i] = original
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def assert_gradient(analytic: Array, f: Callable[[Array], Any], x: Array, dy: Any) -> None:
    assert analytic.shape == x.shape
    assert_allclose(analytic, numeric_gradient(f, x, dy), rtol=1e-5, atol=1e-7)


# ---- convolution -------------------------------------------------------------------------------

CONV_CASES = {
    # name: (N, C, OC, H, W, kernel, stride, padding, dilation, groups)
    "plain": (2, 3, 4, 5, 5, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    "strided_padded": (2, 2, 3, 6, 5, (3, 3), (2, 2), (1, 1), (1, 1), 1),
    "asymmetric": (1, 2, 2, 7, 6, (2, 3), (3, 1), (1, 2), (1, 1), 1),
    "dilated": (1, 2, 3, 7, 7, (3, 3), (1, 2), (2, 1), (2, 3), 1),
    "grouped": (2, 4, 6, 5, 5, (3, 3), (2, 1), (1, 1), (1, 1), 2),
    "depthwise": (2, 3, 3, 5, 6, (3, 3), (2, 2), (1, 1), (1, 1), 3),
    "pointwise_strided": (1, 3, 2, 5, 5, (1, 1), (2, 2), (0, 0), (1, 1), 1),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_gradients_match_finite_differences(case: tuple[Any, ...]) -> None:
    n, c, oc, h, w, kernel, stride, padding, dilation, groups = case
    g = rng(1)
    x = g.standard_normal((n, c, h, w))
    weight = g.standard_normal((oc, c // groups, *kernel))
    bias = g.standard_normal(oc)
    geometry = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    y = ref.conv2d_fwd(x, weight, bias, **geometry)
    dy = g.standard_normal(y.shape)

    dx = ref.conv2d_bwd_data(dy, weight, input_hw=(h, w), **geometry)
    assert_gradient(dx, lambda v: ref.conv2d_fwd(v, weight, bias, **geometry), x, dy)
    dw = ref.conv2d_bwd_weight(x, dy, kernel_hw=kernel, **geometry)
    assert_gradient(dw, lambda v: ref.conv2d_fwd(x, v, bias, **geometry), weight, dy)
    db = dy.sum(axis=(0, 2, 3))
    assert_gradient(db, lambda v: ref.conv2d_fwd(x, weight, v, **geometry), bias, dy)


def test_conv2d_by_hand() -> None:
    """x = 0..15 as 4×4, w = 0..8 as 3×3, no padding.

    y[0,0] = Σ_{r,c<3} (4r+c)(3r+c) = 12·15 + 7·9 + 15 = 258; shifting the window by one column
    adds Σ w = 36 (→ 294), by one row adds 4·36 (→ 402), by both 5·36 (→ 438). With bias 1.
    """
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    y = ref.conv2d_fwd(x, w, np.array([1.0]))
    assert_allclose(y, [[[[259.0, 295.0], [403.0, 439.0]]]])


def test_conv2d_backward_by_hand() -> None:
    """A one-hot dy at output (1, 0) places w at rows 1..3, cols 0..2 of dx, and makes dw the
    input window it saw: x[1:4, 0:3]."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    dy = np.zeros((1, 1, 2, 2))
    dy[0, 0, 1, 0] = 1.0
    dx = ref.conv2d_bwd_data(dy, w, input_hw=(4, 4))
    expected = np.zeros((4, 4))
    expected[1:4, 0:3] = w[0, 0]
    assert_allclose(dx[0, 0], expected)
    assert_allclose(ref.conv2d_bwd_weight(x, dy, kernel_hw=(3, 3))[0, 0], x[0, 0, 1:4, 0:3])


def test_conv2d_bwd_data_uses_input_hw_when_sizes_alias() -> None:
    """Inputs of 5 and 6 both give 2 outputs for kernel 3, stride 2; input_hw decides dx's size,
    and the column no window reads gets a zero gradient."""
    w = np.ones((1, 1, 3, 3))
    dy = np.ones((1, 1, 2, 2))
    dx = ref.conv2d_bwd_data(dy, w, input_hw=(5, 6), stride=(2, 2))
    assert dx.shape == (1, 1, 5, 6)
    assert_allclose(dx[0, 0, :, 5], 0.0)
    assert_allclose(dx[0, 0, 2, 2], 4.0)  # the centre tap is covered by all four windows


def test_conv2d_rejects_mismatched_groups_and_sizes() -> None:
    x = np.zeros((1, 4, 5, 5))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        ref.conv2d_fwd(x, np.zeros((6, 1, 3, 3)), groups=3)
    with pytest.raises(ValueError, match="2 input channels per group, expected 4"):
        ref.conv2d_fwd(x, np.zeros((6, 2, 3, 3)))
    with pytest.raises(ValueError, match="expected"):
        ref.conv2d_bwd_data(np.zeros((1, 6, 2, 2)), np.zeros((6, 4, 3, 3)), input_hw=(5, 5))


# ---- batch normalization -----------------------------------------------------------------------

BN_SHAPE = (4, 3, 3, 2)


def bn_masks() -> dict[str, NDArray[np.bool_] | None]:
    g = rng(7)
    batch = np.array([True, False, True, True]).reshape(4, 1, 1, 1)
    feature = g.random((1, 1, 3, 2)) < 0.6
    feature[0, 0, 0, 0] = True
    element = g.random(BN_SHAPE) < 0.5
    element[0, :, 0, 0] = True  # every channel keeps at least one element
    return {"none": None, "batch": batch, "feature": feature, "element": element}


@pytest.mark.parametrize("mask_name", ["none", "batch", "feature", "element"])
def test_batchnorm_gradients_match_finite_differences(mask_name: str) -> None:
    mask = bn_masks()[mask_name]
    g = rng(3)
    x = g.standard_normal(BN_SHAPE) * 2 + 1
    gamma, beta = g.standard_normal(3), g.standard_normal(3)
    dy = g.standard_normal(BN_SHAPE)
    eps = 1e-3

    def forward(v: Array, gm: Array = gamma, bt: Array = beta) -> Array:
        mean, var = ref.batchnorm_stats(v, sample_mask=mask)
        return ref.batchnorm_apply(v, mean, var, gm, bt, eps=eps)

    mean, var = ref.batchnorm_stats(x, sample_mask=mask)
    dx, dgamma, dbeta = ref.batchnorm_bwd(dy, x, mean, var, gamma, eps=eps, sample_mask=mask)
    assert_gradient(dx, forward, x, dy)
    assert_gradient(dgamma, lambda v: forward(x, gm=v), gamma, dy)
    assert_gradient(dbeta, lambda v: forward(x, bt=v), beta, dy)


def test_batchnorm_constant_statistics_gradient() -> None:
    """stats_gradient=False is the gradient with mean and var held fixed: gamma/σ·dy."""
    g = rng(4)
    x = g.standard_normal(BN_SHAPE)
    mean, var = g.standard_normal(3), g.random(3) + 0.5  # statistics of other (virtual) samples
    gamma, beta = g.standard_normal(3), g.standard_normal(3)
    dy = g.standard_normal(BN_SHAPE)
    dx, dgamma, dbeta = ref.batchnorm_bwd(dy, x, mean, var, gamma, eps=1e-5, stats_gradient=False)
    sigma = np.sqrt(var + 1e-5).reshape(1, 3, 1, 1)
    assert_allclose(dx, gamma.reshape(1, 3, 1, 1) / sigma * dy)
    assert_gradient(dx, lambda v: ref.batchnorm_apply(v, mean, var, gamma, beta, eps=1e-5), x, dy)
    x_hat = (x - mean.reshape(1, 3, 1, 1)) / sigma
    assert_allclose(dgamma, (dy * x_hat).sum(axis=(0, 2, 3)))
    assert_allclose(dbeta, dy.sum(axis=(0, 2, 3)))


def test_batchnorm_normalizes_and_stats_equal_numpy() -> None:
    x = rng(5).standard_normal((5, 4, 3, 3)) * 3 + 7
    mean, var = ref.batchnorm_stats(x)
    assert_allclose(mean, x.mean(axis=(0, 2, 3)))
    assert_allclose(var, x.var(axis=(0, 2, 3)))
    y = ref.batchnorm_apply(x, mean, var, np.ones(4), np.zeros(4), eps=0.0)
    assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    assert_allclose(y.var(axis=(0, 2, 3)), 1.0)
    shifted = ref.batchnorm_apply(x, mean, var, np.full(4, 2.0), np.full(4, 3.0), eps=0.0)
    assert_allclose(shifted, 2 * y + 3)


def test_batchnorm_masked_stats_cover_the_masked_elements_per_channel() -> None:
    x = rng(6).standard_normal((3, 2, 2, 2))
    mask = np.zeros(x.shape, dtype=bool)
    mask[0, 0] = True  # channel 0: 4 elements
    mask[:, 1, 0, 0] = True  # channel 1: 3 elements
    mean, var = ref.batchnorm_stats(x, sample_mask=mask)
    picked = [x[:, 0][mask[:, 0]], x[:, 1][mask[:, 1]]]
    assert [p.size for p in picked] == [4, 3]
    assert_allclose(mean, [p.mean() for p in picked])
    assert_allclose(var, [p.var() for p in picked])
    batch = ref.batchnorm_stats(x, sample_mask=np.array([True, False, True]).reshape(3, 1, 1, 1))
    assert_allclose(batch[0], x[[0, 2]].mean(axis=(0, 2, 3)))


def test_batchnorm_variance_is_two_pass() -> None:
    """A large offset breaks E[x²] − E[x]²; the centred variance keeps it."""
    x = 1e8 + rng(8).standard_normal((8, 1, 4, 4))
    _, var = ref.batchnorm_stats(x)
    assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=1e-6)


def test_batchnorm_rejects_a_mask_that_empties_a_channel() -> None:
    mask = np.ones((2, 3, 1, 1), dtype=bool)
    mask[:, 1] = False
    with pytest.raises(ValueError, match=r"no element of channels \[1\]"):
        ref.batchnorm_stats(np.zeros((2, 3, 1, 1)), sample_mask=mask)


# ---- activations, dropout, linear, loss --------------------------------------------------------


def away_from_kinks(shape: tuple[int, ...], seed: int) -> Array:
    """Values in (-8, 8) at least 0.05 from 0 and 6, so ±1e-6 never crosses a kink."""
    x = rng(seed).uniform(-8, 8, shape)
    x[np.abs(x) < 0.05] += 0.1
    x[np.abs(x - 6) < 0.05] += 0.1
    return x


@pytest.mark.parametrize(
    ("fwd", "bwd"),
    [(ref.relu_fwd, ref.relu_bwd), (ref.relu6_fwd, ref.relu6_bwd)],
    ids=["relu", "relu6"],
)
def test_activation_gradients_match_finite_differences(
    fwd: Callable[[Array], Array], bwd: Callable[[Array, Array], Array]
) -> None:
    x = away_from_kinks((2, 3, 4, 4), seed=9)
    dy = rng(10).standard_normal(x.shape)
    assert_gradient(bwd(dy, fwd(x)), fwd, x, dy)


def test_activations_by_hand() -> None:
    x = np.array([-1.0, 0.0, 3.0, 6.0, 7.0])
    assert_allclose(ref.relu_fwd(x), [0, 0, 3, 6, 7])
    assert_allclose(ref.relu6_fwd(x), [0, 0, 3, 6, 6])
    ones = np.ones(5)
    assert_allclose(ref.relu_bwd(ones, ref.relu_fwd(x)), [0, 0, 1, 1, 1])
    assert_allclose(ref.relu6_bwd(ones, ref.relu6_fwd(x)), [0, 0, 1, 0, 0])


def test_dropout_gradient_and_scaling() -> None:
    g = rng(11)
    x = g.standard_normal((3, 4, 2, 2))
    mask = g.random(x.shape) < 0.7
    dy = g.standard_normal(x.shape)
    y = ref.dropout_fwd(x, mask, p=0.3)
    assert_allclose(y, np.where(mask, x / 0.7, 0.0))
    dx = ref.dropout_bwd(dy, mask, p=0.3)
    assert_gradient(dx, lambda v: ref.dropout_fwd(v, mask, p=0.3), x, dy)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ref.dropout_fwd(x, mask, p=1.0)


@pytest.mark.parametrize("four_d", [False, True], ids=["2d", "4d"])
def test_linear_gradients_match_finite_differences(four_d: bool) -> None:
    g = rng(12)
    x, w, b = g.standard_normal((3, 5)), g.standard_normal((4, 5)), g.standard_normal(4)
    if four_d:
        x = x.reshape(3, 5, 1, 1)
    y = ref.linear_fwd(x, w, b)
    assert y.shape == ((3, 4, 1, 1) if four_d else (3, 4))
    dy = g.standard_normal(y.shape)
    dx = ref.linear_bwd_data(dy, w)
    assert_gradient(dx, lambda v: ref.linear_fwd(v, w, b), x, dy)
    dw, db = ref.linear_bwd_weight(x, dy)
    assert_gradient(dw, lambda v: ref.linear_fwd(x, v, b), w, dy)
    assert_gradient(db, lambda v: ref.linear_fwd(x, w, v), b, dy)


def test_linear_by_hand_and_rank_errors() -> None:
    y = ref.linear_fwd(
        np.array([[1.0, 2.0]]), np.array([[3.0, 4.0], [5.0, 6.0]]), np.array([1.0, 0])
    )
    assert_allclose(y, [[12.0, 17.0]])
    with pytest.raises(ValueError, match="N×F or N×F×1×1"):
        ref.linear_fwd(np.zeros((2, 3, 2, 2)), np.zeros((4, 12)))


@pytest.mark.parametrize(("scale", "four_d"), [(1.0, False), (3.5, True)])
def test_softmax_cross_entropy_gradient(scale: float, four_d: bool) -> None:
    g = rng(13)
    logits = g.standard_normal((4, 5)) * 3
    labels = np.array([0, 4, 2, 2])
    if four_d:
        logits = logits.reshape(4, 5, 1, 1)
    loss, log_probs = ref.softmax_cross_entropy_fwd(logits, labels)
    assert isinstance(loss, float)
    assert log_probs.shape == logits.shape
    dlogits = ref.softmax_cross_entropy_bwd(log_probs, labels, scale=scale)
    assert_gradient(dlogits, lambda v: ref.softmax_cross_entropy_fwd(v, labels)[0], logits, scale)


def test_softmax_cross_entropy_by_hand_and_stable() -> None:
    """Equal logits: loss = log K. Logits (1000, 0): losses ≈ 0 and 1000, no overflow."""
    loss, _ = ref.softmax_cross_entropy_fwd(np.zeros((2, 4)), np.array([1, 3]))
    assert loss == pytest.approx(np.log(4))
    big = np.array([[1000.0, 0.0], [1000.0, 0.0]])
    loss, log_probs = ref.softmax_cross_entropy_fwd(big, np.array([0, 1]))
    assert loss == pytest.approx(500.0)
    assert np.all(np.isfinite(log_probs))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        ref.softmax_cross_entropy_fwd(big, np.array([0, 2]))


def test_sgd_momentum_by_hand() -> None:
    """d = 0.5 + 0.01·1 = 0.51; v = 0.9·0.2 + 0.51 = 0.69; w = 1 − 0.1·0.69 = 0.931."""
    w_new, v_new = ref.sgd_momentum_update(
        np.array([1.0]), np.array([0.5]), np.array([0.2]), lr=0.1, momentum=0.9, weight_decay=0.01
    )
    assert_allclose(v_new, [0.69])
    assert_allclose(w_new, [0.931])


# ---- pooling -----------------------------------------------------------------------------------

POOL_CASES = {
    # name: (H, W, kernel, stride, padding, ceil_mode)
    "overlapping": (5, 6, (3, 3), (2, 2), (1, 1), False),
    "ceil_clipped": (5, 5, (2, 2), (2, 2), (0, 0), True),
    "ceil_padded": (6, 7, (3, 3), (2, 2), (1, 1), True),
    "asymmetric": (4, 7, (2, 3), (1, 2), (1, 1), True),
}


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_maxpool_gradient_matches_finite_differences(case: tuple[Any, ...]) -> None:
    h, w, kernel, stride, padding, ceil_mode = case
    geometry = {"kernel": kernel, "stride": stride, "padding": padding}
    x = rng(14).standard_normal((2, 2, h, w))
    y, index = ref.maxpool2d_fwd(x, ceil_mode=ceil_mode, **geometry)
    dy = rng(15).standard_normal(y.shape)
    dx = ref.maxpool2d_bwd(dy, index, input_hw=(h, w), **geometry)
    assert_gradient(dx, lambda v: ref.maxpool2d_fwd(v, ceil_mode=ceil_mode, **geometry)[0], x, dy)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_avgpool_gradient_matches_finite_differences(
    case: tuple[Any, ...], count_include_pad: bool
) -> None:
    h, w, kernel, stride, padding, ceil_mode = case
    options = {
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
    }
    x = rng(16).standard_normal((1, 2, h, w))
    y = ref.avgpool2d_fwd(x, **options)
    dy = rng(17).standard_normal(y.shape)
    dx = ref.avgpool2d_bwd(dy, input_hw=(h, w), **options)
    assert_gradient(dx, lambda v: ref.avgpool2d_fwd(v, **options), x, dy)


@pytest.mark.parametrize(
    ("in_hw", "out_hw"), [((7, 5), (3, 2)), ((5, 7), (4, 3)), ((3, 3), (5, 4))]
)
def test_adaptive_avgpool_gradient_matches_finite_differences(
    in_hw: tuple[int, int], out_hw: tuple[int, int]
) -> None:
    x = rng(18).standard_normal((2, 2, *in_hw))
    dy = rng(19).standard_normal((2, 2, *out_hw))
    dx = ref.adaptive_avgpool2d_bwd(dy, input_hw=in_hw)
    assert_gradient(dx, lambda v: ref.adaptive_avgpool2d_fwd(v, output_hw=out_hw), x, dy)


def test_global_avgpool_gradient_and_value() -> None:
    x = rng(20).standard_normal((2, 3, 4, 5))
    y = ref.global_avgpool_fwd(x)
    assert_allclose(y, x.mean(axis=(2, 3), keepdims=True))
    dy = rng(21).standard_normal(y.shape)
    assert_gradient(ref.global_avgpool_bwd(dy, input_hw=(4, 5)), ref.global_avgpool_fwd, x, dy)


def test_adaptive_avgpool_windows_by_hand() -> None:
    """Input 5 → output 3: windows [0,2), [1,4), [3,5) (floor(i·5/3), ceil((i+1)·5/3))."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 1, 1, 5)
    y = ref.adaptive_avgpool2d_fwd(x, output_hw=(1, 3))
    assert_allclose(y[0, 0, 0], [1.5, 3.0, 4.5])


def test_pool_output_size_ceil_mode_window_may_not_start_in_padding() -> None:
    """Input 2, kernel 2, stride 3, padding 1, ceil: ceil((2+2−2)/3)+1 = 2 windows, but the second
    would start at padded index 3 ≥ 2 + 1 (the right padding), so torch keeps 1."""
    x = np.array([4.0, 7.0]).reshape(1, 1, 1, 2)
    options = {"kernel": (1, 2), "stride": (1, 3), "padding": (0, 1), "ceil_mode": True}
    y, index = ref.maxpool2d_fwd(x, **options)
    assert y.shape == (1, 1, 1, 1)
    assert y[0, 0, 0, 0] == 4.0  # window = [pad, x0]
    assert index[0, 0, 0, 0] == 1
    assert ref.avgpool2d_fwd(x, **options).shape == (1, 1, 1, 1)


def test_pool_ceil_mode_clipped_last_window() -> None:
    """Input 5, kernel 2, stride 2, ceil: 3 outputs; the last window [4, 6) is clipped to the
    input (no padding), so both divisor rules divide x[4] by 1."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0]).reshape(1, 1, 1, 5)
    options = {"kernel": (1, 2), "stride": (1, 2), "ceil_mode": True}
    for count_include_pad in (True, False):
        y = ref.avgpool2d_fwd(x, count_include_pad=count_include_pad, **options)
        assert_allclose(y[0, 0, 0], [1.5, 3.5, 10.0])
    y, index = ref.maxpool2d_fwd(x, **options)
    assert_allclose(y[0, 0, 0], [2.0, 4.0, 10.0])
    assert index.tolist() == [[[[1, 1, 0]]]]


def test_avgpool_ceil_window_is_clipped_to_input_plus_padding() -> None:
    """Input 6, kernel 3, stride 2, padding 1, ceil: 4 outputs. The last window starts at 5 and
    would end at 8, but is clipped to 7 = 6 + padding: divisor 2 counting the pad, 1 without.
    The first window [−1, 2) has divisor 3 counting the pad, 2 without."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape(1, 1, 1, 6)
    options = {"kernel": (1, 3), "stride": (1, 2), "padding": (0, 1), "ceil_mode": True}
    with_pad = ref.avgpool2d_fwd(x, count_include_pad=True, **options)
    without_pad = ref.avgpool2d_fwd(x, count_include_pad=False, **options)
    assert_allclose(with_pad[0, 0, 0], [3 / 3, 9 / 3, 15 / 3, 6 / 2])
    assert_allclose(without_pad[0, 0, 0], [3 / 2, 9 / 3, 15 / 3, 6 / 1])


def test_maxpool_first_maximum_wins_and_overlaps_add() -> None:
    x = np.array([[1.0, 3.0, 0.0], [3.0, 2.0, 0.0], [0.0, 0.0, 0.0]]).reshape(1, 1, 3, 3)
    y, index = ref.maxpool2d_fwd(x, kernel=(2, 2), stride=(1, 1))
    assert_allclose(y[0, 0], [[3.0, 3.0], [3.0, 2.0]])
    assert index[0, 0].tolist() == [[1, 0], [0, 0]]
    assert index.dtype == np.uint8
    dx = ref.maxpool2d_bwd(np.ones(y.shape), index, input_hw=(3, 3), kernel=(2, 2), stride=(1, 1))
    assert_allclose(dx[0, 0], [[0.0, 2.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_pool_rejects_bad_arguments() -> None:
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="exceeds half the kernel"):
        ref.avgpool2d_fwd(x, kernel=(2, 2), stride=(2, 2), padding=(2, 0))
    with pytest.raises(ValueError, match="more than 255"):
        ref.maxpool2d_fwd(np.zeros((1, 1, 16, 16)), kernel=(16, 16), stride=(1, 1))


# ---- dtypes ------------------------------------------------------------------------------------


def float32_outputs() -> dict[str, Any]:
    """Every function's outputs on float32 inputs."""
    g = rng(22)

    def f32(*shape: int) -> NDArray[np.float32]:
        return g.standard_normal(shape).astype(np.float32)

    x, w, b = f32(2, 4, 5, 5), f32(4, 2, 3, 3), f32(4)
    conv = {"stride": (2, 1), "padding": (1, 1), "groups": 2}
    y = ref.conv2d_fwd(x, w, b, **conv)
    mask = g.random(x.shape) < 0.5
    mask[0, :, 0, 0] = True
    mean, var = ref.batchnorm_stats(x, sample_mask=mask)
    pool = {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1)}
    pooled, index = ref.maxpool2d_fwd(x, ceil_mode=True, **pool)
    logits, labels = f32(2, 3), np.array([0, 2])
    _, log_probs = ref.softmax_cross_entropy_fwd(logits, labels)
    return {
        "conv2d_fwd": y,
        "conv2d_bwd_data": ref.conv2d_bwd_data(y, w, input_hw=(5, 5), **conv),
        "conv2d_bwd_weight": ref.conv2d_bwd_weight(x, y, kernel_hw=(3, 3), **conv),
        "batchnorm_stats": ref.batchnorm_stats(x),
        "batchnorm_stats_masked": (mean, var),
        "batchnorm_apply": ref.batchnorm_apply(x, mean, var, b, b, eps=1e-5),
        "batchnorm_bwd": ref.batchnorm_bwd(x, x, mean, var, b, eps=1e-5, sample_mask=mask),
        "batchnorm_bwd_const": ref.batchnorm_bwd(
            x, x, mean, var, b, eps=1e-5, stats_gradient=False
        ),
        "relu": (ref.relu_fwd(x), ref.relu_bwd(x, x)),
        "relu6": (ref.relu6_fwd(x), ref.relu6_bwd(x, x)),
        "maxpool2d": (pooled, ref.maxpool2d_bwd(pooled, index, input_hw=(5, 5), **pool)),
        "avgpool2d_fwd": ref.avgpool2d_fwd(x, count_include_pad=False, **pool),
        "avgpool2d_bwd": ref.avgpool2d_bwd(pooled, input_hw=(5, 5), **pool),
        "adaptive_avgpool2d": (
            ref.adaptive_avgpool2d_fwd(x, output_hw=(3, 2)),
            ref.adaptive_avgpool2d_bwd(pooled, input_hw=(7, 4)),
        ),
        "global_avgpool": (
            ref.global_avgpool_fwd(x),
            ref.global_avgpool_bwd(b[None, :, None, None], input_hw=(2, 2)),
        ),
        "linear": (
            ref.linear_fwd(logits, f32(4, 3), b),
            ref.linear_bwd_data(logits, f32(3, 4)),
            *ref.linear_bwd_weight(logits, logits),
        ),
        "softmax_cross_entropy": (
            log_probs,
            ref.softmax_cross_entropy_bwd(log_probs, labels, scale=2.0),
        ),
        "dropout": (ref.dropout_fwd(x, mask, p=0.25), ref.dropout_bwd(x, mask, p=0.25)),
        "sgd_momentum_update": ref.sgd_momentum_update(
            b, b, b, lr=0.1, momentum=0.9, weight_decay=1e-4
        ),
    }


def test_float32_in_float32_out() -> None:
    outputs = float32_outputs()
    for name, result in outputs.items():
        arrays = result if isinstance(result, tuple) else (result,)
        for array in arrays:
            assert array.dtype == np.float32, f"{name} returned {array.dtype}"


def test_integer_inputs_compute_in_float64() -> None:
    x = np.arange(16).reshape(1, 1, 4, 4)
    assert ref.relu_fwd(x).dtype == np.float64
    assert ref.avgpool2d_fwd(x, kernel=(2, 2), stride=(2, 2)).dtype == np.float64
    assert_allclose(ref.batchnorm_stats(x)[0], [7.5])
