"""Reading the landing zone (DESIGN.md §4) into typed polars frames, Parquet or CSV alike.

Every failure raises `InputError` with a message that names the file and the column and counts
rows, never a value: these messages reach logs and the Dagster event log.
"""

from __future__ import annotations

from collections.abc import Iterator
import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.identifiers import refuse_if_identifiers
from assets.schema import (
    ID_COLUMNS,
    MONTH_PATTERN,
    PERSONS,
    POPULATION,
    PSEUDONYM_COLUMNS,
    QUERY_SCHEMAS,
    TEAM_AREAS,
)


class StopcheckError(Exception):
    """An error raised by stopcheck itself: its message is ours and holds no person-level value."""


class InputError(StopcheckError):
    """A landing-zone file is missing, unreadable or breaks the column contract."""


class ConfigError(StopcheckError):
    """A configuration file or setting cannot be used (themes, analysis settings).

    Its message quotes configuration (file names, theme names, team codes, setting values),
    never data, so it is shown in full wherever the error goes.
    """


@dataclass(frozen=True)
class DeliveredFile:
    """A landing file whose bytes already hold its typed table (`read_table`): Parquet with
    exactly the contract's columns, in its order and types, and no key-value metadata but
    Arrow's schema. `size` and `mtime_ns` are the file's as it was read."""

    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ReadResult:
    """A typed frame and the warnings its reading produced (e.g. extra columns ignored);
    `delivered` when the file's own bytes are that frame (`DeliveredFile`)."""

    frame: pl.DataFrame
    warnings: tuple[str, ...] = ()
    delivered: DeliveredFile | None = None


def query_dir(landing: Path, query_type: str) -> Path:
    """Folder of the monthly files of one query type."""
    return Path(landing) / "meos" / f"{query_type}_queries"


def cbs_file(landing: Path, name: str) -> Path:
    """Path of a CBS file (persons, population), Parquet preferred over CSV."""
    return _pick(Path(landing) / "cbs", name)


def team_areas_file(landing: Path) -> Path:
    return Path(landing) / "reference" / "team_areas.csv"


def _pick(folder: Path, stem: str) -> Path:
    candidates = [folder / f"{stem}.parquet", folder / f"{stem}.csv"]
    present = [p for p in candidates if p.exists()]
    if len(present) > 1:
        raise InputError(f"{folder}: both {stem}.parquet and {stem}.csv exist; keep one")
    return present[0] if present else candidates[0]


def list_months(landing: Path) -> list[str]:
    """Export months (YYYY-MM) present in the landing zone, over both query types, sorted."""
    months = set()
    for query_type in QUERY_SCHEMAS:
        folder = query_dir(landing, query_type)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.suffix in (".parquet", ".csv") and re.match(MONTH_PATTERN, path.stem):
                    months.add(path.stem)
    return sorted(months)


def list_unexpected_files(landing: Path) -> list[Path]:
    """Files in the query folders that are not `<YYYY-MM>.parquet` / `.csv` exports (hidden files
    aside): a misnamed month must not be skipped without a word."""
    unexpected = []
    for query_type in QUERY_SCHEMAS:
        folder = query_dir(landing, query_type)
        if folder.is_dir():
            unexpected += [
                path for path in sorted(folder.iterdir())
                if not path.name.startswith(".")
                and not (path.suffix in (".parquet", ".csv") and re.match(MONTH_PATTERN, path.stem))
            ]
    return unexpected


def month_file(landing: Path, query_type: str, month: str) -> Path:
    """The file of one query type and export month (may not exist)."""
    return _pick(query_dir(landing, query_type), month)


def read_table(path: Path, schema: pl.Schema, *, pseudonym_columns: tuple[str, ...] = (),
               id_columns: tuple[str, ...] = ()) -> ReadResult:
    """Read one landing file, refuse it if it holds a raw identifier, and cast it to `schema`.

    The privacy guard (assets.identifiers) sees every column of the file, extra ones included,
    before anything else looks at it. Raises RawIdentifierError for a raw identifier, InputError for a missing or unreadable file, a missing column, or values that do not
    parse as the contract's type (with the count of such values). Extra columns are dropped with
    a warning. An empty file gives an empty frame: whether that is acceptable is the caller's call.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file missing")
    before = path.stat()
    try:
        if path.suffix == ".parquet":
            raw = pl.read_parquet(path)
        else:
            # NOTE: an empty field is null whether quoted or not: writers that quote every field
            # (polars' quote_style="always", Python's csv.QUOTE_ALL) write a null as "".
            raw = _read_csv_strict(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unusable
        # NOTE: only the exception's type is reported: reader messages can quote file content.
        if path.suffix == ".csv" and type(exc).__name__ == "ArrowInvalid":
            raise InputError(f"{path}: unreadable or truncated (malformed CSV: a row with the "
                             "wrong number of fields or an unclosed quote)") from None
        raise InputError(f"{path}: unreadable or truncated ({type(exc).__name__})") from None
    if path.suffix != ".parquet" and not ends_with_line_break(path):
        # NOTE: polars fills the missing fields of a short last row with nulls, so a CSV cut in
        # its last row would still parse, one row shortened: a complete CSV ends with a line break.
        raise InputError(f"{path}: unreadable or truncated (no line break after the last row)")
    guard_identifiers(raw, path, pseudonym_columns, id_columns)
    missing = [c for c in schema if c not in raw.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    extra = [c for c in raw.columns if c not in schema]
    warnings = tuple(f"{path}: extra column {c} ignored" for c in extra)
    frame = raw.select(
        [_cast_column(raw[name], dtype, path) for name, dtype in schema.items()]
    )
    return ReadResult(frame, warnings, _delivered(path, raw, frame, before))


def _delivered(path: Path, raw: pl.DataFrame, frame: pl.DataFrame,
               before: os.stat_result) -> DeliveredFile | None:
    """The file as a `DeliveredFile` when its bytes are `frame`: Parquet read (`raw`) with the
    typed frame's columns, order and types, so that `_cast_column` changed nothing, and no
    key-value metadata but Arrow's schema (nothing beyond the rows goes into the warehouse)."""
    if path.suffix != ".parquet" or list(raw.schema.items()) != list(frame.schema.items()):
        return None
    if set(pl.read_parquet_metadata(path)) - {"ARROW:schema"}:
        return None
    return DeliveredFile(path, before.st_size, before.st_mtime_ns)


def guard_identifiers(raw: pl.DataFrame, path: Path, pseudonym_columns: tuple[str, ...],
                      id_columns: tuple[str, ...] = ()) -> None:
    """The privacy guard (assets.identifiers) as every landing read applies it, on every column of
    the file; `stopcheck check` applies it to sampled rows. Raises RawIdentifierError."""
    refuse_if_identifiers(raw, source=str(path), pseudonym_columns=pseudonym_columns,
                          id_columns=id_columns)


def _read_csv_strict(path: Path) -> pl.DataFrame:
    """Every column as text; a row with too few or too many fields is an error.

    NOTE: pyarrow rather than polars: polars fills the missing fields of a short row with
    nulls, which would turn a damaged row into a valid-looking one.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with path.open(encoding="utf8", newline="") as handle:
        header = next(csv.reader(handle), [])
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
    ))
    return pl.from_arrow(table)


def count_rows(path: Path) -> int:
    """Rows of a landing file, without reading its values: a Parquet file's metadata, a CSV
    file's line breaks less the header. Raises OSError (or pyarrow's error on a damaged Parquet
    file) when the file cannot be read."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    with path.open("rb") as handle:
        # NOTE: counts line breaks: a quoted value holding a line break counts twice; the
        # run's reader counts exactly.
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
    return max(lines - 1, 0)


def ends_with_line_break(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(0, 2)
        if file.tell() == 0:
            return True
        file.seek(-1, 2)
        return file.read(1) == b"\n"


ISO_WITH_OFFSET_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
)
"""An ISO 8601 date and time with offset (Z, +hh, +hhmm or +hh:mm): the CSV timestamp contract."""


def find_type_problem(source: pl.DataType, target: pl.DataType) -> str | None:
    """Why a column of type `source` can never be read as the contract's `target`, or None when it
    can (text and integers then still have to parse: see :func:`read_table`).

    Decided on types alone, so `stopcheck check` judges a Parquet file from its footer.
    """
    if source == pl.Null:
        return None
    if isinstance(source, pl.Categorical | pl.Enum):
        source = pl.String()
    if source == target:
        return None
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime):
        if source.time_zone is None:
            return ("is a timestamp without time zone; "
                    "the contract requires UTC instants (timestamp with tz)")
        return None
    if source == pl.String and (isinstance(target, pl.Datetime) or target == pl.Boolean
                                or target.is_integer()):
        return None
    if target.is_integer() and source.is_integer():
        return None
    return f"has type {source}, expected {target}"


def _cast_column(column: pl.Series, dtype: pl.DataType, path: Path) -> pl.Series:
    name, source = column.name, column.dtype
    problem = find_type_problem(source, dtype)
    if problem:
        raise InputError(f"{path}: column {name} {problem}")
    if source == pl.Null:
        return column.cast(dtype)
    if isinstance(source, pl.Categorical | pl.Enum):
        column, source = column.cast(pl.String), pl.String
    if source == dtype:
        return column
    if isinstance(dtype, pl.Datetime) and isinstance(source, pl.Datetime):
        return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if source == pl.String:
        if isinstance(dtype, pl.Datetime):
            # NOTE: ISO 8601 with offset is the CSV contract; a value without one fails. polars
            # itself would read such a value as a UTC wall time, silently shifting a file of
            # Amsterdam clock times by an hour or two, so it is nulled (and counted) here.
            has_offset = column.str.contains(ISO_WITH_OFFSET_PATTERN)
            cast = pl.DataFrame([
                column.str.to_datetime(time_zone="UTC", time_unit="us", strict=False),
                has_offset.alias("has_offset"),
            ]).select(pl.when("has_offset").then(column.name)).to_series()
            return _checked(column, cast, path, "ISO 8601 timestamps with offset")
        if dtype == pl.Boolean:
            cast = column.str.to_lowercase().replace_strict(
                {"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
            return _checked(column, cast, path, "true/false")
        if dtype.is_integer():
            return _checked(column, column.cast(dtype, strict=False), path, "integers")
    # NOTE: find_type_problem lets nothing else through.
    return _checked(column, column.cast(dtype, strict=False), path, "integers in range")


def _checked(before: pl.Series, after: pl.Series, path: Path, what: str) -> pl.Series:
    bad = int((before.is_not_null() & after.is_null()).sum())
    if bad:
        raise InputError(f"{path}: column {before.name}: {bad} value(s) are not {what}")
    return after.alias(before.name)


def read_query_month(landing: Path, query_type: str, month: str) -> ReadResult:
    """Read the monthly export of one query type, typed (`read_table`); an empty month is an
    error."""
    path = month_file(landing, query_type, month)
    result = read_table(path, QUERY_SCHEMAS[query_type],
                        pseudonym_columns=PSEUDONYM_COLUMNS[query_type], id_columns=ID_COLUMNS)
    if result.frame.height == 0:
        raise InputError(f"{path}: empty month (0 rows)")
    return result


_ID_RANGES: dict[tuple[str, int, int], tuple[str, str] | None] = {}
"""[smallest, largest] query_id of a landing file (None: no id), by (path, size, mtime_ns)."""


def _id_range(ids: pl.Series) -> tuple[str, str] | None:
    ids = ids.drop_nulls()
    return (ids.min(), ids.max()) if ids.len() else None


def _disjoint(first: tuple[str, str] | None, second: tuple[str, str] | None) -> bool:
    return first is None or second is None or first[1] < second[0] or second[1] < first[0]


def iter_earlier_query_ids(landing: Path, query_type: str, month: str, *,
                           overlapping: pl.Series | None = None) -> Iterator[pl.Series]:
    """query_id of the rows of each month before `month`, one Series per month, for the
    cross-month uniqueness rule.

    With `overlapping` (the ids of `month`), a month is left out when all its ids sort below the
    smallest or above the largest of them: it cannot share an id with `month`.

    NOTE: read from the landing zone rather than the warehouse so that a month's result never
    depends on which other partitions happen to be materialised: the earlier month keeps an id.
    One month at a time, so memory does not grow with the history (46M earlier ids held at
    once took 3.2 GB at 50M person queries a year; one month at a time 0.8 GB, as fast).
    Each month's [smallest, largest] id is remembered for the process, keyed by the file's path,
    size and modification time, so a run over a year reads each earlier month once when ids do
    not overlap between months (as with ids that carry their month or a running number), instead
    of every earlier month again for every month (docs/performance.md).
    """
    current = None if overlapping is None else _id_range(overlapping.cast(pl.String))
    for earlier in list_months(landing):
        if earlier >= month:
            continue
        try:
            # NOTE: inside the try: an earlier month delivered twice (.parquet and .csv) fails in
            # its own partition, like an unreadable one, and must not fail this month too.
            path = month_file(landing, query_type, earlier)
            if not path.exists():
                continue
            stat = path.stat()
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
            if overlapping is not None and key in _ID_RANGES and _disjoint(_ID_RANGES[key], current):
                continue
            if path.suffix == ".parquet":
                ids = pl.read_parquet(path, columns=["query_id"])["query_id"].cast(pl.String)
            else:
                ids = pl.read_csv(path, columns=["query_id"], infer_schema=False,
                                  null_values=[""])["query_id"]
        except Exception:  # noqa: BLE001 - an unreadable earlier month fails in its own partition
            continue
        ids = ids.drop_nulls()
        _ID_RANGES[key] = _id_range(ids)
        if overlapping is not None and _disjoint(_ID_RANGES[key], current):
            continue
        yield ids


def read_persons(landing: Path) -> ReadResult:
    return read_table(cbs_file(landing, "persons"), PERSONS, pseudonym_columns=("pseudonym",))


def read_population(landing: Path) -> ReadResult:
    return read_table(cbs_file(landing, "population"), POPULATION)


def read_team_areas(landing: Path) -> ReadResult:
    return read_table(team_areas_file(landing), TEAM_AREAS)
