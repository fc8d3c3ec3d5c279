"""How PyTorch's views, reshapes, chunks and transposes map to bnsim layers (bnsim.graph.fx).

A view that flattens to (batch, features) is a `flatten`; torch.chunk's parts along channels are
`chunk` layers; ShuffleNet's view into groups, transpose and view back is one `channel_shuffle`.
Anything else that reshapes is refused. Builders take what bnsim.graph.torchmap's take.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bnsim.errors import WorkloadError
from bnsim.graph.layer import ChannelShuffle, Chunk, Flatten, Layer

Builder = Callable[[str, str, str, tuple[str, ...], Any, Any], Layer | None]


def tensor_inputs(node: Any) -> list[Any]:
    """The fx nodes among a node's arguments, in order (a list argument's too: torch.cat's)."""
    found = []
    for argument in node.args:
        items = argument if isinstance(argument, list | tuple) else [argument]
        found += [item for item in items if hasattr(item, "op") and "tensor_meta" in item.meta]
    return found


def shape_of(node: Any) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def flatten(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer | None:
    shape = shape_of(node)
    if len(shape) != 2:
        raise WorkloadError(
            f"{title}: {label}: only a flatten to (batch, features) is supported, got {shape}"
        )
    return Flatten(name=name, inputs=inputs)


def view(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer | None:
    """A view or reshape: to (batch, features) a flatten; the two views around ShuffleNet's
    transpose pass their input on (the transpose is the shuffle); anything else is refused."""
    shape = shape_of(node)
    if len(shape) == 2:
        return flatten(title, label, name, inputs, module, node)
    if _shuffle_views(node):
        return None
    raise WorkloadError(
        f"{title}: {label}: a view to {shape} is not supported; bnsim maps views that flatten to "
        "(batch, features) and ShuffleNet's channel shuffle (a view to N × g × C/g × H × W, "
        "transpose(1, 2), contiguous, a view back to N × C × H × W)"
    )


def _shuffle_views(node: Any) -> bool:
    """Whether `node` is the view into groups before a channel shuffle's transpose, or the view
    back after it."""
    source = tensor_inputs(node)[0]
    before, after = shape_of(source), shape_of(node)
    if len(before) == 4 and len(after) == 5:  # into groups: every user transposes them
        n, c, h, w = before
        grouped = after[0] == n and after[1] * after[2] == c and after[3:] == (h, w)
        return grouped and all(_is_group_transpose(user) for user in node.users)
    while source.op == "call_method" and source.target == "contiguous":
        source = tensor_inputs(source)[0]
    if len(before) == 5 and len(after) == 4 and _is_group_transpose(source):
        return after == shape_of(tensor_inputs(tensor_inputs(source)[0])[0])
    return False


def _is_group_transpose(node: Any) -> bool:
    """A transpose of dimensions 1 and 2 of a five-dimensional tensor."""
    if getattr(node.target, "__name__", node.target) != "transpose":
        return False
    dims = sorted(int(dim) % 5 for dim in node.args[1:3])
    return dims == [1, 2] and len(shape_of(node)) == 5


def channel_shuffle(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    grouped = tensor_inputs(node)[0]
    if not (_is_group_transpose(node) and _shuffle_views(grouped)):
        raise WorkloadError(
            f"{title}: {label}: only ShuffleNet's channel shuffle transposes (a view to N × g × "
            "C/g × H × W, transpose(1, 2), contiguous, a view back to N × C × H × W)"
        )
    return ChannelShuffle(name=name, inputs=inputs, groups=shape_of(grouped)[1])


def chunk(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> None:
    dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    if dim != 1:
        raise WorkloadError(f"{title}: {label}: only chunks along channels (dim=1) are supported")


def chunk_item(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    whole, index = node.args[0], node.args[1]
    if not (hasattr(whole, "op") and _function_name(whole) == "chunk"):
        raise WorkloadError(
            f"{title}: {label}: indexing is supported only into torch.chunk's result"
        )
    chunks = whole.kwargs.get("chunks", whole.args[1] if len(whole.args) > 1 else None)
    return Chunk(name=name, inputs=inputs, chunks=int(chunks), index=int(index))


def _function_name(node: Any) -> str:
    return str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
