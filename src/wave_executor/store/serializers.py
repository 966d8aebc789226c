"""Serializers: how task outputs and checkpoints become bytes in a store.

``JsonSerializer`` is the default: what it stores can be read by anyone
(and by people, with the ``sqlite3`` shell), and reading it back can never
run code. ``PickleSerializer`` stores any picklable Python object, but
loading a pickle can run arbitrary code: use it only for databases that
nobody else can write to.
"""

from __future__ import annotations

import json
import json.encoder
import pickle
from collections.abc import Callable
from typing import Any

__all__ = ["JsonSerializer", "PickleSerializer"]


def _check_keys(value: Any) -> None:
    """Refuse dict keys that JSON would silently turn into strings.

    ``json.dumps({1: "a"})`` writes ``{"1": "a"}``, so a resumed run would
    read ``out["1"]`` where the first run had ``out[1]``: a silent change of
    meaning. Only containers are walked, so strings and numbers cost one
    type check.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"dict key {key!r} of type {type(key).__qualname__} would come back "
                    "as a string from JSON; use str keys (or the pickle serializer)"
                )
            if type(item) not in _SCALARS:
                _check_keys(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if type(item) not in _SCALARS:
                _check_keys(item)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _fast_encoder(
    default: Callable[[Any], Any] | None,
) -> Callable[[Any], str]:
    """``obj -> JSON text``, built once rather than on every call.

    ``json.JSONEncoder.encode`` builds its C encoder afresh on each call,
    which is most of the cost of encoding a small output; the store encodes
    one output per task, so it builds one and keeps it. If the C encoder is
    not there (another Python) or not as expected, the plain path is used.
    """
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            chunks = make(
                None,  # no circular check: a cycle ends in RecursionError instead
                encoder.default,
                json.encoder.encode_basestring,
                None,
                ":",
                ",",
                False,
                False,
                True,
            )
            if "".join(chunks({"a": [1, 2.5, None, "é"]}, 0)) == '{"a":[1,2.5,null,"é"]}':
                return lambda obj: "".join(chunks(obj, 0))
        except Exception:  # pragma: no cover - a Python whose C encoder differs
            pass
    return encoder.encode  # pragma: no cover


class JsonSerializer:
    """JSON (UTF-8), the default. Safe to load from any source.

    Stores what ``json`` can write: dicts with str keys, lists, strings,
    numbers, booleans and None. Tuples come back as lists. A dict key that
    is not a str is refused (JSON would turn it into a string silently).
    ``default`` and ``object_hook`` are passed to ``json.dumps`` and
    ``json.loads``, to store other types in a form of your choosing.
    """

    name = "json"

    def __init__(
        self,
        *,
        default: Callable[[Any], Any] | None = None,
        object_hook: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self._encode = _fast_encoder(default)
        self._decoder = json.JSONDecoder(object_hook=object_hook)

    def dumps(self, obj: Any) -> bytes:
        kind = type(obj)
        if kind is str:
            return json.encoder.encode_basestring(obj).encode()
        try:
            if kind not in _SCALARS:
                _check_keys(obj)
            return self._encode(obj).encode()
        except RecursionError:
            raise ValueError(
                "the value contains a reference cycle, or is nested too deeply"
            ) from None

    def loads(self, data: bytes) -> Any:
        return self._decoder.decode(data.decode())

    def __repr__(self) -> str:
        return "JsonSerializer()"


class PickleSerializer:
    """Pickle: stores any picklable object. UNSAFE for databases you do not trust.

    Loading a pickle can execute arbitrary code, so whoever can write to the
    database file can run code in every process that reads it. Use it only
    for stores that nobody else can write to (and never for a file that came
    from elsewhere). It is never chosen implicitly: pass it explicitly, and
    open the database with it every time.
    """

    name = "pickle"

    def __init__(self, *, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self._protocol = protocol

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=self._protocol)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self._protocol})"
