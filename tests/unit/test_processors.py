"""How many threads the statistics run side by side (assets.stats.processors)."""

from __future__ import annotations

import pytest

from assets.stats import processors


@pytest.mark.parametrize(("cpus", "rows", "threads"), [
    (2, 0, 2), (2, processors.SIDE_BY_SIDE_ROWS, 2), (2, processors.SIDE_BY_SIDE_ROWS + 1, 1),
    (8, 1_000, 2), (1, 1_000, 1),
])
def test_two_threads_at_most_on_small_cells_and_one_on_large(monkeypatch, cpus, rows, threads):
    # NOTE: two statistics at once hold two sets of their intermediate frames: on the cells of
    # 50M queries that added up to 1.4 GB to the run's peak for no gain.
    monkeypatch.setattr(processors, "available_processors", lambda: cpus)
    assert processors.side_by_side(rows) == threads
