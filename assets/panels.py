"""Simulated panels with a known truth: core query tables drawn per person, for coverage studies.

The built-in sample (`assets.synthetic`) writes a landing zone, which takes seconds per draw. A
coverage study needs hundreds of team × origin cells over many replicates, so this module draws
the *core* tables directly (the columns `compute_team_disproportionality` reads), in well under a
second per 12-month panel:

* residents per team × origin × sex × age band (minority origins younger, as in Amsterdam);
* a gamma frailty per person (mean 1, shape `frailty_shape`; None for pure Poisson), fixed over
  the months, so that some people are queried again and again — the ProCo situation;
* each person's queries per month Poisson with mean base rate × sex-age rate × the true ratio of
  their origin in their home team (which may change from a given month: a step change) ×
  frailty; a share of them happen in the home team, the rest in other teams; visitors living
  outside the covered area are queried too;
* the truth: the per-person rate ratio against NL at equal sex and age band, per team × origin ×
  month, and the expected share of residents queried at least once (for person-based ratios).

Pure and Dagster-free; deterministic by seed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from assets.schema import AGE_BANDS, ORIGIN_CODES, SEXES, origin_group_expr

STRATA = tuple(itertools.product(SEXES, AGE_BANDS))
"""The ten sex × age band strata, in the order of the rate arrays below."""

# NOTE: relative query rate per stratum (men far above women, young adults far above children
# and the elderly): the confounders that standardisation must remove.
SEX_AGE_RATE = dict(zip(STRATA, (0.05, 3.0, 1.8, 0.8, 0.2, 0.02, 0.8, 0.5, 0.25, 0.07), strict=True))
AGE_SHARES = {
    "NL": (0.13, 0.09, 0.32, 0.26, 0.20),
    "EU": (0.10, 0.10, 0.50, 0.20, 0.10),
    "ID": (0.08, 0.07, 0.25, 0.30, 0.30),
    "default": (0.22, 0.20, 0.34, 0.19, 0.05),
}
ORIGIN_SHARES = {
    "NL": 0.41, "EU": 0.167, "TR": 0.053, "MA": 0.09, "SR": 0.08,
    "CW": 0.016, "ID": 0.026, "AF": 0.048, "AS": 0.07, "AM": 0.04,
}


@dataclass(frozen=True)
class PanelSpec:
    """What a simulated panel injects. Defaults resemble one year of the Amsterdam pilot."""

    seed: int = 1
    teams: int = 13
    months: int = 12
    first_month: str = "2025-01"
    residents_per_team: tuple[int, int] = (20_000, 90_000)
    """Range of a team's residents (uniform)."""
    queries_per_year: int = 300_000
    """Expected person queries per year over the whole area (residents and visitors)."""
    true_ratios: dict[str, float] = field(default_factory=lambda: {
        "NL": 1.0, "EU": 1.1, "TR": 1.4, "MA": 1.9, "SR": 1.6,
        "CW": 1.7, "ID": 1.0, "AF": 1.5, "AS": 1.2, "AM": 1.3,
    })
    """Per-person query rate ratio vs NL at equal sex and age band, in every team."""
    team_overrides: dict[tuple[str, str], float] = field(default_factory=dict)
    """(team_code, origin) → true ratio replacing `true_ratios` there."""
    step_changes: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    """(team_code, origin) → (first month, factor): from that month on the true ratio of that
    cell is multiplied by the factor."""
    frailty_shape: float | None = 0.3
    """Gamma shape of the per-person propensity (mean 1); None gives independent Poisson events."""
    home_share: float = 0.75
    """Share of a resident's queries made by their own team."""
    visitor_share: float = 0.15
    """Share of the queried population that lives outside the covered area."""
    unlinked_share: float = 0.02
    """Share of queries whose person cannot be linked to CBS."""
    hit_rates: dict[str, float] = field(default_factory=lambda: {"default": 0.12, "MA": 0.08})
    hit_missing_share: float = 0.4

    def team_codes(self) -> list[str]:
        return [f"T{t:02d}" for t in range(self.teams)]

    def month_keys(self) -> list[str]:
        year, month = map(int, self.first_month.split("-"))
        keys = []
        for offset in range(self.months):
            y, m = divmod(month - 1 + offset, 12)
            keys.append(f"{year + y}-{m + 1:02d}")
        return keys

    def with_seed(self, seed: int) -> PanelSpec:
        return replace(self, seed=seed)


@dataclass(frozen=True)
class Panel:
    """A simulated panel: core-like query rows, core-like population, and the truth.

    Attributes
    ----------
    queries : one row per query: query_type, month, queried_at, team_code, residence_team,
        is_linked, person_key, origin, origin_group, sex, age_band, hit.
    population : one row per year × team × wijk × sex × age band × origin (core_population).
    truth : one row per team_code × origin × month: `true_ratio` (per-person query rate vs NL at
        equal sex and age band) and per stratum nothing else is needed; `residents`.
    residents : one row per team_code × origin × sex × age_band with `residents`,
        `expected_per_person` (expected home-team queries of one resident over the panel,
        frailty mean 1) — the inputs of the person-based truth (`true_person_ratio`).
    """

    spec: PanelSpec
    queries: pl.DataFrame
    population: pl.DataFrame
    truth: pl.DataFrame
    residents: pl.DataFrame


def _ratio_grid(spec: PanelSpec, teams: list[str], months: list[str]) -> np.ndarray:
    """True ratio per team × origin × month index (array of shape teams × origins × months)."""
    grid = np.empty((len(teams), len(ORIGIN_CODES), len(months)))
    for t, team in enumerate(teams):
        for o, origin in enumerate(ORIGIN_CODES):
            ratio = spec.team_overrides.get((team, origin), spec.true_ratios.get(origin, 1.0))
            grid[t, o, :] = ratio
            step = spec.step_changes.get((team, origin))
            if step is not None:
                first, factor = step
                grid[t, o, [i for i, m in enumerate(months) if m >= first]] *= factor
    return grid


def simulate_panel(spec: PanelSpec = PanelSpec()) -> Panel:
    """Draw one panel (see the module docstring). Deterministic by `spec.seed`."""
    rng = np.random.default_rng(spec.seed)
    teams, months = spec.team_codes(), spec.month_keys()
    n_teams, n_origins, n_strata = len(teams), len(ORIGIN_CODES), len(STRATA)

    # Residents per team × origin × stratum.
    size = rng.integers(*spec.residents_per_team, size=n_teams)
    shares = np.array([ORIGIN_SHARES[o] for o in ORIGIN_CODES])
    tilt = rng.lognormal(0.0, 0.5, size=(n_teams, n_origins))
    origin_share = shares * tilt
    origin_share /= origin_share.sum(axis=1, keepdims=True)
    age = np.array([AGE_SHARES.get(o, AGE_SHARES["default"]) for o in ORIGIN_CODES])
    stratum_share = np.concatenate([age / 2, age / 2], axis=1)  # M then V, 50/50
    cells = np.rint(size[:, None, None] * origin_share[:, :, None] * stratum_share[None, :, :])
    cells = cells.astype(np.int64)  # teams × origins × strata

    ratio = _ratio_grid(spec, teams, months)  # teams × origins × months
    sexage = np.array([SEX_AGE_RATE[s] for s in STRATA])
    # NOTE: the base rate is set so that residents and visitors together give queries_per_year.
    resident_weight = float((cells * sexage[None, None, :] * ratio.mean(axis=2)[:, :, None]).sum())
    base = spec.queries_per_year * (1 - spec.visitor_share) / resident_weight / 12

    # One entry per resident.
    flat = cells.reshape(-1)
    cell_index = np.repeat(np.arange(flat.size), flat)
    team_of, origin_of, stratum_of = np.unravel_index(cell_index, cells.shape)
    n_res = cell_index.size
    frailty = (np.ones(n_res) if spec.frailty_shape is None
               else rng.gamma(spec.frailty_shape, 1 / spec.frailty_shape, n_res))
    # Visitors: people of the area's mix who live elsewhere (residence_team null).
    n_vis = int(n_res * spec.visitor_share / (1 - spec.visitor_share))
    pick = rng.integers(0, n_res, size=n_vis)
    vis_frailty = (np.ones(n_vis) if spec.frailty_shape is None
                   else rng.gamma(spec.frailty_shape, 1 / spec.frailty_shape, n_vis))
    keys = rng.choice(np.iinfo(np.int64).max, size=n_res + n_vis, replace=False).astype(np.uint64)

    parts = []
    for m, month in enumerate(months):
        mean_res = base * sexage[stratum_of] * ratio[team_of, origin_of, m] * frailty
        mean_vis = base * sexage[stratum_of[pick]] * ratio[team_of[pick], origin_of[pick], m] * vis_frailty
        n_res_q = rng.poisson(mean_res)
        n_vis_q = rng.poisson(mean_vis)
        home = rng.binomial(n_res_q, spec.home_share)
        person = np.concatenate([
            np.repeat(np.arange(n_res), home),
            np.repeat(np.arange(n_res), n_res_q - home),
            np.repeat(n_res + np.arange(n_vis), n_vis_q),
        ])
        n_home = int(home.sum())
        where = np.concatenate([
            team_of[person[:n_home]],
            rng.integers(0, n_teams, size=person.size - n_home),
        ])
        parts.append((m, person, where))

    person = np.concatenate([p for _, p, _ in parts])
    where = np.concatenate([w for _, _, w in parts])
    month_index = np.concatenate([np.full(p.size, m) for m, p, _ in parts])
    is_visitor = person >= n_res
    source = np.where(is_visitor, pick[np.clip(person - n_res, 0, n_vis - 1)], person)
    stratum = stratum_of[source]
    origin = origin_of[source]
    linked = rng.random(person.size) >= spec.unlinked_share
    hit_p = np.array([spec.hit_rates.get(o, spec.hit_rates["default"]) for o in ORIGIN_CODES])
    hit = rng.random(person.size) < hit_p[origin]
    hit_known = rng.random(person.size) >= spec.hit_missing_share
    start = pl.Series([f"{months[m]}-01" for m in range(len(months))]).str.to_datetime(
        time_zone="UTC", time_unit="us")
    team_labels = np.array(teams)
    sexes = np.array([s for s, _ in STRATA])
    bands = np.array([b for _, b in STRATA])
    queries = pl.DataFrame({
        "query_type": "person",
        "month": np.array(months)[month_index],
        "queried_at": start.gather(month_index) + pl.Series(
            rng.integers(0, 27 * 86_400, size=person.size) * 1_000_000).cast(pl.Duration("us")),
        "team_code": team_labels[where],
        "residence_team": np.where(is_visitor, None, team_labels[team_of[source]]),
        "is_linked": linked,
        "person_key": np.where(linked, keys[person], 0).astype(np.uint64),
        "origin": np.array(ORIGIN_CODES)[origin],
        "sex": sexes[stratum],
        "age_band": bands[stratum],
        "hit": hit,
        "hit_known": hit_known,
    }).with_columns(pl.when(pl.col("hit_known")).then(pl.col("hit")).alias("hit")).drop(
        "hit_known").with_columns(
        pl.when(pl.col("is_linked")).then(pl.col(c)).alias(c)
        for c in ("person_key", "origin", "sex", "age_band", "residence_team")
    ).with_columns(origin_group=origin_group_expr(pl.col("origin")))
    queries = queries.sort("month", "queried_at", "person_key", maintain_order=True)

    grid = pl.DataFrame({
        "team_code": np.repeat(teams, n_origins * n_strata),
        "origin": np.tile(np.repeat(ORIGIN_CODES, n_strata), n_teams),
        "sex": np.tile(sexes, n_teams * n_origins),
        "age_band": np.tile(bands, n_teams * n_origins),
        "residents": flat,
    })
    population = grid.select(
        year=pl.lit(int(months[0][:4]) - 1, pl.Int64),
        team_code="team_code",
        wijk_code=pl.lit("WK036300") + pl.col("team_code").str.slice(1),
        sex="sex", age_band="age_band", origin="origin",
        population=pl.col("residents").cast(pl.Int64),
    ).filter(pl.col("population") > 0)
    truth = pl.DataFrame({
        "team_code": np.repeat(teams, n_origins * len(months)),
        "origin": np.tile(np.repeat(ORIGIN_CODES, len(months)), n_teams),
        "month": np.tile(months, n_teams * n_origins),
        "true_ratio": ratio.reshape(-1),
    })
    # NOTE: expected home-team queries of one resident of the cell per month, frailty mean 1.
    per_month = (base * sexage[None, None, :, None] * ratio[:, :, None, :] * spec.home_share)
    residents = grid.with_columns(
        expected_per_month=pl.Series(per_month.reshape(-1, len(months)).tolist(),
                                     dtype=pl.List(pl.Float64)),
    )
    return Panel(spec=spec, queries=queries, population=population, truth=truth,
                 residents=residents)


def true_person_share(expected: np.ndarray, frailty_shape: float | None) -> np.ndarray:
    """Expected share of residents queried at least once, given each one's expected count.

    With a gamma frailty of shape k (mean 1) the count is negative binomial and
    P(N ≥ 1) = 1 − (1 + Λ/k)^(−k); without frailty it is Poisson, 1 − exp(−Λ).
    """
    expected = np.asarray(expected, dtype=float)
    if frailty_shape is None:
        return -np.expm1(-expected)
    return 1.0 - (1.0 + expected / frailty_shape) ** (-frailty_shape)


def true_person_ratio(panel: Panel, months: list[str], reference: str = "NL") -> pl.DataFrame:
    """One row per team × origin: the Mantel–Haenszel functional of the true shares of residents
    queried at least once by their own team over `months` (the estimand of a standardised
    person_rate_ratio under the resident_only benchmark)."""
    res = panel.residents
    month_pos = [panel.spec.month_keys().index(m) for m in months]
    expected = np.array([sum(v[i] for i in month_pos) for v in res["expected_per_month"]])
    res = res.with_columns(share=pl.Series(true_person_share(expected, panel.spec.frailty_shape)))
    ref = res.filter(pl.col("origin") == reference).select(
        "team_code", "sex", "age_band", ref_residents="residents", ref_share="share")
    joined = res.join(ref, on=["team_code", "sex", "age_band"]).filter(
        (pl.col("residents") > 0) & (pl.col("ref_residents") > 0))
    weight = pl.col("residents") * pl.col("ref_residents") / (
        pl.col("residents") + pl.col("ref_residents"))
    return joined.group_by("team_code", "origin").agg(
        true_person_ratio=(weight * pl.col("share")).sum() / (weight * pl.col("ref_share")).sum()
    ).sort("team_code", "origin")
