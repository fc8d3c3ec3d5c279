"""NumPy reference classifier head: fully connected layers and softmax cross-entropy, forward and
backward. bnsim.verify.reference re-exports them.
"""

from __future__ import annotations

import numpy as np

from bnsim.verify.reference.arrays import (
    FloatArray,
    IntArray,
    _as_float,
)


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
