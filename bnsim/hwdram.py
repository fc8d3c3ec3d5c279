"""The DRAM section of a hardware config: channels, devices and their timing, mapping, controllers.

`DRAMConfig.dram_device()`, `.path_clocks()` and `.controller_settings()` give the values the DRAM
timing model takes (bnsim.dramdevice); docs/hardware.md lists the keys and where the bundled values
come from.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from bnsim import units
from bnsim.dramdevice import Controller, DRAMDevice, channel_interleave_bytes
from bnsim.hwtypes import (
    Bytes,
    BytesPerSecond,
    ConfigModel,
    Count,
    Cycles,
    Fraction,
    Hertz,
    Seconds,
    is_power_of_two,
)

# DRAMDevice's fields as the config spells them, for its messages
_KEY_OF_FIELD = {"tck_s": "clock", "bus_bytes": "bus", "row_bytes": "row"}


class DRAMTiming(ConfigModel):
    """Datasheet timing in DRAM clocks (tCK): a datasheet's nanoseconds / tCK, rounded up."""

    cl: Cycles = Field(description="CAS latency: read command to first data")
    cwl: Cycles = Field(description="CAS write latency: write command to first data")
    trcd: Cycles = Field(description="activate to read or write")
    trp: Cycles = Field(description="precharge to activate")
    tras: Cycles = Field(description="activate to precharge")
    trrd_s: Cycles = Field(description="activate to activate, other bank group")
    trrd_l: Cycles = Field(description="activate to activate, same bank group")
    tfaw: Cycles = Field(description="window in which a rank takes at most four activates")
    tccd_s: Cycles = Field(description="column command to column command, other bank group")
    tccd_l: Cycles = Field(description="column command to column command, same bank group")
    twtr_s: Cycles = Field(description="end of write data to read, other bank group")
    twtr_l: Cycles = Field(description="end of write data to read, same bank group")
    twr: Cycles = Field(description="end of write data to precharge (write recovery)")
    trtp: Cycles = Field(description="read to precharge")
    trfc: Cycles = Field(description="refresh cycle: the rank is busy this long")
    trefi: Cycles = Field(description="refresh interval: one refresh per rank this often")
    turnaround: Cycles = Field(
        default=2,
        description="idle clocks on the data bus between a read burst and a write burst or "
        "bursts of two ranks",
    )


class DRAMDeviceConfig(ConfigModel):
    """One channel's devices, as the bus sees them (a rank of chips side by side)."""

    clock_hz: Hertz = Field(alias="clock", description="DRAM clock (data moves on both edges)")
    bus_bytes: Bytes = Field(alias="bus", description="width of a channel's data bus")
    burst_length: Count = Field(description="data beats per read or write command")
    row_bytes: Bytes = Field(alias="row", description="one row of one bank across the rank")
    ranks: Count = Field(description="ranks per channel")
    bank_groups: Count = Field(description="bank groups per rank")
    banks_per_group: Count = Field(description="banks per bank group")
    timing: DRAMTiming
    split_commands: bool = Field(
        default=False,
        strict=True,
        description="whether row commands (activate, precharge, refresh) and column commands "
        "(read, write) have command buses of their own, one of each per clock (HBM); else one "
        "command per clock (DDR4)",
    )


class ControllerConfig(ConfigModel):
    """A channel controller's queues."""

    read_queue: Count = Field(default=32, description="requests its read queue holds")
    write_queue: Count = Field(default=64, description="requests its write queue holds")
    write_high: Count = Field(default=54, description="queued writes at which a write drain starts")
    write_low: int = Field(
        default=32, ge=0, strict=True, description="queued writes at which it ends"
    )


class DRAMConfig(ConfigModel):
    """Address-interleaved DRAM channels."""

    channels: Count = Field(description="independent channels (HBM: pseudo-channels)")
    channel_bandwidth_bytes_per_second: BytesPerSecond = Field(
        alias="channel_bandwidth", description="peak transfer rate of one channel"
    )
    efficiency: Fraction = Field(
        description="fraction of peak bandwidth that streaming access sustains (refresh, "
        "read/write turnarounds, row misses); from STREAM-type measurements"
    )
    latency_s: Seconds = Field(
        alias="latency",
        description="idle load-to-use latency of a DRAM access (pointer chase); with a device, "
        "what its timing does not explain (tRCD + CL + a burst) is the path between core and "
        "controller",
    )
    interleave_bytes: Bytes = Field(
        alias="interleave", description="consecutive bytes mapped to one channel before the next"
    )
    device: DRAMDeviceConfig | None = Field(
        default=None, description="the devices and their datasheet timing (bnsim membench)"
    )
    mapping: tuple[str, ...] = Field(
        default=("row", "rank", "bank", "bankgroup", "column", "channel"),
        description="address fields from the most to the least significant (row, rank, "
        "bankgroup, bank, column, channel); `field:bits` places that many of a field's low bits",
    )
    bank_hash: bool = Field(
        default=False,
        strict=True,
        description="whether the row's bits, hashed, offset the bank (as controllers XOR row bits "
        "into bank bits)",
    )
    controller: ControllerConfig = Field(default_factory=ControllerConfig)

    @model_validator(mode="after")
    def _check_interleave(self) -> DRAMConfig:
        if not is_power_of_two(self.interleave_bytes):
            raise ValueError(
                f"interleave {units.bytes_text(self.interleave_bytes)} is not a power of two"
            )
        if self.device is None:
            return self
        device = self.dram_device()
        peak = self.device.clock_hz * 2 * self.device.bus_bytes
        if abs(peak / self.channel_bandwidth_bytes_per_second - 1) > 1e-3:
            raise ValueError(
                f"channel_bandwidth {units.bandwidth_text(self.channel_bandwidth_bytes_per_second)}"
                f" is not the device's 2 × clock × bus = {peak / 1e9:.4g}GB/s"
            )
        try:
            interleave = channel_interleave_bytes(device, self.channels, self.mapping)
        except ValueError as error:
            raise ValueError(str(error).replace("address mapping", "mapping", 1)) from None
        if interleave != self.interleave_bytes:
            raise ValueError(
                f"interleave {units.bytes_text(self.interleave_bytes)} is not what the mapping "
                f"puts on one channel ({units.bytes_text(interleave)})"
            )
        device_read_s = (device.trcd + device.cl + device.burst_clocks) * device.tck_s
        if self.latency_s < device_read_s:
            raise ValueError(
                f"latency {units.duration_text(self.latency_s)} is shorter than the device's own "
                f"read from a closed bank (tRCD + CL + a burst = "
                f"{device_read_s * 1e9:.4g}ns)"
            )
        controller = self.controller
        if not controller.write_low < controller.write_high <= controller.write_queue:
            raise ValueError(
                f"controller: need write_low ({controller.write_low}) < write_high "
                f"({controller.write_high}) <= write_queue ({controller.write_queue})"
            )
        return self

    def dram_device(self) -> DRAMDevice:
        """The device the timing model takes; ValueError naming the key if it contradicts itself."""
        if self.device is None:
            raise ValueError("device: this machine's DRAM has no device and timing (dram.device)")
        config = self.device
        try:
            return DRAMDevice(
                tck_s=1 / config.clock_hz,
                bus_bytes=config.bus_bytes,
                burst_length=config.burst_length,
                row_bytes=config.row_bytes,
                ranks=config.ranks,
                bank_groups=config.bank_groups,
                banks_per_group=config.banks_per_group,
                split_commands=config.split_commands,
                **config.timing.model_dump(),
            )
        except ValueError as error:
            name, _, rest = str(error).partition(":")
            key = (
                f"timing.{name}"
                if name in DRAMTiming.model_fields
                else _KEY_OF_FIELD.get(name, name)
            )
            raise ValueError(f"device.{key}:{rest}") from None

    def path_clocks(self) -> int:
        """DRAM clocks of the idle latency that the devices do not explain (core to controller and
        back), rounded to the nearest clock."""
        device = self.dram_device()
        device_clocks = device.trcd + device.cl + device.burst_clocks
        return max(0, round(self.latency_s / device.tck_s) - device_clocks)

    def controller_settings(self, window: int = 0, loop_clocks: int = 0) -> Controller:
        """The controllers' queues, with sources of `window` requests in flight."""
        return Controller(
            read_queue=self.controller.read_queue,
            write_queue=self.controller.write_queue,
            write_high=self.controller.write_high,
            write_low=self.controller.write_low,
            window=window,
            loop_clocks=loop_clocks,
        )

    def peak_bandwidth_bytes_per_second(self) -> float:
        """All channels at their peak rate."""
        return self.channels * self.channel_bandwidth_bytes_per_second

    def sustained_bandwidth_bytes_per_second(self) -> float:
        """All channels at the sustained (streaming) rate."""
        return self.peak_bandwidth_bytes_per_second() * self.efficiency
