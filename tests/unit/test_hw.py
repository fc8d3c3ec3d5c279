"""Hardware configs: bundled machines load with published numbers; rejections name the key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bnsim.config.keys import describe_keys
from bnsim.config.machine import Machine, load_machine, machine_from_dict, parse_override
from bnsim.errors import ConfigError
from bnsim.schedule import Reorders
from bnsim.sim.mlp import core_window
from bnsim.trace import library_reorders

HWCONFIGS = sorted((Path(__file__).resolve().parents[2] / "hwconfigs").glob("*.yaml"))


@pytest.fixture
def raw(repo: Path) -> dict[str, Any]:
    """tiny.yaml as a mutable dict."""
    return yaml.safe_load((repo / "hwconfigs" / "tiny.yaml").read_text())


def assert_rejected(raw: dict[str, Any], match: str, overrides: tuple[str, ...] = ()) -> None:
    with pytest.raises(ConfigError, match=match):
        machine_from_dict(raw, source="bad.yaml", overrides=overrides)


@pytest.mark.parametrize("path", HWCONFIGS, ids=[path.stem for path in HWCONFIGS])
def test_every_bundled_config_loads_and_round_trips(path: Path) -> None:
    machine = load_machine(path)
    assert machine_from_dict(machine.to_dict()) == machine
    assert machine.name == path.stem


def test_cmp16_is_the_skylake_sp_socket_of_methods(repo: Path) -> None:
    machine = load_machine(repo / "hwconfigs" / "cmp16.yaml")
    assert machine.cores.count == 16
    assert machine.cores.flops_per_cycle() == 64  # 16 lanes × 2 FMA units × 2
    assert machine.peak_flops_per_second() == pytest.approx(16 * 2.6e9 * 64)
    assert (machine.private.size_bytes, machine.private.latency_cycles) == (1024 * 1024, 14)
    assert (machine.llc.size_bytes, machine.llc.ways, machine.llc.num_sets()) == (
        22 * 2**20,
        11,
        32768,
    )
    assert machine.dram.peak_bandwidth_bytes_per_second() == pytest.approx(128e9, rel=1e-3)
    assert machine.dtype_bytes() == 4


def test_v100_has_80_sms_and_15_7_tflops(repo: Path) -> None:
    machine = load_machine(repo / "hwconfigs" / "v100.yaml")
    assert (machine.private.size_bytes, machine.private.block_bytes) == (128 * 1024, 128)
    assert machine.peak_flops_per_second() == pytest.approx(15.67e12, rel=1e-3)
    # 32 channels × 2 × 877 MHz × 16 B (NVIDIA rounds it to 900 GB/s)
    assert machine.dram.peak_bandwidth_bytes_per_second() == pytest.approx(898.048e9)


def test_zen4_2c_is_this_machine_as_measured(repo: Path) -> None:
    """Its FMA peak is the measured one (2 × 116.2 GFLOP/s at 32 FLOP per cycle), its window
    Little's law on the measured single-core stream, its DRAM 24 DDR5-4800 sub-channels of 4 B,
    its convolutions oneDNN's primitives alone (the reorders around them are kernels of their
    own)."""
    machine = load_machine(repo / "hwconfigs" / "zen4-2c.yaml")
    assert machine.cores.flops_per_cycle() == 32
    assert machine.peak_flops_per_second() == pytest.approx(2 * 116.2e9, rel=2e-3)
    assert core_window(machine) == 74
    assert machine.dram.peak_bandwidth_bytes_per_second() == pytest.approx(24 * 19.2e9)
    efficiencies = machine.compute.conv_efficiencies()
    assert (efficiencies.forward, efficiencies.backward_data, efficiencies.backward_weight) == (
        1.0,
        1.0,
        0.97,
    )
    # PyTorch's tensors as it keeps them: oneDNN copies both around every convolution
    assert library_reorders(machine) == Reorders(activations=True, weights=True)


def test_overrides_apply_before_validation(repo: Path) -> None:
    machine = load_machine(
        repo / "hwconfigs" / "cmp16.yaml",
        ["llc.size=44MiB", "cores.count=8", "llc.inclusive=true", "dtype=bf16"],
    )
    assert (machine.llc.size_bytes, machine.cores.count, machine.llc.inclusive) == (
        44 * 2**20,
        8,
        True,
    )
    assert machine.dtype_bytes() == 2


def test_private_caches_level_by_level_are_refused_with_what_to_write(raw: dict[str, Any]) -> None:
    """One private level is simulated; an l1 or l2 key would describe one that changes nothing."""
    with pytest.raises(
        ConfigError, match=r"l2: bnsim simulates one private cache per core.*'private'"
    ):
        machine_from_dict(raw, overrides=["l2.size=8KiB"])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda r: r["llc"].update(sise="1MiB"),
            r"llc\.sise: unknown key \(did you mean 'size'\? "
            r"allowed: block, inclusive, latency, size, ways\)",
        ),
        (lambda r: r["cores"].pop("count"), r"cores\.count: missing required key"),
        (lambda r: r.pop("compute"), r"compute: missing required key"),
        (
            lambda r: r["private"].update(size="4 kib"),
            r"private\.size: '4 kib': unknown unit 'kib' for a size",
        ),
        (lambda r: r["private"].update(size=4096), r"private\.size: 4096 has no unit"),
        (lambda r: r["cores"].update(clock=1.0), r"cores\.clock: 1\.0 has no unit"),
        (
            lambda r: r["cores"].update(count="2"),
            r"cores\.count: input should be a valid integer, got '2'",
        ),
        (lambda r: r["cores"].update(count=2.5), r"cores\.count: input should be a valid integer"),
        (
            lambda r: r["cores"].update(count=0),
            r"cores\.count: input should be greater than 0, got 0",
        ),
        (
            lambda r: r["dram"].update(channels=-2),
            r"dram\.channels: input should be greater than 0",
        ),
        (
            lambda r: r["dram"].update(efficiency=0.78),
            r"dram: efficiency: no longer a key: the bandwidth a channel sustains now follows",
        ),
        (
            lambda r: r["dram"]["device"]["timing"].update(tras="5cycles"),
            r"dram: device\.timing\.tras: 5 clocks is shorter than trcd \(10\)",
        ),
        (
            lambda r: r["llc"].update(ways=7),
            r"llc: size 64KiB is not a multiple of ways × block \(7 × 64B = 448B\)",
        ),
        (lambda r: r["private"].update(block="96B"), r"private: block 96B is not a power of two"),
        (
            lambda r: r["private"].update(block="8KiB"),
            r"private: size 16KiB is not a multiple of ways × block",
        ),
        (
            lambda r: r["dram"].update(mapping=["row", "bank", "column", "channel"]),
            r"dram: mapping: row,bank,column,channel must name each of",
        ),
        (lambda r: r.update(schema_version=2), r"schema_version: input should be 1"),
        (lambda r: r.update(dtype="fp64"), r"dtype: input should be 'fp32', 'fp16' or 'bf16'"),
        (
            lambda r: r["llc"].update(inclusive="yes"),
            r"llc\.inclusive: input should be a valid boolean",
        ),
        (
            lambda r: r["compute"]["cycles_per_element"].pop("bn_stats"),
            r"compute\.cycles_per_element\.bn_stats: missing required key",
        ),
        (lambda r: r["compute"].update(source=""), r"compute\.source: .*at least 1 character"),
        (lambda r: r.update(cores=[1, 2]), r"cores: input should be a valid dictionary"),
    ],
)
def test_each_rejection_names_file_and_key(raw: dict[str, Any], mutate, match: str) -> None:
    mutate(raw)
    assert_rejected(raw, "^bad.yaml: " + match)


def test_all_errors_are_collected_in_one_message(raw: dict[str, Any]) -> None:
    raw["cores"]["count"] = 0
    raw["llc"]["sise"] = "1MiB"
    raw["dram"].pop("latency")
    assert_rejected(
        raw, r"^bad.yaml: 3 errors: cores\.count: .*; llc\.sise: .*; dram\.latency: missing"
    )


def test_errors_from_overrides_are_labelled_as_such(raw: dict[str, Any]) -> None:
    assert_rejected(raw, r"--set cores\.count: input should be greater than 0", ("cores.count=0",))
    assert_rejected(raw, r"--set llc\.sise: unknown key", ("llc.sise=1MiB",))
    assert_rejected(raw, r"--set 'llc\.size': expected key\.path=value", ("llc.size",))
    assert_rejected(raw, r"--set 'llc\.size=': empty value", ("llc.size=",))
    assert_rejected(
        raw,
        r"--set cores\.count\.x=1: cores\.count is a value, not a section",
        ("cores.count.x=1",),
    )


def test_overrides_do_not_modify_the_callers_dict(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    machine_from_dict(raw, overrides=["llc.size=128KiB"])
    assert raw == before


def test_parse_override_reads_yaml_scalars() -> None:
    assert parse_override("cores.count=8") == (("cores", "count"), 8)
    assert parse_override("llc.size=32MiB") == (("llc", "size"), "32MiB")
    assert parse_override("llc.ways=0.5") == (("llc", "ways"), 0.5)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "the file is empty"),
        ("- 1\n- 2\n", "expected a YAML mapping at the top level, got list"),
        ("a: 1\na: 2\n", r"invalid YAML \(line 2, column 1\): duplicate key 'a'"),
        ("a: [1\n", r"invalid YAML \(line 2"),
        (
            "!!python/object/apply:os.system ['true']\n",
            "invalid YAML .*could not determine a constructor",
        ),
    ],
)
def test_file_level_rejections(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "machine.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"machine.yaml: {match}"):
        load_machine(path)


def test_missing_directory_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.yaml: no such file"):
        load_machine(tmp_path / "nothere.yaml")
    with pytest.raises(ConfigError, match="is a directory, expected a YAML file"):
        load_machine(tmp_path)
    binary = tmp_path / "garbage.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_machine(binary)


def test_code_may_build_machines_with_canonical_numbers(tiny_machine: Machine) -> None:
    """Without the YAML context, canonical numbers are accepted (tests build machines in code)."""
    fields = {**tiny_machine.llc.model_dump(by_alias=False), "size_bytes": 2**20}
    bigger = type(tiny_machine.llc)(**fields)
    assert bigger.size_bytes == 2**20
    assert bigger.num_sets() == 2**20 // (8 * 64)


def test_with_overrides_validates_like_a_file(tiny_machine: Machine) -> None:
    assert tiny_machine.with_overrides(["llc.size=1MiB"]).llc.size_bytes == 2**20
    assert tiny_machine.with_overrides([]) == tiny_machine
    with pytest.raises(ConfigError, match=r"^tiny: --set llc\.size: 100 has no unit"):
        tiny_machine.with_overrides(["llc.size=100"])


def test_machines_are_frozen(tiny_machine: Machine) -> None:
    with pytest.raises(ValueError, match="frozen"):
        tiny_machine.cores.count = 4  # type: ignore[misc]


def test_every_key_is_documented() -> None:
    docs = list(describe_keys())
    paths = [doc.path for doc in docs]
    assert len(paths) == len(set(paths))
    assert {
        "cores.count",
        "cores.clock",
        "private.size",
        "llc.size",
        "llc.ways",
        "dram.channels",
        "dram.device.timing.trcd",
        "compute.cycles_per_element.bn_apply",
    } <= set(paths)
    assert all(doc.description for doc in docs if doc.path != "schema_version" or doc.description)
    units = {doc.path: doc.unit for doc in docs}
    assert (units["llc.size"], units["cores.clock"], units["dram.latency"]) == ("bytes", "Hz", "s")
    assert not next(doc for doc in docs if doc.path == "compute.nontemporal_stores").required


def test_a_config_with_a_base_changes_only_the_keys_it_names(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "base.yaml").write_text((repo / "hwconfigs" / "tiny.yaml").read_text())
    (tmp_path / "variant.yaml").write_text(
        "base: base.yaml\nname: variant\nllc: {size: 1MiB}\ncompute: {layout: nhwc}\n"
    )
    variant, base = load_machine(tmp_path / "variant.yaml"), load_machine(tmp_path / "base.yaml")
    assert (variant.name, variant.llc.size_bytes, variant.compute.layout) == (
        "variant",
        2**20,
        "nhwc",
    )
    assert variant.llc.ways == base.llc.ways  # a section merges key by key
    assert variant.with_overrides(["compute.layout=nchw", "name=base"]).compute == base.compute


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"a.yaml": "base: missing.yaml\n"}, r"missing\.yaml: no such file"),
        ({"a.yaml": "base: 3\n"}, r"a\.yaml: base: expected the path of another file"),
        (
            {"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"},
            r"b\.yaml: base: a\.yaml leads back",
        ),
    ],
)
def test_a_bad_base_is_refused_with_the_file_named(
    tmp_path: Path, files: dict[str, str], match: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_machine(tmp_path / "a.yaml")
