"""Resources the assets take: where the landing zone and the warehouse are (DESIGN.md §3).

On the assets side because asset modules declare them as parameters; pipelines/resources.py
builds the instances the Definitions use (STYLE.md rule 13).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import polars as pl

from assets.frames import ReadResult
from assets.provenance import PROJECT_ROOT

DEFAULT_LANDING = PROJECT_ROOT / "data" / "sample" / "landing"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse"


def resolve_dir(configured: str, env_var: str, default: Path) -> Path:
    """Configured path, else the environment variable, else the documented default.

    NOTE: resolved when a run uses it, never at import, so tests pass paths as config instead
    of setting environment variables.
    """
    return Path(configured or os.environ.get(env_var) or default).resolve()


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


def read_logged(context: dg.AssetExecutionContext, result: ReadResult) -> pl.DataFrame:
    """The frame of a landing-zone read, its warnings (e.g. extra columns) sent to the run log."""
    for warning in result.warnings:
        context.log.warning(warning)
    return result.frame
