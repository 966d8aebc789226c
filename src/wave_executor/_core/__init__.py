"""Pure, stdlib-only core: graph, plan, statuses, retry math, breaker, records.

Nothing here imports asyncio; time is always passed in as ``now``.
"""
