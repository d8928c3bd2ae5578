"""The bad-input corpus: damage one month of one query type in a copy of a landing zone.

Every function takes a landing zone (a *copy* made with `copy_landing`: the session fixture
`small_landing` is shared and must never be damaged) and changes exactly one monthly file, or
one of its rows, in the way a real export can go wrong. Functions return what a test needs to
know to check the pipeline's answer (which rows, which reason, how many values) and nothing is
computed with the code under test: month bounds, the BSN 11-test and the CSV layout are written
out here independently.

Three kinds of damage (DESIGN.md §6, issue 3):

row-level
    `damage_rows` breaks one rule per row (null/duplicate id, timestamps at the local-midnight
    edges, null/unknown team, null officer, bad pseudonyms, ...); each row must end up in
    core_quarantine with exactly `RowDamage.reason`, or stay valid when that is None.
file-level
    `FILE_DAMAGES`: missing, truncated, garbage, missing/mistyped/extra column, empty month,
    two formats at once; the partition must fail (or, for an extra column, warn) with a message
    naming the file and column. Each works on a Parquet or a CSV month alike (`to_csv` first).
privacy
    `PRIVACY_DAMAGES`: a valid BSN, a licence plate or an e-mail address written into a column;
    the file must be refused as a whole and the value must never be shown anywhere.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from assets.frames import list_months
from assets.paths import TRUTH_FILE

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
UTC = ZoneInfo("UTC")
PSEUDONYM_COLUMNS = {
    "person": ("officer_pseudonym", "subject_pseudonym"),
    "plate": ("officer_pseudonym", "plate_pseudonym", "holder_pseudonym"),
}


# --------------------------------------------------------------------------- files


def copy_landing(source: Path, target: Path) -> Path:
    """Copy a whole landing zone to `target` (which must not exist yet) and return `target`."""
    shutil.copytree(source, target)
    return Path(target)


def month_path(landing: Path, query_type: str, month: str) -> Path:
    """The file of one query type and month, whichever format it has now (Parquet if none)."""
    folder = Path(landing) / "meos" / f"{query_type}_queries"
    for suffix in (".parquet", ".csv"):
        if (folder / f"{month}{suffix}").exists():
            return folder / f"{month}{suffix}"
    return folder / f"{month}.parquet"


def load_month(landing: Path, query_type: str, month: str) -> pl.DataFrame:
    """The month as stored: typed for Parquet, every column a string for CSV."""
    path = month_path(landing, query_type, month)
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


def save_month(landing: Path, query_type: str, month: str, frame: pl.DataFrame) -> Path:
    """Overwrite the month's file in its current format."""
    path = month_path(landing, query_type, month)
    if path.suffix == ".parquet":
        frame.write_parquet(path, compression="zstd", statistics=False)
    else:
        frame.write_csv(path)
    return path


def copy_month(landing: Path, source_month: str, target_month: str) -> None:
    """Give the landing zone one more month: both query types' Parquet files of `source_month`
    moved to `target_month` (instants shifted by the distance between the two months' local
    starts, ids renamed), so that many file-level damages can share one run, one month each.

    The target month must be at least as long as the source (every row stays inside it).
    """
    shift = local_month_bounds(target_month)[0] - local_month_bounds(source_month)[0]
    old_tag, new_tag = source_month.replace("-", ""), target_month.replace("-", "")
    for query_type in ("person", "plate"):
        frame = load_month(landing, query_type, source_month).with_columns(
            pl.col("queried_at") + shift,
            pl.col("query_id").str.replace(old_tag, new_tag, literal=True),
        )
        folder = month_path(landing, query_type, source_month).parent
        frame.write_parquet(folder / f"{target_month}.parquet", compression="zstd",
                            statistics=False)


def previous_month(month: str) -> str:
    year, mon = map(int, month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def local_month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a month on the Europe/Amsterdam clock, as aware UTC datetimes."""
    year, mon = map(int, month.split("-"))
    start = datetime(year, mon, 1, tzinfo=AMSTERDAM)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=AMSTERDAM)
    return start.astimezone(UTC), end.astimezone(UTC)


def set_cells(frame: pl.DataFrame, rows: list[int], column: str, value) -> pl.DataFrame:
    """`frame` with `column` set to `value` in the given rows (a new column if absent)."""
    dtype = frame.schema.get(column)
    literal = pl.lit(value, dtype=dtype) if dtype is not None else pl.lit(value)
    if dtype is None and value is not None:
        other = pl.lit(None, dtype=pl.String)
    else:
        other = pl.col(column)
    hit = pl.int_range(pl.len()).is_in(rows)
    return frame.with_columns(pl.when(hit).then(literal).otherwise(other).alias(column))


# --------------------------------------------------------------------------- row-level damage


@dataclass(frozen=True)
class RowDamage:
    """One damaged row: where it is and what the pipeline must do with it.

    Attributes
    ----------
    name : the damage (a key of ROW_DAMAGES).
    row : 0-based row in the damaged file (file order).
    original_id : query_id of that row before the damage (the row in the clean run).
    reason : the expected quarantine reason, or None when the row must stay valid.
    """

    name: str
    query_type: str
    month: str
    row: int
    original_id: str
    reason: str | None


@dataclass(frozen=True)
class _RowRule:
    query_types: tuple[str, ...]
    reason: str | None
    apply: Callable[[pl.DataFrame, int, str, Path, str], pl.DataFrame]
    """(frame, row, month, landing, query_type) -> damaged frame."""


def _at(column: str, value) -> Callable:
    return lambda frame, row, month, landing, query_type: set_cells(frame, [row], column, value)


def _timestamp(offset_from: str, delta: timedelta) -> Callable:
    """queried_at := month start or end (local midnight, as UTC) + delta."""
    def apply(frame, row, month, landing, query_type):
        start, end = local_month_bounds(month)
        base = start if offset_from == "start" else end
        return set_cells(frame, [row], "queried_at", base + delta)
    return apply


def _duplicate_within_month(frame, row, month, landing, query_type):
    # NOTE: the copied id is that of the row before: the first occurrence in file order stays.
    return set_cells(frame, [row], "query_id", frame["query_id"][row - 1])


def _duplicate_across_months(frame, row, month, landing, query_type):
    earlier = load_month(landing, query_type, previous_month(month))
    return set_cells(frame, [row], "query_id", earlier["query_id"][5])


def _two_rules(frame, row, month, landing, query_type):
    # NOTE: null team (rule 5) and a bad buurt code (rule 11): the first rule broken wins.
    return set_cells(set_cells(frame, [row], "team_code", None), [row], "buurt_code", "XX")


def _uppercase_pseudonym(column: str) -> Callable:
    def apply(frame, row, month, landing, query_type):
        value = frame[column][row].upper()
        # NOTE: an upper-cased pseudonym is scanned by the privacy guard; one holding a 9-digit
        # run could pass the BSN 11-test by chance and refuse the whole file.
        assert not re.search(r"\d{9}", value), "pick another row for this damage"
        return set_cells(frame, [row], column, value)
    return apply


def _short_pseudonym(column: str) -> Callable:
    def apply(frame, row, month, landing, query_type):
        return set_cells(frame, [row], column, frame[column][row][:63])
    return apply


ROW_DAMAGES: dict[str, _RowRule] = {
    "null_query_id": _RowRule(("person", "plate"), "null_query_id", _at("query_id", None)),
    "duplicate_id_within_month": _RowRule(
        ("person", "plate"), "duplicate_query_id", _duplicate_within_month),
    "duplicate_id_across_months": _RowRule(
        ("person", "plate"), "duplicate_query_id", _duplicate_across_months),
    "null_queried_at": _RowRule(("person",), "null_queried_at", _at("queried_at", None)),
    "queried_next_month": _RowRule(
        ("person",), "outside_month", _timestamp("end", timedelta(days=3))),
    "queried_previous_month": _RowRule(
        ("person",), "outside_month", _timestamp("start", -timedelta(days=3))),
    # 1 µs before local midnight of the 1st: the last instant of the previous month.
    "queried_just_before_local_start": _RowRule(
        ("person",), "outside_month", _timestamp("start", -timedelta(microseconds=1))),
    # local midnight of the 1st exactly: the first instant of the month.
    "queried_at_local_start": _RowRule(("person",), None, _timestamp("start", timedelta(0))),
    # 00:30 local on the 1st = 23:30 UTC on the last day before: outside in UTC, inside locally.
    "queried_after_local_start_before_utc_start": _RowRule(
        ("person", "plate"), None, _timestamp("start", timedelta(minutes=30))),
    # 23:59:59.999999 local on the last day: inside.
    "queried_just_before_local_end": _RowRule(
        ("person",), None, _timestamp("end", -timedelta(microseconds=1))),
    # 00:30 local on the 1st of the next month = 23:30 UTC on the last day: inside in UTC only.
    "queried_after_local_end_before_utc_end": _RowRule(
        ("person", "plate"), "outside_month", _timestamp("end", timedelta(minutes=30))),
    "null_team_code": _RowRule(("person", "plate"), "null_team_code", _at("team_code", None)),
    "unknown_team_code": _RowRule(("person", "plate"), "unknown_team", _at("team_code", "AMS-X9")),
    "null_officer": _RowRule(
        ("person", "plate"), "null_officer_pseudonym", _at("officer_pseudonym", None)),
    "null_plate_pseudonym": _RowRule(
        ("plate",), "null_plate_pseudonym", _at("plate_pseudonym", None)),
    "subject_pseudonym_63_hex": _RowRule(
        ("person",), "bad_pseudonym", _short_pseudonym("subject_pseudonym")),
    "officer_pseudonym_uppercase": _RowRule(
        ("person",), "bad_pseudonym", _uppercase_pseudonym("officer_pseudonym")),
    "holder_pseudonym_63_hex": _RowRule(
        ("plate",), "bad_pseudonym", _short_pseudonym("holder_pseudonym")),
    "plate_pseudonym_uppercase": _RowRule(
        ("plate",), "bad_pseudonym", _uppercase_pseudonym("plate_pseudonym")),
    "null_subject_pseudonym": _RowRule(("person",), None, _at("subject_pseudonym", None)),
    "null_holder_pseudonym": _RowRule(("plate",), None, _at("holder_pseudonym", None)),
    "unknown_query_reason": _RowRule(
        ("person", "plate"), "bad_query_reason", _at("query_reason", "controle")),
    "uppercase_query_reason": _RowRule(
        ("person",), "bad_query_reason", _at("query_reason", "Verkeer")),
    "buurt_code_other_municipality": _RowRule(
        ("person", "plate"), "bad_buurt_code", _at("buurt_code", "BU0599AB01")),
    "buurt_code_lowercase": _RowRule(
        ("person",), "bad_buurt_code", _at("buurt_code", "bu0363ae01")),
    "null_team_and_bad_buurt": _RowRule(("person",), "null_team_code", _two_rules),
}
"""Row-level damage by name: query types it applies to, expected reason (None = stays valid)."""

_FIRST_ROW, _ROW_STEP = 101, 211
"""Damaged rows are spread over the file and never adjacent (a duplicate copies row - 1)."""


def damage_rows(landing: Path, query_type: str, month: str,
                names: list[str] | None = None) -> list[RowDamage]:
    """Apply every row-level damage of `query_type` (or `names`) to its own row of one month.

    The earlier month must be in the landing zone (cross-month duplicates copy one of its ids).
    Returns one RowDamage per damaged row, in file order.
    """
    frame = load_month(landing, query_type, month)
    names = names or [n for n, rule in ROW_DAMAGES.items() if query_type in rule.query_types]
    damages = []
    row = _FIRST_ROW
    for name in names:
        rule = ROW_DAMAGES[name]
        while True:
            try:
                damaged = rule.apply(frame, row, month, landing, query_type)
                break
            except AssertionError:
                row += 1
        damages.append(RowDamage(name, query_type, month, row, frame["query_id"][row],
                                 rule.reason))
        frame = damaged
        row += _ROW_STEP
    assert row < frame.height, "the month is too small for every damage"
    save_month(landing, query_type, month, frame)
    return damages


def new_users_exports(source: Path, target: Path) -> Path:
    """A copy of a synthetic landing zone as a police unit would deliver it: its own team codes
    (BT-... for AMS-...), no truth file (so the shipped themes.yaml applies)."""
    landing = copy_landing(source, target)
    (landing / TRUTH_FILE).unlink()
    rename = pl.col("team_code").str.replace("AMS-", "BT-", literal=True)
    teams = landing / "reference" / "team_areas.csv"
    pl.read_csv(teams).with_columns(rename).write_csv(teams)
    for query_type in ("person", "plate"):
        for month in list_months(landing):
            frame = load_month(landing, query_type, month).with_columns(rename)
            save_month(landing, query_type, month, frame)
    return landing


# --------------------------------------------------------------------------- file-level damage


def remove_file(landing: Path, query_type: str, month: str) -> dict:
    month_path(landing, query_type, month).unlink()
    return {}


def truncate_file(landing: Path, query_type: str, month: str) -> dict:
    """Cut the file in the middle of a row (as a broken transfer does)."""
    path = month_path(landing, query_type, month)
    data = path.read_bytes()
    cut = len(data) * 2 // 3
    if path.suffix == ".csv":
        # NOTE: a cut inside the last field is the dangerous one: the shortened row still
        # parses. Leave the separator before the last field of the last kept row.
        cut = data.rindex(b",", 0, cut) + 1
    path.write_bytes(data[:cut])
    return {}


def write_garbage(landing: Path, query_type: str, month: str) -> dict:
    """Replace the file's content by bytes that are neither Parquet nor UTF-8 text."""
    path = month_path(landing, query_type, month)
    path.write_bytes(bytes((i * 151 + 7) % 256 for i in range(4096)))
    return {}


def drop_column(column: str) -> Callable:
    def apply(landing: Path, query_type: str, month: str) -> dict:
        frame = load_month(landing, query_type, month)
        save_month(landing, query_type, month, frame.drop(column))
        return {"column": column}
    return apply


def hit_as_yes_no(landing: Path, query_type: str, month: str) -> dict:
    """hit written as "yes"/"no" strings: every non-null value breaks the type."""
    frame = load_month(landing, query_type, month)
    hit = pl.col("hit").cast(pl.String).str.to_lowercase()
    frame = frame.with_columns(hit.replace({"true": "yes", "false": "no"}))
    save_month(landing, query_type, month, frame)
    return {"column": "hit", "count": int(frame["hit"].is_not_null().sum())}


def query_id_as_integer(landing: Path, query_type: str, month: str) -> dict:
    """query_id as an integer column (the digits of the id): a Parquet type error."""
    frame = load_month(landing, query_type, month)
    frame = frame.with_columns(pl.col("query_id").str.replace_all(r"\D", "").cast(pl.Int64))
    save_month(landing, query_type, month, frame)
    return {"column": "query_id"}


def timestamps_without_offset(landing: Path, query_type: str, month: str) -> dict:
    """queried_at as Amsterdam wall-clock time with no offset or time zone, every row.

    Parquet: a timestamp column without time zone. CSV: ISO 8601 text without the offset.
    """
    frame = load_month(landing, query_type, month)
    path = month_path(landing, query_type, month)
    if path.suffix == ".parquet":
        naive = pl.col("queried_at").dt.convert_time_zone("Europe/Amsterdam").dt.replace_time_zone(
            None)
    else:
        naive = pl.col("queried_at").str.replace(r"(?:Z|[+-]\d{2}:?\d{2})$", "")
    frame = frame.with_columns(naive)
    save_month(landing, query_type, month, frame)
    # NOTE: for Parquet it is the column's type that is wrong: there are no values to count.
    return {"column": "queried_at", **({"count": frame.height} if path.suffix == ".csv" else {})}


def one_timestamp_without_offset(landing: Path, query_type: str, month: str) -> dict:
    """One CSV row's queried_at without its offset (the other rows are fine)."""
    frame = load_month(landing, query_type, month)
    value = frame["queried_at"][17]
    frame = set_cells(frame, [17], "queried_at", re.sub(r"(?:Z|[+-]\d{2}:?\d{2})$", "", value))
    save_month(landing, query_type, month, frame)
    return {"column": "queried_at", "count": 1}


def one_timestamp_as_date(landing: Path, query_type: str, month: str) -> dict:
    """One CSV row's queried_at as a bare date (no time, no offset)."""
    frame = load_month(landing, query_type, month)
    frame = set_cells(frame, [17], "queried_at", frame["queried_at"][17][:10])
    save_month(landing, query_type, month, frame)
    return {"column": "queried_at", "count": 1}


EXTRA_COLUMN = "opmerking"


def add_extra_column(landing: Path, query_type: str, month: str) -> dict:
    """An extra column the contract does not know, with harmless text in a few rows."""
    frame = load_month(landing, query_type, month)
    frame = set_cells(frame, [3, 30, 300], EXTRA_COLUMN, "geen bijzonderheden")
    save_month(landing, query_type, month, frame)
    return {"column": EXTRA_COLUMN}


def empty_month(landing: Path, query_type: str, month: str) -> dict:
    """The header (schema) of the month and zero rows."""
    frame = load_month(landing, query_type, month)
    save_month(landing, query_type, month, frame.clear())
    return {"count": 0}


def both_formats(landing: Path, query_type: str, month: str) -> dict:
    """The month delivered twice: as Parquet and as CSV (which one counts is ambiguous)."""
    path = month_path(landing, query_type, month)
    frame = load_month(landing, query_type, month)
    other = path.with_suffix(".csv" if path.suffix == ".parquet" else ".parquet")
    if other.suffix == ".csv":
        frame.write_csv(other)
    else:
        frame.write_parquet(other)
    return {}


@dataclass(frozen=True)
class FileDamage:
    """A file-level damage and the words the pipeline's message must hold.

    `expect` are fragments of the error message (besides the file name and the column and
    count returned by `apply`); `formats` are the formats it applies to.
    """

    apply: Callable[[Path, str, str], dict]
    expect: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("parquet", "csv")
    is_warning: bool = False


FILE_DAMAGES: dict[str, FileDamage] = {
    "missing_file": FileDamage(remove_file, ("missing",)),
    "truncated": FileDamage(truncate_file, ("truncated",)),
    "garbage_bytes": FileDamage(write_garbage, ("unreadable",)),
    "missing_column": FileDamage(drop_column("team_code"), ("missing",)),
    "missing_pseudonym_column": FileDamage(drop_column("officer_pseudonym"), ("missing",)),
    "hit_as_yes_no": FileDamage(hit_as_yes_no, ("true/false",)),
    "query_id_as_integer": FileDamage(query_id_as_integer, ("type",), formats=("parquet",)),
    "timestamps_without_offset": FileDamage(timestamps_without_offset, ("time zone", "offset")),
    "one_timestamp_without_offset": FileDamage(
        one_timestamp_without_offset, ("offset",), formats=("csv",)),
    "one_timestamp_as_date": FileDamage(one_timestamp_as_date, ("offset",), formats=("csv",)),
    "empty_month": FileDamage(empty_month, ("empty", "0 rows")),
    "both_formats": FileDamage(both_formats, ("both",)),
    "extra_column": FileDamage(add_extra_column, ("extra",), is_warning=True),
}
"""File-level damage by name. `expect` fragments: at least one must be in the message."""


# --------------------------------------------------------------------------- CSV variant


def to_csv(landing: Path, query_type: str, month: str, *, offsets: str = "local",
           quote_all: bool = False) -> Path:
    """Write the month as CSV per the contract (UTF-8, header, ISO 8601 with offset), drop the
    Parquet. `offsets`: "local" writes Amsterdam clock time with its offset (+01:00 / +02:00),
    "utc" writes UTC with a Z, "polars" polars' own format (+0000). `quote_all` quotes every
    field, a null as "" (as Python's csv.QUOTE_ALL does)."""
    path = month_path(landing, query_type, month)
    assert path.suffix == ".parquet"
    frame = pl.read_parquet(path)
    if offsets == "local":
        text = pl.col("queried_at").dt.convert_time_zone("Europe/Amsterdam").dt.to_string(
            "%Y-%m-%dT%H:%M:%S%.6f%:z")
        frame = frame.with_columns(text)
    elif offsets == "utc":
        frame = frame.with_columns(pl.col("queried_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
    target = path.with_suffix(".csv")
    frame.write_csv(target, quote_style="always" if quote_all else "necessary")
    path.unlink()
    return target


# --------------------------------------------------------------------------- privacy damage

BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def make_bsn(first_eight: str) -> str:
    """A nine-digit number passing the BSN 11-test: `first_eight` and the one check digit."""
    partial = sum(w * int(d) for w, d in zip(BSN_WEIGHTS, first_eight, strict=False))
    check = partial % 11
    if check > 9:
        raise ValueError(f"no check digit makes {first_eight}x pass the 11-test")
    bsn = first_eight + str(check)
    assert sum(w * int(d) for w, d in zip(BSN_WEIGHTS, bsn, strict=True)) % 11 == 0
    return bsn


def make_bsns(count: int, first: int, step: int = 1_234_577) -> tuple[str, ...]:
    """`count` distinct made-up BSNs, the first eight digits counting from `first` in steps of
    `step` (numbers without a check digit are skipped)."""
    bsns: list[str] = []
    prefix = first
    while len(bsns) < count:
        try:
            bsns.append(make_bsn(f"{prefix % 10**8:08d}"))
        except ValueError:
            pass
        prefix += step
    return tuple(bsns)


def write_grouped(bsn: str, grouping: tuple[int, ...], separator: str) -> str:
    """`bsn` written in digit groups, e.g. (4, 2, 3) and "." give 1234.56.782."""
    parts, start = [], 0
    for size in grouping:
        parts.append(bsn[start:start + size])
        start += size
    return separator.join(parts)


BSNS = tuple(make_bsn(prefix) for prefix in ("29384756", "38475612", "47561238", "56123847"))
"""Made-up numbers passing the 11-test, one per damage so that a leak can be traced to it."""
GROUPED_BSNS = tuple(
    write_grouped(bsn, *[((4, 2, 3), "."), ((3, 3, 3), " "), ((3, 3, 3), "-")][i % 3])
    for i, bsn in enumerate(make_bsns(24, 61_000_000)))
"""Issue 16's first export: 24 BSNs written 1234.56.782, 123 456 782 or 123-456-782."""
EIGHT_DIGIT_BSNS = tuple(bsn[1:] for bsn in make_bsns(24, 1_357_913, step=300_007))
"""Issue 16's second export: 24 BSNs that start with 0, written without it (eight digits)."""
MORE_BSNS = make_bsns(2, 70_123_456)
"""For forms the issue does not list: one labelled with no-break spaces, one in full-width
digits."""
FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
PRIVACY_ROW_STEP = 277
"""Damaged rows are 11, 288, 565, ...: spread over the file (24 of them fit in a small month)."""


@dataclass(frozen=True)
class PrivacyDamage:
    """Un-pseudonymised identifiers written into a column of one query type's month.

    `values` go one per row, into rows 11, 11 + PRIVACY_ROW_STEP, ...; `needles` are the other
    strings that must never appear anywhere (a BSN's bare digits, a plate without dashes);
    `kind` is the guard's word for it.
    """

    query_type: str
    column: str
    values: tuple[str, ...]
    kind: str
    needles: tuple[str, ...] = field(default=())
    fmt: str = "parquet"

    @property
    def rows(self) -> tuple[int, ...]:
        return tuple(11 + i * PRIVACY_ROW_STEP for i in range(len(self.values)))

    @property
    def all_needles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.values, *self.needles)))


def _three(value: str) -> tuple[str, str, str]:
    return (value, value, value)


PRIVACY_DAMAGES: dict[str, PrivacyDamage] = {
    "bsn_in_query_reason": PrivacyDamage("person", "query_reason", _three(BSNS[0]), "bsn"),
    "bsn_in_extra_text_column": PrivacyDamage(
        "person", EXTRA_COLUMN, _three(f"gecontroleerd, bsn {BSNS[1]} klopt"), "bsn", (BSNS[1],)),
    "bsn_embedded_in_query_id": PrivacyDamage(
        "plate", "query_id", _three(f"K-{BSNS[2]}-A"), "bsn", (BSNS[2],)),
    "bsn_in_csv_query_reason": PrivacyDamage(
        "plate", "query_reason", _three(BSNS[3]), "bsn", fmt="csv"),
    "plate_sidecode_1_in_subject": PrivacyDamage(
        "person", "subject_pseudonym", _three("HZ-42-17"), "licence_plate", ("HZ4217",)),
    "plate_sidecode_7_in_holder": PrivacyDamage(
        "plate", "holder_pseudonym", _three("47-KRT-3"), "licence_plate", ("47KRT3",)),
    "plate_lowercase_in_plate_pseudonym": PrivacyDamage(
        "plate", "plate_pseudonym", _three("vd-481-x"), "licence_plate", ("VD481X", "vd481x")),
    "email_in_officer": PrivacyDamage(
        "person", "officer_pseudonym", _three("w.de.vries@politie-example.nl"), "email"),
    # issue 16: the three exports that were kept in the warehouse
    "bsn_grouped_in_subject": PrivacyDamage(
        "person", "subject_pseudonym", GROUPED_BSNS, "bsn",
        tuple(re.sub(r"\D", "", v) for v in GROUPED_BSNS)),
    "bsn_eight_digits_in_subject": PrivacyDamage(
        "person", "subject_pseudonym", EIGHT_DIGIT_BSNS, "bsn",
        tuple(f"0{v}" for v in EIGHT_DIGIT_BSNS)),
    "plate_in_query_reason": PrivacyDamage(
        "plate", "query_reason", ("kenteken GH-452-K", "kenteken SX-803-B", "kenteken NJ-276-P"),
        "licence_plate", ("GH452K", "SX803B", "NJ276P")),
    # issue 16: forms it does not list
    "plate_lowercase_spaced_in_extra_column": PrivacyDamage(
        "plate", EXTRA_COLUMN, _three("auto rz 718 t, bestuurder aangesproken"), "licence_plate",
        ("rz 718 t", "RZ718T", "rz718t", "RZ-718-T")),
    "bsn_labelled_no_break_spaces_in_query_reason": PrivacyDamage(
        "person", "query_reason",
        _three(f"BSN:\u00a0{write_grouped(MORE_BSNS[0], (3, 3, 3), chr(0xA0))}"),
        "bsn", (MORE_BSNS[0],)),
    "bsn_full_width_in_csv_holder": PrivacyDamage(
        "plate", "holder_pseudonym",
        _three(f"({MORE_BSNS[1].translate(FULL_WIDTH_DIGITS)})"), "bsn",
        (MORE_BSNS[1],), fmt="csv"),
}
"""Privacy damage by name; each writes its values into rows 11, 288, ... of one month."""


def inject_identifier(landing: Path, month: str, damage: PrivacyDamage) -> Path:
    """Write `damage.values` into `damage.column` (created if absent), one per row of
    `damage.rows`, the month first converted to CSV when `damage.fmt` says so."""
    if damage.fmt == "csv" and month_path(landing, damage.query_type, month).suffix != ".csv":
        to_csv(landing, damage.query_type, month)
    frame = load_month(landing, damage.query_type, month)
    assert frame.height > max(damage.rows), "the month is too small for this damage"
    for row, value in zip(damage.rows, damage.values, strict=True):
        frame = set_cells(frame, [row], damage.column, value)
    return save_month(landing, damage.query_type, month, frame)
