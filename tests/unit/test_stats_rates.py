"""Rates and rate ratios: published results (OPP Philadelphia, OPP 2017 counties, Rothman 2008),
zero-cell conventions, errors, and properties of the exact conditional interval."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from assets.stats.rates import (
    METHOD_EXACT,
    METHOD_REFERENCE,
    METHOD_ZERO_EXPOSURE,
    RATE_RATIO_COLUMNS,
    compute_disparity_index,
    compute_rate,
    compute_rate_ratios,
    rate_ratio,
    rate_ratio_table,
)
from assets.stats.standardise import (
    METHOD_MH,
    METHOD_SIR,
    garwood_interval,
    mantel_haenszel_rate_ratio,
    standardised_incidence_ratio,
)

DATA = Path(__file__).resolve().parents[1] / "data"

# Rothman, Greenland & Lash (2008), Modern Epidemiology 3rd ed., Table 15-2: deaths and
# person-years of smokers and non-smokers by age (British doctors). Reference values of the
# Mantel–Haenszel rate ratio (90% CI) as reproduced by metafor's test suite
# (wviechtb/metafor tests/testthat/test_analysis_example_rothman2008.r): 1.4247 (1.1944, 1.6994);
# crude 1.7198.
ROTHMAN_AGES = ("35-44", "45-54", "55-64", "65-74", "75-84")
ROTHMAN_SMOKER_DEATHS = (32, 104, 206, 186, 102)
ROTHMAN_SMOKER_YEARS = (52407, 43248, 28612, 12663, 5317)
ROTHMAN_NONSMOKER_DEATHS = (2, 12, 28, 28, 31)
ROTHMAN_NONSMOKER_YEARS = (18790, 10673, 5710, 2585, 1462)


def _rothman_frame() -> pl.DataFrame:
    rows = []
    for i, age in enumerate(ROTHMAN_AGES):
        rows.append(("smoker", age, ROTHMAN_SMOKER_DEATHS[i], float(ROTHMAN_SMOKER_YEARS[i])))
        rows.append(("non", age, ROTHMAN_NONSMOKER_DEATHS[i], float(ROTHMAN_NONSMOKER_YEARS[i])))
    return pl.DataFrame(
        rows, schema={"smoking": pl.String, "age": pl.String, "deaths": pl.Int64, "years": pl.Float64},
        orient="row",
    )


# --------------------------------------------------------------------------------------------
# Published: OPP tutorial, Philadelphia 2017


@pytest.fixture(scope="module")
def philadelphia() -> dict[str, tuple[int, int]]:
    table = pl.read_csv(DATA / "opp_philadelphia_2017" / "published_tables.csv")
    return {
        row["subject_race"]: (row["stops_2017_vehicular"], row["population_2017"])
        for row in table.iter_rows(named=True)
    }


@pytest.mark.parametrize(
    ("race", "ratio", "ci_low", "ci_high"),
    [("black", 3.4074, 3.3744, 3.4407), ("hispanic", 1.4629, 1.4422, 1.4840)],
)
def test_philadelphia_rate_ratios_match_published(philadelphia, race, ratio, ci_low, ci_high):
    stops, population = philadelphia[race]
    white_stops, white_population = philadelphia["white"]
    result = rate_ratio(stops, population, white_stops, white_population)
    assert round(result.ratio, 4) == ratio
    assert round(result.ci_low, 4) == ci_low
    assert round(result.ci_high, 4) == ci_high
    assert result.method == METHOD_EXACT
    assert result.p_value < 1e-10


def test_philadelphia_table_matches_scalar(philadelphia):
    frame = pl.DataFrame(
        {
            "race": list(philadelphia),
            "stops": [v[0] for v in philadelphia.values()],
            "population": [v[1] for v in philadelphia.values()],
        }
    )
    table = rate_ratio_table(
        frame, count="stops", exposure="population", group="race", reference="white"
    )
    assert table.columns == ["race", *RATE_RATIO_COLUMNS]
    assert table["race"].to_list() == sorted(philadelphia)
    black = table.filter(pl.col("race") == "black").row(0, named=True)
    assert round(black["ratio"], 4) == 3.4074
    assert round(black["ci_low"], 4) == 3.3744
    assert round(black["ci_high"], 4) == 3.4407
    white = table.filter(pl.col("race") == "white").row(0, named=True)
    assert white["ratio"] == 1.0 and white["ci_low"] is None and white["method"] == METHOD_REFERENCE
    assert white["count"] == white["ref_count"] == philadelphia["white"][0]


# --------------------------------------------------------------------------------------------
# Published: Open Policing Project 2017, county stop / search / hit rates


def _opp_matched(figure: str, numerator: str, denominator: str, published: str) -> pl.DataFrame:
    """Rows of a fig*.csv whose FIPS county and race match a published cell of combined_data."""
    folder = DATA / "openpolicing_2017"
    counties = pl.read_csv(folder / "county_index.csv", encoding="latin-1", infer_schema=False)
    combined = pl.read_csv(folder / "combined_data.csv", null_values="NA", infer_schema_length=None)
    counts = pl.read_csv(folder / figure, schema_overrides={"location": pl.String})
    rated = compute_rate(counts, count=numerator, exposure=denominator, output="rate")
    return (
        rated.with_columns(pl.col("driver_race").str.strip_suffix(" drivers").alias("race"))
        .join(
            counties.select(
                "fips", "state", pl.col("county_name").str.to_uppercase().alias("county")
            ),
            left_on="location",
            right_on="fips",
            how="inner",
        )
        .join(
            combined.select("location", "state", pl.col("driver_race").alias("race"), published),
            left_on=["county", "state", "race"],
            right_on=["location", "state", "race"],
            how="inner",
        )
        .filter(pl.col(published).is_not_null())
    )


@pytest.mark.parametrize(
    ("figure", "numerator", "denominator", "published", "cells"),
    [
        ("fig2_stop_rate_county.csv", "n_stops", "county_population", "stop_rate", 2359),
        ("fig3a_search_rate_county.csv", "n_searches", "n_stops", "search_rate", 2334),
        ("fig4a_hit_rate_county.csv", "n_hits", "n_searches", "hit_rate", 564),
    ],
)
def test_opp_county_rates_match_published(figure, numerator, denominator, published, cells):
    matched = _opp_matched(figure, numerator, denominator, published)
    assert matched.height == cells
    differs = matched.filter((pl.col("rate").round(3) - pl.col(published)).abs() > 1e-9)
    assert differs.height == 0


def test_opp_black_stopped_more_than_white_in_844_percent_of_locations():
    counts = pl.read_csv(
        DATA / "openpolicing_2017" / "fig2_stop_rate_county.csv",
        schema_overrides={"location": pl.String},
    )
    table = rate_ratio_table(
        counts,
        count="n_stops",
        exposure="county_population",
        group="driver_race",
        reference="White drivers",
        by="location",
    )
    locations = table["location"].n_unique()
    black = table.filter(pl.col("driver_race") == "Black drivers")
    share = black.filter(pl.col("ratio") > 1).height / locations
    assert locations == 861
    assert black.height == 859  # two locations report no Black drivers
    assert round(100 * share, 1) == 84.4


# --------------------------------------------------------------------------------------------
# Published: Mantel–Haenszel (Rothman 2008, Table 15-2)


def test_mantel_haenszel_matches_rothman_table_15_2():
    table = rate_ratio_table(
        _rothman_frame(),
        count="deaths",
        exposure="years",
        group="smoking",
        reference="non",
        strata="age",
        level=0.90,
    )
    smoker = table.filter(pl.col("smoking") == "smoker").row(0, named=True)
    assert smoker["method"] == METHOD_MH
    assert smoker["ratio"] == pytest.approx(1.4247, abs=5e-5)
    assert smoker["ci_low"] == pytest.approx(1.1944, abs=5e-5)
    assert smoker["ci_high"] == pytest.approx(1.6994, abs=5e-5)
    assert smoker["count"] == sum(ROTHMAN_SMOKER_DEATHS)
    assert smoker["exposure"] == sum(ROTHMAN_SMOKER_YEARS)
    assert smoker["ref_count"] == sum(ROTHMAN_NONSMOKER_DEATHS)
    crude = rate_ratio_table(
        _rothman_frame(), count="deaths", exposure="years", group="smoking", reference="non"
    ).filter(pl.col("smoking") == "smoker")
    assert crude["ratio"].item() == pytest.approx(1.7198, abs=5e-5)


def test_mantel_haenszel_scalar_equals_table():
    scalar = mantel_haenszel_rate_ratio(
        ROTHMAN_SMOKER_DEATHS, ROTHMAN_SMOKER_YEARS, ROTHMAN_NONSMOKER_DEATHS,
        ROTHMAN_NONSMOKER_YEARS, level=0.90,
    )
    table = rate_ratio_table(
        _rothman_frame(), count="deaths", exposure="years", group="smoking",
        reference="non", strata="age", level=0.90,
    ).filter(pl.col("smoking") == "smoker").row(0, named=True)
    # NOTE: the table sums its terms in fixed point (assets.stats.exact): equal to ~1e-8.
    for key in ("ratio", "ci_low", "ci_high", "p_value"):
        assert table[key] == pytest.approx(getattr(scalar, key), rel=1e-7)
    # the p-value is the Wald test of the same z as the interval
    z = math.log(scalar.ratio) / ((math.log(scalar.ci_high) - math.log(scalar.ratio)) / stats.norm.ppf(0.95))
    assert scalar.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_mantel_haenszel_drops_strata_with_one_sided_exposure():
    base = _rothman_frame()
    extra = pl.DataFrame(
        {
            "smoking": ["smoker", "non", "smoker", "non"],
            "age": ["85+", "85+", "95+", "95+"],
            "deaths": [7, 3, 0, 0],
            "years": [0.0, 100.0, 0.0, 0.0],
        }
    )
    padded = pl.concat([base, extra])
    kwargs = dict(count="deaths", exposure="years", group="smoking", reference="non", strata="age")
    plain = rate_ratio_table(base, **kwargs).filter(pl.col("smoking") == "smoker").row(0, named=True)
    with_extra = rate_ratio_table(padded, **kwargs).filter(pl.col("smoking") == "smoker").row(0, named=True)
    assert with_extra["ratio"] == pytest.approx(plain["ratio"], rel=1e-12)
    assert with_extra["ci_high"] == pytest.approx(plain["ci_high"], rel=1e-12)
    # totals still account for every event, including those of dropped strata
    assert with_extra["count"] == plain["count"] + 7
    assert with_extra["ref_count"] == plain["ref_count"] + 3


def test_mantel_haenszel_zero_numerator_gives_ratio_zero_without_interval():
    frame = pl.DataFrame(
        {
            "g": ["a", "ref", "a", "ref", "b", "b"],
            "s": ["x", "x", "y", "y", "x", "y"],
            "n": [0, 10, 0, 20, 5, 5],
            "t": [100.0, 100.0, 50.0, 100.0, 10.0, 10.0],
        }
    )
    table = rate_ratio_table(frame, count="n", exposure="t", group="g", reference="ref", strata="s")
    a = table.filter(pl.col("g") == "a").row(0, named=True)
    assert a["ratio"] == 0.0
    assert a["ci_low"] is None and a["ci_high"] is None and a["p_value"] is None
    assert a["method"] == METHOD_MH
    b = table.filter(pl.col("g") == "b").row(0, named=True)
    assert b["ratio"] > 1 and b["ci_low"] < b["ratio"] < b["ci_high"]


def test_mantel_haenszel_equals_crude_with_one_stratum_point_estimate():
    frame = pl.DataFrame({"g": ["a", "r"], "s": ["x", "x"], "n": [30, 20], "t": [1000.0, 2000.0]})
    mh = rate_ratio_table(frame, count="n", exposure="t", group="g", reference="r", strata="s")
    assert mh.filter(pl.col("g") == "a")["ratio"].item() == pytest.approx(3.0)


# --------------------------------------------------------------------------------------------
# Indirect standardisation


def test_garwood_interval_known_values():
    low, high = garwood_interval(np.array([0.0, 10.0]))
    assert low[0] == 0.0 and high[0] == pytest.approx(3.6889, abs=1e-4)
    assert low[1] == pytest.approx(4.7954, abs=1e-4) and high[1] == pytest.approx(18.3904, abs=1e-4)


def test_standardised_incidence_ratio_by_hand():
    frame = pl.DataFrame(
        {
            "team": ["T"] * 6,
            "origin": ["NL", "NL", "NL", "MA", "MA", "MA"],
            "band": ["young", "mid", "old", "young", "mid", "old"],
            "queries": [100, 50, 10, 40, 5, 2],
            "residents": [1000.0, 1000.0, 1000.0, 200.0, 100.0, 0.0],
        }
    )
    table = standardised_incidence_ratio(
        frame, count="queries", exposure="residents", group="origin", reference="NL",
        strata="band", by="team",
    )
    ma = table.filter(pl.col("origin") == "MA").row(0, named=True)
    expected = 200 * 0.1 + 100 * 0.05 + 0 * 0.01
    assert ma["expected"] == pytest.approx(expected)
    assert ma["count"] == 47  # observed, every stratum has a reference rate
    assert ma["ratio"] == pytest.approx(47 / expected)
    low, high = garwood_interval(np.array([47.0]))
    assert ma["ci_low"] == pytest.approx(low[0] / expected)
    assert ma["ci_high"] == pytest.approx(high[0] / expected)
    assert ma["method"] == METHOD_SIR and 0 < ma["p_value"] < 0.05
    nl = table.filter(pl.col("origin") == "NL").row(0, named=True)
    assert nl["ratio"] == 1.0 and nl["expected"] == pytest.approx(160) and nl["method"] == METHOD_REFERENCE


def test_standardised_incidence_ratio_drops_strata_without_reference_rate():
    frame = pl.DataFrame(
        {
            "origin": ["NL", "NL", "MA", "MA"],
            "band": ["a", "b", "a", "b"],
            "n": [10, 0, 4, 9],
            "p": [100.0, 0.0, 20.0, 30.0],
        }
    )
    table = standardised_incidence_ratio(
        frame, count="n", exposure="p", group="origin", reference="NL", strata="band"
    )
    ma = table.filter(pl.col("origin") == "MA").row(0, named=True)
    assert ma["count"] == 4 and ma["expected"] == pytest.approx(2.0)


# --------------------------------------------------------------------------------------------
# Zero-cell conventions and errors


def test_zero_count_gives_one_sided_upper_limit_at_half_alpha():
    result = rate_ratio(0, 100.0, 12, 300.0, level=0.95)
    assert result.ratio == 0.0 and result.ci_low == 0.0
    # scipy's two-sided Clopper–Pearson at k = 0 is the one-sided bound at (1 + level)/2
    pi_high = 1 - 0.025 ** (1 / 12)
    assert result.ci_high == pytest.approx(pi_high / (1 - pi_high) * 300.0 / 100.0, rel=1e-9)
    assert 0 < result.p_value < 1


def test_zero_reference_count_gives_infinite_ratio():
    result = rate_ratio(7, 100.0, 0, 300.0)
    assert result.ratio == math.inf and result.ci_high == math.inf
    assert 0 < result.ci_low < math.inf


def test_no_events_at_all_gives_undefined_ratio_not_an_error():
    result = rate_ratio(0, 100.0, 0, 300.0)
    assert math.isnan(result.ratio)
    assert (result.ci_low, result.ci_high, result.p_value) == (0.0, math.inf, 1.0)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf, None])
def test_missing_or_zero_exposure_is_an_error(bad):
    with pytest.raises(ValueError, match="denominator"):
        rate_ratio(3, bad, 4, 100.0)
    with pytest.raises(ValueError, match="denominator"):
        rate_ratio(3, 100.0, 4, bad)


@pytest.mark.parametrize("bad", [-1, 2.5, math.nan])
def test_counts_must_be_whole_non_negative_numbers(bad):
    with pytest.raises(ValueError, match="whole number"):
        rate_ratio(bad, 10.0, 4, 100.0)


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_level_must_be_a_proportion(level):
    with pytest.raises(ValueError, match="level"):
        rate_ratio(3, 10.0, 4, 100.0, level=level)


def test_vectorised_refuses_zero_exposure():
    with pytest.raises(ValueError, match="denominator"):
        compute_rate_ratios([1, 2], [10.0, 0.0], [3, 4], [10.0, 10.0])


def _table_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "team": ["A", "A", "A", "A", "B", "B", "B"],
            "origin": ["NL", "NL", "MA", "TR", "NL", "MA", "TR"],
            "queries": [10, 5, 12, 0, 40, 30, 3],
            "residents": [500.0, 500.0, 300.0, 200.0, 2000.0, 600.0, 0.0],
        }
    )


def test_table_sums_rows_and_matches_scalar_per_cell():
    table = rate_ratio_table(
        _table_frame().filter(pl.col("residents") > 0),
        count="queries", exposure="residents", group="origin", reference="NL", by="team",
    )
    assert table.select("team", "origin").rows() == [
        ("A", "MA"), ("A", "NL"), ("A", "TR"), ("B", "MA"), ("B", "NL"),
    ]
    a_ma = table.filter((pl.col("team") == "A") & (pl.col("origin") == "MA")).row(0, named=True)
    scalar = rate_ratio(12, 300.0, 15, 1000.0)
    assert (a_ma["ref_count"], a_ma["ref_exposure"]) == (15, 1000.0)
    for key in ("ratio", "ci_low", "ci_high", "p_value"):
        assert a_ma[key] == pytest.approx(getattr(scalar, key), rel=1e-7)
    a_tr = table.filter((pl.col("team") == "A") & (pl.col("origin") == "TR")).row(0, named=True)
    assert a_tr["ratio"] == 0.0 and a_tr["ci_low"] == 0.0 and a_tr["ci_high"] > 0


def test_table_zero_exposure_raises_or_is_left_empty():
    kwargs = dict(count="queries", exposure="residents", group="origin", reference="NL", by="team")
    with pytest.raises(ValueError, match="zero total exposure"):
        rate_ratio_table(_table_frame(), **kwargs)
    table = rate_ratio_table(_table_frame(), zero_exposure="null", **kwargs)
    b_tr = table.filter((pl.col("team") == "B") & (pl.col("origin") == "TR")).row(0, named=True)
    assert b_tr["ratio"] is None and b_tr["ci_low"] is None and b_tr["method"] == METHOD_ZERO_EXPOSURE
    assert b_tr["count"] == 3  # the events stay accounted for
    assert table.height == 6


def test_table_refuses_missing_reference_and_nulls():
    frame = _table_frame().filter(~((pl.col("team") == "B") & (pl.col("origin") == "NL")))
    with pytest.raises(ValueError, match="reference group 'NL' is absent from 1"):
        rate_ratio_table(
            frame.filter(pl.col("residents") > 0),
            count="queries", exposure="residents", group="origin", reference="NL", by="team",
        )
    with_null = _table_frame().with_columns(
        pl.when(pl.col("origin") == "MA").then(None).otherwise(pl.col("residents")).alias("residents")
    )
    with pytest.raises(ValueError, match="null values"):
        rate_ratio_table(
            with_null, count="queries", exposure="residents", group="origin", reference="NL", by="team"
        )


def test_table_refuses_nan_exposure_and_fractional_counts():
    kwargs = dict(count="queries", exposure="residents", group="origin", reference="NL")
    frame = pl.DataFrame({"origin": ["NL", "MA"], "queries": [3, 4], "residents": [10.0, math.nan]})
    with pytest.raises(ValueError, match="non-finite"):
        rate_ratio_table(frame, **kwargs)
    frame = pl.DataFrame({"origin": ["NL", "MA"], "queries": [3.0, 4.5], "residents": [10.0, 20.0]})
    with pytest.raises(ValueError, match="whole numbers"):
        rate_ratio_table(frame, **kwargs)


def test_compute_rate_per_1000_per_year_and_missing_denominator():
    frame = pl.DataFrame({"queries": [30, 0], "residents": [2000, 500]})
    rated = compute_rate(frame, count="queries", exposure="residents", output="queries_per_1000",
                         per=1000, years=0.5)
    assert rated["queries_per_1000"].to_list() == [30.0, 0.0]
    with pytest.raises(ValueError, match="zero"):
        compute_rate(pl.DataFrame({"q": [1], "p": [0]}), count="q", exposure="p")
    assert compute_rate(pl.DataFrame({"q": [1], "p": [0]}), count="q", exposure="p",
                        zero_exposure="null")["rate"].item() is None
    with pytest.raises(ValueError, match="null"):
        compute_rate(pl.DataFrame({"q": [1], "p": [None]}, schema={"q": pl.Int64, "p": pl.Int64}),
                     count="q", exposure="p")


def test_disparity_index_is_share_of_queries_over_share_of_residents():
    frame = pl.DataFrame({"origin": ["NL", "MA"], "queries": [60, 40], "residents": [800, 200]})
    di = compute_disparity_index(frame, count="queries", exposure="residents", group="origin")
    assert di.filter(pl.col("origin") == "MA")["disparity_index"].item() == pytest.approx(2.0)
    assert di.filter(pl.col("origin") == "NL")["disparity_index"].item() == pytest.approx(0.75)


# --------------------------------------------------------------------------------------------
# Properties (hypothesis)

counts = st.integers(min_value=0, max_value=100_000)
positive_counts = st.integers(min_value=1, max_value=100_000)
exposures = st.floats(min_value=1.0, max_value=1e7, allow_nan=False, allow_infinity=False)
levels = st.floats(min_value=0.5, max_value=0.999)


@settings(max_examples=150, deadline=None)
@given(positive_counts, exposures, positive_counts, exposures, levels)
def test_interval_contains_ratio_for_positive_counts(a, e1, b, e0, level):
    result = rate_ratio(a, e1, b, e0, level=level)
    assert result.ci_low <= result.ratio <= result.ci_high
    assert result.ci_low > 0 and math.isfinite(result.ci_high)


@settings(max_examples=100, deadline=None)
@given(counts, exposures, counts, exposures, levels, levels)
def test_interval_widens_as_level_grows(a, e1, b, e0, level_1, level_2):
    narrow_level, wide_level = sorted((level_1, level_2))
    narrow = rate_ratio(a, e1, b, e0, level=narrow_level)
    wide = rate_ratio(a, e1, b, e0, level=wide_level)
    assert wide.ci_low <= narrow.ci_low * (1 + 1e-9)
    assert wide.ci_high >= narrow.ci_high * (1 - 1e-9)


@settings(max_examples=150, deadline=None)
@given(positive_counts, exposures, positive_counts, exposures, levels)
def test_swapping_group_and_reference_inverts_ratio_and_interval(a, e1, b, e0, level):
    forward = rate_ratio(a, e1, b, e0, level=level)
    backward = rate_ratio(b, e0, a, e1, level=level)
    assert backward.ratio == pytest.approx(1 / forward.ratio, rel=1e-12)
    assert backward.ci_low == pytest.approx(1 / forward.ci_high, rel=1e-5)
    assert backward.ci_high == pytest.approx(1 / forward.ci_low, rel=1e-5)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-6, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(counts, exposures, counts, exposures), min_size=1, max_size=8),
    levels,
)
def test_vectorised_equals_scalar(rows, level):
    a, e1, b, e0 = (list(column) for column in zip(*rows, strict=True))
    vectorised = compute_rate_ratios(a, e1, b, e0, level=level)
    for i, row in enumerate(rows):
        scalar = rate_ratio(*row, level=level)
        got = vectorised.row(i, named=True)
        for key in ("ratio", "ci_low", "ci_high"):
            expected = getattr(scalar, key)
            if math.isnan(expected):
                assert math.isnan(got[key])
            else:
                # scipy's brentq stops at 2e-12 absolute on π; beta.ppf is exact to ~1e-15
                assert got[key] == pytest.approx(expected, rel=1e-5, abs=1e-10)
        assert got["p_value"] == pytest.approx(scalar.p_value, rel=1e-9, abs=1e-12)


def test_vectorised_equals_scalar_on_many_random_rows():
    rng = np.random.default_rng(20261128)
    n = 2_000
    a = rng.integers(0, 5_000, n)
    b = rng.integers(0, 50_000, n)
    e1 = rng.uniform(1, 1e5, n)
    e0 = rng.uniform(1, 1e6, n)
    vectorised = compute_rate_ratios(a, e1, b, e0)
    for i in range(0, n, 10):
        scalar = rate_ratio(int(a[i]), e1[i], int(b[i]), e0[i])
        row = vectorised.row(i, named=True)
        assert row["ci_low"] == pytest.approx(scalar.ci_low, rel=1e-6, abs=1e-12)
        assert row["ci_high"] == pytest.approx(scalar.ci_high, rel=1e-6)
        assert row["p_value"] == pytest.approx(scalar.p_value, rel=1e-9, abs=1e-12)
