"""Draw the plots of the docs' benchmark page from the tables of benchmarks/README.md.

    python benchmarks/plots.py            # writes docs/img/benchmarks/*.svg

Needs matplotlib, which is not a dependency of the project: run it from a
throwaway environment (``python -m venv /tmp/plots && /tmp/plots/bin/pip
install matplotlib``). The figures are read from the README's tables, so
the plots follow the README when it is updated and this script is run again;
the SVGs are committed, and the docs build does not need matplotlib.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import re
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "benchmarks" / "README.md"
OUT = ROOT / "docs" / "img" / "benchmarks"

Row = dict[str, str]

COLOURS = {"ours": "#1f77b4", "0.3.0": "#d62728", "floor": "#7f7f7f"}


def table(text: str, header_starts: str) -> list[Row]:
    """The rows of the first markdown table whose header row starts with ``header_starts``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header_starts):
            names = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows: list[Row] = []
            for body in lines[i + 2 :]:
                if not body.startswith("|"):
                    break
                cells = [cell.strip() for cell in body.strip().strip("|").split("|")]
                rows.append(dict(zip(names, cells, strict=True)))
            return rows
    raise LookupError(f"no table starting with {header_starts!r} in {README}")


def number(cell: str) -> float:
    """``'**1.069**'``, ``'2,816'``, ``'99.9%'``, ``'1.00x'`` -> a float."""
    match = re.search(r"-?[\d,]+(?:\.\d+)?", cell)
    if match is None:
        raise ValueError(f"no number in {cell!r}")
    return float(match.group().replace(",", ""))


def fill_down(rows: list[Row], column: str) -> list[Row]:
    """Tables leave a repeated first cell empty; give every row its value."""
    last = ""
    for row in rows:
        last = row[column] = row[column] or last
    return rows


def grouped_bars(
    plt: Any,
    groups: list[str],
    series: dict[str, list[float]],
    *,
    title: str,
    ylabel: str,
    path: pathlib.Path,
    log: bool = False,
    labels: bool = True,
) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name, color=COLOURS.get(name))
        if labels:
            ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("svg")
    matplotlib.rcParams["svg.hashsalt"] = "wave-executor"  # stable ids: diffs show real changes
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text
    plt = importlib.import_module("matplotlib.pyplot")
    text = README.read_text()
    args.out.mkdir(parents=True, exist_ok=True)
    impls = ["ours", "0.3.0", "floor"]

    # What a user pays: execute + read every status, µs/task, by cap.
    rows = fill_down(table(text, "| cap | impl | execute |"), "cap")
    caps = sorted({row["cap"] for row in rows}, key=int)
    both = {(row["cap"], row["impl"]): number(row["both"]) for row in rows}
    grouped_bars(
        plt,
        [f"cap {cap}" for cap in caps],
        {impl: [both[cap, impl] for cap in caps] for impl in impls},
        title="What a user pays: execute() + read every status, layered 10^5 no-op tasks",
        ylabel="µs per task (log scale)",
        path=args.out / "user-pays.svg",
        log=True,
    )

    # Peak memory, bytes per task.
    rows = table(text, "| shape | n | ours B/task |")
    groups = [f"{row['shape']} {row['n']}" for row in rows]
    grouped_bars(
        plt,
        groups,
        {
            "ours": [number(row["ours B/task"]) for row in rows],
            "0.3.0": [number(row["0.3.0 B/task"]) for row in rows],
            "floor": [number(row["floor B/task"]) for row in rows],
        },
        title="Peak memory per task (VmHWM growth during execute)",
        ylabel="bytes per task",
        path=args.out / "memory.svg",
    )

    # Makespan over its lower bound.
    rows = table(text, "| variant | cap 4 | cap 16 |")
    names = [row["variant"].replace("`", "") for row in rows]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for k, cap in enumerate(("cap 4", "cap 16")):
        ys = [i + (k - 0.5) * 0.38 for i in range(len(rows))]
        values = [number(row[cap]) for row in rows]
        bars = ax.barh(ys, values, 0.38, label=cap, color=("#1f77b4", "#aec7e8")[k])
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7, padding=2)
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlim(0.9, max(number(row[c]) for row in rows for c in ("cap 4", "cap 16")) * 1.12)
    ax.set_xlabel("makespan / lower bound (1.0 = no schedule can do better)")
    ax.set_title("Makespan, 200-task random DAGs, lognormal 20 ms bodies", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(args.out / "makespan.svg", format="svg", metadata={"Date": None})
    plt.close(fig)

    # Goodput against a service of capacity 20: share of fixed-20, refusals per 100.
    rows = fill_down(table(text, "| service | variant | goodput"), "service")
    services = list(dict.fromkeys(row["service"] for row in rows))
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    short = {s: s.split(" (")[0].split(" 20")[0].replace("`", "") for s in services}
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    for axis, column, label, log in (
        (left, "share of fixed-20", "goodput, % of fixed-20", False),
        (right, "refused per 100 successes", "refused calls per 100 successes (log)", True),
    ):
        width = 0.8 / len(services)
        for k, service in enumerate(services):
            values = [
                number(row[column])
                for variant in variants
                for row in rows
                if row["service"] == service and row["variant"] == variant
            ]
            xs = [v + (k - (len(services) - 1) / 2) * width for v in range(len(variants))]
            heights = [max(v, 0.01) for v in values]  # a log axis has no 0
            bars = axis.bar(xs, heights, width, label=short[service])
            axis.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=6, padding=1)
        axis.set_xticks(range(len(variants)), variants, fontsize=8)
        axis.set_title(label, fontsize=9)
        if log:
            axis.set_yscale("log")
        axis.margins(y=0.15)
        axis.spines[["top", "right"]].set_visible(False)
    left.legend(fontsize=7, frameon=False, loc="lower left")
    fig.suptitle("2,000 calls to a service that holds 20 and refuses the rest", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out / "goodput.svg", format="svg", metadata={"Date": None})
    plt.close(fig)

    for path in sorted(args.out.glob("*.svg")):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
