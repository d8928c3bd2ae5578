"""Sunset, end of civil dusk and local clock time for the veil-of-darkness design.

Pure and Dagster-free. Sun times are computed once per distinct local date with astral
(at most 366 calls a year) and joined onto the queries, so tagging millions of queries
costs one join. All clock values are Europe/Amsterdam wall-clock minutes since local
midnight, so a query at 18:30 is minute 1110 in winter (CET) and in summer (CEST) alike:
the clock, not UTC, is what the daily routines of officers and drivers follow.

Assumptions
-----------
- One place for the whole covered area: Amsterdam city centre (52.37 N, 4.90 E). Within
  the city the sun sets within about a minute of the centre (as the Open Policing
  Project uses city centres).
- Minutes are truncated to the whole clock minute (hour * 60 + minute), as the Open
  Policing Project's ``time_to_minute`` does, for queries and sun times alike.
- "Dark" is after the end of civil dusk (sun 6 degrees below the horizon). Civil dusk
  exists on every day of the year in the Netherlands; astronomical dusk does not (astral
  raises in Dutch summers), so it is never used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypeVar
from zoneinfo import ZoneInfo

import polars as pl
from astral import Observer
from astral.sun import dusk, sunset

AMSTERDAM_LATITUDE = 52.37
AMSTERDAM_LONGITUDE = 4.90
TIMEZONE = "Europe/Amsterdam"
"""The observer's clock: sun times and query minutes are wall-clock minutes in this zone (the
pipeline's ``assets.schema.TIMEZONE``; a test keeps the two equal)."""
MINUTES_PER_HOUR = 60

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

SUN_TIMES_SCHEMA = pl.Schema(
    {"date": pl.Date(), "sunset_minute": pl.Int32(), "dusk_minute": pl.Int32()}
)


def _clock_minute(moment: dt.datetime) -> int:
    return moment.hour * MINUTES_PER_HOUR + moment.minute


def sun_times(
    dates: pl.Series,
    *,
    latitude: float = AMSTERDAM_LATITUDE,
    longitude: float = AMSTERDAM_LONGITUDE,
) -> pl.DataFrame:
    """Return one row per distinct date: sunset and end of civil dusk as local clock minutes.

    Parameters
    ----------
    dates : polars.Series
        Local (Europe/Amsterdam) calendar dates, dtype Date; nulls and repeats are ignored.
    latitude, longitude : float
        Observer position in degrees (north, east); default Amsterdam centre.

    Returns
    -------
    polars.DataFrame
        Columns ``date`` (Date), ``sunset_minute`` and ``dusk_minute`` (Int32, Europe/Amsterdam
        clock minutes since local midnight, truncated to the minute), sorted by date.

    References
    ----------
    astral 3.2, ``astral.sun.sunset`` and ``astral.sun.dusk`` (civil depression, 6 degrees).
    """
    if dates.dtype != pl.Date:
        raise TypeError(f"dates must have dtype Date, not {dates.dtype}")
    observer = Observer(latitude=latitude, longitude=longitude)
    zone = ZoneInfo(TIMEZONE)
    distinct = sorted(dates.drop_nulls().unique().to_list())
    rows = [
        (
            day,
            _clock_minute(sunset(observer, day, tzinfo=zone)),
            _clock_minute(dusk(observer, day, tzinfo=zone)),
        )
        for day in distinct
    ]
    return pl.DataFrame(rows, schema=SUN_TIMES_SCHEMA, orient="row")


def local_clock_minute(ts: pl.Expr) -> pl.Expr:
    """Europe/Amsterdam wall-clock minute since local midnight (Int32) of a UTC Datetime column.

    The minute follows the clock across the daylight-saving switch: 17:00 UTC is minute
    1080 (18:00 CET) in winter and 1140 (19:00 CEST) in summer.
    """
    local = ts.dt.convert_time_zone(TIMEZONE)
    return (local.dt.hour().cast(pl.Int32) * MINUTES_PER_HOUR + local.dt.minute().cast(pl.Int32))


def local_date(ts: pl.Expr) -> pl.Expr:
    """Europe/Amsterdam calendar date of a UTC Datetime column."""
    return ts.dt.convert_time_zone(TIMEZONE).dt.date()


def tag_darkness(
    frame: FrameT,
    *,
    time_column: str = "queried_at",
    latitude: float = AMSTERDAM_LATITUDE,
    longitude: float = AMSTERDAM_LONGITUDE,
) -> FrameT:
    """Add darkness columns to a frame of queries; one output row per input row, order kept.

    Adds ``local_date`` (Date), ``minute`` (Int32 local clock minute), ``sunset_minute``,
    ``dusk_minute`` (Int32, that date's sunset and end of civil dusk), ``is_dark``
    (minute > dusk_minute) and ``is_twilight`` (sunset_minute < minute <= dusk_minute: after
    sunset but not yet certainly dark, the ambiguous period the design drops). Rows with a
    null time get nulls.

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
        Must hold ``time_column`` as a time-zone-aware Datetime (the core tables use UTC).
    time_column : str
        Column with the instant of the query.
    latitude, longitude : float
        Observer position; default Amsterdam centre.

    Notes
    -----
    A query in the clock minute of dusk itself counts as twilight, not as light: with
    whole minutes it cannot be told whether it fell before or after dusk. (The Open
    Policing Project tutorial keeps that minute as light; the difference is one minute
    a day.)
    """
    time = pl.col(time_column)
    lazy = frame.lazy().with_columns(
        local_date(time).alias("local_date"), local_clock_minute(time).alias("minute")
    )
    # NOTE: collect only the distinct dates (<= 366 a year) to ask astral, then join.
    dates = lazy.select(pl.col("local_date").unique()).collect().to_series()
    times = sun_times(dates, latitude=latitude, longitude=longitude).rename(
        {"date": "local_date"}
    )
    tagged = lazy.join(times.lazy(), on="local_date", how="left", maintain_order="left").with_columns(
        (pl.col("minute") > pl.col("dusk_minute")).alias("is_dark"),
        (
            (pl.col("minute") > pl.col("sunset_minute"))
            & (pl.col("minute") <= pl.col("dusk_minute"))
        ).alias("is_twilight"),
    )
    if isinstance(frame, pl.LazyFrame):
        return tagged
    return tagged.collect()


def find_clock_changes(years: Iterable[int]) -> pl.DataFrame:
    """Return one row per year × season: the local date of the Europe/Amsterdam clock change.

    Columns ``year`` (Int32), ``season`` ("spring": clocks forward to summer time;
    "autumn": clocks back) and ``change_date`` (Date, the Sunday of the switch). Derived
    from the time-zone database (offset at local noon differs from the day before), not
    from a hard-coded rule. Years without a switch yield no rows. Sorted by date.
    """
    zone = ZoneInfo(TIMEZONE)
    rows: list[tuple[int, str, dt.date]] = []
    for year in sorted(set(years)):
        day = dt.date(year, 1, 1)
        previous = dt.datetime.combine(day, dt.time(12), tzinfo=zone).utcoffset()
        while day.year == year:
            day += dt.timedelta(days=1)
            offset = dt.datetime.combine(day, dt.time(12), tzinfo=zone).utcoffset()
            if offset is not None and previous is not None and offset != previous:
                if day.year == year:
                    rows.append((year, "spring" if offset > previous else "autumn", day))
            previous = offset
    return pl.DataFrame(
        rows,
        schema={"year": pl.Int32(), "season": pl.String(), "change_date": pl.Date()},
        orient="row",
    )
