"""The asyncio runtime: the only layer that awaits."""
