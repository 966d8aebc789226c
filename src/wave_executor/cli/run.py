"""``wave-executor run``: a pipeline file through ``DAGExecutor`` with a durable store."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from pathlib import Path
from typing import Any

from wave_executor.cli.commands import Children, TaskRunner
from wave_executor.cli.pipeline import Pipeline
from wave_executor.cli.progress import Tally, make_progress

__all__ = ["EXIT_FAILED", "EXIT_OK", "run_pipeline", "store_dir"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: A run stopped by a signal exits with 128 + the signal's number, as shells do.
EXIT_SIGNAL_BASE = 128
NO_LIMIT_S = 10.0**9


def store_dir(pipeline_path: Path) -> Path:
    """Where runs of a pipeline are recorded: ``.wave/`` next to its file."""
    return pipeline_path.resolve().parent / ".wave"


def new_run_id(pipeline: Pipeline) -> str:
    return f"{pipeline.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def write_run_info(folder: Path, pipeline: Pipeline) -> None:
    """What ``show``, ``report`` and ``graph`` need later: the graph and each task's command."""
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "pipeline": str(pipeline.path),
        "jobs": pipeline.jobs,
        "deps": pipeline.dependencies(),
        "tasks": {
            name: {
                "kind": "call" if t.call else "cmd",
                "what": t.call or (t.cmd if isinstance(t.cmd, str) else " ".join(t.cmd or ())),
                "group": t.group,
            }
            for name, t in pipeline.tasks.items()
        },
    }
    (folder / "pipeline.json").write_text(json.dumps(info, indent=2), encoding="utf-8")


async def _last_run_id(store: Any, pipeline: Pipeline) -> str | None:
    for info in await store.list_runs():
        if (
            info.run_id.startswith(pipeline.name + "-")
            and (store_dir(pipeline.path) / "runs" / info.run_id / "pipeline.json").is_file()
        ):
            return str(info.run_id)
    return None


async def run_pipeline(
    pipeline: Pipeline,
    *,
    jobs: int | None = None,
    resume: bool = False,
    plain: bool = False,
    learned: bool = True,
    kill_after: float | None = None,
) -> int:
    """Run ``pipeline``; return the process's exit status."""
    from wave_executor import DAGExecutor, RetryPolicy, WaveConfig
    from wave_executor.store import SQLiteStore

    folder = store_dir(pipeline.path)
    folder.mkdir(parents=True, exist_ok=True)
    children = Children() if kill_after is None else Children(kill_after)
    caught: list[int] = []
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        if not caught:
            children.signal = signal.Signals(sig)
            task.cancel()
        caught.append(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with SQLiteStore(folder / "runs.db") as store:
            run_id = await _last_run_id(store, pipeline) if resume else None
            if resume and run_id is None:
                print(f"no earlier run of {pipeline.path.name} to resume: starting a new one")
            run_id = run_id or new_run_id(pipeline)
            run_folder = folder / "runs" / run_id
            write_run_info(run_folder, pipeline)
            runner = TaskRunner(pipeline, run_folder / "logs", run_id, children)
            cap = jobs or pipeline.jobs
            config = WaveConfig(
                max_parallel_per_wave=cap,
                max_retries=0,
                adaptive_batch_window=False,
                circuit_breaker_enabled=False,
                total_execution_timeout=NO_LIMIT_S,
                default_task_timeout=NO_LIMIT_S,
                specialist_budgets=dict(pipeline.groups),
            )
            executor = DAGExecutor(config)
            tally = Tally(len(pipeline.tasks), cap)
            progress = make_progress(tally, plain=plain)
            executor.on_event(progress.event)
            policies = {
                name: RetryPolicy(
                    max_retries=t.retries, base_delay=t.retry_delay, retry_timeouts=True
                )
                for name, t in pipeline.tasks.items()
            }
            groups = {name: t.group for name, t in pipeline.tasks.items() if t.group}
            verb = "resuming" if resume and tally is not None else "run"
            progress.message(f"{verb} {run_id}: {len(pipeline.tasks)} tasks, {cap} at a time")
            result = None
            with progress:
                try:
                    result = await executor.execute(
                        pipeline.specs(),
                        pipeline.dependencies(),
                        runner,
                        inject_dep_outputs=True,
                        retry_policies=policies,
                        timeouts={name: t.timeout for name, t in pipeline.tasks.items()},
                        groups=groups or None,
                        priority_costs=None if learned else {},
                        trigger_rules=pipeline.trigger_rules() or None,
                        store=store,
                        run_id=run_id,
                    )
                except asyncio.CancelledError:
                    if not caught:
                        raise
                    task.uncancel()
                finally:
                    await children.wait()
            if result is None:
                name = signal.Signals(caught[0]).name
                progress.message(
                    f"interrupted by {name}: {run_id} recorded as interrupted; "
                    f"`wave-executor run {pipeline.path.name} --resume` reruns what did not finish"
                )
                return EXIT_SIGNAL_BASE + caught[0]
            progress.message(tally.summary())
            # A task whose trigger rule was not met (an idle alert step) did not fail.
            failed = [
                (name, r)
                for name, r in result.task_results.items()
                if r.status != "success" and r.skip_reason != "rule_not_met"
            ]
            for name, r in failed:
                if r.status == "skipped":
                    continue
                progress.message(f"\n{name} {r.status}: {r.error}")
                progress.message(f"  log: {runner.log_path(str(name))}")
            if failed:
                progress.message(
                    f"\n{len(failed)} of {len(pipeline.tasks)} tasks did not succeed "
                    f"(run {run_id}); fix and run with --resume"
                )
                return EXIT_FAILED
            progress.message(f"all {len(pipeline.tasks)} tasks succeeded (run {run_id})")
            return EXIT_OK
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
