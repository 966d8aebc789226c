"""The 0.3.0 reconciler checkpoint protocol over any ``RunStore``, as plain data.

``WaveReconciler`` saves ``ReconcileTaskSpec`` and ``ReconcileTaskState``
objects. A store with the default JSON serializer cannot keep objects, and
should not: a database outlives the classes that wrote it. This adapter
turns them into plain mappings (enums as their values, datetimes as ISO
strings) on the way in; the reconciler reads mappings back as readily as
objects. Removed tasks are deleted, so they stay removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from wave_executor._core.store_protocol import RunStore

__all__ = ["ReconcilerCheckpoints"]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


class ReconcilerCheckpoints:
    """Pass as ``WaveReconciler(checkpoint_store=ReconcilerCheckpoints(store))``."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    async def save_reconciler_state(
        self, reconciler_id: str, task_id: str, spec: Any, state: Any, deps: Iterable[Any]
    ) -> None:
        if spec is None:
            await self.store.delete_reconciler_task(reconciler_id, task_id)
            return
        await self.store.save_reconciler_state(
            reconciler_id, task_id, _plain(spec), _plain(state), set(deps)
        )

    async def delete_reconciler_state(self, reconciler_id: str, task_id: str) -> None:
        await self.store.delete_reconciler_task(reconciler_id, task_id)

    async def load_reconciler_state(
        self, reconciler_id: str
    ) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, set[str]]]:
        return await self.store.load_reconciler_state(reconciler_id)
