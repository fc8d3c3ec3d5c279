"""The command line: output with units, JSON documents, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bnsim.cli import main
from bnsim.graph import load_workload
from bnsim.graph.zoo import build_model

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_workloads_show_prints_the_numbers_with_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "workloads", "show", "densenet121")
    assert code == 0
    assert "parameters    7,978,856" in out
    assert "2.834 GMAC per sample" in out
    assert "3×224×224 per sample, batch 32 samples" in out
    assert "conv2d                    120" in out


def test_workloads_show_json_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "workloads", "show", "resnet50", "--batch", "4", "--json")
    document = json.loads(out)
    assert code == 0
    assert {
        "name",
        "params",
        "macs_per_sample",
        "layer_counts",
        "activation_bytes_per_sample",
        "bn_input_elements_per_sample",
    } <= set(document)
    assert (document["params"], document["batch"], document["layer_counts"]["batchnorm2d"]) == (
        25_557_032,
        4,
        53,
    )


def test_workloads_list_names_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "workloads", "list", "--json")
    assert code == 0
    assert {item["name"]: item["params"] for item in json.loads(out)}["inception_v3"] == 23_834_568


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--json", ".", r"argument --json: \S+ is a folder; give a file name"),
        ("--csv", "missing/x.csv", r"argument --csv: \S+missing/x\.csv: folder \S+ does not exist"),
        ("--timeline", "missing/t.json", r"argument --timeline: .* does not exist"),
    ],
)
def test_an_output_file_in_no_folder_or_naming_a_folder_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, target: str, message: str
) -> None:
    code, out, err = run(
        capsys,
        "run",
        "--hw",
        str(REPO / "hwconfigs" / "tiny.yaml"),
        "--workload",
        "tiny_cnn",
        option,
        str(tmp_path / target),
    )
    assert code == 2
    assert out == ""
    assert re.match(r"bnsim run: error: " + message, err)
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no folder made, nothing written


def test_workloads_export_yaml_round_trips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_path = tmp_path / "mobilenet.yaml"
    code, out, _ = run(
        capsys, "workloads", "export", "mobilenet_v2", "--batch", "2", "--out", str(out_path)
    )
    assert code == 0
    assert f"wrote {out_path}" in out
    assert load_workload(out_path) == build_model("mobilenet_v2", batch=2)
    assert not list(out_path.parent.glob(".*partial"))


@pytest.mark.parametrize("fmt", ["graphml", "dot"])
def test_workloads_export_to_stdout(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = run(capsys, "workloads", "export", "tiny_cnn", "--format", fmt)
    assert code == 0
    assert "res.add" in out


def test_hw_show_prints_units_and_derived_peaks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "hw", "show", str(REPO / "hwconfigs" / "cmp16.yaml"))
    assert code == 0
    assert "16 × 2.6 GHz" in out
    assert "2.662 TFLOP/s" in out
    assert "22 MiB shared, 11-way, 64 B blocks, 32768 sets, 77 cycles, non-inclusive" in out
    assert "6 channels × 21.33 GB/s = 128 GB/s peak, 90 ns idle latency, 256 B per channel" in out
    assert "2 rank(s) × 4 bank groups × 4 banks, 8 KiB rows, 1.333 GHz, CL-tRCD-tRP 19-19-19" in out
    assert "at 0% writes" in out


def test_hw_show_applies_set_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "hw",
        "show",
        str(REPO / "hwconfigs" / "cmp16.yaml"),
        "--set",
        "llc.size=44MiB",
        "--set",
        "cores.count=8",
        "--json",
    )
    document = json.loads(out)
    assert code == 0
    assert (document["llc"]["size"], document["cores"]["count"]) == ("44MiB", 8)
    assert document["derived"]["peak_flops_per_second"] == pytest.approx(8 * 2.6e9 * 64)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["hw", "show", "missing.yaml"], "bnsim: error: missing.yaml: no such file"),
        (
            ["hw", "show", str(REPO / "hwconfigs" / "cmp16.yaml"), "--set", "llc.sise=1MiB"],
            "--set llc.sise: unknown key",
        ),
        (["workloads", "show", "densnet121"], "did you mean 'densenet121'?"),
        (["workloads", "show", "densenet121", "--image", "16"], "features.transition3.pool"),
        (
            ["workloads", "show", "densenet121", "--batch", "0"],
            "expected a positive integer, got 0",
        ),
        (["workloads", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert out == ""


def test_bad_file_through_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nname: x\ncores: {count: zero}\n")
    result = subprocess.run(
        [sys.executable, "-m", "bnsim", "hw", "show", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"bnsim: error: {bad}: ")
    assert "cores.count: input should be a valid integer, got 'zero'" in result.stderr


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bnsim", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("bnsim 0.")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "workloads" in out
    assert "hw" in out


def test_docs_list_every_hardware_key(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/hardware.md embeds `bnsim hw keys --markdown`; regenerate it when a key changes."""
    code, out, _ = run(capsys, "hw", "keys", "--markdown")
    assert code == 0
    assert out.strip() in (REPO / "docs" / "hardware.md").read_text(), (
        "docs/hardware.md is stale: paste the output of `bnsim hw keys --markdown`"
    )


def test_docs_list_every_zoo_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "workloads", "list", "--markdown")
    assert code == 0
    assert out.strip() in (REPO / "docs" / "workloads.md").read_text(), (
        "docs/workloads.md is stale: paste the output of `bnsim workloads list --markdown`"
    )


def test_schemes_lists_every_scheme_with_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schemes")
    assert code == 0
    for name in ("baseline", "fission", "bnff", "recompute", "sampling"):
        assert f"{name}: " in out
    assert "bn_stats_passes  2" in out
    assert "wide_limit     1024" in out


def test_verify_passes_and_writes_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "verify.json"
    code, out, _ = run(
        capsys,
        "verify",
        "--workload",
        "tiny_cnn",
        "--scheme",
        "bnff",
        "--scheme",
        "sampling:method=feature",
        "--json",
        str(out_path),
    )
    assert code == 0
    assert "bnff" in out
    assert "ok" in out
    assert "statistics used vs exact batch statistics" in out
    document = json.loads(out_path.read_text())
    assert {
        "workload",
        "scheme",
        "passed",
        "tensors_compared",
        "max_abs_err",
        "max_rel_err",
        "seconds",
    } <= set(document)
    assert document["passed"] is True
    assert document["scheme"] == ["bnff", "baseline+sampling:method=feature"]
    # the timed schedule does not compute the input gradient (the image needs none)
    assert document["reports"][0]["tensors_compared"] == 83


def test_verify_rejects_a_bad_scheme_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", "--workload", "tiny_cnn", "--scheme", "bnf")
    assert code == 2
    assert "unknown scheme 'bnf' (did you mean 'bnff'?" in err


def test_run_prints_totals_and_writes_json_and_csv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    json_path, csv_path = tmp_path / "run.json", tmp_path / "run.csv"
    code, out, _ = run(
        capsys,
        "run",
        "--hw",
        str(REPO / "hwconfigs" / "tiny.yaml"),
        "--workload",
        "tiny_cnn",
        "--batch",
        "4",
        "--scheme",
        "baseline",
        "--scheme",
        "bnff",
        "--jobs",
        "1",
        "--json",
        str(json_path),
        "--csv",
        str(csv_path),
    )
    assert code == 0
    assert "tiny_cnn, batch 4 samples of 3×16×16" in out
    assert "time (ms)" in out
    assert "DRAM read (MB)" in out  # a run under 1 GB: in MB
    assert "speedup" in out
    assert "baseline: DRAM traffic (read + write) and time by phase and layer kind" in out
    assert "both charged to ops" in out
    assert "fwd MB" in out
    document = json.loads(json_path.read_text())
    assert document["schema"] == "bnsim.result/2"
    assert document["hardware"]["name"] == "tiny"
    assert document["workload"]["params"] == 1770
    runs = {r["scheme"]: r for r in document["runs"]}
    assert set(runs) == {"baseline", "bnff"}
    for run_document in runs.values():
        assert {
            "cycles",
            "seconds",
            "flops",
            "dram_read_bytes",
            "dram_write_bytes",
            "breakdown",
            "kernels",
            "caches",
        } <= set(run_document)
        assert (
            sum(r["dram_read_bytes"] for r in run_document["breakdown"])
            == (run_document["dram_read_bytes"])
        )
    assert document["speedup_vs_baseline"]["baseline"] == 1.0
    import csv  # noqa: PLC0415

    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert {row["scheme"] for row in rows} == {"baseline", "bnff"}
    assert (
        sum(int(r["dram_read_bytes"]) for r in rows if r["scheme"] == "bnff")
        == (runs["bnff"]["dram_read_bytes"])
    )


def test_run_rejects_a_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "run",
        "--hw",
        str(REPO / "hwconfigs" / "tiny.yaml"),
        "--workload",
        "tiny_cnn",
        "--set",
        "llc.size=lots",
    )
    assert code == 2
    assert "--set llc.size: cannot parse 'lots' as a size" in err


def test_crosscheck_compares_every_fidelity_and_writes_one_run_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    json_path = tmp_path / "check.json"
    code, out, _ = run(
        capsys,
        "crosscheck",
        "--hw",
        str(REPO / "hwconfigs" / "tiny.yaml"),
        "--workload",
        "tiny_cnn",
        "--batch",
        "2",
        "--jobs",
        "1",
        "--json",
        str(json_path),
    )
    assert code == 0
    assert "every fidelity against line fidelity" in out
    assert "by phase: DRAM traffic (MB, read + write)" in out
    assert "by layer kind" in out
    document = json.loads(json_path.read_text())
    pairs = {(r["scheme"], r["fidelity"]) for r in document["runs"]}
    assert pairs == {(s, f) for s in ("baseline", "bnff") for f in ("line", "fast", "analytic")}
    assert document["speedup_vs_baseline"]["baseline@line"] == 1.0
    assert set(document["speedup_vs_baseline"]) == {f"{s}@{f}" for s, f in pairs}


@pytest.mark.parametrize("fidelity", ["line", "analytic"])
def test_run_takes_every_fidelity(capsys: pytest.CaptureFixture[str], fidelity: str) -> None:
    code, out, _ = run(
        capsys,
        "run",
        "--hw",
        str(REPO / "hwconfigs" / "tiny.yaml"),
        "--workload",
        "tiny_cnn",
        "--batch",
        "2",
        "--fidelity",
        fidelity,
        "--jobs",
        "1",
    )
    assert code == 0
    assert f"{fidelity} fidelity" in out


TINY_RUN = ("run", "--hw", str(REPO / "hwconfigs" / "tiny.yaml"), "--workload", "tiny_cnn")


@pytest.fixture(scope="module")
def saved_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Result documents of tiny_cnn at three LLC sizes, with a plot and a timeline of the first."""
    folder = tmp_path_factory.mktemp("saved")
    paths = {}
    for size in ("64KiB", "256KiB", "1MiB"):
        paths[size] = folder / f"llc-{size}.json"
        extra = []
        if size == "64KiB":
            extra = ["--plot", str(folder / "traffic.png"), "--timeline", str(folder / "t.json")]
        code = main(
            [
                *TINY_RUN,
                "--batch",
                "4",
                "--scheme",
                "baseline",
                "--scheme",
                "bnff",
                "--scheme",
                "recompute",
                "--set",
                f"llc.size={size}",
                "--jobs",
                "2",
                "--json",
                str(paths[size]),
                *extra,
            ]
        )
        assert code == 0
    paths["plot"], paths["timeline"] = folder / "traffic.png", folder / "t.json"
    return paths


def test_run_writes_a_plot_and_a_perfetto_timeline(saved_runs: dict[str, Path]) -> None:
    from PIL import Image  # noqa: PLC0415

    with Image.open(saved_runs["plot"]) as image:
        assert image.format == "PNG"
        assert image.size[0] > 400
    events = json.loads(saved_runs["timeline"].read_text())["traceEvents"]
    processes = {e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert processes == {"baseline", "bnff", "recompute"}
    document = json.loads(saved_runs["64KiB"].read_text())
    kernel_spans = [e for e in events if e["ph"] == "X" and e["tid"] == 0 and e["pid"] == 1]
    assert len(kernel_spans) == len(document["runs"][0]["kernels"])


@pytest.mark.parametrize("kind", ["traffic", "time", "layers", "roofline"])
def test_plot_draws_every_kind_from_a_saved_document(
    capsys: pytest.CaptureFixture[str], saved_runs: dict[str, Path], kind: str, tmp_path: Path
) -> None:
    out_path = tmp_path / f"{kind}.svg"
    code, out, err = run(
        capsys, "plot", str(saved_runs["64KiB"]), "--kind", kind, "--out", str(out_path)
    )
    assert (code, err) == (0, "")
    assert f"wrote {out_path}" in out
    assert out_path.read_text().lstrip().startswith("<?xml")


def test_plot_speedup_against_a_hardware_key_over_several_documents(
    capsys: pytest.CaptureFixture[str], saved_runs: dict[str, Path], tmp_path: Path
) -> None:
    documents = [str(saved_runs[size]) for size in ("1MiB", "64KiB", "256KiB")]
    out_path = tmp_path / "speedup.png"
    code, _, err = run(
        capsys, "plot", *documents, "--kind", "speedup", "--x", "llc.size", "--out", str(out_path)
    )
    assert (code, err) == (0, "")
    assert out_path.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--kind", "speedup"], "--kind speedup needs --x PARAMETER"),
        (["--kind", "speedup", "--x", "llc.colour"], "no parameter 'llc.colour'"),
        (["--kind", "traffic", "--schemes", "baseline,nope"], "no run of scheme 'nope'"),
        (["--out-format-is-in-the-name"], "unrecognized arguments"),
    ],
)
def test_plot_rejects_bad_requests_with_one_line(
    capsys: pytest.CaptureFixture[str],
    saved_runs: dict[str, Path],
    tmp_path: Path,
    arguments: list[str],
    message: str,
) -> None:
    out_path = tmp_path / "figure.png"
    code, _, err = run(capsys, "plot", str(saved_runs["64KiB"]), *arguments, "--out", str(out_path))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out_path.exists()


def test_plot_rejects_a_file_that_is_not_a_result(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"schema": "something/9"}')
    code, _, err = run(capsys, "plot", str(bogus), "--out", str(tmp_path / "x.png"))
    assert code == 2
    assert f"{bogus}: not a bnsim result document" in err


def test_run_refuses_an_unknown_image_format_before_simulating(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    json_path = tmp_path / "run.json"
    code, out, err = run(
        capsys, *TINY_RUN, "--json", str(json_path), "--plot", str(tmp_path / "traffic.jpeg")
    )
    assert code == 2
    assert "use .png, .svg or .pdf" in err
    assert (out, list(tmp_path.iterdir())) == ("", [])


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bnsim", *TINY_RUN, "--batch", "2", "--jobs", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_a_progress_bar_counts_schemes_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, *TINY_RUN, "--batch", "2", "--jobs", "1", *(["--quiet"] * quiet))
    assert code == 0
    if quiet:
        assert err == ""
    else:
        assert "bnsim: simulating schemes" in err
        assert "2/2" in err


def test_one_scheme_shows_its_kernels_progress_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, *TINY_RUN, "--batch", "2", "--scheme", "bnff")
    assert code == 0
    assert "bnsim: simulating bnff" in err
    assert "kernel" in err
