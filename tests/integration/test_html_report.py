"""The HTML report: one self-contained file, checked as markup and rendered in headless Chromium.

The browser test needs Debian's chromium and chromium-driver (.ci/run installs them) and Selenium
(the test extra); without them it is skipped, except where CI is set, where it fails.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bnsim.cli import main
from bnsim.report.html import run_report

SCHEMES = ("baseline", "bnff", "recompute")


class _Outline(HTMLParser):
    """What a page holds: headings, tables and their rows, images, and every linked resource."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.tables = 0
        self.rows = 0
        self.images: list[str] = []
        self.links: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.tables += 1
        elif tag == "tr":
            self.rows += 1
        elif tag == "img":
            self.images.append(values.get("src") or "")
        for name in ("src", "href"):
            if values.get(name) and tag != "img":
                self.links.append(values[name] or "")

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None


def outline(path: Path) -> _Outline:
    parser = _Outline()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> dict[str, Path]:
    """A point's report (from `bnsim run --report` and from its saved document) and a sweep's."""
    folder = tmp_path_factory.mktemp("reports")
    tiny = str(repo / "hwconfigs" / "tiny.yaml")
    schemes = [argument for scheme in SCHEMES for argument in ("--scheme", scheme)]
    point = ["--hw", tiny, "--workload", "tiny_cnn", "--batch", "4", *schemes]
    assert main(["run", *point, "--report", str(folder / "run.html"), "--json",
                 str(folder / "run.json")]) == 0  # fmt: skip
    assert main(["report", str(folder / "run.json"), "--out", str(folder / "again.html")]) == 0
    sweep = ["--hw", tiny, "--workload", "tiny_cnn", "--batch", "4", "--scheme", "baseline"]
    sweep += ["--scheme", "bnff", "--grid", "llc.size=64KiB,256KiB", "--quiet", "--jobs", "1"]
    out = folder / "sweep"
    assert main(["sweep", *sweep, "--out", str(out), "--report", str(folder / "sweep.html")]) == 0
    return {
        "run": folder / "run.html",
        "again": folder / "again.html",
        "sweep": folder / "sweep.html",
    }


def test_a_point_report_holds_its_sections_tables_and_figures_in_one_file(
    reports: dict[str, Path],
) -> None:
    page = outline(reports["run"])
    assert page.headings[:5] == [
        "tiny_cnn, batch 4, on tiny",
        "Summary",
        "Workload",
        "Where traffic and time go",
        "baseline",
    ]
    assert {"Figures", "Machine", "Element-wise ops"} <= set(page.headings)
    # the summary, the workload, a breakdown per scheme, the machine and its element-wise costs
    assert page.tables == 1 + 1 + len(SCHEMES) + 2
    assert len(page.images) == 4  # traffic, time, per layer, roofline
    for source in page.images:
        prefix = "data:image/png;base64,"
        assert source.startswith(prefix)
        assert base64.b64decode(source[len(prefix) :]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(link.startswith("#") for link in page.links)  # nothing outside the file
    assert reports["again"].read_text() == reports["run"].read_text()  # the saved document's


def test_a_sweep_report_draws_each_numeric_grid_key(reports: dict[str, Path]) -> None:
    page = outline(reports["sweep"])
    assert page.headings[0] == "Sweep sweep: tiny_cnn, batch 4, on tiny"
    assert page.headings[1:][:4] == ["Summary", "Figures", "DRAM traffic by layer kind", "Machine"]
    assert len(page.images) == 2  # speedup and traffic against llc.size
    assert all(link.startswith("#") for link in page.links)


def test_a_report_of_something_else_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.json").write_text('{"schema": "other"}')
    assert main(["report", str(tmp_path / "x.json"), "--out", str(tmp_path / "r.html")]) == 2
    assert "not a bnsim result document" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "no results.jsonl" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "x.json"), "--out", str(tmp_path / "r.pdf")]) == 2
    assert "a report is HTML; name it .html" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


# --- in a browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium driven by Selenium, as the report's reader would open it: no network."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver  # noqa: PLC0415 (the test extra)
        from selenium.webdriver.chrome.service import Service  # noqa: PLC0415
    except ImportError:
        chromium = None
    if not chromium or not driver:
        message = "needs chromium, chromium-driver (Debian) and selenium; .ci/run installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()


@pytest.mark.parametrize("name", ["run", "sweep"])
def test_a_report_renders_in_chromium_without_errors(
    reports: dict[str, Path], browser: object, name: str
) -> None:
    session: object = browser
    session.get(reports[name].as_uri())  # type: ignore[attr-defined]
    state = session.execute_script(  # type: ignore[attr-defined]
        "return {ready: document.readyState, title: document.title,"
        " images: Array.from(document.images).map(i => [i.complete, i.naturalWidth]),"
        " tables: document.querySelectorAll('table').length,"
        " height: document.body.scrollHeight};"
    )
    assert state["ready"] == "complete"
    assert state["title"] == outline(reports[name]).headings[0]
    assert state["images"]
    assert all(complete and width > 300 for complete, width in state["images"])  # decoded
    assert state["tables"] == outline(reports[name]).tables
    assert state["height"] > 1000  # laid out, not an empty page
    errors = [
        entry
        for entry in session.get_log("browser")  # type: ignore[attr-defined]
        if entry["level"] in ("SEVERE", "ERROR")
    ]
    assert errors == []


def test_run_report_takes_a_document(repo: Path) -> None:
    """The API a notebook calls: a result document in, the page out."""
    import json  # noqa: PLC0415

    import bnsim  # noqa: PLC0415

    machine = bnsim.load_machine(repo / "hwconfigs" / "tiny.yaml")
    network = bnsim.load_workload("tiny_cnn", batch=2)
    point = bnsim.make_point(machine, network, ["baseline"])
    document = json.loads(json.dumps(bnsim.point_document(point, bnsim.run_point(point), "x")))
    text = run_report(document)
    assert text.startswith("<!DOCTYPE html>")
    assert "<h1>tiny_cnn, batch 2, on tiny</h1>" in text
