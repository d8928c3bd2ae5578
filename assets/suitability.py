"""Data-suitability report: are a month's MEOS exports complete and linkable enough to analyse?

The pilot must answer whether the data are available and suitable at all (DESIGN.md §1), so
every month, query type and team gets counts of what arrived, what was quarantined and why, how
much was linked to CBS, how much of each optional field is missing, and a plain-language
verdict against the thresholds of :class:`SuitabilityThresholds` (docs/validation.md).

Row accounting: a raw row is counted under its raw ``team_code`` in ``rows_received`` and, when
rejected, in ``rows_quarantined`` under the same code, so rows with an unknown team code get a
row of their own and a null team code is counted under :data:`NO_TEAM`. For every output row
``rows_received == rows_quarantined + rows_valid`` is checked; a violation raises.

Pure and Dagster-free; aggregates only (no row-level values leave this module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from assets.schema import ALL_TEAMS

NO_TEAM = "(none)"
"""team_code under which rows with a null raw team_code are counted."""

GROUP_KEYS = ("month", "query_type", "team_code")

VERDICT_SUITABLE = "suitable"
VERDICT_CAVEATS = "suitable with caveats"
VERDICT_NOT_SUITABLE = "not suitable"


@dataclass(frozen=True)
class SuitabilityThresholds:
    """Thresholds of the verdict; shares are fractions of the row's valid (or received) rows.

    A row is *not suitable* when it has no valid rows, more than
    ``max_quarantined_share_usable`` of its received rows were quarantined, or fewer than
    ``min_identified_linkage_rate_usable`` of its identified persons were found in the CBS
    registers. Otherwise it is *suitable with caveats* when any other threshold is crossed, and
    *suitable* when none is.

    ``identified_linkage_rate`` (linked / rows with a person pseudonym) is judged rather than
    ``linkage_rate`` (linked / valid rows) because a plate's holder is null by design for
    companies and lease cars: that share is reported, and for person queries judged separately
    by ``max_missing_person_share``.
    """

    max_quarantined_share_suitable: float = 0.01
    max_quarantined_share_usable: float = 0.05
    min_identified_linkage_rate_suitable: float = 0.95
    min_identified_linkage_rate_usable: float = 0.90
    max_missing_person_share: float = 0.10
    """Person queries only: share of valid queries without an identified person."""
    max_missing_buurt_code_share: float = 0.10
    max_missing_query_reason_share: float = 0.50
    max_missing_hit_share: float = 0.50


DEFAULT_THRESHOLDS = SuitabilityThresholds()


def count_received_rows(months: Mapping[str, pl.DataFrame | pl.LazyFrame], *,
                        query_type: str) -> pl.DataFrame:
    """Count raw rows per export month and team code: one row per month × team_code.

    `months` holds each export month's raw rows by month (``YYYY-MM``). A null ``team_code`` is
    counted under :data:`NO_TEAM`; unknown codes are kept as they are. Output columns: month,
    query_type, team_code, rows_received (Int64).
    """
    # NOTE: each month counted on its own and labelled after counting, not a month column on
    # every row (docs/performance.md); the months' counts in one collect.
    counts = [
        raw.lazy().group_by(team_code=pl.col("team_code").fill_null(NO_TEAM))
        .agg(rows_received=pl.len().cast(pl.Int64))
        .select(pl.lit(month).alias("month"), "team_code", "rows_received")
        for month, raw in months.items()
    ]
    schema = {"month": pl.String, "query_type": pl.String, "team_code": pl.String,
              "rows_received": pl.Int64}
    if not counts:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(counts)
        .select("month", pl.lit(query_type).alias("query_type"), "team_code", "rows_received")
        .sort("month", "team_code")
        .collect()
    )


def _load_quarantine_reasons() -> tuple[str, ...]:
    from assets.quarantine import QUARANTINE_REASONS  # the reason codes belong to the quarantine

    return tuple(QUARANTINE_REASONS)


def _with_all_teams(frame: pl.LazyFrame, aggregations: list[pl.Expr]) -> pl.LazyFrame:
    per_team = frame.group_by(list(GROUP_KEYS)).agg(aggregations)
    whole_area = (
        frame.group_by(["month", "query_type"])
        .agg(aggregations)
        .with_columns(team_code=pl.lit(ALL_TEAMS))
    )
    return pl.concat([per_team, whole_area], how="diagonal")


def _percent(share: pl.Expr) -> pl.Expr:
    return pl.format("{}%", (share * 100).round(1))


def _build_verdict(thresholds: SuitabilityThresholds) -> tuple[pl.Expr, pl.Expr]:
    t = thresholds
    blocking = [
        pl.when(pl.col("rows_valid") == 0).then(pl.lit("no valid rows")),
        pl.when(pl.col("quarantined_share") > t.max_quarantined_share_usable).then(
            pl.format(
                "{} of rows quarantined (more than {})",
                _percent(pl.col("quarantined_share")),
                pl.lit(f"{t.max_quarantined_share_usable:.0%}"),
            )
        ),
        pl.when(pl.col("identified_linkage_rate") < t.min_identified_linkage_rate_usable).then(
            pl.format(
                "{} of identified persons linked to CBS (less than {})",
                _percent(pl.col("identified_linkage_rate")),
                pl.lit(f"{t.min_identified_linkage_rate_usable:.0%}"),
            )
        ),
    ]

    def over(column: str, limit: float, text: str) -> pl.Expr:
        return pl.when(pl.col(column) > limit).then(
            pl.format(f"{{}} {text} (more than {limit:.0%})", _percent(pl.col(column)))
        )

    caveats = [
        pl.when(
            (pl.col("quarantined_share") > t.max_quarantined_share_suitable)
            & (pl.col("quarantined_share") <= t.max_quarantined_share_usable)
        ).then(
            pl.format(
                "{} of rows quarantined (more than {})",
                _percent(pl.col("quarantined_share")),
                pl.lit(f"{t.max_quarantined_share_suitable:.0%}"),
            )
        ),
        pl.when(
            (pl.col("identified_linkage_rate") < t.min_identified_linkage_rate_suitable)
            & (pl.col("identified_linkage_rate") >= t.min_identified_linkage_rate_usable)
        ).then(
            pl.format(
                "{} of identified persons linked to CBS (less than {})",
                _percent(pl.col("identified_linkage_rate")),
                pl.lit(f"{t.min_identified_linkage_rate_suitable:.0%}"),
            )
        ),
        pl.when(pl.col("query_type") == "person").then(
            over(
                "missing_person_share",
                t.max_missing_person_share,
                "of person queries without an identified person",
            )
        ),
        over(
            "missing_buurt_code_share",
            t.max_missing_buurt_code_share,
            "of queries without a buurt code",
        ),
        over(
            "missing_query_reason_share",
            t.max_missing_query_reason_share,
            "of queries without a query reason",
        ),
        over("missing_hit_share", t.max_missing_hit_share, "of queries without a hit field"),
    ]
    blocking_list = pl.concat_list(blocking).list.drop_nulls()
    caveat_list = pl.concat_list(caveats).list.drop_nulls()
    verdict = (
        pl.when(blocking_list.list.len() > 0)
        .then(pl.lit(VERDICT_NOT_SUITABLE))
        .when(caveat_list.list.len() > 0)
        .then(pl.lit(VERDICT_CAVEATS))
        .otherwise(pl.lit(VERDICT_SUITABLE))
    )
    reason = (
        pl.when(blocking_list.list.len() + caveat_list.list.len() > 0)
        .then(pl.concat_list([blocking_list, caveat_list]).list.join("; "))
        .otherwise(pl.lit("all thresholds met"))
    )
    return verdict, reason


def compute_data_suitability(
    received: pl.DataFrame,
    quarantine: pl.DataFrame,
    valid_queries: pl.DataFrame | pl.LazyFrame,
    *,
    thresholds: SuitabilityThresholds = DEFAULT_THRESHOLDS,
    reasons: Sequence[str] | None = None,
    teams: Sequence[str] = (),
) -> pl.DataFrame:
    """One row per month × query_type × team_code (and ALL): rows in, out, linked, and a verdict.

    Parameters
    ----------
    received
        One row per month × query_type × raw team_code with ``rows_received`` (see
        :func:`count_received_rows`); a null team_code is read as :data:`NO_TEAM`.
    quarantine
        ``core_quarantine`` rows (month, query_type, team_code, reason, ...).
    valid_queries
        ``core_person_queries`` and ``core_plate_queries`` rows (both types, any months).
    thresholds
        Verdict thresholds (:class:`SuitabilityThresholds`).
    reasons
        Quarantine reason codes, one ``rows_quarantined_<reason>`` column each, in this order;
        default ``assets.quarantine.QUARANTINE_REASONS``. A reason outside the list raises.
    teams
        Team codes that must get a row for every month and query type even without rows
        (zero counts, verdict "not suitable: no valid rows").

    Returns
    -------
    pl.DataFrame
        Sorted by month, query_type, then ALL before the team codes in code order. Columns:
        the keys, rows_received, rows_quarantined, rows_quarantined_<reason>..., rows_valid,
        rows_identified (person_key not null), rows_linked, linkage_rate (linked / valid),
        identified_linkage_rate (linked / identified), quarantined_share (of received),
        missing_person_share, missing_buurt_code_share, missing_query_reason_share,
        missing_hit_share (of valid), officer_count, queries_per_officer (valid rows per
        distinct officer), verdict, verdict_reason. Shares are null when their denominator is 0.

    Raises
    ------
    ValueError
        When a row breaks rows_received = rows_quarantined + rows_valid (named by month, query
        type and team), or a quarantine reason is not in ``reasons``.
    """
    reason_codes = tuple(reasons) if reasons is not None else _load_quarantine_reasons()
    present = quarantine.get_column("reason").unique().to_list()
    unknown = sorted("null" if r is None else r for r in present if r not in reason_codes)
    if unknown:
        raise ValueError(f"quarantine reasons not in the reason list: {', '.join(unknown)}")

    received_counts = _with_all_teams(
        received.lazy().with_columns(pl.col("team_code").fill_null(NO_TEAM)),
        [pl.col("rows_received").sum().cast(pl.Int64)],
    )
    quarantined_counts = _with_all_teams(
        quarantine.lazy().with_columns(pl.col("team_code").fill_null(NO_TEAM)),
        [pl.len().cast(pl.Int64).alias("rows_quarantined")]
        + [
            (pl.col("reason") == code).sum().cast(pl.Int64).alias(f"rows_quarantined_{code}")
            for code in reason_codes
        ],
    )
    valid_aggregations = [
        pl.len().cast(pl.Int64).alias("rows_valid"),
        pl.col("person_key").is_not_null().sum().cast(pl.Int64).alias("rows_identified"),
        pl.col("is_linked").fill_null(False).sum().cast(pl.Int64).alias("rows_linked"),
        pl.col("buurt_code").is_null().sum().cast(pl.Int64).alias("rows_missing_buurt_code"),
        pl.col("query_reason").is_null().sum().cast(pl.Int64).alias("rows_missing_query_reason"),
        pl.col("hit").is_null().sum().cast(pl.Int64).alias("rows_missing_hit"),
        pl.col("officer_key").drop_nulls().n_unique().cast(pl.Int64).alias("officer_count"),
    ]
    valid = valid_queries.lazy()
    months = valid.select(pl.col("month").unique().sort()).collect()["month"].to_list()
    # NOTE: every group lies within one month, so counting a month at a time gives the same
    # table in about 1/12 of the memory (7.9 -> 1.1 GB at 50M person queries, docs/performance.md).
    valid_df = pl.concat(
        [_with_all_teams(valid.filter(pl.col("month") == m), valid_aggregations).collect()
         for m in months]
        or [_with_all_teams(valid, valid_aggregations).collect()]
    )
    received_df, quarantined_df = pl.collect_all([received_counts, quarantined_counts])

    keys = pl.concat(
        [frame.select(GROUP_KEYS) for frame in (received_df, quarantined_df, valid_df)]
    )
    if teams:
        month_types = keys.select("month", "query_type").unique()
        keys = pl.concat(
            [
                keys,
                month_types.join(
                    pl.DataFrame({"team_code": list(teams)}, schema={"team_code": pl.String}),
                    how="cross",
                ).select(GROUP_KEYS),
            ]
        )
    keys = keys.unique()

    count_columns = (
        ["rows_received", "rows_quarantined"]
        + [f"rows_quarantined_{code}" for code in reason_codes]
        + [
            "rows_valid",
            "rows_identified",
            "rows_linked",
            "rows_missing_buurt_code",
            "rows_missing_query_reason",
            "rows_missing_hit",
            "officer_count",
        ]
    )
    table = (
        keys.join(received_df, on=GROUP_KEYS, how="left", nulls_equal=True)
        .join(quarantined_df, on=GROUP_KEYS, how="left", nulls_equal=True)
        .join(valid_df, on=GROUP_KEYS, how="left", nulls_equal=True)
        .with_columns(pl.col(count_columns).fill_null(0))
    )

    broken = table.filter(
        pl.col("rows_received") != pl.col("rows_quarantined") + pl.col("rows_valid")
    ).sort(GROUP_KEYS)
    if broken.height:
        cells = "; ".join(
            f"{r['month']} {r['query_type']} team {r['team_code']}: received {r['rows_received']}"
            f" != quarantined {r['rows_quarantined']} + valid {r['rows_valid']}"
            for r in broken.head(10).iter_rows(named=True)
        )
        raise ValueError(
            f"row accounting broken in {broken.height} cell(s), rows were lost or invented: {cells}"
        )

    def share(numerator: pl.Expr, denominator: str) -> pl.Expr:
        return pl.when(pl.col(denominator) > 0).then(numerator / pl.col(denominator))

    table = table.with_columns(
        linkage_rate=share(pl.col("rows_linked"), "rows_valid"),
        identified_linkage_rate=share(pl.col("rows_linked"), "rows_identified"),
        quarantined_share=share(pl.col("rows_quarantined"), "rows_received"),
        missing_person_share=share(pl.col("rows_valid") - pl.col("rows_identified"), "rows_valid"),
        missing_buurt_code_share=share(pl.col("rows_missing_buurt_code"), "rows_valid"),
        missing_query_reason_share=share(pl.col("rows_missing_query_reason"), "rows_valid"),
        missing_hit_share=share(pl.col("rows_missing_hit"), "rows_valid"),
        queries_per_officer=share(pl.col("rows_valid"), "officer_count"),
    )
    verdict, verdict_reason = _build_verdict(thresholds)
    table = table.with_columns(verdict=verdict, verdict_reason=verdict_reason)

    columns = (
        list(GROUP_KEYS)
        + ["rows_received", "rows_quarantined"]
        + [f"rows_quarantined_{code}" for code in reason_codes]
        + [
            "rows_valid",
            "rows_identified",
            "rows_linked",
            "linkage_rate",
            "identified_linkage_rate",
            "quarantined_share",
            "missing_person_share",
            "missing_buurt_code_share",
            "missing_query_reason_share",
            "missing_hit_share",
            "officer_count",
            "queries_per_officer",
            "verdict",
            "verdict_reason",
        ]
    )
    return table.sort(
        [
            pl.col("month"),
            pl.col("query_type"),
            pl.col("team_code") != ALL_TEAMS,
            pl.col("team_code"),
        ]
    ).select(columns)
