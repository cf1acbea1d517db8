"""The Wireshark dissector shipped with the suite (dsmip4.lua) and where it installs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

LUA = Path(__file__).resolve().parent / "dsmip4.lua"
DEFAULT_DIR = Path.home() / ".local" / "lib" / "wireshark" / "plugins"


def personal_plugin_dir() -> Path:
    """Wireshark's personal Lua plugin folder, as tshark reports it (`tshark -G folders`), or
    the default of Wireshark 2.5 and later when tshark is not installed."""
    if shutil.which("tshark"):
        try:
            done = subprocess.run(["tshark", "-G", "folders"], capture_output=True, text=True,
                                  timeout=30)
            match = re.search(r"^Personal Lua Plugins:\s*(\S.*)$", done.stdout, re.M)
            if match:
                return Path(match.group(1).strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return DEFAULT_DIR


def install(target: Path | None = None) -> Path:
    folder = Path(target) if target else personal_plugin_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LUA.name
    shutil.copyfile(LUA, path)
    return path
