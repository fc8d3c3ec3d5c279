"""Which region of an operand an op reads, given its tile and its own region: the rules of sampled
statistics, weights read per input channel, per-sample scales, concatenation parts and chunks.
"""

from __future__ import annotations

from collections.abc import Callable

from bnsim.schedule import (
    Op,
    Schedule,
)
from bnsim.schedule.footprint import Region
from bnsim.schedule.selection import Selection

RegionRule = Callable[[Region, Region], Region]  # (tile, op region) → operand region


def _restricted(rule: RegionRule | None, selection: Selection) -> RegionRule:
    """`rule`, narrowed to the sampled samples (batch sampling) or patch (feature sampling)."""

    def narrowed(tile: Region, region: Region) -> Region:
        base = region if rule is None else rule(tile, region)
        low, high = base.get("n", (0, 1 << 62))
        samples = tuple(n for n in selection.samples if low <= n < high)
        h0, h1 = base.get("h", (0, 1 << 62))
        rows = (max(h0, selection.rows[0]), min(h1, selection.rows[1]))
        if not samples or rows[0] >= rows[1]:
            return {**base, "samples": (), "cols": selection.cols}  # type: ignore[dict-item]
        return {**base, "samples": samples, "h": rows, "cols": selection.cols}  # type: ignore[dict-item]

    return narrowed


def _input_channel_weights(schedule: Schedule, op: Op, input_major: bool) -> RegionRule:
    """Rule: the weights a backward-data tile of some input channels reads: those channels of
    every filter (one group's filters, for a grouped convolution). In the library's own copy
    (`input_major`: oneDNN reorders backward-data weights into blocks of input channels, e.g.
    `Bcda64b`) a range of input channels is one contiguous run."""
    weights = schedule.tensor(op.reads[1]).shape
    per_group_in = weights[1]
    groups = schedule.tensor(op.writes[0]).shape[1] // per_group_in
    per_group_out = weights[0] // groups
    per_input_channel = weights[0] * weights[2] * weights[3]

    def slice_of(tile: Region, region: Region) -> Region:
        c0, c1 = region["c"]
        if groups == 1 and input_major:
            return {"e": (c0 * per_input_channel, c1 * per_input_channel)}
        if groups == 1:
            return {"c": (c0, c1)}
        g0, g1 = c0 // per_group_in, (c1 - 1) // per_group_in + 1
        return {"n": (g0 * per_group_out, g1 * per_group_out)}

    return slice_of


def _per_sample_channels(tile: Region, region: Region) -> Region:
    return {axis: region[axis] for axis in ("n", "c") if axis in region}


def _per_sample(tile: Region, region: Region) -> Region:
    return {"n": region["n"]} if "n" in region else {}


def _channels(tile: Region, region: Region) -> Region:
    return {"c": region["c"]} if "c" in region else {}


def _everything(tile: Region, region: Region) -> Region:
    return {}


def _concat_part(schedule: Schedule, op: Op, position: int) -> RegionRule:
    """Rule: the region of concatenation part `position` that a region of the whole covers."""
    layer = schedule.network.layer(op.layer)
    channels = [schedule.network.out_shape(source).c for source in layer.inputs]
    offset = sum(channels[:position])
    return _part_of((offset, offset + channels[position]))


def _channels_from(offset: int) -> RegionRule:
    """Rule: a chunk's region read from its input, whose channels start at `offset`."""

    def shifted(tile: Region, region: Region) -> Region:
        start, stop = region["c"]
        return {**region, "c": (start + offset, stop + offset)}

    return shifted


def _part_of(channels: tuple[int, int]) -> RegionRule:
    """Rule: the region of the part holding `channels` of a whole that a region of it covers."""
    offset, end = channels

    def part(tile: Region, region: Region) -> Region:
        start, stop = region.get("c", (0, end))
        low, high = max(start, offset), min(stop, end)
        return {**region, "c": (low - offset, high - offset) if low < high else (0, 0)}

    return part
