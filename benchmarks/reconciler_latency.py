"""WaveReconciler reaction times, ours beside 0.3.0, with default settings.

    .venv/bin/python benchmarks/reconciler_latency.py            # ~1.5 min, mostly 0.3.0
    .venv/bin/python benchmarks/reconciler_latency.py --samples 500 --v030-samples 10

Three measurements, each implementation in a fresh process (0.3.0 from
``benchmarks/.venv-0.3.0``, see ``setup_030_venv.sh``), both with
``WaveReconciler(body)`` and nothing else (``poll_interval_s=2.0``):

* **dependency**: the time from the moment an upstream task's body returns
  to the moment its dependent's body is entered (``time.perf_counter()``
  in the bodies). One upstream/dependent pair per sample, added by
  ``update()``.
* **update**: the time from calling ``update()`` with a new task to the
  moment its body is entered. A polling reconciler's answer depends on where
  in its poll period the call falls, so 0.3.0's samples are taken at a
  uniformly random phase (a sleep of U(0, 2 s) before each); ours sleep
  U(0, 5 ms), only so that samples do not come back to back.
* **chain**: a chain of instant tasks, from ``update()`` to the last task's
  body. Ours runs 1,000 links; 0.3.0 needs one poll period per link, so it
  runs ``--v030-chain`` links (default 5) and the 1,000-link time is
  extrapolated from its time per link after the first (printed as such).

Medians are printed with the 10th and 90th percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
V030_PYTHON = HERE / ".venv-0.3.0" / "bin" / "python"
V030_VERSION = "0.3.0"


class Marks:
    """What the task bodies saw: entry and return times, and one wake-up per awaited task."""

    def __init__(self) -> None:
        self.entered: dict[str, float] = {}
        self.returned: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Event] = {}

    def expect(self, task_id: str) -> asyncio.Event:
        event = self.waiting[task_id] = asyncio.Event()
        return event

    async def body(self, task_id: str, spec: Any) -> str:
        self.entered[task_id] = time.perf_counter()
        event = self.waiting.pop(task_id, None)
        if event is not None:
            event.set()
        self.returned[task_id] = time.perf_counter()
        return task_id


async def dependency_latency(reconciler_cls: Any, samples: int) -> list[float]:
    marks = Marks()
    r = reconciler_cls(marks.body)
    await r.start()
    out = []
    try:
        for i in range(samples):
            up, down = f"up{i}", f"down{i}"
            arrived = marks.expect(down)
            await r.update({up: "up", down: "down"}, {down: {up}})
            await asyncio.wait_for(arrived.wait(), 60)
            out.append(marks.entered[down] - marks.returned[up])
    finally:
        await r.stop()
    return out


async def update_latency(reconciler_cls: Any, samples: int, phase: float) -> list[float]:
    marks = Marks()
    r = reconciler_cls(marks.body)
    await r.start()
    out = []
    try:
        for i in range(samples):
            await asyncio.sleep(random.uniform(0, phase))
            task_id = f"new{i}"
            arrived = marks.expect(task_id)
            called = time.perf_counter()
            await r.update({task_id: "new"})
            await asyncio.wait_for(arrived.wait(), 60)
            out.append(marks.entered[task_id] - called)
    finally:
        await r.stop()
    return out


async def chain_time(reconciler_cls: Any, links: int) -> float:
    marks = Marks()
    r = reconciler_cls(marks.body)
    await r.start()
    try:
        last = f"c{links - 1}"
        arrived = marks.expect(last)
        tasks = {f"c{i}": "link" for i in range(links)}
        deps = {f"c{i}": {f"c{i - 1}"} for i in range(1, links)}
        begun = time.perf_counter()
        await r.update(tasks, deps)
        await asyncio.wait_for(arrived.wait(), 3 * links + 60)
        return marks.entered[last] - begun
    finally:
        await r.stop()


async def measure(impl: str, samples: int, links: int) -> dict[str, Any]:
    import wave_executor
    from wave_executor.reconciler import WaveReconciler

    version = getattr(wave_executor, "__version__", "?")
    if (impl == "0.3.0") != (version == V030_VERSION):
        raise RuntimeError(f"--one {impl} imported wave-executor {version}")
    phase = 2.0 if impl == "0.3.0" else 0.005
    return {
        "impl": impl,
        "version": version,
        "dependency": await dependency_latency(WaveReconciler, samples),
        "update": await update_latency(WaveReconciler, samples, phase),
        "chain_links": links,
        "chain_s": await chain_time(WaveReconciler, links),
    }


def run_child(impl: str, samples: int, links: int) -> dict[str, Any]:
    if impl == "0.3.0" and not V030_PYTHON.exists():
        raise SystemExit(f"{V030_PYTHON} is missing; run benchmarks/setup_030_venv.sh first")
    python = str(V030_PYTHON) if impl == "0.3.0" else sys.executable
    command = [python, __file__, "--one", impl, "--samples", str(samples), "--links", str(links)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summary(seconds: list[float]) -> str:
    ms = sorted(s * 1e3 for s in seconds)
    if len(ms) < 2:
        return f"{ms[0]:9.3f} ms (n={len(ms)})"
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    median = statistics.median(ms)
    return f"{median:9.3f} ms  [p10 {deciles[0]:.3f}, p90 {deciles[-1]:.3f}] (n={len(ms)})"


def report(results: list[dict[str, Any]], links: int) -> None:
    print(f"WaveReconciler latency, default settings (poll_interval_s=2.0), {sys.platform}")
    for metric, title in (("dependency", "upstream returns -> dependent entered"),
                          ("update", "update() called -> new task entered")):  # fmt: skip
        print(f"\n{title}")
        for r in results:
            print(f"  {r['impl']:>5} {r['version']:>8}: {summary(r[metric])}")
    print(f"\n{links:,}-link chain of instant tasks, update() -> last task entered")
    for r in results:
        seconds, ran = r["chain_s"], r["chain_links"]
        line = f"  {r['impl']:>5} {r['version']:>8}: {seconds:9.3f} s for {ran:,} links"
        if ran != links and ran > 1:  # one poll period per link after the first
            guess = seconds / (ran - 1) * (links - 1)
            line += f" -> ~{guess:,.0f} s for {links:,} (extrapolated)"
        print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=200, help="samples per metric, ours")
    p.add_argument("--v030-samples", type=int, default=10, help="samples per metric, 0.3.0")
    p.add_argument("--links", type=int, default=1000)
    p.add_argument("--v030-chain", type=int, default=5, help="chain links run on 0.3.0")
    p.add_argument("--impls", default="ours,0.3.0")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--one", choices=("ours", "0.3.0"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(measure(args.one, args.samples, args.links))))
        return
    results = []
    for impl in args.impls.split(","):
        old = impl == "0.3.0"
        samples = args.v030_samples if old else args.samples
        links = args.v030_chain if old else args.links
        results.append(run_child(impl, samples, links))
    report(results, args.links)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
