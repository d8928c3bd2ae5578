"""The report's sections: one builder function per section, from publication tables to data.

A builder takes the tables, the context, the language and the page's figure renderer, and
returns a :class:`~assets.report.document.Section` (or None when its table is absent): which
template shows it, and the rows, numbers and figures it shows. Builders hold no words and format
no number: the template does, through the words file and the filters of ``assets.report.view``.
Figures are the exception, as their text is drawn into the SVG: they take words from the
language.

A row with ``is_suppressed`` true is never shown as a number and never plotted, whatever values it
still carries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from assets.report.document import (
    Column,
    ReportContext,
    Section,
    Table,
    ThemeSection,
    is_suppressed_row,
    label,
    value,
)
from assets.report.figures import (
    Figure,
    Figures,
    Legend,
    bar_chart,
    forest_chart,
    funnel_chart,
    interval_chart,
    line_chart,
)
from assets.report.language import Language, is_number
from assets.schema import ALL_TEAMS, ORIGIN_CODES
from assets.stats.shrinkage import estimate_funnel_overdispersion, funnel_limits

TEAM_TABLE = "out_team_disproportionality"
SUITABILITY_TABLE = "out_data_suitability"
OUTCOME_TABLE = "out_outcome_test"
REPEAT_TABLE = "out_repeat_checks"
VOD_TABLE = "out_veil_of_darkness"
COUNT_MODEL_TABLE = "out_count_models"
TRENDS_TABLE = "out_team_trends"
KNOWN_TABLES = (
    TEAM_TABLE,
    TRENDS_TABLE,
    SUITABILITY_TABLE,
    OUTCOME_TABLE,
    REPEAT_TABLE,
    VOD_TABLE,
    COUNT_MODEL_TABLE,
)

# (ratio column, low column, high column, colour); the words group "estimators" names them.
_ESTIMATORS = (
    ("rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high", "#8c8c8c"),
    ("std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", "#1f5fa8"),
    ("shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high", "#d9741c"),
    ("person_rate_ratio", "person_rate_ratio_ci_low", "person_rate_ratio_ci_high", "#2a8c55"),
)
# Colours of the origins in the change-over-time figures, in report order of the origins.
_ORIGIN_COLOURS = ("#1f5fa8", "#d9741c", "#2a8c55", "#8c5fa8", "#b8860b", "#c0392b", "#4aa3c8",
                   "#7f7f7f", "#e377c2", "#17becf")
QUARTER_PATTERN = r"^\d{4}-Q[1-4]$"
"""A period label of one calendar quarter (``2025-Q3``) in out_team_disproportionality."""

Tables = Mapping[str, pl.DataFrame]
Builder = Callable[[Tables, ReportContext, Language, Figures], "Section | None"]



# --------------------------------------------------------------------------------------------
# Table helpers.


def published(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows that were not suppressed (all rows when the table has no `is_suppressed`)."""
    if "is_suppressed" not in frame.columns:
        return frame
    return frame.filter(~pl.col("is_suppressed").fill_null(True))


def _origin_sort_key(origin: object) -> tuple[int, str]:
    code = str(origin)
    return (ORIGIN_CODES.index(code), code) if code in ORIGIN_CODES else (len(ORIGIN_CODES), code)


def _team_sort_key(team: object) -> tuple[int, str]:
    return (0, "") if team == ALL_TEAMS else (1, str(team))


def sorted_rows(frame: pl.DataFrame, keys: Sequence[str]) -> list[dict[str, object]]:
    """Rows as dicts, sorted by the key columns present (origin and team in report order)."""
    rows = frame.to_dicts()

    def key(row: Mapping[str, object]) -> tuple:
        parts: list[object] = []
        for k in keys:
            if k not in frame.columns:
                continue
            value = row.get(k)
            if k in ("origin", "level"):
                # NOTE: a count model's level is an origin code for its origin terms.
                parts.append(_origin_sort_key(value))
            elif k == "team_code":
                parts.append(_team_sort_key(value))
            else:
                # NOTE: values of one column share a type, so they compare with each other.
                parts.append((value is None, "" if value is None else value))
        return tuple(parts)

    return sorted(rows, key=key)


def _table(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    keys: Sequence[str],
    *,
    source: str | None,
    where: Mapping[str, object] | None = None,
) -> Table:
    """The columns whose sources `frame` has, and its rows sorted by `keys`."""
    present = tuple(c for c in columns if c.sources[0] in frame.columns)
    return Table(
        columns=present,
        rows=tuple(sorted_rows(frame, keys)),
        source=source,
        where={k: str(v) for k, v in (where or {}).items()},
    )


@dataclass(frozen=True)
class PeriodNote:
    """The period a table is shown for, when it is not the report's period."""

    start: str
    end: str


def select_period(
    frame: pl.DataFrame, context: ReportContext
) -> tuple[pl.DataFrame, PeriodNote | None]:
    """The rows of the report's period, or of the latest period when none match (with a note).

    In a table with a `period` label per row the report's period is the whole range (labelled
    ``first..last``); quarters and calendar years of the same dates are other rows.
    """
    if not {"period_start", "period_end"} <= set(frame.columns) or frame.is_empty():
        return frame, None
    if "period" in frame.columns:
        frame = frame.filter(pl.col("period").str.contains("..", literal=True))
    matching = frame.filter(
        (pl.col("period_start") == context.period_start)
        & (pl.col("period_end") == context.period_end)
    )
    if not matching.is_empty():
        return matching, None
    latest = frame.sort("period_end", "period_start", nulls_last=True).row(-1, named=True)
    chosen = frame.filter(
        (pl.col("period_start") == latest["period_start"])
        & (pl.col("period_end") == latest["period_end"])
    )
    return chosen, PeriodNote(str(latest["period_start"]), str(latest["period_end"]))


def select_benchmark(frame: pl.DataFrame, context: ReportContext) -> pl.DataFrame:
    if "benchmark" not in frame.columns:
        return frame
    return frame.filter(pl.col("benchmark") == context.benchmark)


def query_types(frame: pl.DataFrame) -> list[str | None]:
    if "query_type" not in frame.columns:
        return [None]
    return sorted(frame.get_column("query_type").drop_nulls().unique().to_list())


def of_type(frame: pl.DataFrame, query_type: str | None) -> pl.DataFrame:
    return frame if query_type is None else frame.filter(pl.col("query_type") == query_type)


def whole_area(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows for all teams together (the table as it is when it has no team column)."""
    return frame.filter(pl.col("team_code") == ALL_TEAMS) if "team_code" in frame.columns else frame


def _whole_area_table(
    frame: pl.DataFrame, columns: Sequence[Column], keys: Sequence[str], source: str
) -> Table:
    """The rows of `frame` for all teams together, as a table of the published `source`."""
    where = {"team_code": ALL_TEAMS} if "team_code" in frame.columns else {}
    return _table(whole_area(frame), columns, keys, source=source, where=where)


def _period_where(frame: pl.DataFrame) -> dict[str, object]:
    """The period of rows that share one (for ``data-where``)."""
    columns = [c for c in ("period", "period_start", "period_end") if c in frame.columns]
    return {c: frame[c][0] for c in columns} if not frame.is_empty() else {}


def _type_key(query_type: str | None) -> str:
    """The words key of a query type (``all`` for a table without one)."""
    return "all" if query_type is None else str(query_type)


# --------------------------------------------------------------------------------------------
# Summary statements (the summary section and every theme).


@dataclass(frozen=True)
class Statement:
    """One plain-language statement of the summary: its words key and values.

    ``kind`` is ``more``, ``more_and_less``, ``less`` (one origin, counts of teams), or
    ``no_difference`` and ``all_hidden`` (several origins, no counts).
    """

    kind: str
    origins: tuple[str, ...]
    above: int = 0
    below: int = 0
    published: int = 0


@dataclass(frozen=True)
class SummaryBlock:
    """The statements and table of one query type."""

    query_type: str
    statements: tuple[Statement, ...]
    table: Table


@dataclass(frozen=True)
class Summary:
    """The summary of a team table: which measure and criterion, and one block per query type."""

    is_empty: bool
    note: PeriodNote | None = None
    is_standardised: bool = False
    has_q: bool = False
    blocks: tuple[SummaryBlock, ...] = ()


def _ratio_family(frame: pl.DataFrame) -> tuple[str, str, str, bool]:
    """The ratio used for statements: standardised when present and filled, else crude."""
    if {"std_ratio", "std_ratio_ci_low", "std_ratio_ci_high"} <= set(frame.columns) and (
        published(frame).get_column("std_ratio").drop_nulls().len() > 0
    ):
        return "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", True
    return "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high", False


_SUMMARY_COLUMNS = (
    label("columns.origin", "origin", "origin"),
    value("summary.whole", "ratio_ci", "whole_ratio", "whole_low", "whole_high"),
    value("summary.above", "count", "above"),
    value("summary.below", "count", "below"),
    value("summary.published", "count", "published"),
    value("summary.suppressed", "count", "suppressed"),
)


def summarise(frame: pl.DataFrame, context: ReportContext) -> Summary:
    """Per query type and origin, the teams clearly above or below 1 (interval and q-value)."""
    frame, note = select_period(select_benchmark(frame, context), context)
    if frame.is_empty() or not {"origin", "team_code"} <= set(frame.columns):
        return Summary(is_empty=True)
    ratio, low, high, standardised = _ratio_family(frame)
    has_q = "q_value" in frame.columns
    blocks = []
    for query_type in query_types(frame):
        typed = of_type(frame, query_type)
        statements, rows, no_difference, all_hidden = [], [], [], []
        origins = sorted(
            {o for o in typed.get_column("origin").to_list() if o != context.reference_origin},
            key=_origin_sort_key,
        )
        for origin in origins:
            cells = typed.filter(pl.col("origin") == origin)
            teams = cells.filter(pl.col("team_code") != ALL_TEAMS)
            shown = published(teams).filter(pl.col(ratio).is_not_null())
            clear = shown.filter(pl.col("q_value") < context.fdr_level) if has_q else shown
            above = clear.filter(pl.col(low) > 1).height
            below = clear.filter(pl.col(high) < 1).height
            whole = published(cells.filter(pl.col("team_code") == ALL_TEAMS)).to_dicts()
            whole_row = whole[0] if whole else {}
            rows.append({
                "origin": origin, "whole_ratio": whole_row.get(ratio),
                "whole_low": whole_row.get(low), "whole_high": whole_row.get(high),
                "above": above, "below": below, "published": shown.height,
                "suppressed": teams.height - published(teams).height,
            })  # fmt: skip
            if above:
                kind = "more_and_less" if below else "more"
                statements.append(Statement(kind, (origin,), above, below, shown.height))
            elif below:
                statements.append(Statement("less", (origin,), above, below, shown.height))
            elif shown.height:
                no_difference.append(origin)
            else:
                all_hidden.append(origin)
        if no_difference:
            statements.append(Statement("no_difference", tuple(no_difference)))
        if all_hidden:
            statements.append(Statement("all_hidden", tuple(all_hidden)))
        blocks.append(SummaryBlock(
            query_type=_type_key(query_type), statements=tuple(statements),
            table=Table(columns=_SUMMARY_COLUMNS, rows=tuple(rows)),
        ))  # fmt: skip
    return Summary(False, note, standardised, has_q, tuple(blocks))


def build_summary(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    team = tables.get(TEAM_TABLE)
    if team is None:
        return None
    return Section("summary", "summary", "sections/summary.html.j2",
                   {"summary": summarise(team, context)})  # fmt: skip


# --------------------------------------------------------------------------------------------
# Forest plots (disproportionality and themes).


def _open_bound(value: object, edge: float) -> float | None:
    """An interval bound as a float; `edge` (0 or ∞) is kept to be drawn at the plot's edge."""
    if is_number(value) and value > 0:
        return float(value)
    if isinstance(value, (int, float)) and value == edge:
        return edge
    return None


def forest_figure(
    frame: pl.DataFrame, context: ReportContext, language: Language, figures: Figures,
    caption: str,
) -> Figure | None:  # fmt: skip
    """Ratio per team and origin with intervals for every estimator present; None if none."""
    rows: list[dict[str, object]] = []
    shown = published(frame)
    if "origin" in shown.columns:
        shown = shown.filter(pl.col("origin") != context.reference_origin)
    for row in sorted_rows(shown, ("origin", "team_code")):
        for ratio, low, high, _ in _ESTIMATORS:
            value = row.get(ratio)
            if not (is_number(value) and value > 0):
                continue
            rows.append({
                "team": language.team(row.get("team_code")),
                "origin": language.origin(row.get("origin")),
                "estimator": language.term("estimators", ratio),
                "ratio": float(value),
                "ci_low": _open_bound(row.get(low), 0.0),
                "ci_high": _open_bound(row.get(high), math.inf),
            })  # fmt: skip
    if not rows:
        return None
    drawn = {r["estimator"] for r in rows}
    estimators = [(language.term("estimators", ratio), colour)
                  for ratio, _, _, colour in _ESTIMATORS
                  if language.term("estimators", ratio) in drawn]  # fmt: skip
    teams = list(dict.fromkeys(r["team"] for r in rows))
    teams.sort(key=lambda t: (t != language.team(ALL_TEAMS), t))
    chart = forest_chart(rows, estimators=estimators, teams=teams, language=language)
    return figures.render(chart, caption)


_TEAM_DETAIL_COLUMNS = (
    label("columns.team_code", "team_code", "team"),
    label("columns.origin", "origin", "origin"),
    value("columns.query_count", "count", "query_count"),
    value("columns.person_count", "count", "person_count"),
    value("columns.population", "count", "population"),
    value("columns.queries_per_1000", "ratio", "queries_per_1000"),
    value("columns.rate_ratio", "ratio", "rate_ratio"),
    value("columns.ci", "ci", "rate_ratio_ci_low", "rate_ratio_ci_high"),
    value("columns.std_ratio", "ratio", "std_ratio"),
    value("columns.ci", "ci", "std_ratio_ci_low", "std_ratio_ci_high"),
    value("columns.q_value", "p", "q_value"),
    value("columns.shrunk_ratio", "ratio", "shrunk_ratio"),
    value("columns.ci", "ci", "shrunk_ci_low", "shrunk_ci_high"),
    value("columns.person_rate_ratio", "ratio", "person_rate_ratio"),
    value("columns.ci", "ci", "person_rate_ratio_ci_low", "person_rate_ratio_ci_high"),
)


def build_disproportionality(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    team = tables.get(TEAM_TABLE)
    if team is None:
        return None
    frame, note = select_period(select_benchmark(team, context), context)
    estimators = [ratio for ratio, *_ in _ESTIMATORS if ratio in frame.columns]
    blocks = []
    for query_type in query_types(frame) if not frame.is_empty() else []:
        typed = of_type(frame, query_type)
        caption = language.w("disproportionality.caption",
                             type=language.term("query_type_headings", _type_key(query_type)))
        where = {"benchmark": context.benchmark} if "benchmark" in typed.columns else {}
        if query_type is not None:
            where["query_type"] = query_type
        table = _table(typed, _TEAM_DETAIL_COLUMNS, ("team_code", "origin"), source=TEAM_TABLE,
                       where=where | _period_where(typed))  # fmt: skip
        blocks.append({
            "query_type": _type_key(query_type),
            "figure": forest_figure(typed, context, language, figures, caption),
            "table": table,
            "suppressed": sum(is_suppressed_row(r) for r in table.rows),
        })  # fmt: skip
    return Section("disproportionality", "disproportionality", "sections/disproportionality.html.j2",
                   {"is_empty": frame.is_empty(), "note": note, "estimators": estimators,
                    "blocks": blocks})  # fmt: skip


# --------------------------------------------------------------------------------------------
# The other sections, in page order.


_SUITABILITY_COLUMNS = (
    label("columns.month", "month"),
    label("columns.query_type", "query_type", "term:query_types"),
    value("columns.rows_received", "count", "rows_received"),
    value("columns.rows_quarantined", "count", "rows_quarantined"),
    value("columns.rows_valid", "count", "rows_valid"),
    value("columns.linkage_rate", "pct", "linkage_rate"),
    value("columns.verdict", "term:verdicts", "verdict"),
    value("columns.verdict_reason", "text", "verdict_reason"),
)


def build_suitability(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    frame = tables.get(SUITABILITY_TABLE)
    if frame is None:
        return None
    whole = whole_area(frame)
    verdicts: list[dict[str, object]] = []
    if {"team_code", "verdict"} <= set(frame.columns):
        teams = published(frame.filter(pl.col("team_code") != ALL_TEAMS))
        if not teams.is_empty():
            verdicts = teams.group_by("verdict").len().sort("verdict", nulls_last=True).to_dicts()
    figure = None
    if {"month", "linkage_rate"} <= set(whole.columns):
        rows = [
            {"month": str(r["month"]), "share": float(r["linkage_rate"]),
             "series": language.term("query_types", r.get("query_type", "all"))}
            for r in sorted_rows(published(whole), ("month", "query_type"))
            if is_number(r.get("linkage_rate"))
        ]  # fmt: skip
        if rows:
            chart = line_chart(rows, x_title=language.w("suitability.month_axis"),
                               y_title=language.w("suitability.share_axis"),
                               legend_title=language.w("suitability.legend"))  # fmt: skip
            figure = figures.render(chart, language.w("suitability.caption"))
    return Section("data-suitability", "suitability", "sections/suitability.html.j2", {
        "table": _whole_area_table(frame, _SUITABILITY_COLUMNS, ("month", "query_type"),
                                   SUITABILITY_TABLE),
        "verdicts": verdicts, "figure": figure,
    })  # fmt: skip


def build_funnel(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    team = tables.get(TEAM_TABLE)
    if team is None:
        return None
    frame, _ = select_period(select_benchmark(team, context), context)
    has_columns = {"query_count", "rate_ratio", "origin", "team_code"} <= set(frame.columns)
    blocks = []
    for query_type in query_types(frame) if has_columns else []:
        typed = published(of_type(frame, query_type)).filter(
            (pl.col("team_code") != ALL_TEAMS) & (pl.col("origin") != context.reference_origin)
        )
        rows = [
            {"origin": language.origin(r["origin"]), "team": str(r["team_code"]),
             "ratio": float(r["rate_ratio"]),
             "expected": float(r["query_count"]) / float(r["rate_ratio"])}
            for r in sorted_rows(typed, ("origin", "team_code"))
            if is_number(r.get("rate_ratio")) and r["rate_ratio"] > 0
            and is_number(r.get("query_count")) and r["query_count"] > 0
        ]  # fmt: skip
        if not rows:
            continue
        expected = [r["expected"] for r in rows]
        grid = np.geomspace(min(expected) / 1.2, max(expected) * 1.2, 60)
        # NOTE: φ from the plotted points (winsorised z-scores); 1 with fewer than two points.
        phi = (estimate_funnel_overdispersion([r["ratio"] * r["expected"] for r in rows], expected)
               if len(rows) >= 2 else 1.0)  # fmt: skip
        limits = [
            {"expected": r["expected"], "ratio": r[side],
             "coverage": language.plain(100 * r["level"]) + "%",
             "limit": f"{r['level']:g} {side}"}
            for r in funnel_limits(grid, overdispersion=phi).iter_rows(named=True)
            for side in ("limit_low", "limit_high")
            if r[side] > 0
        ]  # fmt: skip
        heading = language.term("query_type_headings", _type_key(query_type))
        blocks.append({
            "query_type": _type_key(query_type),
            "figure": figures.render(funnel_chart(rows, limits, language=language),
                                     language.w("funnel.caption", type=heading)),
        })  # fmt: skip
    return Section("funnel", "funnel", "sections/funnel.html.j2",
                   {"has_columns": has_columns, "blocks": blocks})  # fmt: skip


_TREND_COLUMNS = (
    label("columns.team_code", "team_code", "team"),
    label("columns.origin", "origin", "origin"),
    label("columns.comparison", "comparison", "term:comparisons"),
    value("columns.period_from", "text", "period_from"),
    value("columns.period_to", "text", "period_to"),
    value("columns.change_ratio", "ratio", "change_ratio"),
    value("columns.ci", "ci", "change_ci_low", "change_ci_high"),
    value("columns.q_value", "p", "q_value"),
)


@dataclass(frozen=True)
class Change:
    """One change the change-over-time section states in words: a published comparison of
    out_team_trends whose interval excludes 1 and whose q-value is below the FDR level."""

    team_code: str
    origin: str
    comparison: str
    period_from: str
    period_to: str
    change_ratio: float
    ci_low: float
    ci_high: float
    q_value: float

    @property
    def direction(self) -> str:
        """``rose`` or ``fell``: the words key of the change's direction."""
        return "rose" if self.change_ratio > 1 else "fell"


def quarter_figure(
    frame: pl.DataFrame, context: ReportContext, language: Language, figures: Figures,
    caption: str,
) -> Figure | None:  # fmt: skip
    """Small multiples per team (ALL first): the ratio of every origin per complete quarter with
    its interval. `frame` holds one query type and benchmark; suppressed rows are left out."""
    ratio, low, high, _ = _ratio_family(frame)
    quarters = published(frame).filter(
        pl.col("period").str.contains(QUARTER_PATTERN)
        & (pl.col("origin") != context.reference_origin)
    )
    origins = sorted(set(quarters.get_column("origin").to_list()), key=_origin_sort_key)
    colours = dict(zip(origins, _ORIGIN_COLOURS * (len(origins) // len(_ORIGIN_COLOURS) + 1)))
    rows = [
        {"team": str(r["period"]), "origin": language.team(r["team_code"]),
         "estimator": language.origin(r["origin"]), "ratio": float(r[ratio]),
         "ci_low": _open_bound(r.get(low), 0.0), "ci_high": _open_bound(r.get(high), math.inf)}
        for r in sorted_rows(quarters, ("team_code", "period", "origin"))
        if is_number(r.get(ratio)) and r[ratio] > 0
    ]  # fmt: skip
    if not rows:
        return None
    drawn = {r["estimator"] for r in rows}
    series = [(language.origin(o), colours[o]) for o in origins if language.origin(o) in drawn]
    periods = sorted({str(r["team"]) for r in rows})
    chart = forest_chart(rows, estimators=series, teams=periods, language=language,
                         legend_title=language.w("columns.origin"))  # fmt: skip
    return figures.render(chart, caption)


def significant_changes(trends: pl.DataFrame, context: ReportContext) -> list[Change]:
    """The published comparisons of one query type and benchmark that changed clearly: interval
    excluding 1 and q-value below the FDR level, in the order of the table below them."""
    shown = published(trends).filter(
        (pl.col("q_value") < context.fdr_level)
        & ((pl.col("change_ci_low") > 1) | (pl.col("change_ci_high") < 1))
    )
    rows = sorted_rows(shown, ("team_code", "origin", "comparison"))
    return [Change(r["team_code"], r["origin"], r["comparison"], r["period_from"], r["period_to"],
                   r["change_ratio"], r["change_ci_low"], r["change_ci_high"], r["q_value"])
            for r in rows]  # fmt: skip


def build_change(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    """Change over time: per query type the quarters of out_team_disproportionality as small
    multiples per team, a sentence per clear change of out_team_trends, and its table."""
    trends = tables.get(TRENDS_TABLE)
    if trends is None:
        return None
    trends = select_benchmark(trends, context)
    team = tables.get(TEAM_TABLE)
    quarterly = (select_benchmark(team, context) if team is not None and "period" in team.columns
                 else None)  # fmt: skip
    types = sorted({*query_types(trends), *(query_types(quarterly) if quarterly is not None
                                            else [])} - {None})  # fmt: skip
    blocks = []
    for query_type in types or [None]:
        heading = language.term("query_type_headings", _type_key(query_type))
        figure = None
        if quarterly is not None:
            figure = quarter_figure(of_type(quarterly, query_type), context, language, figures,
                                    language.w("change.caption", type=heading))
        typed = of_type(trends, query_type)
        where = {"benchmark": context.benchmark} if "benchmark" in typed.columns else {}
        if query_type is not None:
            where["query_type"] = query_type
        blocks.append({
            "query_type": _type_key(query_type),
            "figure": figure,
            "changes": significant_changes(typed, context),
            "table": (_table(typed, _TREND_COLUMNS, ("team_code", "origin", "comparison"),
                             source=TRENDS_TABLE, where=where)
                      if not typed.is_empty() else None),
        })  # fmt: skip
    return Section("change-over-time", "change", "sections/change.html.j2",
                   {"is_empty": trends.is_empty(), "blocks": blocks})  # fmt: skip


_OUTCOME_COLUMNS = (
    label("columns.query_type", "query_type", "term:query_types"),
    label("columns.origin", "origin", "origin"),
    value("columns.hit_query_count", "count", "query_count"),
    value("columns.hit_count", "count", "hit_count"),
    value("columns.hit_rate", "pct", "hit_rate"),
    value("columns.ci", "pct_ci", "hit_rate_ci_low", "hit_rate_ci_high"),
    value("columns.hit_rate_diff", "points", "hit_rate_diff"),
    value("columns.ci", "pct_ci", "hit_rate_diff_ci_low", "hit_rate_diff_ci_high"),
)


def build_outcome(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    frame = tables.get(OUTCOME_TABLE)
    if frame is None:
        return None
    whole = whole_area(frame)
    figures_shown = []
    if {"origin", "hit_rate"} <= set(whole.columns):
        for query_type in query_types(whole):
            rows = [
                {"label": language.origin(r["origin"]), "value": float(r["hit_rate"]),
                 "low": r["hit_rate_ci_low"] if is_number(r.get("hit_rate_ci_low")) else None,
                 "high": r["hit_rate_ci_high"] if is_number(r.get("hit_rate_ci_high")) else None}
                for r in sorted_rows(published(of_type(whole, query_type)), ("origin",))
                if is_number(r.get("hit_rate"))
            ]  # fmt: skip
            if rows:
                heading = language.term("query_type_headings", _type_key(query_type))
                chart = interval_chart(rows, title=heading, value_title=language.w("outcome.axis"),
                                       log=False, reference=None, percent=True)  # fmt: skip
                figures_shown.append(
                    figures.render(chart, language.w("outcome.caption", type=heading))
                )
    return Section("outcome-test", "outcome", "sections/outcome.html.j2", {
        "table": _whole_area_table(frame, _OUTCOME_COLUMNS, ("query_type", "origin"),
                                   OUTCOME_TABLE),
        "figures": figures_shown,
    })  # fmt: skip


_REPEAT_COLUMNS = (
    label("columns.query_type", "query_type", "term:query_types"),
    label("columns.origin", "origin", "origin"),
    value("columns.persons_queried", "count", "person_count"),
    value("columns.queries_per_person", "ratio", "queries_per_person"),
    value("columns.share_queried_2plus", "pct", "share_queried_2plus"),
    value("columns.share_queried_5plus", "pct", "share_queried_5plus"),
    value("columns.gini", "number", "gini"),
)


def build_repeat(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    frame = tables.get(REPEAT_TABLE)
    if frame is None:
        return None
    whole = whole_area(frame)
    figure = None
    if {"origin", "share_queried_2plus"} <= set(whole.columns):
        rows = [
            {"label": language.origin(r["origin"]), "share": float(r["share_queried_2plus"]),
             "series": language.term("query_types", r.get("query_type", "all"))}
            for r in sorted_rows(published(whole), ("query_type", "origin"))
            if is_number(r.get("share_queried_2plus"))
        ]  # fmt: skip
        if rows:
            chart = bar_chart(rows, x_title=language.w("repeat.axis"),
                              legend_title=language.w("repeat.legend"))  # fmt: skip
            figure = figures.render(chart, language.w("repeat.caption"))
    return Section("repeat-checks", "repeat", "sections/repeat.html.j2", {
        "table": _whole_area_table(frame, _REPEAT_COLUMNS, ("query_type", "origin"),
                                   REPEAT_TABLE),
        "figure": figure,
    })  # fmt: skip


_VOD_COLUMNS = (
    label("columns.design", "design", "term:designs"),
    label("columns.origin", "origin", "origin"),
    label("columns.fixed_effects", "fixed_effects", "term:fixed_effects"),
    value("columns.estimate", "number", "estimate"),
    value("columns.std_error", "number", "std_error"),
    value("columns.ci", "range3", "ci_low", "ci_high"),
    value("columns.query_count", "count", "n"),
)


_DESIGNS = ("intertwilight", "dst")
_FIXED_EFFECTS = ("none", "team", "clock_change", "clock_change+team")
"""Codes of the veil-of-darkness table in the order of the figure: the main design first."""


def _in_order(values: list[object], order: Sequence[str]) -> list[object]:
    """Distinct `values`, those in `order` first and in that order, then the rest as they come."""
    distinct = list(dict.fromkeys(values))
    return sorted(distinct, key=lambda v: order.index(v) if v in order else len(order))


def build_darkness(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    frame = tables.get(VOD_TABLE)
    if frame is None:
        return None
    figure = None
    if {"estimate", "origin"} <= set(frame.columns):
        rows = [
            {"label": language.origin(r["origin"]),
             "panel": language.term("designs", r.get("design")),
             "group": language.term("fixed_effects", r.get("fixed_effects")),
             "value": float(r["estimate"]),
             "low": r.get("ci_low") if is_number(r.get("ci_low")) else None,
             "high": r.get("ci_high") if is_number(r.get("ci_high")) else None}
            for r in sorted_rows(published(frame), ("origin", "design", "fixed_effects"))
            if is_number(r.get("estimate"))
        ]  # fmt: skip
        if rows:
            shown = published(frame)
            designs = _in_order(shown["design"].to_list(), _DESIGNS) if "design" in shown.columns else []
            effects = (_in_order(shown["fixed_effects"].to_list(), _FIXED_EFFECTS)
                       if "fixed_effects" in shown.columns else [])  # fmt: skip
            chart = interval_chart(
                rows, title=language.w("darkness.chart_title"),
                value_title=language.w("darkness.axis"), log=False,
                reference=0.0,
                groups=Legend(language.w("darkness.legend"),
                              [language.term("fixed_effects", e) for e in effects])
                if effects else None,
                panels=[language.term("designs", d) for d in designs],
            )  # fmt: skip
            figure = figures.render(chart, language.w("darkness.caption"))
    return Section("veil-of-darkness", "darkness", "sections/darkness.html.j2", {
        "table": _table(frame, _VOD_COLUMNS, ("design", "origin", "fixed_effects"),
                        source=VOD_TABLE),
        "figure": figure,
    })  # fmt: skip


_COUNT_MODEL_COLUMNS = (
    label("columns.query_type", "query_type", "term:query_types"),
    label("columns.family", "family", "term:families"),
    label("columns.term", "term", "term:model_terms"),
    label("columns.level", "level", "origin"),
    value("columns.ratio", "ratio", "ratio"),
    value("columns.ci", "ci", "ci_low", "ci_high"),
    value("columns.dispersion", "ratio", "dispersion"),
)


def build_count_models(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    frame = tables.get(COUNT_MODEL_TABLE)
    if frame is None:
        return None
    figure = None
    if {"ratio", "ci_low", "ci_high", "term"} <= set(frame.columns):
        rows = [
            {"label": language.origin(r.get("level")),
             "panel": language.term("query_type_headings", _type_key(r.get("query_type"))),
             "group": language.term("families", r.get("family")),
             "value": float(r["ratio"]),
             "low": r["ci_low"] if is_number(r.get("ci_low")) and r["ci_low"] > 0 else None,
             "high": r["ci_high"] if is_number(r.get("ci_high")) else None}
            # NOTE: the origin terms only: team and stratum terms are adjustments.
            for r in sorted_rows(published(frame).filter(pl.col("term") == "origin"),
                                 ("query_type", "family", "term", "level"))
            if is_number(r.get("ratio")) and r["ratio"] > 0
        ]  # fmt: skip
        if rows:
            chart = interval_chart(
                rows, title=language.w("count_models.chart_title"),
                value_title=language.w("count_models.axis"), log=True,
                reference=1.0,
                groups=Legend(language.w("count_models.legend"),
                              list(dict.fromkeys(str(r["group"]) for r in rows))),
                panels=list(dict.fromkeys(str(r["panel"]) for r in rows)),
            )  # fmt: skip
            figure = figures.render(chart, language.w("count_models.caption"))
    return Section("count-models", "count_models", "sections/count_models.html.j2", {
        "table": _table(frame, _COUNT_MODEL_COLUMNS, ("query_type", "family", "term", "level"),
                        source=COUNT_MODEL_TABLE),
        "figure": figure,
    })  # fmt: skip


def _theme(
    theme: ThemeSection, context: ReportContext, language: Language, figures: Figures
) -> dict[str, Any]:
    """A theme: its description, then per query type the summary and the forest plot."""
    title = theme.title or theme.name
    frame, note = select_period(select_benchmark(theme.table, context), context)
    blocks = []
    summary = summarise(theme.table, context)
    for block in summary.blocks:
        query_type = None if block.query_type == "all" else block.query_type
        caption = language.w("themes.caption", title=title,
                             type=language.term("query_type_phrases", block.query_type))
        blocks.append({
            "summary": block,
            "figure": forest_figure(of_type(frame, query_type), context, language, figures,
                                    caption),
        })  # fmt: skip
    return {"name": theme.name, "title": title, "description": theme.description, "note": note,
            "is_empty": frame.is_empty(), "summary": summary, "blocks": blocks}  # fmt: skip


def build_themes(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    themes = context.theme_sections()
    if not themes:
        return None
    return Section("themes", "themes", "sections/themes.html.j2",
                   {"themes": [_theme(t, context, language, figures) for t in themes]})  # fmt: skip


def build_methods(
    tables: Tables, context: ReportContext, language: Language, figures: Figures
) -> Section | None:
    return Section("methods", "methods", "sections/methods.html.j2", {
        "threshold": context.settings.get("disclosure_threshold", 10),
        "round_to": context.settings.get("disclosure_round_to"),
        "is_synthetic": context.is_synthetic,
    })  # fmt: skip


SECTIONS: tuple[Builder, ...] = (
    build_summary,
    build_suitability,
    build_disproportionality,
    build_funnel,
    build_change,
    build_outcome,
    build_repeat,
    build_darkness,
    build_count_models,
    build_themes,
    build_methods,
)
"""The page's sections in order. A new section is a builder here, a template in
``templates/sections/`` and its words in each file of ``words/`` (docs/publication.md)."""
