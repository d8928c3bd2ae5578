"""Count models reproduce the published stop-and-frisk results (Gelman, Fagan & Kiss 2007)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.stats.models import (
    FAMILIES,
    INTERCEPT,
    exponentiate_coefficients,
    fit_count_model,
    fit_count_models,
)

FRISK = Path(__file__).resolve().parents[1] / "data" / "frisk" / "frisk_with_noise.txt"
TOL = 1e-3


@pytest.fixture(scope="module")
def frisk() -> pl.DataFrame:
    """225 precinct × eth rows: stops and past arrests summed over the 4 crime types."""
    raw = pl.read_csv(FRISK, separator=" ")
    assert raw.height == 900
    aggregated = (
        raw.group_by("precinct", "eth")
        .agg(pl.col("stops").sum(), pl.col("past.arrests").sum())
        .sort("precinct", "eth")
    )
    assert aggregated.height == 225
    return aggregated


def _coef(result, term: str, level: str | None = None) -> dict:
    rows = result.coefficients.filter(
        (pl.col("term") == term)
        & (pl.col("level").is_null() if level is None else pl.col("level") == level)
    )
    assert rows.height == 1
    return rows.row(0, named=True)


def test_poisson_eth_only(frisk):
    result = fit_count_model(
        frisk, count="stops", exposure="past.arrests", factors=["eth"], family="poisson"
    )
    eth2, eth3 = _coef(result, "eth", "2"), _coef(result, "eth", "3")
    assert eth2["estimate"] == pytest.approx(0.0702, abs=TOL)
    assert eth2["std_error"] == pytest.approx(0.0061, abs=TOL)
    assert eth3["estimate"] == pytest.approx(-0.1616, abs=TOL)
    assert eth3["std_error"] == pytest.approx(0.0086, abs=TOL)
    assert result.deviance == pytest.approx(45437.4, abs=0.05)
    assert result.null_deviance == pytest.approx(46120.3, abs=0.05)
    assert result.references == {"eth": "1"}
    assert result.alpha is None and result.family == "poisson"


def test_poisson_eth_and_precinct(frisk):
    result = fit_count_model(
        frisk, count="stops", exposure="past.arrests", factors=["eth", "precinct"], family="poisson"
    )
    assert _coef(result, INTERCEPT)["estimate"] == pytest.approx(-1.3789, abs=TOL)
    eth2, eth3 = _coef(result, "eth", "2"), _coef(result, "eth", "3")
    assert eth2["estimate"] == pytest.approx(0.0102, abs=TOL)
    assert eth2["std_error"] == pytest.approx(0.0068, abs=TOL)
    assert eth3["estimate"] == pytest.approx(-0.4190, abs=TOL)
    assert eth3["std_error"] == pytest.approx(0.0094, abs=TOL)
    assert result.deviance == pytest.approx(3427.1, abs=0.05)
    assert result.df_resid == 148
    assert result.dispersion == pytest.approx(21.885, abs=TOL)
    # numeric factor levels sort numerically: precinct 1 is the reference, 2..75 follow
    levels = result.coefficients.filter(pl.col("term") == "precinct")["level"].to_list()
    assert levels == [str(k) for k in range(2, 76)]
    assert result.coefficients.height == 1 + 2 + 74


def test_quasipoisson_scales_standard_errors_by_root_dispersion(frisk):
    kwargs = dict(count="stops", exposure="past.arrests", factors=["eth", "precinct"])
    poisson = fit_count_model(frisk, family="poisson", **kwargs)
    quasi = fit_count_model(frisk, family="quasipoisson", **kwargs)
    assert quasi.dispersion == pytest.approx(21.885, abs=TOL)
    np.testing.assert_allclose(
        quasi.coefficients["estimate"].to_numpy(), poisson.coefficients["estimate"].to_numpy(), rtol=1e-8
    )
    np.testing.assert_allclose(
        quasi.coefficients["std_error"].to_numpy(),
        poisson.coefficients["std_error"].to_numpy() * math.sqrt(21.885),
        rtol=1e-4,
    )
    assert _coef(quasi, "eth", "3")["std_error"] == pytest.approx(0.0094 * math.sqrt(21.885), abs=TOL)


def test_negative_binomial_nb2(frisk):
    result = fit_count_model(
        frisk, count="stops", exposure="past.arrests", factors=["eth", "precinct"], family="negbin"
    )
    assert _coef(result, "eth", "2")["estimate"] == pytest.approx(0.0086, abs=TOL)
    assert _coef(result, "eth", "3")["estimate"] == pytest.approx(-0.4858, abs=TOL)
    assert result.alpha == pytest.approx(0.0511, abs=TOL)
    assert result.family == "negbin"
    # NB2 absorbs most of the overdispersion the Poisson model leaves
    assert 0.5 < result.dispersion < 3.0
    assert result.deviance < result.null_deviance
    assert "alpha" not in result.coefficients["term"].to_list()


def test_reference_level_can_be_chosen(frisk):
    result = fit_count_model(
        frisk, count="stops", exposure="past.arrests", factors=["eth"], family="poisson",
        references={"eth": 3},
    )
    default = fit_count_model(
        frisk, count="stops", exposure="past.arrests", factors=["eth"], family="poisson"
    )
    assert result.references == {"eth": "3"}
    assert _coef(result, "eth", "1")["estimate"] == pytest.approx(
        -_coef(default, "eth", "3")["estimate"], abs=1e-8
    )
    assert result.deviance == pytest.approx(default.deviance, rel=1e-10)


def test_exponentiated_coefficients(frisk):
    result = fit_count_model(
        frisk, count="stops", exposure="past.arrests", factors=["eth"], family="poisson"
    )
    ratios = exponentiate_coefficients(result, level=0.95)
    assert ratios.columns == ["term", "level", "ratio", "ci_low", "ci_high", "p_value",
                              "is_estimable"]
    assert INTERCEPT not in ratios["term"].to_list()
    eth3 = ratios.filter(pl.col("level") == "3").row(0, named=True)
    coef = _coef(result, "eth", "3")
    assert eth3["ratio"] == pytest.approx(math.exp(coef["estimate"]))
    expected_low = math.exp(coef["estimate"] - 1.959964 * coef["std_error"])
    assert eth3["ci_low"] == pytest.approx(expected_low, rel=1e-6)
    assert eth3["ci_low"] < eth3["ratio"] < eth3["ci_high"]


def test_refuses_zero_exposure_nulls_and_unknown_family(frisk):
    zero = frisk.with_columns(
        pl.when(pl.col("precinct") == 1).then(0).otherwise(pl.col("past.arrests")).alias("past.arrests")
    )
    with pytest.raises(ValueError, match="positive exposure"):
        fit_count_model(zero, count="stops", exposure="past.arrests", factors=["eth"], family="poisson")
    with pytest.raises(ValueError, match="family"):
        fit_count_model(frisk, count="stops", exposure="past.arrests", factors=["eth"], family="binomial")
    with_null = frisk.with_columns(pl.lit(None, dtype=pl.Int64).alias("eth"))
    with pytest.raises(ValueError, match="null"):
        fit_count_model(with_null, count="stops", exposure="past.arrests", factors=["eth"], family="poisson")
    with pytest.raises(ValueError, match="reference level"):
        fit_count_model(frisk, count="stops", exposure="past.arrests", factors=["eth"],
                        family="poisson", references={"eth": 9})


# --------------------------------------------------------------------------------------------
# Levels without events (review finding) and persons as clusters


def _cells(rng: np.random.Generator, *, origin_ratio: dict[str, float], teams: int = 8,
           per_person: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Team × origin cells with residents; each queried person holds `per_person` queries."""
    rows, clusters = [], []
    person = 0
    for t in range(teams):
        for origin, ratio in origin_ratio.items():
            residents = float(rng.integers(2_000, 6_000))
            people = rng.poisson(residents * 0.01 * ratio * (1 + 0.1 * t) / per_person)
            rows.append({"team": f"T{t}", "origin": origin, "residents": residents,
                         "queries": people * per_person})
            clusters += [(len(rows) - 1, person + i, per_person) for i in range(people)]
            person += people
    return (pl.DataFrame(rows),
            pl.DataFrame(clusters, schema={"row": pl.Int64, "cluster": pl.Int64, "count": pl.Int64},
                         orient="row"))


@pytest.mark.parametrize("family", ["quasipoisson", "negbin"])
def test_a_level_without_events_is_flagged_not_estimated(family):
    # Review finding: an origin with no queries gave estimate -24.45, SE 12,362 and CI (0, inf).
    rng = np.random.default_rng(1)
    frame, _ = _cells(rng, origin_ratio={"NL": 1.0, "MA": 2.0, "CW": 0.0})
    assert frame.filter(origin="CW")["queries"].sum() == 0
    result = fit_count_model(frame, count="queries", exposure="residents",
                             factors=["origin", "team"], family=family, references={"origin": "NL"})
    cw = _coef(result, "origin", "CW")
    assert cw["is_estimable"] is False
    assert cw["estimate"] is None and cw["std_error"] is None and cw["p_value"] is None
    ratios = exponentiate_coefficients(result).filter(level="CW").row(0, named=True)
    assert ratios["ratio"] is None and ratios["ci_high"] is None
    without = fit_count_model(frame.filter(pl.col("origin") != "CW"), count="queries",
                              exposure="residents", factors=["origin", "team"], family=family,
                              references={"origin": "NL"})
    assert _coef(result, "origin", "MA")["estimate"] == pytest.approx(
        _coef(without, "origin", "MA")["estimate"], rel=1e-6)
    assert _coef(result, "origin", "MA")["is_estimable"] is True


def test_a_reference_level_without_events_makes_its_factor_inestimable():
    rng = np.random.default_rng(2)
    frame, _ = _cells(rng, origin_ratio={"NL": 0.0, "MA": 2.0, "TR": 1.0})
    result = fit_count_model(frame, count="queries", exposure="residents",
                             factors=["origin", "team"], family="quasipoisson",
                             references={"origin": "NL"})
    origin = result.coefficients.filter(term="origin")
    assert origin["is_estimable"].to_list() == [False, False]
    assert result.coefficients.filter(term="team")["is_estimable"].all()


def test_cluster_robust_errors_grow_with_repeat_queries_of_one_person():
    rng = np.random.default_rng(3)
    ratios = {"NL": 1.0, "MA": 1.8, "TR": 1.3}
    once, clusters_once = _cells(rng, origin_ratio=ratios, per_person=1)
    fivefold, clusters_five = _cells(rng, origin_ratio=ratios, per_person=5)
    kwargs = dict(count="queries", exposure="residents", factors=["origin", "team"],
                  family="quasipoisson", references={"origin": "NL"})
    plain = _coef(fit_count_model(once, **(kwargs | {"family": "poisson"})), "origin",
                  "MA")["std_error"]
    robust_once = fit_count_model(once, clusters=clusters_once, **kwargs)
    assert robust_once.covariance == "person_clustered"
    # one query per person: the sandwich agrees with the model-based error
    assert _coef(robust_once, "origin", "MA")["std_error"] == pytest.approx(plain, rel=0.25)
    # five queries per person: the same expected counts carry five times the variance
    model_five = _coef(fit_count_model(fivefold, **(kwargs | {"family": "poisson"})), "origin",
                       "MA")["std_error"]
    robust_five = _coef(fit_count_model(fivefold, clusters=clusters_five, **kwargs), "origin",
                        "MA")["std_error"]
    assert robust_five == pytest.approx(model_five * math.sqrt(5), rel=0.3)


def test_families_fitted_together_equal_each_fitted_alone():
    # fit_count_models builds the design and the persons' matrix once for all families: each
    # family's result must be the one it gets alone, cluster-robust errors included.
    rng = np.random.default_rng(5)
    frame, clusters = _cells(rng, origin_ratio={"NL": 1.0, "MA": 1.8, "TR": 1.3}, per_person=3)
    kwargs = dict(count="queries", exposure="residents", factors=["origin", "team"],
                  references={"origin": "NL"}, clusters=clusters)
    together = fit_count_models(frame, families=FAMILIES, **kwargs)
    assert [fit.family for fit in together] == list(FAMILIES)
    for fit in together:
        alone = fit_count_model(frame, family=fit.family, **kwargs)
        assert fit == alone
        assert fit.covariance == "person_clustered"
        assert_frame_equal(fit.coefficients, alone.coefficients, check_exact=True)
    with pytest.raises(ValueError, match="family must be one of"):
        fit_count_models(frame, families=("poisson", "binomial"), **kwargs)


def test_cluster_robust_intervals_cover_the_truth_under_gamma_frailty():
    # Persons with gamma(0.3) propensities: model-based Poisson intervals undercover badly;
    # persons as clusters restore the nominal coverage.
    rng = np.random.default_rng(4)
    covered = {"model": [], "person_clustered": []}
    for _ in range(60):
        rows, clusters = [], []
        for t in range(6):
            for origin, ratio in (("NL", 1.0), ("MA", 2.0)):
                residents = 1_000
                frailty = rng.gamma(0.3, 1 / 0.3, residents)
                counts = rng.poisson(0.2 * ratio * (1 + 0.2 * t) * frailty)
                rows.append({"team": f"T{t}", "origin": origin, "residents": float(residents),
                             "queries": int(counts.sum())})
                queried = np.flatnonzero(counts)
                clusters += [(len(rows) - 1, int(1_000_000 * len(rows) + p), int(counts[p]))
                             for p in queried]
        frame = pl.DataFrame(rows)
        cluster_frame = pl.DataFrame(clusters, schema={"row": pl.Int64, "cluster": pl.Int64,
                                                       "count": pl.Int64}, orient="row")
        for name, given in (("model", None), ("person_clustered", cluster_frame)):
            fit = fit_count_model(frame, count="queries", exposure="residents",
                                  factors=["origin", "team"], family="poisson",
                                  references={"origin": "NL"}, clusters=given)
            row = exponentiate_coefficients(fit).filter(level="MA").row(0, named=True)
            covered[name].append(row["ci_low"] <= 2.0 <= row["ci_high"])
    assert np.mean(covered["model"]) < 0.8
    assert 0.88 <= np.mean(covered["person_clustered"]) <= 1.0
