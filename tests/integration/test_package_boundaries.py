"""`python -m shared` (a subprocess) points to the local host (tests/unit/test_package_boundaries.py:
the import rules)."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.test_package_boundaries import (
    REPO_ROOT,
)


def test_python_m_shared_points_to_the_local_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared", "serve", "--port", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: Python starts slowly on a loaded machine
    )
    assert result.returncode == 2
    assert "python -m devhost serve" in result.stderr
    assert result.stdout == ""
