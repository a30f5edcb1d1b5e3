"""The HTML report in a real headless browser (Debian's chromium): it renders offline, with its plots."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from rollcraft.validate import validate_file
from tests.conftest import FIXTURES

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
FIX = FIXTURES / "validate"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = (FIX / "dpo_trl_clean.jsonl").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace('"quality_difference": 1.0', '"quality_difference": -1.0')
    folder = tmp_path_factory.mktemp("browser")
    data = folder / "pairs.jsonl"
    data.write_text("\n".join([*lines, "not json"]) + "\n", encoding="utf-8")
    page = folder / "report.html"
    page.write_text(validate_file(data).to_html(), encoding="utf-8")
    return page


def test_dom_has_the_plots_and_findings(report_page: Path) -> None:
    dom = _chromium("--dump-dom", report_page.as_uri()).stdout
    assert dom.count("<svg") >= 5, dom[:500]
    assert dom.count('class="bar"') > 10
    for text in ("Chosen reward", "Margin (chosen - rejected)", "Row length (chars)", "Rows per task type"):
        assert text in dom
    assert 'href="#row-3"' in dom and "non_positive_margin" in dom and 'href="#row-7"' in dom


def test_screenshot_is_not_blank(report_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1200,1600", report_page.as_uri())
    assert shot.exists(), result.stderr[-500:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 30_000  # a blank page compresses to a few KB
