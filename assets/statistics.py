"""Statistics: out_ tables over all materialised months. Thin: each asset calls one pure function."""

import dagster as dg
import polars as pl

from assets.disproportionality import (
    AnalysisSettings,
    compute_team_disproportionality,
    compute_thematic_disproportionality,
)
from assets.themes import THEMES_PATH, load_themes, theme_fingerprint, validate_against_teams
from assets.provenance import code_version
from pipelines.privacy import withhold_values


class AnalysisConfig(dg.Config):
    """Run config of every out_ asset; defaults documented in docs/methodology.md."""

    reference_origin: str = "NL"
    confidence_level: float = 0.95
    origin_level: str = "code"
    disclosure_threshold: int = 10

    def settings(self) -> AnalysisSettings:
        return AnalysisSettings(**{k: getattr(self, k) for k in AnalysisSettings.__dataclass_fields__})


class ThemeConfig(AnalysisConfig):
    """AnalysisConfig plus which themes of the versioned themes file to compute."""

    themes: list[str] = []
    """Theme names; empty means every theme in the file."""
    themes_file: str = ""
    """Theme file; empty means the versioned themes.yaml of the repository."""


def all_queries(*frames: pl.LazyFrame) -> pl.LazyFrame:
    """Person and plate core queries of every month as one lazy frame."""
    return pl.concat(frames, how="vertical")


def months_of(queries: pl.LazyFrame) -> list[str]:
    return queries.select(pl.col("month").unique().sort()).collect()["month"].to_list()


def stamped(frame: pl.DataFrame, settings: AnalysisSettings, months: list[str]) -> dg.Output:
    """The output with the settings, months and code version that produced it (aggregates only)."""
    return dg.Output(frame, metadata={
        "settings": dg.MetadataValue.json(settings.as_dict()),
        "months": ", ".join(months),
        "code_version": code_version(),
    })


@dg.asset
@withhold_values
def out_team_disproportionality(
    config: AnalysisConfig,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
    core_population: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per period × query_type × benchmark × team_code (and ALL) × origin: query counts,
    persons, residents, queries per 1,000 per year, crude and age-sex standardised rate ratios vs
    the reference origin with exact/Greenland–Robins CIs, BH q-values, shrunk ratios and
    missing-origin bounds (DESIGN.md §5, METHODS.md §0–4, §8)."""
    settings = config.settings()
    queries = all_queries(core_person_queries, core_plate_queries)
    months = months_of(queries)
    table = compute_team_disproportionality(
        queries, core_population, months=months, settings=settings)
    return stamped(table, settings, months)


@dg.asset
@withhold_values
def out_thematic_disproportionality(
    config: ThemeConfig,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
    core_population: pl.DataFrame,
    core_team_areas: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per theme × query_type × benchmark × team_code × origin: the
    out_team_disproportionality statistics repeated on each theme's slice (themes.yaml)."""
    settings = config.settings()
    themes = load_themes(config.themes_file or THEMES_PATH)
    if config.themes:
        unknown = sorted(set(config.themes) - {t.name for t in themes})
        if unknown:
            raise ValueError(f"unknown theme(s) {unknown}; known: {[t.name for t in themes]}")
        themes = tuple(t for t in themes if t.name in config.themes)
    validate_against_teams(themes, core_team_areas["team_code"])
    queries = all_queries(core_person_queries, core_plate_queries)
    months = months_of(queries)
    table = compute_thematic_disproportionality(
        queries, core_population, themes, months=months, settings=settings)
    output = stamped(table, settings, months)
    output.metadata["themes"] = dg.MetadataValue.json(
        {t.name: theme_fingerprint(t) for t in themes})
    return output
