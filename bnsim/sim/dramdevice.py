"""A DRAM channel's devices: organisation, datasheet timing, and where an address lives.

`DRAMDevice` holds one channel's organisation (ranks, bank groups, banks, row and burst size) and
its timing in DRAM clocks, checked for contradictions; `address_decoder` maps a byte address to its
channel, rank, bank group, bank, row and column by a mapping of address fields. Shared by the DRAM
timing models (bnsim.sim.dram). Imports nothing from bnsim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

ADDRESS_FIELDS = ("row", "rank", "bankgroup", "bank", "channel", "column")
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

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            least = 1 if spec.name in _COUNTS else 0
            if value < least or (spec.name == "tck_s" and value <= 0):
                wanted = "positive" if spec.name == "tck_s" else f"at least {least}"
                raise ValueError(f"{spec.name}: must be {wanted}, got {value}")
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
class Location:
    """Where a burst lives (column: in bursts)."""

    channel: int
    rank: int
    bankgroup: int
    bank: int
    row: int
    column: int


def address_decoder(
    device: DRAMDevice, channels: int, mapping: Sequence[str], *, permute_banks: bool = False
) -> Callable[[int], Location]:
    """A function from byte address to Location: `mapping` names the fields from the most to the
    least significant (ADDRESS_FIELDS, each once); the row takes whatever the others leave.

    `permute_banks`: the row's digits in base B (B the banks of a rank), summed, offset the bank: a
    hash of every row bit, as controllers XOR row bits into the bank bits (permutation-based
    interleaving, Zhang, Zhu and Zhang, MICRO 2000), so that arrays a multiple of the bank stride
    apart fall in different banks."""
    if sorted(mapping) != sorted(ADDRESS_FIELDS):
        raise ValueError(
            f"address mapping: {','.join(mapping)} must name each of "
            f"{', '.join(ADDRESS_FIELDS)} once"
        )
    counts = {
        "rank": device.ranks,
        "bankgroup": device.bank_groups,
        "bank": device.banks_per_group,
        "channel": channels,
        "column": device.row_bytes // device.burst_bytes,
    }
    low_first = [name for name in reversed(mapping) if name != "row"]
    banks = device.bank_groups * device.banks_per_group

    def decode(address: int) -> Location:
        index = address // device.burst_bytes
        found = {}
        for name in low_first:
            index, found[name] = divmod(index, counts[name])
        if permute_banks:
            offset, row = 0, index
            while row:
                row, digit = divmod(row, banks)
                offset += digit
            bank = (found["bankgroup"] * device.banks_per_group + found["bank"] + offset) % banks
            found["bankgroup"], found["bank"] = divmod(bank, device.banks_per_group)
        return Location(row=index, **found)

    return decode
