"""Simulation with known truth (METHODS.md §2, §10): standardisation removes age-sex confounding
that biases the crude ratio, and the 95% intervals cover the truth about 95% of the time."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from assets.schema import AGE_BANDS, SEXES
from assets.stats.models import fit_count_model
from assets.stats.rates import compute_rate_ratios, rate_ratio_table
from assets.stats.standardise import standardised_incidence_ratio

SEED = 20261128
STRATA = list(itertools.product(SEXES, AGE_BANDS))
# Query rate per resident-year by age band (young adults far above children and the elderly)
# and a sex multiplier (men far above women): the confounders.
AGE_RATE = dict(zip(AGE_BANDS, (0.002, 0.12, 0.05, 0.012, 0.003), strict=True))
SEX_FACTOR = {"M": 2.0, "V": 0.4}
# Age distribution of each origin group (share of residents per age band, same for both sexes):
# the reference is old, MA is much younger, TR somewhat younger, EU like the reference.
AGE_MIX = {
    "NL": (0.15, 0.10, 0.25, 0.28, 0.22),
    "EU": (0.15, 0.10, 0.27, 0.28, 0.20),
    "TR": (0.22, 0.18, 0.32, 0.20, 0.08),
    "MA": (0.30, 0.30, 0.28, 0.10, 0.02),
}
TRUE_RATIO = {"EU": 1.0, "TR": 1.5, "MA": 2.5}


def _population(rng: np.random.Generator, teams: int) -> pl.DataFrame:
    """One row per team × origin × sex × age band with residents and expected queries."""
    rows = []
    for team in range(teams):
        sizes = {"NL": rng.integers(40_000, 80_000), "EU": rng.integers(8_000, 15_000),
                 "TR": rng.integers(8_000, 15_000), "MA": rng.integers(8_000, 15_000)}
        for origin, size in sizes.items():
            for (sex, band), share in zip(
                STRATA, [s / 2 for s in AGE_MIX[origin]] * 2, strict=True
            ):
                residents = float(round(size * share))
                rate = AGE_RATE[band] * SEX_FACTOR[sex] * TRUE_RATIO.get(origin, 1.0)
                rows.append((f"T{team:02d}", origin, sex, band, residents, rate * residents))
    return pl.DataFrame(
        rows,
        schema={"team_code": pl.String, "origin": pl.String, "sex": pl.String,
                "age_band": pl.String, "residents": pl.Float64, "mean_queries": pl.Float64},
        orient="row",
    )


@pytest.fixture(scope="module")
def simulated() -> pl.DataFrame:
    rng = np.random.default_rng(SEED)
    population = _population(rng, teams=8)
    return population.with_columns(
        pl.Series("queries", rng.poisson(population["mean_queries"].to_numpy()), dtype=pl.Int64)
    )


def _log_errors(table: pl.DataFrame) -> pl.DataFrame:
    truth = pl.DataFrame({"origin": list(TRUE_RATIO), "true_ratio": list(TRUE_RATIO.values())})
    return table.join(truth, on="origin").with_columns(
        (pl.col("ratio").log() - pl.col("true_ratio").log()).alias("log_error")
    )


def test_mantel_haenszel_recovers_truth_where_crude_is_biased(simulated):
    kwargs = dict(count="queries", exposure="residents", group="origin", reference="NL", by="team_code")
    standardised = _log_errors(rate_ratio_table(simulated, strata=("sex", "age_band"), **kwargs))
    crude = _log_errors(rate_ratio_table(simulated, **kwargs))
    assert standardised.height == crude.height == 8 * 3
    assert standardised["log_error"].abs().median() < 0.1
    # the young group's crude ratio is pushed far above the truth by its age structure
    crude_ma = crude.filter(pl.col("origin") == "MA")["log_error"]
    assert crude_ma.min() > 0.2
    assert crude_ma.median() > 0.4
    # the group with the reference's age structure is barely confounded
    assert crude.filter(pl.col("origin") == "EU")["log_error"].abs().median() < 0.1


def test_indirect_standardisation_and_poisson_model_recover_truth(simulated):
    sir = _log_errors(
        standardised_incidence_ratio(
            simulated, count="queries", exposure="residents", group="origin", reference="NL",
            strata=("sex", "age_band"), by="team_code",
        )
    )
    assert sir["log_error"].abs().median() < 0.1
    model = fit_count_model(
        simulated, count="queries", exposure="residents",
        factors=["origin", "team_code", "sex", "age_band"], family="poisson",
        references={"origin": "NL"},
    )
    for origin, truth in TRUE_RATIO.items():
        estimate = model.coefficients.filter(
            (pl.col("term") == "origin") & (pl.col("level") == origin)
        )["estimate"].item()
        assert abs(estimate - np.log(truth)) < 0.05


def test_exact_crude_interval_covers_truth_in_about_95_percent():
    rng = np.random.default_rng(SEED + 1)
    repetitions = 400
    true_ratio = 1.5
    exposure, ref_exposure = 2_000.0, 10_000.0
    ref_rate = 0.01
    count = rng.poisson(true_ratio * ref_rate * exposure, repetitions)
    ref_count = rng.poisson(ref_rate * ref_exposure, repetitions)
    intervals = compute_rate_ratios(count, exposure, ref_count, ref_exposure, level=0.95)
    covered = intervals.select(
        ((pl.col("ci_low") <= true_ratio) & (true_ratio <= pl.col("ci_high"))).mean()
    ).item()
    assert 0.93 <= covered <= 0.97


def test_mantel_haenszel_interval_covers_truth_in_about_95_percent():
    rng = np.random.default_rng(SEED + 2)
    repetitions = 400
    true_ratio = 2.5
    # one team's NL and MA strata at a tenth of the size: a few to a few hundred queries each
    base = (
        _population(np.random.default_rng(SEED + 3), teams=1)
        .filter(pl.col("origin").is_in(["NL", "MA"]))
        .with_columns(pl.col("residents") / 10, pl.col("mean_queries") / 10)
    )
    reps = pl.DataFrame({"rep": np.arange(repetitions)}).join(base, how="cross")
    reps = reps.with_columns(
        pl.Series("queries", rng.poisson(reps["mean_queries"].to_numpy()), dtype=pl.Int64)
    )
    table = rate_ratio_table(
        reps, count="queries", exposure="residents", group="origin", reference="NL",
        by="rep", strata=("sex", "age_band"),
    ).filter(pl.col("origin") == "MA")
    assert table.height == repetitions
    covered = table.select(
        ((pl.col("ci_low") <= true_ratio) & (true_ratio <= pl.col("ci_high"))).mean()
    ).item()
    assert 0.93 <= covered <= 0.97
    assert abs(np.log(table["ratio"].to_numpy()).mean() - np.log(true_ratio)) < 0.05
