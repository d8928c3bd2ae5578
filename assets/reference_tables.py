"""Reference tables: CBS persons and population and the team areas, raw (as delivered, typed)
and core (checked, keyed). Refused whole when they break the contract: every ratio depends on them."""

from datetime import date

import dagster as dg
import polars as pl

from assets import frames, linkage
from assets.privacy import withhold_values
from assets.resources import LandingZone, read_raw
from assets.stored import RawTable


@dg.asset
@withhold_values
def raw_persons(context: dg.AssetExecutionContext, landing: LandingZone) -> RawTable:
    """One row per pseudonymised person with CBS-linked attributes, as delivered (typed)."""
    return read_raw(context, frames.read_persons(landing.root))


@dg.asset
@withhold_values
def raw_population(context: dg.AssetExecutionContext, landing: LandingZone) -> RawTable:
    """One row per year × wijk × sex × age band × origin: CBS residents, as delivered (typed)."""
    return read_raw(context, frames.read_population(landing.root))


@dg.asset
@withhold_values
def raw_team_areas(context: dg.AssetExecutionContext, landing: LandingZone) -> RawTable:
    """One row per wijk with the basisteam covering it, as delivered (typed)."""
    return read_raw(context, frames.read_team_areas(landing.root))


@dg.asset
@withhold_values
def core_team_areas(landing: LandingZone, raw_team_areas: pl.DataFrame) -> pl.DataFrame:
    """One row per wijk: the basisteam covering it (refused whole if a wijk has two teams)."""
    return linkage.build_core_team_areas(
        raw_team_areas, source=str(frames.team_areas_file(landing.root)))


@dg.asset
@withhold_values
def core_persons(landing: LandingZone, raw_persons: pl.DataFrame,
                 core_team_areas: pl.DataFrame) -> pl.DataFrame:
    """One row per pseudonymised person: CBS attributes, UInt64 person_key, residence team."""
    return linkage.build_core_persons(raw_persons, core_team_areas, current_year=date.today().year,
                                      source=str(frames.cbs_file(landing.root, "persons")))


@dg.asset
@withhold_values
def core_population(landing: LandingZone, raw_population: pl.DataFrame,
                    core_team_areas: pl.DataFrame) -> pl.DataFrame:
    """One row per year × team × wijk × sex × age band × origin: residents on 1 January."""
    return linkage.build_core_population(
        raw_population, core_team_areas, source=str(frames.cbs_file(landing.root, "population")))
