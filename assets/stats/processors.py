"""The processors this process may use: how many threads the statistics run side by side."""

from __future__ import annotations

import os


def available_processors() -> int:
    """The processors this process may use where the system says (Linux: its CPU affinity,
    which a container or `taskset` narrows), else all of the machine's; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
