"""Tile byte ranges: worked by hand on small layouts; the compiled inner loop equals its source."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

import bnsim.trace._tiles as tiles_module
from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.schemes import build_schedule
from bnsim.trace import SimOptions, Trace
from bnsim.trace._tiles import BLOCKED, CHANNELS_LAST, PLAIN, runs

REPO = Path(__file__).resolve().parents[2]
BASE = 4096


def test_a_whole_blocked_tensor_is_one_range() -> None:
    # 2 samples × 20 channels (padded to 2 blocks of 16) × 4 × 4, fp32: 2·32·16·4 bytes
    layout = (BASE, 4, (2, 20, 4, 4), BLOCKED)
    assert runs(layout, {}) == [(BASE, BASE + 2 * 32 * 16 * 4)]


def test_a_blocked_tile_of_rows_is_one_range_per_sample_and_channel_block() -> None:
    layout = (BASE, 4, (2, 20, 4, 4), BLOCKED)
    row = 4 * 16 * 4  # 4 pixels of one 16-channel block
    plane = 4 * row
    # sample 1, channels 16..20 (block 1), rows 1..3
    first = BASE + (1 * 2 + 1) * plane + 1 * row
    assert runs(layout, {"n": (1, 2), "c": (16, 20), "h": (1, 3)}) == [(first, first + 2 * row)]
    # samples 0..2, channels 0..20 (blocks 0 and 1), row 3: four ranges of one row each
    found = runs(layout, {"n": (0, 2), "c": (0, 20), "h": (3, 4)})
    starts = [BASE + block * plane + 3 * row for block in range(4)]
    assert found == [(start, start + row) for start in starts]


def test_whole_samples_of_some_channels_in_nchw() -> None:
    layout = (BASE, 2, (3, 8, 5, 5), PLAIN)
    plane = 5 * 5 * 2
    found = runs(layout, {"n": (1, 3), "c": (2, 6)})
    assert found == [(BASE + (n * 8 + 2) * plane, BASE + (n * 8 + 6) * plane) for n in (1, 2)]


def test_flat_matrix_and_vector_regions() -> None:
    assert runs((BASE, 4, (100,), PLAIN), {"e": (10, 30)}) == [(BASE + 40, BASE + 120)]
    assert runs((BASE, 4, (64,), PLAIN), {"c": (16, 32)}) == [(BASE + 64, BASE + 128)]
    # a column block of a 3 × 10 matrix: one range per row
    found = runs((BASE, 4, (3, 10), PLAIN), {"columns": (2, 5)})
    assert found == [(BASE + r * 40 + 8, BASE + r * 40 + 20) for r in range(3)]


def test_sampled_samples_and_a_patch_of_columns() -> None:
    layout = (BASE, 4, (4, 16, 6, 6), BLOCKED)
    row = 6 * 16 * 4
    plane = 6 * row
    region = {"c": (0, 16), "h": (2, 4), "samples": (1, 3), "cols": (1, 3)}
    expected = [
        (BASE + n * plane + r * row + 1 * 64, BASE + n * plane + r * row + 3 * 64)
        for n in (1, 3)
        for r in (2, 3)
    ]
    assert runs(layout, region) == expected


def test_channels_last_regions_worked_by_hand() -> None:
    # 2 samples × 3 channels × 2 rows × 2 columns, fp32, NHWC: a pixel is 12 bytes, a row 24,
    # a sample 48; element (n, c, h, w) lies at ((n·2 + h)·2 + w)·12 + c·4
    layout = (BASE, 4, (2, 3, 2, 2), CHANNELS_LAST)
    assert runs(layout, {}) == [(BASE, BASE + 96)]
    # every channel of some rows: one range per sample
    assert runs(layout, {"h": (1, 2)}) == [(BASE + 24, BASE + 48), (BASE + 72, BASE + 96)]
    # one channel: a 4-byte range per pixel, in address order
    assert runs(layout, {"c": (1, 2)}) == [(BASE + p * 12 + 4, BASE + p * 12 + 8) for p in range(8)]
    # channels 1..3 of sample 1, row 0: the two pixels' last 8 bytes
    found = runs(layout, {"n": (1, 2), "c": (1, 3), "h": (0, 1)})
    assert found == [(BASE + 52, BASE + 60), (BASE + 64, BASE + 72)]


def test_channels_last_sampled_columns() -> None:
    layout = (BASE, 4, (2, 3, 2, 2), CHANNELS_LAST)
    # sample 1, column 1 of rows 0..2, channels 0..2 (of 3): one 8-byte range per pixel
    region = {"c": (0, 2), "h": (0, 2), "samples": (1,), "cols": (1, 2)}
    assert runs(layout, region) == [(BASE + 60, BASE + 68), (BASE + 84, BASE + 92)]
    # every channel: the column's pixels whole
    region = {"c": (0, 3), "h": (0, 2), "samples": (1,), "cols": (1, 2)}
    assert runs(layout, region) == [(BASE + 60, BASE + 72), (BASE + 84, BASE + 96)]


def _source_module() -> ModuleType:
    """bnsim/trace/_tiles.py interpreted, whether or not a compiled module shadows it."""
    source = Path(tiles_module.__file__).with_name("_tiles.py")
    spec = importlib.util.spec_from_file_location("_tiles_source", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("workload", "scheme"),
    [
        ("densenet121", "baseline"),
        ("densenet121", "bnff"),
        ("densenet121", "recompute"),
        ("resnet50", "bnff+sampling:method=feature"),
        ("inception_v3", "fission+sampling:method=batch"),
        ("tiny_cnn", "bnff+sampling:method=virtual"),
    ],
)
def test_the_compiled_inner_loop_equals_its_source(
    workload: str, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pip install` compiles the loop (setup.py fails without it); only an uninstalled checkout
    # runs it interpreted, and then there is nothing to compare
    if Path(tiles_module.__file__).suffix == ".py":
        message = "the compiled inner loop is not built (pip install -e . builds it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    network = build_model(workload, batch=4, image=32 if workload != "inception_v3" else 75)
    machine = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
    trace = Trace(build_schedule(network, scheme), machine, SimOptions(step_bytes=4096))
    compiled = [trace.boxes(index) for index in range(len(trace.schedule.kernels))]
    source = _source_module()
    monkeypatch.setattr("bnsim.trace.tracing.thread_boxes", source.thread_boxes)
    interpreted = [trace.boxes(index) for index in range(len(trace.schedule.kernels))]
    assert compiled == interpreted
    streams = [stream for boxes, _ in compiled for box in boxes for stream in box.streams]
    assert len(streams) > 500
    for stream in streams[::7]:
        cut: list[list[tuple[int, int, bool, int]]] = [[], []]
        for ranges, module in zip(cut, (tiles_module, source), strict=True):
            cursor = [0, 0, 0, 0, 0]
            for step in range(1, 4):
                module.stream_ranges(stream, cursor, stream[3] * step // 3, 64, ranges)
        assert cut[0] == cut[1]
        assert sum(stop - start for start, stop, _, _ in cut[0]) == stream[3]
