"""Privacy guard: refuse a batch that holds an un-pseudonymised identifier (DESIGN.md §6).

A landing file may only carry pseudonyms (64 lowercase hex characters). Before anything else reads
it, every column is scanned for three kinds of direct identifier, in the forms people write them:

``bsn``
    A Dutch citizen service number: nine digits passing the BSN 11-test (9·d1 + 8·d2 + … +
    2·d8 − 1·d9 ≡ 0 mod 11, not all zeros), bounded by non-digits, written plain
    (``123456782``) or grouped 4-2-3, 3-3-3 or 3-2-2-2 with a dot, space, dash, slash or
    comma between the groups (``1234.56.782``, ``123 456 782``, ``123 - 45 - 67 - 82``),
    anywhere in any string.
    Eight digits that pass the 11-test with a leading zero restored (a BSN that went through a
    number column) count in integer columns, in pseudonym columns, as the whole value of an id
    column, and anywhere after a label (``BSN 12345672``, ``sofinr: 12.345.672``); not otherwise
    in free text, where about one date in eleven (``20250115``) would pass.
``licence_plate``
    A Dutch licence plate of a sidecode 1–14 (``XX-99-99`` … ``999-XX-9``, e.g. ``GH-452-K``)
    as a token bounded by non-alphanumerics, with dashes or spaces at both of the sidecode's dash
    positions or without separators, in any case, in every string column; and the whole value of
    a pseudonym column with any separators and any letters.
``email``
    An e-mail address anywhere in any string column.

Text is read as people type it: a value with a non-ASCII character is first brought to Unicode
NFKC (full-width digits and letters, non-breaking and thin spaces), stripped of invisible format
characters (zero-width space, soft hyphen) and its digits of other scripts mapped to 0–9.

One match anywhere refuses the whole batch: :func:`refuse_if_identifiers` raises a
:class:`RawIdentifierError` that names the file, the columns, the kind and how many values
matched, never a value. Each rule and its measured false-positive rate is in docs/validation.md.

Pure and Dagster-free; nothing here prints, logs or keeps a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import functools
import re
import sys
import unicodedata
from typing import Literal

import polars as pl

from assets.schema import PSEUDONYM_PATTERN

IdentifierKind = Literal["bsn", "licence_plate", "email"]
KINDS: tuple[IdentifierKind, ...] = ("bsn", "licence_plate", "email")

BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
"""Weights of the BSN 11-test, first digit first."""

# --------------------------------------------------------------------------- patterns

BSN_SEPARATOR = r"(?:[\s.,]|\s?[/\-\u2010-\u2015\u2212]\s?|\s{2})"
"""Between digit groups of a written BSN: a space, dot or comma, a dash or slash with or without
spaces around it, or two spaces (after NFKC a no-break space is a space)."""

BSN_GROUPINGS: tuple[tuple[int, ...], ...] = ((9,), (4, 2, 3), (3, 3, 3), (3, 2, 2, 2))
"""Digit groups of a nine-digit BSN as written: plain, 1234.56.782, 123.456.782, 123.45.67.82."""
EIGHT_DIGIT_GROUPINGS: tuple[tuple[int, ...], ...] = ((8,), (2, 3, 3))
"""A BSN that lost its leading zero in a number column: 12345672, or 12.345.672 as a spreadsheet
shows it with thousands separators."""


def _grouping_pattern(groupings: tuple[tuple[int, ...], ...]) -> str:
    return "|".join(BSN_SEPARATOR.join(f"[0-9]{{{n}}}" for n in g) for g in groupings)


DIGIT_GROUPS_PATTERN = rf"[0-9]+(?:{BSN_SEPARATOR}[0-9]+)*"
"""A maximal run of digit groups joined by single separators (bounded by construction)."""
TIME_FRACTION_PATTERN = r"([0-9]:[0-9]{2})[.,][0-9]+"
"""The fraction of seconds of a clock time (12:34:56.123456789), removed before the BSN scan."""
NOT_A_TIME_FRACTION = (
    r"(?:^|[^0-9.,]|(?:^|[^0-9])[.,]|(?:^|[^0-9])[0-9][.,]|(?:^|[^:0-9])[0-9]{2}[.,]"
    r"|[0-9]{3}[.,]|(?:^|[^0-9]):[0-9]{2}[.,])"
)
"""What may stand before nine digits that are not a clock time's fraction (the left context
TIME_FRACTION_PATTERN does not match), written without lookbehind."""
INTERNATIONAL_PHONE_PATTERN = r"(?:\+|00)31[\s\-]?(?:\(0\)[\s\-]?)?[0-9]{9}"
"""A Dutch phone number with country code: its nine national digits (+31 612345678) are not a
BSN, removed before the BSN scan."""
BSN_LABEL_PATTERN = r"(?i:bsn|sofi|burgerservice)"
LABELLED_EIGHT_PATTERN = (
    rf"{BSN_LABEL_PATTERN}[\p{{L}}\-]*[^\p{{L}}\p{{N}}]{{0,3}}"
    rf"(?:{_grouping_pattern(EIGHT_DIGIT_GROUPINGS)})(?:[^0-9]|$)"
)
"""An eight-digit number right after a BSN label (bsn, sofinummer, burgerservicenummer)."""
WHOLE_EIGHT_PATTERN = (
    rf"^[\s\"'(\[]*({_grouping_pattern(EIGHT_DIGIT_GROUPINGS)})(?:[.,]0+)?[\s\"')\]]*$"
)
"""A whole value that is an eight-digit number (in quotes or brackets, with a ``.0`` tail)."""
OPAQUE_ID_PATTERN = (
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,128})$"
)
"""A whole value that is a machine-made id: a UUID, or 16–128 hex digits."""
INTEGER_TEXT_PATTERN = r"^\s*[\"']?\s*[+-]?([0-9]+)(?:[.,]0+)?\s*[\"']?\s*$"
"""A whole number written as text (its digits are group 1): every value of a CSV column of
numbers looks like this."""
DATE_RANGE = (1900, 2100)
"""Eight digits that read as a date yyyymmdd or ddmmyyyy in these years may be a date."""
HEX_LIKE_PATTERN = r"^[0-9a-fA-F]{16,}$"
"""A malformed pseudonym (hex of the wrong length or case): quarantined, not refused."""
EMAIL_PATTERN = r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.\p{L}{2,}"

# NOTE: sidecodes 1–14 of the RDW. Since sidecode 4 (1978) the RDW issues no vowels, apart from
# an O that begins a trailer's plate; sidecodes 1–3 used every letter. In free text the vowel
# rule keeps "1 tot 25" or "3 uur 15" from being read as a plate; a pseudonym column, where any
# value that is not a pseudonym is wrong anyway, accepts every letter A–Z.
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
VOWEL_FREE_SIDECODES = range(4, 15)
UNSEPARATED_AMBIGUOUS_SIDECODES = (1, 2)
"""Without separators, 9999XX is a postcode (1012AB) and XX9999 a flight or file number
(KL1234, PV2025): in free text these two sidecodes count only with separators."""
_LETTER_ANY, _LETTER_RDW, _FIRST_LETTER_RDW = "[A-Z]", "[B-DF-HJ-NP-TV-Z]", "[B-DF-HJ-TV-Z]"
_DASH = r"[\-\u2010-\u2015]"
_ALNUM = r"\p{L}\p{N}"


def _sidecode_regex(sidecode: int, separator: str) -> str:
    """One sidecode with `separator` at its dash positions; letters as the RDW issues them."""
    groups = []
    for position, group in enumerate(PLATE_SIDECODES[sidecode].split("-")):
        chars = []
        for offset, ch in enumerate(group):
            if ch == "9":
                chars.append("[0-9]")
            elif sidecode not in VOWEL_FREE_SIDECODES:
                chars.append(_LETTER_ANY)
            else:
                chars.append(_FIRST_LETTER_RDW if position == offset == 0 else _LETTER_RDW)
        groups.append("".join(chars))
    return separator.join(groups)


def _alternatives(separator: str, sidecodes: Iterable[int]) -> str:
    return "|".join(_sidecode_regex(s, separator) for s in sidecodes)


PLATE_PATTERN = "^(?:" + "|".join(
    PLATE_SIDECODES[s].replace("-", "").replace("X", _LETTER_ANY).replace("9", "[0-9]")
    for s in PLATE_SIDECODES
) + ")$"
"""Whole-value pattern of a plate after removing separators (space, dash, dot, underscore,
slash) and upper-casing."""
# NOTE: a plate is a token: bounded by non-alphanumerics, with the same kind of separator at
# both dash positions or none. A dashed plate must not continue a chain of dashed parts
# ("op 01-01-2000", "PV-24-05-123" are not plates). Spaced, an old sidecode (1–3, any letters)
# counts only in capitals: "om 12 30", "op 12 05" are words and numbers.
_SPACE = r"\s"
_UNSEPARATED_IN_TEXT = [s for s in PLATE_SIDECODES if s not in UNSEPARATED_AMBIGUOUS_SIDECODES]
_BOUNDARY, _DASH_BOUNDARY = f"[^{_ALNUM}]", f"[^{_ALNUM}{_DASH[1:-1]}]"
PLATE_IN_TEXT_PATTERN = (
    "(?i)"
    f"(?:(?:^|{_DASH_BOUNDARY})(?:{_alternatives(_DASH, PLATE_SIDECODES)})"
    f"(?:$|{_DASH_BOUNDARY}|{_DASH}(?:$|{_BOUNDARY})))"
    f"|(?:(?:^|{_BOUNDARY})(?:"
    f"(?-i:{_alternatives(_SPACE, (1, 2, 3))})|{_alternatives(_SPACE, VOWEL_FREE_SIDECODES)}"
    f"|{_alternatives('', _UNSEPARATED_IN_TEXT)}"
    f")(?:$|{_BOUNDARY}))"
)
"""A plate as a token in free text, any case (rules in the NOTE above and docs/validation.md)."""


# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- the 11-test


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


# --------------------------------------------------------------------------- text as typed


@functools.cache
def _other_script_digits() -> dict[str, str]:
    """Every Unicode decimal digit outside ASCII (Arabic-Indic, Devanagari, …) → 0–9."""
    # NOTE: computed once, on the first value with a non-ASCII character (~0.3 s).
    every = "".join(map(chr, range(128, sys.maxunicode + 1)))
    return {ch: str(unicodedata.decimal(ch)) for ch in re.findall(r"\d", every)}


def _normalise(text: pl.Expr) -> pl.Expr:
    """Bring typed text to the form the patterns read: NFKC, no format characters, ASCII digits.

    Only values with a non-ASCII character change (NFKC leaves ASCII alone), so it is applied
    to those values only.
    """
    return (
        text.str.normalize("NFKC")
        .str.replace_all(r"\p{Cf}", "")
        .str.replace_many(_other_script_digits())
    )


def _typed_values(text: pl.Series) -> pl.DataFrame:
    """`text` as (``row``, ``v``): its position and its value, normalised if not ASCII."""
    frame = text.to_frame("v").with_row_index("row")
    # NOTE: byte and character lengths differ exactly when a value holds a non-ASCII character
    # (measured 4× cheaper than a regex).
    non_ascii = frame["v"].str.len_bytes() != frame["v"].str.len_chars()
    if non_ascii.any():
        frame = pl.concat([frame.filter(~non_ascii),
                           frame.filter(non_ascii).with_columns(_normalise(pl.col("v")))])
    return frame


# --------------------------------------------------------------------------- detectors


def _bounded(pattern: str) -> str:
    """`pattern` bounded by non-digits or the ends of the value (no lookaround in polars)."""
    return f"(?:^|[^0-9])(?:{pattern})(?:[^0-9]|$)"


def _without_other_numbers(values: pl.LazyFrame) -> pl.LazyFrame:
    """Remove nine-digit numbers that are not BSNs by their context: the nanoseconds of a CSV
    timestamp (12:34:56.123456789+01:00) and a phone number after +31."""
    return values.with_columns(
        pl.col("v").str.replace_all(TIME_FRACTION_PATTERN, "${1}")
        .str.replace_all(INTERNATIONAL_PHONE_PATTERN, ""))


def _plain_bsn_rows(values: pl.LazyFrame, *, eight_digit_runs: bool) -> pl.LazyFrame:
    """Rows (column ``row``) of ``values`` (``row``, ``v``, ``eight``) holding a run of exactly
    nine digits passing the 11-test; or of eight, with a zero in front, where ``eight``."""
    runs = "[0-9]{8,9}" if eight_digit_runs else "[0-9]{9}"
    run = pl.col("run")
    return (
        values.filter(pl.col("v").str.contains(_bounded(runs)))
        .pipe(_without_other_numbers)
        .select("row", "eight", run=pl.col("v").str.extract_all("[0-9]+"))
        .explode("run")
        .filter((run.str.len_bytes() == 9) | ((run.str.len_bytes() == 8) & pl.col("eight")))
        .filter(is_valid_bsn_expr(run.cast(pl.Int64)))
        .select("row")
    )


def _grouped_bsn_rows(values: pl.LazyFrame, *, eight_digit_runs: bool) -> pl.LazyFrame:
    """Rows of ``values`` holding a BSN written in digit groups (1234.56.782, 123 456 782,
    123-45-67-82; 12.345.672 with a zero in front where ``eight``).

    Every maximal run of digit groups is cut into its groups; a window of consecutive groups
    in one of the groupings is a candidate (so "123 456 782 10 keer" holds one).
    """
    groupings = [g for g in BSN_GROUPINGS + (EIGHT_DIGIT_GROUPINGS if eight_digit_runs else ())
                 if len(g) > 1]
    groups = (
        values.filter(pl.col("v").str.contains(_bounded(_grouping_pattern(tuple(groupings)))))
        .pipe(_without_other_numbers)
        .select("row", "eight", run=pl.col("v").str.extract_all(DIGIT_GROUPS_PATTERN))
        .explode("run")
        .drop_nulls("run")
        .with_row_index("run_id")
        .select("row", "eight", "run_id", group=pl.col("run").str.extract_all("[0-9]+"))
        .explode("group")
    )
    # NOTE: the group k places further in the frame, if it is in the same run (a plain shift:
    # shift().over(run) and list.shift were 50-100× slower on 500k runs).
    same_run = [pl.col("run_id").shift(-k) == pl.col("run_id") for k in range(4)]
    following = [pl.col("group").shift(-k) for k in range(4)]
    lengths = [g.str.len_bytes() for g in following]
    candidates = []
    for grouping in groupings:
        fits = pl.all_horizontal(
            [(lengths[k] == n) & same_run[k] for k, n in enumerate(grouping)]
            + ([pl.col("eight")] if sum(grouping) == 8 else [])
        )
        digits = pl.concat_str(following[: len(grouping)])
        if sum(grouping) == 8:
            digits = pl.lit("0") + digits
        # NOTE: select before filtering: the shifts must see every group of the run.
        candidates.append(groups.select("row", candidate=pl.when(fits).then(digits))
                          .drop_nulls("candidate"))
    return (
        pl.concat(candidates)
        .filter(is_valid_bsn_expr(pl.col("candidate").cast(pl.Int64)))
        .select("row")
    )


def _labelled_eight_rows(values: pl.LazyFrame) -> pl.LazyFrame:
    """Rows holding an eight-digit number passing the 11-test right after a BSN label."""
    return (
        values.filter(pl.col("v").str.contains(BSN_LABEL_PATTERN))
        .select("row", hit=pl.col("v").str.extract_all(LABELLED_EIGHT_PATTERN))
        .explode("hit")
        .drop_nulls("hit")
        .with_columns(number=pl.lit("0") + pl.col("hit").str.replace_all("[^0-9]", ""))
        .filter(is_valid_bsn_expr(pl.col("number").cast(pl.Int64)))
        .select("row")
    )


def _whole_eight_rows(values: pl.LazyFrame) -> pl.LazyFrame:
    """Rows whose whole value is an eight-digit number passing the 11-test with a leading 0."""
    number = pl.col("v").str.extract(WHOLE_EIGHT_PATTERN, 1).str.replace_all("[^0-9]", "")
    return (
        values.filter(pl.col("v").str.contains(WHOLE_EIGHT_PATTERN))
        .filter(is_valid_bsn_expr((pl.lit("0") + number).cast(pl.Int64)))
        .select("row")
    )


ColumnRole = Literal["text", "pseudonym", "id", "opaque_id"]


@functools.cache
def _candidate_pattern(role: ColumnRole) -> str:
    """One regex that every value holding an identifier matches (and few others): the whole
    column is read once; the rules then run on the candidates only."""
    nine = f"{NOT_A_TIME_FRACTION}[0-9]{{9}}(?:[^0-9]|$)"
    parts = [nine, _bounded(_grouping_pattern(BSN_GROUPINGS[1:])), PLATE_IN_TEXT_PATTERN, "@",
             BSN_LABEL_PATTERN]
    if role == "id":
        parts.append(WHOLE_EIGHT_PATTERN)
    return "|".join(f"(?:{part})" for part in parts)


def _candidates(text: pl.Series, role: ColumnRole) -> pl.DataFrame:
    """(``row``, ``v``) of the values of one string column that may hold an identifier; ``row``
    counts the non-null values."""
    text = text.cast(pl.String).drop_nulls()
    if role == "pseudonym":
        # NOTE: a value that is a well-formed pseudonym is never scanned: hex digits contain
        # nine-digit runs passing the 11-test by chance (docs/validation.md). Any other value
        # of a pseudonym column is a candidate.
        return _typed_values(text.filter(~text.str.contains(PSEUDONYM_PATTERN)))
    return _typed_values(text).filter(pl.col("v").str.contains(_candidate_pattern(role)))


def _rows_by_kind(candidates: pl.DataFrame, role: ColumnRole
                  ) -> dict[IdentifierKind, pl.LazyFrame]:
    """Positions (column ``row``) of the candidates holding each kind of identifier, by the
    rules of `role`; a position may appear more than once."""
    frame = candidates.lazy()
    plate = pl.col("v").str.contains(PLATE_IN_TEXT_PATTERN)
    if role == "pseudonym":
        whole = pl.col("v").str.replace_all(r"[\s\-._/]", "").str.to_uppercase()
        plate = plate | whole.str.contains(PLATE_PATTERN)
    email = pl.col("v").str.contains(EMAIL_PATTERN)

    scanned = frame
    if role == "opaque_id":
        # NOTE: UUIDs and hashes hold nine-digit runs passing the 11-test by chance (0.13%).
        scanned = frame.filter(~pl.col("v").str.contains(OPAQUE_ID_PATTERN))
    # NOTE: eight digits anywhere only in a pseudonym column, where any value that is not a
    # pseudonym is wrong; not in a malformed hex pseudonym, which goes to quarantine.
    eight = role == "pseudonym"
    scanned = scanned.with_columns(
        eight=pl.lit(eight) & ~pl.col("v").str.contains(HEX_LIKE_PATTERN))
    bsn = [_plain_bsn_rows(scanned, eight_digit_runs=eight),
           _grouped_bsn_rows(scanned, eight_digit_runs=eight), _labelled_eight_rows(frame)]
    if role == "id":
        bsn.append(_whole_eight_rows(frame))
    return {"bsn": pl.concat(bsn), "licence_plate": frame.filter(plate).select("row"),
            "email": frame.filter(email).select("row")}


def _count_text(values: pl.Series, role: ColumnRole) -> dict[IdentifierKind, int]:
    """Values of one string column holding each kind of identifier, by the rules of `role`."""
    candidates = _candidates(values, role)
    if candidates.height == 0:
        return {}
    rows = _rows_by_kind(candidates, role)
    counted = pl.collect_all([rows[kind].select(pl.col("row").n_unique()) for kind in KINDS])
    return {kind: int(frame.item()) for kind, frame in zip(KINDS, counted, strict=True)}


def _are_dates(eight_digits: pl.Series) -> bool:
    """Whether every eight-digit string reads as a date yyyymmdd or ddmmyyyy in DATE_RANGE: a
    column of dates written as numbers, not of BSNs that lost their leading zero."""
    frame = eight_digits.to_frame("v")
    as_date = [pl.col("v").str.to_date(fmt, strict=False).dt.year().is_between(*DATE_RANGE)
               for fmt in ("%Y%m%d", "%d%m%Y")]
    return bool(frame.select(pl.any_horizontal(as_date).fill_null(False).all()).item())


def _count_integers(values: pl.Series) -> int:
    # NOTE: 8-digit integers are BSNs with a leading zero lost in a CSV read as numbers,
    # unless every one of them is a date (20250115): then only 9-digit ones count.
    eight = values.filter((values >= 10_000_000) & (values <= 99_999_999))
    lowest = 100_000_000 if eight.len() and _are_dates(eight.cast(pl.String)) else 10_000_000
    frame = values.to_frame("v").lazy()
    in_range = (pl.col("v") >= lowest) & (pl.col("v") <= 999_999_999)
    return int(
        frame.filter(in_range).select(is_valid_bsn_expr(pl.col("v")).sum()).collect().item()
        or 0
    )


def _leaf_series(series: pl.Series) -> list[pl.Series]:
    """The scalar columns inside a nested one (list, array, struct), named as the outer one."""
    dtype = series.dtype
    if isinstance(dtype, pl.List | pl.Array):
        inner = series.list.explode() if isinstance(dtype, pl.List) else series.arr.explode()
        return _leaf_series(inner.alias(series.name))
    if isinstance(dtype, pl.Struct):
        fields = series.struct.unnest()
        return [leaf for name in fields.columns
                for leaf in _leaf_series(fields[name].alias(series.name))]
    if dtype == pl.Binary:
        try:
            return [series.cast(pl.String)]
        except pl.exceptions.ComputeError:
            # NOTE: not all UTF-8: decoded value by value, bad bytes replaced (rare and slow).
            return [pl.Series(series.name, [None if b is None else b.decode("utf-8", "replace")
                                            for b in series], dtype=pl.String)]
    return [series]


def _is_number_column(text: pl.Series) -> bool:
    """Whether every value of a string column is a whole number (a CSV column of numbers) and
    its eight-digit ones are not all dates (as for an integer column)."""
    text = text.cast(pl.String).drop_nulls()
    # NOTE: the first thousand values decide for almost every column at no cost.
    if text.len() == 0 or not text.head(1000).str.contains(INTEGER_TEXT_PATTERN).all():
        return False
    if not text.str.contains(INTEGER_TEXT_PATTERN).all():
        return False
    digits = text.str.extract(INTEGER_TEXT_PATTERN, 1)
    eight = digits.filter(digits.str.len_bytes() == 8)
    return eight.len() == 0 or not _are_dates(eight)


def _column_role(name: str, series: pl.Series, role: ColumnRole) -> ColumnRole:
    """`role`, or "id" for a text column named after a BSN or holding only whole numbers.

    NOTE: a CSV is read as text, so a CSV column of BSNs that lost their leading zero is a
    column of eight-digit strings: it gets the rule of an integer column (a whole value of
    eight digits counts), as it would in Parquet. So does a column called bsn, sofinummer, ….
    """
    if role != "text" or not (series.dtype == pl.String or isinstance(
            series.dtype, pl.Categorical | pl.Enum)):
        return role
    if re.search(BSN_LABEL_PATTERN, name) or _is_number_column(series):
        return "id"
    return role


def _count_column(series: pl.Series, role: ColumnRole) -> dict[IdentifierKind, int]:
    counts: dict[IdentifierKind, int] = {}
    for leaf in _leaf_series(series):
        dtype = leaf.dtype
        if dtype.is_integer():
            found = {"bsn": _count_integers(leaf)}
        elif dtype.is_float() or dtype.is_decimal():
            # NOTE: an integer column with a missing value is often written as floats.
            whole = leaf.cast(pl.Float64).drop_nulls().drop_nans()
            whole = whole.filter((whole == whole.floor()) & (whole.abs() < 1e12))
            found = {"bsn": _count_integers(whole.cast(pl.Int64))}
        elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
            found = _count_text(leaf, role)
        else:
            found = {}
        for kind, count in found.items():
            counts[kind] = counts.get(kind, 0) + count
    return counts


# --------------------------------------------------------------------------- the guard


def scan_for_identifiers(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    pseudonym_columns: Iterable[str] = (),
    id_columns: Iterable[str] = (),
    opaque_id_columns: Iterable[str] = (),
) -> list[IdentifierFinding]:
    """Find un-pseudonymised identifiers in a frame; one finding per column × kind with a match.

    Parameters
    ----------
    frame
        The batch as read, with every column of the file (scan before selecting columns). A
        LazyFrame is collected one column at a time (cheap for a Parquet scan).
    pseudonym_columns
        Columns that must hold pseudonyms; their 64-hex values are skipped, any other value is
        scanned for every kind, for eight-digit BSNs and, as a whole value, for plates with any
        letters. Names not in ``frame`` are ignored (the schema check reports missing columns).
    id_columns
        Columns of supplier-made ids (``query_id``): a whole value of eight digits passing the
        11-test with a leading zero counts as a BSN.
    opaque_id_columns
        Columns of machine-made ids whose UUID/hex values skip the BSN scan.

    Returns
    -------
    list of IdentifierFinding
        Sorted by column position then kind; empty when the batch is clean. Counts only.
    """
    roles: dict[str, ColumnRole] = {name: "id" for name in id_columns}
    roles |= {name: "opaque_id" for name in opaque_id_columns}
    roles |= {name: "pseudonym" for name in pseudonym_columns}
    names = list(frame.collect_schema().names())
    findings = _header_findings(names)
    named_by_position = {f.column for f in findings}

    def count(name: str) -> dict[IdentifierKind, int]:
        series = (frame.select(name).collect().to_series() if isinstance(frame, pl.LazyFrame)
                  else frame.get_column(name))
        return _count_column(series, _column_role(name, series, roles.get(name, "text")))

    # NOTE: the columns side by side in threads (polars releases the GIL while it scans): a
    # column's scan is a few sequential regex passes, so one column at a time used one processor
    # (a 4.2M-row month at 50M queries a year: 1.46 s, side by side 0.89 s). As many threads as
    # polars has processors (its pool follows the CPU affinity); not `available_processors`,
    # whose package would make the guard import the statistics (1.1 s more for `stopcheck
    # check`). The counts are per column, gathered in column order, so the findings do not
    # depend on which thread scanned what.
    with ThreadPoolExecutor(pl.thread_pool_size()) as pool:
        column_counts = list(pool.map(count, names))
    for position, (name, counts) in enumerate(zip(names, column_counts, strict=True)):
        column = f"#{position}" if f"#{position}" in named_by_position else name
        findings += [IdentifierFinding(column, kind, counts[kind])
                     for kind in KINDS if counts.get(kind, 0) > 0]
    order = {name: i for i, name in enumerate(names)}
    return sorted(
        findings,
        key=lambda f: (
            int(f.column[1:]) if f.is_header or f.column not in order else order[f.column],
            not f.is_header,
            KINDS.index(f.kind),
        ),
    )


def _header_findings(names: list[str]) -> list[IdentifierFinding]:
    """A column *name* that looks like an identifier (a headerless CSV's first row)."""
    rows = _rows_by_kind(_candidates(pl.Series(names, dtype=pl.String), "text"), "text")
    positions = pl.collect_all([rows[kind].unique() for kind in KINDS])
    return [IdentifierFinding(f"#{position}", kind, 1, is_header=True)
            for kind, found in zip(KINDS, positions, strict=True)
            for position in found["row"].sort()]


def refuse_if_identifiers(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    source: str,
    pseudonym_columns: Iterable[str] = (),
    id_columns: Iterable[str] = (),
    opaque_id_columns: Iterable[str] = (),
) -> None:
    """Raise :class:`RawIdentifierError` when the batch holds any un-pseudonymised identifier.

    The one entry point of the guard: the pipeline's read path (assets.frames.read_table) and
    the pre-flight check call it on every landing file as read.

    Parameters
    ----------
    frame
        The batch as read (every column of the file).
    source
        What to call the batch in the message, e.g. the landing-zone file path.
    pseudonym_columns, id_columns, opaque_id_columns
        Column roles (see :func:`scan_for_identifiers`), e.g.
        ``assets.schema.PSEUDONYM_COLUMNS[query_type]`` and ``assets.schema.ID_COLUMNS``.

    Raises
    ------
    RawIdentifierError
        With ``source`` and ``findings`` (column, kind, count): never a value.
    """
    findings = scan_for_identifiers(
        frame, pseudonym_columns=pseudonym_columns, id_columns=id_columns,
        opaque_id_columns=opaque_id_columns,
    )
    if findings:
        raise RawIdentifierError(source, findings)
