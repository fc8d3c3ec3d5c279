"""Size facts of a Network: parameters, MACs, activation bytes, BN-input elements, layer counts.

These are the numbers `bnsim workloads show` prints and the zoo tests pin against torchvision.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from bnsim.graph.layer import LayerKind
from bnsim.graph.network import Network


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSummary:
    """Size facts of one network at one batch and image size."""

    name: str
    batch: int
    input: tuple[int, int, int]  # C, H, W
    num_layers: int  # input layer excluded
    params: int
    macs_per_sample: int
    layer_counts: dict[str, int]  # layer kind → count, kinds in LayerKind order
    activation_bytes_per_sample: int
    bn_input_elements_per_sample: int
    dtype_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the `bnsim workloads show --json` document)."""
        document = asdict(self)
        document["input"] = list(self.input)
        return document


def param_count(network: Network) -> int:
    """Trainable parameters (as torch's `sum(p.numel() for p in model.parameters())`)."""
    return sum(layer.param_count(network.in_shapes(layer.name)) for layer in network.layers)


def macs_per_sample(network: Network) -> int:
    """Forward multiply-accumulates of conv and linear layers per sample (torchvision's GFLOPS)."""
    total = sum(
        layer.macs(network.in_shapes(layer.name), network.out_shape(layer.name))
        for layer in network.layers
    )
    return total // network.batch


def summarize(network: Network, *, dtype_bytes: int = 4) -> WorkloadSummary:
    """Size facts of `network`.

    Activation bytes per sample count every layer's output once (the input image, flatten views
    and the scalar loss excluded) at `dtype_bytes` per element: what a framework keeps without
    in-place reuse.
    """
    counts: Counter[LayerKind] = Counter(
        layer.layer_kind for layer in network.layers if layer.layer_kind is not LayerKind.INPUT
    )
    not_stored = {LayerKind.INPUT, LayerKind.FLATTEN, LayerKind.SOFTMAX_CROSS_ENTROPY}
    activation_elements = sum(
        network.out_shape(layer.name).elements_per_sample()
        for layer in network.layers
        if layer.layer_kind not in not_stored
    )
    bn_elements = sum(
        network.in_shapes(layer.name)[0].elements_per_sample()
        for layer in network.layers_of_kind(LayerKind.BATCHNORM2D)
    )
    input_shape = network.out_shape("input")
    return WorkloadSummary(
        name=network.name,
        batch=network.batch,
        input=(input_shape.c, input_shape.h, input_shape.w),
        num_layers=sum(counts.values()),
        params=param_count(network),
        macs_per_sample=macs_per_sample(network),
        layer_counts={kind.value: counts[kind] for kind in LayerKind if counts[kind]},
        activation_bytes_per_sample=activation_elements * dtype_bytes,
        bn_input_elements_per_sample=bn_elements,
        dtype_bytes=dtype_bytes,
    )
