"""What a user pays per task: execute, read every status, and both, at two caps.

    python benchmarks/what_a_user_pays.py                  # layered 10^5, caps 10 and 1000, 3 runs
    python benchmarks/what_a_user_pays.py --reps 5 --n 100000 --caps 10,1000

Every measurement is ``overhead.py --metric time`` in a fresh process (graph built and
``gc.collect()`` before the clock starts): the wall time of ``execute(...)``, then of
``{t: r.status for t, r in result.task_results.items()}``, then both. Implementations run
interleaved within each repetition (floor, ours, 0.3.0), so drifts of the shared machine hit
them alike. Prints one markdown table of medians with the ratios of "both" to the floor and
to 0.3.0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from fresh import V030_PYTHON, run_fresh

HERE = Path(__file__).resolve().parent
OVERHEAD = HERE / "overhead.py"
PARTS = ("us_per_task", "read_us_per_task", "both_us_per_task")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--shape", default="layered")
    p.add_argument("--caps", default="10,1000")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--impls", default="floor,ours,0.3.0")
    p.add_argument("--ours-python", default=sys.executable)
    args = p.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    impls = args.impls.split(",")
    if "0.3.0" in impls and not V030_PYTHON.exists():
        print("(no benchmarks/.venv-0.3.0: run benchmarks/setup_030_venv.sh for 0.3.0)")
        impls.remove("0.3.0")
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rep in range(args.reps):
        for cap in caps:
            for impl in impls:
                python = V030_PYTHON if impl == "0.3.0" else args.ours_python
                out = run_fresh(
                    python, OVERHEAD, "--impl", impl, "--shape", args.shape,
                    "--n", str(args.n), "--cap", str(cap), "--metric", "time",
                )  # fmt: skip
                runs.setdefault((impl, cap), []).append(out)
                print(
                    f"rep {rep + 1} cap {cap} {impl}: "
                    + " / ".join(f"{out[k]:.2f}" for k in PARTS),
                    file=sys.stderr,
                    flush=True,
                )
    med = {key: {k: statistics.median(r[k] for r in rs) for k in PARTS} for key, rs in runs.items()}
    names = {"floor": "floor", "ours": "ours", "0.3.0": "0.3.0"}
    print(f"{args.shape} {args.n:,} no-op tasks, µs/task, medians of {args.reps} processes")
    print()
    print("| cap | impl | execute | read every status | both | both / floor | both / 0.3.0 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for cap in caps:
        floor = med.get(("floor", cap))
        v030 = med.get(("0.3.0", cap))
        for impl in impls:
            m = med[(impl, cap)]
            both = m["both_us_per_task"]
            to_floor = f"{both / floor['both_us_per_task']:.2f}x" if floor else "-"
            to_v030 = f"{both / v030['both_us_per_task']:.3f}x" if v030 else "-"
            print(
                f"| {cap} | {names[impl]} | {m['us_per_task']:.2f} | "
                f"{m['read_us_per_task']:.2f} | {both:.2f} | {to_floor} | {to_v030} |"
            )


if __name__ == "__main__":
    main()
