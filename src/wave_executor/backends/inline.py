"""The inline backend: bodies are coroutine functions awaited in the event loop.

Defined in the core (``wave_executor._core.backend``), where the engine
recognises it as "call the body itself".
"""

from __future__ import annotations

from wave_executor._core.backend import InlineBackend

__all__ = ["InlineBackend"]
