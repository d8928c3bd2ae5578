"""Progress collectors (pipelines/progress.py): silent by default, plain lines off a terminal,
a live display on one."""

from __future__ import annotations

import io
from itertools import count

from rich.console import Console

from pipelines.progress import NULL_COLLECTOR, LogCollector, RichCollector


def report(collector) -> None:
    """What run_pipeline reports for one month of two."""
    with collector("month 2025-01"):
        collector.update("steps", inc=0, message="core_queries ...")
        collector.update("steps", message="core_queries ok in 1.5 s")
    collector.update("months", total=2, message="2025-01 ok in 2.0 s")


def test_log_collector_prints_finished_steps_and_months_with_elapsed_time():
    lines: list[str] = []
    ticks = count()
    collector = LogCollector(lines.append, clock=lambda: float(next(ticks)))
    report(collector)
    assert lines == [
        "[    1.0 s] month 2025-01: core_queries ok in 1.5 s",
        "[    2.0 s] 2025-01 ok in 2.0 s (1/2 months)",
    ]


def test_rich_collector_shows_the_stage_and_keeps_the_months():
    screen = io.StringIO()
    collector = RichCollector(Console(file=screen, force_terminal=True, color_system=None,
                                      width=120))
    report(collector)
    collector.close()
    shown = screen.getvalue()
    assert "month 2025-01 · core_queries ok in 1.5 s" in shown
    assert "2025-01 ok in 2.0 s" in shown and "1/2" in shown


def test_the_null_collector_prints_nothing(capsys):
    report(NULL_COLLECTOR)
    NULL_COLLECTOR.close()
    assert capsys.readouterr() == ("", "")


def test_a_message_names_its_own_stage_when_months_run_side_by_side():
    lines: list[str] = []
    collector = LogCollector(lines.append, clock=lambda: 0.0)
    with collector("monthly runs, 2 at a time"):
        collector.update("steps", message="core_queries ok in 1.5 s", stage="month 2025-02")
        collector.update("steps", message="core_queries ok in 1.7 s", stage="month 2025-01")
    assert lines == ["[    0.0 s] month 2025-02: core_queries ok in 1.5 s",
                     "[    0.0 s] month 2025-01: core_queries ok in 1.7 s"]
