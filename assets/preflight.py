"""Pre-flight check of a landing zone and the configuration (`stopcheck check`), in seconds.

Judges what a run would trip over, without materialising anything: the layout and file names,
the months present and missing, whether each file is readable, its columns and their types, raw
identifiers (the run's own guard, assets/frames.py `guard_identifiers`), the reference tables
(read and checked as the run does, and the teams in the queries and in the themes against
team_areas), the CBS population years against the query months, the rows per month and the
themes file. Each finding has a severity:

``blocking``
    the run would fail or refuse data (`stopcheck run` stops before it starts);
``warning``
    the run goes through, but the result may not be what was meant (rows to be quarantined, a
    month missing from a series, a much smaller month);
``info``
    worth knowing (how much of each file the identifier guard saw, which population year stands
    in for which query year).

Fast on a national landing zone because query files are judged from their Parquet footer
(schema, row count) and one column (team_code); the identifier guard and the full read of the
run see every row of a file of at most `scan_rows` rows, and a spread of `scan_rows` rows of a
larger one (every row with ``scan_rows=None``). The reference tables are read whole.

Findings name the file and the column and count rows, never a value (team codes of the themes
and of team_areas are configuration and are named). Pure and Dagster-free.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import polars as pl

from assets import frames, linkage
from assets.frames import StopcheckError
from assets.identifiers import RawIdentifierError
from assets.schema import ID_COLUMNS, PSEUDONYM_COLUMNS, QUERY_SCHEMAS, QUERY_TYPES
from assets.themes import ThemeConfigError, load_themes, validate_against_teams

Severity = Literal["blocking", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("blocking", "warning", "info")

SCAN_ROWS = 100_000
"""Rows per query file that the identifier guard sees by default (every row of smaller files)."""
SCAN_PIECES = 4
"""A larger file is scanned in this many runs of rows spread over it."""
SMALL_MONTH_SHARE = 0.5
"""A month with fewer rows than this share of the median month is flagged as possibly partial."""


@dataclass(frozen=True)
class Finding:
    """One thing the check found: where (file relative to the landing zone, column) and what."""

    severity: Severity
    file: str
    column: str
    message: str


@dataclass(frozen=True)
class MonthRows:
    """Rows of one export month per query type (None: no readable file) and the file formats."""

    month: str
    rows: dict[str, int | None]
    formats: tuple[str, ...]


@dataclass
class PreflightReport:
    """What `stopcheck check` found, in the order it looked."""

    landing: Path
    themes_file: Path
    findings: list[Finding] = field(default_factory=list)
    months: list[MonthRows] = field(default_factory=list)
    scanned_rows: int = 0
    query_rows: int = 0

    @property
    def is_blocked(self) -> bool:
        """True when a run would fail: at least one blocking finding."""
        return any(f.severity == "blocking" for f in self.findings)

    def count(self, severity: Severity) -> int:
        return sum(f.severity == severity for f in self.findings)

    def add(self, severity: Severity, file: str | Path, column: str, message: str) -> None:
        self.findings.append(Finding(severity, self.relative(file), column or "-", message))

    def relative(self, file: str | Path) -> str:
        path = Path(file)
        try:
            return path.relative_to(self.landing).as_posix()
        except ValueError:
            return str(file) if str(file) else "-"


def _message(error: Exception, path: Path) -> str:
    """Our error's message without the file name it starts with (the table has a file column)."""
    text = str(error)
    for prefix in (f"{path}: ", f"refused {path}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _column_label(name: str, position: int | None = None) -> str:
    """A column's name when it reads as a name; else its position. NOTE: a CSV without a header
    row makes its first data row the header, so a "name" may be a value."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ ]{0,40}", name) and not re.search(r"\d{4,}", name):
        return name
    return f"#{position}" if position is not None else "(a column whose name looks like data)"


def _identifier_findings(report: PreflightReport, path: Path, error: RawIdentifierError) -> None:
    for finding in error.findings:
        report.add("blocking", path, finding.column,
                   finding.describe().split(": ", 1)[-1] + "; the run refuses the whole file")


# ---------------------------------------------------------------------------------------------
# Query files


@dataclass(frozen=True)
class _QueryFile:
    query_type: str
    month: str
    path: Path
    rows: int | None = None
    columns: tuple[str, ...] = ()


def _inspect_parquet(report: PreflightReport, path: Path, schema: pl.Schema
                     ) -> tuple[int, tuple[str, ...]] | None:
    try:
        rows = frames.count_rows(path)
        found = pl.read_parquet_schema(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unusable
        report.add("blocking", path, "", f"unreadable or truncated ({type(exc).__name__})")
        return None
    for name, dtype in schema.items():
        if name in found:
            problem = frames.find_type_problem(found[name], dtype)
            if problem:
                report.add("blocking", path, name, problem)
    return rows, tuple(found)


def _inspect_csv(report: PreflightReport, path: Path) -> tuple[int, tuple[str, ...]] | None:
    try:
        with path.open(encoding="utf8", newline="") as handle:
            header = tuple(next(csv.reader(handle), []))
        rows = frames.count_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report.add("blocking", path, "", f"unreadable ({type(exc).__name__})")
        return None
    if not frames.ends_with_line_break(path):
        report.add("blocking", path, "", "truncated (no line break after the last row)")
    return rows, header


def _spread_rows(path: Path, rows: int, scan_rows: int) -> pl.DataFrame:
    """`scan_rows` rows of a file: SCAN_PIECES runs of rows at even intervals of a Parquet file
    (polars reads only the pages it needs), or the first rows of a CSV file."""
    if path.suffix != ".parquet":
        return pl.read_csv(path, n_rows=scan_rows, infer_schema=False, null_values=[""])
    size = -(-scan_rows // SCAN_PIECES)
    scan = pl.scan_parquet(path)
    return pl.concat([scan.slice(i * rows // SCAN_PIECES, size)
                      for i in range(SCAN_PIECES)]).collect()


def _scan_query_file(report: PreflightReport, file: _QueryFile, scan_rows: int | None,
                     *, read_as_run: bool) -> None:
    """The run's own read (guard, columns, values) of a whole file when it is small enough and
    `read_as_run`, else the guard alone on its rows (a spread of them in a large file)."""
    rows = file.rows or 0
    whole = scan_rows is None or rows <= scan_rows
    try:
        if whole and read_as_run:
            report.scanned_rows += rows
            frames.read_query_month(report.landing, file.query_type, file.month)
            return
        sample = (_spread_rows(file.path, rows, scan_rows) if not whole
                  else pl.read_parquet(file.path) if file.path.suffix == ".parquet"
                  else pl.read_csv(file.path, infer_schema=False, null_values=[""]))
        report.scanned_rows += min(sample.height, rows)
        frames.guard_identifiers(sample, file.path, PSEUDONYM_COLUMNS[file.query_type], ID_COLUMNS)
    except RawIdentifierError as error:
        _identifier_findings(report, file.path, error)
    except StopcheckError as error:
        report.add("blocking", file.path, "", _message(error, file.path))
    except Exception as exc:  # noqa: BLE001 - only the type: a reader's message can quote data
        report.add("blocking", file.path, "", f"unreadable or truncated ({type(exc).__name__})")


def _list_query_files(report: PreflightReport) -> list[_QueryFile]:
    landing = report.landing
    for query_type in QUERY_TYPES:
        if not frames.query_dir(landing, query_type).is_dir():
            report.add("blocking", frames.query_dir(landing, query_type), "",
                       "folder missing (DESIGN.md §4 layout)")
    for path in frames.list_unexpected_files(landing):
        report.add("blocking", path, "", "not a <YYYY-MM>.parquet or .csv export; rename or "
                   "remove it")
    months = frames.list_months(landing)
    if not months:
        report.add("blocking", landing / "meos", "", "no monthly query files found")
        return []
    files = []
    for month in months:
        for query_type in QUERY_TYPES:
            try:
                path = frames.month_file(landing, query_type, month)
            except StopcheckError as error:
                report.add("blocking", frames.query_dir(landing, query_type), "",
                           _message(error, frames.query_dir(landing, query_type)))
                continue
            if not path.exists():
                report.add("blocking", path, "", f"file missing: month {month} has no "
                           f"{query_type} queries (that month fails in the run)")
                continue
            files.append(_QueryFile(query_type, month, path))
    present = {date(int(m[:4]), int(m[5:]), 1) for m in months}
    first, last = min(present), max(present)
    gaps = []
    while first < last:
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        if first not in present:
            gaps.append(f"{first:%Y-%m}")
    if gaps:
        report.add("warning", landing / "meos", "", f"month(s) {', '.join(gaps)} missing between "
                   f"{months[0]} and {months[-1]}: the statistics cover the months present")
    return files


def _check_query_file(report: PreflightReport, file: _QueryFile,
                      scan_rows: int | None) -> tuple[PreflightReport, _QueryFile | None]:
    """One query file's findings, in a report of its own, and the file with its rows and
    columns (None when it cannot be read)."""
    own = PreflightReport(report.landing, report.themes_file)
    schema = QUERY_SCHEMAS[file.query_type]
    inspected = (_inspect_parquet(own, file.path, schema) if file.path.suffix == ".parquet"
                 else _inspect_csv(own, file.path))
    if inspected is None:
        return own, None
    rows, columns = inspected
    missing = [c for c in schema if c not in columns]
    if missing:
        own.add("blocking", file.path, ", ".join(missing), "column(s) missing")
    for position, name in enumerate(columns):
        if name not in schema:
            own.add("warning", file.path, _column_label(name, position),
                    "extra column, ignored by the run")
    if rows == 0:
        own.add("blocking", file.path, "", "empty month (0 rows)")
    file = _QueryFile(file.query_type, file.month, file.path, rows, columns)
    own.query_rows += rows
    if rows:
        # NOTE: the run's read would only repeat a problem already found in the footer.
        _scan_query_file(own, file, scan_rows, read_as_run=not own.is_blocked)
    return own, file


def _check_query_files(report: PreflightReport, scan_rows: int | None) -> list[_QueryFile]:
    # NOTE: two files at a time, their findings added in file order as if one at a time: a
    # file's guard is many small polars queries whose Python overhead holds the GIL, so a second
    # thread fills the gaps (polars' own threads run each query). Not
    # assets.stats.processors: importing the statistics would cost `stopcheck check` 2 s.
    with ThreadPoolExecutor(2) as pool:
        judged = list(pool.map(lambda file: _check_query_file(report, file, scan_rows),
                               _list_query_files(report)))
    checked = []
    for own, file in judged:
        report.findings += own.findings
        report.scanned_rows += own.scanned_rows
        report.query_rows += own.query_rows
        if file is not None:
            checked.append(file)
    _check_month_sizes(report, checked)
    return checked


def _check_month_sizes(report: PreflightReport, files: list[_QueryFile]) -> None:
    by_month: dict[str, dict[str, _QueryFile]] = {}
    for file in files:
        by_month.setdefault(file.month, {})[file.query_type] = file
    for month in sorted(by_month):
        present = by_month[month]
        report.months.append(MonthRows(
            month, {t: present[t].rows if t in present else None for t in QUERY_TYPES},
            tuple(sorted({f.path.suffix.lstrip(".") for f in present.values()}))))
    for query_type in QUERY_TYPES:
        sized = [f for f in files if f.query_type == query_type and f.rows]
        if len(sized) < 3:
            continue
        median = statistics.median(f.rows for f in sized)
        for file in sized:
            if file.rows < SMALL_MONTH_SHARE * median:
                report.add("warning", file.path, "", f"{file.rows:,} rows, less than half the "
                           f"median month ({median:,.0f}): an incomplete export?")


# ---------------------------------------------------------------------------------------------
# Reference tables, teams, years, themes


def _read_reference(report: PreflightReport, read, path: Path) -> pl.DataFrame | None:
    if not path.exists():
        report.add("blocking", path, "", "file missing (DESIGN.md §4 layout)")
        return None
    try:
        result = read(report.landing)
    except RawIdentifierError as error:
        _identifier_findings(report, path, error)
        return None
    except StopcheckError as error:
        report.add("blocking", path, "", _message(error, path))
        return None
    for warning in result.warnings:
        column = warning.rsplit("extra column ", 1)[-1].removesuffix(" ignored")
        report.add("warning", path, _column_label(column), "extra column, ignored by the run")
    return result.frame


def _build_core(report: PreflightReport, path: Path, build, *args, **kwargs):
    try:
        return build(*args, source=str(path), **kwargs)
    except StopcheckError as error:
        report.add("blocking", path, "", _message(error, path))
        return None


def _check_reference(report: PreflightReport) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """Read and check team_areas, persons and population as the run does; return the core team
    areas and the raw population (None when unusable)."""
    landing = report.landing
    try:
        persons_path = frames.cbs_file(landing, "persons")
        population_path = frames.cbs_file(landing, "population")
    except StopcheckError as error:
        report.add("blocking", landing / "cbs", "", _message(error, landing / "cbs"))
        return None, None
    team_path = frames.team_areas_file(landing)
    raw_teams = _read_reference(report, frames.read_team_areas, team_path)
    teams = None if raw_teams is None else _build_core(
        report, team_path, linkage.build_core_team_areas, raw_teams)
    raw_persons = _read_reference(report, frames.read_persons, persons_path)
    raw_population = _read_reference(report, frames.read_population, population_path)
    if teams is not None and raw_persons is not None:
        _build_core(report, persons_path, linkage.build_core_persons, raw_persons, teams,
                    current_year=date.today().year)
    if teams is not None and raw_population is not None:
        _build_core(report, population_path, linkage.build_core_population, raw_population,
                    teams)
    return teams, raw_population


def _check_query_teams(report: PreflightReport, files: list[_QueryFile],
                       known: set[str]) -> None:
    """Rows whose team is not in team_areas (quarantined as unknown_team), per file; counts only."""
    used: set[str] = set()
    known_rows = 0
    for file in files:
        if "team_code" not in file.columns or not file.rows:
            continue
        scan = (pl.scan_parquet(file.path) if file.path.suffix == ".parquet"
                else pl.scan_csv(file.path, infer_schema=False))
        try:
            counts = scan.group_by(pl.col("team_code").cast(pl.String)).len().collect()
        except Exception as exc:  # noqa: BLE001 - reported with the file's other read problems
            report.add("blocking", file.path, "team_code",
                       f"unreadable ({type(exc).__name__})")
            continue
        is_known = counts["team_code"].is_in(list(known))
        used.update(counts.filter(is_known)["team_code"].to_list())
        unknown = counts.filter(~is_known & counts["team_code"].is_not_null())
        known_rows += int(counts.filter(is_known)["len"].sum())
        empty = int(counts.filter(counts["team_code"].is_null())["len"].sum())
        if empty:
            report.add("warning", file.path, "team_code", f"{empty:,} rows without a team code; "
                       "the run quarantines them (null_team_code)")
        if unknown.height:
            rows = int(unknown["len"].sum())
            report.add("warning", file.path, "team_code",
                       f"{rows:,} of {file.rows:,} rows ({rows / file.rows:.0%}) name "
                       f"{unknown.height} team code(s) not in reference/team_areas.csv; the run "
                       "quarantines them (unknown_team)")
    if files and known_rows == 0:
        report.add("blocking", frames.team_areas_file(report.landing), "team_code",
                   "no query row names a team of this table: every row would be quarantined "
                   "(are these the team areas of the exports?)")
    idle = known - used
    if files and idle and known_rows:
        report.add("info", frames.team_areas_file(report.landing), "team_code",
                   f"{len(idle)} of {len(known)} teams without a query in any month")


def _check_population_years(report: PreflightReport, population: pl.DataFrame,
                            months: Iterable[str]) -> None:
    path = frames.cbs_file(report.landing, "population")
    years = sorted(set(population["year"].drop_nulls().to_list()))
    query_years = sorted({int(m[:4]) for m in months})
    if not years or not query_years:
        return
    for year in query_years:
        if year in years:
            continue
        earlier = [y for y in years if y < year]
        used = max(earlier) if earlier else min(years)
        severity: Severity = "info" if earlier and year - used == 1 else "warning"
        report.add(severity, path, "year", f"no population on 1 January {year}: periods in "
                   f"{year} are compared with the population of {used}")


def _check_themes(report: PreflightReport, teams: pl.DataFrame | None,
                  months: list[str]) -> None:
    try:
        themes = load_themes(report.themes_file)
    except ThemeConfigError as error:
        report.add("blocking", report.themes_file, "", _message(error, report.themes_file))
        return
    if teams is not None:
        try:
            validate_against_teams(themes, teams["team_code"])
        except ThemeConfigError as error:
            report.add("blocking", report.themes_file, "teams",
                       _message(error, report.themes_file))
    for theme in themes:
        if theme.months and months and not any(
                theme.months.first <= m <= theme.months.last for m in months):
            report.add("warning", report.themes_file, "months",
                       f"theme '{theme.name}' covers {theme.months.first}..{theme.months.last}, "
                       "no month of the landing zone: it will have no rows")


def check_landing_zone(landing: Path, themes_file: Path, *,
                       scan_rows: int | None = SCAN_ROWS) -> PreflightReport:
    """Judge a landing zone and the themes file; see the module docstring.

    Parameters
    ----------
    landing
        The landing zone (DESIGN.md §4).
    themes_file
        The themes file the run would use (assets.resources.resolve_themes_file).
    scan_rows
        Rows per query file that the identifier guard sees (every row of a smaller file, which
        is also read exactly as the run reads it); None: every row of every file.
    """
    report = PreflightReport(Path(landing), Path(themes_file))
    if not report.landing.is_dir():
        report.add("blocking", report.landing, "", "landing zone missing")
        return report
    files = _check_query_files(report, scan_rows)
    teams, population = _check_reference(report)
    months = [m.month for m in report.months]
    if teams is not None:
        _check_query_teams(report, files, set(teams["team_code"].to_list()))
    if population is not None:
        _check_population_years(report, population, months)
    _check_themes(report, teams, months)
    if report.query_rows:
        report.add("info", report.landing / "meos", "",
                   f"identifier guard saw {report.scanned_rows:,} of {report.query_rows:,} query "
                   "rows" + ("" if scan_rows is None or report.scanned_rows >= report.query_rows
                             else f" (every row of files up to {scan_rows:,} rows, a spread of "
                             "rows of larger ones; `stopcheck check --full` reads every row, and "
                             "the run always does)"))
    return report


def format_report(report: PreflightReport) -> str:
    """The report as plain text: the rows per month, the findings by severity, a verdict."""
    lines = [f"landing zone: {report.landing}", f"themes file:  {report.themes_file}", ""]
    if report.months:
        lines.append(f"{'month':<8}" + "".join(f"{t + ' rows':>14}" for t in QUERY_TYPES)
                     + "  format")
        for month in report.months:
            counts = "".join(f"{'-' if month.rows[t] is None else f'{month.rows[t]:,}':>14}"
                             for t in QUERY_TYPES)
            lines.append(f"{month.month:<8}{counts}  {'+'.join(month.formats)}")
        lines.append("")
    order = {severity: i for i, severity in enumerate(SEVERITIES)}
    findings = sorted(report.findings, key=lambda f: order[f.severity])
    if findings:
        file_width = min(max(len(f.file) for f in findings), 48)
        column_width = min(max(len(f.column) for f in findings), 24)
        lines.append(f"{'severity':<9}{'file':<{file_width}}  {'column':<{column_width}}  finding")
        lines += [f"{f.severity:<9}{f.file:<{file_width}}  {f.column:<{column_width}}  {f.message}"
                  for f in findings]
        lines.append("")
    counts = ", ".join(f"{report.count(s)} {s}" for s in SEVERITIES)
    verdict = ("a run would stop: fix the blocking findings first" if report.is_blocked
               else "nothing blocks a run")
    lines.append(f"{counts}: {verdict}")
    return "\n".join(lines)
