"""Resources the assets take: where the landing zone, the warehouse and the themes file are
(DESIGN.md §3; the paths are resolved by assets/paths.py).

On the assets side because asset modules declare them as parameters; pipelines/resources.py
builds the instances the Definitions use (STYLE.md rule 13).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.frames import ReadResult
from assets.paths import DEFAULT_LANDING, DEFAULT_WAREHOUSE, resolve_dir, resolve_themes_file
from assets.stored import RawTable


class Warehouse(dg.ConfigurableResource):
    """The warehouse of DESIGN.md §5, for assets that write files besides their Parquet output
    (publication/). The IO manager resolves the same folder."""

    path: str = ""

    @property
    def root(self) -> Path:
        return resolve_dir(self.path, "STOPCHECK_WAREHOUSE_DIR", DEFAULT_WAREHOUSE)


class LandingZone(dg.ConfigurableResource):
    """The landing zone of DESIGN.md §4 (read-only)."""

    path: str = ""

    @property
    def root(self) -> Path:
        return resolve_dir(self.path, "STOPCHECK_LANDING_DIR", DEFAULT_LANDING)


class ThemesFile(dg.ConfigurableResource):
    """The versioned YAML file of thematic analyses (DESIGN.md §3, STOPCHECK_THEMES_FILE)."""

    path: str = ""

    def resolve(self, landing: Path) -> Path:
        """The file for a run over `landing` (see :func:`resolve_themes_file`)."""
        return resolve_themes_file(self.path, landing)


def read_raw(context: dg.AssetExecutionContext, result: ReadResult) -> RawTable:
    """The raw table of a landing-zone read, its warnings (e.g. extra columns) sent to the run
    log."""
    for warning in result.warnings:
        context.log.warning(warning)
    return RawTable(result.frame, result.delivered)
