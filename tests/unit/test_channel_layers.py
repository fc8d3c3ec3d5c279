"""ShuffleNet-v2's channel split (chunk) and channel shuffle: their values, a unit under every
scheme and the libraries' splits, their bytes, and what is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bnsim.config.machine import load_machine
from bnsim.errors import WorkloadError
from bnsim.graph import Network, build_network
from bnsim.graph.layer import (
    BatchNorm2d,
    ChannelShuffle,
    Chunk,
    Concat,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Input,
    Layer,
    Linear,
    ReLU,
    SoftmaxCrossEntropy,
)
from bnsim.schemes import build_schedule
from bnsim.trace import library_reorders
from bnsim.trace.dataflow import split_work
from bnsim.verify import check_schedule_against_reference
from bnsim.verify import reference as ref

REPO = Path(__file__).resolve().parents[2]


def shuffle_unit(batch: int = 4, image: int = 8, channels: int = 16) -> Network:
    """A stem, then ShuffleNet-v2's unit with stride 1: half the channels pass, the other half go
    through 1×1 conv → BN → ReLU → depthwise 3×3 → BN; concatenated, shuffled in two groups."""
    half = channels // 2
    layers: list[Layer] = [
        Input(name="input", channels=3),
        Conv2d(name="stem", inputs=("input",), out_channels=channels, kernel=3, padding=1),
        Chunk(name="x1", inputs=("stem",), chunks=2, index=0),
        Chunk(name="x2", inputs=("stem",), chunks=2, index=1),
        Conv2d(name="conv0", inputs=("x2",), out_channels=half, kernel=1),
        BatchNorm2d(name="bn0", inputs=("conv0",)),
        ReLU(name="relu0", inputs=("bn0",)),
        Conv2d(name="dw", inputs=("relu0",), out_channels=half, kernel=3, padding=1, groups=half),
        BatchNorm2d(name="bn1", inputs=("dw",)),
        Concat(name="cat", inputs=("x1", "bn1")),
        ChannelShuffle(name="shuffle", inputs=("cat",), groups=2),
        GlobalAvgPool2d(name="pool", inputs=("shuffle",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("shuffle_unit", layers, batch=batch, image=image)


def test_the_shuffle_interleaves_the_groups_and_its_backward_undoes_it() -> None:
    x = np.arange(6.0).reshape(1, 6, 1, 1)
    assert ref.channel_shuffle(x, 2).ravel().tolist() == [0, 3, 1, 4, 2, 5]
    assert ref.channel_shuffle(x, 3).ravel().tolist() == [0, 2, 4, 1, 3, 5]
    assert np.array_equal(ref.channel_shuffle_bwd(ref.channel_shuffle(x, 3), 3), x)


def test_chunks_are_torch_chunks() -> None:
    """torch.chunk(x, 3, 1) of 7 channels: 3, 3 and 1."""
    ranges = [Chunk(name="c", inputs=("x",), chunks=3, index=i).channel_range(7) for i in range(3)]
    assert ranges == [(0, 3), (3, 6), (6, 7)]


@pytest.mark.parametrize("scheme", ["baseline", "fission", "bnff", "recompute"])
def test_a_shuffle_unit_matches_the_reference(scheme: str) -> None:
    schedule = build_schedule(shuffle_unit(), scheme, input_grad=True)
    report = check_schedule_against_reference(schedule, seed=0)
    assert report.passed, report.worst


@pytest.mark.parametrize("name", ["cmp16", "v100", "zen4-2c-nhwc"])
def test_the_libraries_splits_of_it_match_the_reference(name: str) -> None:
    machine = load_machine(REPO / "hwconfigs" / f"{name}.yaml")
    schedule = build_schedule(shuffle_unit(), "bnff", reorders=library_reorders(machine))

    def boxes(kernel):  # type: ignore[no-untyped-def]
        return split_work(schedule, kernel, machine).boxes()

    report = check_schedule_against_reference(schedule, seed=0, boxes=boxes)
    assert report.passed, report.worst


def test_they_move_what_pytorch_copies(kernel_bytes: Callable[..., dict[str, int]]) -> None:
    """On one core of tiny, 4 samples of 16 × 8 × 8 fp32 (4 KiB per sample, 2 KiB a half): the
    convolution's half is copied, the shuffle copies everything, and the chunks' gradients are
    concatenated into the stem's; the half that goes to the concatenation is copied too (PyTorch
    reads it in place: 2 KiB per sample read and written more than PyTorch)."""
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml").with_overrides(["cores.count=1"])
    schedule = build_schedule(shuffle_unit(), "baseline")

    def bytes_by_tensor(kernel_name: str) -> dict[str, int]:
        return kernel_bytes(schedule, machine, kernel_name)

    assert bytes_by_tensor("x2.fwd") == {"act:stem": 4 * 2048, "act:x2": 4 * 2048}
    assert bytes_by_tensor("shuffle.fwd") == {"act:cat": 4 * 4096, "act:shuffle": 4 * 4096}
    assert bytes_by_tensor("shuffle.bwd_data") == {"grad:shuffle": 4 * 4096, "grad:cat": 4 * 4096}
    assert bytes_by_tensor("stem.bwd_data.chunks") == {
        "grad:x1": 4 * 2048,
        "grad:x2": 4 * 2048,
        "grad:stem@chunks": 4 * 4096,
    }


def test_an_empty_chunk_and_groups_that_do_not_divide_are_refused() -> None:
    with pytest.raises(WorkloadError, match=r"layer 'x2' \(chunk\): chunk 3 of 4 of 6 channels"):
        build_network(
            "bad",
            [
                Input(name="input", channels=6),
                Chunk(name="x2", inputs=("input",), chunks=4, index=3),
                GlobalAvgPool2d(name="pool", inputs=("x2",)),
                Flatten(name="flat", inputs=("pool",)),
                SoftmaxCrossEntropy(name="loss", inputs=("flat",)),
            ],
            batch=2,
            image=4,
        )
    with pytest.raises(WorkloadError, match=r"layer 's' \(channel_shuffle\): groups=4 must divide"):
        build_network(
            "bad",
            [
                Input(name="input", channels=6),
                ChannelShuffle(name="s", inputs=("input",), groups=4),
                GlobalAvgPool2d(name="pool", inputs=("s",)),
                Flatten(name="flat", inputs=("pool",)),
                SoftmaxCrossEntropy(name="loss", inputs=("flat",)),
            ],
            batch=2,
            image=4,
        )
