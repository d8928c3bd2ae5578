"""Progress of `stopcheck run`, after dlt's Collector (dlt/common/runtime/collector.py).

The run reports stages (`with collector("month 2025-03"): ...`) and counters
(`collector.update("months", total=12, message="2025-03 ok in 5.2 s")`); a collector shows them.
`run_pipeline` takes NULL_COLLECTOR by default, so tests and notebooks print nothing; the CLI
picks `RichCollector` on a terminal and `LogCollector` (plain lines, one per finished step and
month, with the elapsed time) when output goes to a file or a pipe.

Messages are the run's own (step names, months, durations): never a value from a table.
Collectors may be updated from several threads: the monthly runs report side by side
(pipelines/runs.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType


class Collector:
    """Counters and stages of a run; this base class shows nothing (the null collector)."""

    stage: str = ""

    def update(self, name: str, inc: int = 1, total: int | None = None,
               message: str | None = None, stage: str | None = None) -> None:
        """Add `inc` to counter `name` (created on first use), of `total` when known; `message`
        says what just happened, in `stage` (default: the current stage). A counter with a
        total is a milestone (a month); one without is detail (a step)."""

    def _start(self, stage: str) -> None:
        """A stage begins."""

    def _stop(self) -> None:
        """The current stage ends."""

    def close(self) -> None:
        """The run ends: release the display."""

    def __call__(self, stage: str) -> Collector:
        self.stage = stage
        return self

    def __enter__(self) -> Collector:
        self._start(self.stage)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop()


NULL_COLLECTOR = Collector()
"""Shows nothing: the default of run_pipeline."""


class LogCollector(Collector):
    """Plain lines, one per update with a message, prefixed with the time since the run began:
    for logs, pipes and CI, where a live display would print control characters."""

    def __init__(self, echo: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.echo, self.clock = echo, clock
        self.began = clock()
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def update(self, name: str, inc: int = 1, total: int | None = None,
               message: str | None = None, stage: str | None = None) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + inc
            if message is None or inc == 0:
                return
            stage = stage or self.stage
            where = f"{stage}: " if total is None and stage else ""
            count = f" ({self.counts[name]}/{total} {name})" if total is not None else ""
            self.echo(f"[{self.clock() - self.began:7.1f} s] {where}{message}{count}")


class RichCollector(Collector):
    """A live display on a terminal (rich): a bar per milestone counter (months), the current
    stage with its elapsed time and the step running or just finished; milestone messages stay
    on screen above it."""

    def __init__(self, console=None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.counters: dict[str, int] = {}
        self.stage_task: int | None = None
        self.lock = threading.Lock()
        self.progress.start()

    def update(self, name: str, inc: int = 1, total: int | None = None,
               message: str | None = None, stage: str | None = None) -> None:
        with self.lock:
            if total is None:
                if message is not None and self.stage_task is not None:
                    self.progress.update(self.stage_task,
                                         description=f"{stage or self.stage} · {message}")
                return
            if name not in self.counters:
                self.counters[name] = self.progress.add_task(name, total=total)
            self.progress.update(self.counters[name], advance=inc, total=total)
            if message is not None and inc:
                self.progress.console.print(message)

    def _start(self, stage: str) -> None:
        # NOTE: a new task per stage, so that its elapsed time starts at zero.
        if self.stage_task is not None:
            self.progress.remove_task(self.stage_task)
        self.stage_task = self.progress.add_task(stage, total=None)

    def close(self) -> None:
        if self.stage_task is not None:
            self.progress.remove_task(self.stage_task)
            self.stage_task = None
        self.progress.stop()
