"""The certificate as a reader sees it: report.html rendered by headless Chromium as an image,
and report.pdf from `dsmip4 report --pdf`, both looked at as pictures and as text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from required_tools import require

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("chromium", "pdftoppm", "pdftotext", "pdfinfo")


def _require_tools():
    require(*TOOLS, install_hint="make setup installs chromium and poppler-utils as root")


def _ink(image: Image.Image) -> float:
    """The share of pixels that are not near-white: 0 is a blank page."""
    grey = image.convert("L")
    histogram = grey.histogram()
    return sum(histogram[:200]) / (grey.width * grey.height)


def _has_colour(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 40) -> bool:
    raw = image.convert("RGB").resize((image.width // 2, image.height // 2)).tobytes()
    return any(all(abs(a - b) <= tolerance for a, b in zip(raw[i:i + 3], rgb))
               for i in range(0, len(raw), 3))


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    _require_tools()
    tmp = tmp_path_factory.mktemp("pdf")
    profile = tmp / "faulty-ha.yaml"
    profile.write_text(f"extends: {ROOT}/fixtures/profiles/reference-ha.yaml\n"
                       "profile:\n  name: faulty-ha\nparameters:\n"
                       "  faults: \"[ha.duplicate-prefix-reply]\"\n")
    out = tmp / "run"
    done = subprocess.run([sys.executable, "-m", "conformance", "run", "--memory", "--role", "ha",
                           "--dut", str(profile), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_the_page_renders_with_its_statement_in_red(failing_run, tmp_path):
    from conformance.reports.pdf import screenshot

    png = screenshot(failing_run / "report.html", tmp_path / "page.png", 1280, 1400)
    image = Image.open(png)
    assert image.size == (1280, 1400)
    assert 0.02 < _ink(image) < 0.9  # text on a page, neither blank nor a black box
    assert _has_colour(image, (0xCF, 0x22, 0x2E))  # the NOT CONFORMANT border and FAIL badges


def test_the_pdf_certificate_is_short_readable_and_says_what_it_certifies(failing_run):
    done = subprocess.run([sys.executable, "-m", "conformance", "report", str(failing_run),
                           "--pdf"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    pdf = failing_run / "report.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines()
                     if line.startswith("Pages:")))
    assert 3 <= pages <= 30, pages  # the print stylesheet folds passed cases to one line
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True).stdout
    assert "HA faulty-ha: NOT CONFORMANT" in text and "MUST requirement(s) failed" in text
    assert "PICS item" in text and "PIXIT" in text and "(set, 16 bytes)" in text
    assert "00112233445566778899aabbccddeeff" not in text  # keys never printed
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf),
                    str(failing_run / "page")], check=True)
    first = Image.open(next(failing_run.glob("page*.png")))
    assert 0.01 < _ink(first) < 0.9
    # The PDF joins the folder's checksums.
    assert "report.pdf" in (failing_run / "SHA256SUMS").read_text()


def test_report_names_a_missing_folder_clearly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "report", str(tmp_path / "no")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "results.json: no such file" in done.stderr
    assert "Traceback" not in done.stderr
