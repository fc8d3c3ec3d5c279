"""A GPU library's work split: implicit-GEMM tiles in the launch order of NVIDIA's CUTLASS.

cuDNN is closed source; CUTLASS is NVIDIA's public implementation of the same implicit-GEMM
convolutions, and bnsim follows it (docs/model.md, "Kernel dataflow", cites file and symbol):

- a convolution is a GEMM whose M axis is the output pixels (images × rows × columns; for the data
  gradient the input pixels) and whose N axis is the output channels (for the data gradient the
  input channels); each thread block (CTA) computes one 128 × 128 tile of it, reading its input
  pixels (with the filter's halo) and its channels' weights once, and writing its output tile once;
- CTAs launch in the order of CUTLASS's default `GemmIdentityThreadblockSwizzle<4>`: strips of up to
  4 N-tiles, M-tile by M-tile, so that concurrent CTAs share their input tiles in the L2 cache; the
  hardware hands the next CTA to the SM that frees up first, and so does bnsim while it simulates
  (the split is dynamic; its threads are the round-robin that equal CTAs would give);
- the weight gradient is a GEMM over (output channels × input channels·taps) reducing over the
  output pixels; CUTLASS leaves split-K to its caller, and bnsim splits the pixels (images × rows)
  so that every SM has a CTA (partial sums combined at the end), since cuDNN's own choice is not
  public; bnsim's space has no input-channel axis, so a CTA covers every input channel and tap;
- batch-norm reductions take one CTA per channel (as PyTorch's CUDA kernels do); element-wise
  kernels deal consecutive blocks of the tensor round-robin over the SMs, which bnsim groups into
  waves of `wave_bytes` per SM.

M tiles are whole output rows (128 pixels rounded to rows, or whole images when an image has fewer
than 128 pixels): bnsim's kernel spaces split rows, not pixels.
"""

from __future__ import annotations

import math

from bnsim.config.machine import Machine
from bnsim.graph.layer import Conv2d
from bnsim.schedule import Box, Kernel, OpKind, Schedule
from bnsim.trace.dataflow import PASS_KINDS, WorkSplit, balance211, blocks_of, linear_boxes

TILE_M = 128  # output pixels per CTA (GEMM M)
TILE_N = 128  # channels per CTA (GEMM N)
SWIZZLE = 4  # GemmIdentityThreadblockSwizzle<4>: N-tiles per strip


def split(schedule: Schedule, kernel: Kernel, machine: Machine, wave_bytes: int) -> WorkSplit:
    """The GPU library's split of `kernel` over the machine's SMs."""
    main = kernel.main_op()
    cores = machine.cores.count
    layer = schedule.network.layer(main.layer)
    kind = main.kind
    if kind in _FULLY_CONNECTED or (kind in _GEMMS and isinstance(layer, Conv2d)):
        return _dealt(_gemm_tiles(kernel, _width(schedule, kernel)), cores)
    if kind in (OpKind.CONV_BWD_WEIGHT, OpKind.FC_BWD_WEIGHT):
        return _dealt(_weight_gradient_tiles(kernel, cores), cores)
    if kind in (OpKind.BN_STATS, OpKind.BN_GRAD_REDUCE):
        n, c, h = (axis.extent for axis in kernel.space)
        return _dealt([((0, n), (channel, channel + 1), (0, h)) for channel in range(c)], cores)
    element_bytes = machine.dtype_bytes()
    return _dealt(_waves(kernel, cores, wave_bytes, element_bytes), cores)


def input_passes(kernel: Kernel) -> int:
    """Convolutions and fully connected layers: one pass over the input (GEMM A) per swizzle strip
    of N-tiles, since a strip's CTAs cover every M-tile before the next strip's launch."""
    if kernel.main_op().kind not in _GEMMS:
        return 1
    n_tiles = blocks_of(kernel.space[1].extent, TILE_N)
    return -(-n_tiles // _strip_width(n_tiles))


def weight_passes(schedule: Schedule, kernel: Kernel, machine: Machine) -> tuple[int, int]:
    """Convolutions and fully connected layers: (passes, strips). Every wave of concurrent CTAs
    reads the weights (GEMM B) of its strip's N-tiles, so each strip's weights are read once per
    wave of that strip's CTAs, the waves one after the other."""
    if kernel.main_op().kind not in _GEMMS:
        return 1, 1
    n_tiles = blocks_of(kernel.space[1].extent, TILE_N)
    strip = _strip_width(n_tiles)
    m_tiles = len(_m_tiles(kernel, _width(schedule, kernel)))
    return -(-m_tiles * strip // machine.cores.count), -(-n_tiles // strip)


def _width(schedule: Schedule, kernel: Kernel) -> int:
    """Columns of the GEMM's output rows (1 for a fully connected layer)."""
    main = kernel.main_op()
    if main.kind in _FULLY_CONNECTED:
        return 1
    return schedule.tensor(main.writes[0]).shape[3]


_FULLY_CONNECTED = frozenset((OpKind.FC_FWD, OpKind.FC_BWD_DATA))
_GEMMS = PASS_KINDS  # implicit GEMMs: convolutions and fully connected layers


def _gemm_tiles(kernel: Kernel, width: int) -> list[Box]:
    """CTA tiles of an (n, c[, h]) space in swizzled launch order."""
    extents = [axis.extent for axis in kernel.space]
    c = extents[1]
    m_tiles = _m_tiles(kernel, width)
    n_tiles = [(start, min(start + TILE_N, c)) for start in range(0, c, TILE_N)]
    strip = _strip_width(len(n_tiles))
    order: list[Box] = []
    for first in range(0, len(n_tiles), strip):
        for images, rows in m_tiles:
            for channels in n_tiles[first : first + strip]:
                order.append((images, channels, rows) if len(extents) > 2 else (images, channels))
    return order


def _m_tiles(kernel: Kernel, width: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The (images, rows) of each M-tile: equal shares of about TILE_M pixels, as CUTLASS's
    M-tiles are equal (unequal tiles would let the CTAs that share weights drift apart)."""
    extents = [axis.extent for axis in kernel.space]
    n = extents[0]
    h = extents[2] if len(extents) > 2 else 1
    pixels = h * width
    if pixels >= TILE_M:
        shares = balance211(h, -(-h // max(1, round(TILE_M / width))))
        return [((image, image + 1), (r.start, r.stop)) for image in range(n) for r in shares]
    shares = balance211(n, -(-n // max(1, round(TILE_M / pixels))))
    return [((i.start, i.stop), (0, h)) for i in shares]


def _strip_width(n_tiles: int) -> int:
    """CUTLASS's get_log_tile for swizzle 4: 4 N-tiles per strip from 3 N-tiles on, 2 from 2."""
    if n_tiles >= 3:
        return SWIZZLE
    return 2 if n_tiles == 2 else 1


def _weight_gradient_tiles(kernel: Kernel, cores: int) -> list[Box]:
    """(output-channel tile × reduction slice) CTAs: the reduction (images × output rows) splits
    so that every SM gets a CTA."""
    extents = [axis.extent for axis in kernel.space]
    c, n = extents[0], extents[1]
    h = extents[2] if len(extents) > 2 else 1
    m_tiles = blocks_of(c, TILE_M)
    slices = min(n * h, max(1, -(-cores // m_tiles)))
    tiles: list[Box] = []
    for share in balance211(n * h, slices):
        for images, rows in linear_boxes((n, h), share.start, share.stop):
            for start in range(0, c, TILE_M):
                channels = (start, min(start + TILE_M, c))
                tiles.append((channels, images, rows) if len(extents) > 2 else (channels, images))
    return tiles


def _waves(kernel: Kernel, cores: int, wave_bytes: int, element_bytes: int) -> list[Box]:
    """Consecutive slabs of the space (in memory order) cut into one piece per SM."""
    extents = [axis.extent for axis in kernel.space]
    total = math.prod(extents) * element_bytes
    pieces = max(1, min(math.prod(extents), cores * -(-total // (cores * wave_bytes))))
    # cut the leading axes into about `pieces` row-major pieces
    boxes: list[Box] = [tuple((0, extent) for extent in extents)]
    for axis, extent in enumerate(extents):
        wanted = -(-pieces // len(boxes))
        if wanted <= 1:
            break
        step = -(-extent // min(extent, wanted))
        boxes = [
            (*box[:axis], (start, min(start + step, extent)), *box[axis + 1 :])
            for box in boxes
            for start in range(0, extent, step)
        ]
    return boxes


def _dealt(order: list[Box], cores: int) -> WorkSplit:
    """CTAs in launch order, handed out dynamically (threads: dealt to SMs in turn)."""
    threads: list[list[Box]] = [[] for _ in range(cores)]
    for index, box in enumerate(order):
        threads[index % cores].append(box)
    return WorkSplit(tuple(tuple(thread) for thread in threads), dynamic=True)
