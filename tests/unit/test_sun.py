"""Sun times and local clock minutes (assets/stats/sun.py)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from assets.stats.sun import find_clock_changes, local_clock_minute, sun_times, tag_darkness

# Published reference: Netherlands AIP (LVNL), GEN 2.7 "Sunrise/Sunset", table "Uniform
# daylight periods 2019", computed for 52°00'N 005°00'E, in UTC. The uniform daylight period
# ends 15 minutes after sunset, so sunset = end - 15 min. Rows used (day 21):
#   JAN 0720-1623, MAR 0526-1809, APR 0416-1902, JUN 0305-2019.
# Local clock: CET = UTC+1 (January, 21 March), CEST = UTC+2 (21 April, 21 June).
AIP_LATITUDE = 52.0
AIP_LONGITUDE = 5.0
AIP_SUNSETS_LOCAL_MINUTE = {
    dt.date(2019, 1, 21): (16 * 60 + 23 - 15) + 60,  # 16:08 UTC -> 17:08 CET
    dt.date(2019, 3, 21): (18 * 60 + 9 - 15) + 60,  # 17:54 UTC -> 18:54 CET
    dt.date(2019, 4, 21): (19 * 60 + 2 - 15) + 120,  # 18:47 UTC -> 20:47 CEST
    dt.date(2019, 6, 21): (20 * 60 + 19 - 15) + 120,  # 20:04 UTC -> 22:04 CEST
}


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_sunset_matches_the_dutch_aip_within_two_minutes() -> None:
    dates = pl.Series(list(AIP_SUNSETS_LOCAL_MINUTE), dtype=pl.Date)
    times = sun_times(dates, latitude=AIP_LATITUDE, longitude=AIP_LONGITUDE)
    for day, published in AIP_SUNSETS_LOCAL_MINUTE.items():
        computed = times.filter(pl.col("date") == day)["sunset_minute"].item()
        assert abs(computed - published) <= 2, (day, computed, published)


def test_amsterdam_solstice_sunset_and_dusk_are_plausible() -> None:
    times = sun_times(pl.Series([dt.date(2025, 6, 21), dt.date(2025, 12, 21)], dtype=pl.Date))
    june, december = times.rows(named=True)
    # Amsterdam lies 0.37° north and 0.1° west of the AIP point: summer sunset ~2 min later.
    assert 22 * 60 + 4 <= june["sunset_minute"] <= 22 * 60 + 8
    assert 16 * 60 + 26 <= december["sunset_minute"] <= 16 * 60 + 31
    # Civil dusk follows sunset by ~40-55 minutes at 52° N.
    assert 40 <= december["dusk_minute"] - december["sunset_minute"] <= 50
    assert 45 <= june["dusk_minute"] - june["sunset_minute"] <= 60


def test_sun_times_has_one_row_per_distinct_date_sorted() -> None:
    dates = pl.Series(
        [dt.date(2025, 3, 2), None, dt.date(2025, 1, 5), dt.date(2025, 3, 2)], dtype=pl.Date
    )
    times = sun_times(dates)
    assert times["date"].to_list() == [dt.date(2025, 1, 5), dt.date(2025, 3, 2)]
    assert times.schema == pl.Schema(
        {"date": pl.Date(), "sunset_minute": pl.Int32(), "dusk_minute": pl.Int32()}
    )


def test_civil_dusk_exists_on_every_day_of_a_year() -> None:
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 12, 31), eager=True)
    times = sun_times(days)
    assert times.height == 366
    assert (times["dusk_minute"] > times["sunset_minute"]).all()


def test_clock_minute_follows_the_dst_switch() -> None:
    # 17:00 UTC is 18:00 CET on Saturday 29 March 2025 and 19:00 CEST on Sunday 30 March.
    frame = pl.DataFrame({"t": [_utc(2025, 3, 29, 17, 0), _utc(2025, 3, 30, 17, 0)]})
    minutes = frame.select(local_clock_minute(pl.col("t")))["t"].to_list()
    assert minutes == [18 * 60, 19 * 60]
    assert minutes[1] - minutes[0] == 60


def test_sunset_clock_minute_jumps_by_about_an_hour_across_the_switch() -> None:
    times = sun_times(pl.Series([dt.date(2025, 3, 29), dt.date(2025, 3, 30)], dtype=pl.Date))
    before, after = times["sunset_minute"].to_list()
    assert 60 <= after - before <= 63  # the clock jumps 60, the sun sets ~1.5 min later


def test_tag_darkness_flags_dark_and_twilight_and_keeps_rows() -> None:
    times = sun_times(pl.Series([dt.date(2025, 12, 1)], dtype=pl.Date)).row(0, named=True)
    sunset_min, dusk_min = times["sunset_minute"], times["dusk_minute"]

    def at(minute: int) -> dt.datetime:  # 1 December: CET = UTC+1
        return _utc(2025, 12, 1) + dt.timedelta(minutes=minute - 60)

    frame = pl.DataFrame(
        {
            "query_id": ["light", "sunset", "twilight", "dusk", "dark", "none"],
            "queried_at": [
                at(sunset_min - 30),
                at(sunset_min),
                at(sunset_min + 1),
                at(dusk_min),
                at(dusk_min + 1),
                None,
            ],
        },
        schema_overrides={"queried_at": pl.Datetime("us", "UTC")},
    )
    tagged = tag_darkness(frame)
    assert tagged["query_id"].to_list() == frame["query_id"].to_list()
    assert tagged["is_dark"].to_list() == [False, False, False, False, True, None]
    assert tagged["is_twilight"].to_list() == [False, False, True, True, False, None]
    assert tagged["local_date"][0] == dt.date(2025, 12, 1)
    lazy = tag_darkness(frame.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(tagged)


def test_tag_darkness_uses_the_local_date_near_midnight() -> None:
    # 23:30 UTC on 30 June is 01:30 CEST on 1 July.
    frame = pl.DataFrame({"queried_at": [_utc(2025, 6, 30, 23, 30)]})
    tagged = tag_darkness(frame)
    assert tagged["local_date"].item() == dt.date(2025, 7, 1)
    assert tagged["minute"].item() == 90


def test_find_clock_changes_2025() -> None:
    changes = find_clock_changes([2025, 2025])
    assert changes.rows() == [
        (2025, "spring", dt.date(2025, 3, 30)),
        (2025, "autumn", dt.date(2025, 10, 26)),
    ]


def test_sun_times_rejects_datetimes() -> None:
    with pytest.raises(TypeError):
        sun_times(pl.Series([_utc(2025, 1, 1)]))


def test_the_observer_clock_is_the_pipeline_time_zone():
    # NOTE: assets/stats imports nothing from the rest of assets/, so the zone is written twice.
    from assets.schema import TIMEZONE
    from assets.stats import sun

    assert sun.TIMEZONE == TIMEZONE
