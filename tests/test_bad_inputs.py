"""The bad-input corpus: every file gets exit 2, one line naming it, no traceback, nothing written.

tests/bad_inputs/expected.yaml lists, per file, the error class the Python API raises and a
fragment of the message. Hardware files go through `bnsim run --hw FILE`, workload files through
`bnsim run --workload FILE`, both with a --json path that must stay absent: every file through the
command line's entry point in this process, and a few in a process of their own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import bnsim
from bnsim.cli import main
from bnsim.errors import ConfigError, WorkloadError

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
EXPECTED: dict[str, dict[str, str]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
CLASSES = {"ConfigError": ConfigError, "WorkloadError": WorkloadError}
TINY = str(CORPUS.parent.parent / "hwconfigs" / "tiny.yaml")
HUGE = "workloads/huge_network.yaml"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus, plus the 100,000-layer network (generated: 5 MB is too much to commit)."""
    huge = CORPUS / HUGE
    if not huge.exists():
        lines = ["schema_version: 1", "name: huge", "batch: 2", "input: [3, 8, 8]", "layers:"]
        lines.append("  - {name: c0, kind: conv2d, inputs: [input], out_channels: 4, kernel: 1}")
        lines += [
            f"  - {{name: r{i}, kind: relu, inputs: [{'c0' if i == 1 else f'r{i - 1}'}]}}"
            for i in range(1, 100_000)
        ]
        lines.append("  - {name: flat, kind: flatten, inputs: [r99999]}")
        lines.append("  - {name: fc, kind: linear, inputs: [flat], out_features: 2}")
        lines.append("  - {name: loss, kind: softmax_cross_entropy, inputs: [fc]}")
        folder = tmp_path_factory.mktemp("corpus")
        (folder / "workloads").mkdir()
        (folder / HUGE).write_text("\n".join(lines) + "\n")
        return folder
    return CORPUS


def path_of(name: str, corpus: Path) -> Path:
    return (corpus if name == HUGE else CORPUS) / name


def test_the_corpus_has_every_file_and_nothing_else() -> None:
    on_disk = {
        f"{folder.name}/{path.name}"
        for folder in (CORPUS / "hw", CORPUS / "workloads")
        for path in folder.iterdir()
    }
    missing_on_purpose = {name for name in EXPECTED if "no_such_file" in name}
    assert on_disk | missing_on_purpose | {HUGE} == set(EXPECTED)
    assert len(EXPECTED) >= 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_api_raises_the_expected_error(name: str, corpus: Path) -> None:
    expected = EXPECTED[name]
    path = path_of(name, corpus)
    load = bnsim.load_machine if name.startswith("hw/") else bnsim.load_workload
    with pytest.raises(CLASSES[expected["error"]]) as raised:
        load(str(path))
    assert expected["message"] in str(raised.value)
    assert str(path) in str(raised.value)


def cli_arguments(name: str, path: Path, output: Path) -> list[str]:
    """`bnsim run` on the file: a machine with tiny_cnn, or a workload on tiny."""
    target = ["--hw", str(path), "--workload", "tiny_cnn"]
    if name.startswith("workloads/"):
        target = ["--hw", TINY, "--workload", str(path)]
    return ["run", *target, "--json", str(output)]


def check_one_line(name: str, path: Path, output: Path, code: int, out: str, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"bnsim: error: {path}: ")
    assert EXPECTED[name]["message"] in lines[0]
    assert out == ""
    assert not output.exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_command_line_says_one_line_and_writes_nothing(
    name: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command line's entry point, in this process."""
    path, output = path_of(name, corpus), tmp_path / "result.json"
    code = main(cli_arguments(name, path, output))
    out, err = capsys.readouterr()
    check_one_line(name, path, output, code, out, err)


# a machine, a workload and the 100,000-layer network also end to end, each in its own process
END_TO_END = ("hw/binary_garbage.yaml", "workloads/yaml_syntax_error.yaml", HUGE)


@pytest.mark.parametrize("name", END_TO_END)
def test_the_bnsim_process_says_one_line_and_writes_nothing(
    name: str, corpus: Path, tmp_path: Path
) -> None:
    path, output = path_of(name, corpus), tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, "-m", "bnsim", *cli_arguments(name, path, output)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    check_one_line(name, path, output, result.returncode, result.stdout, result.stderr)
