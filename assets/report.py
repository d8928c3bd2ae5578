"""The thematic report: one self-contained, offline HTML page built from publication tables.

Pure and Dagster-free. :func:`render_report` takes tables that already passed disclosure control
(``assets.disclosure``) and returns the HTML text; the asset writes it to
``<warehouse>/publication/thematic_report.html``.

Self-contained means no network at all when the page is opened: no scripts, no external style
sheets or fonts, every figure inline as SVG. Figures are Altair (Vega-Lite) charts rendered to SVG
by vl-convert, which runs the Vega JavaScript in an embedded engine and needs no browser or
network; a Content-Security-Policy in the page forbids any fetch as a second line of defence.

Deterministic: the same tables and context give a byte-identical page. Rows are sorted
explicitly, nothing depends on the clock unless the context passes a time, and the element ids
that vl-convert numbers with a process-wide counter (clip paths) are renumbered per figure.

A row with ``is_suppressed`` true is never shown as a number and never plotted, whatever values it
still carries.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import altair as alt
import numpy as np
import polars as pl
import vl_convert as vlc

from assets.schema import ALL_TEAMS, ORIGIN_CODES, ORIGINS
from assets.stats.shrinkage import estimate_funnel_overdispersion, funnel_limits

TEAM_TABLE = "out_team_disproportionality"
SUITABILITY_TABLE = "out_data_suitability"
OUTCOME_TABLE = "out_outcome_test"
REPEAT_TABLE = "out_repeat_checks"
VOD_TABLE = "out_veil_of_darkness"
COUNT_MODEL_TABLE = "out_count_models"
KNOWN_TABLES = (
    TEAM_TABLE,
    SUITABILITY_TABLE,
    OUTCOME_TABLE,
    REPEAT_TABLE,
    VOD_TABLE,
    COUNT_MODEL_TABLE,
)
SUPPRESSED_MARK = "—"

# NOTE: English adjectives for the CBS origin codes and groups (assets.schema holds the Dutch
# labels). Used only for reading; the tables keep the codes.
_ORIGIN_ADJECTIVES = {
    "NL": "Dutch",
    "EU": "European (other than Dutch)",
    "TR": "Turkish",
    "MA": "Moroccan",
    "SR": "Surinamese",
    "CW": "Dutch Caribbean",
    "ID": "Indonesian",
    "AF": "other African",
    "AS": "other Asian",
    "AM": "other American or Oceanian",
    "Nederland": "Dutch",
    "Europa (exclusief Nederland)": "European (other than Dutch)",
    "Buiten Europa": "non-European",
}
_ESTIMATORS = (
    # (label, ratio column, low column, high column)
    ("crude", "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high"),
    ("age-sex standardised", "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high"),
    ("shrunk", "shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high"),
    ("persons queried (standardised)", "person_rate_ratio", "person_rate_ratio_ci_low",
     "person_rate_ratio_ci_high"),
)
_ESTIMATOR_COLOURS = ("#8c8c8c", "#1f5fa8", "#d9741c", "#2a8c55")
_BENCHMARK_LABELS = {
    "team_residents": "residents of the team's area",
    "area_residents": "residents of the whole covered area",
    "resident_only": "queries of people living in the team's area, per resident of that area",
}


@dataclass(frozen=True, eq=False)
class ThemeSection:
    """One thematic analysis: a `out_team_disproportionality`-style table for a slice of queries."""

    name: str
    description: str
    table: pl.DataFrame
    title: str | None = None


@dataclass(frozen=True, eq=False)
class ReportContext:
    """Everything the report says about how it was made.

    Parameters
    ----------
    title
        Page title.
    period_start, period_end
        Inclusive dates covered; team tables are shown for this period when they hold several.
    settings
        The analysis settings of the run (shown in the footer, sorted by name).
    code_version, input_fingerprint
        Provenance shown in the footer.
    themes
        Thematic sections, as :class:`ThemeSection` or ``(name, description, table)`` tuples.
    is_synthetic
        True when the inputs are the built-in synthetic sample: a warning is shown at the top.
    generated_at
        Optional time stamp text; nothing time-dependent is added unless it is passed.
    reference_origin
        The reference origin of the ratios (default NL).
    benchmark
        The benchmark shown in the summary and the figures (default team_residents).
    fdr_level
        q-value below which a team difference counts as clear in the summary.
    """

    title: str
    period_start: dt.date
    period_end: dt.date
    settings: Mapping[str, object] = field(default_factory=dict)
    code_version: str = "unknown"
    input_fingerprint: str = "unknown"
    themes: Sequence[ThemeSection | tuple[str, str, pl.DataFrame]] = ()
    is_synthetic: bool = False
    generated_at: str | None = None
    reference_origin: str = "NL"
    benchmark: str = "team_residents"
    fdr_level: float = 0.05

    def theme_sections(self) -> tuple[ThemeSection, ...]:
        """The themes as :class:`ThemeSection` objects."""
        return tuple(t if isinstance(t, ThemeSection) else ThemeSection(*t) for t in self.themes)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fmt_count(value: object) -> str:
    return f"{int(value):,}" if _is_number(value) else SUPPRESSED_MARK


def _fmt_ratio(value: object) -> str:
    return f"{value:.2f}" if _is_number(value) else SUPPRESSED_MARK


def _fmt_ci(low: object, high: object) -> str:
    if not (_is_number(low) and (_is_number(high) or high == math.inf)):
        return SUPPRESSED_MARK
    high_text = f"{high:.2f}" if _is_number(high) else "∞"
    return f"{low:.2f}–{high_text}"


def _fmt_p(value: object) -> str:
    if not _is_number(value):
        return SUPPRESSED_MARK
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _fmt_pct(value: object) -> str:
    return f"{100 * value:.1f}%" if _is_number(value) else SUPPRESSED_MARK


def _fmt_number(value: object) -> str:
    return f"{value:.3f}" if _is_number(value) else SUPPRESSED_MARK


def _fmt_text(value: object) -> str:
    return SUPPRESSED_MARK if value is None else str(value)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _origin_label(origin: object) -> str:
    code = str(origin)
    if code in ORIGINS:
        return f"{ORIGINS[code][0]} ({code})"
    return code


def _origin_adjective(origin: object) -> str:
    return _ORIGIN_ADJECTIVES.get(str(origin), str(origin))


def _origin_sort_key(origin: object) -> tuple[int, str]:
    code = str(origin)
    return (ORIGIN_CODES.index(code), code) if code in ORIGIN_CODES else (len(ORIGIN_CODES), code)


def _team_sort_key(team: object) -> tuple[int, str]:
    return (0, "") if team == ALL_TEAMS else (1, str(team))


def _team_label(team: object) -> str:
    return "All teams" if team == ALL_TEAMS else str(team)


# --------------------------------------------------------------------------------------------
# Table helpers.


def _published(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows that were not suppressed (all rows when the table has no `is_suppressed`)."""
    if "is_suppressed" not in frame.columns:
        return frame
    return frame.filter(~pl.col("is_suppressed").fill_null(True))


def _is_suppressed_row(row: Mapping[str, object]) -> bool:
    # NOTE: as in _published, a null flag counts as suppressed; no flag column, as published.
    return "is_suppressed" in row and row["is_suppressed"] is not False


@dataclass(frozen=True)
class _Column:
    """A column of an HTML table: header, source column(s), formatter, numeric alignment."""

    header: str
    render: Callable[[Mapping[str, object]], str]
    is_numeric: bool = True
    is_label: bool = False


def _col(header: str, name: str, fmt: Callable[[object], str], *, numeric: bool = True) -> _Column:
    return _Column(header, lambda row: fmt(row.get(name)), numeric)


def _label(header: str, name: str, fmt: Callable[[object], str] = _fmt_text) -> _Column:
    return _Column(header, lambda row: fmt(row.get(name)), is_numeric=False, is_label=True)


def _ci_col(header: str, low: str, high: str) -> _Column:
    return _Column(header, lambda row: _fmt_ci(row.get(low), row.get(high)))


def _html_table(rows: Sequence[Mapping[str, object]], columns: Sequence[_Column]) -> str:
    """An HTML table; on suppressed rows only label columns are filled in."""
    head = "".join(
        f'<th scope="col"{" class=num" if c.is_numeric else ""}>{_esc(c.header)}</th>'
        for c in columns
    )
    body = []
    for row in rows:
        hidden = _is_suppressed_row(row)
        cells = []
        for c in columns:
            css = "num" if c.is_numeric else ("label" if c.is_label else "")
            if hidden and not c.is_label:
                cells.append(
                    f'<td class="{css} sup" title="suppressed (disclosure control)">'
                    f"{SUPPRESSED_MARK}</td>"
                )
            else:
                cells.append(f'<td class="{css}">{_esc(c.render(row))}</td>')
        body.append(f"<tr{' class=suppressed' if hidden else ''}>{''.join(cells)}</tr>")
    return (
        '<div class="table-wrap"><table><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _present(
    frame: pl.DataFrame, columns: Iterable[_Column | tuple[str, _Column]]
) -> list[_Column]:
    """Columns whose source column exists in `frame` (entries are (source name, column))."""
    return [c for name, c in columns if name in frame.columns]  # type: ignore[misc]


def _sorted_rows(frame: pl.DataFrame, keys: Sequence[str]) -> list[dict[str, object]]:
    """Rows as dicts, sorted by the key columns present (origin and team in report order)."""
    rows = frame.to_dicts()

    def key(row: Mapping[str, object]) -> tuple:
        parts: list[object] = []
        for k in keys:
            if k not in frame.columns:
                continue
            value = row.get(k)
            if k == "origin":
                parts.append(_origin_sort_key(value))
            elif k == "team_code":
                parts.append(_team_sort_key(value))
            else:
                # NOTE: values of one column share a type, so they compare with each other.
                parts.append((value is None, "" if value is None else value))
        return tuple(parts)

    return sorted(rows, key=key)


def _select_period(frame: pl.DataFrame, context: ReportContext) -> tuple[pl.DataFrame, str | None]:
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
    return chosen, f"Shown for the period {latest['period_start']} to {latest['period_end']}."


def _select_benchmark(frame: pl.DataFrame, context: ReportContext) -> pl.DataFrame:
    if "benchmark" not in frame.columns:
        return frame
    return frame.filter(pl.col("benchmark") == context.benchmark)


def _query_types(frame: pl.DataFrame) -> list[str | None]:
    if "query_type" not in frame.columns:
        return [None]
    return sorted(frame.get_column("query_type").drop_nulls().unique().to_list())


def _of_type(frame: pl.DataFrame, query_type: str | None) -> pl.DataFrame:
    return frame if query_type is None else frame.filter(pl.col("query_type") == query_type)


def _type_heading(query_type: str | None) -> str:
    return {"person": "Person queries", "plate": "Licence-plate queries (registered holder)"}.get(
        str(query_type), "All queries" if query_type is None else str(query_type)
    )


# --------------------------------------------------------------------------------------------
# Figures.


class _Figures:
    """Renders charts to inline SVG with ids unique in the page and stable across runs."""

    def __init__(self) -> None:
        self.count = 0

    def render(self, chart: alt.TopLevelMixin, caption: str) -> str:
        self.count += 1
        figure_id = f"fig{self.count}"
        svg = normalise_svg(vlc.vegalite_to_svg(chart.to_dict(), config=_CHART_CONFIG), figure_id)
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_esc(caption)}" ', 1)
        return (
            f'<figure id="{figure_id}"><div class="chart">{svg}</div>'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )


# NOTE: one look for every figure; "sans-serif" lets the reader's browser pick a local font, so
# the SVG text needs no font file.
_CHART_CONFIG = {
    # NOTE: no per-mark ARIA descriptions: hundreds of "ratio: 1.2345678" labels help no screen
    # reader; each figure carries one aria-label (its caption) and the tables hold the numbers.
    "aria": False,
    "font": "sans-serif",
    "axis": {
        "labelFontSize": 11,
        "titleFontSize": 12,
        "titleFontWeight": "normal",
        "titleColor": "#1d2330",
    },
    "legend": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal"},
    "header": {"labelFontSize": 12, "labelFontWeight": "bold"},
    "title": {"fontSize": 13},
    "view": {"stroke": "#ccc"},
}

_ID_ATTRIBUTE = re.compile(r'(?<=\s)id="([^"]+)"')
_EXTERNAL_REFERENCE = re.compile(
    r'(?:href|src)\s*=\s*"(?!#)|url\(\s*[\'"]?(?!#)|@import|@font-face', re.IGNORECASE
)


def normalise_svg(svg: str, prefix: str) -> str:
    """Make a vl-convert SVG safe to inline: local ids, no namespaces, no external reference.

    vl-convert numbers clip-path ids with a counter that lives as long as the process, so the
    same chart gets other ids on a second call, and two charts in one page could share an id.
    Every id becomes ``<prefix>-<n>`` in order of appearance, with its ``url(#…)`` and ``href``
    references. The ``xmlns`` attributes are dropped: inline SVG in HTML needs none, and the page
    then holds no ``http://`` text at all.

    Raises
    ------
    ValueError
        When the SVG references anything outside itself (a font, an image, a style sheet).
    """
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r'\s+xmlns(?::\w+)?="[^"]*"', "", svg)
    mapping = {
        old: f"{prefix}-{i}" for i, old in enumerate(dict.fromkeys(_ID_ATTRIBUTE.findall(svg)), 1)
    }
    svg = _ID_ATTRIBUTE.sub(lambda m: f'id="{mapping[m.group(1)]}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{mapping.get(m.group(1), m.group(1))})", svg)
    svg = re.sub(
        r'href="#([^"]+)"', lambda m: f'href="#{mapping.get(m.group(1), m.group(1))}"', svg
    )
    if _EXTERNAL_REFERENCE.search(svg):
        raise ValueError("an SVG figure references an external resource")
    return svg


def _log_domain(values: Iterable[object]) -> list[float]:
    finite = [float(v) for v in values if _is_number(v) and v > 0]
    low = min([1.0, *finite])
    high = max([1.0, *finite])
    return [low / 1.15, high * 1.15]


def _log_ticks(domain: Sequence[float]) -> list[float]:
    """Readable tick values for a log axis: 1-2-5 steps, finer when the range is narrow."""
    fine = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100)
    coarse = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    for candidates in (fine, coarse):
        ticks = [t for t in candidates if domain[0] <= t <= domain[1]]
        if len(ticks) <= 9:
            return ticks
    return ticks


def _forest_rows(frame: pl.DataFrame, reference_origin: str) -> list[dict[str, object]]:
    """Long rows (team, origin, estimator, ratio, ci) of the published, non-reference cells."""
    rows: list[dict[str, object]] = []
    published = _published(frame)
    if "origin" in published.columns:
        published = published.filter(pl.col("origin") != reference_origin)
    for row in _sorted_rows(published, ("origin", "team_code")):
        for label, ratio, low, high in _ESTIMATORS:
            value = row.get(ratio)
            if not (_is_number(value) and value > 0):
                continue
            low_value, high_value = row.get(low), row.get(high)
            rows.append(
                {
                    "team": _team_label(row.get("team_code")),
                    "origin": _origin_label(row.get("origin")),
                    "estimator": label,
                    "ratio": float(value),
                    "ci_low": _open_bound(low_value, 0.0),
                    "ci_high": _open_bound(high_value, math.inf),
                }
            )
    return rows


def _open_bound(value: object, edge: float) -> float | None:
    """An interval bound as a float; `edge` (0 or ∞) is kept to be drawn at the plot's edge."""
    if _is_number(value) and value > 0:
        return float(value)
    if isinstance(value, (int, float)) and value == edge:
        return edge
    return None


def _forest_chart(rows: list[dict[str, object]]) -> alt.FacetChart:
    teams = list(dict.fromkeys(r["team"] for r in rows))
    teams.sort(key=lambda t: (t != "All teams", t))
    origins = list(dict.fromkeys(r["origin"] for r in rows))
    estimators = [e[0] for e in _ESTIMATORS if any(r["estimator"] == e[0] for r in rows)]
    colours = [c for e, c in zip(_ESTIMATORS, _ESTIMATOR_COLOURS) if e[0] in estimators]
    domain = _log_domain(
        [r["ratio"] for r in rows] + [r["ci_low"] for r in rows] + [r["ci_high"] for r in rows]
    )
    # NOTE: a zero lower bound or an infinite upper bound (zero counts, METHODS.md §1) has no
    # place on a log axis: the bar runs to the edge of the plot instead.
    rows = [
        r
        | {
            "ci_low": domain[0] if r["ci_low"] == 0.0 else r["ci_low"],
            "ci_high": domain[1] if r["ci_high"] == math.inf else r["ci_high"],
        }
        for r in rows
    ]
    scale = alt.Scale(type="log", domain=domain, clamp=True, nice=False)
    axis = alt.Axis(values=_log_ticks(domain), format="~g")
    colour = alt.Color(
        "estimator:N",
        scale=alt.Scale(domain=estimators, range=colours),
        legend=alt.Legend(title="Estimate", orient="top"),
    )
    y = alt.Y("team:N", sort=teams, title=None, scale=alt.Scale(paddingInner=0.3, paddingOuter=0.2))
    y_offset = alt.YOffset("estimator:N", sort=estimators)
    interval = (
        alt.Chart()
        .mark_rule(strokeWidth=1.5)
        .encode(
            x=alt.X("ci_low:Q", scale=scale, axis=axis, title="Ratio (log scale)"),
            x2="ci_high:Q",
            y=y,
            yOffset=y_offset,
            color=colour,
        )
        .transform_filter("isValid(datum.ci_low) && isValid(datum.ci_high)")
    )
    point = (
        alt.Chart()
        .mark_point(filled=True, size=28, opacity=1)
        .encode(
            x=alt.X("ratio:Q", scale=scale),
            y=y,
            yOffset=y_offset,
            color=colour,
            shape=alt.Shape("estimator:N", sort=estimators, legend=None),
        )
    )
    reference = (
        alt.Chart()
        .mark_rule(color="#333", strokeDash=[4, 3])
        .encode(x=alt.datum(1.0))
        .transform_aggregate(n="count()")
    )
    # NOTE: with an offset encoding the step sizes the offset scale, i.e. one estimator's line.
    return (
        alt.layer(interval, point, reference, data=alt.Data(values=rows))
        .properties(width=240, height=alt.Step(7 if len(estimators) > 1 else 14))
        .facet(facet=alt.Facet("origin:N", sort=origins, title=None), columns=3)
    )


def _funnel_section_chart(
    rows: list[dict[str, object]], limits: list[dict[str, object]]
) -> alt.LayerChart:
    x_values = [r["expected"] for r in rows] + [r["expected"] for r in limits]
    y_values = [r["ratio"] for r in rows] + [r["ratio"] for r in limits]
    x_scale = alt.Scale(type="log", domain=[min(x_values) / 1.2, max(x_values) * 1.2], nice=False)
    y_scale = alt.Scale(type="log", domain=_log_domain(y_values), nice=False, clamp=True)
    lines = (
        alt.Chart(alt.Data(values=limits))
        .mark_line(color="#777", strokeWidth=1)
        .encode(
            x=alt.X(
                "expected:Q",
                scale=x_scale,
                title="Expected queries at the reference rate (log scale)",
            ),
            y=alt.Y(
                "ratio:Q",
                scale=y_scale,
                axis=alt.Axis(values=_log_ticks(y_scale.domain), format="~g"),
                title="Crude rate ratio (log scale)",
            ),
            detail="limit:N",
            strokeDash=alt.StrokeDash(
                "coverage:N", legend=alt.Legend(title="Control limits", orient="top")
            ),
        )
    )
    points = (
        alt.Chart(alt.Data(values=rows))
        .mark_circle(size=36, opacity=0.85)
        .encode(
            x=alt.X("expected:Q", scale=x_scale),
            y=alt.Y("ratio:Q", scale=y_scale),
            color=alt.Color(
                "origin:N",
                sort=list(dict.fromkeys(r["origin"] for r in rows)),
                scale=alt.Scale(scheme="tableau10"),
                legend=alt.Legend(title="Origin", orient="right"),
            ),
        )
    )
    reference = (
        alt.Chart(alt.Data(values=[{"one": 1.0}]))
        .mark_rule(color="#333")
        .encode(y=alt.Y("one:Q", scale=y_scale))
    )
    return alt.layer(lines, reference, points).properties(width=620, height=320)


def _interval_chart(
    rows: list[dict[str, object]],
    *,
    label: str,
    value_title: str,
    log: bool,
    reference: float | None,
    percent: bool = False,
) -> alt.LayerChart:
    """Points with interval bars, one row per label (outcome test, count models, VOD)."""
    values = [r["value"] for r in rows] + [r["low"] for r in rows] + [r["high"] for r in rows]
    if log:
        scale = alt.Scale(type="log", domain=_log_domain(values), nice=False, clamp=True)
    else:
        finite = [float(v) for v in values if _is_number(v)] + (
            [reference] if reference is not None else []
        )
        pad = (max(finite) - min(finite)) * 0.08 or 0.05
        scale = alt.Scale(domain=[min(finite) - pad, max(finite) + pad], nice=False, zero=False)
    if percent:
        axis = alt.Axis(format=".0%", tickMinStep=0.01)
    elif log:
        axis = alt.Axis(values=_log_ticks(scale.domain), format="~g")
    else:
        axis = alt.Axis()
    y = alt.Y("label:N", sort=list(dict.fromkeys(r["label"] for r in rows)), title=None)
    layers = [
        alt.Chart()
        .mark_rule(strokeWidth=1.5, color="#1f5fa8")
        .encode(x=alt.X("low:Q", scale=scale, title=value_title, axis=axis), x2="high:Q", y=y)
        .transform_filter("isValid(datum.low) && isValid(datum.high)"),
        alt.Chart()
        .mark_point(filled=True, size=40, color="#1f5fa8", opacity=1)
        .encode(x=alt.X("value:Q", scale=scale), y=y),
    ]
    if reference is not None:
        layers.append(
            alt.Chart()
            .mark_rule(color="#333", strokeDash=[4, 3])
            .encode(x=alt.datum(reference))
            .transform_aggregate(n="count()")
        )
    return alt.layer(*layers, data=alt.Data(values=rows)).properties(
        width=520, height=alt.Step(18), title=alt.Title(label, anchor="start", fontSize=12)
    )


# --------------------------------------------------------------------------------------------
# Sections.


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    body: str


def _paragraphs(*texts: str) -> str:
    return "".join(f"<p>{t}</p>" for t in texts if t)


def _ratio_family(frame: pl.DataFrame) -> tuple[str, str, str, bool]:
    """The ratio used for statements: standardised when present and filled, else crude."""
    if {"std_ratio", "std_ratio_ci_low", "std_ratio_ci_high"} <= set(frame.columns) and (
        _published(frame).get_column("std_ratio").drop_nulls().len() > 0
    ):
        return "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", True
    return "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high", False


def _summary_html(
    frame: pl.DataFrame, context: ReportContext, *, with_preamble: bool = True
) -> str:
    """Plain-language statements and a table: per origin, teams clearly above or below 1."""
    frame, note = _select_period(_select_benchmark(frame, context), context)
    if frame.is_empty() or not {"origin", "team_code"} <= set(frame.columns):
        return _paragraphs("The table holds no rows for the default benchmark and period.")
    ratio, low, high, standardised = _ratio_family(frame)
    has_q = "q_value" in frame.columns
    reference = _origin_adjective(context.reference_origin)
    if standardised:
        comparison = (
            f"residents of {reference} origin of the same age and sex living in the same area"
        )
        measure = "age-sex standardised ratio"
    else:
        comparison = f"residents of {reference} origin living in the same area"
        measure = "crude rate ratio (not adjusted for age and sex)"
    criterion = "the 95% interval excludes 1" + (
        f" and the q-value (false discovery rate) is below {context.fdr_level:g}" if has_q else ""
    )
    parts = [
        _paragraphs(
            f"Each statement compares the number of queries per resident of an origin group with "
            f"the number per resident of {_esc(reference)} origin, within a team's area "
            f"(benchmark: {_esc(_BENCHMARK_LABELS.get(context.benchmark, context.benchmark))}). "
            f"It uses the {measure}; a team counts when {criterion}.",
            ""
            if has_q
            else "This table has no q-values yet: the counts below are not corrected for testing "
            "many teams at once and overstate the number of clear differences.",
            _esc(note) if note else "",
        )
        if with_preamble
        else _paragraphs(_esc(note) if note else "")
    ]
    for query_type in _query_types(frame):
        typed = _of_type(frame, query_type)
        items, table_rows, no_difference, all_hidden = [], [], [], []
        origins = sorted(
            {o for o in typed.get_column("origin").to_list() if o != context.reference_origin},
            key=_origin_sort_key,
        )
        for origin in origins:
            cells = typed.filter(pl.col("origin") == origin)
            teams = cells.filter(pl.col("team_code") != ALL_TEAMS)
            published = _published(teams).filter(pl.col(ratio).is_not_null())
            clear = published
            if has_q:
                clear = clear.filter(pl.col("q_value") < context.fdr_level)
            above = clear.filter(pl.col(low) > 1).height
            below = clear.filter(pl.col(high) < 1).height
            whole = _published(cells.filter(pl.col("team_code") == ALL_TEAMS)).to_dicts()
            whole_text = (
                f"{_fmt_ratio(whole[0].get(ratio))} ({_fmt_ci(whole[0].get(low), whole[0].get(high))})"
                if whole and _is_number(whole[0].get(ratio))
                else SUPPRESSED_MARK
            )
            table_rows.append(
                {
                    "origin": _origin_label(origin),
                    "whole": whole_text,
                    "above": above,
                    "below": below,
                    "published": published.height,
                    "suppressed": teams.height - _published(teams).height,
                }
            )
            adjective = _esc(_origin_adjective(origin))
            of_teams = f"of {published.height} teams with a published estimate"
            if above:
                text = (
                    f"People of {adjective} origin were queried more often than "
                    f"{_esc(comparison)} in <strong>{above}</strong> {of_teams}"
                )
                text += f", and less often in <strong>{below}</strong>." if below else "."
                items.append(f"<li>{text}</li>")
            elif below:
                items.append(
                    f"<li>People of {adjective} origin were queried less often than "
                    f"{_esc(comparison)} in <strong>{below}</strong> {of_teams}.</li>"
                )
            elif published.height:
                no_difference.append(adjective)
            else:
                all_hidden.append(adjective)
        if no_difference:
            items.append(
                f"<li>People of {_join(no_difference)} origin: no team with a published estimate "
                f"shows a clear difference.</li>"
            )
        if all_hidden:
            items.append(
                f"<li>People of {_join(all_hidden)} origin: every team estimate is suppressed "
                f"(too few people or queries).</li>"
            )
        columns = [
            _label("Origin", "origin"),
            _col("Whole area ratio (95% CI)", "whole", _fmt_text),
            _col("Teams above 1", "above", _fmt_count),
            _col("Teams below 1", "below", _fmt_count),
            _col("Teams published", "published", _fmt_count),
            _col("Teams suppressed", "suppressed", _fmt_count),
        ]
        heading = "h4" if not with_preamble else "h3"
        parts.append(
            f"<{heading}>{_esc(_type_heading(query_type))}</{heading}><ul>{''.join(items)}</ul>"
            + _html_table(table_rows, columns)
        )
    if with_preamble:
        parts.append(
            _paragraphs(
                "A ratio above 1 says that a group was queried more often per resident than the "
                "reference group. It does not say why: residents are not the people at risk of a "
                "query (visitors, commuters and where officers patrol all matter). Read the "
                "methods and caveats before drawing conclusions."
            )
        )
    return "".join(parts)


def _join(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _suitability_html(frame: pl.DataFrame, figures: _Figures) -> str:
    whole = (
        frame.filter(pl.col("team_code") == ALL_TEAMS) if "team_code" in frame.columns else frame
    )
    rows = _sorted_rows(whole, ("month", "query_type"))
    columns = _present(
        frame,
        [
            ("month", _label("Month", "month")),
            ("query_type", _label("Query type", "query_type")),
            ("rows_received", _col("Rows received", "rows_received", _fmt_count)),
            ("rows_quarantined", _col("Rows quarantined", "rows_quarantined", _fmt_count)),
            ("rows_valid", _col("Rows valid", "rows_valid", _fmt_count)),
            ("linkage_rate", _col("Linked to CBS", "linkage_rate", _fmt_pct)),
            ("verdict", _col("Verdict", "verdict", _fmt_text, numeric=False)),
            ("verdict_reason", _col("Reason", "verdict_reason", _fmt_text, numeric=False)),
        ],
    )
    parts = [
        _paragraphs(
            "Whether the data are available and suitable is itself a question of the pilot. "
            "Per export month: rows received, rows set aside in quarantine (with a reason), rows "
            "used, and the share of queries whose person could be linked to CBS registers. "
            "Rows for the whole area are shown; per-team verdicts are counted below."
        ),
        _html_table(rows, columns),
    ]
    if {"team_code", "verdict"} <= set(frame.columns):
        teams = _published(frame.filter(pl.col("team_code") != ALL_TEAMS))
        counts = (
            teams.group_by("verdict").len().sort("verdict", nulls_last=True).to_dicts()
            if not teams.is_empty()
            else []
        )
        if counts:
            parts.append(
                "<p>Team-months by verdict: "
                + ", ".join(f"{_esc(_fmt_text(c['verdict']))}: {c['len']:,}" for c in counts)
                + ".</p>"
            )
    if {"month", "linkage_rate"} <= set(whole.columns):
        chart_rows = [
            {
                "month": str(r["month"]),
                "linkage_rate": float(r["linkage_rate"]),
                "query_type": str(r.get("query_type", "all")),
            }
            for r in _sorted_rows(_published(whole), ("month", "query_type"))
            if _is_number(r.get("linkage_rate"))
        ]
        if chart_rows:
            chart = (
                alt.Chart(alt.Data(values=chart_rows))
                .mark_line(point=True)
                .encode(
                    x=alt.X("month:O", title="Export month", axis=alt.Axis(labelAngle=0)),
                    y=alt.Y(
                        "linkage_rate:Q",
                        title="Share linked to CBS",
                        axis=alt.Axis(format=".0%"),
                        scale=alt.Scale(domain=[0, 1]),
                    ),
                    color=alt.Color(
                        "query_type:N", legend=alt.Legend(title="Query type", orient="top")
                    ),
                )
                .properties(width=720, height=200)
            )
            parts.append(
                figures.render(
                    chart, "Share of queries linked to CBS registers, whole area, per month."
                )
            )
    return "".join(parts)


def _team_detail_table(frame: pl.DataFrame) -> str:
    columns = _present(
        frame,
        [
            ("team_code", _label("Team", "team_code", _team_label)),
            ("origin", _label("Origin", "origin", _origin_label)),
            ("query_count", _col("Queries", "query_count", _fmt_count)),
            ("person_count", _col("Persons", "person_count", _fmt_count)),
            ("population", _col("Residents", "population", _fmt_count)),
            ("queries_per_1000", _col("Per 1,000 per year", "queries_per_1000", _fmt_ratio)),
            ("rate_ratio", _col("Crude ratio", "rate_ratio", _fmt_ratio)),
            ("rate_ratio_ci_low", _ci_col("95% CI", "rate_ratio_ci_low", "rate_ratio_ci_high")),
            ("std_ratio", _col("Standardised ratio", "std_ratio", _fmt_ratio)),
            ("std_ratio_ci_low", _ci_col("95% CI", "std_ratio_ci_low", "std_ratio_ci_high")),
            ("q_value", _col("q-value", "q_value", _fmt_p)),
            ("shrunk_ratio", _col("Shrunk ratio", "shrunk_ratio", _fmt_ratio)),
            ("shrunk_ci_low", _ci_col("95% CI", "shrunk_ci_low", "shrunk_ci_high")),
            ("person_rate_ratio", _col("Persons ratio", "person_rate_ratio", _fmt_ratio)),
            ("person_rate_ratio_ci_low", _ci_col("95% CI", "person_rate_ratio_ci_low",
                                                 "person_rate_ratio_ci_high")),
        ],
    )
    rows = _sorted_rows(frame, ("team_code", "origin"))
    hidden = sum(_is_suppressed_row(r) for r in rows)
    return (
        f"<details><summary>Table: all teams and origins ({len(rows):,} cells, "
        f"{hidden:,} suppressed)</summary>{_html_table(rows, columns)}</details>"
    )


def _disproportionality_html(frame: pl.DataFrame, context: ReportContext, figures: _Figures) -> str:
    frame, note = _select_period(_select_benchmark(frame, context), context)
    if frame.is_empty():
        return _paragraphs("The table holds no rows for the default benchmark and period.")
    present = [label for label, ratio, _, _ in _ESTIMATORS if ratio in frame.columns]
    parts = [
        _paragraphs(
            f"Ratios of query rates per resident against residents of "
            f"{_esc(_origin_adjective(context.reference_origin))} origin in the same team's area, "
            f"with 95% intervals, for each team and for all teams together. Estimates shown: "
            f"{_esc(', '.join(present))}. The crude ratio compares rates as they are; the "
            f"standardised ratio compares people of the same age and sex; the shrunk ratio pulls "
            f"small teams towards the all-team value to temper chance extremes; the persons ratio "
            f"compares the share of residents queried at least once (people, not queries). The "
            f"intervals allow for repeat checks: the same person queried again and again counts "
            f"as one cluster of queries, not as independent events. Suppressed cells are left out "
            f"of the figures.",
            _esc(note) if note else "",
        )
    ]
    for query_type in _query_types(frame):
        typed = _of_type(frame, query_type)
        parts.append(f"<h3>{_esc(_type_heading(query_type))}</h3>")
        rows = _forest_rows(typed, context.reference_origin)
        if rows:
            parts.append(
                figures.render(
                    _forest_chart(rows),
                    f"{_type_heading(query_type)}: ratio per team and origin with 95% intervals; "
                    f"the dashed line marks 1 (same rate as the reference group).",
                )
            )
        else:
            parts.append(_paragraphs("No published estimate to plot."))
        parts.append(_team_detail_table(typed))
    return "".join(parts)


def _funnel_html(frame: pl.DataFrame, context: ReportContext, figures: _Figures) -> str:
    frame, _ = _select_period(_select_benchmark(frame, context), context)
    needed = {"query_count", "rate_ratio", "origin", "team_code"}
    if not needed <= set(frame.columns):
        return _paragraphs("The table lacks the columns for a funnel plot.")
    method = (
        "Control limits: exact Poisson limits around a ratio of 1 (Spiegelhalter 2005), widened "
        "by an overdispersion factor estimated from the plotted teams themselves (repeat checks "
        "of the same people and differences between areas make teams vary more than Poisson "
        "chance)."
    )
    parts = [
        _paragraphs(
            "Each point is a team and origin group: its crude rate ratio against its expected "
            "number of queries (queries divided by the ratio: what the group would have had at "
            "the reference group's rate). Small groups scatter more; the funnel shows how far a "
            "ratio can stray by chance alone at 95% and 99.8%. " + method
        )
    ]
    for query_type in _query_types(frame):
        typed = _published(_of_type(frame, query_type)).filter(
            (pl.col("team_code") != ALL_TEAMS) & (pl.col("origin") != context.reference_origin)
        )
        rows = [
            {
                "origin": _origin_label(r["origin"]),
                "team": str(r["team_code"]),
                "ratio": float(r["rate_ratio"]),
                "expected": float(r["query_count"]) / float(r["rate_ratio"]),
            }
            for r in _sorted_rows(typed, ("origin", "team_code"))
            if _is_number(r.get("rate_ratio"))
            and r["rate_ratio"] > 0
            and _is_number(r.get("query_count"))
            and r["query_count"] > 0
        ]
        if not rows:
            continue
        expected = [r["expected"] for r in rows]
        grid = np.geomspace(min(expected) / 1.2, max(expected) * 1.2, 60)
        # NOTE: φ from the plotted points (winsorised z-scores); 1 with fewer than two points.
        phi = (estimate_funnel_overdispersion([r["ratio"] * r["expected"] for r in rows], expected)
               if len(rows) >= 2 else 1.0)
        limits = [
            {"expected": r["expected"], "ratio": r[side], "coverage": f"{100 * r['level']:g}%",
             "limit": f"{100 * r['level']:g}% {side[6:]}"}
            for r in funnel_limits(grid, overdispersion=phi).iter_rows(named=True)
            for side in ("limit_low", "limit_high")
            if r[side] > 0
        ]
        parts.append(f"<h3>{_esc(_type_heading(query_type))}</h3>")
        parts.append(
            figures.render(
                _funnel_section_chart(rows, limits),
                f"{_type_heading(query_type)}: funnel plot of crude rate ratios per team and origin.",
            )
        )
    return "".join(parts)


def _outcome_html(frame: pl.DataFrame, context: ReportContext, figures: _Figures) -> str:
    whole = (
        frame.filter(pl.col("team_code") == ALL_TEAMS) if "team_code" in frame.columns else frame
    )
    parts = [
        _paragraphs(
            "The outcome test compares how often a query returned an alert (a hit) across origin "
            "groups, for all teams together, with Wilson 95% intervals. A lower hit rate for a "
            "group can indicate a lower threshold for querying its members. Two caveats: the "
            "hit field is optional in MEOS and who fills it in may be selective, and differences "
            "in hit rates can arise without any difference in threshold (infra-marginality)."
        )
    ]
    columns = _present(
        frame,
        [
            ("query_type", _label("Query type", "query_type")),
            ("origin", _label("Origin", "origin", _origin_label)),
            ("query_count", _col("Queries with hit field", "query_count", _fmt_count)),
            ("hit_count", _col("Hits", "hit_count", _fmt_count)),
            ("hit_rate", _col("Hit rate", "hit_rate", _fmt_pct)),
            (
                "hit_rate_ci_low",
                _Column(
                    "95% CI",
                    lambda r: _fmt_ci_pct(r.get("hit_rate_ci_low"), r.get("hit_rate_ci_high")),
                ),
            ),
            ("hit_rate_diff", _col("Difference vs reference", "hit_rate_diff", _fmt_pct_signed)),
            (
                "hit_rate_diff_ci_low",
                _Column(
                    "95% CI",
                    lambda r: _fmt_ci_pct(
                        r.get("hit_rate_diff_ci_low"), r.get("hit_rate_diff_ci_high")
                    ),
                ),
            ),
        ],
    )
    parts.append(_html_table(_sorted_rows(whole, ("query_type", "origin")), columns))
    if {"origin", "hit_rate"} <= set(whole.columns):
        for query_type in _query_types(whole):
            rows = [
                {
                    "label": _origin_label(r["origin"]),
                    "value": float(r["hit_rate"]),
                    "low": r.get("hit_rate_ci_low")
                    if _is_number(r.get("hit_rate_ci_low"))
                    else None,
                    "high": r.get("hit_rate_ci_high")
                    if _is_number(r.get("hit_rate_ci_high"))
                    else None,
                }
                for r in _sorted_rows(_published(_of_type(whole, query_type)), ("origin",))
                if _is_number(r.get("hit_rate"))
            ]
            if rows:
                chart = _interval_chart(
                    rows,
                    label=_type_heading(query_type),
                    value_title="Hit rate",
                    log=False,
                    reference=None,
                    percent=True,
                )
                parts.append(
                    figures.render(
                        chart,
                        f"{_type_heading(query_type)}: hit rate per origin with Wilson 95% "
                        "intervals, all teams.",
                    )
                )
    return "".join(parts)


def _fmt_ci_pct(low: object, high: object) -> str:
    if not (_is_number(low) and _is_number(high)):
        return SUPPRESSED_MARK
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def _fmt_pct_signed(value: object) -> str:
    return f"{100 * value:+.1f} pp" if _is_number(value) else SUPPRESSED_MARK


def _repeat_html(frame: pl.DataFrame, figures: _Figures) -> str:
    whole = (
        frame.filter(pl.col("team_code") == ALL_TEAMS) if "team_code" in frame.columns else frame
    )
    columns = _present(
        frame,
        [
            ("query_type", _label("Query type", "query_type")),
            ("origin", _label("Origin", "origin", _origin_label)),
            ("person_count", _col("Persons queried", "person_count", _fmt_count)),
            ("queries_per_person", _col("Queries per person", "queries_per_person", _fmt_ratio)),
            ("share_queried_2plus", _col("Queried ≥ 2 times", "share_queried_2plus", _fmt_pct)),
            ("share_queried_5plus", _col("Queried ≥ 5 times", "share_queried_5plus", _fmt_pct)),
            ("gini", _col("Gini", "gini", _fmt_number)),
        ],
    )
    parts = [
        _paragraphs(
            "Events are not people: the same person can be queried many times. Per origin group, "
            "all teams together: how many distinct persons were queried, how many queries each "
            "had on average, the share queried at least twice and at least five times, and the "
            "Gini coefficient of queries over persons (0: evenly spread, 1: all on one person)."
        ),
        _html_table(_sorted_rows(whole, ("query_type", "origin")), columns),
    ]
    if {"origin", "share_queried_2plus"} <= set(whole.columns):
        rows = [
            {
                "origin": _origin_label(r["origin"]),
                "share": float(r["share_queried_2plus"]),
                "query_type": str(r.get("query_type", "all")),
            }
            for r in _sorted_rows(_published(whole), ("query_type", "origin"))
            if _is_number(r.get("share_queried_2plus"))
        ]
        if rows:
            chart = (
                alt.Chart(alt.Data(values=rows))
                .mark_bar()
                .encode(
                    x=alt.X(
                        "share:Q",
                        title="Share of persons queried at least twice",
                        axis=alt.Axis(format=".0%"),
                    ),
                    y=alt.Y(
                        "origin:N", sort=list(dict.fromkeys(r["origin"] for r in rows)), title=None
                    ),
                    yOffset=alt.YOffset("query_type:N"),
                    color=alt.Color(
                        "query_type:N",
                        scale=alt.Scale(range=["#1f5fa8", "#d9741c"]),
                        legend=alt.Legend(title="Query type", orient="top"),
                    ),
                )
                .properties(width=520, height=alt.Step(20))
            )
            parts.append(
                figures.render(
                    chart, "Share of queried persons queried at least twice, per origin, all teams."
                )
            )
    return "".join(parts)


def _vod_html(frame: pl.DataFrame, figures: _Figures) -> str:
    columns = _present(
        frame,
        [
            ("design", _label("Design", "design")),
            ("origin", _label("Origin", "origin", _origin_label)),
            ("fixed_effects", _label("Fixed effects", "fixed_effects")),
            ("estimate", _col("γ (darkness)", "estimate", _fmt_number)),
            ("std_error", _col("SE", "std_error", _fmt_number)),
            ("ci_low", _Column("95% CI", lambda r: _fmt_ci3(r.get("ci_low"), r.get("ci_high")))),
            ("n", _col("Queries", "n", _fmt_count)),
        ],
    )
    parts = [
        _paragraphs(
            "Veil of darkness (licence-plate queries): if officers can see a driver less well after "
            "dark, the origin mix of queried holders should not change with darkness unless "
            "visibility matters. γ is the log-odds change for the group against the reference in "
            "darkness at the same clock time; γ &lt; 0 means fewer holders of that group were "
            "queried in darkness, consistent with selection on appearance in daylight."
        ),
        _html_table(_sorted_rows(frame, ("design", "origin", "fixed_effects")), columns),
    ]
    if {"estimate", "origin"} <= set(frame.columns):
        rows = [
            {
                "label": " · ".join(
                    str(x)
                    for x in (
                        _origin_label(r["origin"]),
                        r.get("design"),
                        f"FE: {r['fixed_effects']}" if r.get("fixed_effects") is not None else None,
                    )
                    if x is not None
                ),
                "value": float(r["estimate"]),
                "low": r.get("ci_low") if _is_number(r.get("ci_low")) else None,
                "high": r.get("ci_high") if _is_number(r.get("ci_high")) else None,
            }
            for r in _sorted_rows(_published(frame), ("origin", "design", "fixed_effects"))
            if _is_number(r.get("estimate"))
        ]
        if rows:
            parts.append(
                figures.render(
                    _interval_chart(
                        rows,
                        label="Veil of darkness",
                        value_title="γ (log-odds, darkness vs daylight)",
                        log=False,
                        reference=0.0,
                    ),
                    "Veil-of-darkness estimates with 95% intervals; the dashed line marks no effect.",
                )
            )
    return "".join(parts)


def _fmt_ci3(low: object, high: object) -> str:
    if not (_is_number(low) and _is_number(high)):
        return SUPPRESSED_MARK
    return f"{low:.3f} to {high:.3f}"


def _count_models_html(frame: pl.DataFrame, figures: _Figures) -> str:
    ratio = "ratio" if "ratio" in frame.columns else None
    columns = _present(
        frame,
        [
            ("query_type", _label("Query type", "query_type")),
            ("family", _label("Family", "family")),
            ("term", _label("Term", "term")),
            ("level", _label("Level", "level", _origin_label)),
            *([(ratio, _col("Ratio", ratio, _fmt_ratio))] if ratio else []),
            ("ci_low", _ci_col("95% CI", "ci_low", "ci_high")),
            ("dispersion", _col("Overdispersion", "dispersion", _fmt_ratio)),
        ],
    )
    parts = [
        _paragraphs(
            "Count models (Poisson, quasi-Poisson, negative binomial) of queries per team and origin "
            "with residents as exposure: the ratio for an origin holds team (and age-sex stratum) "
            "constant. Overdispersion above 1 means the Poisson intervals would be too narrow."
        ),
        _html_table(_sorted_rows(frame, ("query_type", "family", "term", "level")), columns),
    ]
    if ratio and "ci_low" in frame.columns and "ci_high" in frame.columns:
        rows = [
            {
                "label": " · ".join(
                    str(x)
                    for x in (r.get("query_type"), r.get("family"), r.get("level"))
                    if x is not None
                ),
                "value": float(r[ratio]),
                "low": r["ci_low"] if _is_number(r.get("ci_low")) and r["ci_low"] > 0 else None,
                "high": r["ci_high"] if _is_number(r.get("ci_high")) else None,
            }
            # NOTE: the origin terms only: team and stratum terms are adjustments.
            for r in _sorted_rows(_published(frame).filter(pl.col("term") == "origin"),
                                  ("query_type", "family", "term", "level"))
            if _is_number(r.get(ratio)) and r[ratio] > 0
        ]
        if rows:
            parts.append(
                figures.render(
                    _interval_chart(
                        rows,
                        label="Count models",
                        value_title="Rate ratio (log scale)",
                        log=True,
                        reference=1.0,
                    ),
                    "Rate ratios from the count models with 95% intervals.",
                )
            )
    return "".join(parts)


def _theme_html(theme: ThemeSection, context: ReportContext, figures: _Figures) -> str:
    """A theme: its description, then per query type the summary and the forest plot."""
    title = theme.title or theme.name
    parts = [f"<h3>{_esc(title)}</h3>", _paragraphs(_esc(theme.description))]
    frame, note = _select_period(_select_benchmark(theme.table, context), context)
    if note:
        parts.append(_paragraphs(_esc(note)))
    if frame.is_empty():
        parts.append(_paragraphs("The theme's table holds no rows for the default benchmark."))
    for query_type in _query_types(frame):
        typed = _of_type(frame, query_type)
        parts.append(_summary_html(typed, context, with_preamble=False))
        rows = _forest_rows(typed, context.reference_origin)
        if rows:
            parts.append(
                figures.render(
                    _forest_chart(rows),
                    f"Theme '{title}', {_type_heading(query_type).lower()}: ratio per team and "
                    f"origin with 95% intervals.",
                )
            )
    return f'<div class="theme" id="theme-{_esc(theme.name)}">{"".join(parts)}</div>'


def _methods_html(context: ReportContext) -> str:
    threshold = context.settings.get("disclosure_threshold", 10)
    rounding = context.settings.get("disclosure_round_to")
    synthetic = (
        '<p class="warning"><strong>Synthetic data.</strong> This report was made from the '
        "built-in synthetic sample: every query and every origin is invented. It demonstrates the "
        "pipeline and says nothing about the police.</p>"
        if context.is_synthetic
        else ""
    )
    items = [
        (
            "The benchmark problem",
            "Residents are not the population at risk of a query: visitors, commuters, nightlife and "
            "where officers patrol all shape who can be queried. No benchmark is right on its own; the "
            "report compares groups within the same area and shows several benchmarks in its tables. "
            "A ratio above 1 is a difference in rates, not a finding about intent.",
        ),
        (
            "Events and people",
            "A query is an event; one person can be queried many times. Query rates are not the share "
            "of people checked: the repeat-check section reports persons separately.",
        ),
        (
            "Standardisation",
            "Police contact concentrates on young men, and origin groups differ in age structure. The "
            "standardised ratio (Mantel–Haenszel over sex × age band) compares people of the same sex "
            "and age band; read it next to the crude ratio.",
        ),
        (
            "Many teams, small numbers",
            "With many teams some ratios are extreme by chance. Intervals, q-values (Benjamini–"
            "Hochberg false discovery rate), shrinkage towards the all-team value and the funnel plot "
            "all guard against reading noise as a finding. Never rank teams on raw ratios.",
        ),
        (
            "Outcome test and infra-marginality",
            "Hit rates compare outcomes of queries, not who was queried. Differences in hit rates can "
            "arise from differences in the groups' risk distributions even with one threshold "
            "(infra-marginality), and the hit field is optional in MEOS.",
        ),
        (
            "Missing origin",
            "Queries whose person could not be linked to CBS registers carry no origin; their share is "
            "in the data-suitability section and bounds are given in the methodology.",
        ),
        (
            "Disclosure control",
            f"Cells with fewer than {_esc(threshold)} persons, or fewer than {_esc(threshold)} queries "
            f"or hits (or non-hits) behind a rate, are suppressed (shown as {SUPPRESSED_MARK}), and "
            f"further cells are suppressed so that none can be worked out from totals. Suppressed "
            f"cells are not plotted."
            + (
                f" Published counts are rounded to multiples of {_esc(rounding)}."
                if rounding
                else ""
            ),
        ),
    ]
    return synthetic + "".join(f"<h3>{_esc(t)}</h3><p>{_esc(b)}</p>" for t, b in items)


def _setting_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _footer_html(context: ReportContext) -> str:
    settings = "".join(
        f"<tr><th scope=row>{_esc(k)}</th><td><code>{_esc(_setting_text(v))}</code></td></tr>"
        for k, v in sorted(context.settings.items(), key=lambda kv: str(kv[0]))
    )
    generated = (
        f"<dt>Generated</dt><dd>{_esc(context.generated_at)}</dd>" if context.generated_at else ""
    )
    return (
        "<dl>"
        f"<dt>Period</dt><dd>{_esc(context.period_start)} to {_esc(context.period_end)}</dd>"
        f"<dt>Code version</dt><dd><code>{_esc(context.code_version)}</code></dd>"
        f"<dt>Input fingerprint</dt><dd><code>{_esc(context.input_fingerprint)}</code></dd>"
        f"{generated}</dl>"
        + (
            '<table class="settings"><caption>Settings of the run</caption>'
            f"<tbody>{settings}</tbody></table>"
            if settings
            else ""
        )
    )


_CSS = """
:root{--ink:#1d2330;--muted:#5b6472;--rule:#d9dde3;--accent:#1f5fa8;--warn:#fff4d6;--warn-ink:#7a5400}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
main{max-width:960px;margin:0 auto;padding:2rem 1.25rem 3rem}
h1{font-size:1.9rem;line-height:1.2;margin:0 0 .25rem}
h2{font-size:1.35rem;margin:2.5rem 0 .75rem;padding-top:.75rem;border-top:2px solid var(--ink)}
h3{font-size:1.08rem;margin:1.75rem 0 .5rem}
h4{font-size:1rem;margin:1.25rem 0 .4rem}
.theme{margin-top:2rem;padding-top:.25rem;border-top:1px solid var(--rule)}
p,li{max-width:46rem}
.subtitle{color:var(--muted);margin:0 0 1.5rem}
.warning{background:var(--warn);color:var(--warn-ink);border-left:4px solid #e0a800;padding:.75rem 1rem;border-radius:4px}
nav.toc{background:#f5f7fa;border:1px solid var(--rule);border-radius:6px;padding:.75rem 1.25rem;margin:1.5rem 0}
nav.toc h2{border:0;margin:0 0 .25rem;padding:0;font-size:1rem}
nav.toc ol{margin:0;padding-left:1.25rem}
a{color:var(--accent)}
.table-wrap{overflow-x:auto;margin:.75rem 0 1.25rem}
table{border-collapse:collapse;font-size:.875rem;width:100%}
th,td{padding:.3rem .55rem;border-bottom:1px solid var(--rule);text-align:left;vertical-align:top}
thead th{border-bottom:2px solid var(--ink);font-weight:600;vertical-align:bottom}
td.label{white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
tr.suppressed td{color:var(--muted);background:#fafafa}
details{margin:.5rem 0 1.5rem}
summary{cursor:pointer;color:var(--accent)}
figure{margin:1rem 0 1.75rem}
.chart{overflow-x:auto}
.chart svg{max-width:100%;height:auto;display:block}
figcaption{color:var(--muted);font-size:.875rem;margin-top:.35rem}
footer{margin-top:3rem;padding-top:1rem;border-top:1px solid var(--rule);color:var(--muted);font-size:.875rem}
footer dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0 0 1rem}
footer dt{font-weight:600}
footer dd{margin:0;overflow-wrap:anywhere}
table.settings{width:auto}
table.settings caption{text-align:left;font-weight:600;padding:.25rem 0}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.85em}
@media print{nav.toc{display:none}details{display:block}}
"""

# NOTE: the policy forbids every fetch (scripts, styles, fonts, images, frames) except the page's
# own inline style: a reader's browser enforces "no network" even if a figure slipped something in.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_report(tables: Mapping[str, pl.DataFrame], *, context: ReportContext) -> str:
    """The thematic report as one self-contained HTML page.

    Sections appear only when their table is given: summary, data suitability, disproportionality
    per team (forest plots), funnel plot, outcome test, repeat checks, veil of darkness, count
    models, then one section per theme, methods and caveats, and a footer with the settings, code
    version and input fingerprint.

    Parameters
    ----------
    tables
        Disclosure-controlled publication tables by asset name (see ``KNOWN_TABLES``). Unknown
        columns are ignored; columns the report would use but the table lacks are left out.
    context
        Title, period, provenance and themes.

    Returns
    -------
    str
        The HTML page; the same input gives the same bytes.

    Raises
    ------
    ValueError
        For a table name the report does not know (a wiring mistake would otherwise drop it).
    """
    unknown = sorted(set(tables) - set(KNOWN_TABLES))
    if unknown:
        raise ValueError(
            f"the report does not know the tables {unknown}; known: {list(KNOWN_TABLES)}"
        )
    figures = _Figures()
    team = tables.get(TEAM_TABLE)
    sections: list[_Section] = []
    if team is not None:
        sections.append(_Section("summary", "Summary", _summary_html(team, context)))
    if (suitability := tables.get(SUITABILITY_TABLE)) is not None:
        sections.append(
            _Section(
                "data-suitability", "Data suitability", _suitability_html(suitability, figures)
            )
        )
    if team is not None:
        sections.append(
            _Section(
                "disproportionality",
                "Disproportionality per team",
                _disproportionality_html(team, context, figures),
            )
        )
        sections.append(
            _Section(
                "funnel",
                "Funnel plot",
                _funnel_html(team, context, figures),
            )
        )
    if (outcome := tables.get(OUTCOME_TABLE)) is not None:
        sections.append(
            _Section(
                "outcome-test", "Outcome test (hit rates)", _outcome_html(outcome, context, figures)
            )
        )
    if (repeat := tables.get(REPEAT_TABLE)) is not None:
        sections.append(_Section("repeat-checks", "Repeat checks", _repeat_html(repeat, figures)))
    if (vod := tables.get(VOD_TABLE)) is not None:
        sections.append(_Section("veil-of-darkness", "Veil of darkness", _vod_html(vod, figures)))
    if (models := tables.get(COUNT_MODEL_TABLE)) is not None:
        sections.append(
            _Section("count-models", "Count models", _count_models_html(models, figures))
        )
    themes = context.theme_sections()
    if themes:
        body = _paragraphs(
            "Each theme repeats the statistics for a slice of the queries, defined in the versioned "
            "theme file."
        ) + "".join(_theme_html(t, context, figures) for t in themes)
        sections.append(_Section("themes", "Thematic analyses", body))
    sections.append(_Section("methods", "Methods and caveats", _methods_html(context)))

    toc = "".join(f'<li><a href="#{s.anchor}">{_esc(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{_esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    banner = (
        '<p class="warning"><strong>Synthetic data:</strong> made from the built-in synthetic '
        "sample, not from police data.</p>"
        if context.is_synthetic
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(context.title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{_esc(context.title)}</h1>"
        f'<p class="subtitle">Period {_esc(context.period_start)} to {_esc(context.period_end)}</p>'
        f"{banner}</header>"
        f'<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>{toc}</ol></nav>'
        f"{body}"
        f'<footer id="provenance">{_footer_html(context)}</footer>'
        "</main></body></html>\n"
    )
