"""The DRAM section of a hardware config: channels, devices and their timing, mapping, controllers.

`DRAMConfig.dram_device()`, `.path_clocks()` and `.controller_settings()` give the values the DRAM
timing model takes (bnsim.config.dramdevice); docs/hardware.md lists the keys and where the bundled
values come from.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from bnsim import units
from bnsim.config.dramdevice import MAX_QUEUE, Controller, DRAMDevice, channel_interleave_bytes
from bnsim.config.parts import (
    Bytes,
    ConfigModel,
    Count,
    Cycles,
    Hertz,
    Seconds,
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


_SEPARATE_KEYS = ("read_queue", "write_queue", "write_high", "write_low")


class ControllerConfig(ConfigModel):
    """A channel controller's queues: one shared by reads and writes (`queue`), or a read queue
    and a write queue drained between two watermarks."""

    queue: Count | None = Field(
        default=None,
        description="requests its one queue holds, reads and writes together, served alike by "
        "FR-FCFS with no write drains (instead of the four keys below)",
    )
    read_queue: Count = Field(default=32, description="requests its read queue holds")
    write_queue: Count = Field(default=64, description="requests its write queue holds")
    write_high: Count = Field(default=54, description="queued writes at which a write drain starts")
    write_low: int = Field(
        default=32, ge=0, strict=True, description="queued writes at which it ends"
    )
    miss_queue: int = Field(
        default=0,
        ge=0,
        strict=True,
        description="requests bound for the channel that may wait, oldest first, in front of its "
        "full queue (the last-level cache's queue of misses), so that their cores' later requests "
        "to other channels go on; 0: a core waits with its request",
    )

    @model_serializer(mode="wrap")
    def _only_the_queues_in_use(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A shared queue's document leaves out the separate queues' keys (they would conflict)."""
        document = handler(self)
        if self.queue is not None:
            for key in _SEPARATE_KEYS:
                document.pop(key, None)
        return document


_REMOVED = {
    "efficiency": "the bandwidth a channel sustains now follows from dram.device's timing",
    "channel_bandwidth": "a channel's peak is 2 × dram.device.clock × dram.device.bus",
    "interleave": "the bytes each channel takes in turn follow from dram.mapping",
}


class DRAMConfig(ConfigModel):
    """DRAM channels: their devices and datasheet timing, the address mapping, the controllers."""

    channels: Count = Field(description="independent channels (HBM: pseudo-channels)")
    latency_s: Seconds = Field(
        alias="latency",
        description="idle load-to-use latency of a DRAM access (a pointer chase); what the "
        "device's timing does not explain (tRCD + CL + a burst) is the path between core and "
        "controller",
    )
    device: DRAMDeviceConfig = Field(description="one channel's devices and their timing")
    mapping: tuple[str, ...] = Field(
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

    @model_validator(mode="before")
    @classmethod
    def _refuse_removed_keys(cls, raw: Any) -> Any:
        for key, why in _REMOVED.items() if isinstance(raw, dict) else ():
            if key in raw:
                raise ValueError(f"{key}: no longer a key: {why} (docs/hardware.md, DRAM timing)")
        return raw

    @model_validator(mode="after")
    def _check_consistency(self) -> DRAMConfig:
        device = self.dram_device()
        try:
            channel_interleave_bytes(device, self.channels, self.mapping)
        except ValueError as error:
            raise ValueError(str(error).replace("address mapping", "mapping", 1)) from None
        device_read_s = (device.trcd + device.cl + device.burst_clocks) * device.tck_s
        if self.latency_s < device_read_s:
            raise ValueError(
                f"latency {units.duration_text(self.latency_s)} is shorter than the device's own "
                f"read from a closed bank (tRCD + CL + a burst = {device_read_s * 1e9:.4g}ns)"
            )
        controller = self.controller
        separate = sorted(set(_SEPARATE_KEYS) & controller.model_fields_set)
        if controller.queue is not None and separate:
            raise ValueError(
                f"controller: queue (one queue for reads and writes) or {', '.join(separate)} "
                "(a write queue of its own), not both"
            )
        if (
            max(
                controller.queue or 0,
                controller.miss_queue,
                controller.read_queue,
                controller.write_queue,
            )
            > MAX_QUEUE
        ):
            raise ValueError(f"controller: queues of at most {MAX_QUEUE} requests, please")
        if not controller.write_low < controller.write_high <= controller.write_queue:
            raise ValueError(
                f"controller: need write_low ({controller.write_low}) < write_high "
                f"({controller.write_high}) <= write_queue ({controller.write_queue})"
            )
        return self

    def channel_peak_bytes_per_second(self) -> float:
        """One channel's peak: a burst's bytes every half clock."""
        return 2 * self.device.clock_hz * self.device.bus_bytes

    def peak_bandwidth_bytes_per_second(self) -> float:
        """All channels at their peak rate."""
        return self.channels * self.channel_peak_bytes_per_second()

    def interleave_bytes(self) -> int:
        """Consecutive bytes that map to one channel before the next channel's."""
        return channel_interleave_bytes(self.dram_device(), self.channels, self.mapping)

    def dram_device(self) -> DRAMDevice:
        """The device the timing model takes; ValueError naming the key if it contradicts itself."""
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
        if self.controller.queue is not None:
            return Controller(
                read_queue=self.controller.queue,
                shared=True,
                miss_queue=self.controller.miss_queue,
                window=window,
                loop_clocks=loop_clocks,
            )
        return Controller(
            read_queue=self.controller.read_queue,
            write_queue=self.controller.write_queue,
            write_high=self.controller.write_high,
            write_low=self.controller.write_low,
            miss_queue=self.controller.miss_queue,
            window=window,
            loop_clocks=loop_clocks,
        )
