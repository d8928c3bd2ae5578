"""The processors this process may use: how many threads the statistics run side by side."""

from __future__ import annotations

import os

SIDE_BY_SIDE_ROWS = 15_000_000
"""The most rows of persons' cells that statistics sharing them read two at a time
(`side_by_side`). NOTE: at 5M queries (the themes' cells 5.0M rows, the team tables' 9.1M) two
at a time saved 9–15% of their time; at 50M (30.3M and 24.9M rows) no time that the whole run
showed, and 0.8–1.4 GB more at its peak (docs/performance.md)."""


def available_processors() -> int:
    """The processors this process may use where the system says (Linux: its CPU affinity,
    which a container or `taskset` narrows), else all of the machine's; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def side_by_side(rows: int) -> int:
    """Threads for independent statistics that read one frame of persons' cells of `rows` rows:
    two (at most the processors) up to `SIDE_BY_SIDE_ROWS`, else one, for memory."""
    return min(2, available_processors()) if rows <= SIDE_BY_SIDE_ROWS else 1
