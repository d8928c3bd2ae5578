"""Veil of darkness: does the origin mix of plate-query holders change when it is dark?

Officers can often see a driver in daylight but hardly after dark. If the share of a
group among queried vehicle holders drops after dark, compared at the same clock time,
visibility of the driver plays a part in whom officers query (Grogger & Ridgeway 2006).
The comparison at the same clock time is what removes the daily rhythm of traffic and
policing: at 19:00 it is light in June and dark in December.

Two designs, both logistic regressions of ``is_group`` (holder of origin g, against the
reference origin) on ``is_dark`` with R's natural spline of the clock minute:

``intertwilight``
    All queries whose clock minute lies between the earliest and the latest end of civil
    dusk over the dates present (Pierson et al. 2020), minus the ambiguous period between
    sunset and the end of civil dusk of each date.
``dst``
    Only queries within ±30 days of a daylight-saving clock change (spring and autumn of
    each year present). The clock jumps by an hour on one night while the sun does not,
    so the same clock time is light on one side of the switch and dark on the other.
    Same windowing and twilight rule (window from the dates inside the DST periods), and a
    fixed effect per clock change so that each comparison stays within its own ±30 days.

``estimate`` is γ, the coefficient of ``is_dark`` (log odds ratio); γ < 0 means fewer
group-g holders among queried vehicles in darkness than in daylight at the same clock
time. Each is also fitted with team fixed effects.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import polars as pl
# NOTE: the modules themselves, not statsmodels.api, which imports every model and dataset
# (about 1 s more in each process that imports the statistics).
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    PerfectSeparationError,
    PerfectSeparationWarning,
)

from assets.stats.splines import natural_spline_basis, natural_spline_knots
from assets.stats.sun import find_clock_changes, tag_darkness

DESIGNS = ("intertwilight", "dst")
DST_WINDOW_DAYS = 30
MIN_CELL_COUNT = 10
_COUNT = "_queries"
"""Column of the number of queries behind a row of counted queries (`_fit_counted`)."""

OUTPUT_SCHEMA = pl.Schema(
    {
        "design": pl.String(),
        "origin": pl.String(),
        "fixed_effects": pl.String(),
        "estimate": pl.Float64(),
        "std_error": pl.Float64(),
        "ci_low": pl.Float64(),
        "ci_high": pl.Float64(),
        "p_value": pl.Float64(),
        "n": pl.Int64(),
        "group_count": pl.Int64(),
        "dark_count": pl.Int64(),
        "window_start_minute": pl.Int32(),
        "window_end_minute": pl.Int32(),
        "note": pl.String(),
    }
)
"""Columns of :func:`compute_veil_of_darkness` (the ``out_veil_of_darkness`` table)."""

ROW_COUNT_SCHEMA = pl.Schema(
    {
        "design": pl.String(),
        "step": pl.Int32(),
        "reason": pl.String(),
        "rows_before": pl.Int64(),
        "rows_dropped": pl.Int64(),
        "rows_after": pl.Int64(),
    }
)


class VeilOfDarknessError(ValueError):
    """A veil-of-darkness model that cannot be fitted: too few rows, no variation, ..."""


@dataclasses.dataclass(frozen=True)
class VeilOfDarknessResult:
    """Coefficient of ``is_dark`` in a veil-of-darkness logistic regression.

    Attributes
    ----------
    estimate : float
        γ, the log odds ratio of a queried holder being of the group in darkness vs daylight.
    std_error : float
        Its model-based standard error.
    ci_low, ci_high : float
        Wald interval at ``level``.
    p_value : float
        Two-sided Wald test of γ = 0.
    n : int
        Queries in the fit.
    group_count : int
        Of which the group of interest (``is_group`` true).
    level : float
        Confidence level of the interval.
    method : str
        The model, spline and interval, in words.
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    group_count: int
    level: float
    method: str


def _dummy_columns(values: pl.Series) -> np.ndarray:
    """Treatment-coded indicator columns (first level in sorted order is the baseline, as R)."""
    as_text = values.cast(pl.String).fill_null("(missing)")
    levels = sorted(as_text.unique().to_list())
    codes = as_text.to_numpy()
    if len(levels) < 2:
        return np.empty((len(values), 0))
    return np.column_stack([codes == level for level in levels[1:]]).astype(float)


def fit_veil_of_darkness(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    is_group: str,
    is_dark: str,
    minute: str,
    spline_df: int = 6,
    fixed_effects: Sequence[str] = (),
    level: float = 0.95,
) -> VeilOfDarknessResult:
    """Fit ``is_group ~ is_dark + ns(minute, df = spline_df) [+ fixed effects]``, binomial logit.

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
        One row per query, already restricted to the comparison window; no nulls in the
        columns used.
    is_group : str
        Boolean (or 0/1) column: the holder belongs to the group of interest (else to the
        reference group).
    is_dark : str
        Boolean (or 0/1) column: the query happened after the end of civil dusk.
    minute : str
        Numeric column: local clock minute of the query.
    spline_df : int, default 6
        Degrees of freedom of R's natural spline ``ns(minute, df)`` (interior knots at
        quantiles of ``minute``; see :func:`assets.stats.splines.natural_spline_basis`).
    fixed_effects : sequence of str
        Categorical columns added as treatment-coded dummies (e.g. ``("team_code",)``).
    level : float, default 0.95
        Confidence level of the Wald interval.

    Returns
    -------
    VeilOfDarknessResult

    Raises
    ------
    VeilOfDarknessError
        When the model cannot be fitted: no rows, nulls, no variation in ``is_group`` or
        ``is_dark``, a rank-deficient design, or no convergence.

    Notes
    -----
    The spline knots are R's, from every row. The model is then fitted on covariate
    patterns (queries sharing darkness, minute and fixed effects collapsed into one
    binomial count), which gives the same estimate and standard error as one row per
    query at a fraction of the cost.

    References
    ----------
    Grogger, J. & Ridgeway, G. (2006). Testing for racial profiling in traffic stops from
    behind a veil of darkness. *Journal of the American Statistical Association* 101(475),
    878-887.
    Pierson, E., Simoiu, C., Overgoor, J., Corbett-Davies, S., Jenson, D., Shoemaker, A.,
    Ramachandran, V., Barghouty, P., Phillips, C., Shroff, R. & Goel, S. (2020). A
    large-scale analysis of racial disparities in police stops across the United States.
    *Nature Human Behaviour* 4, 736-745.
    """
    columns = [is_group, is_dark, minute, *fixed_effects]
    counted = (frame.lazy().group_by(columns).agg(pl.len().cast(pl.Int64).alias(_COUNT))
               .collect())
    return _fit_counted(counted, is_group=is_group, is_dark=is_dark, minute=minute,
                        spline_df=spline_df, fixed_effects=fixed_effects, level=level)


def _fit_counted(
    counted: pl.DataFrame,
    *,
    is_group: str,
    is_dark: str,
    minute: str,
    spline_df: int,
    fixed_effects: Sequence[str],
    level: float,
) -> VeilOfDarknessResult:
    """`fit_veil_of_darkness` of queries counted per combination of the model's columns (and
    perhaps others), with the number in `_COUNT`: the same result as on one row per query."""
    columns = [is_group, is_dark, minute, *fixed_effects]
    n = int(counted[_COUNT].sum())
    if n == 0:
        raise VeilOfDarknessError("no rows")
    if counted.select(columns).null_count().sum_horizontal().item() > 0:
        raise VeilOfDarknessError("null values in the model columns")
    data = counted.with_columns(
        pl.col(is_group).cast(pl.Float64).alias("_outcome"),
        pl.col(is_dark).cast(pl.Float64).alias("_dark"),
        pl.col(minute).cast(pl.Float64).alias("_minute"),
    )
    group_count = int((data["_outcome"] * data[_COUNT]).sum())
    if group_count in (0, n):
        raise VeilOfDarknessError("no variation in the group indicator")
    if data["_dark"].min() == data["_dark"].max():
        raise VeilOfDarknessError("no variation in darkness")
    minutes = data.group_by("_minute").agg(pl.col(_COUNT).sum())
    if minutes.height <= spline_df:
        raise VeilOfDarknessError(f"fewer than {spline_df + 1} distinct clock minutes")
    # NOTE: knots come from every query (as R's ns() on the full data) ...
    interior, boundary = natural_spline_knots(minutes["_minute"].to_numpy(), spline_df,
                                              counts=minutes[_COUNT].to_numpy())

    # ... but the model is fitted on covariate patterns: all regressors are discrete, so
    # queries with the same darkness, minute and fixed effects collapse into one binomial
    # row (successes, trials). The maximum-likelihood estimate and its information matrix
    # are identical to the one-row-per-query fit, at a fraction of the cost for millions of
    # rows. Sorted so the floating-point result is the same on every run.
    keys = ["_dark", "_minute", *fixed_effects]
    patterns = (
        data.group_by(keys)
        .agg((pl.col("_outcome") * pl.col(_COUNT)).sum().alias("_successes"),
             pl.col(_COUNT).sum().alias("_trials"))
        .sort(keys)
    )
    successes = patterns["_successes"].to_numpy()
    trials = patterns["_trials"].to_numpy().astype(float)
    spline = natural_spline_basis(
        patterns["_minute"].to_numpy(), knots=interior, boundary_knots=boundary
    )
    design = np.column_stack(
        [
            np.ones(patterns.height),
            patterns["_dark"].to_numpy(),
            spline,
            *[_dummy_columns(patterns[c]) for c in fixed_effects],
        ]
    )
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise VeilOfDarknessError("rank-deficient design (collinear columns)")

    with warnings.catch_warnings():
        # NOTE: separation through a fixed-effect level (a team with queries of one group
        # only) leaves γ estimable; only a failure to converge makes the fit unusable.
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            result = GLM(
                np.column_stack([successes, trials - successes]),
                design,
                family=families.Binomial(),
            ).fit()
        except (ConvergenceWarning, PerfectSeparationError, np.linalg.LinAlgError) as error:
            raise VeilOfDarknessError(
                f"the model did not converge ({type(error).__name__})"
            ) from error
    if not result.converged:
        raise VeilOfDarknessError("the model did not converge")
    estimate = float(result.params[1])
    std_error = float(result.bse[1])
    if not (np.isfinite(estimate) and np.isfinite(std_error)):
        raise VeilOfDarknessError("non-finite estimate")
    ci_low, ci_high = (float(v) for v in result.conf_int(alpha=1.0 - level)[1])
    fixed = f" + {' + '.join(fixed_effects)}" if fixed_effects else ""
    return VeilOfDarknessResult(
        estimate=estimate,
        std_error=std_error,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=float(result.pvalues[1]),
        n=n,
        group_count=group_count,
        level=level,
        method=(
            f"logistic regression (statsmodels GLM, binomial, logit) of {is_group} on "
            f"{is_dark} + R ns({minute}, df = {spline_df}){fixed}; Wald interval"
        ),
    )


def _origin_order(origins: Sequence[str], order: Sequence[str]) -> list[str]:
    rank = {code: i for i, code in enumerate(order)}
    return sorted(origins, key=lambda code: (rank.get(code, len(rank)), code))


def _dusk_window(sample: pl.DataFrame) -> tuple[int | None, int | None]:
    per_date = sample.select("local_date", "dusk_minute").unique()
    if per_date.is_empty():
        return None, None
    return int(per_date["dusk_minute"].min()), int(per_date["dusk_minute"].max())


def _apply_window(
    sample: pl.DataFrame, design: str, counts: list[dict[str, object]], first_step: int
) -> tuple[pl.DataFrame, int | None, int | None]:
    start, end = _dusk_window(sample)
    before = sample.height
    if start is None:
        inside = sample.clear()
    else:
        inside = sample.filter(pl.col("minute").is_between(start, end, closed="both"))
    counts.append(_count_row(design, first_step, "outside the dusk window", before, inside.height))
    kept = inside.filter(~pl.col("is_twilight"))
    counts.append(
        _count_row(
            design, first_step + 1, "between sunset and end of civil dusk", inside.height, kept.height
        )
    )
    return kept, start, end


def _count_row(design: str, step: int, reason: str, before: int, after: int) -> dict[str, object]:
    return {
        "design": design,
        "step": step,
        "reason": reason,
        "rows_before": before,
        "rows_dropped": before - after,
        "rows_after": after,
    }


def _prepare_samples(
    plate_queries: pl.DataFrame | pl.LazyFrame,
    *,
    origin_column: str,
    team_column: str,
    dst_window_days: int,
) -> tuple[dict[str, tuple[pl.DataFrame, int | None, int | None]], list[str], pl.DataFrame]:
    """Build the analysis sample of each design and account for every row dropped."""
    lazy = plate_queries.lazy().select(
        "queried_at",
        pl.col(origin_column).alias("origin"),
        pl.col(team_column).alias("team"),
    )
    counts: list[dict[str, object]] = []
    everything = lazy.collect()
    linked = everything.filter(pl.col("origin").is_not_null())
    timed = linked.filter(pl.col("queried_at").is_not_null())
    heights = everything.height, linked.height, timed.height
    # NOTE: only their heights are needed further: freed before the darkness is tagged (at
    # 50M person queries, 33M plate queries, the statistics job's peak).
    del everything, linked
    tagged = tag_darkness(timed)
    del timed
    origins = sorted(tagged["origin"].unique().to_list())

    samples: dict[str, tuple[pl.DataFrame, int | None, int | None]] = {}
    for design in DESIGNS:
        counts.append(
            _count_row(design, 1, "origin unknown (not linked)", heights[0], heights[1])
        )
        counts.append(_count_row(design, 2, "query time missing", heights[1], heights[2]))
    samples["intertwilight"] = _apply_window(tagged, "intertwilight", counts, 3)

    years = tagged["local_date"].dt.year().unique().to_list()
    changes = find_clock_changes(int(y) for y in years)
    dates = tagged.select(pl.col("local_date").unique())
    # NOTE: windows of ±30 days around a spring and an autumn change never overlap, so a
    # date matches at most one change.
    date_windows = (
        dates.join(changes, how="cross")
        .filter(
            (pl.col("local_date") - pl.col("change_date")).abs()
            <= pl.duration(days=dst_window_days)
        )
        .select(
            "local_date",
            pl.format("{}-{}", pl.col("year"), pl.col("season")).alias("clock_change"),
        )
    )
    near_change = tagged.join(date_windows, on="local_date", how="inner", maintain_order="left")
    counts.append(
        _count_row(
            "dst",
            3,
            f"more than {dst_window_days} days from a clock change",
            tagged.height,
            near_change.height,
        )
    )
    samples["dst"] = _apply_window(near_change, "dst", counts, 4)
    count_frame = (
        pl.DataFrame(counts, schema=ROW_COUNT_SCHEMA)
        .with_columns(pl.col("design").replace_strict(DESIGNS, list(range(len(DESIGNS)))).alias("_rank"))
        .sort("_rank", "step")
        .drop("_rank")
    )
    return samples, origins, count_frame


def count_veil_of_darkness_rows(
    plate_queries: pl.DataFrame | pl.LazyFrame,
    *,
    origin_column: str = "origin",
    team_column: str = "team_code",
    dst_window_days: int = DST_WINDOW_DAYS,
) -> pl.DataFrame:
    """Return one row per design × filter step: rows before, dropped (with the reason) and after.

    The steps are those of :func:`compute_veil_of_darkness`, in order, so the last
    ``rows_after`` of a design is the sample its models are fitted on (before the split
    into one comparison per origin).
    """
    _, _, counts = _prepare_samples(
        plate_queries,
        origin_column=origin_column,
        team_column=team_column,
        dst_window_days=dst_window_days,
    )
    return counts


def compute_veil_of_darkness(
    plate_queries: pl.DataFrame | pl.LazyFrame,
    *,
    reference: str = "NL",
    origin_column: str = "origin",
    team_column: str = "team_code",
    level: float = 0.95,
    spline_df: int = 6,
    dst_window_days: int = DST_WINDOW_DAYS,
    min_cell_count: int = MIN_CELL_COUNT,
    origin_order: Sequence[str] = (),
) -> pl.DataFrame:
    """Return one row per design × origin × fixed-effects specification: the darkness coefficient γ.

    For each origin g other than ``reference`` the model is fitted on the queries whose
    holder is of origin g or of the reference origin, with ``is_group = (origin == g)``.

    Parameters
    ----------
    plate_queries : polars.DataFrame or polars.LazyFrame
        Plate queries in the core query table schema (``queried_at`` in UTC); queries
        whose holder is not linked (null origin) are dropped and counted.
    reference : str, default "NL"
        Reference origin.
    origin_column, team_column : str
        Columns with the holder's origin (code or group label) and the team.
    level : float, default 0.95
        Confidence level of the Wald intervals.
    spline_df : int, default 6
        Degrees of freedom of the natural spline of the clock minute.
    dst_window_days : int, default 30
        Half-width of the window around each clock change in the ``dst`` design.
    min_cell_count : int, default 10
        A model is fitted only when each of the four cells group/reference × light/dark
        holds at least this many queries; otherwise the row has null estimates and a note.
    origin_order : sequence of str
        Order of the origins in the output (the pipeline passes ``assets.schema.ORIGIN_CODES``).

    Returns
    -------
    polars.DataFrame
        Columns of :data:`OUTPUT_SCHEMA`. ``design`` is "intertwilight" or "dst";
        ``fixed_effects`` is "none" or "team" (intertwilight) and "clock_change" or
        "clock_change+team" (dst); ``n`` counts the queries of g and the reference in the
        design's sample, ``group_count`` those of g, ``dark_count`` those in darkness;
        ``window_start_minute``/``window_end_minute`` give the clock-minute window;
        ``note`` says why a row has no estimate. Rows are ordered by design, origin (the
        order of ``origin_order``, other labels after, alphabetically) and
        specification. A model that cannot be fitted never raises: its row carries a note.

    References
    ----------
    Grogger, J. & Ridgeway, G. (2006). *JASA* 101(475), 878-887.
    Pierson, E. et al. (2020). *Nature Human Behaviour* 4, 736-745 (section "Veil of
    darkness"; sunset-to-dusk exclusion and inter-twilight window).
    """
    samples, origins, _ = _prepare_samples(
        plate_queries,
        origin_column=origin_column,
        team_column=team_column,
        dst_window_days=dst_window_days,
    )
    origins = _origin_order(origins, origin_order)
    specifications = {
        "intertwilight": (("none", ()), ("team", ("team",))),
        "dst": (("clock_change", ("clock_change",)), ("clock_change+team", ("clock_change", "team"))),
    }
    rows: list[dict[str, object]] = []
    for design in DESIGNS:
        sample, start, end = samples[design]
        # NOTE: the design's queries counted once per origin and combination of the models'
        # columns; each origin's pair and model reads these counts instead of the queries (at
        # 50M person queries 7.5M plate queries in the inter-twilight sample).
        effect_columns = sorted({c for _, effects in specifications[design] for c in effects})
        counted = (sample.group_by("origin", "is_dark", "minute", *effect_columns)
                   .agg(pl.len().cast(pl.Int64).alias(_COUNT)))
        for origin in origins:
            if origin == reference:
                continue
            pair = counted.filter(pl.col("origin").is_in([origin, reference])).with_columns(
                (pl.col("origin") == origin).alias("is_group")
            )
            group_count = int(pair.filter("is_group")[_COUNT].sum())
            dark_count = int(pair.filter("is_dark")[_COUNT].sum())
            note = _cell_note(pair, reference, origins, min_cell_count)
            for label, effects in specifications[design]:
                row: dict[str, object] = {
                    "design": design,
                    "origin": origin,
                    "fixed_effects": label,
                    "n": int(pair[_COUNT].sum()),
                    "group_count": group_count,
                    "dark_count": dark_count,
                    "window_start_minute": start,
                    "window_end_minute": end,
                    "note": note,
                }
                if note is None:
                    try:
                        fit = _fit_counted(
                            pair,
                            is_group="is_group",
                            is_dark="is_dark",
                            minute="minute",
                            spline_df=spline_df,
                            fixed_effects=effects,
                            level=level,
                        )
                    except VeilOfDarknessError as error:
                        row["note"] = str(error)
                    else:
                        row.update(
                            estimate=fit.estimate,
                            std_error=fit.std_error,
                            ci_low=fit.ci_low,
                            ci_high=fit.ci_high,
                            p_value=fit.p_value,
                        )
                rows.append(row)
    return pl.DataFrame(rows, schema=OUTPUT_SCHEMA)


def _cell_note(
    pair: pl.DataFrame, reference: str, origins: Sequence[str], min_cell_count: int
) -> str | None:
    if reference not in origins:
        return f"reference origin {reference} absent"
    cells = pair.group_by("is_group", "is_dark").agg(pl.col(_COUNT).sum())
    counts = {
        (bool(g), bool(d)): int(c)
        for g, d, c in cells.select("is_group", "is_dark", _COUNT).iter_rows()
    }
    smallest = min(counts.get((g, d), 0) for g in (True, False) for d in (True, False))
    if smallest < min_cell_count:
        return f"fewer than {min_cell_count} queries in a group × light/dark cell"
    return None


__all__ = [
    "DESIGNS",
    "DST_WINDOW_DAYS",
    "OUTPUT_SCHEMA",
    "VeilOfDarknessError",
    "VeilOfDarknessResult",
    "compute_veil_of_darkness",
    "count_veil_of_darkness_rows",
    "fit_veil_of_darkness",
]
