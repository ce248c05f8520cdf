"""The operator's commands cost the function app nothing at cold start: importing function_app
loads none of them, nor the queue SDK the health probe uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_AT_COLD_START = [
    "shared.__main__",
    "shared.ops.preview",
    "shared.ops.check",
    "shared.ops.send_test",
    "shared.ops.halo_setup",
    "shared.entry.timers",
    "azure.storage.queue",
    "requests",
]


def test_importing_function_app_loads_no_operator_module() -> None:
    code = (
        "import json, sys; import function_app; "
        f"print(json.dumps([m for m in {NOT_AT_COLD_START!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
