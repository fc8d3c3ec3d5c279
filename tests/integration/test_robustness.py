"""Same results whatever the hash seed; Ctrl-C ends a run at once, quietly, writing nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "hwconfigs" / "tiny.yaml")


def test_results_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    documents = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bnsim",
                "run",
                "--hw",
                TINY,
                "--workload",
                "tiny_cnn",
                "--batch",
                "4",
                "--scheme",
                "baseline",
                "--scheme",
                "bnff+sampling:method=feature",
                "--scheme",
                "recompute",
                "--jobs",
                "2",
                "--json",
                str(out),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        documents.append(out.read_bytes())
    assert documents[0] == documents[1]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_ends_a_run_with_130_and_one_line(tmp_path: Path, jobs: str) -> None:
    out = tmp_path / "result.json"
    # the child meets Ctrl-C as under a terminal: a shell starts a background job with SIGINT
    # ignored, which its children inherit (Python then never raises KeyboardInterrupt); a handler
    # set here is reset to the default in the child
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bnsim",
            "run",
            "--hw",
            str(REPO / "hwconfigs" / "cmp16.yaml"),
            "--workload",
            "densenet121",
            "--fidelity",
            "line",  # 7-10 s per scheme: still running when interrupted (fast can end in 2 s)
            "--force",
            "--jobs",
            jobs,
            "--json",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the whole process group, workers included
    )
    signal.signal(signal.SIGINT, previous)
    time.sleep(2.0)  # imports done, simulating
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err == "bnsim: interrupted\n"
    assert not out.exists()


def test_an_interrupted_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bnsim.cli import options  # noqa: PLC0415
    from bnsim.report import plots  # noqa: PLC0415

    target = tmp_path / "result.json"
    target.write_text("the previous, complete result\n")
    real_write = Path.write_text

    def interrupted(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real_write(self, text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        options.write_text(target, "a new result, " * 100)
    monkeypatch.undo()
    assert target.read_text() == "the previous, complete result\n"
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]  # no partial file left

    figure_path = tmp_path / "figure.png"
    figure_path.write_bytes(b"old figure")
    figure = plots.Figure()

    def failing_savefig(*args: object, **kwargs: object) -> None:
        Path(str(args[0])).write_bytes(b"half a PNG")
        raise KeyboardInterrupt

    monkeypatch.setattr(figure, "savefig", failing_savefig)
    with pytest.raises(KeyboardInterrupt):
        plots.save(figure, figure_path)
    assert figure_path.read_bytes() == b"old figure"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["figure.png", "result.json"]


def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    import bnsim  # noqa: PLC0415
    from bnsim.errors import InfeasibleError, WorkloadError  # noqa: PLC0415

    with pytest.raises(WorkloadError, match=r"layer 'input' \(input\): its output .* elements"):
        bnsim.load_workload("tiny_cnn", batch=1 << 34)
    machine = bnsim.load_machine(REPO / "hwconfigs" / "cmp16.yaml", ["llc.size=1408GiB"])
    schedule = bnsim.build_schedule(bnsim.load_workload("tiny_cnn", batch=2), "baseline")
    with pytest.raises(InfeasibleError, match=r"about 352 GiB of cache state; use --fidelity fast"):
        bnsim.simulate(schedule, machine, bnsim.SimOptions(fidelity="line"))


def test_ctrl_c_while_the_interface_loads_ends_with_130_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interrupt that lands before the command runs (while bnsim.cli and what it imports load,
    which on a cold machine takes seconds) says the same one line as one during a run."""
    import types  # noqa: PLC0415

    from bnsim.__main__ import run  # noqa: PLC0415

    class Loading(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "bnsim.cli", Loading("bnsim.cli"))
    assert run() == 130
    assert capsys.readouterr().err == "bnsim: interrupted\n"
