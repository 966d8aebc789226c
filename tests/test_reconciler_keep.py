"""``WaveReconciler.update(keep_unspecified=...)``: a partial update resets, or keeps,
what it does not pass (dependencies and restart settings)."""

from __future__ import annotations

import asyncio
import math
import warnings
from typing import Any

import pytest

from wave_executor import WaveReconciler
from wave_executor._core.reconcile import ReconcileTaskSpec
from wave_executor.reconciler import InMemoryCheckpointStore, RestartPolicy
from wave_executor.testing import run_virtual

FIRST: dict[str, Any] = {
    "tasks": {"a": {}, "b": {}, "c": {}},
    "dependencies": {"b": ["a"], "c": ["a"]},
    "policies": {"b": "always"},
    "max_restart_attempts": {"b": 1},
    "restart_backoff_base": 0.5,
    "timeouts": {"b": 30},
}


async def forever(task_id: Any, spec: Any) -> None:
    await asyncio.sleep(math.inf)


def desired_after(
    second: dict[str, Any],
) -> tuple[dict[Any, ReconcileTaskSpec], dict[Any, set[Any]]]:
    """Two updates, then what the checkpoint store holds: each task's spec and deps."""

    async def main() -> tuple[dict[Any, ReconcileTaskSpec], dict[Any, set[Any]]]:
        store = InMemoryCheckpointStore()
        async with WaveReconciler(forever, checkpoint_store=store, reconciler_id="r") as r:
            await r.update(**FIRST)
            await asyncio.sleep(1)
            await r.update(**second)
            await asyncio.sleep(1)
        specs, _, deps = await store.load_reconciler_state("r")
        return specs, deps

    return run_virtual(main())[0]


def settings(spec: ReconcileTaskSpec) -> tuple[Any, ...]:
    return (
        spec.restart_policy, spec.max_restart_attempts, spec.restart_backoff_base, spec.timeout_s
    )  # fmt: skip


DEFAULTS = (RestartPolicy.ON_FAILURE, 5, 3.0, None)


def test_by_default_a_partial_update_resets_dependencies_and_settings_as_in_0_3_0() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0.3.0 code run with warnings as errors
        specs, deps = desired_after({"tasks": {"a": {"v": 2}, "b": {}, "c": {}}})
    assert {t: settings(s) for t, s in specs.items()} == dict.fromkeys("abc", DEFAULTS)
    assert all(not up for up in deps.values())


def test_keep_unspecified_keeps_what_the_call_does_not_pass() -> None:
    specs, deps = desired_after(
        {
            "tasks": {"a": {"v": 2}, "b": {}, "c": {}, "d": {}},
            "dependencies": {"c": []},  # c's dependency is cleared, b's kept
            "policies": {"d": "no"},
            "keep_unspecified": True,
        }
    )
    assert settings(specs["b"]) == (RestartPolicy.ALWAYS, 1, 0.5, 30.0)
    assert settings(specs["a"]) == settings(specs["c"]) == (RestartPolicy.ON_FAILURE, 5, 0.5, None)
    assert settings(specs["d"]) == (RestartPolicy.NO, 5, 3.0, None)  # new: the defaults
    assert specs["a"].spec == {"v": 2}
    assert deps["b"] == {"a"} and not deps["c"] and not deps["d"]


def test_keep_unspecified_with_a_value_for_all_replaces_it_for_all() -> None:
    specs, _ = desired_after(
        {"tasks": FIRST["tasks"], "max_restart_attempts": 7, "keep_unspecified": True}
    )
    assert {t: s.max_restart_attempts for t, s in specs.items()} == dict.fromkeys("abc", 7)
    assert specs["b"].restart_policy is RestartPolicy.ALWAYS


def test_a_kept_dependency_on_a_removed_task_is_refused() -> None:
    async def main() -> None:
        async with WaveReconciler(forever) as r:
            await r.update(**FIRST)
            with pytest.raises(ValueError, match=r"task 'b' keeps its dependencies \['a'\]"):
                await r.update({"b": {}, "c": {}}, {"c": []}, keep_unspecified=True)
            assert r.get_status().desired_task_count == 3  # nothing changed
            await r.update({"b": {}}, {"b": []}, keep_unspecified=True)
            assert r.get_status().desired_task_count == 1

    run_virtual(main())
