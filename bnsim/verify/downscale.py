"""A network down-scaled for verification: channels divided, every layer kept, the smallest image
that fits it (and gives sampled statistics enough elements to be well conditioned).
"""

from __future__ import annotations

import math
from dataclasses import replace

from bnsim.errors import WorkloadError
from bnsim.graph import LayerKind, Network, build_network
from bnsim.graph.layer import Chunk, Conv2d, Layer, Linear
from bnsim.schedule.selection import Sampling, select
from bnsim.schemes import SchemeSpec

IMAGE_SIZES = (32, 48, 64, 75, 96, 128, 160, 224, 299)  # 32 first: several rows per tile


# sampled statistics from fewer elements per channel make a down-scaled network so ill-conditioned
# that rounding decides the comparison (measured: EfficientNet-B1 sampling 8 of 64 samples at 32
# pixels, where its last BNs see 1×1 maps, differs by 2e-8 between two correct tile orders; at
# 64 pixels, 2×2 maps, by 2e-12)
MIN_SAMPLED_ELEMENTS = 32


def downscale(
    network: Network,
    *,
    batch: int = 2,
    width_divisor: int = 8,
    max_classes: int = 10,
    sampling: Sampling | None = None,
) -> Network:
    """A small copy of `network` with the same layers and topology.

    Channels are divided by `width_divisor` (depthwise convs stay depthwise), classifiers keep at
    most `max_classes` outputs, and the image is the smallest of IMAGE_SIZES the network accepts
    (with `sampling`, at which every BN's sampled statistics read MIN_SAMPLED_ELEMENTS per channel,
    or else the largest it accepts).

    Raises:
        WorkloadError: no image size in IMAGE_SIZES fits the network.
    """
    widths: dict[str, int] = {}
    layers: list[Layer] = []
    for layer in network.layers:
        layers.append(_shrink(network, layer, widths, width_divisor, max_classes))
    fitting = None
    for size in IMAGE_SIZES:
        try:
            fitting = build_network(network.name, layers, batch=batch, image=size)
        except WorkloadError:
            continue
        if _fewest_sampled(fitting, sampling) >= MIN_SAMPLED_ELEMENTS:
            return fitting
    if fitting is None:
        raise WorkloadError(
            f"{network.name}: no image size in {IMAGE_SIZES} fits the down-scaled network"
        )
    return fitting


def _fewest_sampled(network: Network, sampling: Sampling | None) -> float:
    """The fewest elements per channel any BN's sampled statistics read (inf: none sampled)."""
    if sampling is None or sampling.method == "virtual":
        return math.inf
    return min(
        (
            select(sampling, name, network.in_shapes(name)[0]).elements_per_channel()
            for name in (layer.name for layer in network.layers_of_kind(LayerKind.BATCHNORM2D))
        ),
        default=math.inf,
    )


def _shrink(
    network: Network, layer: Layer, widths: dict[str, int], divisor: int, max_classes: int
) -> Layer:
    """`layer` with fewer channels; records its output width in `widths`."""
    name = layer.name
    in_width = widths.get(layer.inputs[0]) if layer.inputs else None
    if isinstance(layer, Conv2d):
        original_in = network.in_shapes(name)[0].c
        assert in_width is not None
        if layer.groups == original_in:  # depthwise: one group per channel, as before
            multiplier = layer.out_channels // layer.groups
            out, groups = in_width * multiplier, in_width
        else:
            groups = math.gcd(layer.groups, in_width)
            out = groups * max(1, math.ceil(layer.out_channels / divisor / groups))
        widths[name] = out
        return layer.model_copy(update={"out_channels": out, "groups": groups})
    if isinstance(layer, Linear):
        feeds_loss = any(
            network.layer(c).layer_kind is LayerKind.SOFTMAX_CROSS_ENTROPY
            for c in network.consumers(name)
        )
        out = (
            min(layer.out_features, max_classes)
            if feeds_loss
            else max(1, math.ceil(layer.out_features / divisor))
        )
        widths[name] = out
        return layer.model_copy(update={"out_features": out})
    if layer.layer_kind is LayerKind.INPUT:
        widths[name] = network.out_shape(name).c
    elif layer.layer_kind is LayerKind.CONCAT:
        widths[name] = sum(widths[source] for source in layer.inputs)
    elif isinstance(layer, Chunk):
        assert in_width is not None
        start, stop = layer.channel_range(in_width)
        widths[name] = stop - start
    elif in_width is not None:
        widths[name] = in_width
    return layer


def scaled_spec(spec: SchemeSpec, width_divisor: int) -> SchemeSpec:
    """`spec` for a network whose channels are divided by `width_divisor`: a width limit divides
    too, so that the down-scaled network fuses exactly the layers the full one does."""
    options = []
    for part, model in spec.options:
        limit = getattr(model, "wide_limit", None)
        update = {} if limit is None else {"wide_limit": max(1, limit // width_divisor)}
        options.append((part, model.model_copy(update=update)))
    return replace(spec, options=tuple(options))
