"""The pooling layer kinds: windowed max and average pooling, adaptive and global average pooling.

bnsim.graph.layer re-exports them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from bnsim.graph.kinds import (
    NonNegativePair,
    PositivePair,
    TensorShape,
    _Layer,
    _window_out,
)


class _Pool(_Layer):
    kernel: PositivePair
    stride: PositivePair  # equal to kernel when not given, as in torch
    padding: NonNegativePair = (0, 0)
    ceil_mode: bool = Field(default=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _default_stride(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("stride") is None and "kernel" in data:
            return {**data, "stride": data["kernel"]}
        return data

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        if any(2 * p > k for p, k in zip(self.padding, self.kernel, strict=True)):
            raise self._fail(
                f"padding {self.padding[0]}×{self.padding[1]} exceeds half the kernel "
                f"{self.kernel[0]}×{self.kernel[1]}"
            )
        h, w = (
            _window_out(size, k, s, p, 1, ceil=self.ceil_mode)
            for size, k, s, p in zip(
                (x.h, x.w), self.kernel, self.stride, self.padding, strict=True
            )
        )
        if h < 1 or w < 1:
            raise self._fail(
                f"kernel {self.kernel[0]}×{self.kernel[1]} is larger than its padded input "
                f"{x.h + 2 * self.padding[0]}×{x.w + 2 * self.padding[1]}"
            )
        return TensorShape(x.n, x.c, h, w)


class MaxPool2d(_Pool):
    """Max pooling (torch.nn.MaxPool2d)."""

    kind: Literal["maxpool"] = "maxpool"


class AvgPool2d(_Pool):
    """Average pooling (torch.nn.AvgPool2d)."""

    kind: Literal["avgpool"] = "avgpool"
    count_include_pad: bool = Field(default=True, strict=True)


class AdaptiveAvgPool2d(_Layer):
    """Average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)."""

    kind: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    output_size: PositivePair

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        return TensorShape(x.n, x.c, *self.output_size)


class GlobalAvgPool2d(_Layer):
    """Average over the whole feature map (adaptive pooling to 1×1)."""

    kind: Literal["global_avgpool"] = "global_avgpool"

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        return TensorShape(in_shapes[0].n, in_shapes[0].c, 1, 1)
