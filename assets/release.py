"""What leaves the secure environment: every out_ table through disclosure control, in order.

The one place that says which published column is a count, an event, a share or an estimate
(a `DisclosureSpec` per table), in which order the tables are controlled, how a cell hidden
in one table is hidden in the others that share its key, which theme cells would give away
a small count by differencing with the team table (assets.disclosure does the suppression),
how the tables relate to each other (`declare_relations`, read by the attacker model of
assets.attacker, which judges the whole release), and what a published table looks like
(`publish`: what follows from a hidden count hidden too, no reasons, 3 significant digits).
docs/publication.md explains it for readers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from assets.atomic import write_bytes_atomic
from assets.attacker import (
    AttackReport,
    Balance,
    Declarations,
    Ratio,
    Rules,
    Side,
    Term,
    Within,
    attack,
)
from assets.disclosure import (
    REASON_COLUMN,
    REASON_PRIMARY,
    REASON_SECONDARY,
    SUPPRESSED_COLUMN,
    TEAM_DISPROPORTIONALITY_SPEC,
    DisclosureSpec,
    Margin,
    apply_disclosure_control,
    check_disclosure,
    primary_expr,
)
from assets.frames import StopcheckError
from assets.quarantine import QUARANTINE_REASONS
from assets.schema import ALL_TEAMS
from assets.themes import Theme, list_nested_themes

TEAM_SPEC = replace(
    TEAM_DISPROPORTIONALITY_SPEC,
    count_columns=(*TEAM_DISPROPORTIONALITY_SPEC.count_columns, "unlinked_count"),
    estimate_columns=(*TEAM_DISPROPORTIONALITY_SPEC.estimate_columns,
                      "rate_ratio_bound_low", "rate_ratio_bound_high"),
    # NOTE: unlinked_count is the team's count, repeated on each origin's and benchmark's row.
    repeated_counts=(("unlinked_count", "origin"), ("unlinked_count", "benchmark")),
    reference_estimates=(*TEAM_DISPROPORTIONALITY_SPEC.reference_estimates,
                         "rate_ratio_bound_low", "rate_ratio_bound_high"),
)

_SUITABILITY_COUNTS = (
    "rows_received", "rows_quarantined", "rows_valid", "rows_identified", "officer_count",
    *(f"rows_quarantined_{reason}" for reason in QUARANTINE_REASONS),
)

SPECS: dict[str, DisclosureSpec] = {
    "out_data_suitability": DisclosureSpec(
        key_columns=("month", "query_type", "team_code"),
        event_counts=("rows_linked",),
        complements=(("rows_linked", "rows_valid"),),
        count_columns=_SUITABILITY_COUNTS,
        estimate_columns=(
            "linkage_rate", "identified_linkage_rate", "quarantined_share",
            "missing_person_share", "missing_buurt_code_share", "missing_query_reason_share",
            "missing_hit_share", "queries_per_officer",
        ),
        margins=(Margin("team_code", ALL_TEAMS),),
        distinct_counts=("officer_count",),
        row_relations=(
            (("rows_quarantined", "rows_valid"), "==", ("rows_received",)),
            (("rows_linked",), "<=", ("rows_identified",)),
            (("rows_identified",), "<=", ("rows_valid",)),
        ),
        # NOTE: the verdict is about data quality, not people; it is shown for every row.
        passthrough_columns=("verdict", "verdict_reason"),
    ),
    "out_team_disproportionality": TEAM_SPEC,
    "out_thematic_disproportionality": replace(
        TEAM_SPEC, key_columns=("theme", *TEAM_SPEC.key_columns),
        passthrough_columns=(*TEAM_SPEC.passthrough_columns, "theme_fingerprint"),
        q_value_family=("theme",)),
    "out_outcome_test": DisclosureSpec(
        key_columns=("query_type", "team_code", "origin"),
        event_counts=("hit_count",),
        complements=(("hit_count", "query_count"),),
        count_columns=("hit_missing_count",),
        estimate_columns=(
            "hit_rate", "hit_rate_ci_low", "hit_rate_ci_high", "hit_rate_diff",
            "hit_rate_diff_ci_low", "hit_rate_diff_ci_high", "mean_team_hit_rate",
            "mean_team_hit_rate_diff", "design_effect", "team_count", "mean_team_diff_team_count",
        ),
        margins=(Margin("team_code", ALL_TEAMS),),
        passthrough_columns=("interval_method",),
        row_relations=((("hit_count",), "<=", ("query_count",)),),
        reference_estimates=("hit_rate_diff", "hit_rate_diff_ci_low", "hit_rate_diff_ci_high",
                             "mean_team_hit_rate_diff", "mean_team_diff_team_count"),
        # NOTE: the team means (and the number of teams behind them) on ALL rows use every
        # team's cell: a mean over teams with one hidden team gives that team's rate away.
        pooled_estimates=("mean_team_hit_rate", "mean_team_hit_rate_diff", "team_count",
                          "mean_team_diff_team_count"),
    ),
    "out_repeat_checks": DisclosureSpec(
        key_columns=("query_type", "team_code", "origin"),
        person_count="person_count",
        event_counts=("query_count", "person_2plus_count", "person_5plus_count"),
        complements=(("person_2plus_count", "person_count"),
                     ("person_5plus_count", "person_count")),
        count_columns=("proco_query_count",),
        estimate_columns=(
            "queries_per_person", "queries_per_person_ratio", "share_queried_2plus",
            "share_queried_5plus", "gini", "gini_poisson_floor", "proco_mean", "proco_median",
            "proco_p90",
            "proco_share_1plus", "proco_share_5plus",
        ),
        margins=(Margin("team_code", ALL_TEAMS),),
        distinct_counts=("person_count",),
        monotone_counts=("person_2plus_count", "person_5plus_count"),
        row_relations=(
            (("person_count",), "<=", ("query_count",)),
            (("person_2plus_count",), "<=", ("person_count",)),
            (("person_5plus_count",), "<=", ("person_2plus_count",)),
            (("proco_query_count",), "==", ("query_count",)),
        ),
        positive_with=(("person_count", "query_count"),),
        reference_estimates=("queries_per_person_ratio",),
    ),
    "out_veil_of_darkness": DisclosureSpec(
        key_columns=("team_code", "design", "origin", "fixed_effects"),
        event_counts=("group_count", "dark_count"),
        complements=(("group_count", "n"), ("dark_count", "n")),
        estimate_columns=("estimate", "std_error", "ci_low", "ci_high", "p_value"),
        passthrough_columns=("window_start_minute", "window_end_minute", "note"),
        row_relations=((("group_count",), "<=", ("n",)), (("dark_count",), "<=", ("n",))),
        repeated_counts=(("n", "fixed_effects"), ("group_count", "fixed_effects"),
                         ("dark_count", "fixed_effects")),
    ),
    "out_team_trends": DisclosureSpec(
        key_columns=("query_type", "benchmark", "team_code", "origin", "comparison"),
        estimate_columns=("change_ratio", "change_ci_low", "change_ci_high", "p_value", "q_value"),
        # NOTE: no counts of its own: a row is hidden when a cell it compares is (see
        # follow_periods); the periods compared are labels, kept on hidden rows.
        passthrough_columns=("period_from", "period_to", "interval_method"),
        q_values=(("q_value", "p_value"),),
    ),
    "out_count_models": DisclosureSpec(
        key_columns=("period_start", "period_end", "query_type", "family", "term", "level"),
        estimate_columns=("ratio", "ci_low", "ci_high", "p_value", "dispersion", "alpha",
                          "deviance"),
        # NOTE: model coefficients pool all cells of a factor level; the fit's size is
        # descriptive, not a count of persons.
        passthrough_columns=("df_resid", "cell_count", "interval_method", "is_estimable"),
    ),
}
"""Disclosure spec per publishable table."""

THEME_KEYS = ("period", "query_type", "benchmark", "team_code", "origin")
"""The keys a theme cell shares with the team table (the theme aside): a theme's quarter is
compared with the team table's same quarter."""

CELL_KEYS = ("query_type", "benchmark", "team_code", "origin")
"""The keys of a cell of the team table within one period (theme and period aside)."""

SHARED_KEYS = ("query_type", "team_code", "origin")
"""Tables whose cells are the team table's cells (default benchmark) under another statistic:
a cell hidden in the team table is hidden in them too, or its count could be rebuilt from them."""
FOLLOWS_TEAM_TABLE = ("out_outcome_test", "out_repeat_checks")


TEAM = "out_team_disproportionality"
THEMATIC = "out_thematic_disproportionality"
TRENDS = "out_team_trends"
ORDER = (TEAM, THEMATIC, TRENDS, "out_outcome_test", "out_repeat_checks",
         "out_veil_of_darkness", "out_count_models", "out_data_suitability")
"""The order in which tables are controlled (the team table first) and complements preferred."""

SIGNIFICANT_DIGITS = 3
"""Published rates, ratios, intervals, p- and q-values carry this many significant digits."""


@dataclass(frozen=True)
class Released:
    """A disclosure-controlled table as published, and its number of suppressed cells.

    `controlled` is the same table for the warehouse: full precision, with the per-cell
    `suppression_reason` that publication leaves out (None for tables built by hand in tests).
    """

    table: pl.DataFrame
    suppressed_count: int
    controlled: pl.DataFrame | None = None


def prepare_repeat_checks(table: pl.DataFrame) -> pl.DataFrame:
    """Add the counts behind the published shares, so the complement rule can be applied."""
    return table.with_columns(
        person_2plus_count=(pl.col("share_queried_2plus") * pl.col("person_count")).round().cast(pl.Int64),
        person_5plus_count=(pl.col("share_queried_5plus") * pl.col("person_count")).round().cast(pl.Int64),
    )


def flag_theme_differences(themes: pl.DataFrame, teams: pl.DataFrame, *, threshold: int,
                           nested: Sequence[tuple[str, str]] = ()) -> pl.DataFrame:
    """Mark theme cells whose difference from a cell that encloses them is a small count.

    A theme is a slice of the queries in the team table, so publishing both publishes their
    difference. Full minus theme ``query_count`` is the number of queries outside the theme,
    and full minus theme ``person_count`` is the number of persons with no query in the theme.
    The same holds for a theme that lies within another theme (``nested``: (inner, outer) name
    pairs, see ``assets.themes.list_nested_themes``). When any such difference is in
    1..threshold − 1, the theme cell gets ``is_suppressed``: it is then suppressed as primary,
    with secondary suppression within the theme table as for any other primary cell. Returns
    the theme table with ``is_suppressed`` added.
    """
    counts = {"_persons": pl.col("person_count"), "_queries": pl.col("query_count")}
    names = pl.DataFrame({"theme": themes["theme"].unique().sort()})
    # NOTE: tables of one period may come without period labels.
    shared = [k for k in THEME_KEYS if k in themes.columns and k in teams.columns]
    enclosing = [teams.select(*shared, **counts).join(names, how="cross")]
    enclosing += [
        themes.filter(pl.col("theme") == outer).select(
            pl.lit(inner).alias("theme"), *shared, **counts)
        for inner, outer in nested
    ]
    keys = ["theme", *shared]
    enclosing = [frame.select(*keys, *counts) for frame in enclosing]

    def small(difference: pl.Expr) -> pl.Expr:
        return ((difference > 0) & (difference < threshold)).fill_null(False)

    flags = (
        themes.select(*keys, "person_count", "query_count")
        .join(pl.concat(enclosing), on=keys, nulls_equal=True)
        .group_by(keys)
        .agg(is_suppressed=(small(pl.col("_persons") - pl.col("person_count"))
                            | small(pl.col("_queries") - pl.col("query_count"))).any())
    )
    # NOTE: a theme table that arrives flagged keeps its flags.
    before = (pl.col(SUPPRESSED_COLUMN).fill_null(False) if SUPPRESSED_COLUMN in themes.columns
              else pl.lit(False))
    return themes.with_columns(_before=before).drop(SUPPRESSED_COLUMN, strict=False).join(
        flags, on=keys, how="left", nulls_equal=True, validate="1:1").with_columns(
        (pl.col(SUPPRESSED_COLUMN).fill_null(False) | pl.col("_before")).alias(SUPPRESSED_COLUMN)
    ).drop("_before")


def declare_relations(tables: Mapping[str, pl.DataFrame], *, reference: str,
                      themes: Sequence[Theme] = ()) -> Declarations:
    """The relations between the tables of one release that the attacker model uses
    (``assets.attacker``), besides each spec's own margins, periods and row relations.

    * the same count published twice: team_residents and area_residents rows; the team
      table's cells (default benchmark, whole range) in the repeat-checks table;
    * totals published elsewhere: queries with and without a filled-in hit field in the outcome
      table add up to the team table's count; a team's linked queries over all origins are the
      data-suitability table's linked rows over the period's months;
    * containment: resident-only within team residents, a theme within the team table and
      within every theme that encloses it, veil-of-darkness counts within plate queries;
    * estimates that are ratios of counts: queries per 1,000 (public population and period
      length), rate ratios and missing-origin bounds (public populations of the row and of the
      reference row), shares and rates of the other tables.
    """
    specs = {name: SPECS[name].restricted_to(frame.columns) for name, frame in tables.items()}
    balances: list[Balance] = []
    within: list[Within] = []
    ratios: list[Ratio] = []
    cells = ("query_count", "person_count", "unlinked_count")
    # NOTE: a theme cell lies within the same cell of every period that contains its own (a
    # theme's quarter within the team table's quarter, year and range).
    periods = (("period_start", "period_end"), ("period_start", "period_end"))
    team = tables.get(TEAM)
    for name in (TEAM, THEMATIC):
        if name not in tables:
            continue
        on = tuple(k for k in specs[name].key_columns if k != "benchmark")
        for column in ("query_count", "person_count"):
            balances.append(Balance(
                f"{name}: {column} under area_residents is the one under team_residents",
                Side(name, (column,), on, (("benchmark", ("area_residents",)),)),
                Side(name, (column,), on, (("benchmark", ("team_residents",)),)), identity=True))
        within.append(Within(
            f"{name}: resident_only within team_residents",
            Side(name, cells[:2], on, (("benchmark", ("resident_only",)),)),
            Side(name, cells[:2], on, (("benchmark", ("team_residents",)),))))
        years = ((pl.col("period_end") - pl.col("period_start")).dt.total_days() + 1) / 365.25
        population, ref_population = pl.col("population"), pl.col("ref_population")
        ratios += [
            Ratio(name, "queries_per_1000", (Term("query_count", 1000.0),),
                  (Term(None, population * years),)),
            Ratio(name, "rate_ratio", (Term("query_count", ref_population),),
                  (Term("query_count", population, reference=True),)),
            Ratio(name, "person_rate_ratio", (Term("person_count", ref_population),),
                  (Term("person_count", population, reference=True),)),
            Ratio(name, "rate_ratio_bound_low", (Term("query_count", ref_population),),
                  (Term("query_count", population, reference=True),
                   Term("unlinked_count", population))),
            Ratio(name, "rate_ratio_bound_high",
                  (Term("query_count", ref_population), Term("unlinked_count", ref_population)),
                  (Term("query_count", population, reference=True),)),
        ]
    if team is not None:
        start, end = team["period_start"].min(), team["period_end"].max()
        whole = (("benchmark", ("team_residents",)), ("period_start", (start,)),
                 ("period_end", (end,)))
        if "period" in team.columns:
            # NOTE: a range that is one calendar year has two labels with the same counts
            # (period relations make them one); the range's label stands for both.
            labels = team.filter((pl.col("period_start") == start) & (pl.col("period_end") == end))[
                "period"].unique().sort(descending=True).to_list()
            whole = (*whole, ("period", tuple(labels[:1])))
        for column in ("query_count", "person_count"):
            balances.append(Balance(
                f"out_repeat_checks: {column} is the team table's", 
                Side("out_repeat_checks", (column,), SHARED_KEYS),
                Side(TEAM, (column,), SHARED_KEYS, whole), identity=True))
        balances.append(Balance(
            "out_outcome_test: queries with and without a hit field are the team table's",
            Side("out_outcome_test", ("query_count", "hit_missing_count"), SHARED_KEYS),
            Side(TEAM, ("query_count",), SHARED_KEYS, whole)))
        balances.append(Balance(
            "out_data_suitability: linked rows of a team are its queries over all origins",
            Side(TEAM, ("query_count",), ("query_type", "team_code"),
                 (("benchmark", ("team_residents",)),)),
            Side("out_data_suitability", ("rows_linked",), ("query_type", "team_code")),
            complete="origin", months_within=("period_start", "period_end", "month")))
        within.append(Within(
            "out_veil_of_darkness: within the plate queries of the origin",
            Side("out_veil_of_darkness", ("group_count",), ("team_code", "origin")),
            Side(TEAM, ("query_count",), ("team_code", "origin"),
                 (*whole, ("query_type", ("plate",))))))
        within.append(Within(f"{THEMATIC}: a theme within the team table",
                             Side(THEMATIC, cells, CELL_KEYS), Side(TEAM, cells, CELL_KEYS),
                             periods))
    for inner, outer in list_nested_themes(themes):
        within.append(Within(
            f"{THEMATIC}: theme {inner} within theme {outer}",
            Side(THEMATIC, cells, CELL_KEYS, (("theme", (inner,)),)),
            Side(THEMATIC, cells, CELL_KEYS, (("theme", (outer,)),)), periods))
    ratios += [
        Ratio("out_outcome_test", "hit_rate", (Term("hit_count"),), (Term("query_count"),)),
        Ratio("out_repeat_checks", "queries_per_person", (Term("query_count"),),
              (Term("person_count"),)),
        Ratio("out_repeat_checks", "share_queried_2plus", (Term("person_2plus_count"),),
              (Term("person_count"),)),
        Ratio("out_repeat_checks", "share_queried_5plus", (Term("person_5plus_count"),),
              (Term("person_count"),)),
        Ratio("out_data_suitability", "linkage_rate", (Term("rows_linked"),),
              (Term("rows_valid"),)),
        Ratio("out_data_suitability", "identified_linkage_rate", (Term("rows_linked"),),
              (Term("rows_identified"),)),
        Ratio("out_data_suitability", "quarantined_share", (Term("rows_quarantined"),),
              (Term("rows_received"),)),
        Ratio("out_data_suitability", "missing_person_share",
              (Term("rows_valid"), Term("rows_identified", -1.0)), (Term("rows_valid"),)),
        Ratio("out_data_suitability", "queries_per_officer", (Term("rows_valid"),),
              (Term("officer_count"),)),
    ]
    return Declarations(specs=specs, balances=tuple(balances), within=tuple(within),
                        ratios=tuple(ratios))


def structural_zeros(tables: Mapping[str, pl.DataFrame],
                     themes: Sequence[Theme] = ()) -> dict[str, pl.DataFrame]:
    """Per table, Boolean columns named after counts that are zero by construction, whatever
    the data: every count of a theme row of a query type the theme leaves out or of a period
    outside the theme's months, and the unlinked queries of a theme on sex or age band (an
    unlinked person has neither). Nothing else is structural: a CBS population of 0 is
    rounded, not a proof of no residents.
    """
    thematic = tables.get(THEMATIC)
    if thematic is None or not themes:
        return {}
    rules = pl.DataFrame({
        "theme": [t.name for t in themes],
        "_types": [list(t.query_types) if t.query_types else None for t in themes],
        "_first": [t.months.first if t.months else None for t in themes],
        "_last": [t.months.last if t.months else None for t in themes],
        "_linked_only": [t.is_age_sex_theme for t in themes],
    }, schema={"theme": pl.String, "_types": pl.List(pl.String), "_first": pl.String,
               "_last": pl.String, "_linked_only": pl.Boolean})
    keys = list(SPECS[THEMATIC].restricted_to(thematic.columns).key_columns)
    joined = thematic.select(*keys).join(rules, on="theme", how="left", maintain_order="left")
    empty_row = (
        (pl.col("_types").is_not_null()
         & ~pl.col("query_type").is_in(pl.col("_types")).fill_null(False))
        | (pl.col("period_end").dt.strftime("%Y-%m") < pl.col("_first")).fill_null(False)
        | (pl.col("period_start").dt.strftime("%Y-%m") > pl.col("_last")).fill_null(False))
    counts = [c for c in SPECS[THEMATIC].published_counts if c in thematic.columns]
    flags = joined.select(
        *keys, *[empty_row.alias(c) for c in counts if c != "unlinked_count"],
        *([(empty_row | pl.col("_linked_only").fill_null(False)).alias("unlinked_count")]
          if "unlinked_count" in counts else []))
    return {THEMATIC: flags}


def publish(controlled: pl.DataFrame, spec: DisclosureSpec, *, reference: str,
            significant_digits: int | None = SIGNIFICANT_DIGITS) -> pl.DataFrame:
    """The table as it leaves the secure environment: what follows from a hidden count hidden
    too, q-values over the published p-values, estimates at the published precision, and no
    per-cell suppression reason (a published cell is a value or empty).

    * estimates against the reference row (ratios, bounds, differences, p- and q-values) are
      emptied when that row is suppressed;
    * pooled estimates (means over teams, shrunk estimates) are emptied in every margin group
      with a suppressed member or a member whose reference row is suppressed;
    * Benjamini–Hochberg q-values are recomputed over the p-values still published;
    * estimates are rounded to `significant_digits` (the warehouse keeps full precision).
    """
    table = controlled.drop(REASON_COLUMN, strict=False)
    hidden = pl.col(SUPPRESSED_COLUMN).fill_null(True)
    d = spec.reference_dimension
    reference_hidden = pl.lit(False)
    if d in table.columns:
        others = [k for k in spec.key_columns if k != d]
        table = table.join(
            table.filter(pl.col(d) == reference).select(*others, _ref_hidden=hidden),
            on=others, how="left", nulls_equal=True, maintain_order="left")
        reference_hidden = pl.col("_ref_hidden").fill_null(False)
        table = table.with_columns(
            pl.when(reference_hidden).then(None).otherwise(pl.col(c)).alias(c)
            for c in spec.reference_estimates if c in table.columns)
    pooled = [c for c in spec.pooled_estimates if c in table.columns]
    for margin in spec.margins:
        if not pooled:
            break
        others = [k for k in spec.key_columns if k != margin.dimension]
        in_scope = pl.lit(True)
        for column, values in margin.where:
            in_scope = in_scope & pl.col(column).is_in(list(values))
        tainted = (in_scope & (hidden | reference_hidden)).any().over(others)
        table = table.with_columns(
            pl.when(in_scope & tainted).then(None).otherwise(pl.col(c)).alias(c) for c in pooled)
    for q_column, p_column in spec.q_values:
        table = _recompute_q_values(table, q_column, p_column, spec.q_value_family)
    table = table.drop("_ref_hidden", strict=False)
    if significant_digits is not None:
        table = table.with_columns(
            round_significant(table.get_column(c), significant_digits)
            for c in spec.estimate_columns if c in table.columns and table.schema[c].is_float())
    return table


def round_significant(values: pl.Series, digits: int) -> pl.Series:
    """`values` to `digits` significant digits, as the double nearest the decimal (so that a
    CSV shows 1.39e-126, not 1.3899999999999997e-126); nulls stay null."""
    array = values.cast(pl.Float64).fill_null(np.nan).to_numpy().copy()
    # NOTE: each distinct finite value formatted once (told apart by its bits, so that −0.0
    # stays −0.0): formatting is the slow part (Python's own `%`, the same strings as
    # np.char.mod in 0.4 of its time). Infinities read back as themselves, every NaN as the
    # plain NaN.
    array[np.isnan(array)] = np.nan
    finite = np.isfinite(array)
    bits, inverse = np.unique(array[finite].view(np.int64), return_inverse=True)
    form = f"%.{digits}g"
    array[finite] = np.array([float(form % x) for x in bits.view(np.float64).tolist()],
                             dtype=float)[inverse]
    rounded = pl.Series(values.name, array)
    # NOTE: NaN and infinities keep their value; only nulls come from the mask.
    return pl.select(pl.when(values.is_null()).then(None).otherwise(rounded)).to_series().alias(
        values.name)


def _recompute_q_values(table: pl.DataFrame, q_column: str, p_column: str,
                        family: Sequence[str]) -> pl.DataFrame:
    from assets.stats.shrinkage import bh_q_values

    tested = pl.col(q_column).is_not_null() & pl.col(p_column).is_not_null()
    indexed = table.with_row_index("_q_row")
    parts = []
    groups = indexed.filter(tested).partition_by(list(family), maintain_order=True) if family \
        else [indexed.filter(tested)]
    for part in groups:
        parts.append(part.select("_q_row", _q=bh_q_values(part.get_column(p_column))))
    recomputed = pl.concat(parts) if parts else pl.DataFrame(
        schema={"_q_row": pl.UInt32, "_q": pl.Float64})
    return indexed.join(recomputed, on="_q_row", how="left", maintain_order="left").with_columns(
        pl.col("_q").cast(table.schema[q_column]).alias(q_column)).drop("_q_row", "_q")


def _ordered(table: pl.DataFrame, spec: DisclosureSpec) -> pl.DataFrame:
    return table.sort(list(spec.key_columns), nulls_last=True, maintain_order=True)


def release_tables(tables: dict[str, pl.DataFrame], *, threshold: int, round_to: int | None,
                   reference: str = "NL", themes: Sequence[Theme] = (),
                   significant_digits: int | None = SIGNIFICANT_DIGITS,
                   log: dict | None = None, cache: dict | None = None) -> dict[str, Released]:
    """Disclosure-control every known, non-empty table of one release, with the attacker model
    of ``assets.attacker`` as the final judge.

    1. Primary suppression per table (``assets.disclosure``), theme cells that differ from an
       enclosing team or theme cell by a small count, and the team table's hidden cells carried
       into the tables that share its keys.
    2. Per table, the fast secondary rules (margins with one hidden cell, linked benchmarks,
       exact derivations over a table's margins).
    3. The tables as published (:func:`publish`) go to :func:`assets.attacker.attack` with
       every relation of :func:`declare_relations`. Each count it pins gets one complementary
       cell hidden: a published cell of a relation that confines it, the cheapest (fewest
       persons; a reference row last, because its ratios go with it; then table order and key
       order). Back to 2 until nothing is pinned.

    Deterministic (no randomness, fixed orders) and finite: every round hides one more row or
    raises. `log`, when given, receives rounds, cells added and the judge's figures; `cache`,
    when given, keeps the attacker's work for the publication check of the same release.
    Raises when a result breaks the rules or a pinned count cannot be protected.
    """
    started = time.perf_counter()
    names = [n for n in ORDER if tables.get(n) is not None and not tables[n].is_empty()]
    specs = {n: SPECS[n].restricted_to(tables[n].columns) for n in names}
    truth: dict[str, pl.DataFrame] = {}
    forced: dict[str, np.ndarray] = {}
    for name in names:
        table = tables[name]
        if name == "out_repeat_checks":
            table = prepare_repeat_checks(table)
        if name == THEMATIC and TEAM in tables:
            table = flag_theme_differences(table, tables[TEAM], threshold=threshold,
                                           nested=list_nested_themes(themes))
        table = _ordered(table, specs[name])
        flags = (table.get_column(SUPPRESSED_COLUMN).fill_null(False).to_numpy()
                 if SUPPRESSED_COLUMN in table.columns else np.zeros(table.height, dtype=bool))
        truth[name] = table.drop(SUPPRESSED_COLUMN, REASON_COLUMN, strict=False)
        forced[name] = flags.copy()
    return control_release(
        truth, specs, declare_relations(truth, reference=reference, themes=themes),
        Rules(threshold=threshold, round_to=round_to, significant_digits=significant_digits,
              reference=reference),
        flagged=forced, structural=structural_zeros(truth, themes), log=log, started=started,
        cache=cache)


def control_release(truth: Mapping[str, pl.DataFrame], specs: Mapping[str, DisclosureSpec],
                    declarations: Declarations, rules: Rules, *,
                    flagged: Mapping[str, np.ndarray] | None = None,
                    structural: Mapping[str, pl.DataFrame] | None = None,
                    log: dict | None = None, started: float | None = None,
                    cache: dict | None = None) -> dict[str, Released]:
    """Steps 2 and 3 of :func:`release_tables` for any tables, specs and declarations.

    `truth` holds the unsuppressed tables sorted by their keys, in the order they are
    controlled; `flagged` the rows to suppress as primary beyond each spec's own rules.
    """
    started = time.perf_counter() if started is None else started
    names = list(truth)
    forced = {n: np.asarray(flagged[n] if flagged and n in flagged
                            else np.zeros(truth[n].height, dtype=bool)).copy() for n in names}
    primary = {n: forced[n] | truth[n].select(primary_expr(specs[n], rules.threshold))
               .to_series().to_numpy() for n in names}
    rounds, added, programmes = 0, 0, 0
    cache = {} if cache is None else cache
    while True:
        rounds += 1
        controlled = _control(truth, forced, specs, threshold=rules.threshold,
                              round_to=rules.round_to, reference=rules.reference)
        # NOTE: what one round hides stays hidden in the next: suppression only grows, so the
        # search ends, and the attacker's feasible points of earlier rounds stay feasible
        # (they certify most counts again without a programme).
        for name in names:
            forced[name] |= controlled[name].get_column(SUPPRESSED_COLUMN).to_numpy()
        published = {n: publish(controlled[n], specs[n], reference=rules.reference,
                                significant_digits=rules.significant_digits) for n in names}
        report = attack(published, declarations, rules, public=truth, truth=truth,
                        structural=structural, cache=cache)
        programmes += report.stats["linear_programmes"]
        if report.stats["inconsistent_components"]:
            raise StopcheckError("disclosure control: the attacker model found relations that "
                                 "contradict each other; a declaration is wrong")
        if report.stats["unsolved_programmes"]:
            raise StopcheckError(
                f"disclosure control: the attacker model could not solve "
                f"{report.stats['unsolved_programmes']} linear programme(s), so some suppressed "
                "counts have no bounds; the release is not judged safe")
        if report.pinned.is_empty():
            break
        picks = _choose_complements(report, controlled, truth, specs, reference=rules.reference)
        if not picks:
            raise StopcheckError(
                f"disclosure control: {report.pinned.height} suppressed counts stay pinned and "
                "no published cell is left to hide")
        for name, row in picks:
            forced[name][row] = True
        added += len(picks)
    if log is not None:
        log.update({**report.stats, "rounds": rounds, "complements_added": added,
                    "linear_programmes_all_rounds": programmes,
                    "seconds_total": round(time.perf_counter() - started, 3)})
    released: dict[str, Released] = {}
    for name in names:
        hidden = controlled[name].get_column(SUPPRESSED_COLUMN).to_numpy()
        reasons = np.where(primary[name] & hidden, REASON_PRIMARY,
                           np.where(hidden, REASON_SECONDARY, None))
        warehouse = controlled[name].with_columns(
            pl.Series(REASON_COLUMN, reasons.tolist(), dtype=pl.String))
        violations = check_disclosure(published[name], specs[name], threshold=rules.threshold)
        if violations:
            raise StopcheckError(f"{name}: disclosure control failed: " + "; ".join(violations))
        released[name] = Released(published[name], int(hidden.sum()), warehouse)
    return released


TRENDS_OVER_EVERY_PERIOD = ("trend_per_year",)
"""Comparisons of out_team_trends fitted to every period from `period_from` to `period_to`
(the others compare those two periods only)."""


def follow_periods(trends: pl.DataFrame, team: pl.DataFrame, *, reference: str) -> pl.DataFrame:
    """Trend rows flagged `is_suppressed` when the team table hides a cell they are derived
    from: the row's own cell or the reference origin's, at `period_from` and `period_to`, and
    for a trend over every period (`TRENDS_OVER_EVERY_PERIOD`) at each quarter in between. A
    cell the team table does not have counts as hidden."""
    keys = ["query_type", "benchmark", "team_code"]
    hidden = team.select(*keys, "origin", "period", _hidden=pl.col(SUPPRESSED_COLUMN))
    reference_hidden = hidden.filter(pl.col("origin") == reference).drop("origin")
    quarters = pl.DataFrame({"period": sorted(
        q for q in team.get_column("period").unique().drop_nulls()
        if re.fullmatch(r"\d{4}-Q[1-4]", q))}, schema={"period": pl.String})
    indexed = trends.with_row_index("_trend")
    cell = ["_trend", *keys, "origin"]
    uses = pl.concat([
        indexed.select(*cell, period=pl.col("period_from")),
        indexed.select(*cell, period=pl.col("period_to")),
        indexed.filter(pl.col("comparison").is_in(TRENDS_OVER_EVERY_PERIOD))
        .join(quarters, how="cross")
        .filter(pl.col("period").is_between(pl.col("period_from"), pl.col("period_to")))
        .select(*cell, "period"),
    ])
    derived_hidden = (
        uses.join(hidden, on=[*keys, "origin", "period"], how="left")
        .join(reference_hidden.rename({"_hidden": "_ref"}), on=[*keys, "period"], how="left")
        .group_by("_trend").agg(_any=(pl.col("_hidden").fill_null(True)
                                      | pl.col("_ref").fill_null(True)).any()))
    return (indexed.join(derived_hidden, on="_trend", how="left", maintain_order="left")
            .with_columns((pl.col(SUPPRESSED_COLUMN) | pl.col("_any").fill_null(True))
                          .alias(SUPPRESSED_COLUMN))
            .drop("_trend", "_any"))


def _control(truth: Mapping[str, pl.DataFrame], forced: Mapping[str, np.ndarray],
             specs: Mapping[str, DisclosureSpec], *, threshold: int,
             round_to: int | None, reference: str) -> dict[str, pl.DataFrame]:
    """One pass of the per-table rules, the team table first and its hidden cells carried
    into the tables that share its keys and into the trends that compare its periods."""
    controlled: dict[str, pl.DataFrame] = {}
    team_hidden = None
    for name, table in truth.items():
        flags = pl.Series(SUPPRESSED_COLUMN, forced[name], dtype=pl.Boolean)
        table = table.with_columns(flags)
        if name == TRENDS and TEAM in controlled:
            table = follow_periods(table, controlled[TEAM], reference=reference)
        if name in FOLLOWS_TEAM_TABLE and team_hidden is not None:
            # NOTE: the other tables count all linked queries of a team over the whole range,
            # as the default benchmark does; a range cell hidden under any benchmark is hidden
            # there (a hidden quarter is not: the range is a count of its own).
            table = table.join(team_hidden, on=list(SHARED_KEYS), how="left",
                               maintain_order="left").with_columns(
                (pl.col(SUPPRESSED_COLUMN) | pl.col("_team").fill_null(False))
                .alias(SUPPRESSED_COLUMN)).drop("_team")
        controlled[name] = apply_disclosure_control(table, specs[name], threshold=threshold,
                                                    round_to=round_to)
        if name == TEAM:
            team = controlled[name]
            team_hidden = team.filter(
                (pl.col("period_start") == team["period_start"].min())
                & (pl.col("period_end") == team["period_end"].max())
            ).group_by(list(SHARED_KEYS)).agg(_team=pl.col(SUPPRESSED_COLUMN).any())
    return controlled


def _choose_complements(report: AttackReport, controlled: Mapping[str, pl.DataFrame],
                        truth: Mapping[str, pl.DataFrame], specs: Mapping[str, DisclosureSpec],
                        *, reference: str) -> list[tuple[str, int]]:
    """One published cell per pinned count, from the relations that confine it; a count whose
    relations already lost a cell this round waits for the next round."""
    hidden = {n: t.get_column(SUPPRESSED_COLUMN).to_numpy() for n, t in controlled.items()}
    order = {name: i for i, name in enumerate(truth)}
    sizes: dict[str, np.ndarray] = {}
    is_reference: dict[str, np.ndarray] = {}
    for name, table in truth.items():
        spec = specs[name]
        size = spec.published_counts[0] if spec.published_counts else None
        sizes[name] = (table.get_column(size).cast(pl.Float64).fill_null(np.inf).to_numpy()
                       if size else np.full(table.height, np.inf))
        d = spec.reference_dimension
        is_reference[name] = ((table.get_column(d) == reference).fill_null(False).to_numpy()
                              if d in table.columns else np.zeros(table.height, dtype=bool))
    picks: list[tuple[str, int]] = []
    relaxed: set[tuple[str, int]] = set()
    for variable in report.pinned.get_column("variable").to_list():
        candidates = [(t, r) for t, r in report.binding.get(variable, []) if not hidden[t][r]]
        if any(c in relaxed for c in report.binding.get(variable, [])):
            continue
        if not candidates:
            continue
        best = min(candidates, key=lambda c: (bool(is_reference[c[0]][c[1]]), sizes[c[0]][c[1]],
                                              order[c[0]], c[1]))
        picks.append(best)
        relaxed.add(best)
    return sorted(set(picks), key=lambda c: (order[c[0]], c[1]))


def write_release(folder: Path, released: dict[str, Released], companion: dict) -> list[Path]:
    """Write each table as `<name>.csv` with a `<name>.json` companion (settings, code version,
    period, input fingerprint, row and suppression counts). Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, item in sorted(released.items()):
        csv_path = folder / f"{name}.csv"
        write_bytes_atomic(csv_path, item.table.write_csv().encode())
        meta = {**companion, "table": name, "row_count": item.table.height,
                "suppressed_count": item.suppressed_count}
        json_path = folder / f"{name}.json"
        write_bytes_atomic(json_path, (json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n").encode())
        written += [csv_path, json_path]
    return written


def write_checked_release(folder: Path, released: dict[str, Released], companion: dict,
                          threshold: int, *, rules: Rules | None = None,
                          themes: Sequence[Theme] = (),
                          cache: dict | None = None) -> tuple[list[Path], dict]:
    """:func:`write_release`, then :func:`recheck_published` on what was written. When the
    re-read fails, the files just written are removed again: nothing that fails disclosure
    control stays in the publication folder. Returns the files written and the check."""
    written = write_release(folder, released, companion)
    check = recheck_published(folder, threshold, released=released, rules=rules, themes=themes,
                              cache=cache)
    if not check["passed"]:
        for path in written:
            path.unlink(missing_ok=True)
    return written, check


def read_published(folder: Path) -> dict[str, pl.DataFrame]:
    """Every published CSV of a folder, typed by its spec (the attacker reads these)."""
    tables = {}
    for path in sorted(folder.glob("out_*.csv")):
        spec = SPECS[path.stem]
        # NOTE: a column that is empty on every row would be read as text; the spec knows.
        types = {**{c: pl.Int64 for c in spec.published_counts},
                 **{c: pl.Float64 for c in spec.estimate_columns}}
        header = pl.read_csv(path, n_rows=0).columns
        table = pl.read_csv(path, infer_schema_length=None,
                            schema_overrides={c: t for c, t in types.items() if c in header})
        # NOTE: text columns of ISO dates only (period_start, period_end) become dates. polars'
        # try_parse_dates does the same but tries every text value as a date and a time: 3 of
        # the 3.6 s of reading the sample's release.
        dates = [c for c, dtype in table.schema.items() if dtype == pl.String
                 and table[c].null_count() < table.height
                 and table[c].drop_nulls().str.contains(_ISO_DATE).all()]
        tables[path.stem] = table.with_columns(pl.col(dates).str.to_date("%Y-%m-%d"))
    return tables


_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def recheck_published(folder: Path, threshold: int, *,
                      released: Mapping[str, Released] | None = None,
                      rules: Rules | None = None, themes: Sequence[Theme] = (),
                      cache: dict | None = None) -> dict:
    """Re-read every published CSV and check it against its spec, and (given the released
    tables with their warehouse copies) run the attacker model over all of them together: the
    result of the publication check as `passed` and aggregate `metadata` (violating row
    counts and the attacker's figures, never values). With the judge's `cache`, components
    whose programmes are exactly the judged ones are not solved again (what was re-read is
    what was judged); any difference is solved afresh."""
    violations = {}
    tables = read_published(folder)
    for name, table in tables.items():
        spec = SPECS[name]
        problems = check_disclosure(table, spec.restricted_to(table.columns), threshold=threshold)
        if REASON_COLUMN in table.columns:
            problems.append(f"{REASON_COLUMN!r} is published")
        if problems:
            violations[f"{name}.csv"] = "; ".join(problems)
    audit = {}
    controlled = {n: r.controlled for n, r in (released or {}).items() if r.controlled is not None}
    unjudged = sorted(set(tables) - set(controlled))
    if released is not None and unjudged:
        # NOTE: a CSV in publication/ that this release did not control (left from an earlier
        # run, or written by hand) cannot be judged: it is refused, never skipped.
        violations["attacker"] = f"published tables without a controlled copy: {unjudged}"
    elif controlled:
        rules = rules or Rules(threshold=threshold)
        truth = {n: t.drop(SUPPRESSED_COLUMN, REASON_COLUMN, strict=False)
                 for n, t in controlled.items()}
        report = attack(tables, declare_relations(truth, reference=rules.reference, themes=themes),
                        rules, public=truth, truth=truth,
                        structural=structural_zeros(truth, themes), cache=cache)
        audit = {f"attacker_{k}": v for k, v in report.stats.items()}
        if (report.stats["pinned"] or report.stats["inconsistent_components"]
                or report.stats["unsolved_programmes"]):
            violations["attacker"] = (
                f"{report.stats['pinned']} suppressed counts are pinned by the relations of the "
                f"whole release ({report.stats['inconsistent_components']} inconsistent "
                f"components, {report.stats['unsolved_programmes']} unsolved programmes)")
    return {"passed": not violations,
            "metadata": {"tables_checked": len(tables),
                         "tables_failing": sum(k.endswith(".csv") for k in violations),
                         **audit, **violations}}

