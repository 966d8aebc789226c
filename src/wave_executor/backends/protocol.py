"""The backend protocol, importable from the backends package where users look for it.

It lives in the core (``wave_executor._core.backend``) because the engine's
attempt runner depends on it, and the core must not depend on the
backends it can run.
"""

from __future__ import annotations

from wave_executor._core.backend import (
    Backend,
    EarlySubmitter,
    RemoteOutput,
    Submission,
    remote_dep_outputs,
)

__all__ = ["Backend", "EarlySubmitter", "RemoteOutput", "Submission", "remote_dep_outputs"]
