"""The end-of-run summary of `stopcheck run`: what came in, what was kept, what came out.

Read from the warehouse after a run: months, rows received, quarantined by reason and linked
(out_data_suitability, whole-area rows), the suitability verdicts per month, and the headline
result per query type from the *published* (disclosure-controlled) out_team_disproportionality,
so that nothing is printed that publication would hide. Aggregates only. Pure and Dagster-free.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assets.quarantine import QUARANTINE_REASONS
from assets.schema import ALL_TEAMS, QUERY_TYPES

SUITABILITY_COLUMNS = {
    "month": pl.String, "query_type": pl.String, "team_code": pl.String, "verdict": pl.String,
    "rows_received": pl.Int64, "rows_linked": pl.Int64,
    **{f"rows_quarantined_{reason}": pl.Int64 for reason in QUARANTINE_REASONS},
}
"""The out_data_suitability columns the summary reads."""
HEADLINE_BENCHMARK = "team_residents"
"""The default benchmark (DESIGN.md §5) of the headline."""


@dataclass(frozen=True)
class Headline:
    """Whole area, whole period, default benchmark: the age-sex standardised ratios of one query
    type against the reference origin, as published."""

    query_type: str
    reference: str
    level: float
    period: str
    ratios: tuple[tuple[str, float, float | None, float | None, float | None], ...]
    """(origin, std_ratio, ci_low, ci_high, q_value), highest ratio first; suppressed left out."""
    suppressed_count: int = 0


@dataclass(frozen=True)
class RunSummary:
    """What one run read and wrote (see the module docstring)."""

    months: tuple[str, ...]
    rows_received: dict[str, int]
    rows_quarantined: dict[str, dict[str, int]]
    rows_linked: dict[str, int]
    verdicts: dict[str, int]
    headlines: tuple[Headline, ...] = ()
    reports: tuple[Path, ...] = field(default=())


def summarise_run(warehouse: Path) -> RunSummary:
    """Summarise the outputs in `warehouse` (after a successful run)."""
    warehouse = Path(warehouse)
    # NOTE: absent after `stopcheck run --theme` on a fresh warehouse (no statistics job yet).
    path = warehouse / "out_data_suitability.parquet"
    suitability = (pl.read_parquet(path) if path.exists()
                   else pl.DataFrame(schema=SUITABILITY_COLUMNS)).filter(
        pl.col("team_code") == ALL_TEAMS)
    received, quarantined, linked = {}, {}, {}
    for query_type in QUERY_TYPES:
        part = suitability.filter(pl.col("query_type") == query_type)
        received[query_type] = int(part["rows_received"].sum())
        linked[query_type] = int(part["rows_linked"].sum())
        quarantined[query_type] = {
            reason: int(part[f"rows_quarantined_{reason}"].sum())
            for reason in QUARANTINE_REASONS if part[f"rows_quarantined_{reason}"].sum()}
    verdicts = Counter(suitability["verdict"].to_list())
    publication = warehouse / "publication"
    return RunSummary(
        months=tuple(sorted(suitability["month"].unique().to_list())),
        rows_received=received, rows_quarantined=quarantined, rows_linked=linked,
        verdicts=dict(sorted(verdicts.items())),
        headlines=_headlines(publication),
        reports=tuple(sorted(publication.glob("thematic_report*.html"))),
    )


def _headlines(publication: Path) -> tuple[Headline, ...]:
    table_path = publication / "out_team_disproportionality.csv"
    if not table_path.exists():
        return ()
    companion = json.loads(table_path.with_suffix(".json").read_text(encoding="utf-8"))
    reference = companion["settings"]["reference_origin"]
    level = companion["settings"]["confidence_level"]
    table = pl.read_csv(table_path, infer_schema_length=None)
    # NOTE: the whole range is the row labelled first..last; a range that is one calendar year
    # has the same dates under the year's label too.
    whole_range = (pl.col("period").str.contains("..", literal=True) if "period" in table.columns
                   else pl.lit(True))
    whole = table.filter(
        (pl.col("team_code") == ALL_TEAMS) & (pl.col("benchmark") == HEADLINE_BENCHMARK)
        & (pl.col("period_start") == pl.col("period_start").min())
        & (pl.col("period_end") == pl.col("period_end").max())
        & whole_range & (pl.col("origin") != reference))
    headlines = []
    for query_type in QUERY_TYPES:
        part = whole.filter(pl.col("query_type") == query_type)
        if part.is_empty():
            continue
        shown = part.filter(~pl.col("is_suppressed") & pl.col("std_ratio").is_not_null())
        shown = shown.sort("std_ratio", "origin", descending=[True, False])
        headlines.append(Headline(
            query_type=query_type, reference=reference, level=level,
            period=f"{part['period_start'][0]}..{part['period_end'][0]}",
            ratios=tuple(shown.select("origin", "std_ratio", "std_ratio_ci_low",
                                      "std_ratio_ci_high", "q_value").iter_rows()),
            suppressed_count=part.height - shown.height,
        ))
    return tuple(headlines)


def _ratio(origin: str, ratio: float, low: float | None, high: float | None) -> str:
    interval = f" ({low:.2f}-{high:.2f})" if low is not None and high is not None else ""
    return f"{origin} {ratio:.2f}{interval}"


def format_summary(summary: RunSummary, *, wall_seconds: float, top: int = 3) -> str:
    """The summary as plain text lines."""
    months = summary.months
    lines = ["summary",
             f"  months       {len(months)}" + (f" ({months[0]}..{months[-1]})" if months else "")]
    for query_type in QUERY_TYPES if months else ():
        received = summary.rows_received.get(query_type, 0)
        reasons = summary.rows_quarantined.get(query_type, {})
        quarantined = sum(reasons.values())
        linked = summary.rows_linked.get(query_type, 0)
        share = f" ({linked / received:.1%})" if received else ""
        detail = (" [" + ", ".join(f"{r} {n:,}" for r, n in reasons.items()) + "]") if reasons else ""
        lines.append(f"  {query_type:<6} rows  received {received:,}; quarantined {quarantined:,}"
                     f"{detail}; linked {linked:,}{share}")
    verdicts = ", ".join(f"{verdict} {n}" for verdict, n in summary.verdicts.items())
    lines.append(f"  suitability  {verdicts} (month x query type)" if months else
                 "  rows         out_data_suitability not computed yet (stopcheck run computes it)")
    for headline in summary.headlines:
        above = sum(1 for *_, low, _high, q in headline.ratios
                    if low is not None and low > 1 and q is not None and q < 0.05)
        shown = ", ".join(_ratio(*row[:4]) for row in headline.ratios[:top])
        hidden = f"; {headline.suppressed_count} suppressed" if headline.suppressed_count else ""
        lines += [f"  {headline.query_type:<6} whole area, {headline.period}, age-sex standardised "
                  f"ratio vs {headline.reference} ({headline.level:.0%} CI):",
                  f"         highest {shown}",
                  f"         {above} of {len(headline.ratios)} origins above 1 with q < 0.05"
                  f"{hidden}"]
    lines.append(f"  wall time    {wall_seconds:.1f} s")
    for report in summary.reports:
        language = "English" if report.name.endswith(".en.html") else "Dutch"
        lines.append(f"  report       {report} ({language})")
    return "\n".join(lines)
