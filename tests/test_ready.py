"""The ready sets: best place first, and first come, first served within a place."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wave_executor._core.graph import build_graph
from wave_executor._core.plan import Plan
from wave_executor._core.ready import GroupedReady, ReadyBuckets, ReadyHeap, ready_set

# A script of operations: ("push", place) pushes the next task index at that place,
# ("push_all", place, k) the next k at once (a fan-out's children), ("pop",) pops.
operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 6)),
        st.tuples(st.just("push_all"), st.integers(0, 6), st.integers(0, 4)),
        st.tuples(st.just("pop")),
    ),
    max_size=120,
)


def pushes(op: tuple[object, ...]) -> tuple[int, int]:
    """(place, how many) of a push operation."""
    place, count = op[1], op[2] if op[0] == "push_all" else 1
    assert isinstance(place, int) and isinstance(count, int)
    return place, count


def expected_pops(script: list[tuple[object, ...]]) -> list[int | None]:
    """What a ready set must hand out: the lowest place, oldest push first; None if empty."""
    waiting: list[tuple[int, int]] = []  # (place, push order) pairs
    out: list[int | None] = []
    pushed = 0
    for op in script:
        if op[0] != "pop":
            place, count = pushes(op)
            for _ in range(count):
                waiting.append((place, pushed))
                pushed += 1
        elif waiting:
            best = min(waiting)
            waiting.remove(best)
            out.append(best[1])
        else:
            out.append(None)
    return out


def actual_pops(
    ready: ReadyBuckets | ReadyHeap, script: list[tuple[object, ...]]
) -> list[int | None]:
    out: list[int | None] = []
    pushed = 0
    for op in script:
        if op[0] != "pop":
            place, count = pushes(op)
            tasks = range(pushed, pushed + count)
            if op[0] == "push_all" and isinstance(ready, ReadyBuckets):
                ready.push_all(place, tasks)
            else:
                for i in tasks:
                    ready.push(place, i)
            pushed += count
        else:
            out.append(ready.pop())
        assert len(ready) == ready.available() == pushed - sum(1 for i in out if i is not None)
    return out


@settings(max_examples=300, deadline=None)
@given(operations)
def test_buckets_and_heap_hand_out_the_order_defined(script: list[tuple[object, ...]]) -> None:
    want = expected_pops(script)
    assert actual_pops(ReadyBuckets([], []), script) == want
    assert actual_pops(ReadyHeap([], []), script) == want


def test_buckets_start_with_the_roots_in_order_and_clear() -> None:
    ready = ReadyBuckets([1, 0, 1, 0], [10, 11, 12, 13])
    assert len(ready) == 4
    assert [ready.pop() for _ in range(4)] == [11, 13, 10, 12]
    assert ready.pop() is None
    ready.push(2, 7)
    ready.push(2, 8)  # a second task at a place: the bucket becomes a deque
    ready.clear()
    assert len(ready) == 0 and ready.pop() is None and not ready.buckets and not ready.places


def test_a_place_of_one_task_holds_no_deque() -> None:
    ready = ReadyBuckets([3, 4], [0, 1])
    assert ready.buckets == {3: 0, 4: 1}


def test_ready_set_uses_buckets_when_places_are_shared() -> None:
    assert isinstance(ready_set([0], [0], distinct=10, n=1_000), ReadyBuckets)
    assert isinstance(ready_set([0], [0], distinct=64, n=64), ReadyBuckets)  # small graphs
    assert isinstance(ready_set([0], [0], distinct=1_000, n=1_000), ReadyHeap)  # a chain


def test_the_plan_picks_its_ready_set_from_the_graph() -> None:
    n = 200
    chain = build_graph(range(n), {i: [i - 1] for i in range(1, n)})
    assert isinstance(Plan(chain).ready, ReadyHeap)  # one place per task
    wide = build_graph(range(n), {i: [0] for i in range(1, n)})
    assert isinstance(Plan(wide).ready, ReadyBuckets)  # two places
    assert isinstance(Plan(wide, group_of=[0] * n).ready, GroupedReady)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 120), st.data())
def test_plans_over_either_ready_set_take_tasks_in_the_same_order(
    n: int, data: st.DataObject
) -> None:
    """A plan on buckets and one on a heap agree task for task (places from a real graph)."""
    deps = {
        i: data.draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set() for i in range(n)
    }
    graph = build_graph(range(n), deps)
    orders = []
    for kind in (ReadyBuckets, ReadyHeap):
        plan = Plan(graph)
        roots = [i for i in range(n) if not deps[i]]
        plan._ready = kind([graph.priority[i] for i in roots], roots)
        plan._buckets = plan._ready.buckets if isinstance(plan._ready, ReadyBuckets) else None
        plan._places = plan._ready.places if isinstance(plan._ready, ReadyBuckets) else []
        plan._heap = plan._ready.heap if isinstance(plan._ready, ReadyHeap) else None
        plan._order = plan._ready.order if isinstance(plan._ready, ReadyHeap) else []
        taken = []
        while (i := plan.take()) is not None:
            taken.append(i)
            plan.succeed(i)
        assert plan.done
        orders.append(taken)
    assert orders[0] == orders[1]
