"""What leaves the secure environment: every out_ table through disclosure control, in order.

The one place that says which published column is a count, an event, a share or an estimate
(a `DisclosureSpec` per table), in which order the tables are controlled, how a cell hidden
in one table is hidden in the others that share its key, and which theme cells would give away
a small count by differencing with the team table (assets.disclosure does the suppression).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from assets.atomic import write_bytes_atomic
from assets.disclosure import (
    TEAM_DISPROPORTIONALITY_SPEC,
    DisclosureSpec,
    Margin,
    apply_disclosure_control,
    check_disclosure,
)
from assets.frames import StopcheckError
from assets.quarantine import QUARANTINE_REASONS
from assets.schema import ALL_TEAMS

TEAM_SPEC = replace(
    TEAM_DISPROPORTIONALITY_SPEC,
    count_columns=(*TEAM_DISPROPORTIONALITY_SPEC.count_columns, "unlinked_count"),
    estimate_columns=(*TEAM_DISPROPORTIONALITY_SPEC.estimate_columns,
                      "rate_ratio_bound_low", "rate_ratio_bound_high"),
)

SPECS: dict[str, DisclosureSpec] = {
    "out_data_suitability": DisclosureSpec(
        key_columns=("month", "query_type", "team_code"),
        event_counts=("rows_linked",),
        complements=(("rows_linked", "rows_valid"),),
        count_columns=(
            "rows_received", "rows_quarantined", "rows_valid", "rows_identified", "officer_count",
            *(f"rows_quarantined_{reason}" for reason in QUARANTINE_REASONS),
        ),
        estimate_columns=(
            "linkage_rate", "identified_linkage_rate", "quarantined_share",
            "missing_person_share", "missing_buurt_code_share", "missing_query_reason_share",
            "missing_hit_share", "queries_per_officer",
        ),
        margins=(Margin("team_code", ALL_TEAMS),),
        # NOTE: the verdict is about data quality, not people; it is shown for every row.
        passthrough_columns=("verdict", "verdict_reason"),
    ),
    "out_team_disproportionality": TEAM_SPEC,
    "out_thematic_disproportionality": replace(
        TEAM_SPEC, key_columns=("theme", *TEAM_SPEC.key_columns),
        passthrough_columns=(*TEAM_SPEC.passthrough_columns, "theme_fingerprint")),
    "out_outcome_test": DisclosureSpec(
        key_columns=("query_type", "team_code", "origin"),
        event_counts=("hit_count",),
        complements=(("hit_count", "query_count"),),
        count_columns=("hit_missing_count",),
        estimate_columns=(
            "hit_rate", "hit_rate_ci_low", "hit_rate_ci_high", "hit_rate_diff",
            "hit_rate_diff_ci_low", "hit_rate_diff_ci_high", "mean_team_hit_rate",
            "mean_team_hit_rate_diff", "design_effect",
        ),
        margins=(Margin("team_code", ALL_TEAMS),),
        passthrough_columns=("team_count", "mean_team_diff_team_count", "interval_method"),
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
    ),
    "out_veil_of_darkness": DisclosureSpec(
        key_columns=("team_code", "design", "origin", "fixed_effects"),
        event_counts=("group_count", "dark_count"),
        complements=(("group_count", "n"), ("dark_count", "n")),
        estimate_columns=("estimate", "std_error", "ci_low", "ci_high", "p_value"),
        passthrough_columns=("window_start_minute", "window_end_minute", "note"),
    ),
    "out_team_trends": DisclosureSpec(
        key_columns=("query_type", "benchmark", "team_code", "origin", "comparison"),
        estimate_columns=("change_ratio", "change_ci_low", "change_ci_high", "p_value", "q_value"),
        # NOTE: no counts of its own: a change is hidden with the quarter cells it is made of
        # (`hide_trends_of_hidden_quarters`).
        passthrough_columns=("period_from", "period_to", "interval_method"),
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

SHARED_KEYS = ("query_type", "team_code", "origin")
"""Tables whose cells are the team table's cells (default benchmark) under another statistic:
a cell hidden in the team table is hidden in them too, or its count could be rebuilt from them."""
FOLLOWS_TEAM_TABLE = ("out_outcome_test", "out_repeat_checks")


@dataclass(frozen=True)
class Released:
    """A disclosure-controlled table and its counts of suppressed cells."""

    table: pl.DataFrame
    suppressed_count: int


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
    enclosing = [teams.select(*THEME_KEYS, **counts).join(names, how="cross")]
    enclosing += [
        themes.filter(pl.col("theme") == outer).select(
            pl.lit(inner).alias("theme"), *THEME_KEYS, **counts)
        for inner, outer in nested
    ]
    keys = ["theme", *THEME_KEYS]
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
    return themes.join(flags, on=keys, how="left", nulls_equal=True, validate="1:1").with_columns(
        pl.col("is_suppressed").fill_null(False))


def hide_trends_of_hidden_quarters(trends: pl.DataFrame, teams: pl.DataFrame,
                                   reference: str) -> pl.DataFrame:
    """Mark a change as suppressed when a quarter cell it is made of is suppressed in the
    released team table: the group's or the reference origin's, in the same query type,
    benchmark and team, in any complete quarter (a trend uses them all). Returns `trends` with
    ``is_suppressed``."""
    quarters = teams.filter(pl.col("period").str.contains(r"^\d{4}-Q[1-4]$"))
    hidden = quarters.group_by("query_type", "benchmark", "team_code", "origin").agg(
        _hidden=pl.col("is_suppressed").any())
    ref = hidden.filter(pl.col("origin") == reference).drop("origin").rename(
        {"_hidden": "_ref_hidden"})
    cell = ["query_type", "benchmark", "team_code"]
    return (
        trends.join(hidden, on=[*cell, "origin"], how="left")
        .join(ref, on=cell, how="left")
        .with_columns(is_suppressed=pl.col("_hidden").fill_null(True)
                      | pl.col("_ref_hidden").fill_null(True))
        .drop("_hidden", "_ref_hidden")
    )


def release_tables(tables: dict[str, pl.DataFrame], *, threshold: int, round_to: int | None,
                   nested_themes: Sequence[tuple[str, str]] = (),
                   reference: str = "NL") -> dict[str, Released]:
    """Disclosure-control every known, non-empty table; the team table first, its suppressed
    cells carried into the tables that share its keys, and theme cells that differ from an
    enclosing team or theme cell by a small count suppressed (``nested_themes``: (inner,
    outer) pairs). Raises when a result breaks the rules."""
    released: dict[str, Released] = {}
    team_hidden = None
    order = ["out_team_disproportionality"] + [n for n in SPECS if n != "out_team_disproportionality"]
    for name in order:
        table = tables.get(name)
        if table is None or table.is_empty():
            continue
        spec = SPECS[name]
        if name == "out_repeat_checks":
            table = prepare_repeat_checks(table)
        if name == "out_thematic_disproportionality" and tables.get(
                "out_team_disproportionality") is not None:
            table = flag_theme_differences(table, tables["out_team_disproportionality"],
                                           threshold=threshold, nested=nested_themes)
        if name == "out_team_trends" and "out_team_disproportionality" in released:
            table = hide_trends_of_hidden_quarters(
                table, released["out_team_disproportionality"].table, reference)
        if name in FOLLOWS_TEAM_TABLE and team_hidden is not None:
            table = table.join(team_hidden, on=list(SHARED_KEYS), how="left").with_columns(
                pl.col("is_suppressed").fill_null(False))
        controlled = apply_disclosure_control(table, spec.restricted_to(table.columns),
                                              threshold=threshold, round_to=round_to)
        violations = check_disclosure(controlled, spec.restricted_to(table.columns),
                                      threshold=threshold)
        if violations:
            raise StopcheckError(f"{name}: disclosure control failed: " + "; ".join(violations))
        released[name] = Released(controlled, int(controlled["is_suppressed"].sum()))
        if name == "out_team_disproportionality":
            # NOTE: the other tables count all linked queries of a team over the whole range, as
            # the default benchmark does; a range cell hidden under any benchmark is hidden there.
            whole = controlled.filter(pl.col("period").str.contains(r"\.\."))
            team_hidden = whole.group_by(list(SHARED_KEYS)).agg(
                is_suppressed=pl.col("is_suppressed").any())
    return released


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
                          threshold: int) -> tuple[list[Path], dict]:
    """:func:`write_release`, then :func:`recheck_published` on what was written. When the
    re-read fails, the files just written are removed again: nothing that fails disclosure
    control stays in the publication folder. Returns the files written and the check."""
    written = write_release(folder, released, companion)
    check = recheck_published(folder, threshold)
    if not check["passed"]:
        for path in written:
            path.unlink(missing_ok=True)
    return written, check


def recheck_published(folder: Path, threshold: int) -> dict:
    """Re-read every published CSV and check it against its spec: the result of the publication
    check as `passed` and aggregate `metadata` (violating row counts, never values)."""
    violations = {}
    for path in sorted(folder.glob("out_*.csv")):
        spec = SPECS[path.stem]
        # NOTE: a column that is empty on every row would be read as text; the spec knows.
        types = {**{c: pl.Int64 for c in spec.published_counts},
                 **{c: pl.Float64 for c in spec.estimate_columns}}
        header = pl.read_csv(path, n_rows=0).columns
        table = pl.read_csv(path, try_parse_dates=True, infer_schema_length=None,
                            schema_overrides={c: t for c, t in types.items() if c in header})
        problems = check_disclosure(table, spec.restricted_to(table.columns), threshold=threshold)
        if problems:
            violations[path.name] = "; ".join(problems)
    return {"passed": not violations,
            "metadata": {"tables_checked": len(list(folder.glob("out_*.csv"))),
                         "tables_failing": len(violations), **violations}}
