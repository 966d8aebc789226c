"""Task bodies on a Dask cluster through ``distributed``'s asyncio client.

Needs the ``dask`` extra (``pip install 'wave-executor[dask]'``); nothing
else in ``wave_executor`` imports ``distributed``. Scheduling stays in the
event loop: the run decides what starts when, with its caps, priorities,
retries, timeouts and breakers, and this backend submits each attempt as one
Dask task with a unique key and awaits it.

- A body's exception comes back with its type and its remote traceback
  (``distributed`` rebuilds it), with a note naming the Dask key.
- A worker lost while running the body (``KilledWorker`` once Dask has
  given up on it) raises ``WorkerLostError``: an ordinary failure, retried
  by the task's retry policy, whose message starts with "lost worker".
- A timeout or a stop cancels the Dask task. One that has not started never
  does; a body already running on a worker cannot be interrupted and runs to
  its end there, its output dropped.
- With ``keep_outputs=True`` outputs stay on the cluster: a task's output is
  a ``ClusterOutput`` (a handle on the Dask future), a downstream task on the
  same cluster receives it by reference (Dask moves the data from worker to
  worker), a task on another backend receives the fetched value, and a run
  with a store fetches it to record it. ``await output.fetch()`` brings one
  here.
- With ``keep_outputs=True`` and ``early_submission`` (the default), a
  downstream task whose upstreams all run on this backend is submitted as
  soon as they are submitted, their futures as its Dask dependencies
  (``submit_early``); the run withdraws it if an upstream attempt fails.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

import distributed
from distributed.client import FutureCancelledError, FuturesCancelledError

from wave_executor._core.backend import Submission
from wave_executor._core.upstream import DEP_OUTPUTS
from wave_executor._runtime import observe
from wave_executor.backends.protocol import RemoteOutput, remote_dep_outputs

__all__ = [
    "CancelledOnClusterError",
    "ClusterOutput",
    "DaskBackend",
    "DaskSubmission",
    "WorkerLostError",
]


class WorkerLostError(RuntimeError):
    """The Dask worker running the body died (Dask's ``KilledWorker``); retryable."""


class CancelledOnClusterError(RuntimeError):
    """The Dask task was cancelled by someone else (another client, the dashboard)."""


class ClusterOutput(RemoteOutput):
    """A task output left on the Dask cluster; ``await output.fetch()`` brings it here."""

    __slots__ = ("future",)

    def __init__(self, future: distributed.Future[Any]) -> None:
        #: The Dask future holding the output on its worker.
        self.future = future

    @property
    def key(self) -> Any:
        return self.future.key

    async def fetch(self) -> Any:
        return await self.future

    def __repr__(self) -> str:
        return f"ClusterOutput(key={self.future.key!r}, status={self.future.status!r})"


class DaskBackend:
    """Runs each attempt as a task on a Dask cluster.

    ``client_or_address`` is a ``distributed.Client`` made with
    ``asynchronous=True`` on the run's event loop, or a scheduler address
    ("tcp://host:8786") for which the backend opens such a client on first
    use (and closes it in ``close()``). Bodies are plain functions (``def``),
    pickled with their spec; a body may run more than once (a lost worker
    reruns it), so it must be idempotent.
    """

    #: A downstream task on this backend takes ``ClusterOutput`` handles as they are.
    takes_remote_outputs = True

    def __init__(
        self,
        client_or_address: distributed.Client | str,
        *,
        keep_outputs: bool = False,
        key_prefix: str = "wave",
        early_submission: bool = True,
    ) -> None:
        if not isinstance(client_or_address, str) and not client_or_address.asynchronous:
            raise TypeError(
                "DaskBackend needs a distributed.Client made with asynchronous=True "
                "(or a scheduler address)"
            )
        self._owns_client = isinstance(client_or_address, str)
        self._address = client_or_address if isinstance(client_or_address, str) else None
        self._client: distributed.Client | None = (
            None if isinstance(client_or_address, str) else client_or_address
        )
        self._connecting: asyncio.Lock | None = None
        #: Outputs stay on the cluster as ``ClusterOutput`` handles (see the module's notes).
        self.keeps_outputs = keep_outputs
        self._prefix = key_prefix
        #: With ``keep_outputs``: a downstream task is submitted as soon as its
        #: upstreams are submitted on this backend (see docs/backends.md).
        self.early_submission = early_submission
        #: Attempts submitted before one of their upstreams had ended (for tests).
        self.submitted_early = 0
        #: Of those, the ones withdrawn because an upstream's attempt failed.
        self.withdrawn = 0
        self._cancels: set[asyncio.Future[Any]] = set()
        self._batches: dict[distributed.Client, list[tuple[Any, asyncio.Future[Any]]]] = {}
        self._fetches: set[asyncio.Future[None]] = set()

    @property
    def client(self) -> distributed.Client | None:
        return self._client

    def call(self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Awaitable[Any]:
        return self._run(body, task_id, spec)

    async def _run(self, body: Callable[[Any, Any], Any], task_id: Hashable, spec: Any) -> Any:
        client = self._client if self._client is not None else await self._connect()
        spec = await self._by_reference(client, spec)
        key = self._key(task_id)
        observer = observe.current
        if observer is not None:  # the trace context goes along (wave_executor.otel)
            body = observer.carry(body)
        future = client.submit(body, task_id, spec, key=key, pure=False)
        return await self._outcome(client, future, key)

    def _key(self, task_id: Hashable) -> str:
        return f"{self._prefix}-{str(task_id)[:80]}-{uuid.uuid4().hex}"

    async def _outcome(self, client: distributed.Client, future: Any, key: str) -> Any:
        """Await the Dask task behind ``future``: its output, or its error as ours."""
        try:
            await distributed.wait(future)
            if future.status == "finished":
                if self.keeps_outputs:
                    return ClusterOutput(future)
                return await self._fetch(client, future)
            try:
                return await future  # raises the body's error, or why Dask gave up on it
            finally:
                # The error, kept with the future's state, holds this frame and so the
                # future: release it, or the cycle keeps the key on the cluster for good.
                future.release()
        except (FutureCancelledError, FuturesCancelledError) as exc:  # not by this run
            reason = getattr(exc, "reason", None) or "unknown"
            raise CancelledOnClusterError(
                f"cancelled on the Dask cluster (key {key!r}; reason: {reason})"
            ) from None
        except asyncio.CancelledError:
            self._cancel(client, future)
            raise
        except distributed.KilledWorker as exc:
            raise WorkerLostError(f"lost worker: {exc}") from exc
        except Exception as exc:
            exc.add_note(f"raised on the Dask cluster (key {key!r})")
            raise

    # -- early submission (see docs/backends.md) ------------------------------

    async def prepare_early(self) -> None:
        """Connect (a backend made from an address) before the run's first submission."""
        if self._client is None:
            await self._connect()

    def submit_early(
        self,
        body: Callable[[Any, Any], Any],
        task_id: Hashable,
        spec: Any,
        upstream: Sequence[Submission],
    ) -> DaskSubmission:
        """Submit an attempt now, its ``upstream`` submissions as Dask dependencies.

        Dask runs the body once they have finished, with their outputs in place
        of their ``ClusterOutput`` handles in ``_dep_outputs``; if one fails,
        this task fails on the cluster too (the engine withdraws it first).
        Every ``ClusterOutput`` in ``spec`` must be of this backend's client.
        """
        client = self._client
        if client is None:
            raise RuntimeError("DaskBackend.submit_early before prepare_early()")
        outputs = remote_dep_outputs(spec)
        if outputs is not None:
            handed = {
                k: v.future if isinstance(v, ClusterOutput) else v for k, v in outputs.items()
            }
            spec = {**spec, DEP_OUTPUTS: handed}
        after = [s.remote.future for s in upstream if isinstance(s.remote, ClusterOutput)]
        key = self._key(task_id)
        if after:
            self.submitted_early += 1
            future = client.submit(_run_after, body, task_id, spec, *after, key=key, pure=False)
        else:
            future = client.submit(body, task_id, spec, key=key, pure=False)
        return DaskSubmission(self, client, future, key)

    def _fetch(self, client: distributed.Client, future: distributed.Future[Any]) -> Awaitable[Any]:
        """The output of a finished task, fetched with the others that finished this tick.

        One ``gather`` for every output that arrives in the same loop iteration:
        a round trip to the workers per batch rather than per task.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        batch = self._batches.get(client)
        if batch is None:
            batch = self._batches[client] = []
            loop.call_soon(self._gather_batch, client)
        batch.append((future, waiter))
        return waiter

    def _gather_batch(self, client: distributed.Client) -> None:
        batch = self._batches.pop(client, [])
        task = asyncio.ensure_future(self._deliver(client, batch))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _deliver(
        self, client: distributed.Client, batch: list[tuple[Any, asyncio.Future[Any]]]
    ) -> None:
        live = [(f, w) for f, w in batch if not w.done()]  # a cancelled waiter needs nothing
        if not live:
            return
        try:
            values = await client.gather([f for f, _ in live])
        except Exception:  # one output was lost (its worker died): each on its own
            for future, waiter in live:
                try:
                    value = await future
                except Exception as exc:
                    if not waiter.done():
                        waiter.set_exception(exc)
                else:
                    if not waiter.done():
                        waiter.set_result(value)
            return
        for (_, waiter), value in zip(live, values, strict=True):
            if not waiter.done():
                waiter.set_result(value)

    def _cancel(self, client: distributed.Client, future: distributed.Future[Any]) -> None:
        """Cancel the Dask task without waiting (we are being cancelled ourselves)."""
        try:
            pending = asyncio.ensure_future(client.cancel([future], force=True))
        except Exception:  # the client is closing: nothing left to cancel
            return
        self._cancels.add(pending)
        pending.add_done_callback(self._cancelled)

    def _cancelled(self, pending: asyncio.Future[Any]) -> None:
        self._cancels.discard(pending)
        if not pending.cancelled():
            pending.exception()  # a cancel that failed is not worth a warning

    async def _by_reference(self, client: distributed.Client, spec: Any) -> Any:
        """``spec`` with its ``ClusterOutput``s as Dask futures (ours) or values (others')."""
        outputs = remote_dep_outputs(spec)
        if outputs is None:
            return spec
        handed: dict[Any, Any] = {}
        for name, value in outputs.items():
            if isinstance(value, ClusterOutput) and value.future.client is client:
                handed[name] = value.future  # Dask resolves it on the worker
            elif isinstance(value, RemoteOutput):
                handed[name] = await value.fetch()
            else:
                handed[name] = value
        return {**spec, DEP_OUTPUTS: handed}

    async def _connect(self) -> distributed.Client:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._client is None:
                assert self._address is not None
                self._client = await distributed.Client(self._address, asynchronous=True)
            return self._client

    async def gather(self, outputs: dict[Any, Any]) -> dict[Any, Any]:
        """``outputs`` (for example ``result.outputs()``) with every ``ClusterOutput`` fetched."""
        remote = {k: v.future for k, v in outputs.items() if isinstance(v, ClusterOutput)}
        if not remote:
            return dict(outputs)
        assert self._client is not None
        values = await self._client.gather(list(remote.values()))
        fetched = dict(zip(remote, values, strict=True))
        return {k: fetched.get(k, v) if k in fetched else v for k, v in outputs.items()}

    async def close(self) -> None:
        """Close the client this backend opened from an address (a given client stays open)."""
        if self._cancels:
            await asyncio.gather(*self._cancels, return_exceptions=True)
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def __repr__(self) -> str:
        where = self._address if self._address is not None else self._client
        return (
            f"DaskBackend({where!r}, keep_outputs={self.keeps_outputs}, "
            f"early_submission={self.early_submission})"
        )


def _run_after(body: Callable[[Any, Any], Any], task_id: Any, spec: Any, *upstream: Any) -> Any:
    """On the worker: ``body(task_id, spec)`` once Dask has the ``upstream`` outputs."""
    return body(task_id, spec)


class DaskSubmission:
    """An attempt submitted with ``DaskBackend.submit_early``."""

    __slots__ = ("_backend", "_client", "_key", "remote")

    def __init__(
        self, backend: DaskBackend, client: distributed.Client, future: Any, key: str
    ) -> None:
        self._backend = backend
        self._client = client
        self._key = key
        #: Its output as a downstream submission receives it (resolved by Dask).
        self.remote = ClusterOutput(future)

    def result(self) -> Awaitable[Any]:
        """The attempt's output (a ``ClusterOutput``) or its error, as ``call`` gives them."""
        return self._backend._outcome(self._client, self.remote.future, self._key)

    def cancel(self) -> None:
        """Withdraw the attempt: cancel its Dask task without waiting."""
        self._backend.withdrawn += 1
        self._backend._cancel(self._client, self.remote.future)

    def __repr__(self) -> str:
        return f"DaskSubmission(key={self._key!r})"
