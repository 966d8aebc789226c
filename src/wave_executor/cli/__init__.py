"""The ``wave-executor`` command (``pip install "wave-executor[cli]"``).

Nothing here is imported by ``import wave_executor``; rich is imported only
by the commands that draw on a terminal. The argument parser is the standard
library's ``argparse``: subcommands, help and errors are all it needs to do
here, and it adds no dependency to the extra.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wave-executor",
        description="Run graphs of tasks from TOML pipeline files, inspect and report runs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a pipeline file")
    run.add_argument("file", type=Path, help="the pipeline's TOML file")
    run.add_argument("-j", "--jobs", type=int, help="tasks at once (default: [pipeline] jobs)")
    run.add_argument("--resume", action="store_true", help="continue the last run of this file")
    run.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    run.add_argument(
        "--no-learned-priorities",
        action="store_true",
        help="do not order tasks by the durations recorded in earlier runs",
    )

    check = sub.add_parser("check", help="check a pipeline file without running it")
    check.add_argument("file", type=Path)

    store_help = "the folder runs are recorded in (default: ./.wave)"
    runs = sub.add_parser("runs", help="list recorded runs")
    runs.add_argument("--store", type=Path, default=Path(".wave"), help=store_help)
    runs.add_argument("-n", "--limit", type=int, default=None)

    show = sub.add_parser("show", help="one run's tasks, or one task's attempts and log")
    show.add_argument("run")
    show.add_argument("task", nargs="?")
    show.add_argument("--store", type=Path, default=Path(".wave"), help=store_help)

    graph = sub.add_parser("graph", help="print a pipeline's graph as mermaid or dot")
    graph.add_argument("file", type=Path)
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")

    report = sub.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument("run")
    report.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    report.add_argument("--store", type=Path, default=Path(".wave"), help=store_help)

    demo = sub.add_parser("demo", help="the A/B/C/D/E example: levels against dependencies")
    demo.add_argument("-o", "--output", type=Path, default=Path("wave-demo.html"))
    demo.add_argument(
        "--unit", type=float, default=0.0, help="seconds per time unit (default: virtual clock)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    from wave_executor.cli.pipeline import PipelineError, load_pipeline

    try:
        if args.command == "run":
            from wave_executor.cli.run import EXIT_USAGE, run_pipeline

            if args.jobs is not None and args.jobs < 1:
                print("wave-executor: -j must be at least 1", file=sys.stderr)
                return EXIT_USAGE
            pipeline = load_pipeline(args.file)
            return asyncio.run(
                run_pipeline(
                    pipeline,
                    jobs=args.jobs,
                    resume=args.resume,
                    plain=args.plain,
                    learned=not args.no_learned_priorities,
                )
            )
        if args.command == "check":
            pipeline = load_pipeline(args.file)
            print(f"{args.file}: {len(pipeline.tasks)} tasks, ok")
            return 0
        if args.command == "runs":
            from wave_executor.cli.history import list_runs

            return asyncio.run(list_runs(args.store, args.limit))
        if args.command == "show":
            from wave_executor.cli.history import show_run

            return asyncio.run(show_run(args.store, args.run, args.task))
        if args.command == "graph":
            from wave_executor.report.graph import to_dot, to_mermaid

            pipeline = load_pipeline(args.file, resolve_calls=False)
            deps = {name: list(t.deps) for name, t in pipeline.tasks.items()}
            print(to_mermaid(deps) if args.format == "mermaid" else to_dot(deps), end="")
            return 0
        if args.command == "report":
            from wave_executor.report.from_store import write_run_report

            return write_run_report(args.store, args.run, args.output)
        if args.command == "demo":
            from wave_executor.cli.demo import run_demo

            return run_demo(args.output, args.unit)
    except PipelineError as exc:
        print(f"wave-executor: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(args.command)  # pragma: no cover
