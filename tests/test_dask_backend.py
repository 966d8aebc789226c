"""DaskBackend against a real LocalCluster: 2 worker processes on loopback.

The cluster is started once for the module (with Dask's own retries of a
task whose worker died turned off, so a lost worker reaches our retry
policy at once) and stopped at its end. Skipped only when ``distributed``
is not installed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from tests import backend_bodies as bodies  # noqa: E402
from wave_executor import DAGExecutor, EventType, RetryPolicy, TaskStatus, WaveConfig  # noqa: E402
from wave_executor.backends import InlineBackend  # noqa: E402
from wave_executor.backends.dask import (  # noqa: E402
    CancelledOnClusterError,
    ClusterOutput,
    DaskBackend,
    WorkerLostError,
)

NO_RETRY = WaveConfig(retry_policy=RetryPolicy(max_retries=0))


@pytest.fixture(scope="module")
def scheduler_address() -> Iterator[str]:
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port: never collide with another cluster
            silence_logs=logging.CRITICAL,
        ) as cluster,
    ):
        yield cluster.scheduler_address


@pytest.fixture
async def client(scheduler_address: str) -> AsyncIterator[Any]:
    async with distributed.Client(scheduler_address, asynchronous=True) as client:
        await client.wait_for_workers(2, timeout=60)  # a killed worker's nanny restarts it
        yield client


async def _scheduler_keys(client: Any, prefix: str) -> list[str]:
    def keys(dask_scheduler: Any) -> list[str]:
        return [str(k) for k in dask_scheduler.tasks]

    return [k for k in await client.run_on_scheduler(keys) if k.startswith(prefix)]


async def test_bodies_run_on_the_cluster_with_their_dependencies_outputs(client: Any) -> None:
    backend = DaskBackend(client)
    result = await DAGExecutor(NO_RETRY).execute(
        {"a": {"x": 3}, "b": {"x": 4}, "c": {"x": 1}},
        {"c": ["a", "b"]},
        bodies.add_deps,
        inject_dep_outputs=True,
        backends={"c": backend},
        backend=backend,
    )
    assert result.outputs() == {"a": 3, "b": 4, "c": 8}
    where = await backend.call(bodies.pid_and_deps, "p", {})
    assert where[0] != os.getpid()


async def test_a_body_error_keeps_its_type_and_its_remote_traceback(client: Any) -> None:
    backend = DaskBackend(client)
    with pytest.raises(bodies.BodyError, match="bad input for t") as caught:
        await backend.call(bodies.raise_body_error, "t", {})
    frames = "".join(traceback.format_tb(caught.value.__traceback__))
    assert "raise_body_error" in frames and "backend_bodies.py" in frames
    assert any("raised on the Dask cluster (key 'wave-t-" in n for n in caught.value.__notes__)
    result = await DAGExecutor(NO_RETRY).execute(
        {"t": {}}, {}, bodies.raise_body_error, backend=backend
    )
    assert result.task_results["t"].status == TaskStatus.FAILED
    assert result.task_results["t"].error == "bad input for t"


async def test_a_cluster_task_past_its_timeout_is_a_timeout_and_is_cancelled_there(
    client: Any,
) -> None:
    backend = DaskBackend(client, key_prefix="slow")
    cfg = WaveConfig(default_task_timeout=0.5, retry_policy=RetryPolicy(max_retries=0))
    began = time.monotonic()
    result = await DAGExecutor(cfg).execute(
        {"t": {"seconds": 3}}, {}, bodies.sleep_for, backend=backend
    )
    assert time.monotonic() - began < 2.8  # its deadline, not the body's three seconds
    assert result.task_results["t"].status == TaskStatus.TIMEOUT
    await backend.close()  # waits for the cancellations it sent
    for _ in range(100):
        if not await _scheduler_keys(client, "slow-"):
            break
        await asyncio.sleep(0.1)
    assert await _scheduler_keys(client, "slow-") == []


async def test_a_cancelled_run_cancels_its_cluster_tasks(client: Any) -> None:
    backend = DaskBackend(client, key_prefix="stopped")
    run = asyncio.ensure_future(
        DAGExecutor(NO_RETRY).execute(
            {"a": {"seconds": 3}, "b": {"seconds": 3}}, {}, bodies.sleep_for, backend=backend
        )
    )
    for _ in range(200):
        if len(await _scheduler_keys(client, "stopped-")) == 2:
            break
        await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await backend.close()
    for _ in range(100):
        if not await _scheduler_keys(client, "stopped-"):
            break
        await asyncio.sleep(0.1)
    assert await _scheduler_keys(client, "stopped-") == []


async def test_a_task_cancelled_on_the_cluster_by_someone_else_fails_and_says_so(
    client: Any,
) -> None:
    backend = DaskBackend(client, key_prefix="foreign")
    run = asyncio.ensure_future(
        DAGExecutor(NO_RETRY).execute({"t": {"seconds": 3}}, {}, bodies.sleep_for, backend=backend)
    )
    for _ in range(200):
        if keys := await _scheduler_keys(client, "foreign-"):
            break
        await asyncio.sleep(0.05)
    await client.cancel([distributed.Future(keys[0], client)], force=True)
    result = await run
    assert result.task_results["t"].status == TaskStatus.FAILED
    error = result.task_results["t"].error
    assert error is not None and error.startswith("cancelled on the Dask cluster")
    assert issubclass(CancelledOnClusterError, RuntimeError)


async def test_a_worker_killed_mid_task_is_retried_as_a_lost_worker(
    client: Any, tmp_path: Path
) -> None:
    executor = DAGExecutor(WaveConfig(retry_policy=RetryPolicy(max_retries=2, base_delay=0.01)))
    retries: list[str] = []

    @executor.on_event
    def on_event(event_type: str, event: dict[str, Any]) -> None:
        if event_type == EventType.TASK_RETRYING:
            retries.append(event["error"])

    async with asyncio.timeout(120):  # never hangs
        result = await executor.execute(
            {"t": {"marker": str(tmp_path / "died")}},
            {},
            bodies.die_once,
            backend=DaskBackend(client),
        )
    assert result.outputs() == {"t": "survived t"}
    assert result.task_results["t"].retry_count == 1
    assert len(retries) == 1 and retries[0].startswith("lost worker: ")


async def test_a_body_that_always_kills_its_worker_fails_clearly(client: Any) -> None:
    backend = DaskBackend(client)
    with pytest.raises(WorkerLostError, match="lost worker"):
        await backend.call(bodies.die_always, "once", {})
    await client.wait_for_workers(2, timeout=60)
    async with asyncio.timeout(120):
        result = await DAGExecutor(NO_RETRY).execute(
            {"t": {}, "after": {}}, {"after": ["t"]}, bodies.die_always, backend=backend
        )
    t = result.task_results["t"]
    assert t.status == TaskStatus.FAILED
    assert t.error is not None and t.error.startswith("lost worker: ")
    assert result.task_results["after"].status == TaskStatus.SKIPPED


async def test_a_10_mb_output_reaches_its_downstream_by_reference_and_never_comes_here(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True)
    result = await DAGExecutor(NO_RETRY).execute(
        {"big": {"mb": 10}, "size": {}},
        {"size": ["big"]},
        lambda task_id, spec: (bodies.megabytes if task_id == "big" else bodies.length_of_deps)(
            task_id, spec
        ),
        inject_dep_outputs=True,
        backend=backend,
    )
    big, size = result.outputs()["big"], result.outputs()["size"]
    assert isinstance(big, ClusterOutput) and isinstance(size, ClusterOutput)
    assert await size.fetch() == 10_000_000

    # The cluster's own accounting: the 10 MB are held by workers only, and every
    # transfer of them went to a worker; none to a client (who=None).
    def worker_addresses(dask_scheduler: Any) -> list[str]:
        return list(dask_scheduler.workers)

    workers = set(await client.run_on_scheduler(worker_addresses))
    holders = (await client.who_has([big.future]))[big.key]
    assert holders and set(holders) <= workers

    def sends(dask_worker: Any) -> list[tuple[str | None, list[str]]]:
        return [(t["who"], [str(k) for k in t["keys"]]) for t in dask_worker.transfer_outgoing_log]

    sent = [s for per_worker in (await client.run(sends)).values() for s in per_worker]
    assert all(who in workers for who, keys in sent if str(big.key) in keys)
    assert len(await backend.gather({"size": size, "other": 1})) == 2


async def test_a_local_downstream_receives_the_fetched_value_of_a_cluster_output(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True)

    async def local(task_id: str, spec: Any) -> int:
        (value,) = spec["_dep_outputs"].values()
        return len(value)

    def body(task_id: str, spec: Any) -> Any:
        return bodies.megabytes(task_id, spec) if task_id == "up" else local(task_id, spec)

    result = await DAGExecutor(NO_RETRY).execute(
        {"up": {"mb": 1}, "down": {}}, {"down": ["up"]}, body,
        inject_dep_outputs=True, backends={"up": backend},
    )  # fmt: skip
    assert result.outputs()["down"] == 1_000_000


async def test_an_address_opens_a_client_of_its_own_closed_by_close(
    scheduler_address: str,
) -> None:
    backend = DaskBackend(scheduler_address)
    result = await DAGExecutor(NO_RETRY).execute(
        {"a": {"x": 6}}, {}, bodies.square, backend=backend
    )
    assert result.outputs() == {"a": 36}
    assert backend.client is not None
    await backend.close()
    assert backend.client is None


async def test_a_durable_run_fetches_cluster_outputs_to_record_them(client: Any) -> None:
    from wave_executor.store import MemoryStore

    backend = DaskBackend(client, keep_outputs=True)
    result = await DAGExecutor(NO_RETRY).execute(
        {"a": {"x": 7}}, {}, bodies.square, backend=backend, store=MemoryStore()
    )
    assert result.outputs() == {"a": 49}


def test_a_client_that_is_not_asynchronous_is_refused(scheduler_address: str) -> None:
    with (
        distributed.Client(scheduler_address, asynchronous=False) as client,
        pytest.raises(TypeError, match="asynchronous=True"),
    ):
        DaskBackend(client)


async def test_fan_out_children_run_on_the_cluster_and_their_outputs_come_back(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True)
    result = await DAGExecutor(NO_RETRY).execute(
        {"p": {"n": 6}}, {}, bodies.items_of, backend=backend,
        fan_out={"p": bodies.pid_and_double},
    )  # fmt: skip
    output = result.outputs()["p"]
    assert [double for _, double in output.values()] == [0, 2, 4, 6, 8, 10]
    assert os.getpid() not in {pid for pid, _ in output.values()}  # all ran on workers


# -- early submission ----------------------------------------------------------------


async def _transitions(client: Any, prefix: str) -> dict[str, list[tuple[str, float]]]:
    """Each of our keys' scheduler transitions: (new state, time), in order."""

    def log(dask_scheduler: Any) -> list[tuple[str, str, float]]:
        return [(str(t[0]), str(t[2]), float(t[-1])) for t in dask_scheduler.transition_log]

    out: dict[str, list[tuple[str, float]]] = {}
    for key, finish, at in await client.run_on_scheduler(log):
        if key.startswith(prefix):
            out.setdefault(key.split("-")[1], []).append((finish, at))
    return out


async def _nothing_left(client: Any, backend: DaskBackend, prefix: str) -> None:
    """The backend's cancellations are done and the cluster holds none of our keys."""
    await backend.close()
    gc.collect()
    for _ in range(100):
        if not await _scheduler_keys(client, prefix):
            break
        await asyncio.sleep(0.05)
    assert await _scheduler_keys(client, prefix) == []
    assert not [k for k in client.futures if str(k).startswith(prefix)]
    ours = [t for t in asyncio.all_tasks() if "wave_executor" in repr(t)]
    assert ours == []  # (the client's own tasks are its business)


def _events_of(executor: DAGExecutor) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    @executor.on_event
    def on_event(event_type: str, event: dict[str, Any]) -> None:
        seen.append((str(event_type), event.get("task_id")))

    return seen


async def test_a_chain_is_submitted_early_and_dask_resolves_its_dependencies(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True, key_prefix="chain")
    executor = DAGExecutor(NO_RETRY)
    seen = _events_of(executor)
    tasks = {"a": {"x": 1, "sleep": 0.4}, "b": {"x": 2, "sleep": 0.2}, "c": {"x": 3}}
    result = await executor.execute(
        tasks, {"b": ["a"], "c": ["b"]}, bodies.slow_add, inject_dep_outputs=True, backend=backend
    )
    assert await backend.gather(result.outputs()) == {"a": 1, "b": 3, "c": 6}
    assert backend.submitted_early == 2 and backend.withdrawn == 0
    # On the scheduler: b and c existed before a's output did.
    log = await _transitions(client, "chain-")
    a_done = next(at for state, at in log["a"] if state == "memory")
    assert log["b"][0][1] < a_done and log["c"][0][1] < a_done
    # Events: each task starts once, after its upstream completed (when its inputs are ready).
    order = [(e, t) for e, t in seen if e in ("TASK_STARTED", "TASK_COMPLETED")]
    assert order == [
        ("TASK_STARTED", "a"), ("TASK_COMPLETED", "a"),
        ("TASK_STARTED", "b"), ("TASK_COMPLETED", "b"),
        ("TASK_STARTED", "c"), ("TASK_COMPLETED", "c"),
    ]  # fmt: skip
    del result
    await _nothing_left(client, backend, "chain-")


async def test_a_diamond_is_submitted_early_with_both_upstreams_as_dependencies(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True)
    tasks = {"a": {"x": 1, "sleep": 0.3}, "b": {"x": 2}, "c": {"x": 3, "sleep": 0.2}, "d": {}}
    deps = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}
    result = await DAGExecutor(NO_RETRY).execute(
        tasks, deps, bodies.slow_add, inject_dep_outputs=True, backend=backend
    )
    assert await backend.gather(result.outputs()) == {"a": 1, "b": 3, "c": 4, "d": 7}
    assert backend.submitted_early == 3


async def test_without_inject_dep_outputs_the_order_still_holds_on_the_cluster(
    client: Any, tmp_path: Path
) -> None:
    backend = DaskBackend(client, keep_outputs=True)
    tasks = {"a": {"x": 1, "sleep": 0.3}, "b": {"x": 2}}
    result = await DAGExecutor(NO_RETRY).execute(
        tasks, {"b": ["a"]}, bodies.slow_add, backend=backend
    )
    assert await backend.gather(result.outputs()) == {"a": 1, "b": 2}
    assert backend.submitted_early == 1


async def test_early_submission_can_be_turned_off(client: Any) -> None:
    backend = DaskBackend(client, keep_outputs=True, early_submission=False)
    tasks = {"a": {"x": 1, "sleep": 0.2}, "b": {"x": 2}}
    result = await DAGExecutor(NO_RETRY).execute(
        tasks, {"b": ["a"]}, bodies.slow_add, inject_dep_outputs=True, backend=backend
    )
    assert await backend.gather(result.outputs()) == {"a": 1, "b": 3}
    assert backend.submitted_early == 0
    plain = DaskBackend(client)  # outputs fetched: nothing to hand on, so nothing early
    result = await DAGExecutor(NO_RETRY).execute(
        tasks, {"b": ["a"]}, bodies.slow_add, inject_dep_outputs=True, backend=plain
    )
    assert result.outputs() == {"a": 1, "b": 3} and plain.submitted_early == 0


async def test_an_upstream_retried_withdraws_its_early_downstream_and_submits_it_again(
    client: Any, tmp_path: Path
) -> None:
    backend = DaskBackend(client, keep_outputs=True, key_prefix="retried")
    executor = DAGExecutor(WaveConfig(retry_policy=RetryPolicy(max_retries=1, base_delay=0.05)))
    seen = _events_of(executor)
    tasks = {
        "a": {"x": 1, "sleep": 0.3, "body": "slow_fail_once", "marker": str(tmp_path / "a")},
        "b": {"x": 2, "sleep": 0.1},
        "c": {"x": 3},
    }
    result = await executor.execute(
        tasks, {"b": ["a"], "c": ["b"]}, bodies.by_task, inject_dep_outputs=True, backend=backend
    )
    assert await backend.gather(result.outputs()) == {"a": 1, "b": 3, "c": 6}
    assert result.task_results["a"].retry_count == 1
    assert result.task_results["b"].retry_count == 0
    assert backend.withdrawn == 2  # b and c, submitted early on a's first attempt
    assert backend.submitted_early == 4  # ... and again on its second
    for task in "bc":  # the withdrawn attempts left no trace in the events
        assert [e for e, t in seen if t == task] == ["TASK_STARTED", "TASK_COMPLETED"]
    assert [e for e, t in seen if t == "a"] == ["TASK_STARTED", "TASK_RETRYING", "TASK_COMPLETED"]
    del result
    await _nothing_left(client, backend, "retried-")


async def test_an_upstream_that_fails_for_good_skips_its_early_downstream_as_today(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True, key_prefix="doomed")
    executor = DAGExecutor(NO_RETRY)
    seen = _events_of(executor)
    tasks = {"a": {"sleep": 0.3, "body": "slow_fail"}, "b": {"x": 2}, "c": {"x": 3}, "z": {"x": 9}}
    result = await executor.execute(
        tasks, {"b": ["a"], "c": ["b"]}, bodies.by_task, inject_dep_outputs=True, backend=backend
    )
    assert backend.submitted_early == 2 and backend.withdrawn == 2
    assert result.task_results["a"].status == TaskStatus.FAILED
    for task, error in (("b", "['a']"), ("c", "['b'] (root failure: 'a')")):
        r = result.task_results[task]
        assert r.status == TaskStatus.SKIPPED  # as without early submission:
        assert r.error == f"skipped: dependencies did not succeed: {error}"
        assert r.skip_reason == "upstream_failed"
        assert [e for e, t in seen if t == task] == ["TASK_SKIPPED"]  # not started
    assert await backend.gather({"z": result.outputs()["z"]}) == {"z": 9}
    del result
    await _nothing_left(client, backend, "doomed-")


async def test_a_run_cancelled_while_tasks_wait_on_the_cluster_leaves_nothing_there(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True, key_prefix="halted")
    tasks = {"a": {"sleep": 1.0}, "b": {"x": 2}, "c": {"x": 3}}
    run = asyncio.ensure_future(
        DAGExecutor(NO_RETRY).execute(
            tasks,
            {"b": ["a"], "c": ["b"]},
            bodies.slow_add,
            inject_dep_outputs=True,
            backend=backend,
        )
    )
    for _ in range(200):
        if len(await _scheduler_keys(client, "halted-")) == 3:
            break
        await asyncio.sleep(0.02)
    assert backend.submitted_early == 2
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    del run  # (its exception holds the run's frames)
    await _nothing_left(client, backend, "halted-")


async def test_a_mixed_graph_submits_early_only_between_tasks_of_the_same_backend(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True)

    async def local(task_id: str, spec: Any) -> int:
        return int(sum(spec["_dep_outputs"].values())) + int(spec["x"])

    def body(task_id: str, spec: Any) -> Any:
        return local(task_id, spec) if task_id == "here" else bodies.slow_add(task_id, spec)

    tasks = {"a": {"x": 1, "sleep": 0.2}, "here": {"x": 10}, "b": {"x": 2}, "c": {"x": 3}}
    deps = {"here": ["a"], "b": ["here"], "c": ["a", "here"]}
    result = await DAGExecutor(NO_RETRY).execute(
        tasks, deps, body, inject_dep_outputs=True,
        backend=backend, backends={"here": InlineBackend()},
    )  # fmt: skip
    assert await backend.gather(result.outputs()) == {"a": 1, "here": 11, "b": 13, "c": 15}
    assert backend.submitted_early == 0


async def test_an_early_task_holds_its_slot_from_submission(client: Any) -> None:
    tasks = {"a": {"x": 1, "sleep": 0.2}, "b": {"x": 2}}
    for cap, early in ((1, 0), (2, 1)):
        backend = DaskBackend(client, keep_outputs=True)
        config = WaveConfig(max_parallel_per_wave=cap, retry_policy=RetryPolicy(max_retries=0))
        result = await DAGExecutor(config).execute(
            tasks, {"b": ["a"]}, bodies.slow_add, inject_dep_outputs=True, backend=backend
        )
        assert await backend.gather(result.outputs()) == {"a": 1, "b": 3}
        assert backend.submitted_early == early


async def test_an_early_task_holds_its_groups_budget_from_submission(client: Any) -> None:
    tasks = {"a": {"x": 1, "sleep": 0.2}, "b": {"x": 2}, "c": {"x": 3}}
    deps = {"b": ["a"], "c": ["b"]}
    for budget, early in ((1, 0), (3, 2)):  # budget 1: "a" holds it while it runs
        backend = DaskBackend(client, keep_outputs=True)
        config = WaveConfig(
            specialist_budgets={"g": budget}, retry_policy=RetryPolicy(max_retries=0)
        )
        result = await DAGExecutor(config).execute(
            tasks, deps, bodies.slow_add, inject_dep_outputs=True, backend=backend,
            groups=dict.fromkeys(tasks, "g"),
        )  # fmt: skip
        assert await backend.gather(result.outputs()) == {"a": 1, "b": 3, "c": 6}
        assert backend.submitted_early == early


async def test_an_early_tasks_timeout_starts_when_its_upstreams_have_succeeded(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True)
    tasks = {"a": {"x": 1, "sleep": 1.0}, "b": {"x": 2}, "slow": {"x": 0, "sleep": 2.0}}
    result = await DAGExecutor(NO_RETRY).execute(
        tasks, {"b": ["a"], "slow": ["a"]}, bodies.slow_add, inject_dep_outputs=True,
        backend=backend, timeouts={"b": 0.7, "slow": 0.7},
    )  # fmt: skip
    assert backend.submitted_early == 2
    assert result.task_results["b"].status == TaskStatus.SUCCESS  # a's second is not b's
    assert result.task_results["slow"].status == TaskStatus.TIMEOUT  # its own two are
    assert await backend.gather({"b": result.outputs()["b"]}) == {"b": 3}


async def test_a_task_under_an_open_breaker_is_not_submitted_early(client: Any) -> None:
    # Cap 2: "x" and "a" (submitted early on it) hold the slots; when "x" ends, "bad"
    # runs, fails and opens breaker "k" while "a" runs; "b" (on "a") would then be
    # submitted early, but for "k": it waits for "a", and the breaker refuses it then.
    tasks: dict[str, Any] = {
        "bad": {"body": "slow_fail", "circuit_key": "k"},
        "x": {"x": 1, "sleep": 0.4},
        "a": {"x": 1, "sleep": 0.2},
        "b": {"x": 1, "circuit_key": "k"},
    }
    config = WaveConfig(
        max_parallel_per_wave=2,
        circuit_failure_threshold=1,
        retry_policy=RetryPolicy(max_retries=0),
    )
    deps = {"a": ["x"], "b": ["a"]}
    for key, early in (("k", 1), ("other", 2)):
        backend = DaskBackend(client, keep_outputs=True)
        tasks["b"]["circuit_key"] = key
        executor = DAGExecutor(config)
        seen = _events_of(executor)
        result = await executor.execute(
            tasks, deps, bodies.by_task, inject_dep_outputs=True, backend=backend
        )
        assert backend.submitted_early == early
        b = result.task_results["b"]
        if key == "k":  # refused by the breaker once "a" had succeeded, as without
            assert b.status == TaskStatus.FAILED and b.error is not None
            assert "circuit" in b.error.lower()
            assert seen.index(("TASK_COMPLETED", "a")) < seen.index(("TASK_FAILED", "b"))
        else:
            assert await backend.gather({"b": b.output}) == {"b": 3}


async def test_stop_on_first_error_cancels_tasks_submitted_early_that_never_started(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True, key_prefix="stopfirst")
    config = WaveConfig(stop_on_first_error=True, retry_policy=RetryPolicy(max_retries=0))
    executor = DAGExecutor(config)
    events: list[tuple[str, Any, Any]] = []

    @executor.on_event
    def on_event(event_type: str, event: dict[str, Any]) -> None:
        events.append((str(event_type), event.get("task_id"), event.get("started")))

    tasks = {"bad": {"body": "slow_fail", "sleep": 0.3}, "b": {}, "x": {"sleep": 2.0}, "y": {}}
    result = await executor.execute(
        tasks, {"b": ["bad"], "y": ["x"]}, bodies.by_task, inject_dep_outputs=True,
        backend=backend,
    )  # fmt: skip
    assert backend.submitted_early == 2
    statuses = {t: r.status for t, r in result.task_results.items()}
    assert statuses == {
        "bad": TaskStatus.FAILED, "b": TaskStatus.SKIPPED,
        "x": TaskStatus.CANCELLED, "y": TaskStatus.CANCELLED,
    }  # fmt: skip
    assert [(e, s) for e, t, s in events if t == "y"] == [("TASK_FAILED", False)]
    assert [(e, s) for e, t, s in events if t == "x"] == [
        ("TASK_STARTED", None),
        ("TASK_FAILED", True),
    ]
    del result
    await _nothing_left(client, backend, "stopfirst-")


async def test_trigger_rules_mix_with_early_submission(client: Any, tmp_path: Path) -> None:
    # "c" (all_done) is never submitted early; "b" is, on "a", which fails once (retried)
    # in the first run and for good in the second.
    for fails, b_status in (("slow_fail_once", TaskStatus.SUCCESS), ("slow_fail", None)):
        backend = DaskBackend(client, keep_outputs=True)
        tasks = {
            "a": {"x": 1, "sleep": 0.3, "body": fails, "marker": str(tmp_path / fails)},
            "b": {"x": 2},
            "c": {"x": 3},
        }
        config = WaveConfig(retry_policy=RetryPolicy(max_retries=1, base_delay=0.01))
        result = await DAGExecutor(config).execute(
            tasks, {"b": ["a"], "c": ["b"]}, bodies.by_task, inject_dep_outputs=True,
            backend=backend, trigger_rules={"c": "all_done"},
        )  # fmt: skip
        statuses = {t: r.status for t, r in result.task_results.items()}
        if b_status is TaskStatus.SUCCESS:
            assert statuses == dict.fromkeys("abc", TaskStatus.SUCCESS)
            assert await backend.gather(result.outputs()) == {"a": 1, "b": 3, "c": 6}
            assert backend.submitted_early == 2 and backend.withdrawn == 1  # b, twice
        else:
            assert statuses == {
                "a": TaskStatus.FAILED, "b": TaskStatus.SKIPPED, "c": TaskStatus.SUCCESS,
            }  # fmt: skip
            assert backend.submitted_early == 2 and backend.withdrawn == 2


async def test_a_total_timeout_ends_a_task_waiting_on_the_cluster_unstarted(
    client: Any,
) -> None:
    backend = DaskBackend(client, keep_outputs=True, key_prefix="deadline")
    executor = DAGExecutor(
        WaveConfig(total_execution_timeout=0.5, retry_policy=RetryPolicy(max_retries=0))
    )
    events: list[tuple[str, Any, Any]] = []

    @executor.on_event
    def on_event(event_type: str, event: dict[str, Any]) -> None:
        events.append((str(event_type), event.get("task_id"), event.get("started")))

    result = await executor.execute(
        {"a": {"sleep": 2.0}, "b": {}}, {"b": ["a"]}, bodies.slow_add, inject_dep_outputs=True,
        backend=backend,
    )  # fmt: skip
    assert backend.submitted_early == 1
    assert result.task_results["a"].status == TaskStatus.TIMEOUT
    assert result.task_results["b"].status == TaskStatus.TIMEOUT
    assert [(e, s) for e, t, s in events if t == "b"] == [("TASK_FAILED", False)]
    del result
    await _nothing_left(client, backend, "deadline-")
