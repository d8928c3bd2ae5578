"""out_team_disproportionality on a crafted table whose every number can be checked by hand."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from assets.disproportionality import (
    AnalysisSettings,
    Period,
    as_text,
    choose_population_year,
    compute_team_disproportionality,
    list_periods,
)

# Two teams; residents per team × origin (one stratum: M 15-24).
POP = {("T1", "NL"): 1000, ("T1", "MA"): 500, ("T2", "NL"): 2000, ("T2", "MA"): 100}


def population() -> pl.DataFrame:
    return pl.DataFrame([
        {"year": 2024, "team_code": t, "wijk_code": f"WK0363{t}", "sex": "M",
         "age_band": "15-24", "origin": o, "population": n} for (t, o), n in POP.items()
    ])


def queries() -> pl.LazyFrame:
    rows = []
    # (team where queried, residence team, origin, person_key, how many queries)
    spec = [("T1", "T1", "NL", 1, 20), ("T1", "T1", "MA", 2, 30), ("T1", "T2", "MA", 3, 10),
            ("T1", None, "NL", 4, 5), ("T2", "T2", "NL", 5, 40), ("T2", "T2", "MA", 6, 0)]
    for team, home, origin, key, n in spec:
        rows += [{"query_type": "person", "month": "2025-01", "team_code": team,
                  "residence_team": home, "origin": origin,
                  "origin_group": "Nederland" if origin == "NL" else "Buiten Europa",
                  "sex": "M", "age_band": "15-24", "person_key": key, "is_linked": True}] * n
    rows += [{"query_type": "person", "month": "2025-01", "team_code": "T2", "residence_team": None,
              "origin": None, "origin_group": None, "sex": None, "age_band": None,
              "person_key": None, "is_linked": False}] * 7
    frame = pl.DataFrame(rows, schema_overrides={"person_key": pl.UInt64})
    return pl.concat([frame, frame.with_columns(query_type=pl.lit("plate")).head(0)]).lazy()


MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return compute_team_disproportionality(queries(), population(), months=MONTHS)


@pytest.fixture(scope="module")
def independent() -> pl.DataFrame:
    return compute_team_disproportionality(
        queries(), population(), months=MONTHS,
        settings=AnalysisSettings(interval_method="independent_events"))


RANGE = "2025-01..2025-12"


def cell(table, benchmark, team, origin, query_type="person", period=RANGE) -> dict:
    return table.filter(period=period, query_type=query_type, benchmark=benchmark,
                        team_code=team, origin=origin).row(0, named=True)


def test_periods_are_complete_quarters_years_and_the_range():
    periods = list_periods(["2025-01", "2025-02", "2025-03", "2025-05", "2025-06", "2025-04",
                            "2025-07", "2025-08"])
    assert [(p.label, p.kind) for p in periods] == [
        ("2025-Q1", "quarter"), ("2025-Q2", "quarter"), ("2025-01..2025-08", "range")]
    assert periods[1].months == ("2025-04", "2025-05", "2025-06")
    assert (periods[1].start, periods[1].end) == (date(2025, 4, 1), date(2025, 6, 30))
    labels = [p.label for p in list_periods([f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01"])]
    assert labels == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2025", "2025-01..2026-01"]
    # a missing month breaks its quarter and year, not the range
    assert [p.label for p in list_periods(["2025-01", "2025-03"])] == ["2025-01..2025-03"]


def test_rows_per_period(table):
    assert table["period"].unique(maintain_order=True).to_list() == [
        "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2025", RANGE]
    # every query of the fixture is in January: Q1 holds them all, the other quarters none
    q1, q2 = (cell(table, "team_residents", "T1", "MA", period=p) for p in ("2025-Q1", "2025-Q2"))
    whole = cell(table, "team_residents", "T1", "MA")
    assert q1["query_count"] == whole["query_count"] == 40 and q2["query_count"] == 0
    assert q1["rate_ratio"] == whole["rate_ratio"]
    assert q1["queries_per_1000"] == pytest.approx(whole["queries_per_1000"] * 365 / 90, rel=1e-3)
    year = cell(table, "team_residents", "T1", "MA", period="2025")
    assert {k: v for k, v in year.items() if k != "period"} == {
        k: v for k, v in whole.items() if k != "period"}


def test_a_period_with_the_months_of_another_is_copied_as_if_computed():
    # the range of a one-year run is the calendar year's copy: the same rows as the range
    # computed alone (up to the last bit of queries_per_1000: polars' arithmetic differs in the
    # last bit between frames of other lengths, with the old code too), except the q-values,
    # which count the tests of every period of the run. One person's queries fall in May, so
    # that no quarter has the year's numbers.
    spread = queries().with_columns(month=pl.when(pl.col("person_key") == 5)
                                    .then(pl.lit("2025-05")).otherwise(pl.col("month")))
    table = compute_team_disproportionality(spread, population(), months=MONTHS)
    alone = compute_team_disproportionality(spread, population(), months=MONTHS,
                                            period_kinds=("range",))
    copied = table.filter(period=RANGE)
    assert copied.height == alone.height > 0
    assert_frame_equal(copied.drop("q_value"), alone.drop("q_value"))
    assert table.filter(period=RANGE)["q_value"].equals(table.filter(period="2025")["q_value"])


def test_period_and_population_year():
    period = Period.from_months(["2025-03", "2025-01"])
    assert (period.start, period.end) == (date(2025, 1, 1), date(2025, 3, 31))
    assert choose_population_year([2023, 2024, 2026], period) == 2024
    assert choose_population_year([2026], period) == 2026


def test_team_residents(table):
    ma = cell(table, "team_residents", "T1", "MA")
    assert ma["query_count"] == 40 and ma["person_count"] == 2 and ma["population"] == 500
    assert ma["rate_ratio"] == pytest.approx((40 / 500) / (25 / 1000))
    assert ma["rate_ratio_ci_low"] < ma["rate_ratio"] < ma["rate_ratio_ci_high"]
    assert ma["queries_per_1000"] == pytest.approx(40 / 500 * 1000 / (365 / 365.25))


def test_area_residents(table):
    ma = cell(table, "area_residents", "T1", "MA")
    assert ma["population"] == 600
    assert ma["rate_ratio"] == pytest.approx((40 / 600) / (25 / 3000))


def test_resident_only(table):
    ma = cell(table, "resident_only", "T1", "MA")
    assert ma["query_count"] == 30 and ma["person_count"] == 1
    assert ma["rate_ratio"] == pytest.approx((30 / 500) / (20 / 1000))
    everyone = cell(table, "resident_only", "ALL", "NL")
    assert everyone["query_count"] == 60  # the visitor (person 4) is not a resident


def test_all_rows_and_zero_cells(table):
    assert cell(table, "team_residents", "ALL", "MA")["query_count"] == 40
    zero = cell(table, "team_residents", "T2", "MA")
    assert zero["query_count"] == 0 and zero["rate_ratio"] == 0 and zero["rate_ratio_ci_low"] == 0
    assert zero["rate_ratio_ci_high"] > 0


def test_reference_rows_and_standardised_equals_crude_in_one_stratum(table):
    nl = cell(table, "team_residents", "T1", "NL")
    assert nl["rate_ratio"] == 1 and nl["rate_ratio_ci_low"] is None and nl["q_value"] is None
    ma = cell(table, "team_residents", "T1", "MA")
    assert ma["std_ratio"] == pytest.approx(ma["rate_ratio"])


def test_unlinked_queries_give_bounds(table):
    t2 = cell(table, "team_residents", "T2", "NL")
    assert t2["unlinked_count"] == 7
    ma_all = cell(table, "team_residents", "ALL", "MA")
    n_ma, n_nl, u = 40, 65, 7
    assert ma_all["rate_ratio_bound_low"] == pytest.approx((n_ma / 600) / ((n_nl + u) / 3000))
    assert ma_all["rate_ratio_bound_high"] == pytest.approx(((n_ma + u) / 600) / (n_nl / 3000))


def test_q_values_cover_every_test_of_the_run(table):
    tested = table.filter(pl.col("p_value").is_not_null())
    assert tested["q_value"].null_count() == 0
    assert (tested["q_value"] >= tested["p_value"] - 1e-12).all()


def test_origin_groups():
    grouped = compute_team_disproportionality(
        queries(), population(), months=MONTHS,
        settings=AnalysisSettings(origin_level="group"))
    assert set(grouped["origin"]) == {"Nederland", "Buiten Europa"}
    ref = grouped.filter(period=RANGE, query_type="person", origin="Nederland",
                         benchmark="team_residents", team_code="T1")
    assert ref["rate_ratio"].to_list() == [1.0]


def test_intervals_treat_persons_as_clusters(table, independent):
    # T1, MA: person 2 (resident of T1, 500 MA residents) queried 30 times and person 3
    # (resident of T2, 100) ten times; NL: person 1 (T1, 1000) 20 times, person 4 (a visitor) 5.
    # Variance of a count: Σ (n - pool mean)² over each pool of residents, Σ n² for visitors.
    ma = cell(table, "team_residents", "T1", "MA")
    var_ma = (30**2 - 30**2 / 500) + (10**2 - 10**2 / 100)
    var_nl = (20**2 - 20**2 / 1000) + 5**2
    # Effective counts (Korn-Graubard): each count and its exposure divided by its design effect.
    deff_ma, deff_nl = var_ma / 40, var_nl / 25
    a, b = 40 / deff_ma, 25 / deff_nl
    low_pi = stats.beta.ppf(0.025, a, b + 1)
    high_pi = stats.beta.ppf(0.975, a + 1, b)
    scale = (1000 / deff_nl) / (500 / deff_ma)
    assert ma["interval_method"] == "person_clustered"
    assert ma["rate_ratio_ci_low"] == pytest.approx(low_pi / (1 - low_pi) * scale)
    assert ma["rate_ratio_ci_high"] == pytest.approx(high_pi / (1 - high_pi) * scale)
    # one stratum: Mantel-Haenszel's cluster variance is Σn²/a² + Σm²/b² on the log scale
    se = math.sqrt(var_ma / 40**2 + var_nl / 25**2)
    assert ma["std_ratio_ci_low"] == pytest.approx(ma["std_ratio"] * math.exp(-stats.norm.ppf(0.975) * se))
    # the independent-event intervals are the old, far narrower ones
    plain = cell(independent, "team_residents", "T1", "MA")
    assert plain["interval_method"] == "independent_events"
    assert plain["rate_ratio"] == ma["rate_ratio"] and plain["std_ratio"] == ma["std_ratio"]
    assert plain["rate_ratio_ci_low"] > ma["rate_ratio_ci_low"]
    assert plain["std_ratio_ci_high"] < ma["std_ratio_ci_high"]
    assert plain["p_value"] < ma["p_value"]


def test_person_rate_ratio_counts_people_not_queries(table):
    # T1 queried 2 MA persons (500 residents) and 2 NL persons (1000): 2.0, while the query
    # ratio is 3.2. One stratum: the Mantel-Haenszel risk ratio is the crude one, with the
    # log risk ratio's variance 1/a - 1/N1 + 1/b - 1/N0.
    ma = cell(table, "team_residents", "T1", "MA")
    assert ma["person_rate_ratio"] == pytest.approx(2.0)
    se = math.sqrt(1 / 2 - 1 / 500 + 1 / 2 - 1 / 1000)
    assert ma["person_rate_ratio_ci_high"] == pytest.approx(2.0 * math.exp(stats.norm.ppf(0.975) * se))
    assert cell(table, "team_residents", "T1", "NL")["person_rate_ratio"] == 1.0


@pytest.mark.parametrize("settings", [
    AnalysisSettings(),
    AnalysisSettings(interval_method="independent_events", origin_level="group"),
], ids=["clustered codes", "independent groups"])
def test_count_models_from_the_team_tables_cells_equal_the_models_from_the_rows(settings):
    # NOTE: out_team_tables hands the cells it has grouped for the team tables to the count
    # models (assets/statistics.py); the tables must not depend on which path built them.
    from assets.disproportionality import compute_count_models, count_person_units
    from assets.panels import PanelSpec, simulate_panel

    panel = simulate_panel(PanelSpec(seed=5, queries_per_year=20_000))
    months = panel.spec.month_keys()
    queries = panel.queries.lazy()
    units = count_person_units(queries, panel.population, months=months, settings=settings)
    from_rows = compute_count_models(queries, panel.population, months=months, settings=settings)
    from_cells = compute_count_models(queries, panel.population, months=months,
                                      settings=settings, units=units)
    assert from_rows.height > 0
    assert_frame_equal(from_cells, from_rows, check_exact=True)
    with pytest.raises(ValueError, match="other months"):
        compute_count_models(queries, panel.population, months=months[:6], settings=settings,
                             units=units)


@pytest.mark.parametrize(("most_flags", "threads"), [(1, 2), (2, 1)],
                         ids=["a scan per flag, two themes at a time",
                              "two flags a scan, one theme at a time"])
def test_themes_read_from_shared_cells_equal_each_theme_read_from_its_rows(
        monkeypatch, most_flags, threads):
    # NOTE: compute_thematic_disproportionality groups the persons' cells of several themes in
    # one scan, with their query reasons and hours as keys, and computes the themes of a small
    # group two at a time in threads; every theme's table must be the one its own rows give,
    # however the themes are grouped and wherever they are computed.
    import assets.disproportionality as disproportionality
    from assets.disproportionality import THEME_PERIOD_KINDS, compute_thematic_disproportionality
    from assets.panels import PanelSpec, simulate_panel
    from assets.schema import QUERY_REASONS
    from assets.themes import (HourWindow, MonthWindow, Theme, filter_population,
                               filter_queries, group_by_row_filters, row_filter_flags)

    panel = simulate_panel(PanelSpec(seed=11, queries_per_year=20_000))
    months = panel.spec.month_keys()
    # the panel has no query reason: one from the row number, every seventh row none
    reasons = pl.Series([None if i % 7 == 0 else QUERY_REASONS[i % len(QUERY_REASONS)]
                         for i in range(panel.queries.height)], dtype=pl.String)
    queries = panel.queries.with_columns(query_reason=reasons).lazy()
    teams = tuple(sorted(panel.queries["team_code"].unique().to_list())[:3])

    def theme(name: str, **filters) -> Theme:
        return Theme(name=name, title=name, description=name, **filters)

    themes = (
        theme("traffic", query_reasons=("verkeer",)),
        theme("young_men", sexes=("M",), age_bands=("15-24",)),
        theme("night", hours=HourWindow(22, 6)),
        theme("reports_by_day", query_reasons=("melding", "toezicht"), hours=HourWindow(7, 19)),
        theme("some_teams", teams=teams, query_types=("person",)),
        theme("summer", months=MonthWindow("2025-06", "2025-08")),
        theme("outside", months=MonthWindow("2031-01", "2031-02")),
        theme("night_traffic_men", query_reasons=("verkeer",), hours=HourWindow(22, 6),
              sexes=("M",)),
    )
    monkeypatch.setattr(disproportionality, "THEME_ROW_FLAGS", most_flags)
    monkeypatch.setattr(disproportionality, "side_by_side", lambda rows: threads)
    groups = group_by_row_filters(themes, most_flags)
    assert len(groups) == (4 if most_flags == 1 else 2)
    assert max(len(row_filter_flags(group)) for group in groups) == 2

    shared = compute_thematic_disproportionality(queries, panel.population, themes,
                                                 months=months)
    for one in themes:
        window = [m for m in months if one.months is None
                  or one.months.first <= m <= one.months.last]
        rows = shared.filter(pl.col("theme") == one.name).drop("theme", "theme_fingerprint")
        if not window:
            assert rows.height == 0
            continue
        alone = compute_team_disproportionality(
            filter_queries(one, queries), filter_population(one, panel.population),
            months=window, period_kinds=THEME_PERIOD_KINDS)
        if one.teams is not None:
            alone = alone.filter(pl.col("team_code").is_in(list(one.teams)))
        assert alone["query_count"].sum() > 0, one.name
        assert_frame_equal(rows, alone, check_exact=True)
    assert shared["theme"].unique(maintain_order=True).to_list() == [
        t.name for t in themes if t.name != "outside"]


def test_person_cells_grouped_month_by_month_lose_no_row_of_an_unlisted_month():
    # NOTE: count_person_cells groups each listed month on its own; the rows of any other
    # month are grouped too, so the cells never drop a row silently.
    from assets.disproportionality import count_person_cells
    from assets.panels import PanelSpec, simulate_panel

    panel = simulate_panel(PanelSpec(seed=3, queries_per_year=5_000))
    queries = panel.queries.lazy()
    months = panel.spec.month_keys()
    keys = ["query_type", "team_code", "residence_team", "origin", "sex", "age_band", "month",
            "person_key"]
    every = count_person_cells(queries, AnalysisSettings(), months=months)
    assert every["query_count"].sum() == panel.queries.height
    for listed in (months[:1], months[::-1], []):
        cells = count_person_cells(queries, AnalysisSettings(), months=listed)
        assert_frame_equal(as_text(cells).sort(keys, nulls_last=True),
                           as_text(every).sort(keys, nulls_last=True), check_exact=True)


def test_the_persons_scopes_of_both_query_types_are_those_of_each_type_alone():
    # NOTE: `_scope_cells` groups one query type at a time, to hold less at once (at 50M
    # queries the team tables peak 4.01 → 3.59 GB); every key holds the query type, so the cells
    # of both types together must give the rows each type gives alone.
    from assets.disproportionality import count_person_units
    from assets.panels import PanelSpec, simulate_panel

    panel = simulate_panel(PanelSpec(seed=7, queries_per_year=20_000))
    months = panel.spec.month_keys()
    # NOTE: a panel has person queries only; every third row again as a plate query gives
    # the same persons in both types.
    queries = pl.concat([
        panel.queries,
        panel.queries.gather_every(3).with_columns(query_type=pl.lit("plate")),
    ]).lazy()
    settings = AnalysisSettings()

    def units_of(frame: pl.LazyFrame):
        return count_person_units(frame, panel.population, months=months, settings=settings)

    both = units_of(queries)
    alone = [units_of(queries.filter(pl.col("query_type") == query_type))
             for query_type in ("person", "plate")]
    assert set(both.scoped["query_type"].cast(pl.String).unique()) == {"person", "plate"}
    for part in ("scoped", "unlinked", "cross"):
        whole = as_text(getattr(both, part))
        parts = as_text(pl.concat([getattr(units, part) for units in alone]))
        assert whole.height > 0
        assert_frame_equal(whole.sort(whole.columns), parts.sort(parts.columns),
                           check_exact=True)
