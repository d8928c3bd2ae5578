"""The report's figures: Altair charts rendered to inline SVG whose bytes do not depend on fonts.

vl-convert renders Vega-Lite to SVG offline, but it lays text out with the fonts it finds on the
machine: ``sans-serif`` is Arial, Helvetica or Liberation Sans, whichever is installed first
(vl-convert ships Liberation Sans as the last resort), and a character missing from that font
is measured in the first system font that has it. Vega uses those widths three ways: to
truncate labels longer than ``labelLimit`` with "…" (the veil-of-darkness labels were cut to
"Marokko (MA) · intertwilight · FE: …"), to size the chart around its axes and legends
(``autosize: pad``), and to move axis titles, legends and facet cells out of the labels' way.
So the same tables gave other SVG on a machine, or in an environment, with other fonts.

Here no position depends on a measured width:

* no truncation: every label, title and header has no length limit;
* no automatic size: each chart has ``autosize: none`` and a padding computed from the number of
  characters of its labels (:func:`text_width`, generous for wide fonts);
* legends are vertical, at fixed coordinates; axis titles beside measured labels get fixed
  coordinates; facets use ``bounds: flush`` (cells placed by their size, not their axes), and the
  page size of a faceted chart is set in the Vega spec;
* no label-overlap removal (it measures), and titles anchor to the plot, not to its axes.

The test ``test_figures_do_not_depend_on_fonts`` renders the report with a font of other widths
and finds the same SVG apart from the font name.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import vl_convert as vlc
from markupsafe import Markup

from assets.report.language import Language, is_number

FONT = "sans-serif"
"""The figures' font: the reader's browser picks a local sans-serif; nothing is embedded."""
_LABEL_SIZE = 11
_TITLE_SIZE = 12
_ENTRY_HEIGHT = 16
"""Height of one vertical legend entry (symbol or 11 px label, plus row padding), generous."""
_CHAR_EM = 0.62
"""Width of a character in em, generous: DejaVu Sans, among the widest sans-serif fonts,
averages about 0.55 em over the labels of this report."""

CHART_CONFIG: dict[str, Any] = {
    # NOTE: no per-mark ARIA descriptions: hundreds of "ratio: 1.2345678" labels help no screen
    # reader; each figure carries one aria-label (its caption) and the tables hold the numbers.
    "aria": False,
    "font": FONT,
    "axis": {
        "labelFontSize": _LABEL_SIZE,
        "titleFontSize": _TITLE_SIZE,
        "titleFontWeight": "normal",
        "titleColor": "#1d2330",
        "labelLimit": 0,
        "titleLimit": 0,
        "labelOverlap": False,
    },
    "legend": {
        "labelFontSize": _LABEL_SIZE,
        "titleFontSize": _TITLE_SIZE,
        "titleFontWeight": "normal",
        "labelLimit": 0,
        "titleLimit": 0,
        "orient": "none",
        "direction": "vertical",
    },
    "header": {
        "labelFontSize": _TITLE_SIZE,
        "labelFontWeight": "bold",
        "labelLimit": 0,
        "titleLimit": 0,
    },
    "title": {"fontSize": 13, "frame": "group", "limit": 0},
    "view": {"stroke": "#ccc"},
}

_AXIS_BOTTOM = 44
"""Room below a plot for an x axis: tick 5 + padding 2 + 11 px labels + padding + 12 px title."""
_HEADER_BAND = 26
"""Room above a facet cell for its 12 px bold header."""
_GAP = 20


def text_width(text: str, size: float = _LABEL_SIZE) -> int:
    """A generous width in pixels of `text` at font size `size`, from its length alone."""
    return math.ceil(len(text) * size * _CHAR_EM)


def _widest(texts: Iterable[str], size: float = _LABEL_SIZE) -> int:
    return max((text_width(t, size) for t in texts), default=0)


@dataclass(frozen=True)
class Legend:
    """A vertical legend: its title and labels, to size the room it needs."""

    title: str
    labels: Sequence[str]

    @property
    def width(self) -> int:
        return max(text_width(self.title, _TITLE_SIZE), 18 + _widest(self.labels))

    @property
    def height(self) -> int:
        return _TITLE_SIZE + 8 + _ENTRY_HEIGHT * len(self.labels)

    def place(self, x: float, y: float) -> alt.Legend:
        return alt.Legend(title=self.title, orient="none", legendX=x, legendY=y)


def _stack(legends: Sequence[Legend], x: float) -> list[alt.Legend]:
    """Legends one under another at `x`, from the top of the plot."""
    placed, y = [], 0
    for legend in legends:
        placed.append(legend.place(x, y))
        y += legend.height + 10
    return placed


def _padding(left: float, top: float, right: float, bottom: float) -> dict[str, int]:
    return {"left": math.ceil(left), "top": math.ceil(top), "right": math.ceil(right),
            "bottom": math.ceil(bottom)}  # fmt: skip


def _left_axis(labels: Iterable[str]) -> int:
    """Room left of a plot for axis labels (tick 5 + padding 2 + labels + margin)."""
    return 5 + 2 + _widest(labels) + 8


# --------------------------------------------------------------------------------------------
# Rendering.


# NOTE: a legend and each of its entries get a background path sized to the measured text; it
# has no fill and no stroke (and ignores the pointer), so it draws nothing and is dropped.
_INVISIBLE_BACKGROUND = re.compile(
    r'<path class="background" aria-hidden="true" d="[^"]*" pointer-events="none"'
    r'(?: opacity="1")?/>'
)
_ID_ATTRIBUTE = re.compile(r'(?<=\s)id="([^"]+)"')
_EXTERNAL_REFERENCE = re.compile(
    r'(?:href|src)\s*=\s*"(?!#)|url\(\s*[\'"]?(?!#)|@import|@font-face', re.IGNORECASE
)


def normalise_svg(svg: str, prefix: str) -> str:
    """Make a vl-convert SVG safe to inline: local ids, no namespaces, no external reference,
    no invisible legend backgrounds (their size is measured text).

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
    svg = _INVISIBLE_BACKGROUND.sub("", svg)
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


@dataclass(frozen=True)
class Chart:
    """An Altair chart and, for a faceted chart, the size of its grid (Vega needs it then)."""

    spec: alt.TopLevelMixin
    grid_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Figure:
    """A rendered figure: its id in the page, inline SVG and caption."""

    id: str
    svg: Markup
    caption: str


class Figures:
    """Renders charts of one page to inline SVG, with ids unique in the page and stable."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self.count = 0

    def render(self, chart: Chart, caption: str) -> Figure:
        self.count += 1
        figure_id = f"fig{self.count}"
        svg = normalise_svg(render_svg(chart, self.language), figure_id)
        opening = Markup('<svg role="img" aria-label="{}" ').format(caption)
        return Figure(figure_id, Markup(svg.replace("<svg ", opening, 1)), caption)


VALIDATE_SPECS = False
"""Check charts against altair's JSON schema: each chart's Vega-Lite spec before rendering, and
each altair object as it is built (`checking_specs`). Off in runs: the checks took half of the
reports' time on the sample and check code, not data; tests/unit/test_report.py renders every
figure of the report with them on."""


def checking_specs() -> contextlib.AbstractContextManager[None]:
    """Within it, altair checks each object against its schema as it is built (its "debug
    mode") exactly when `VALIDATE_SPECS` is on."""
    return alt.utils.schemapi.debug_mode(VALIDATE_SPECS)


def render_svg(chart: Chart, language: Language) -> str:
    """The SVG of a chart, with the language's number format on its axes and no network."""
    locale = language.w("numbers.chart_locale")
    config = CHART_CONFIG
    vega_lite = chart.spec.to_dict(validate=VALIDATE_SPECS)
    if chart.grid_size is None:
        return vlc.vegalite_to_svg(vega_lite, config=config, format_locale=locale,
                                   allowed_base_urls=[])  # fmt: skip
    # NOTE: with autosize "none" a faceted chart gets the size of its view from the top-level
    # width and height of the Vega spec, which Vega-Lite leaves out for facets.
    spec = vlc.vegalite_to_vega(vega_lite, config=config)
    spec["width"], spec["height"] = chart.grid_size
    return vlc.vega_to_svg(spec, format_locale=locale, allowed_base_urls=[])


# --------------------------------------------------------------------------------------------
# Scales.



def log_domain(values: Iterable[object]) -> list[float]:
    """A log-axis domain around the positive values and 1."""
    finite = [float(v) for v in values if is_number(v) and v > 0]
    low = min([1.0, *finite])
    high = max([1.0, *finite])
    return [low / 1.15, high * 1.15]


def log_ticks(domain: Sequence[float]) -> list[float]:
    """Readable tick values for a log axis: 1-2-5 steps, finer when the range is narrow."""
    fine = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100)
    coarse = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    for candidates in (fine, coarse):
        ticks = [t for t in candidates if domain[0] <= t <= domain[1]]
        if len(ticks) <= 9:
            return ticks
    return ticks


def _tick_labels(ticks: Sequence[float], language: Language) -> list[str]:
    return [language.plain(t) for t in ticks]


# --------------------------------------------------------------------------------------------
# Charts.


def forest_chart(
    rows: list[dict[str, object]], *, estimators: Sequence[tuple[str, str]], teams: Sequence[str],
    language: Language, legend_title: str | None = None,
) -> Chart:  # fmt: skip
    """Ratio per team (rows) and origin (panels) with intervals, one mark per estimator.

    `rows` hold team, origin, estimator (its label), ratio, ci_low and ci_high; `estimators` are
    (label, colour) in drawing order; `teams` the team labels in order. The change over time
    draws quarters as the rows, teams as the panels and origins as the "estimators", under its
    own `legend_title`.
    """
    origins = list(dict.fromkeys(str(r["origin"]) for r in rows))
    labels = [label for label, _ in estimators]
    domain = log_domain(
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
    ticks = log_ticks(domain)
    scale = alt.Scale(type="log", domain=domain, clamp=True, nice=False)
    axis = alt.Axis(values=ticks, format="~g")
    legend = Legend(legend_title or language.w("disproportionality.legend"), labels)
    columns = min(3, len(origins))
    grid_rows = math.ceil(len(origins) / columns)
    cell_width = 240
    cell_height = len(teams) * (len(labels) * 7 + 6)
    spacing_column = max(_GAP, text_width(max(origins, key=len), _TITLE_SIZE) - cell_width + _GAP)
    spacing_row = _HEADER_BAND + 8
    colour = alt.Color(
        "estimator:N",
        scale=alt.Scale(domain=labels, range=[c for _, c in estimators]),
        legend=legend.place(0, -(_HEADER_BAND + legend.height + 6)),
    )
    y = alt.Y("team:N", sort=list(teams), title=None,
              scale=alt.Scale(domain=list(teams), paddingInner=0.3, paddingOuter=0.2))  # fmt: skip
    y_offset = alt.YOffset("estimator:N", sort=labels, scale=alt.Scale(domain=labels))
    interval = (
        alt.Chart()
        .mark_rule(strokeWidth=1.5)
        .encode(
            x=alt.X("ci_low:Q", scale=scale, axis=axis, title=language.w("disproportionality.axis")),
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
            shape=alt.Shape("estimator:N", sort=labels, scale=alt.Scale(domain=labels),
                            legend=None),  # fmt: skip
        )
    )
    reference = (
        alt.Chart()
        .mark_rule(color="#333", strokeDash=[4, 3])
        .encode(x=alt.datum(1.0))
        .transform_aggregate(n="count()")
    )
    width = columns * cell_width + (columns - 1) * spacing_column
    height = grid_rows * cell_height + (grid_rows - 1) * spacing_row
    overhang = max(0, text_width(max(origins, key=len), _TITLE_SIZE) - cell_width) / 2
    spec = (
        alt.layer(interval, point, reference, data=alt.Data(values=rows))
        .properties(width=cell_width, height=cell_height)
        .facet(
            facet=alt.Facet("origin:N", sort=origins, title=None),
            columns=columns,
            spacing={"column": spacing_column, "row": spacing_row},
            bounds="flush",
        )
        .properties(
            autosize=alt.AutoSizeParams(type="none"),
            padding=_padding(
                left=max(_left_axis(teams), overhang + 4),
                top=_HEADER_BAND + legend.height + 12,
                right=max(legend.width - width, overhang) + 12,
                bottom=_AXIS_BOTTOM,
            ),
        )
    )
    return Chart(spec, grid_size=(width, height))


def interval_chart(
    rows: list[dict[str, object]],
    *,
    title: str,
    value_title: str,
    log: bool,
    reference: float | None,
    percent: bool = False,
    groups: Legend | None = None,
    panels: Sequence[str] = (),
) -> Chart:
    """Points with interval bars, one row per label (outcome test, count models, VOD).

    `rows` hold label, value, low and high; with `groups`, also group (its label, drawn in colour
    side by side within a label); with `panels`, also panel (one panel per value, side by side).
    """
    values = [r["value"] for r in rows] + [r["low"] for r in rows] + [r["high"] for r in rows]
    if log:
        domain = log_domain(values)
        scale = alt.Scale(type="log", domain=domain, nice=False, clamp=True)
        ticks = log_ticks(domain)
        axis = alt.Axis(values=ticks, format="~g")
    else:
        finite = [float(v) for v in values if is_number(v)] + (
            [reference] if reference is not None else []
        )
        pad = (max(finite) - min(finite)) * 0.08 or 0.05
        scale = alt.Scale(domain=[min(finite) - pad, max(finite) + pad], nice=False, zero=False)
        axis = alt.Axis(format=".0%", tickMinStep=0.01) if percent else alt.Axis()
    labels = list(dict.fromkeys(str(r["label"]) for r in rows))
    y = alt.Y("label:N", sort=labels, title=None, scale=alt.Scale(domain=labels))
    encoding: dict[str, Any] = {"y": y}
    colour = "#1f5fa8"
    plot_width = 520 if not panels else max(260, 520 // len(panels))
    spacing = max(_GAP, _widest(panels, _TITLE_SIZE) - plot_width + _GAP)
    width = len(panels) * plot_width + (len(panels) - 1) * spacing if panels else plot_width
    if groups is not None:
        group_colours = ["#1f5fa8", "#d9741c", "#4b9b5f", "#8c5fa8"][: len(groups.labels)]
        encoding["yOffset"] = alt.YOffset("group:N", sort=list(groups.labels))
        legend_x = width + _GAP
        encoding["color"] = alt.Color(
            "group:N",
            scale=alt.Scale(domain=list(groups.labels), range=group_colours),
            legend=groups.place(legend_x, 0),
        )
    per_label = 18 if groups is None else 8 * len(groups.labels) + 8
    height = max(1, len(labels)) * per_label
    mark = {} if groups is not None else {"color": colour}
    layers = [
        alt.Chart()
        .mark_rule(strokeWidth=1.5, **mark)
        .encode(x=alt.X("low:Q", scale=scale, title=value_title, axis=axis), x2="high:Q",
                **encoding)  # fmt: skip
        .transform_filter("isValid(datum.low) && isValid(datum.high)"),
        alt.Chart()
        .mark_point(filled=True, size=40, opacity=1, **mark)
        .encode(x=alt.X("value:Q", scale=scale), **encoding),
    ]
    if reference is not None:
        layers.append(
            alt.Chart()
            .mark_rule(color="#333", strokeDash=[4, 3])
            .encode(x=alt.datum(reference))
            .transform_aggregate(n="count()")
        )
    overhang = max(0, _widest(panels[-1:], _TITLE_SIZE) - plot_width) / 2
    right = max((groups.width + _GAP) if groups is not None else 0, overhang) + 12
    layered = alt.layer(*layers, data=alt.Data(values=rows)).properties(
        width=plot_width, height=height
    )
    if not panels:
        spec = layered.properties(
            title=alt.Title(title, anchor="start", fontSize=12, frame="group"),
            autosize=alt.AutoSizeParams(type="none"),
            padding=_padding(_left_axis(labels), 30, right, _AXIS_BOTTOM),
        )
        return Chart(spec)
    facet = layered.facet(
        column=alt.Column("panel:N", sort=list(panels), title=None),
        spacing=spacing,
        bounds="flush",
    )
    if groups is not None:
        # NOTE: each panel makes room only for the groups it has (the designs of the veil of
        # darkness have fixed effects of their own); the colours stay shared.
        facet = facet.resolve_scale(yOffset="independent")
    spec = facet.properties(
        title=alt.Title(title, anchor="start", fontSize=12, frame="group", offset=12),
        autosize=alt.AutoSizeParams(type="none"),
        padding=_padding(_left_axis(labels), 42 + _HEADER_BAND, right, _AXIS_BOTTOM),
    )
    return Chart(spec, grid_size=(width, height))


def funnel_chart(
    rows: list[dict[str, object]], limits: list[dict[str, object]], *, language: Language
) -> Chart:
    """Crude ratio against the expected count per team and origin, with control limits."""
    x_values = [r["expected"] for r in rows] + [r["expected"] for r in limits]
    y_values = [r["ratio"] for r in rows] + [r["ratio"] for r in limits]
    x_scale = alt.Scale(type="log", domain=[min(x_values) / 1.2, max(x_values) * 1.2], nice=False)
    y_domain = log_domain(y_values)
    y_scale = alt.Scale(type="log", domain=y_domain, nice=False, clamp=True)
    y_ticks = log_ticks(y_domain)
    coverages = list(dict.fromkeys(str(r["coverage"]) for r in limits))
    origins = list(dict.fromkeys(str(r["origin"]) for r in rows))
    limit_legend = Legend(language.w("funnel.limits_legend"), coverages)
    origin_legend = Legend(language.w("funnel.origin_legend"), origins)
    width, height = 620, 320
    placed = _stack([limit_legend, origin_legend], width + _GAP)
    y_labels = _left_axis(_tick_labels(y_ticks, language))
    lines = (
        alt.Chart(alt.Data(values=limits))
        .mark_line(color="#777", strokeWidth=1)
        .encode(
            x=alt.X("expected:Q", scale=x_scale, title=language.w("funnel.x_axis"),
                    axis=alt.Axis(tickCount=6)),  # fmt: skip
            y=alt.Y(
                "ratio:Q",
                scale=y_scale,
                # NOTE: the title's place beside the tick labels is set, not measured.
                axis=alt.Axis(values=y_ticks, format="~g", titleX=-y_labels, titleY=height / 2,
                              titleAngle=-90, titleAlign="center", titleBaseline="bottom"),
                title=language.w("funnel.y_axis"),
            ),
            detail="limit:N",
            strokeDash=alt.StrokeDash("coverage:N", sort=coverages, legend=placed[0]),
        )
    )
    points = (
        alt.Chart(alt.Data(values=rows))
        .mark_circle(size=36, opacity=0.85)
        .encode(
            x=alt.X("expected:Q", scale=x_scale),
            y=alt.Y("ratio:Q", scale=y_scale),
            color=alt.Color("origin:N", sort=origins, scale=alt.Scale(scheme="tableau10"),
                            legend=placed[1]),  # fmt: skip
        )
    )
    reference = (
        alt.Chart(alt.Data(values=[{"one": 1.0}]))
        .mark_rule(color="#333")
        .encode(y=alt.Y("one:Q", scale=y_scale))
    )
    legends_height = limit_legend.height + 10 + origin_legend.height
    spec = alt.layer(lines, reference, points).properties(
        width=width,
        height=height,
        autosize=alt.AutoSizeParams(type="none"),
        padding=_padding(y_labels + _TITLE_SIZE + 10, 10,
                         _GAP + max(limit_legend.width, origin_legend.width) + 12,
                         max(_AXIS_BOTTOM, legends_height - height + 10)),  # fmt: skip
    )
    return Chart(spec)


def line_chart(
    rows: list[dict[str, object]], *, x_title: str, y_title: str, legend_title: str
) -> Chart:
    """A share (0–1) per month, one line per series: rows hold month, share and series."""
    series = list(dict.fromkeys(str(r["series"]) for r in rows))
    months = list(dict.fromkeys(str(r["month"]) for r in rows))
    legend = Legend(legend_title, series)
    width, height = 720, 200
    y_labels = _left_axis(["100%"])
    # NOTE: with more than a year of months the labels stand vertically; their height is then
    # their (measured) width, so the x title gets a set place below the longest label.
    vertical = len(months) > 12
    x_axis = alt.Axis(labelAngle=-90 if vertical else 0)
    bottom = _AXIS_BOTTOM
    if vertical:
        label_room = 5 + 2 + _widest(months) + 4
        x_axis = alt.Axis(labelAngle=-90, titleY=label_room + _TITLE_SIZE, titleBaseline="bottom")
        bottom = label_room + _TITLE_SIZE + 8
    spec = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", sort=months, title=x_title, axis=x_axis),
            y=alt.Y("share:Q", title=y_title, scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format=".0%", titleX=-y_labels, titleY=height / 2,
                                  titleAngle=-90, titleAlign="center",
                                  titleBaseline="bottom")),  # fmt: skip
            color=alt.Color("series:N", sort=series, legend=legend.place(width + _GAP, 0)),
        )
        .properties(
            width=width,
            height=height,
            autosize=alt.AutoSizeParams(type="none"),
            padding=_padding(y_labels + _TITLE_SIZE + 10, 10, _GAP + legend.width + 12, bottom),
        )
    )
    return Chart(spec)


def bar_chart(rows: list[dict[str, object]], *, x_title: str, legend_title: str) -> Chart:
    """A share per label, one bar per series side by side: rows hold label, share, series."""
    labels = list(dict.fromkeys(str(r["label"]) for r in rows))
    series = list(dict.fromkeys(str(r["series"]) for r in rows))
    legend = Legend(legend_title, series)
    width = 520
    height = len(labels) * (len(series) * 10 + 8)
    spec = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X("share:Q", title=x_title, axis=alt.Axis(format=".0%")),
            y=alt.Y("label:N", sort=labels, title=None),
            yOffset=alt.YOffset("series:N", sort=series),
            color=alt.Color("series:N", sort=series,
                            scale=alt.Scale(range=["#1f5fa8", "#d9741c"]),
                            legend=legend.place(width + _GAP, 0)),  # fmt: skip
        )
        .properties(
            width=width,
            height=height,
            autosize=alt.AutoSizeParams(type="none"),
            padding=_padding(_left_axis(labels), 10, _GAP + legend.width + 12,
                             max(_AXIS_BOTTOM, legend.height - height + 10)),  # fmt: skip
        )
    )
    return Chart(spec)
