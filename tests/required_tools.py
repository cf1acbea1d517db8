"""Skip a test when an outside tool is missing, or fail it where DSMIP4_REQUIRE_TOOLS says the
machine must have it (CI after `make setup`)."""

from __future__ import annotations

import os
import shutil

import pytest


def require(*tools: str, install_hint: str = "make setup installs it when run as root") -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if not missing:
        return
    if os.environ.get("DSMIP4_REQUIRE_TOOLS"):
        pytest.fail(f"{', '.join(missing)} required here (DSMIP4_REQUIRE_TOOLS is set) but "
                    "not installed")
    pytest.skip(f"{', '.join(missing)} not installed ({install_hint})")
