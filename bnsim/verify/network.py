"""The layer-by-layer reference training step: forward, loss, backward and SGD update of a Network.

Written directly from the graph with whole-tensor reference ops, sharing no code with the schedules,
so that running a schedule tile by tile and comparing with this is a real check. Results use the
schedules' tensor names (`dw:conv1`, `grad:input`, `running_var:bn1`, ...). With a sampling rule, BN
statistics come from the sampled elements (batch/feature sampling) or from a virtual batch pushed
through the network first (VDN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bnsim.graph import LayerKind, Network, rebuild
from bnsim.graph.layer import (
    INPUT_GRADIENT_ACTIVATIONS,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    ChannelShuffle,
    Chunk,
    Conv2d,
    Dropout,
    Layer,
    Linear,
    MaxPool2d,
    StochasticDepth,
)
from bnsim.schedule.selection import Sampling, select
from bnsim.verify import activations as act
from bnsim.verify import reference as ref

Array = NDArray[Any]
SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}


@dataclass
class _Pass:
    """Tensors of one forward (and backward) pass."""

    net: Network
    params: dict[str, Array]
    acts: dict[str, Array] = field(default_factory=dict)
    saved: dict[str, Any] = field(default_factory=dict)  # per-layer extras: BN stats, pool indices


def reference_step(
    network: Network,
    params: Mapping[str, Array],
    inputs: Mapping[str, Array],
    *,
    sampling: Sampling | None = None,
    dropout_seed: int = 0,
) -> dict[str, Array]:
    """One training iteration, layer by layer: losses, outputs, every gradient and the new state.

    Args:
        network: the forward graph.
        params: weights (`w:`, `b:`, `gamma:`, `beta:`), momenta (`v:w:...`), running statistics.
        inputs: `act:input` (the images), `labels`, and for VDN `virtual/act:input`.
        sampling: how BN statistics are sampled, if they are.
        dropout_seed: seed of the dropout masks (as the schedule executor's).
    """
    state = {name: np.array(value, copy=True) for name, value in params.items()}
    results: dict[str, Array] = {}
    virtual_stats: dict[str, tuple[Array, Array]] | None = None
    if sampling is not None and sampling.method == "virtual":
        virtual_stats = _virtual_statistics(
            network, state, inputs["virtual/act:input"], sampling, dropout_seed
        )
    forward = _Pass(network, state)
    _forward(forward, inputs["act:input"], sampling, virtual_stats, dropout_seed, state)
    for name, value in forward.acts.items():
        results[f"act:{name}"] = value
    _backward(forward, inputs["labels"], sampling, virtual_stats, results)
    for name in list(state):
        if name.startswith(("w:", "b:", "gamma:", "beta:")):
            gradient = results[f"d{name}"]
            new_weight, new_velocity = ref.sgd_momentum_update(
                state[name], gradient, state[f"v:{name}"], **SGD
            )
            state[name], state[f"v:{name}"] = new_weight, new_velocity
    results.update(state)
    return results


def _virtual_statistics(
    network: Network, state: dict[str, Array], images: Array, sampling: Sampling, dropout_seed: int
) -> dict[str, tuple[Array, Array]]:
    """BN statistics of the virtual batch, run forward with each BN normalizing by its own stats."""
    virtual = _Pass(rebuild(network, batch=images.shape[0]), state)
    _forward(virtual, images, None, None, dropout_seed, state, stop_after_last_bn=True)
    return {name: value for name, value in virtual.saved.items() if isinstance(value, tuple)}


def _forward(
    run: _Pass,
    images: Array,
    sampling: Sampling | None,
    fixed_stats: dict[str, tuple[Array, Array]] | None,
    dropout_seed: int,
    state: dict[str, Array],
    *,
    stop_after_last_bn: bool = False,
) -> None:
    net = run.net
    last_bn = max(
        (i for i, layer in enumerate(net.layers) if layer.layer_kind is LayerKind.BATCHNORM2D),
        default=-1,
    )
    for position, layer in enumerate(net.layers):
        if stop_after_last_bn and position > last_bn:
            return
        xs = [run.acts[source] for source in layer.inputs]
        run.acts[layer.name] = _layer_forward(
            run, layer, xs, images, sampling, fixed_stats, dropout_seed, state
        )


def _layer_forward(
    run: _Pass,
    layer: Layer,
    xs: list[Array],
    images: Array,
    sampling: Sampling | None,
    fixed_stats: dict[str, tuple[Array, Array]] | None,
    dropout_seed: int,
    state: dict[str, Array],
) -> Array:
    name, kind, p = layer.name, layer.layer_kind, run.params
    if kind is LayerKind.INPUT:
        return images
    x = xs[0] if xs else images
    if isinstance(layer, Conv2d):
        return ref.conv2d_fwd(
            x,
            p[f"w:{name}"],
            p.get(f"b:{name}"),
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
        )
    if isinstance(layer, BatchNorm2d):
        mask = _mask(sampling, name, run.net, x)
        if fixed_stats is not None:
            mean, var = fixed_stats[name]
        else:
            mean, var = ref.batchnorm_stats(x, sample_mask=mask)
            count = x.size / x.shape[1] if mask is None else mask.sum()
            unbiased = var * count / (count - 1) if count > 1 else var
            state[f"running_mean:{name}"] = (1 - layer.momentum) * state[
                f"running_mean:{name}"
            ] + layer.momentum * mean
            state[f"running_var:{name}"] = (1 - layer.momentum) * state[
                f"running_var:{name}"
            ] + layer.momentum * unbiased
        run.saved[name] = (mean, var)
        return ref.batchnorm_apply(
            x, mean, var, p[f"gamma:{name}"], p[f"beta:{name}"], eps=layer.eps
        )
    if kind is LayerKind.RELU:
        return ref.relu_fwd(x)
    if kind is LayerKind.RELU6:
        return ref.relu6_fwd(x)
    if kind.category == "activation":
        return act.activation_fwd(kind.value, x)
    if kind is LayerKind.MUL:
        return act.scale_fwd(x, xs[1])
    if isinstance(layer, MaxPool2d):
        y, index = ref.maxpool2d_fwd(
            x,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
        )
        run.saved[name] = index
        return y
    if isinstance(layer, AvgPool2d):
        return ref.avgpool2d_fwd(
            x,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    if isinstance(layer, AdaptiveAvgPool2d):
        return ref.adaptive_avgpool2d_fwd(x, output_hw=layer.output_size)
    if kind is LayerKind.GLOBAL_AVGPOOL:
        return ref.global_avgpool_fwd(x)
    if kind is LayerKind.CONCAT:
        return np.concatenate(xs, axis=1)
    if isinstance(layer, Chunk):
        start, stop = layer.channel_range(x.shape[1])
        return x[:, start:stop]
    if isinstance(layer, ChannelShuffle):
        return ref.channel_shuffle(x, layer.groups)
    if kind is LayerKind.ADD:
        return sum(xs[1:], xs[0])
    if kind is LayerKind.FLATTEN:
        return x.reshape(x.shape[0], -1, 1, 1)
    if isinstance(layer, Linear):
        return ref.linear_fwd(x, p[f"w:{name}"], p.get(f"b:{name}"))
    if isinstance(layer, Dropout | StochasticDepth):
        shape = x.shape if isinstance(layer, Dropout) else (x.shape[0], 1, 1, 1)
        keep = ref.dropout_mask(name, shape, layer.p, dropout_seed)
        run.saved[name] = keep
        return ref.dropout_fwd(x, keep, p=layer.p)
    if kind is LayerKind.SOFTMAX_CROSS_ENTROPY:
        return x  # the loss is computed in _backward, which needs the labels
    raise AssertionError(f"no reference forward for {kind}")


def _mask(sampling: Sampling | None, name: str, net: Network, x: Array) -> Array | None:
    if sampling is None or sampling.method == "virtual":
        return None
    return select(sampling, name, net.in_shapes(name)[0]).mask(net.in_shapes(name)[0])


def _backward(
    run: _Pass,
    labels: Array,
    sampling: Sampling | None,
    fixed_stats: dict[str, tuple[Array, Array]] | None,
    results: dict[str, Array],
) -> None:
    grads: dict[str, Array] = {}
    for layer in reversed(run.net.layers):
        name = layer.name
        if layer.layer_kind is LayerKind.SOFTMAX_CROSS_ENTROPY:
            loss, log_probs = ref.softmax_cross_entropy_fwd(run.acts[layer.inputs[0]], labels)
            results[f"loss:{name}"] = np.array([loss])
            parts = [(layer.inputs[0], ref.softmax_cross_entropy_bwd(log_probs, labels))]
        elif name not in grads:
            continue
        elif layer.layer_kind is LayerKind.INPUT:
            results["grad:input"] = grads[name]
            continue
        else:
            parts = _layer_backward(run, layer, grads[name], sampling, fixed_stats, results)
        for source, part in parts:
            value = part.reshape(run.acts[source].shape)
            grads[source] = grads[source] + value if source in grads else value


def _layer_backward(
    run: _Pass,
    layer: Layer,
    dy: Array,
    sampling: Sampling | None,
    fixed_stats: dict[str, tuple[Array, Array]] | None,
    results: dict[str, Array],
) -> list[tuple[str, Array]]:
    """Gradient contributions of one layer to its inputs; parameter gradients go into `results`."""
    name, kind, p = layer.name, layer.layer_kind, run.params
    source = layer.inputs[0]
    x = run.acts[source]
    if isinstance(layer, Conv2d):
        results[f"dw:{name}"] = ref.conv2d_bwd_weight(
            x,
            dy,
            kernel_hw=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
        )
        if layer.bias:
            results[f"db:{name}"] = dy.sum((0, 2, 3))
        dx = ref.conv2d_bwd_data(
            dy,
            p[f"w:{name}"],
            input_hw=x.shape[2:],
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
        )
        return [(source, dx)]
    if isinstance(layer, BatchNorm2d):
        mean, var = run.saved[name]
        results[f"mean:{name}"], results[f"var:{name}"] = mean, var
        dx, dgamma, dbeta = ref.batchnorm_bwd(
            dy,
            x,
            mean,
            var,
            p[f"gamma:{name}"],
            eps=layer.eps,
            sample_mask=_mask(sampling, name, run.net, x),
            stats_gradient=fixed_stats is None,
        )
        results[f"dgamma:{name}"], results[f"dbeta:{name}"] = dgamma, dbeta
        return [(source, dx)]
    if kind is LayerKind.RELU:
        return [(source, ref.relu_bwd(dy, run.acts[name]))]
    if kind is LayerKind.RELU6:
        return [(source, ref.relu6_bwd(dy, run.acts[name]))]
    if kind.category == "activation":
        saved = x if kind.value in INPUT_GRADIENT_ACTIVATIONS else run.acts[name]
        return [(source, act.activation_bwd(kind.value, dy, saved))]
    if kind is LayerKind.MUL:
        scale = run.acts[layer.inputs[1]]
        return [
            (source, act.scale_bwd_data(dy, scale)),
            (layer.inputs[1], act.scale_bwd_scale(dy, x)),
        ]
    if isinstance(layer, MaxPool2d):
        return [
            (
                source,
                ref.maxpool2d_bwd(
                    dy,
                    run.saved[name],
                    input_hw=x.shape[2:],
                    kernel=layer.kernel,
                    stride=layer.stride,
                    padding=layer.padding,
                ),
            )
        ]
    if isinstance(layer, AvgPool2d):
        return [
            (
                source,
                ref.avgpool2d_bwd(
                    dy,
                    input_hw=x.shape[2:],
                    kernel=layer.kernel,
                    stride=layer.stride,
                    padding=layer.padding,
                    ceil_mode=layer.ceil_mode,
                    count_include_pad=layer.count_include_pad,
                ),
            )
        ]
    if isinstance(layer, AdaptiveAvgPool2d):
        return [(source, ref.adaptive_avgpool2d_bwd(dy, input_hw=x.shape[2:]))]
    if kind is LayerKind.GLOBAL_AVGPOOL:
        return [(source, ref.global_avgpool_bwd(dy, input_hw=x.shape[2:]))]
    if kind is LayerKind.CONCAT:
        bounds = np.cumsum([0, *(run.acts[s].shape[1] for s in layer.inputs)])
        return [(s, dy[:, bounds[i] : bounds[i + 1]]) for i, s in enumerate(layer.inputs)]
    if kind in (LayerKind.ADD, LayerKind.FLATTEN):
        return [(s, dy) for s in layer.inputs]
    if isinstance(layer, Chunk):
        start, stop = layer.channel_range(x.shape[1])
        whole = np.zeros_like(x)
        whole[:, start:stop] = dy
        return [(source, whole)]
    if isinstance(layer, ChannelShuffle):
        return [(source, ref.channel_shuffle_bwd(dy, layer.groups))]
    if isinstance(layer, Linear):
        dw, db = ref.linear_bwd_weight(x.reshape(x.shape[0], -1), dy.reshape(dy.shape[0], -1))
        results[f"dw:{name}"] = dw
        if layer.bias:
            results[f"db:{name}"] = db
        return [(source, ref.linear_bwd_data(dy, p[f"w:{name}"]))]
    if isinstance(layer, Dropout | StochasticDepth):
        return [(source, ref.dropout_bwd(dy, run.saved[name], p=layer.p))]
    raise AssertionError(f"no reference backward for {kind}")
