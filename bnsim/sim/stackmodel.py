"""LRU stack distances and LLC traffic of a stream of whole-tensor accesses, as array operations.

The analytic fidelity's cache model (bnsim.sim.analytic lists the accesses and builds the result).
An access's stack distance is its own bytes plus the bytes of the distinct tensors touched since its
tensor's previous access (Mattson et al., 1970); an access finds its tensor in a fully associative
LRU cache of C bytes iff that distance is at most C. All distances come from prefix sums and one
dominance sum (`earlier_and_later`: a compiled Fenwick tree, or one vectorised pass per bit of the
access count), so one pass answers every cache size. Sums are exact: int64 below INT64_BYTES of
accesses, Python ints above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from bnsim.sim._memory import earlier_and_later_into

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]

# below this many bytes of accesses in all, every sum fits in int64; above, exact Python ints
INT64_BYTES = 1 << 62


STREAM, ALLOCATE = 2, 3  # store kinds (bnsim.trace.dataflow)


class Stream(NamedTuple):
    """Tensor accesses as columns, in execution order (ids are dense: 0, 1, ...)."""

    kernel: Array  # kernel index
    source: Array  # source id
    tensor: Array  # tensor id
    size: Array  # bytes
    write: Array  # bool
    num_sources: int
    # per access: 0 a load; a store: 1 read for ownership, 2 non-temporal, 3 allocate without
    # reading (bnsim.trace.dataflow's kinds); None: every store reads for ownership
    kind: Array | None = None


class Chains(NamedTuple):
    """Each access's neighbours among the accesses of the same tensor."""

    order: Array  # the accesses grouped by tensor, in execution order within a tensor
    first: Array  # along `order`: whether the access is its tensor's first
    previous: Array  # by access: the tensor's previous access (-1: none)
    following: Array  # by access: the tensor's next access (the access count: none)


def chains(tensor: Array) -> Chains:
    """The chains of accesses of each tensor (`tensor`: by access, its tensor id)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    count = len(tensor)
    order = np.argsort(tensor, kind="stable")
    grouped = tensor[order]
    first = np.ones(count, dtype=bool)
    np.not_equal(grouped[1:], grouped[:-1], out=first[1:])
    later = order[1:][~first[1:]]
    earlier = order[:-1][~first[1:]]
    previous = np.full(count, -1, dtype=np.int64)
    following = np.full(count, count, dtype=np.int64)
    previous[later] = earlier
    following[earlier] = later
    return Chains(order=order, first=first, previous=previous, following=following)


def distances(size: Array, chains: Chains) -> Array:
    """Per access, its bytes plus those of the distinct tensors touched since its tensor's
    previous access (meaningless for first accesses).

    The tensors touched between an access i and its tensor's previous access p are those whose
    last access j before i lies after p, i.e. j < i with next(j) > i, less those with j < p: of
    the j < p, exactly those with next(j) > next(p) = i are also counted in the first set.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    count = len(size)
    following = chains.following
    # bytes of the accesses before i whose next access is not before i: all bytes before i, less
    # those of the accesses whose next access is at or before i
    succeeded = np.zeros(count + 1, dtype=size.dtype)
    succeeded[following] = size  # a next access follows one access at most; `count`: none
    live = np.cumsum(size) - size - np.cumsum(succeeded[:count])
    # by p (accessed again): the bytes of the j < p with next(j) > next(p). Those never accessed
    # again are a prefix sum; the others' next accesses are distinct, numbered densely by rank
    again = following < count
    last_bytes = np.where(again, 0, size)
    outlived = np.cumsum(last_bytes) - last_bytes
    rank = np.cumsum(chains.previous >= 0) - 1  # of each re-access among the re-accesses
    outlived[again] += earlier_and_later(rank[following[again]], size[again])
    result: Array = live - outlived[chains.previous] + size
    return result


def earlier_and_later(keys: Array, weights: Array, *, compiled: bool = True) -> Array:
    """By position p: the sum of weights[j] over j < p with keys[j] > keys[p] (keys and weights
    ≥ 0).

    A Fenwick tree in compiled code when the weights are int64 (`compiled=False` forces NumPy: the
    reference it is tested against); else (weights as Python ints) bit by bit, vectorised: a pair
    j < p with keys[j] > keys[p] first differs at some bit, where key j has a one and key p a zero.
    Bit by bit from the top, `order` arranges the positions with equal higher bits together, in
    position order (a wavelet matrix: each bit stably moves the zeros before the ones), so each p
    adds the weights of the ones before it in its group.
    """
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    count = len(keys)
    total = np.zeros(count, dtype=weights.dtype)
    if not count:
        return total
    if compiled and weights.dtype == np.int64:
        earlier_and_later_into(
            np.ascontiguousarray(keys, dtype=np.int64), np.ascontiguousarray(weights), total
        )
        return total
    order = np.arange(count)
    starts = np.ones(count, dtype=bool)  # where a group of equal higher bits starts
    for bit in reversed(range(int(keys.max()).bit_length())):
        high = keys[order] >> bit
        ones = (high & 1).astype(bool)
        group = high >> 1
        np.not_equal(group[1:], group[:-1], out=starts[1:])
        ones_weights = np.where(ones, weights[order], 0)
        before = np.cumsum(ones_weights) - ones_weights
        # the sums never decrease, so the latest group start holds the largest
        group_before = np.maximum.accumulate(np.where(starts, before, 0))
        total[order] += np.where(ones, 0, before - group_before)
        order = np.concatenate((order[~ones], order[ones]))
    return total


def within(distances: Array, size_bytes: int) -> Array:
    """Whether each distance is at most `size_bytes`."""
    if distances.dtype != object:
        # int64 distances are below INT64_BYTES, which holds them all (and fits in an int64)
        size_bytes = min(size_bytes, INT64_BYTES)
    return distances <= size_bytes


class Flows(NamedTuple):
    """DRAM bytes of a stream through an LLC of one capacity."""

    filled: Array  # by access: read from DRAM (a miss; write-allocate for writes)
    written: Array  # by access: a write that reaches DRAM (written back or streamed)
    read_by_source: Array
    write_by_source: Array  # charged to the write that reaches DRAM
    read_by_kernel: Array
    write_by_kernel: Array
    access_bytes: int
    hit_bytes: int


def flows(stream: Stream, chains: Chains, near: Array, num_kernels: int) -> Flows:
    """DRAM traffic of `stream` through a fully associative LRU write-back LLC in which the
    `near` accesses find their tensor (see `llc_traffic`); by kernel only if `num_kernels`.

    A non-temporal store goes straight to DRAM and leaves no copy (the tensor's next access
    misses); a store that allocates without reading reads nothing when it misses."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    size, write = stream.size, stream.write
    if stream.kind is None:
        hit = near
        filled = ~near
        written = written_back(write, chains, near)
    else:
        streamed = stream.kind == STREAM
        previous = chains.previous
        after_stream = np.zeros(len(write), dtype=bool)
        has = previous >= 0
        after_stream[has] = streamed[previous[has]]
        hit = near & ~after_stream & ~streamed
        filled = ~hit & ~streamed & (stream.kind != ALLOCATE)
        written = streamed | written_back(write & ~streamed, chains, hit)
    return Flows(
        filled=filled,
        written=written,
        read_by_source=sum_by(stream.source, filled, size, stream.num_sources),
        write_by_source=sum_by(stream.source, written, size, stream.num_sources),
        read_by_kernel=sum_by(stream.kernel, filled, size, num_kernels),
        write_by_kernel=sum_by(stream.kernel, written, size, num_kernels),
        access_bytes=int(size.sum()),
        hit_bytes=int(size[hit].sum()),
    )


def written_back(write: Array, chains: Chains, near: Array) -> Array:
    """Which writes are written back: the last write of each stay of a tensor in the cache (a
    stay ends when an access misses; the end of the iteration flushes the last)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    order = chains.order
    stay = np.cumsum(~near[order] | chains.first)  # along `order`: which stay each access is in
    writes = np.flatnonzero(write[order])
    stays = stay[writes]
    last = np.ones(len(writes), dtype=bool)
    np.not_equal(stays[1:], stays[:-1], out=last[:-1])
    written = np.zeros(len(write), dtype=bool)
    written[order[writes[last]]] = True
    return written


def sum_by(index: Array, chosen: Array, size: Array, length: int) -> Array:
    """Bytes of the `chosen` accesses summed by `index` (exact: integer adds)."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    totals = np.zeros(length, dtype=size.dtype)
    if length:
        np.add.at(totals, index[chosen], size[chosen])
    return totals
