"""The thematic report (assets/report.py): self-contained, deterministic, honest about suppression."""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

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
    ReportContext,
    ThemeSection,
    normalise_svg,
    render_report,
)

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


def _all_tables() -> dict[str, pl.DataFrame]:
    return {
        "out_team_disproportionality": _team_table(),
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
def full_html() -> str:
    return render_report(_all_tables(), context=_context(themes=(_theme(),)))


SECTION_TABLES = {
    "summary": "out_team_disproportionality",
    "disproportionality": "out_team_disproportionality",
    "funnel": "out_team_disproportionality",
    "data-suitability": "out_data_suitability",
    "outcome-test": "out_outcome_test",
    "repeat-checks": "out_repeat_checks",
    "veil-of-darkness": "out_veil_of_darkness",
    "count-models": "out_count_models",
}


def _sections(page: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', page))


def test_page_is_self_contained(full_html: str) -> None:
    lowered = full_html.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "@import" not in lowered and "@font-face" not in lowered
    assert not re.search(r'(?:src|href)="(?!#)', full_html)
    assert not re.search(r"url\((?!#)", full_html)
    assert "default-src 'none'" in full_html
    # Figures are inline SVG that carry their text as <text> elements (no font files).
    svgs = re.findall(r"<svg\b.*?</svg>", full_html, flags=re.S)
    assert len(svgs) >= 8
    assert all("<text" in s for s in svgs)
    ids = re.findall(r'\sid="([^"]+)"', full_html)
    assert len(ids) == len(set(ids)), "element ids must be unique in the page"


def test_every_section_is_present_with_its_table(full_html: str) -> None:
    assert _sections(full_html) == {*SECTION_TABLES, "themes", "methods"}
    for anchor in _sections(full_html):
        assert f'href="#{anchor}"' in full_html  # table of contents
    assert 'id="theme-traffic_checks"' in full_html
    assert "Verkeerscontroles" in full_html
    assert "0.1.0+g1234abc" in full_html and "ab" * 32 in full_html
    assert "Synthetic data" in full_html


@pytest.mark.parametrize("table", sorted(set(SECTION_TABLES.values())))
def test_a_section_is_absent_without_its_table(table: str) -> None:
    tables = {"out_repeat_checks": _repeat_table(), table: _all_tables()[table]}
    page = render_report(tables, context=_context(is_synthetic=False))
    expected = {s for s, t in SECTION_TABLES.items() if t in tables} | {"methods"}
    assert _sections(page) == expected
    assert "Synthetic data" not in page


def test_only_methods_without_tables_and_unknown_tables_are_refused() -> None:
    page = render_report({}, context=_context())
    assert _sections(page) == {"methods"}
    assert "<svg" not in page
    with pytest.raises(ValueError, match="does not know"):
        render_report({"out_typo": _repeat_table()}, context=_context())
    # every table the report can show has a disclosure spec: none reaches it uncontrolled
    assert set(KNOWN_TABLES) <= set(SPECS)


def test_suppressed_rows_never_appear_as_numbers() -> None:
    team = _plant_secret(_team_table())
    outcome = _plant_secret(_outcome_table())
    assert team.filter("is_suppressed").height >= 2
    page = render_report(
        {"out_team_disproportionality": team, "out_outcome_test": outcome},
        context=_context(themes=(("leak_test", "planted values", team),)),
    )
    # Figures: no planted value in their text or labels (coordinates may contain any digits).
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert svgs
    svg_words = " ".join(
        re.findall(r"<text[^>]*>([^<]*)</text>", " ".join(svgs))
        + re.findall(r'aria-label="([^"]*)"', " ".join(svgs))
    )
    prose = re.sub(r"<svg\b.*?</svg>", "", page, flags=re.S)
    for text in ("987,653", "987653", "7.78", "7.777", "777.7%", "777700"):
        assert text not in prose
        assert text not in svg_words
    # The suppressed cell is still listed, with its key and the suppression mark.
    row = re.search(
        r"<tr class=suppressed><td[^>]*>T03</td><td[^>]*>Nederlandse Cariben \(CW\)</td>(.*?)</tr>",
        page,
    )
    assert row is not None
    assert set(re.findall(r">([^<]*)</td>", row.group(1))) == {"—"}


def test_render_is_byte_identical_and_stable_across_processes(full_html: str) -> None:
    again = render_report(_all_tables(), context=_context(themes=(_theme(),)))
    assert again == full_html
    script = (
        "import sys, hashlib; sys.path.insert(0, '.');"
        "import tests.unit.test_report as t;"
        "from assets.report import render_report;"
        "page = render_report(t._all_tables(), context=t._context(themes=(t._theme(),)));"
        "print(hashlib.sha256(page.encode()).hexdigest())"
    )
    import hashlib

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert result.stdout.strip() == hashlib.sha256(full_html.encode()).hexdigest()


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


def test_summary_counts_teams_and_phrases_carefully(full_html: str) -> None:
    summary = re.search(r'<section id="summary">(.*?)</section>', full_html, flags=re.S).group(1)
    assert (
        "than residents of Dutch origin of the same age and sex living in the same area" in summary
    )
    assert "because of" not in full_html.lower()
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
    ) in summary


def test_early_tables_without_standardised_ratios_degrade_gracefully() -> None:
    page = render_report(
        {"out_team_disproportionality": _team_table(with_std=False)}, context=_context()
    )
    summary = re.search(r'<section id="summary">(.*?)</section>', page, flags=re.S).group(1)
    assert "crude rate ratio" in summary and "same age and sex" not in summary
    assert "no q-values yet" in summary
    assert "Standardised ratio" not in page


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


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (CI installs it)",
)
def test_report_renders_in_headless_chromium(full_html: str, tmp_path: Path) -> None:
    page = tmp_path / "thematic_report.html"
    page.write_text(full_html, encoding="utf-8")
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")

    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path / "profile-dom").stdout
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
    assert len(svgs) >= 8
    for svg in svgs:
        marks = len(re.findall(r"<(?:path|rect|line|circle)\b", svg))
        assert marks > 20, "a figure rendered with almost no marks"
        assert len(re.findall(r"<text\b", svg)) > 3, "a figure rendered without its text"
    assert "Disproportionality per team" in dom

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
    page = render_report({"out_team_disproportionality": team}, context=_context())
    assert "Infinity" not in page and "NaN" not in page
    assert "0.00–" in page and "–∞" in page  # the detail table states the open bounds
