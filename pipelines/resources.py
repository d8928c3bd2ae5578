"""The resources of the Definitions (DESIGN.md §3). The resource classes are defined on the
assets side, in assets/resources.py, because asset modules declare them as parameters."""

from __future__ import annotations

from assets.paths import DEFAULT_LANDING, DEFAULT_WAREHOUSE, resolve_dir
from assets.resources import LandingZone, ThemesFile, Warehouse
from pipelines.io_managers import ParquetIOManager

__all__ = ["DEFAULT_LANDING", "DEFAULT_WAREHOUSE", "LandingZone", "ThemesFile", "Warehouse",
           "build_resources", "resolve_dir"]


def build_resources(landing_dir: str = "", warehouse_dir: str = "", themes_file: str = "") -> dict:
    """Every resource the assets use, keyed by parameter name; empty paths are resolved at run
    time from STOPCHECK_LANDING_DIR / STOPCHECK_WAREHOUSE_DIR / STOPCHECK_THEMES_FILE and the
    DESIGN.md §3 defaults."""
    return {
        "landing": LandingZone(path=landing_dir),
        "io_manager": ParquetIOManager(warehouse_dir=warehouse_dir),
        "warehouse": Warehouse(path=warehouse_dir),
        "themes_file": ThemesFile(path=themes_file),
    }
