"""Resources the assets take: where the landing zone, the warehouse and the themes file are
(DESIGN.md §3).

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
from assets.synthetic import SAMPLE_THEMES_PATH, is_synthetic_sample
from assets.themes import THEMES_PATH

DEFAULT_LANDING = PROJECT_ROOT / "data" / "sample" / "landing"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse"


def resolve_dir(configured: str, env_var: str, default: Path) -> Path:
    """Configured path, else the environment variable, else the documented default.

    NOTE: resolved when a run uses it, never at import, so tests pass paths as config instead
    of setting environment variables.
    """
    return Path(configured or os.environ.get(env_var) or default).resolve()


def resolve_themes_file(configured: str, landing: Path) -> Path:
    """The themes file: configured, else STOPCHECK_THEMES_FILE, else the sample's themes for a
    synthetic landing zone (its team codes are the sample's), else the shipped themes.yaml."""
    default = SAMPLE_THEMES_PATH if is_synthetic_sample(landing) else THEMES_PATH
    return resolve_dir(configured, "STOPCHECK_THEMES_FILE", default)


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


def read_logged(context: dg.AssetExecutionContext, result: ReadResult) -> pl.DataFrame:
    """The frame of a landing-zone read, its warnings (e.g. extra columns) sent to the run log."""
    for warning in result.warnings:
        context.log.warning(warning)
    return result.frame
