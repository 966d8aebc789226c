"""Makespan check: how close to the best possible schedule each scheduler gets.

    .venv/bin/python benchmarks/makespan.py              # all variants, markdown table
    python benchmarks/makespan.py --impl floor           # one variant, JSON lines

200-task random DAGs (:func:`graphs.random_dag`, mean in-degree ~2.5), task bodies that
``await asyncio.sleep(d)`` with ``d`` lognormal (mean 20 ms, sigma 1), caps 4 and 16, five
seeds. Each makespan is divided by the lower bound ``max(critical path, total work / cap)``
computed from the planned durations; no schedule can beat it, so 1.00 is perfect. Several
runs per (cap, seed); the median per seed is kept and averaged over the five seeds.

Variants: ours (its own count-based critical-path priority, no hint), ours with
``priority_costs=durations`` (only if ``execute`` takes that keyword), 0.3.0 with a fixed
window, 0.3.0 with its default config (adaptive window on) and the floor (FIFO order).
Each variant runs in its own subprocess under the interpreter that has its library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import graphs
from impls import accepts_priority_costs, count_successes, interpreter_for, make_runner

N_TASKS = 200
MEAN_DURATION_S = 0.020
SIGMA = 1.0
CAPS = (4, 16)
SEEDS = (0, 1, 2, 3, 4)
HERE = Path(__file__).resolve().parent

#: variant -> (impl, label, config overrides beyond the cap, pass priority_costs?)
VARIANTS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "ours": (
        "ours",
        "ours (no cost hint)",
        {"max_retries": 0, "adaptive_batch_window": False, "circuit_breaker_enabled": False},
        False,
    ),
    "ours-costs": (
        "ours",
        "ours + priority_costs=durations",
        {"max_retries": 0, "adaptive_batch_window": False, "circuit_breaker_enabled": False},
        True,
    ),
    "0.3.0-fixed": (
        "0.3.0",
        "0.3.0, adaptive_batch_window=False",
        {"max_retries": 0, "adaptive_batch_window": False, "circuit_breaker_enabled": False},
        False,
    ),
    "0.3.0-default": ("0.3.0", "0.3.0, default config", {}, False),
    "floor": ("floor", "floor (FIFO)", {}, False),
}


def durations(tasks: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Lognormal durations with mean :data:`MEAN_DURATION_S` (``mu = ln(mean) - sigma²/2``)."""
    rng = random.Random(10_000 + seed)
    mu = math.log(MEAN_DURATION_S) - SIGMA**2 / 2
    return {t: rng.lognormvariate(mu, SIGMA) for t in tasks}


def critical_path(
    tasks: Mapping[str, Any], deps: Mapping[str, Sequence[str]], dur: Mapping[str, float]
) -> float:
    """Longest duration-weighted path; ``random_dag`` lists tasks in topological order."""
    finish: dict[str, float] = {}
    for t in tasks:
        finish[t] = dur[t] + max((finish[d] for d in deps.get(t, ())), default=0.0)
    return max(finish.values(), default=0.0)


async def one_run(variant: str, cap: int, seed: int) -> dict[str, Any]:
    """Build graph and durations, run ``execute`` once, return makespan and lower bound."""
    impl, _, overrides, with_costs = VARIANTS[variant]
    tasks, deps = graphs.random_dag(N_TASKS, seed)
    dur = durations(tasks, seed)
    runner, info = make_runner(
        impl,
        {"max_parallel_per_wave": cap, **overrides},
        priority_costs=dur if with_costs else None,
    )

    async def body(task_id: str, spec: Any) -> None:
        await asyncio.sleep(dur[task_id])

    t0 = time.perf_counter()
    result = await runner(tasks, deps, body)
    makespan = time.perf_counter() - t0
    cp = critical_path(tasks, deps, dur)
    work = sum(dur.values())
    lb = max(cp, work / cap)
    return {
        **info,
        "variant": variant,
        "cap": cap,
        "seed": seed,
        "makespan_s": makespan,
        "critical_path_s": cp,
        "work_s": work,
        "lower_bound_s": lb,
        "ratio": makespan / lb,
        "ok": count_successes(impl, result) == N_TASKS,
    }


def worker(variant: str, reps: int) -> int:
    """Run every (cap, seed, rep) of one variant in this process; print JSON lines."""
    impl, _, _, with_costs = VARIANTS[variant]
    if with_costs:
        from impls import load_library

        if not accepts_priority_costs(load_library(impl)):
            print(json.dumps({"variant": variant, "unsupported": "no priority_costs kwarg"}))
            return 0
    for rep in range(reps):
        for cap in CAPS:
            for seed in SEEDS:
                out = asyncio.run(one_run(variant, cap, seed))
                print(json.dumps({**out, "rep": rep}), flush=True)
    return 0


def run_variant(variant: str, reps: int, ours_python: str) -> list[dict[str, Any]]:
    """Run one variant's worker in a subprocess with the right interpreter."""
    impl = VARIANTS[variant][0]
    python = interpreter_for(impl, ours_python)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} if impl == "0.3.0" else None
    cmd = [python, str(Path(__file__).resolve()), "--impl-variant", variant, "--reps", str(reps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        rows.append({"variant": variant, "error": err[-1] if err else f"exit {proc.returncode}"})
    return rows


def summarize(rows: list[dict[str, Any]], variant: str, cap: int) -> tuple[list[str], str]:
    """Per-seed median ratio (over reps) and their mean, formatted for the table."""
    per_seed: list[str] = []
    medians: list[float] = []
    for seed in SEEDS:
        vals = [
            r["ratio"]
            for r in rows
            if r.get("variant") == variant
            and r.get("cap") == cap
            and r.get("seed") == seed
            and r.get("ok")
        ]
        if vals:
            medians.append(statistics.median(vals))
            per_seed.append(f"{medians[-1]:.3f}")
        else:
            per_seed.append("-")
    mean = f"**{statistics.fmean(medians):.3f}**" if len(medians) == len(SEEDS) else "-"
    if variant.startswith("ours") and mean != "-":
        mean += " (≤1.10 met)" if statistics.fmean(medians) <= 1.10 else " (>1.10: NOT met)"
    return per_seed, mean


def table(rows: list[dict[str, Any]], variants: Sequence[str], reps: int) -> str:
    """One markdown table per cap: variants as rows, seeds and their mean as columns."""
    out: list[str] = []
    for cap in CAPS:
        lbs = []
        for seed in SEEDS:
            r = next((r for r in rows if r.get("cap") == cap and r.get("seed") == seed), None)
            lbs.append(f"{r['lower_bound_s'] * 1000:.0f}" if r else "?")
        out += [
            f"cap {cap} (makespan / lower bound; median of {reps} runs per seed; "
            f"lower bounds in ms: {', '.join(lbs)})",
            "",
        ]
        head = ["variant", *(f"seed {s}" for s in SEEDS), "mean"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for v in variants:
            label = VARIANTS[v][1]
            note = next(
                (
                    r.get("unsupported") or r.get("error")
                    for r in rows
                    if r.get("variant") == v and ("unsupported" in r or "error" in r)
                ),
                None,
            )
            if note and not any(r.get("variant") == v and "ratio" in r for r in rows):
                out.append(f"| {label} | " + " | ".join(["-"] * len(SEEDS)) + f" | {note} |")
                continue
            per_seed, mean = summarize(rows, v, cap)
            out.append(f"| {label} | " + " | ".join(per_seed) + f" | {mean} |")
        out.append("")
    return "\n".join(out)


def versions(rows: list[dict[str, Any]]) -> str:
    """Library versions behind the tables, so that a table names the code it measured."""
    seen = sorted(
        {f"{r['impl']} {r['version']} (source {r['source_hash']})" for r in rows if "ratio" in r}
    )
    return "Measured: " + "; ".join(s for s in seen if not s.startswith("floor")) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Driver options, plus the worker-mode switches the driver uses for its subprocesses."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--impl-variant",
        choices=sorted(VARIANTS),
        help="worker mode: run this one variant here and print JSON lines",
    )
    p.add_argument(
        "--impl",
        choices=("ours", "0.3.0", "floor"),
        help="worker mode shorthand: ours, 0.3.0 (fixed window) or floor",
    )
    p.add_argument(
        "--priority-costs",
        action="store_true",
        help="with --impl ours: pass priority_costs=durations",
    )
    p.add_argument("--variants", default=",".join(VARIANTS), help="driver: comma list")
    p.add_argument("--reps", type=int, default=3, help="runs per (cap, seed)")
    p.add_argument("--ours-python", default=sys.executable, help="interpreter for ours, floor")
    p.add_argument("--out", type=Path, help="driver: also write the markdown here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Worker mode if a variant is named, else run all variants and print the tables."""
    args = parse_args(argv)
    if args.impl:
        shorthand = {
            "ours": "ours-costs" if args.priority_costs else "ours",
            "0.3.0": "0.3.0-fixed",
            "floor": "floor",
        }
        args.impl_variant = shorthand[args.impl]
    if args.impl_variant:
        return worker(args.impl_variant, args.reps)
    variants = [v for v in args.variants.split(",") if v]
    rows: list[dict[str, Any]] = []
    for v in variants:
        print(f"running {v} ...", file=sys.stderr, flush=True)
        rows += run_variant(v, args.reps, args.ours_python)
    text = table(rows, variants, args.reps) + versions(rows)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    bad = [r for r in rows if "error" in r or r.get("ok") is False]
    for r in bad:
        print(f"problem: {r}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
