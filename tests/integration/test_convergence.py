"""How finely bnsim simulates does not change the answer; kernels respect what physics allows.

Simulation options (`tiles_per_core`, `step_bytes`) only cut a core's work into finer steps: the
results at 4× finer must stay within 2 % of the default, and bnff's speedup within 0.02
(docs/model.md, Granularity; the batch-32 figures are in docs/performance.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bnsim.config.machine import load_machine
from bnsim.graph.zoo import build_model
from bnsim.result import RunResult
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.trace import DEFAULT_STEP_BYTES, SimOptions

REPO = Path(__file__).resolve().parents[2]
MACHINES = {name: load_machine(REPO / "hwconfigs" / f"{name}.yaml") for name in ("cmp16", "v100")}
FINER = (SimOptions(tiles_per_core=4), SimOptions(step_bytes=DEFAULT_STEP_BYTES // 4))


def _total(run: RunResult) -> int:
    return run.dram_read_bytes + run.dram_write_bytes


@pytest.mark.parametrize("model", ["densenet121", "resnet50"])
def test_finer_steps_change_no_result_beyond_two_percent(model: str) -> None:
    """At batch 32 on cmp16 (the v100 rows are in benchmarks/convergence.py: minutes each)."""
    network = build_model(model, batch=32)
    schedules = [build_schedule(network, scheme) for scheme in ("baseline", "bnff")]
    default = [simulate(schedule, MACHINES["cmp16"]) for schedule in schedules]
    for options in FINER:
        finer = [simulate(schedule, MACHINES["cmp16"], options) for schedule in schedules]
        assert sum(run.num_events for run in finer) > sum(run.num_events for run in default)
        for coarse, fine in zip(default, finer, strict=True):
            assert _total(fine) == pytest.approx(_total(coarse), rel=0.02), coarse.scheme
            assert fine.cycles == pytest.approx(coarse.cycles, rel=0.02), coarse.scheme
        speedup = default[0].cycles / default[1].cycles
        assert finer[0].cycles / finer[1].cycles == pytest.approx(speedup, abs=0.02)


@pytest.mark.parametrize(
    ("model", "batch", "image", "machine"),
    [("densenet121", 4, 64, "cmp16"), ("resnet50", 8, 64, "cmp16"), ("resnet50", 2, 64, "v100")],
)
def test_finer_steps_change_no_result_beyond_two_percent_on_small_networks(
    model: str, batch: int, image: int, machine: str
) -> None:
    """Small networks too, where a kernel's cores all read the same weights at once: a core that
    finds a line another core is still fetching waits for it, whatever the step size."""
    network = build_model(model, batch=batch, image=image)
    schedules = [build_schedule(network, scheme) for scheme in ("baseline", "bnff", "recompute")]
    default = [simulate(schedule, MACHINES[machine]) for schedule in schedules]
    for options in FINER:
        for schedule, coarse in zip(schedules, default, strict=True):
            fine = simulate(schedule, MACHINES[machine], options)
            assert fine.num_events > coarse.num_events
            assert _total(fine) == pytest.approx(_total(coarse), rel=0.02), coarse.scheme
            assert fine.cycles == pytest.approx(coarse.cycles, rel=0.02), coarse.scheme
