"""JsonSerializer and PickleSerializer: what they keep, and what they refuse."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest

from wave_executor.store import JsonSerializer, PickleSerializer, Serializer


class Color(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        "",
        "plain",
        'naïve ✓ \u2028 \x00 "quoted" \\',
        [],
        {},
        [1, "two", 3.0, None, [False]],
        {"a": {"b": {"c": [1, {"d": "e"}]}}},
    ],
)
def test_json_round_trips_json_values(value: Any) -> None:
    s = JsonSerializer()
    data = s.dumps(value)
    assert isinstance(data, bytes)
    assert s.loads(data) == value


def test_json_keeps_special_floats_and_turns_tuples_into_lists() -> None:
    s = JsonSerializer()
    back = s.loads(s.dumps({"nan": math.nan, "inf": -math.inf, "pair": (1, 2)}))
    assert math.isnan(back["nan"]) and back["inf"] == -math.inf
    assert back["pair"] == [1, 2]


def test_json_is_compact_utf8() -> None:
    assert JsonSerializer().dumps({"k": ["é", 1]}) == '{"k":["é",1]}'.encode()


def test_json_refuses_keys_it_would_change() -> None:
    s = JsonSerializer()
    for bad in ({1: "a"}, {"ok": [{None: 1}]}, [({True: 1},)]):
        with pytest.raises(TypeError, match="would come back as a string"):
            s.dumps(bad)
    assert s.loads(s.dumps({Color.RED: 1})) == {"red": 1}  # str subclasses are str


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, datetime(2024, 1, 1, tzinfo=UTC), object()])
def test_json_refuses_what_it_cannot_write(value: Any) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        JsonSerializer().dumps({"v": value})


def test_json_refuses_cycles_with_a_clear_message() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="reference cycle"):
        JsonSerializer().dumps(loop)


def test_json_hooks_store_other_types_in_a_chosen_form() -> None:
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return {"$dt": obj.isoformat()}
        raise TypeError(f"cannot store {type(obj).__name__}")

    def hook(d: dict[str, Any]) -> Any:
        return datetime.fromisoformat(d["$dt"]) if "$dt" in d else d

    s = JsonSerializer(default=default, object_hook=hook)
    when = datetime(2024, 5, 6, 7, 8, tzinfo=UTC)
    assert s.loads(s.dumps({"at": when})) == {"at": when}


def test_pickle_round_trips_python_objects() -> None:
    s = PickleSerializer()
    value = {1: {2, 3}, (4, 5): b"six", "when": datetime(2024, 1, 1, tzinfo=UTC)}
    assert s.loads(s.dumps(value)) == value
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        s.dumps(lambda: None)
    assert "unsafe" in (PickleSerializer.__doc__ or "").lower()


def test_both_satisfy_the_serializer_protocol() -> None:
    serializers: list[Serializer] = [JsonSerializer(), PickleSerializer(protocol=4)]
    assert [s.name for s in serializers] == ["json", "pickle"]
    assert repr(serializers[1]) == "PickleSerializer(protocol=4)"
