"""Statistics: out_ tables over all materialised months. Thin: each asset calls one pure function."""

import dagster as dg
import polars as pl

from assets.disproportionality import AnalysisSettings, compute_team_disproportionality
from assets.provenance import code_version
from pipelines.privacy import withhold_values


class AnalysisConfig(dg.Config):
    """Run config of every out_ asset; defaults documented in docs/methodology.md."""

    reference_origin: str = "NL"
    confidence_level: float = 0.95
    origin_level: str = "code"
    disclosure_threshold: int = 10

    def settings(self) -> AnalysisSettings:
        return AnalysisSettings(**self.model_dump())


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
