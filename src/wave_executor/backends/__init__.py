"""Where task bodies run: in the event loop, in threads, in processes or on a Dask cluster.

Scheduling always stays in asyncio; a backend only runs attempts of task
bodies. ``InlineBackend`` (the default), ``ThreadBackend`` and
``ProcessBackend`` are here; ``wave_executor.backends.dask.DaskBackend``
needs the ``dask`` extra and is imported only from that module. See
docs/backends.md.
"""

from wave_executor.backends.inline import InlineBackend
from wave_executor.backends.process import ProcessBackend
from wave_executor.backends.protocol import Backend, RemoteOutput
from wave_executor.backends.thread import ThreadBackend

__all__ = ["Backend", "InlineBackend", "ProcessBackend", "RemoteOutput", "ThreadBackend"]
