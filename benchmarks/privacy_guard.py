"""The privacy guard (assets.identifiers): throughput on a landing month, and false positives.

Throughput (``--landing``, ``--month``): scans the month's person- and plate-query files as
`assets.frames.read_query_month` does, once typed as stored (Parquet) and once with every column
as text (as a CSV month is read), and each column of the person file on its own. Best of
`--repeat` runs; the file is read before the clock starts. The month must be clean. With
``--compare-with FILE`` (another version of assets/identifiers.py, e.g. from ``git show``), the
two guards run interleaved on each file, so that both see the same machine load.

False positives (``--false-positives N``): scans N generated values of each kind a clean export
holds (64-hex pseudonyms, query ids, team, wijk and buurt codes, dates, timestamps, postcodes,
phone numbers, amounts) in the column role it has in an export, and counts the values the
guard flags. Every date from 1900 to 2100 is scanned in six formats.

Worst cases (``--worst-cases N``): N values of one free-text column where every value is a
candidate (a nine-digit number, a grouped one, a CSV timestamp with nanoseconds) or none is;
with ``--compare-with FILE`` for both guards.

Prints counts and timings only, never a value.

Usage::

    .venv/bin/stopcheck sample --out /tmp/g --months 1 --queries 5000000
    .venv/bin/python benchmarks/privacy_guard.py --landing /tmp/g --month 2025-01
    git show 3bffb7e:assets/identifiers.py > /tmp/identifiers_before.py
    .venv/bin/python benchmarks/privacy_guard.py --landing /tmp/g --month 2025-01 \
        --compare-with /tmp/identifiers_before.py
    .venv/bin/python benchmarks/privacy_guard.py --worst-cases 2000000 \
        --compare-with /tmp/identifiers_before.py
    .venv/bin/python benchmarks/privacy_guard.py --false-positives 1000000
"""

from __future__ import annotations

import argparse
from datetime import date
import importlib.util
import inspect
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import polars as pl

from assets import frames
from assets.identifiers import scan_for_identifiers
from assets.schema import ID_COLUMNS, PSEUDONYM_COLUMNS, QUERY_TYPES
from assets.synthetic import TEAMS


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _scan(frame: pl.DataFrame, query_type: str, scan=scan_for_identifiers) -> None:
    roles = {"pseudonym_columns": PSEUDONYM_COLUMNS[query_type], "id_columns": ID_COLUMNS}
    accepted = inspect.signature(scan).parameters
    findings = scan(frame, **{k: v for k, v in roles.items() if k in accepted})
    assert not findings, f"{query_type}: the sample must be clean ({len(findings)} findings)"


def _load_guard(path: Path):
    spec = importlib.util.spec_from_file_location("identifiers_compared", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.scan_for_identifiers


def compare_throughput(landing: Path, month: str, repeat: int, other: Path) -> None:
    scans = {"other": _load_guard(other), "this": scan_for_identifiers}
    print(f"{'file':<22} {'rows':>10} {'other rows/s':>13} {'this rows/s':>13} "
          f"{'this/other s':>13}")
    for query_type in QUERY_TYPES:
        typed = pl.read_parquet(frames.month_file(landing, query_type, month))
        as_text = typed.with_columns(pl.all().cast(pl.String))
        for label, frame in (("typed", typed), ("all text", as_text)):
            times: dict[str, list[float]] = {name: [] for name in scans}
            for _ in range(repeat):
                for name, scan in scans.items():
                    start = time.perf_counter()
                    _scan(frame, query_type, scan)
                    times[name].append(time.perf_counter() - start)
            best = {name: min(t) for name, t in times.items()}
            print(f"{query_type + ', ' + label:<22} {frame.height:>10,} "
                  f"{frame.height / best['other']:>13,.0f} {frame.height / best['this']:>13,.0f} "
                  f"{best['this'] / best['other']:>13.2f}")


def measure_throughput(landing: Path, month: str, repeat: int) -> None:
    print(f"{'file / column':<42} {'rows':>10} {'s':>7} {'rows/s':>12}")
    for query_type in QUERY_TYPES:
        path = frames.month_file(landing, query_type, month)
        typed = pl.read_parquet(path)
        as_text = typed.with_columns(pl.all().cast(pl.String))
        for label, frame in (("typed", typed), ("all text", as_text)):
            seconds = _best(lambda frame=frame: _scan(frame, query_type), repeat)
            print(f"{query_type} month, {label:<30} {frame.height:>10,} {seconds:>7.2f} "
                  f"{frame.height / seconds:>12,.0f}")
        if query_type == "person":
            for name in typed.columns:
                column = typed.select(name)
                seconds = _best(lambda column=column: _scan(column, query_type), repeat)
                print(f"  {name:<40} {column.height:>10,} {seconds:>7.2f} "
                      f"{column.height / seconds:>12,.0f}")


def worst_cases(n: int, seed: int = 16) -> dict[str, pl.Series]:
    """Free-text columns where every value is a candidate (the rules run on every value)."""
    numbers = _digits(np.random.default_rng(seed), n, 9)
    return {
        "nine digits in every value": "nr " + numbers + " gezien",
        "123 456 789 in every value": (numbers.str.slice(0, 3) + " " + numbers.str.slice(3, 3)
                                       + " " + numbers.str.slice(6, 3)),
        "CSV timestamps with nanoseconds": pl.Series(
            ["2025-03-01T12:34:56.123456789+01:00"] * n),
        "text without digits": pl.Series(["bestuurder aangesproken, geen bijzonderheden"] * n),
    }


def compare_worst_cases(n: int, repeat: int, other: Path | None) -> None:
    scans = {"this": scan_for_identifiers} | ({"other": _load_guard(other)} if other else {})
    print(f"{'one free-text column':<34} {'rows':>10} "
          + " ".join(f"{name + ' rows/s':>13} {name + ' found':>11}" for name in scans))
    for label, values in worst_cases(n).items():
        frame = values.to_frame("opmerking")
        cells = []
        for scan in scans.values():
            seconds = _best(lambda scan=scan: scan(frame), repeat)
            found = sum(f.match_count for f in scan(frame))
            cells.append(f"{frame.height / seconds:>13,.0f} {found:>11,}")
        print(f"{label:<34} {frame.height:>10,} " + " ".join(cells))


def _digits(rng: np.random.Generator, n: int, width: int) -> pl.Series:
    return pl.Series(rng.integers(0, 10**width, n)).cast(pl.String).str.zfill(width)


def _letters(rng: np.random.Generator, n: int, width: int, alphabet: str) -> pl.Series:
    picks = rng.integers(0, len(alphabet), (n, width))
    return pl.Series(["".join(alphabet[i] for i in row) for row in picks])


def clean_values(n: int, seed: int = 16) -> dict[str, tuple[str, pl.Series]]:
    """Generated values a clean export holds, by name: (column role, values)."""
    rng = np.random.default_rng(seed)
    upper, alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    days = pl.date_range(date(1900, 1, 1), date(2100, 12, 31), eager=True)
    instants = pl.Series(rng.integers(-2_208_988_800, 4_102_444_800, n) * 1_000_000
                         + rng.integers(0, 1_000_000, n)).cast(pl.Datetime("us", "UTC"))
    nanos = _digits(rng, n, 3)
    return {
        "64-hex pseudonyms": ("pseudonym", pl.Series([bytes(r).hex() for r in
                                                     rng.integers(0, 256, (n, 32), np.uint8)])),
        "query ids (P202501-00000001)": (
            "id", pl.Series(rng.choice(["P", "K"], n)) + "2025" + _digits(rng, n, 2) + "-"
            + _digits(rng, n, 8)),
        "team codes of the sample": ("text", pl.Series(sorted(TEAMS))),
        "team codes (AMS-ZO1, A1)": ("text", pl.concat([
            _letters(rng, n // 2, 3, upper) + "-" + _letters(rng, n // 2, 2, upper)
            + _digits(rng, n // 2, 1), _letters(rng, n - n // 2, 1, upper)
            + _digits(rng, n - n // 2, 2)])),
        "buurt codes of Amsterdam": ("text", pl.read_csv(
            Path(frames.__file__).parent / "reference" / "buurten_2025.csv", separator=";",
            schema_overrides={"Buurt2025": pl.String})["Buurt2025"].map_elements(
                lambda code: f"BU{code}", return_dtype=pl.String)),
        "buurt codes (BU0363AE01)": ("text", "BU" + _digits(rng, n, 4) + _letters(rng, n, 2, alnum)
                                     + _digits(rng, n, 2)),
        "wijk codes (WK0363AA)": ("text", "WK" + _digits(rng, n, 4) + _letters(rng, n, 2, alnum)),
        "dates 1900-2100, 6 formats": ("text", pl.concat([
            days.dt.to_string(fmt) for fmt in
            ("%Y%m%d", "%d%m%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y")])),
        "'gezien op <date>' 1900-2100": ("text", "gezien op " + days.dt.to_string("%d-%m-%Y")),
        "ISO timestamps, microseconds": (
            "text", instants.dt.to_string("%Y-%m-%dT%H:%M:%S%.6f+01:00")),
        "ISO timestamps, nanoseconds": (
            "text", instants.dt.to_string("%Y-%m-%d %H:%M:%S%.6f") + nanos + "Z"),
        "postcodes (1012 AB, 1012AB)": ("text", pl.concat([
            _digits(rng, n // 2, 4) + " " + _letters(rng, n // 2, 2, upper),
            _digits(rng, n - n // 2, 4) + _letters(rng, n - n // 2, 2, upper)])),
        "phones (06-12345678, +31 612345678)": ("text", pl.concat([
            "06-" + _digits(rng, n // 2, 8), "+31 6" + _digits(rng, n - n // 2, 8)])),
        "amounts below 10 million (EUR 1.234.567,00)": (
            "text", "EUR " + pl.Series(rng.integers(0, 10**7, n)).map_elements(
                lambda v: f"{v:,}".replace(",", "."), return_dtype=pl.String) + ",00"),
        # NOTE: the known limits, for the record: a nine-digit number written in groups has a
        # BSN's shape; a hex id outside a pseudonym or opaque-id column holds digit runs.
        "amounts of 100-999 million (limit)": (
            "text", "EUR " + pl.Series(rng.integers(10**8, 10**9, n)).map_elements(
                lambda v: f"{v:,}".replace(",", "."), return_dtype=pl.String) + ",00"),
        "64-hex in a free-text column (limit)": ("text", pl.Series(
            [bytes(r).hex() for r in rng.integers(0, 256, (n, 32), np.uint8)])),
        "UUIDs in an opaque-id column": ("opaque", pl.Series(
            [str(uuid.UUID(bytes=bytes(r), version=4))
             for r in rng.integers(0, 256, (n, 16), np.uint8)])),
    }


def measure_false_positives(n: int) -> None:
    print(f"{'clean values':<44} {'role':<10} {'values':>10} {'flagged':>8}  kinds")
    for name, (role, values) in clean_values(n).items():
        frame = values.to_frame("v")
        roles = {"pseudonym": {"pseudonym_columns": ["v"]}, "id": {"id_columns": ["v"]},
                 "opaque": {"opaque_id_columns": ["v"]}}.get(role, {})
        findings = scan_for_identifiers(frame, **roles)
        flagged = sum(f.match_count for f in findings)
        kinds = ", ".join(f"{f.kind} {f.match_count}" for f in findings) or "-"
        print(f"{name:<44} {role:<10} {frame.height:>10,} {flagged:>8,}  {kinds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path)
    parser.add_argument("--month")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare-with", type=Path, metavar="FILE")
    parser.add_argument("--worst-cases", type=int, metavar="N")
    parser.add_argument("--false-positives", type=int, metavar="N")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat}")
    if args.landing and args.compare_with:
        compare_throughput(args.landing, args.month, args.repeat, args.compare_with)
    elif args.landing:
        measure_throughput(args.landing, args.month, args.repeat)
    if args.worst_cases:
        compare_worst_cases(args.worst_cases, args.repeat, args.compare_with)
    if args.false_positives:
        measure_false_positives(args.false_positives)


if __name__ == "__main__":
    main()
