"""Circuit breakers in the executor, on the virtual clock."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers import Recorder
from wave_executor import CircuitBreakerRegistry, DAGExecutor, WaveConfig
from wave_executor.testing import run_virtual


def breaker_config(**kwargs: Any) -> WaveConfig:
    base: dict[str, Any] = {
        "max_retries": 0,
        "max_parallel_per_wave": 1,
        "circuit_failure_threshold": 3,
        "circuit_success_threshold": 2,
        "circuit_recovery_timeout": 10.0,
    }
    base.update(kwargs)
    return WaveConfig(**base)


def test_closed_open_half_open_closed() -> None:
    rec = Recorder()
    calls: list[tuple[str, float]] = []
    healthy = False

    async def body(task_id: str, spec: Any) -> str:
        calls.append((task_id, asyncio.get_running_loop().time()))
        if not healthy:
            raise ConnectionError("down")
        await asyncio.sleep(1)
        return "up"

    async def main() -> list[Any]:
        nonlocal healthy
        ex = DAGExecutor(breaker_config())
        ex.on_event(rec)
        key = {"circuit_key": "svc"}
        first = await ex.execute({f"a{i}": key for i in range(5)}, {}, body)
        await asyncio.sleep(5)
        still_open = await ex.execute({"b": key}, {}, body)
        await asyncio.sleep(5)  # recovery timeout has passed
        healthy = True
        probes = await ex.execute(
            {"p1": key, "p2": key}, {}, body, config=breaker_config(max_parallel_per_wave=2)
        )
        after = await ex.execute({"c": key}, {}, body)
        return [first, still_open, probes, after, ex.circuit_breaker_states()]

    (first, still_open, probes, after, states), _ = run_virtual(main())
    called = [c for c, _ in calls]
    # Three failures open the circuit; a3 and a4 fail fast without a call.
    assert called[:3] == ["a0", "a1", "a2"]
    assert first.task_results["a3"].error.startswith("circuit 'svc' is open")
    assert "b" not in called and still_open.task_results["b"].status == "failed"
    # Half-open admits one probe at a time: p2 is refused while p1 probes.
    assert probes.task_results["p1"].status == "success"
    assert probes.task_results["p2"].status == "failed"
    assert "half-open and its one probe is in flight" in probes.task_results["p2"].error
    # A second successful probe closes it.
    assert after.task_results["c"].status == "success"
    assert states["svc"]["state"] == "closed"
    kinds = [t for t, _ in rec.events if t.startswith("CIRCUIT_")]
    assert kinds == ["CIRCUIT_OPENED", "CIRCUIT_HALF_OPEN", "CIRCUIT_CLOSED"]
    opened = rec.of("CIRCUIT_OPENED")[0]
    assert opened["circuit_key"] == "svc" and opened["failure_count"] == 3


def test_a_failed_probe_opens_the_circuit_again() -> None:
    async def body(task_id: str, spec: Any) -> None:
        raise ConnectionError("still down")

    async def main() -> Any:
        ex = DAGExecutor(breaker_config(circuit_failure_threshold=1))
        key = {"circuit_key": "svc"}
        await ex.execute({"a": key}, {}, body)
        await asyncio.sleep(10)
        await ex.execute({"probe": key}, {}, body)
        return ex.circuit_breaker_states()["svc"]["state"]

    state, _ = run_virtual(main())
    assert state == "open"


def test_group_is_the_default_key_and_registries_can_be_shared() -> None:
    calls: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        calls.append(task_id)
        raise ConnectionError("down")

    async def main() -> Any:
        shared = CircuitBreakerRegistry()
        one = DAGExecutor(breaker_config(circuit_failure_threshold=2), circuit_breakers=shared)
        two = DAGExecutor(breaker_config(circuit_failure_threshold=2), circuit_breakers=shared)
        tasks = {"x1": 1, "x2": 1}
        await one.execute(tasks, {}, body, groups=dict.fromkeys(tasks, "llm"))
        result = await two.execute({"y": 1}, {}, body, groups={"y": "llm"})
        assert two.circuit_breakers is shared and "llm" in shared
        shared.reset("llm")
        assert "llm" not in shared
        return result

    result, _ = run_virtual(main())
    assert calls == ["x1", "x2"]  # y was refused: the llm circuit opened in the first run
    assert result.task_results["y"].output["escalation"]["circuit_state"] == "open"


def test_explicit_key_function() -> None:
    calls: list[str] = []

    async def body(task_id: str, spec: Any) -> None:
        calls.append(task_id)
        raise ConnectionError("down")

    async def main() -> Any:
        ex = DAGExecutor(breaker_config(circuit_failure_threshold=1))
        return await ex.execute(
            {"host-a/1": 1, "host-a/2": 1, "host-b/1": 1},
            {},
            body,
            circuit_key=lambda task_id, spec: task_id.split("/")[0],
        )

    result, _ = run_virtual(main())
    assert calls == ["host-a/1", "host-b/1"]
    assert "is open" in result.task_results["host-a/2"].error
