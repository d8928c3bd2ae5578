"""Privacy guard: refuse a batch that holds an un-pseudonymised identifier (DESIGN.md §6).

A landing file may only carry pseudonyms (64 lowercase hex characters). Before anything else reads
it, the whole frame is scanned for three kinds of direct identifier:

``bsn``
    A Dutch citizen service number: a run of exactly nine digits, bounded by non-digits or the
    ends of the value, that passes the BSN 11-test (9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 mod 11,
    not all zeros). Searched in every string column, as a whole value and embedded in a longer
    value (free text, an id), and in every integer column as a whole value (a CSV column of
    BSNs is read as integers, losing a leading zero, so 8- and 9-digit integers are tested
    zero-padded to nine digits).
``licence_plate``
    A Dutch licence plate of any sidecode 1–14 (e.g. ``XX-99-99`` … ``999-XX-9``), with or
    without dashes or spaces, in upper or lower case, as the whole value of a pseudonym column.
``email``
    An e-mail address anywhere in the value of any string column.

One match anywhere refuses the whole batch: the caller gets a :class:`RawIdentifierError` that
names the file, the columns, the kind and how many values matched, never a value.

Rules chosen here (documented in docs/validation.md):

- In a pseudonym column a value that fully matches ``^[0-9a-f]{64}$`` *is* a pseudonym and is
  never scanned further. Measured on 1M random pseudonyms, 11.6% contain a run of exactly nine
  decimal digits and 1.1% would pass the 11-test: scanning pseudonyms for embedded BSNs would
  refuse every file. Any other value of a pseudonym column (not 64 lowercase hex) is scanned for
  all three kinds.
- The same holds for machine-made ids: in an ``opaque_id_columns`` column (e.g. ``query_id``
  when the supplier uses UUIDs or hashes) a whole value that is a UUID or 16–128 hex digits is
  not scanned for embedded BSNs (measured: 0.13% of random UUIDs hold a nine-digit run passing
  the 11-test, thousands per month). Other values of such a column are scanned as usual.
- The fraction of seconds of a clock time (``hh:mm:ss.fffffffff``, e.g. a CSV timestamp written
  with nanoseconds) is not a BSN candidate.
- Other string columns are scanned for BSNs and e-mail addresses, not for licence plates: codes
  such as a team code or a query id may legitimately look like a plate (six letters and digits).
- A column *name* that looks like an identifier (a headerless CSV turns its first data row into
  the header) is reported by position (``#3``), never by name.

Pure and Dagster-free; nothing here prints, logs or keeps a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import re
from typing import Literal

import polars as pl

from assets.schema import PSEUDONYM_PATTERN

IdentifierKind = Literal["bsn", "licence_plate", "email"]

BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
"""Weights of the BSN 11-test, first digit first."""

DIGIT_RUN_PATTERN = r"\d+"
EXACT_NINE_DIGITS_PATTERN = r"(?:^|\D)\d{9}(?:\D|$)"
"""Contains a run of exactly nine digits (a prefilter: the regex engine has no lookaround)."""
TIME_FRACTION_PATTERN = r"(\d{2}:\d{2}:\d{2})[.,]\d+"
"""The fraction of seconds of a clock time, removed before the BSN scan."""
OPAQUE_ID_PATTERN = (
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,128})$"
)
"""A whole value that is a machine-made id: a UUID, or 16–128 hex digits."""
EMAIL_PATTERN = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"

# NOTE: sidecodes 1–14 of the RDW, written without separators. A letter is any A–Z: the RDW
# skips vowels and some consonants, but a guard must not miss an old or foreign-issued plate,
# and a false match is only possible in a pseudonym column whose value is not a pseudonym.
_L, _D = "[A-Z]", r"\d"
PLATE_SIDECODES: dict[int, str] = {
    1: "XX-99-99",
    2: "99-99-XX",
    3: "99-XX-99",
    4: "XX-99-XX",
    5: "XX-XX-99",
    6: "99-XX-XX",
    7: "99-XXX-9",
    8: "9-XXX-99",
    9: "XX-999-X",
    10: "X-999-XX",
    11: "XXX-99-X",
    12: "X-99-XXX",
    13: "9-XX-999",
    14: "999-XX-9",
}
"""Dutch licence-plate sidecodes: X is a letter, 9 a digit, dashes as the RDW prints them."""


def _sidecode_regex(layout: str) -> str:
    return "".join(_L if ch == "X" else _D for ch in layout if ch != "-")


PLATE_PATTERN = "^(?:" + "|".join(_sidecode_regex(s) for s in PLATE_SIDECODES.values()) + ")$"
"""Whole-value pattern of a plate after removing dashes and spaces and upper-casing."""


@dataclass(frozen=True)
class IdentifierFinding:
    """How many values of one column look like one kind of identifier; never the values.

    Attributes
    ----------
    column
        Column name, or ``#<position>`` (0-based) when the name itself is the finding.
    kind
        ``"bsn"``, ``"licence_plate"`` or ``"email"``.
    match_count
        Number of values (rows) holding at least one match; 1 for a column name.
    is_header
        True when the column *name* matched (the file probably has no header row).
    """

    column: str
    kind: IdentifierKind
    match_count: int
    is_header: bool = False

    def describe(self) -> str:
        """Say what was found in plain words, with counts and names only."""
        label = {"bsn": "a BSN", "licence_plate": "a licence plate", "email": "an e-mail address"}
        if self.is_header:
            return f"column {self.column}: the column name looks like {label[self.kind]}"
        verb = "value looks" if self.match_count == 1 else "values look"
        return f"column '{self.column}': {self.match_count} {verb} like {label[self.kind]}"


class RawIdentifierError(ValueError):
    """A batch holds an un-pseudonymised identifier and is refused as a whole.

    Carries only the source name and :class:`IdentifierFinding` counts (no frame, no value), so
    that it can be logged, pickled and shown in Dagster's event log.
    """

    def __init__(self, source: str, findings: Iterable[IdentifierFinding]) -> None:
        self.source = source
        self.findings = tuple(findings)
        details = "; ".join(f.describe() for f in self.findings)
        super().__init__(
            f"refused {source}: un-pseudonymised identifiers found ({details}). "
            "The whole batch is refused; no value is shown. Ask the supplier for a "
            "pseudonymised export."
        )

    def __reduce__(self):  # keep pickling (multiprocess executors) to the two safe fields
        return (type(self), (self.source, self.findings))


def is_valid_bsn(value: str | int) -> bool:
    """Tell whether a value is exactly nine digits passing the BSN 11-test (not all zeros).

    An int is zero-padded to nine digits (a BSN with a leading zero read as a number).
    """
    text = f"{value:09d}" if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{9}", text):
        return False
    digits = [int(ch) for ch in text]
    total = sum(w * d for w, d in zip(BSN_WEIGHTS, digits, strict=True))
    return total % 11 == 0 and any(digits)


def is_valid_bsn_expr(number: pl.Expr) -> pl.Expr:
    """Polars expression: whether an integer in 0..999_999_999 passes the BSN 11-test.

    ``number`` is the nine-digit string already cast to an integer (digits are taken
    arithmetically, which is several times faster than slicing strings). Null stays null.
    """
    n = number.cast(pl.Int64)
    weighted = [
        (n // 10 ** (8 - i) % 10) * weight for i, weight in enumerate(BSN_WEIGHTS)
    ]
    total = pl.sum_horizontal(weighted)
    return (total % 11 == 0) & (n > 0) & (n < 1_000_000_000)


def contains_valid_bsn_expr(text: pl.Expr) -> pl.Expr:
    """Polars expression: whether a string holds a run of exactly nine digits passing the 11-test.

    The run must be bounded by non-digits or the ends of the value, so a 10-digit number never
    yields a BSN from its first nine digits.
    """
    runs = text.str.extract_all(DIGIT_RUN_PATTERN)
    return (
        runs.list.eval(
            pl.element()
            .filter(pl.element().str.len_bytes() == 9)
            .pipe(lambda e: is_valid_bsn_expr(e.cast(pl.Int64)))
        )
        .list.any()
        .fill_null(False)
    )


def is_licence_plate_expr(text: pl.Expr) -> pl.Expr:
    """Polars expression: whether a whole value is a Dutch licence plate of sidecode 1–14."""
    normalised = text.str.replace_all(r"[\s\-]", "").str.to_uppercase()
    return normalised.str.contains(PLATE_PATTERN).fill_null(False)


def contains_email_expr(text: pl.Expr) -> pl.Expr:
    """Polars expression: whether a string holds an e-mail address anywhere."""
    return text.str.contains(EMAIL_PATTERN).fill_null(False)


def _count_bsn_values(values: pl.Series) -> int:
    # NOTE: a cheap regex prefilter first (a run of exactly nine digits somewhere); the 11-test
    # then runs only on the digit runs of those few values (≥ 5M rows/s, docs/validation.md).
    frame = values.to_frame("v").with_row_index("row").lazy()
    return int(
        frame.filter(pl.col("v").str.contains(EXACT_NINE_DIGITS_PATTERN))
        # NOTE: nanoseconds of a CSV timestamp ("12:34:56.123456789+01:00") are nine digits.
        .with_columns(pl.col("v").str.replace_all(TIME_FRACTION_PATTERN, "${1}"))
        .select("row", run=pl.col("v").str.extract_all(DIGIT_RUN_PATTERN))
        .explode("run")
        .filter(pl.col("run").str.len_bytes() == 9)
        .filter(is_valid_bsn_expr(pl.col("run").cast(pl.Int64)))
        .select(pl.col("row").n_unique())
        .collect()
        .item()
    )


def _count_bsn_integers(values: pl.Series) -> int:
    frame = values.to_frame("v").lazy()
    # NOTE: 8-digit integers are BSNs with a leading zero lost in a CSV read as numbers.
    in_range = (pl.col("v") >= 10_000_000) & (pl.col("v") <= 999_999_999)
    return int(
        frame.filter(in_range).select(is_valid_bsn_expr(pl.col("v")).sum()).collect().item()
        or 0
    )


def _count_email_values(values: pl.Series) -> int:
    frame = values.to_frame("v").lazy()
    candidates = frame.filter(pl.col("v").str.contains("@", literal=True))
    return int(candidates.select(contains_email_expr(pl.col("v")).sum()).collect().item() or 0)


def _header_findings(columns: list[str]) -> list[IdentifierFinding]:
    names = pl.Series("v", columns, dtype=pl.String)
    findings: list[IdentifierFinding] = []
    checks: tuple[tuple[IdentifierKind, pl.Expr], ...] = (
        ("bsn", contains_valid_bsn_expr(pl.col("v"))),
        ("licence_plate", is_licence_plate_expr(pl.col("v"))),
        ("email", contains_email_expr(pl.col("v"))),
    )
    for kind, expr in checks:
        flags = names.to_frame().select(expr).to_series()
        for position, flagged in enumerate(flags):
            if flagged:
                findings.append(IdentifierFinding(f"#{position}", kind, 1, is_header=True))
    return findings


def scan_for_identifiers(
    frame: pl.DataFrame,
    *,
    pseudonym_columns: Iterable[str] = (),
    opaque_id_columns: Iterable[str] = (),
) -> list[IdentifierFinding]:
    """Find un-pseudonymised identifiers in a frame; one finding per column × kind with a match.

    Parameters
    ----------
    frame
        The batch as read, with every column of the file (scan before selecting columns).
    pseudonym_columns
        Columns that must hold pseudonyms; their 64-hex values are skipped, any other value is
        scanned for BSNs, e-mail addresses and, as a whole value, licence plates. Names not in
        ``frame`` are ignored (the schema check reports missing columns).
    opaque_id_columns
        Columns of machine-made ids whose UUID/hex values skip the embedded-BSN scan.

    Returns
    -------
    list of IdentifierFinding
        Sorted by column position then kind; empty when the batch is clean. Counts only.
    """
    pseudonyms = set(pseudonym_columns)
    opaque_ids = set(opaque_id_columns)
    findings = _header_findings(list(frame.columns))
    for position, (name, dtype) in enumerate(frame.schema.items()):
        column = "#" + str(position) if any(f.column == f"#{position}" for f in findings) else name
        series = frame.get_column(name)
        counts: dict[IdentifierKind, int] = {}
        if dtype.is_integer():
            counts["bsn"] = _count_bsn_integers(series)
        elif dtype.is_float() or dtype.is_decimal():
            # NOTE: an integer column with a missing value is often written as floats.
            whole = series.cast(pl.Float64).drop_nulls().drop_nans()
            whole = whole.filter((whole == whole.floor()) & (whole.abs() < 1e12))
            counts["bsn"] = _count_bsn_integers(whole.cast(pl.Int64))
        elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            text = series.cast(pl.String).drop_nulls()
            if name in pseudonyms:
                # NOTE: a value that is a well-formed pseudonym is never scanned: hex digits
                # contain nine-digit runs passing the 11-test by chance (module docstring).
                text = text.filter(~text.str.contains(PSEUDONYM_PATTERN))
                counts["licence_plate"] = int(
                    text.to_frame("v").select(is_licence_plate_expr(pl.col("v")).sum()).item()
                    or 0
                )
            counts["email"] = _count_email_values(text)
            if name in opaque_ids:
                text = text.filter(~text.str.contains(OPAQUE_ID_PATTERN))
            counts["bsn"] = _count_bsn_values(text)
        for kind in ("bsn", "licence_plate", "email"):
            if counts.get(kind, 0) > 0:
                findings.append(IdentifierFinding(column, kind, counts[kind]))
    order = {name: i for i, name in enumerate(frame.columns)}
    kind_order = {"bsn": 0, "licence_plate": 1, "email": 2}
    return sorted(
        findings,
        key=lambda f: (
            int(f.column[1:]) if f.is_header or f.column not in order else order[f.column],
            not f.is_header,
            kind_order[f.kind],
        ),
    )


def refuse_if_identifiers(
    frame: pl.DataFrame,
    *,
    source: str,
    pseudonym_columns: Iterable[str] = (),
    opaque_id_columns: Iterable[str] = (),
) -> None:
    """Raise :class:`RawIdentifierError` when the batch holds any un-pseudonymised identifier.

    Parameters
    ----------
    frame
        The batch as read (every column of the file).
    source
        What to call the batch in the message, e.g. the landing-zone file path.
    pseudonym_columns
        Columns that must hold pseudonyms (``assets.schema.PSEUDONYM_COLUMNS[query_type]``).
    opaque_id_columns
        Columns of machine-made ids (see :func:`scan_for_identifiers`).
    """
    findings = scan_for_identifiers(
        frame, pseudonym_columns=pseudonym_columns, opaque_id_columns=opaque_id_columns
    )
    if findings:
        raise RawIdentifierError(source, findings)
