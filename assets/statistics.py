"""Statistics: out_ tables over all materialised months. Thin: each asset calls one pure function."""

import dagster as dg
import polars as pl

from assets.disproportionality import (
    AnalysisSettings,
    compute_thematic_disproportionality,
    origin_expr,
)
from assets.schema import ALL_TEAMS, ORIGIN_CODES
from assets.stats.darkness import compute_veil_of_darkness
from assets.stats.outcome import compute_outcome_test
from assets.stats.repeat import compute_repeat_tables
from assets.suitability import compute_data_suitability, count_received_rows
from assets.team_tables import compute_team_tables
from assets.themes import ThemeConfigError, load_themes, theme_fingerprint, validate_against_teams
from assets.provenance import code_version
from assets.privacy import withhold_values
from assets.resources import LandingZone, ThemesFile
from assets.stored import ParquetFiles


class AnalysisConfig(dg.Config):
    """Run config of every out_ asset; defaults documented in docs/methodology.md."""

    reference_origin: str = "NL"
    confidence_level: float = 0.95
    origin_level: str = "code"
    disclosure_threshold: int = 10
    disclosure_round_to: int = 0
    interval_method: str = "person_clustered"
    """person_clustered (default: repeat queries of one person are not independent) or
    independent_events (every query independent, as in the published cases)."""

    def settings(self) -> AnalysisSettings:
        return AnalysisSettings(**{k: getattr(self, k) for k in AnalysisSettings.__dataclass_fields__})


class ThemeConfig(AnalysisConfig):
    """AnalysisConfig plus which themes of the themes file (resource `themes_file`) to compute."""

    themes: list[str] = []
    """Theme names; empty means every theme in the file."""


def all_queries(*frames: pl.LazyFrame) -> pl.LazyFrame:
    """Person and plate core queries of every month as one lazy frame."""
    return pl.concat(frames, how="vertical")


def months_of(queries: pl.LazyFrame) -> list[str]:
    return queries.select(pl.col("month").unique().sort()).collect()["month"].to_list()


def stamped(frame: pl.DataFrame, settings: AnalysisSettings, months: list[str],
            output_name: str = "result") -> dg.Output:
    """The output with the settings, months and code version that produced it (aggregates only)."""
    return dg.Output(frame, output_name=output_name, metadata={
        "settings": dg.MetadataValue.json(settings.as_dict()),
        "months": ", ".join(months),
        "code_version": code_version(),
    })


TEAM_TABLES = {
    "out_team_disproportionality": (
        "One row per period × query_type × benchmark × team_code (and ALL) × origin: query "
        "counts, persons, residents, queries per 1,000 per year, crude and age-sex standardised "
        "rate ratios vs the reference origin with intervals that treat persons as clusters of "
        "queries, persons queried per resident against the reference (person_rate_ratio), BH "
        "q-values, shrunk ratios and missing-origin bounds (DESIGN.md §5, METHODS.md §0–4, §8, "
        "§8b)."),
    "out_team_trends": (
        "One row per query_type × benchmark × team_code (and ALL) × origin × comparison: how "
        "the age-sex standardised ratio changed between complete quarters (latest vs a year "
        "earlier, vs the first, and the log-linear trend per year), with intervals that treat "
        "each person as one cluster of queries across quarters, p- and BH q-values (DESIGN.md "
        "§5, METHODS.md §8c)."),
    "out_count_models": (
        "One row per query_type × family (quasi-Poisson, NB2) × model term level: rate ratios "
        "of the Gelman–Fagan–Kiss count model (origin + team + sex × age band, offset log "
        "residents) with CIs and the overdispersion ratio (METHODS.md §3)."),
}
"""The tables of `out_team_tables`, with their descriptions."""


@dg.multi_asset(
    outs={name: dg.AssetOut(description=text, is_required=False)
          for name, text in TEAM_TABLES.items()},
    can_subset=True,
)
@withhold_values
def out_team_tables(
    context: dg.AssetExecutionContext,
    config: AnalysisConfig,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
    core_population: pl.DataFrame,
):
    """out_team_disproportionality, out_team_trends and out_count_models (any of them alone when
    only it is selected) from one read of the persons' cells (`compute_team_tables`): all three
    group the same cells."""
    settings = config.settings()
    queries = all_queries(core_person_queries, core_plate_queries)
    months = months_of(queries)
    for name, table in compute_team_tables(queries, core_population, months=months,
                                           settings=settings,
                                           names=context.selected_output_names):
        yield stamped(table, settings, months, name)


@dg.asset
@withhold_values
def out_thematic_disproportionality(
    config: ThemeConfig,
    landing: LandingZone,
    themes_file: ThemesFile,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
    core_population: pl.DataFrame,
    core_team_areas: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per theme × query_type × benchmark × team_code × origin: the
    out_team_disproportionality statistics repeated on each theme's slice (themes.yaml)."""
    settings = config.settings()
    path = themes_file.resolve(landing.root)
    themes = load_themes(path)
    if config.themes:
        unknown = sorted(set(config.themes) - {t.name for t in themes})
        if unknown:
            raise ThemeConfigError(str(path), f"unknown theme(s) {unknown}; known: "
                                   f"{[t.name for t in themes]}")
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


@dg.asset
@withhold_values
def out_outcome_test(
    config: AnalysisConfig,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per query_type × team_code (and ALL) × origin: hit rate of queries with a filled-in
    hit field, Wilson CI, difference vs the reference with Newcombe CI; on ALL rows also the
    unweighted mean of team rates as OPP aggregates (METHODS.md §5)."""
    settings = config.settings()
    queries = all_queries(core_person_queries, core_plate_queries)
    table = compute_outcome_test(queries.with_columns(origin_expr(settings)),
                                 reference=settings.reference, level=settings.confidence_level,
                                 clustered=settings.interval_method == "person_clustered",
                                 origin_order=ORIGIN_CODES, all_teams=ALL_TEAMS)
    return stamped(table, settings, months_of(queries))


@dg.asset
@withhold_values
def out_repeat_checks(
    config: AnalysisConfig,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per query_type × team_code (and ALL) × origin: persons, queries per person,
    shares queried ≥ 2 and ≥ 5 times, Gini of queries over persons, and the distribution of the
    ProCo count (earlier queries of the same person in the preceding 365 days) (METHODS.md §6)."""
    settings = config.settings()
    queries = all_queries(core_person_queries, core_plate_queries).with_columns(
        origin_expr(settings))
    table = compute_repeat_tables(queries, reference=settings.reference, all_teams=ALL_TEAMS)
    return stamped(table, settings, months_of(queries))


@dg.asset
@withhold_values
def out_veil_of_darkness(
    config: AnalysisConfig,
    core_plate_queries: pl.LazyFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per design (intertwilight, DST) × origin × fixed effects: the veil-of-darkness
    log-odds γ of a holder of that origin (vs the reference) being queried in darkness, with SE,
    CI and n, over all teams (team_code ALL) (METHODS.md §7)."""
    settings = config.settings()
    plates = core_plate_queries.with_columns(origin_expr(settings))
    table = compute_veil_of_darkness(plates, reference=settings.reference,
                                     level=settings.confidence_level, origin_order=ORIGIN_CODES)
    table = table.select(pl.lit(ALL_TEAMS).alias("team_code"), *table.columns)
    return stamped(table, settings, months_of(core_plate_queries))


@dg.asset
@withhold_values
def out_data_suitability(
    raw_person_queries: ParquetFiles,
    raw_plate_queries: ParquetFiles,
    core_quarantine: pl.LazyFrame,
    core_person_queries: pl.LazyFrame,
    core_plate_queries: pl.LazyFrame,
    core_team_areas: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """One row per month × query_type × team_code (and ALL): rows received, quarantined (per
    reason), valid and linked, missing fields, queries per officer, and a plain-language verdict
    per month on whether the data are available and suitable (docs/validation.md)."""
    # NOTE: the month of a raw file is its name (`<YYYY-MM>.parquet`, DESIGN.md §5).
    received = pl.concat([
        count_received_rows({path.stem: pl.scan_parquet(path) for path in files.paths},
                            query_type=query_type)
        for query_type, files in (("person", raw_person_queries), ("plate", raw_plate_queries))])
    queries = all_queries(core_person_queries, core_plate_queries)
    table = compute_data_suitability(
        received, core_quarantine.collect(), queries,
        teams=core_team_areas["team_code"].unique().sort().to_list(),
    )
    return dg.Output(table, metadata={
        "months": table["month"].n_unique(),
        "verdicts": dg.MetadataValue.json(
            dict(table.filter(pl.col("team_code") == ALL_TEAMS)
                 .group_by("verdict").len().sort("verdict").iter_rows())),
        "code_version": code_version(),
    })
