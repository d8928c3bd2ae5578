"""The thematic report (assets/report/): self-contained, deterministic, honest about suppression,
in Dutch and in English with the same numbers."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import math
import os
import re
import signal
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path
from unittest.mock import patch

import altair as alt
import numpy as np
import polars as pl
import pytest
import scipy.stats
import vl_convert as vlc

from assets.disclosure import (
    TEAM_DISPROPORTIONALITY_SPEC,
    apply_disclosure_control,
    check_disclosure,
)
from assets.release import SPECS
from assets.report import (
    KNOWN_TABLES,
    LANGUAGES,
    ReportContext,
    ThemeSection,
    normalise_svg,
    render_report,
    render_reports,
    report_file_name,
    report_process,
)
from assets.report import figures
from assets.report.language import get_language, read_words_file
from assets.schema import ORIGIN_GROUPS
from assets.schema import ORIGINS as CBS_ORIGINS
from tests.report_html import assert_same_numbers, check_published_cells, parse_report

PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
TEAMS = ("T01", "T02", "T03", "T04", "T05", "T06")
ORIGINS = ("NL", "EU", "TR", "MA", "SR", "CW")
# Planted in a cell that disclosure control suppresses; must never reach the page.
SECRET_COUNT = 987_653
SECRET_RATIO = 7.777


def _team_table(*, with_std: bool = True, scale: float = 1.0) -> pl.DataFrame:
    """A disclosure-controlled out_team_disproportionality with a known suppressed cell."""
    rows = []
    for q_index, query_type in enumerate(("person", "plate")):
        for benchmark in ("team_residents", "area_residents"):
            counts, populations = {}, {}
            for t_index, team in enumerate(TEAMS):
                for o_index, origin in enumerate(ORIGINS):
                    population = 20_000 if origin == "NL" else 1_500 + 400 * o_index
                    rate = 0.05 * (1 + 0.25 * o_index) * (1 + 0.15 * ((t_index + q_index) % 3))
                    n = int(population * rate * scale / (1 + 0.5 * q_index))
                    counts[(team, origin)] = n
                    populations[(team, origin)] = population
            # One cell too small to publish: CW in T03.
            counts[("T03", "CW")] = 6
            for origin in ORIGINS:
                counts[("ALL", origin)] = sum(counts[(t, origin)] for t in TEAMS)
                populations[("ALL", origin)] = sum(populations[(t, origin)] for t in TEAMS)
            for (team, origin), n in counts.items():
                ref_n, ref_p = counts[(team, "NL")], populations[(team, "NL")]
                pop = populations[(team, origin)]
                rr = (n / pop) / (ref_n / ref_p)
                se = math.sqrt(1 / max(n, 1) + 1 / ref_n)
                z = math.log(rr) / se if origin != "NL" else 0.0
                rows.append(
                    dict(
                        period="2025-01..2025-12",
                        period_start=PERIOD[0],
                        period_end=PERIOD[1],
                        query_type=query_type,
                        benchmark=benchmark,
                        team_code=team,
                        origin=origin,
                        query_count=n,
                        person_count=int(n * 0.7),
                        population=pop,
                        queries_per_1000=1000 * n / pop,
                        rate_ratio=rr,
                        rate_ratio_ci_low=rr * math.exp(-1.96 * se),
                        rate_ratio_ci_high=rr * math.exp(1.96 * se),
                        std_ratio=rr * 0.85,
                        std_ratio_ci_low=rr * 0.85 * math.exp(-2.1 * se),
                        std_ratio_ci_high=rr * 0.85 * math.exp(2.1 * se),
                        p_value=float(2 * scipy.stats.norm.sf(abs(z))),
                        person_rate_ratio=rr * 0.9,
                        person_rate_ratio_ci_low=rr * 0.9 * math.exp(-2.3 * se),
                        person_rate_ratio_ci_high=rr * 0.9 * math.exp(2.3 * se),
                        shrunk_ratio=math.sqrt(rr) * 1.1,
                        shrunk_ci_low=math.sqrt(rr) * 1.1 * math.exp(-1.5 * se),
                        shrunk_ci_high=math.sqrt(rr) * 1.1 * math.exp(1.5 * se),
                    )
                )
    frame = pl.DataFrame(rows)
    frame = frame.with_columns(
        q_value=pl.Series(
            scipy.stats.false_discovery_control(frame.get_column("p_value").to_numpy())
        )
    )
    if not with_std:
        frame = frame.drop("std_ratio", "std_ratio_ci_low", "std_ratio_ci_high", "q_value")
    spec = TEAM_DISPROPORTIONALITY_SPEC.restricted_to(frame.columns)
    out = apply_disclosure_control(frame, spec, round_to=5)
    assert check_disclosure(out, spec) == []
    return out


def _plant_secret(frame: pl.DataFrame) -> pl.DataFrame:
    """Put distinctive numbers into every suppressed row, as if emptying had failed."""
    hidden = pl.col("is_suppressed")
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    return frame.with_columns(
        [
            pl.when(hidden)
            .then(pl.lit(SECRET_COUNT if frame.schema[c].is_integer() else SECRET_RATIO))
            .otherwise(pl.col(c))
            .cast(frame.schema[c])
            .alias(c)
            for c in numeric
        ]
    )


def _suitability_table() -> pl.DataFrame:
    rows = []
    for m in range(1, 13):
        month = f"2025-{m:02d}"
        for query_type in ("person", "plate"):
            for team in (*TEAMS, "ALL"):
                received = 4_000 + 37 * m if team != "ALL" else 6 * (4_000 + 37 * m)
                quarantined = 12 + m if team != "ALL" else 6 * (12 + m)
                rows.append(
                    dict(
                        month=month,
                        query_type=query_type,
                        team_code=team,
                        rows_received=received,
                        rows_quarantined=quarantined,
                        rows_valid=received - quarantined,
                        linkage_rate=0.91 - 0.004 * m - (0.1 if query_type == "plate" else 0),
                        verdict="suitable" if m != 7 else "limited",
                        verdict_reason=None if m != 7 else "hit field missing in 40% of rows",
                        is_suppressed=False,
                        some_future_column=1.0,
                    )
                )
    return pl.DataFrame(rows)


def _outcome_table() -> pl.DataFrame:
    rows = []
    for query_type in ("person", "plate"):
        for i, origin in enumerate(ORIGINS):
            n, hits = 3_000 - 300 * i, int((3_000 - 300 * i) * (0.12 - 0.01 * i))
            low, high = _wilson(hits, n)
            rows.append(
                dict(query_type=query_type, team_code="ALL", origin=origin, query_count=n,
                     hit_count=hits, hit_rate=hits / n, hit_rate_ci_low=low, hit_rate_ci_high=high,
                     hit_rate_diff=hits / n - 0.12, is_suppressed=False)
            )  # fmt: skip
    rows.append(
        dict(query_type="person", team_code="ALL", origin="AM", query_count=None, hit_count=None,
             hit_rate=None, hit_rate_ci_low=None, hit_rate_ci_high=None, hit_rate_diff=None,
             is_suppressed=True)
    )  # fmt: skip
    return pl.DataFrame(rows)


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
    return ci.low, ci.high


def _repeat_table() -> pl.DataFrame:
    return pl.DataFrame(
        [
            dict(query_type="person", team_code="ALL", origin=o, person_count=2_000 - 150 * i,
                 queries_per_person=1.3 + 0.1 * i, share_queried_2plus=0.18 + 0.02 * i,
                 share_queried_5plus=0.02 + 0.005 * i, gini=0.21 + 0.01 * i, is_suppressed=False)
            for i, o in enumerate(ORIGINS)
        ]
    )  # fmt: skip


def _vod_table() -> pl.DataFrame:
    return pl.DataFrame(
        [
            dict(design=design, origin=o, fixed_effects=fe, estimate=-0.05 * i + 0.02,
                 std_error=0.03, ci_low=-0.05 * i + 0.02 - 0.06, ci_high=-0.05 * i + 0.02 + 0.06,
                 n=12_000, is_suppressed=False)
            for design in ("intertwilight", "dst")
            for i, o in enumerate(("TR", "MA", "SR"))
            for fe in ("none", "team")
        ]
    )  # fmt: skip


def _count_model_table() -> pl.DataFrame:
    return pl.DataFrame(
        [
            dict(query_type="person", family=f, term="origin", level=o, ratio=1.2 + 0.2 * i,
                 ci_low=1.0 + 0.2 * i, ci_high=1.5 + 0.2 * i, dispersion=3.4, is_suppressed=False)
            for f in ("quasipoisson", "negbin")
            for i, o in enumerate(("TR", "MA", "SR"))
        ]
    )  # fmt: skip


def _context(**overrides: object) -> ReportContext:
    base = dict(
        title="Stop checks by origin: thematic report",
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        settings={
            "reference_origin": "NL",
            "confidence_level": 0.95,
            "disclosure_threshold": 10,
            "disclosure_round_to": 5,
            "benchmark": "team_residents",
        },  # fmt: skip
        code_version="0.1.0+g1234abc",
        input_fingerprint="sha256:" + "ab" * 32,
        is_synthetic=True,
    )
    return ReportContext(**(base | overrides))  # type: ignore[arg-type]


QUARTERS = ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")


def _with_quarters(team: pl.DataFrame) -> pl.DataFrame:
    """The team table with rows per quarter besides the range (ratios drifting per quarter)."""
    quarters = [
        team.with_columns(
            period=pl.lit(label), period_start=dt.date(2025, 3 * i + 1, 1),
            period_end=dt.date(2025, 3 * i + 3, 30 if i in (1, 2) else 31),
            **{c: pl.col(c) * (1 + 0.1 * i) for c in ("std_ratio", "std_ratio_ci_low",
                                                     "std_ratio_ci_high")})
        for i, label in enumerate(QUARTERS)
    ]  # fmt: skip
    return pl.concat([team, *quarters])


# A cell whose ratio halves from the first quarter to the last: it must be stated in words.
CHANGED = ("T02", "MA")


def _trends_table() -> pl.DataFrame:
    """A controlled out_team_trends: one clear change (CHANGED), one row suppressed (T03, CW)."""
    rows = []
    for query_type in ("person", "plate"):
        for team in ("ALL", *TEAMS):
            for origin in ORIGINS[1:]:
                for comparison, start in (("quarter_vs_first", "2025-Q1"),
                                          ("trend_per_year", "2025-Q1")):  # fmt: skip
                    changed = (team, origin) == CHANGED and query_type == "person"
                    ratio = 0.5 if changed else 1.0 + 0.01 * ORIGINS.index(origin)
                    hidden = (team, origin) == ("T03", "CW")
                    rows.append(dict(
                        query_type=query_type, benchmark="team_residents", team_code=team,
                        origin=origin, comparison=comparison, period_from=start,
                        period_to="2025-Q4", change_ratio=None if hidden else ratio,
                        change_ci_low=None if hidden else ratio * (0.7 if changed else 0.8),
                        change_ci_high=None if hidden else ratio * (1.4 if changed else 1.25),
                        p_value=None if hidden else (0.0001 if changed else 0.6),
                        q_value=None if hidden else (0.002 if changed else 0.8),
                        interval_method="person_clustered", is_suppressed=hidden,
                    ))  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"change_ratio": pl.Float64,
                                                "change_ci_low": pl.Float64,
                                                "change_ci_high": pl.Float64,
                                                "p_value": pl.Float64, "q_value": pl.Float64})


def _all_tables() -> dict[str, pl.DataFrame]:
    return {
        "out_team_disproportionality": _with_quarters(_team_table()),
        "out_team_trends": _trends_table(),
        "out_data_suitability": _suitability_table(),
        "out_outcome_test": _outcome_table(),
        "out_repeat_checks": _repeat_table(),
        "out_veil_of_darkness": _vod_table(),
        "out_count_models": _count_model_table(),
    }


def _theme() -> ThemeSection:
    return ThemeSection(
        name="traffic_checks",
        title="Verkeerscontroles",
        description="Queries registered with query reason 'verkeer'.",
        table=_team_table(scale=0.5),
    )


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    """The full report in every language, each chart checked against the Vega-Lite schema."""
    with patch.object(figures, "VALIDATE_SPECS", True):
        return {
            language: render_report(_all_tables(), context=_context(themes=(_theme(),)),
                                    language=language)
            for language in LANGUAGES
        }  # fmt: skip


def test_the_second_language_rendered_in_a_process_of_its_own_is_the_same_page(
    pages: dict[str, str],
) -> None:
    # `python -m assets.report.worker` renders the English page while this process renders the
    # Dutch one; its returncode shows that it answered.
    import assets.report

    with (patch.object(assets.report, "available_processors", lambda: 2),
          report_process(delay=0) as process):
        assert process.ready.wait(timeout=120)
        rendered = render_reports(_all_tables(), context=_context(themes=(_theme(),)),
                                  process=process)
        assert process.child.returncode == 0
    assert rendered == pages


def _small_pages(process=None) -> dict[str, str]:
    return render_reports({"out_data_suitability": _suitability_table()}, context=_context(),
                          process=process)


def test_a_report_process_that_died_leaves_its_languages_to_this_one() -> None:
    import assets.report

    with (patch.object(assets.report, "available_processors", lambda: 2),
          report_process(delay=0) as process):
        assert process.ready.wait(timeout=120)
        process.child.kill()
        process.child.wait()
        rendered = _small_pages(process)
    assert rendered == _small_pages()


def test_a_report_process_still_starting_is_not_waited_for() -> None:
    import assets.report

    with (patch.object(assets.report, "available_processors", lambda: 2),
          report_process(delay=0) as process):
        # NOTE: a process that never says it is ready: stopped before it can.
        process.child.send_signal(signal.SIGSTOP)
        rendered = _small_pages(process)
        assert process.child.returncode is None
        process.child.send_signal(signal.SIGCONT)
    assert rendered == _small_pages()


def test_a_report_process_ready_while_the_first_page_renders_gets_the_others() -> None:
    import assets.report

    render = assets.report.render_report
    with (patch.object(assets.report, "available_processors", lambda: 2),
          report_process(delay=0) as process):
        process.child.send_signal(signal.SIGSTOP)

        def first_page(*args, **kwargs):
            # NOTE: the worker resumes while this page renders, and this page is done only
            # once the worker has rendered and answered the others.
            process.child.send_signal(signal.SIGCONT)
            process.child.wait(timeout=120)
            return render(*args, **kwargs)

        with patch.object(assets.report, "render_report", first_page):
            rendered = _small_pages(process)
        assert process.child.returncode == 0
    assert rendered == _small_pages()


def test_a_first_page_that_fails_raises_and_leaves_no_hand_over_waiting() -> None:
    import threading

    import assets.report

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the report")

    raised: list[BaseException] = []

    def render() -> None:
        try:
            _small_pages(never)
        except RuntimeError as error:
            raised.append(error)

    with (patch.object(assets.report, "available_processors", lambda: 2),
          report_process(delay=3600) as never,
          patch.object(assets.report, "render_report", broken)):
        caller = threading.Thread(target=render, daemon=True)
        caller.start()
        caller.join(timeout=60)
        assert not caller.is_alive()
    assert [str(error) for error in raised] == ["a bug in the report"]


def test_the_report_process_starts_after_its_delay_and_not_after_the_block() -> None:
    import assets.report

    with patch.object(assets.report, "available_processors", lambda: 2):
        with report_process(delay=0.01) as started:
            assert started.ready.wait(timeout=120)
        assert started.child.returncode is not None
        with report_process(delay=3600) as never:
            rendered = _small_pages(never)
        assert never.child is None
        never.start()
        assert never.child is None
    assert rendered == _small_pages()


def test_the_schema_check_of_charts_refuses_a_bad_spec() -> None:
    spec = alt.Chart(pl.DataFrame({"x": [1]})).mark_point().encode(x="x:Q")
    spec.width = "wide"  # NOTE: set as an attribute, altair checks it only in to_dict
    chart = figures.Chart(spec)
    assert figures.render_svg(chart, get_language("en")).startswith("<svg")
    with patch.object(figures, "VALIDATE_SPECS", True), pytest.raises(Exception, match="wide"):
        figures.render_svg(chart, get_language("en"))


@pytest.fixture(scope="module")
def full_html(pages: dict[str, str]) -> str:
    """The Dutch report: the default."""
    return pages["nl"]


SECTION_TABLES = {
    "summary": "out_team_disproportionality",
    "disproportionality": "out_team_disproportionality",
    "funnel": "out_team_disproportionality",
    "data-suitability": "out_data_suitability",
    "outcome-test": "out_outcome_test",
    "repeat-checks": "out_repeat_checks",
    "veil-of-darkness": "out_veil_of_darkness",
    "count-models": "out_count_models",
    "change-over-time": "out_team_trends",
}


def _sections(page: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', page))


def _svg_texts(page: str) -> list[str]:
    """The text drawn in the page's figures."""
    svgs = " ".join(re.findall(r"<svg\b.*?</svg>", page, flags=re.S))
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svgs)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_page_is_self_contained(pages: dict[str, str], language: str) -> None:
    page = pages[language]
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "@import" not in lowered and "@font-face" not in lowered
    assert not re.search(r'(?:src|href)="(?!#)', page)
    assert not re.search(r"url\((?!#)", page)
    assert "default-src 'none'" in page
    # Figures are inline SVG that carry their text as <text> elements (no font files).
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert len(svgs) >= 8
    assert all("<text" in s for s in svgs)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids must be unique in the page"


def test_dutch_by_default_and_english_on_request(pages: dict[str, str]) -> None:
    dutch = parse_report(render_report(_all_tables(), context=_context()))
    assert dutch.lang == "nl" and parse_report(pages["nl"]).lang == "nl"
    assert parse_report(pages["en"]).lang == "en"
    assert LANGUAGES[0] == "nl" and report_file_name("nl") == "thematic_report.html"
    assert report_file_name("en") == "thematic_report.en.html"
    # Each page names the other one.
    assert "<code>thematic_report.en.html</code>" in pages["nl"]
    assert "<code>thematic_report.html</code>" in pages["en"]
    assert "Samenvatting" in dutch.text and "Methoden en kanttekeningen" in dutch.text
    with pytest.raises(ValueError, match="no language"):
        render_report(_all_tables(), context=_context(), language="de")


@pytest.mark.parametrize(("language", "synthetic"),
                         [("nl", "Synthetische gegevens"), ("en", "Synthetic data")])
def test_every_section_is_present_with_its_table(
    pages: dict[str, str], language: str, synthetic: str
) -> None:
    page = pages[language]
    assert _sections(page) == {*SECTION_TABLES, "themes", "methods"}
    for anchor in _sections(page):
        assert f'href="#{anchor}"' in page  # table of contents
    assert 'id="theme-traffic_checks"' in page
    assert "Verkeerscontroles" in page
    assert "0.1.0+g1234abc" in page and "ab" * 32 in page
    assert synthetic in page


@pytest.mark.parametrize("table", sorted(set(SECTION_TABLES.values())))
def test_a_section_is_absent_without_its_table(table: str) -> None:
    tables = {"out_repeat_checks": _repeat_table(), table: _all_tables()[table]}
    page = render_report(tables, context=_context(is_synthetic=False))
    expected = {s for s, t in SECTION_TABLES.items() if t in tables} | {"methods"}
    assert _sections(page) == expected
    assert "Synthetische gegevens" not in page


def test_only_methods_without_tables_and_unknown_tables_are_refused() -> None:
    page = render_report({}, context=_context())
    assert _sections(page) == {"methods"}
    assert "<svg" not in page
    with pytest.raises(ValueError, match="does not know"):
        render_report({"out_typo": _repeat_table()}, context=_context())
    # every table the report can show has a disclosure spec: none reaches it uncontrolled
    assert set(KNOWN_TABLES) <= set(SPECS)


@pytest.mark.parametrize("language", LANGUAGES)
def test_suppressed_rows_never_appear_as_numbers(language: str) -> None:
    team = _plant_secret(_team_table())
    outcome = _plant_secret(_outcome_table())
    assert team.filter("is_suppressed").height >= 2
    page = render_report(
        {"out_team_disproportionality": team, "out_outcome_test": outcome},
        context=_context(themes=(("leak_test", "planted values", team),)),
        language=language,
    )
    # Figures: no planted value in their text or labels (coordinates may contain any digits).
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert svgs
    svg_words = " ".join(_svg_texts(page) + re.findall(r'aria-label="([^"]*)"', " ".join(svgs)))
    prose = re.sub(r"<svg\b.*?</svg>", "", page, flags=re.S)
    for text in ("987,653", "987.653", "987653", "7.78", "7,78", "7.777", "7,777", "777.7%",
                 "777,7%", "777700"):  # fmt: skip
        assert text not in prose
        assert text not in svg_words
    # The suppressed cell is still listed, with its key and the suppression mark only.
    report = parse_report(page)
    detail = [t for t in report.tables if t.source == "out_team_disproportionality"]
    assert detail
    for table in detail:
        row = table.keyed()[(("team_code", "T03"), ("origin", "CW"))]
        assert row.is_suppressed
        assert {c.text for c in row.cells if not c.is_label} == {"—"}


def test_a_suppressed_row_hides_its_text_columns_too() -> None:
    suitability = _suitability_table().with_columns(
        is_suppressed=pl.col("month") == "2025-07",
        verdict=pl.when(pl.col("month") == "2025-07").then(None).otherwise(pl.col("verdict")),
    )
    report = parse_report(render_report({"out_data_suitability": suitability}, context=_context()))
    (table,) = [t for t in report.tables if t.source == "out_data_suitability"]
    hidden = [row for row in table.rows if row.is_suppressed]
    assert len(hidden) == 2  # July, person and plate
    assert all({c.text for c in row.cells if not c.is_label} == {"—"} for row in hidden)
    assert check_published_cells(report, {"out_data_suitability": suitability}) > 100


def test_persons_ratio_is_shown_beside_the_query_ratios(pages: dict[str, str]) -> None:
    for language in LANGUAGES:
        words = get_language(language)
        report = parse_report(pages[language])
        detail = [t for t in report.tables if t.source == "out_team_disproportionality"]
        assert detail and all(["person_rate_ratio"] in t.columns for t in detail)
        assert all(["person_rate_ratio_ci_low", "person_rate_ratio_ci_high"] in t.columns
                   for t in detail)  # fmt: skip
        # The forest plots draw it as a fourth estimate, named in their legend.
        assert words.term("estimators", "person_rate_ratio") in _svg_texts(pages[language])


def test_the_whole_range_is_shown_when_a_year_has_the_same_dates() -> None:
    # out_team_disproportionality has rows per quarter, calendar year and the whole range; a
    # range of one calendar year has the dates of that year's rows.
    year = _team_table(scale=0.5).with_columns(period=pl.lit("2025"))
    team = pl.concat([_team_table(), year])
    report = parse_report(render_report({"out_team_disproportionality": team}, context=_context()))
    detail = [t for t in report.tables if t.source == "out_team_disproportionality"]
    assert len(detail) == 2
    assert all(t.where["period"] == "2025-01..2025-12" for t in detail)
    assert check_published_cells(report, {"out_team_disproportionality": team}) > 100


@pytest.mark.parametrize(("language", "words"), [
    ("nl", ("van 2025-Q1 tot 2025-Q4 daalde de gestandaardiseerde ratio", "0,50", "0,35–0,70")),
    ("en", ("from 2025-Q1 to 2025-Q4 the standardised ratio fell", "0.50", "0.35–0.70")),
])
def test_change_over_time_states_clear_changes_and_draws_the_quarters(
    pages: dict[str, str], language: str, words: tuple[str, ...]
) -> None:
    page = pages[language]
    section = page.split('<section id="change-over-time">')[1].split("</section>")[0]
    items = re.findall(r"<li>(.*?)</li>", section, flags=re.S)
    # one clear change (a halving, both comparisons), only for person queries, team T02
    assert len(items) == 2 and all("T02" in i for i in items)
    assert all(w in html.unescape(re.sub("<[^>]+>", "", items[0])) for w in words)
    figure = re.findall(r"<svg\b.*?</svg>", section, flags=re.S)
    assert len(figure) == 2  # person and plate queries
    drawn = " ".join(html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", figure[0]))
    assert all(q in drawn for q in QUARTERS) and "T06" in drawn
    report = parse_report(page)
    trends = [t for t in report.tables if t.source == "out_team_trends"]
    assert len(trends) == 2
    assert check_published_cells(report, _all_tables()) > 1_000


def test_change_over_time_without_two_quarters_says_so() -> None:
    empty = _trends_table().clear()
    page = render_report({"out_team_trends": empty, "out_team_disproportionality": _team_table()},
                         context=_context(), language="en")
    assert "do not cover two complete calendar quarters" in page
    assert 'data-source="out_team_trends"' not in page


def test_tables_show_the_published_values(pages: dict[str, str]) -> None:
    tables = _all_tables()
    for language in LANGUAGES:
        report = parse_report(pages[language])
        sources = {t.source for t in report.tables if t.source}
        assert sources == set(tables)
        assert check_published_cells(report, tables) > 1_000


def test_both_languages_show_the_same_numbers(pages: dict[str, str]) -> None:
    dutch, english = parse_report(pages["nl"]), parse_report(pages["en"])
    assert len(dutch.tables) > 10 and len(dutch.items) > 10
    assert_same_numbers(dutch, english)


def test_numbers_and_labels_follow_the_language() -> None:
    nl, en = get_language("nl"), get_language("en")
    assert (nl.count(1234567), en.count(1234567)) == ("1.234.567", "1,234,567")
    assert (nl.ratio(1.2345), en.ratio(1.2345)) == ("1,23", "1.23")
    assert (nl.ratio(1234.5), en.ratio(1234.5)) == ("1234,50", "1234.50")
    assert (nl.pct(0.1234), en.pct(0.1234)) == ("12,3%", "12.3%")
    assert (nl.p(0.0004), nl.p(0.0123), en.p(0.0123)) == ("<0,001", "0,012", "0.012")
    assert (nl.ci(0.0, math.inf), en.ci(1.5, 2.25)) == ("0,00–∞", "1.50–2.25")
    assert nl.ratio_ci(1.5, 1.25, 1.75) == "1,50 (1,25–1,75)"
    assert (nl.pct_ci(0.101, 0.123), nl.points(-0.012)) == ("10,1–12,3%", "-1,2 procentpunt")
    assert (nl.range3(-0.1, 0.02), en.range3(-0.1, 0.02)) == ("-0,100 tot 0,020", "-0.100 to 0.020")
    assert nl.count(None) == nl.ratio(float("nan")) == nl.ci(1.0, None) == "—"
    assert (nl.origin("MA"), en.origin("MA")) == ("Marokko (MA)", "Morocco (MA)")
    assert (nl.origin("Buiten Europa"), en.origin("Buiten Europa")) == ("Buiten Europa", "Outside Europe")
    assert (nl.team("ALL"), en.team("ALL"), nl.team("AMS-C1")) == ("Alle teams", "All teams", "AMS-C1")
    assert nl.join(["a", "b", "c"]) == "a, b en c" and en.join(["a"]) == "a"


def _shape(node: object) -> object:
    """The keys of a words tree (list lengths included), without the texts."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return None


def _texts(node: object, path: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        return {k: v for key, child in node.items() for k, v in _texts(child, f"{path}.{key}").items()}
    if isinstance(node, list):
        return {k: v for i, child in enumerate(node) for k, v in _texts(child, f"{path}[{i}]").items()}
    return {path: str(node)}


def test_every_language_file_has_every_word_with_the_same_placeholders() -> None:
    english = read_words_file("en")
    for language in LANGUAGES:
        words = read_words_file(language)
        # NOTE: the English fallback exists for a language being added; a published one is whole.
        assert _shape(words) == _shape(english), language
        for path, text in _texts(words).items():
            english_text = _texts(english)[path]
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", english_text)), (
                language, path)  # fmt: skip
    # Dutch origin labels are the CBS labels of the data contract.
    dutch = read_words_file("nl")["terms"]["origins"]
    assert {code: dutch[code] for code in CBS_ORIGINS} == {c: v[0] for c, v in CBS_ORIGINS.items()}
    assert all(dutch[group] == group for group in ORIGIN_GROUPS)


def test_templates_and_words_are_package_data() -> None:
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "assets.report" in config["packages"]
    package = root / "assets" / "report"
    declared = {p for pattern in config["package-data"]["assets.report"] for p in package.glob(pattern)}
    files = {p for folder in ("templates", "words") for p in (package / folder).rglob("*") if p.is_file()}
    assert files and files == declared


@pytest.mark.parametrize("language", LANGUAGES)
def test_render_is_byte_identical_and_stable_across_processes(
    pages: dict[str, str], language: str
) -> None:
    again = render_report(_all_tables(), context=_context(themes=(_theme(),)), language=language)
    assert again == pages[language]
    assert _hash_in_new_process(language) == hashlib.sha256(pages[language].encode()).hexdigest()


def _hash_in_new_process(language: str, font: str | None = None) -> str:
    """The report's SHA-256 from a fresh process; with `font`, figures drawn in that font (then
    named "sans-serif" again in the page, so only its widths can make a difference)."""
    script = (
        "import sys, hashlib; sys.path.insert(0, '.');"
        "import tests.unit.test_report as t;"
        "from assets.report import render_report;"
        f"font = {font!r};"
        "font and t.use_font(font);"
        f"page = render_report(t._all_tables(), context=t._context(themes=(t._theme(),)), language={language!r});"
        "page = page.replace(f'font-family=\"{font}\"', 'font-family=\"sans-serif\"') if font else page;"
        "print(hashlib.sha256(page.encode()).hexdigest())"
    )
    return _run_python(script)


def _run_python(script: str) -> str:
    """What `script` prints, run by a new Python process in the repository."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    return result.stdout.strip()


OTHER_FONT = "HK Grotesk"
"""A font of other widths than vl-convert's Liberation Sans, always at hand: GX ships it."""


def use_font(font: str) -> None:
    """Draw this process's figures in `font` (a font GX ships), as on a machine with other fonts."""
    import great_expectations

    fonts = Path(great_expectations.__file__).parent / "render/view/static/fonts/HKGrotesk"
    vlc.register_font_directory(str(fonts))
    figures.CHART_CONFIG["font"] = font


def test_figures_do_not_depend_on_fonts(pages: dict[str, str]) -> None:
    # The other font has other widths: a chart laid out by measured text changes with it.
    script = (
        "import sys; sys.path.insert(0, '.');"
        "import altair as alt, vl_convert as vlc, tests.unit.test_report as t;"
        "chart = alt.Chart(alt.Data(values=[{'x': 1, 'y': 'Overig Amerika en Oceanië (AM)'}]))"
        ".mark_point().encode(x='x:Q', y='y:N').to_dict();"
        "plain = vlc.vegalite_to_svg(chart);"
        "t.use_font(t.OTHER_FONT);"
        "other = vlc.vegalite_to_svg(chart, config={'font': t.OTHER_FONT});"
        "print(plain == other.replace(t.OTHER_FONT, 'sans-serif'))"
    )
    assert _run_python(script) == "False"
    # The report's figures do not change.
    expected = hashlib.sha256(pages["nl"].encode()).hexdigest()
    assert _hash_in_new_process("nl", font=OTHER_FONT) == expected


def test_labels_are_complete() -> None:
    origins = ("EU", "TR", "MA", "SR", "CW", "AM")
    vod = pl.DataFrame(
        [
            dict(design=design, origin=o, fixed_effects=fe, estimate=-0.05 * i + 0.02,
                 std_error=0.03, ci_low=-0.05 * i - 0.04, ci_high=-0.05 * i + 0.08, n=12_000,
                 is_suppressed=False)
            for design, effects in (("intertwilight", ("none", "team")),
                                    ("dst", ("clock_change", "clock_change+team")))
            for i, o in enumerate(origins)
            for fe in effects
        ]
    )  # fmt: skip
    for language in LANGUAGES:
        words = get_language(language)
        page = render_report({**_all_tables(), "out_veil_of_darkness": vod}, context=_context(),
                             language=language)  # fmt: skip
        texts = _svg_texts(page)
        assert not [t for t in texts if "…" in t], "a label was truncated"
        for origin in origins:
            assert words.origin(origin) in texts
        for term in ("intertwilight", "dst"):
            assert words.term("designs", term) in texts
        for term in ("none", "team", "clock_change", "clock_change+team"):
            assert words.term("fixed_effects", term) in texts


def test_svg_ids_are_renumbered_per_figure() -> None:
    chart = (
        alt.Chart(alt.Data(values=[{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]))
        .mark_point(clip=True)
        .encode(x="x:Q", y="y:N")
        .facet(row="y:N")
    )
    first, second = (vlc.vegalite_to_svg(chart.to_dict()) for _ in range(2))
    assert first != second  # vl-convert's clip ids count up across calls in one process
    assert normalise_svg(first, "fig1") == normalise_svg(second, "fig1")
    normalised = normalise_svg(first, "fig7")
    assert 'id="fig7-1"' in normalised and "url(#fig7-1)" in normalised
    assert "xmlns" not in normalised
    with pytest.raises(ValueError, match="external"):
        normalise_svg(first.replace("</svg>", '<image href="x.png"/></svg>'), "fig1")


def _summary(page: str) -> str:
    return re.search(r'<section id="summary">(.*?)</section>', page, flags=re.S).group(1)


def test_summary_counts_teams_and_phrases_carefully(pages: dict[str, str]) -> None:
    english, dutch = _summary(pages["en"]), _summary(pages["nl"])
    assert (
        "than residents of Dutch origin of the same age and sex living in the same area" in english
    )
    assert "because of" not in pages["en"].lower() and "vanwege" not in pages["nl"].lower()
    # Expected from the fixture itself: teams (not ALL) with std CI above 1 and q < 0.05.
    team = (
        _team_table()
        .filter(benchmark="team_residents", query_type="person", origin="MA", is_suppressed=False)
        .filter(pl.col("team_code") != "ALL")
    )
    above = team.filter((pl.col("std_ratio_ci_low") > 1) & (pl.col("q_value") < 0.05)).height
    assert above > 0
    assert (
        f"People of Moroccan origin were queried more often than residents of Dutch origin of the "
        f"same age and sex living in the same area in <strong>{above}</strong> of {team.height} teams"
    ) in english
    assert (
        f"Mensen met een Marokkaanse herkomst werden in <strong>{above}</strong> van de "
        f"{team.height} teams met een gepubliceerde schatting vaker bevraagd dan inwoners met een "
        f"Nederlandse herkomst van dezelfde leeftijd en hetzelfde geslacht in hetzelfde gebied."
    ) in dutch


def test_early_tables_without_standardised_ratios_degrade_gracefully() -> None:
    tables = {"out_team_disproportionality": _team_table(with_std=False)}
    english = render_report(tables, context=_context(), language="en")
    summary = _summary(english)
    assert "crude rate ratio" in summary and "same age and sex" not in summary
    assert "no q-values yet" in summary
    assert "Standardised ratio" not in english
    dutch = render_report(tables, context=_context())
    assert "ruwe ratio" in _summary(dutch) and "nog geen q-waarden" in _summary(dutch)
    assert "Gestandaardiseerde ratio" not in dutch


# --------------------------------------------------------------------------------------------
# A real browser: the page renders offline with its figures.

CHROMIUM = Path("/usr/bin/chromium")


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _png_rows(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the filtered scanlines of a PNG (read with zlib and struct only)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    assert header is not None
    width, height, bit_depth, colour_type = header[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    stride = 1 + width * channels * bit_depth // 8
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return width, height, [raw[i : i + stride] for i in range(0, len(raw), stride)]


def _distinct_rows(path: Path) -> int:
    # NOTE: a page of one colour gives identical filtered scanlines whatever filter the encoder
    # picks (each row repeats the previous one); text and figures give thousands of distinct ones.
    _, _, rows = _png_rows(path)
    return len(set(rows))




SKIP_BROWSER = "STOPCHECK_SKIP_BROWSER_TEST"
"""Set to 1 to skip the browser test on a machine without chromium (never under CI)."""


def require_chromium() -> None:
    """Return when chromium is there; else skip only if explicitly allowed, and never in CI."""
    if CHROMIUM.exists():
        return
    reason = f"Debian's chromium is not installed at {CHROMIUM}"
    # NOTE: a missing browser must not let the suite go green unnoticed: CI installs it
    # (.ci/chromium.sh); a developer without it says so with the variable.
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: run .ci/chromium.sh before the tests)")
    if os.environ.get(SKIP_BROWSER) == "1":
        pytest.skip(f"{reason} ({SKIP_BROWSER}=1)")
    pytest.fail(f"{reason}: run .ci/chromium.sh, or set {SKIP_BROWSER}=1 to skip this test")


def test_a_missing_browser_fails_unless_skipping_is_allowed(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    for ci, allowed, outcome in ((None, None, pytest.fail.Exception),
                                 ("true", "1", pytest.fail.Exception),
                                 (None, "1", pytest.skip.Exception)):  # fmt: skip
        for name, value in (("CI", ci), (SKIP_BROWSER, allowed)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        with pytest.raises(outcome):
            require_chromium()


@pytest.mark.parametrize("language", LANGUAGES)
def test_report_renders_in_headless_chromium(
    pages: dict[str, str], language: str, tmp_path: Path
) -> None:
    require_chromium()
    page = tmp_path / report_file_name(language)
    page.write_text(pages[language], encoding="utf-8")
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")

    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path / "profile-dom").stdout
    assert f'<html lang="{language}">' in dom
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
    assert len(svgs) >= 8
    for svg in svgs:
        marks = len(re.findall(r"<(?:path|rect|line|circle)\b", svg))
        assert marks > 20, "a figure rendered with almost no marks"
        assert len(re.findall(r"<text\b", svg)) > 3, "a figure rendered without its text"
    assert get_language(language).w("disproportionality.title") in dom

    shot = tmp_path / "report.png"
    _chromium(
        [f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()],
        tmp_path / "profile-shot",
    )
    width, height, _ = _png_rows(shot)
    assert (width, height) == (1280, 4000)
    blank_shot = tmp_path / "blank.png"
    _chromium(
        [f"--screenshot={blank_shot}", "--window-size=1280,4000", blank.as_uri()],
        tmp_path / "profile-blank",
    )
    assert _distinct_rows(blank_shot) <= 3  # the measure can fail: a blank page scores ~1
    assert _distinct_rows(shot) > 1_000


def test_open_interval_bounds_are_drawn_to_the_plot_edge() -> None:
    team = _team_table().with_columns(
        rate_ratio_ci_low=pl.when(pl.col("team_code") == "T01")
        .then(0.0)
        .otherwise(pl.col("rate_ratio_ci_low")),
        rate_ratio_ci_high=pl.when(pl.col("team_code") == "T02")
        .then(float("inf"))
        .otherwise(pl.col("rate_ratio_ci_high")),
    )
    page = render_report({"out_team_disproportionality": team}, context=_context(), language="en")
    assert "Infinity" not in page and "NaN" not in page
    assert "0.00–" in page and "–∞" in page  # the detail table states the open bounds
