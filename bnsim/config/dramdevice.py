"""A DRAM channel: its devices' organisation and timing, its controller's queues, address mapping.

`DRAMDevice` holds one channel's organisation (ranks, bank groups, banks, row and burst size) and
its timing in DRAM clocks, checked for contradictions; `Controller` its queues; `locate` maps byte
addresses to their channel, rank, bank group, bank, row and column by a mapping of address fields
(`address_decoder`: one at a time). Shared by the hardware config (bnsim.config.dram), the DRAM
timing model (bnsim.sim.dram) and its reference in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

ADDRESS_FIELDS = ("row", "rank", "bankgroup", "bank", "channel", "column")
MAX_BANK_FIELD = 64  # ranks, bank groups, banks per group: beyond any device (and its state's size)
MAX_QUEUE = 4096
_COUNTS = frozenset(("ranks", "bank_groups", "banks_per_group", "bus_bytes", "burst_length"))


@dataclass(frozen=True, slots=True)
class DRAMDevice:
    """One channel's organisation and timing (every timing in DRAM clocks, tCK)."""

    tck_s: float  # the DRAM clock period; data moves on both edges
    bus_bytes: int  # width of the channel's data bus
    burst_length: int  # beats per column command: a burst moves bus_bytes × burst_length
    row_bytes: int  # one row of one bank across the rank (a device's page × devices on the bus)
    ranks: int
    bank_groups: int
    banks_per_group: int
    cl: int  # read command to first data
    cwl: int  # write command to first data
    trcd: int  # ACT to column command
    trp: int  # PRE to ACT
    tras: int  # ACT to PRE
    trrd_s: int  # ACT to ACT, other bank group
    trrd_l: int  # ACT to ACT, same bank group
    tfaw: int  # at most four ACTs per rank in this window
    tccd_s: int  # column command to column command, other bank group
    tccd_l: int  # column command to column command, same bank group
    twtr_s: int  # end of write data to RD, other bank group
    twtr_l: int  # end of write data to RD, same bank group
    twr: int  # end of write data to PRE
    trtp: int  # RD to PRE
    trfc: int  # refresh: the rank is busy this long
    trefi: int  # one refresh per rank every this many clocks (0: no refresh)
    turnaround: int = 2  # idle clocks on the data bus when it changes direction or rank
    split_commands: bool = False  # row and column commands on buses of their own (HBM)

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            least = 1 if spec.name in _COUNTS else 0
            if value < least or (spec.name == "tck_s" and value <= 0):
                wanted = "positive" if spec.name == "tck_s" else f"at least {least}"
                raise ValueError(f"{spec.name}: must be {wanted}, got {value}")
        for name in ("ranks", "bank_groups", "banks_per_group"):
            if getattr(self, name) > MAX_BANK_FIELD:
                raise ValueError(f"{name}: at most {MAX_BANK_FIELD}, got {getattr(self, name)}")
        if self.tras < self.trcd:
            raise ValueError(f"tras: {self.tras} clocks is shorter than trcd ({self.trcd})")
        if self.row_bytes % self.burst_bytes or self.row_bytes < self.burst_bytes:
            raise ValueError(
                f"row_bytes: {self.row_bytes} is not a whole number of "
                f"{self.burst_bytes}-byte bursts"
            )
        if self.trefi and self.trefi <= self.trfc:
            raise ValueError(f"trefi: {self.trefi} is not longer than trfc ({self.trfc})")

    @property
    def burst_bytes(self) -> int:
        """Bytes one column command moves."""
        return self.bus_bytes * self.burst_length

    @property
    def burst_clocks(self) -> int:
        """Clocks one burst holds the data bus (two beats per clock)."""
        return -(-self.burst_length // 2)


@dataclass(frozen=True, slots=True)
class Controller:
    """A channel controller's queues, and the sources' windows.

    Either writes wait in a queue of their own, drained between the watermarks while reads wait,
    or (`shared`) reads and writes wait in the read queue together and FR-FCFS serves them alike.
    A request whose queue is full waits in the channel's miss queue (the LLC's queue of misses
    bound for the channel), oldest first, if it has room; else its source waits with it.
    """

    read_queue: int = 32  # requests the read queue holds (shared: all requests)
    write_queue: int = 64  # requests the write queue holds (unused when shared)
    write_high: int = 54  # a write drain starts at this many queued writes ...
    write_low: int = 32  # ... and ends at this many
    shared: bool = False  # one queue for reads and writes, no write drains
    miss_queue: int = 0  # requests that may wait, in order, in front of full queues
    window: int = 0  # requests a source keeps in flight (0: no limit)
    loop_clocks: int = 0  # from a release to the arrival of the request it lets go

    def __post_init__(self) -> None:
        if max(self.read_queue, self.write_queue) > MAX_QUEUE:
            raise ValueError(
                f"read_queue, write_queue: at most {MAX_QUEUE}, got {self.read_queue}, "
                f"{self.write_queue}"
            )
        if min(self.read_queue, self.write_queue) < 1:
            raise ValueError(
                f"read_queue, write_queue: must be at least 1, got {self.read_queue}, "
                f"{self.write_queue}"
            )
        if not 0 <= self.write_low < self.write_high <= self.write_queue:
            raise ValueError(
                f"write_high: need 0 <= write_low ({self.write_low}) < write_high "
                f"({self.write_high}) <= write_queue ({self.write_queue})"
            )
        if self.window < 0 or self.loop_clocks < 0 or not 0 <= self.miss_queue <= MAX_QUEUE:
            raise ValueError(
                f"window, loop_clocks, miss_queue: must be at least 0 (miss_queue at most "
                f"{MAX_QUEUE})"
            )


@dataclass(frozen=True, slots=True)
class Location:
    """Where a burst lives (column: in bursts)."""

    channel: int
    rank: int
    bankgroup: int
    bank: int
    row: int
    column: int


@dataclass(frozen=True, slots=True)
class Locations:
    """Where many bursts live: one array per field of Location."""

    channel: np.ndarray
    rank: np.ndarray
    bankgroup: np.ndarray
    bank: np.ndarray
    row: np.ndarray
    column: np.ndarray


def address_pieces(
    device: DRAMDevice, channels: int, mapping: Sequence[str]
) -> tuple[tuple[str, int], ...]:
    """The mapping's pieces from the least significant, each (field, how many values it takes).

    `mapping` names the fields from the most to the least significant (ADDRESS_FIELDS, each at
    least once); a field may be split over several places, each but one written `name:bits` (that
    many of its low bits, taken from the lowest place up); the row takes whatever the others leave.
    """
    counts = {
        "rank": device.ranks,
        "bankgroup": device.bank_groups,
        "bank": device.banks_per_group,
        "channel": channels,
        "column": device.row_bytes // device.burst_bytes,
    }
    names = [entry.partition(":")[0].strip() for entry in mapping]
    shown = ",".join(mapping)
    if sorted(set(names)) != sorted(ADDRESS_FIELDS):
        raise ValueError(f"address mapping: {shown} must name each of {', '.join(ADDRESS_FIELDS)}")
    whole: dict[str, int] = {}
    sized: list[tuple[str, int | None]] = []
    for entry, name in zip(mapping, names, strict=True):
        bits = entry.partition(":")[2].strip()
        if not bits:
            if name in whole:
                raise ValueError(f"address mapping: {shown} gives {name} twice without bits")
            whole[name] = 1
            sized.append((name, None))
        elif name == "row" or not bits.isdigit() or int(bits) < 1:
            raise ValueError(f"address mapping: {entry} (expected a field name or field:bits)")
        else:
            sized.append((name, 1 << int(bits)))
    pieces = []
    for name, given in reversed(sized):
        if name == "row":
            continue
        size = given if given is not None else counts[name] // _product(sized, name)
        pieces.append((name, size))
    for name, count in counts.items():
        product = _product(pieces, name)
        if product != count:
            raise ValueError(
                f"address mapping: {shown} gives {name} {product} values, the device has {count}"
            )
    return tuple(pieces)


def _product(pieces: Sequence[tuple[str, int | None]], name: str) -> int:
    """How many values `name`'s sized pieces take together."""
    product = 1
    for other, size in pieces:
        if other == name and size is not None:
            product *= size
    return product


def channel_interleave_bytes(device: DRAMDevice, channels: int, mapping: Sequence[str]) -> int:
    """Consecutive bytes that map to one channel before the next channel's."""
    below = device.burst_bytes
    for name, size in address_pieces(device, channels, mapping):
        if name == "channel":
            return below
        below *= size
    return below


def locate(
    device: DRAMDevice,
    channels: int,
    mapping: Sequence[str],
    addresses: np.ndarray,
    *,
    permute_banks: bool = False,
) -> Locations:
    """Where each byte address lives, by `mapping` (address_pieces).

    `permute_banks`: the row's digits in base B (B the banks of a rank), summed, offset the bank: a
    hash of every row bit, as controllers XOR row bits into the bank bits (permutation-based
    interleaving, Zhang, Zhu and Zhang, MICRO 2000), so that arrays a multiple of the bank stride
    apart fall in different banks."""
    index = np.asarray(addresses, dtype=np.int64) // device.burst_bytes
    found = {name: np.zeros_like(index) for name in ADDRESS_FIELDS if name != "row"}
    scale = dict.fromkeys(found, 1)
    for name, size in address_pieces(device, channels, mapping):
        index, digit = np.divmod(index, size)
        found[name] += digit * scale[name]
        scale[name] *= size
    if permute_banks:
        banks = device.bank_groups * device.banks_per_group
        offset, row = np.zeros_like(index), index
        while row.any():
            row, digit = np.divmod(row, banks)
            offset += digit
        bank = (found["bankgroup"] * device.banks_per_group + found["bank"] + offset) % banks
        found["bankgroup"], found["bank"] = np.divmod(bank, device.banks_per_group)
    return Locations(row=index, **found)


def address_decoder(
    device: DRAMDevice, channels: int, mapping: Sequence[str], *, permute_banks: bool = False
) -> Callable[[int], Location]:
    """`locate` for one address at a time."""
    address_pieces(device, channels, mapping)  # refuse a bad mapping now

    def decode(address: int) -> Location:
        found = locate(device, channels, mapping, np.array([address]), permute_banks=permute_banks)
        return Location(
            channel=int(found.channel[0]),
            rank=int(found.rank[0]),
            bankgroup=int(found.bankgroup[0]),
            bank=int(found.bank[0]),
            row=int(found.row[0]),
            column=int(found.column[0]),
        )

    return decode
