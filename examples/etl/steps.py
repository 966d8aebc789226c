"""The pipeline's Python steps: called with (task_id, spec), their return value is the output."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def transform(task_id: str, spec: dict[str, Any]) -> dict[str, float]:
    """Totals per currency in EUR (sync: the command line runs it in a thread)."""
    rates = json.loads((HERE / "out" / "rates.json").read_text())
    totals: dict[str, float] = {}
    with (HERE / "out" / "orders.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            eur = float(row["amount"]) * rates[row["currency"]]
            totals[row["currency"]] = round(totals.get(row["currency"], 0.0) + eur, 2)
    return totals


async def summary(task_id: str, spec: dict[str, Any]) -> str:
    """A line of text from transform's output, which arrives in spec["_dep_outputs"]."""
    totals: dict[str, float] = spec["_dep_outputs"]["transform"]
    await asyncio.sleep(0)
    text = ", ".join(f"{c} {v:.2f}" for c, v in sorted(totals.items()))
    line = f"total in EUR by currency: {text}"
    (HERE / "out" / "summary.txt").write_text(line + "\n")
    return line
