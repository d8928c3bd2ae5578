"""Where the landing zone, the warehouse and the themes file are (DESIGN.md §3).

Pure and Dagster-free, so that `stopcheck check` and notebooks resolve the same paths as the
resources of a run (assets/resources.py) without importing Dagster.
"""

from __future__ import annotations

import os
from pathlib import Path

from assets.provenance import PROJECT_ROOT
from assets.themes import THEMES_PATH

DEFAULT_LANDING = PROJECT_ROOT / "data" / "sample" / "landing"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse"
TRUTH_FILE = "truth.json"
"""What the sample generator (assets/synthetic.py) injected, at the top of a synthetic landing
zone: also its marker."""
SAMPLE_THEMES_PATH = PROJECT_ROOT / "assets" / "reference" / "sample_themes.yaml"
"""The themes of a synthetic sample: those of themes.yaml plus one naming the sample's teams."""


def is_synthetic_sample(landing: Path) -> bool:
    """Whether a landing zone was written by the sample generator (it holds the truth file)."""
    return (Path(landing) / TRUTH_FILE).is_file()


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
