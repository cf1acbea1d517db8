"""The certificate as PDF (and the page as an image) through headless Chromium, Debian's
`chromium` package: the print stylesheet decides what goes on paper."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class NoBrowser(RuntimeError):
    pass


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise NoBrowser("no headless Chromium found (install the Debian package: "
                    "apt-get install chromium)")


def _run(*args: str, timeout: float = 120) -> None:
    # --no-sandbox: Chromium refuses to start as root with its sandbox (CI runs as root).
    cmd = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--hide-scrollbars", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.strip()[-500:]}")


def print_pdf(html: Path, pdf: Path) -> Path:
    pdf.unlink(missing_ok=True)
    _run(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", Path(html).resolve().as_uri())
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no PDF at {pdf}")
    return pdf


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2000) -> Path:
    png.unlink(missing_ok=True)
    _run(f"--screenshot={png}", f"--window-size={width},{height}",
         Path(html).resolve().as_uri())
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot at {png}")
    return png
