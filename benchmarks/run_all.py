"""Run the overhead matrix side by side and print a markdown table of medians.

    .venv/bin/python benchmarks/run_all.py                 # full matrix (see README for time)
    .venv/bin/python benchmarks/run_all.py --quick         # sizes 1e3..1e5, one run each

Every cell is ``overhead.py`` in a fresh subprocess: ``ours`` and ``floor`` under the
interpreter running this script (or ``--ours-python``), ``0.3.0`` under
``benchmarks/.venv-0.3.0/bin/python``. Within a repetition the implementations run one after
another on the same graph, so slow drifts of a shared, noisy machine hit all of them alike;
the table shows the median over repetitions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphs import SHAPES
from impls import IMPLS, interpreter_for

HERE = Path(__file__).resolve().parent
OVERHEAD = HERE / "overhead.py"
METRICS = ("time", "memory")
VALUE_KEY = {"time": "us_per_task", "memory": "bytes_per_task"}
FULL_SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 100_000)


@dataclass
class Cell:
    """All runs of one (impl, shape, n, metric): values, or why there are none."""

    values: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str = ""
    versions: set[str] = field(default_factory=set)

    def median(self) -> float | None:
        """Median of the successful runs; ``None`` if there were none."""
        return statistics.median(self.values) if self.values else None


Key = tuple[str, str, int, str]  # impl, shape, n, metric


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line; ``--quick`` only changes the defaults of ``--sizes`` and ``--reps``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impls", default=",".join(IMPLS), help="comma list of ours,0.3.0,floor")
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma list of graph shapes")
    p.add_argument("--sizes", default=None, help="comma list of n (default 1e3..1e6)")
    p.add_argument("--metrics", default=",".join(METRICS), help="time,memory")
    p.add_argument("--reps", type=int, default=None, help="runs per cell (default 3)")
    p.add_argument("--cap", type=int, default=10, help="max_parallel_per_wave")
    p.add_argument(
        "--v030-max-n",
        type=float,
        default=100_000,
        help="skip 0.3.0 above this n (its 1e6 runs take ~90 s and ~3 GB each)",
    )
    p.add_argument("--quick", action="store_true", help="sizes 1e3..1e5 and 1 run per cell")
    p.add_argument("--ours-python", default=sys.executable, help="interpreter for ours, floor")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    p.add_argument("--out", type=Path, help="also write the markdown report here")
    p.add_argument("--raw", type=Path, help="append every raw JSON result line here")
    args = p.parse_args(argv)
    if args.sizes:
        args.sizes = [int(float(s)) for s in args.sizes.split(",")]
    else:
        args.sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    args.impls = [i for i in args.impls.split(",") if i]
    args.shapes = [s for s in args.shapes.split(",") if s]
    args.metrics = [m for m in args.metrics.split(",") if m]
    return args


def probe_ours(python: str) -> str:
    """Empty string if ``python`` can import the repo's ``wave_executor``, else the error."""
    code = "import wave_executor as w; print(getattr(w, '__version__', '?'), w.__file__)"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=HERE)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {proc.returncode}"
    log(f"ours: {proc.stdout.strip()} ({python})")
    return ""


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout is only the report."""
    print(msg, file=sys.stderr, flush=True)


def run_one(
    python: str,
    impl: str,
    shape: str,
    n: int,
    metric: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One ``overhead.py`` subprocess; its JSON, or ``{"error": ...}``."""
    cmd = [
        python,
        str(OVERHEAD),
        "--impl",
        impl,
        "--shape",
        shape,
        "--n",
        str(n),
        "--cap",
        str(args.cap),
        "--metric",
        metric,
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} if impl == "0.3.0" else None
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout, env=env, cwd=HERE
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    result: dict[str, Any] = {}
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = {}
    if proc.returncode != 0 or not result:
        err = proc.stderr.strip().splitlines()
        detail = err[-1] if err else f"exit {proc.returncode}"
        if result and not result.get("ok", True):
            detail = f"only {result.get('successful')}/{n} tasks succeeded"
        result = {**result, "error": detail}
    return result


def skip_reason(impl: str, n: int, args: argparse.Namespace, ours_error: str) -> str:
    """Why a cell is not run (shown in the table instead of a number), or ``""``."""
    if impl == "0.3.0" and n > args.v030_max_n:
        return "not run"
    if impl in ("ours",) and ours_error:
        return "not importable"
    return ""


def run_matrix(args: argparse.Namespace) -> dict[Key, Cell]:
    """Run every cell ``args.reps`` times, interleaving implementations within a rep."""
    ours_error = probe_ours(args.ours_python) if "ours" in args.impls else ""
    if ours_error:
        log(f"ours is not importable with {args.ours_python}: {ours_error}")
    cells: dict[Key, Cell] = {}
    for shape in args.shapes:
        for n in args.sizes:
            for metric in args.metrics:
                for rep in range(args.reps):
                    for impl in args.impls:
                        cell = cells.setdefault((impl, shape, n, metric), Cell())
                        reason = skip_reason(impl, n, args, ours_error)
                        if reason:
                            cell.skipped = reason
                            continue
                        run_cell(cell, impl, shape, n, metric, rep, args)
    return cells


def run_cell(
    cell: Cell, impl: str, shape: str, n: int, metric: str, rep: int, args: argparse.Namespace
) -> None:
    """Run one repetition of a cell, record it, log it, and append the raw line if asked."""
    python = interpreter_for(impl, args.ours_python)
    t0 = time.perf_counter()
    result = run_one(python, impl, shape, n, metric, args)
    wall = time.perf_counter() - t0
    if "source_hash" in result:
        cell.versions.add(f"{result['version']} (source {result['source_hash']})")
    if result.get("config_dropped"):
        cell.errors.append(f"WaveConfig has no {', '.join(result['config_dropped'])}")
    if "error" in result:
        cell.errors.append(result["error"])
        log(f"{impl:5} {shape:12} n={n:<8} {metric:6} rep{rep}: ERROR {result['error']}")
    else:
        value = float(result[VALUE_KEY[metric]])
        cell.values.append(value)
        unit = "us/task" if metric == "time" else "B/task"
        log(
            f"{impl:5} {shape:12} n={n:<8} {metric:6} rep{rep}: {value:10.2f} {unit}"
            f"  ({wall:.1f} s)"
        )
    if args.raw:
        with args.raw.open("a") as f:
            f.write(json.dumps({**result, "rep": rep, "wall_s": wall}) + "\n")


def fmt(cell: Cell | None, digits: int) -> str:
    """Median of a cell, or the reason it has none; ``(!)`` if some of its runs failed."""
    if cell is None:
        return "-"
    med = cell.median()
    if med is None:
        return cell.skipped or ("FAILED" if cell.errors else "-")
    text = f"{med:,.{digits}f}"
    return text + (" (!)" if cell.errors else "")


def ratio(num: Cell | None, den: Cell | None) -> str:
    """Ratio of two medians, ``-`` when either is missing."""
    a = num.median() if num else None
    b = den.median() if den else None
    return f"{a / b:.1f}x" if a and b else "-"


def table(cells: dict[Key, Cell], args: argparse.Namespace) -> str:
    """Markdown: one row per (shape, n); µs/task, speedups, bytes/task per implementation."""
    impls = args.impls
    head = ["shape", "n"]
    head += [f"{i} µs/task" for i in impls]
    if "ours" in impls and "0.3.0" in impls:
        head.append("speedup vs 0.3.0")
    if "ours" in impls and "floor" in impls:
        head.append("ours / floor")
    head += [f"{i} B/task" for i in impls]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shape in args.shapes:
        for n in args.sizes:

            def get(impl: str, metric: str) -> Cell | None:
                return cells.get((impl, shape, n, metric))  # noqa: B023

            row = [shape, f"{n:,}"]
            row += [fmt(get(i, "time"), 1) for i in impls]
            if "ours" in impls and "0.3.0" in impls:
                row.append(ratio(get("0.3.0", "time"), get("ours", "time")))
            if "ours" in impls and "floor" in impls:
                row.append(ratio(get("ours", "time"), get("floor", "time")))
            row += [fmt(get(i, "memory"), 0) for i in impls]
            rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def failures(cells: dict[Key, Cell]) -> list[str]:
    """One line per cell with failed runs, listing the distinct errors."""
    return [
        f"- {impl} {shape} n={n} {metric}: {'; '.join(sorted(set(c.errors)))}"
        for (impl, shape, n, metric), c in cells.items()
        if c.errors
    ]


def machine_line(args: argparse.Namespace) -> str:
    """Describe what the numbers were measured on: without it no table can be compared."""
    return (
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({cpu_model()}), "
        f"cap {args.cap}, median of {args.reps} run(s) per cell, "
        f"{time.strftime('%Y-%m-%d')}"
    )


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions_line(cells: dict[Key, Cell], impls: Sequence[str]) -> list[str]:
    """Library versions measured, and a warning if one library changed during the run."""
    lines = []
    for impl in impls:
        seen = sorted(set().union(*(c.versions for k, c in cells.items() if k[0] == impl)))
        if impl != "floor" and seen:
            lines.append(f"{impl}: {', '.join(seen)}")
        if len(seen) > 1:
            lines.append(f"WARNING: {impl} changed during the run; rerun before quoting it.")
    return lines


def targets(cells: dict[Key, Cell]) -> list[str]:
    """Check the issue's acceptance targets against whichever cells this run has."""

    def med(impl: str, shape: str, n: int, metric: str) -> float | None:
        cell = cells.get((impl, shape, n, metric))
        return cell.median() if cell else None

    out = []
    ours, v030, floor = (med(i, "layered", 100_000, "time") for i in ("ours", "0.3.0", "floor"))
    if ours and v030:
        verdict = "met" if v030 / ours >= 10 else "NOT met"
        out.append(f"- layered 1e5: ours {v030 / ours:.1f}x faster than 0.3.0 (≥10x): {verdict}")
    if ours and floor:
        verdict = "met" if ours / floor <= 3 else "NOT met"
        out.append(f"- layered 1e5: ours {ours / floor:.1f}x the floor (≤3x): {verdict}")
    mem = med("ours", "layered", 1_000_000, "memory")
    if mem:
        verdict = "met" if mem < 1024 else "NOT met"
        out.append(f"- layered 1e6: ours peak {mem:,.0f} B/task (<1 KB): {verdict}")
    return ["", "Targets:", *out] if out else []


def report(cells: dict[Key, Cell], args: argparse.Namespace, elapsed: float) -> str:
    """Header lines, table and failures, as markdown."""
    head = [machine_line(args) + f"; whole run {elapsed / 60:.1f} min."]
    head += versions_line(cells, args.impls)
    lines = ["  \n".join(head), "", table(cells, args)]
    lines += targets(cells)
    errs = failures(cells)
    if errs:
        lines += ["", "Failures ((!) marks a median over the runs that did succeed):", *errs]
    return "\n".join(lines) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    """Run the matrix; exit 1 if any run failed (the table is printed all the same)."""
    args = parse_args(list(argv) if argv is not None else None)
    unknown = set(args.shapes) - set(SHAPES) or set(args.impls) - set(IMPLS)
    if unknown:
        log(f"unknown: {', '.join(sorted(unknown))}")
        return 2
    t0 = time.perf_counter()
    cells = run_matrix(args)
    text = report(cells, args, time.perf_counter() - t0)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 1 if failures(cells) else 0


if __name__ == "__main__":
    sys.exit(main())
