"""Run one measurement in a fresh interpreter and read the JSON line it prints last.

A fresh process per measurement keeps runs independent (no warm heap, no
leftover tasks), and lets 0.3.0 run from its own virtual environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

V030_PYTHON = Path(__file__).resolve().parent / ".venv-0.3.0" / "bin" / "python"


def run_fresh(python: str | Path, script: str | Path, *args: str) -> Any:
    out = subprocess.run(
        [str(python), str(script), *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
