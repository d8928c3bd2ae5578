"""The privacy guard catches identifiers as people write them (issue 16) and leaves codes alone.

Property tests: hypothesis writes BSNs and licence plates the way a supplier's export holds them
(grouped with dots, spaces, dashes, slashes, no-break spaces; eight digits after a trip through a
number column; full-width or Arabic-Indic digits; plates in any sidecode, case and separator,
inside free text) and asserts that the batch is refused. It also writes what a clean export holds
(pseudonyms, team, buurt and wijk codes, query ids, dates, timestamps, postcodes, phone numbers)
and asserts that none of it is refused.

The formats are written out here, independently of assets.identifiers: the sidecodes from the
RDW's list, the BSN groupings from how Dutch forms print them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import re
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st
import polars as pl
import pytest

from assets.identifiers import (
    IdentifierFinding,
    RawIdentifierError,
    is_valid_bsn,
    refuse_if_identifiers,
    scan_for_identifiers,
)
from tests.corpus import BSN_WEIGHTS as WEIGHTS
from tests.corpus import write_grouped

SETTINGS = settings(max_examples=200, deadline=None)
PERSON_PSEUDONYMS = ("officer_pseudonym", "subject_pseudonym")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH_ALL = {ord(ch): ord(ch) - 0x21 + 0xFF01
                  for ch in string.ascii_letters + string.digits + "-"}


def passes_11_test(digits: str) -> bool:
    total = sum(w * int(d) for w, d in zip(WEIGHTS, digits, strict=True))
    return total % 11 == 0 and int(digits) > 0


@st.composite
def bsns(draw: st.DrawFn, *, leading_zero: bool = False) -> str:
    """Nine digits passing the 11-test; with `leading_zero`, the first digit is 0."""
    head = [0] if leading_zero else [draw(st.integers(0, 9))]
    head += draw(st.lists(st.integers(0, 9), min_size=7, max_size=7))
    check = sum(w * d for w, d in zip(WEIGHTS, head, strict=False)) % 11
    assume(check <= 9 and any(head))
    return "".join(map(str, [*head, check]))


@st.composite
def non_bsns(draw: st.DrawFn) -> str:
    digits = "".join(map(str, draw(st.lists(st.integers(0, 9), min_size=9, max_size=9))))
    assume(not passes_11_test(digits))
    return digits


GROUPINGS = ((9,), (4, 2, 3), (3, 3, 3), (3, 2, 2, 2))
"""1234567882, 1234.56.782, 123 456 782, 123-45-67-82."""
SEPARATORS = (".", " ", "-", "/", ",", "\u00a0", "\u202f", "\u2009", "\u2011", "\u2013", " - ",
              " / ", "  ")
"""Dot, space, dash, slash, comma, no-break space, narrow no-break space, thin space,
non-breaking hyphen, en dash (what a word processor or a spreadsheet puts between groups), a
dash or slash between spaces, two spaces."""


@st.composite
def written(draw: st.DrawFn, numbers: st.SearchStrategy[str]) -> str:
    """A nine-digit number as a person writes it: grouped, maybe in other digits."""
    text = write_grouped(draw(numbers), draw(st.sampled_from(GROUPINGS)),
                         draw(st.sampled_from(SEPARATORS)))
    script = draw(st.sampled_from(["ascii"] * 4 + ["full-width", "arabic-indic"]))
    return text.translate({"full-width": FULL_WIDTH, "arabic-indic": ARABIC_INDIC}.get(script, {}))


BEFORE = st.sampled_from(
    ["", "BSN ", "BSN:", "bsn: ", "BSN-nummer ", "(", "[", "sofinr. ", "persoon ", "nr.",
     "gecontroleerd, bsn ", "\"", "id=", "BSN\u00a0", "#"])
AFTER = st.sampled_from(["", ")", "]", " klopt", ".", ", ", "\"", "; geen hit", "\n", " (NL)"])


def kinds(frame: pl.DataFrame, **roles) -> set[tuple[str, str]]:
    return {(f.column, f.kind) for f in scan_for_identifiers(frame, **roles)}


# --------------------------------------------------------------------------- BSNs


@SETTINGS
@given(written(bsns()), BEFORE, AFTER)
def test_a_written_bsn_is_refused_in_every_string_column(bsn: str, before: str, after: str) -> None:
    value = f"{before}{bsn}{after}"
    frame = pl.DataFrame({"query_id": [value, "P202501-00000001"],
                          "subject_pseudonym": [value, None],
                          "query_reason": [value, "verkeer"]})
    assert scan_for_identifiers(frame, pseudonym_columns=PERSON_PSEUDONYMS,
                                id_columns=["query_id"]) == [
        IdentifierFinding(column, "bsn", 1) for column in frame.columns]


@SETTINGS
@given(written(non_bsns()), BEFORE, AFTER)
def test_nine_digits_failing_the_11_test_are_not_a_bsn_however_written(
        number: str, before: str, after: str) -> None:
    frame = pl.DataFrame({"query_reason": [f"{before}{number}{after}"]})
    assert ("query_reason", "bsn") not in kinds(frame)


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.data()), min_size=1, max_size=30), BEFORE, AFTER)
def test_the_count_is_exact_in_a_column_of_written_numbers(draws, before: str, after: str) -> None:
    # every value is one number, a BSN or not, each written its own way: the count is exact
    values, expected = [], 0
    for is_bsn, data in draws:
        values.append(before + data.draw(written(bsns() if is_bsn else non_bsns())) + after)
        expected += is_bsn
    found = scan_for_identifiers(pl.DataFrame({"opmerking": values}))
    assert [(f.kind, f.match_count) for f in found] == ([("bsn", expected)] if expected else [])


@SETTINGS
@given(bsns(), st.sampled_from(SEPARATORS[:5]), st.sampled_from(["10 keer", "2x", "1"]))
def test_a_grouped_bsn_followed_by_another_number_is_refused(
        bsn: str, separator: str, count: str) -> None:
    # "123 456 782 10 keer": the BSN's groups are followed by a count in the same run of groups
    frame = pl.DataFrame({"query_reason": [f"{write_grouped(bsn, (3, 3, 3), separator)} {count}"]})
    assert ("query_reason", "bsn") in kinds(frame)


@SETTINGS
@given(bsns(), st.sampled_from(["\u200b", "\u00ad", "\u2060"]))
def test_invisible_characters_inside_a_bsn_do_not_hide_it(bsn: str, invisible: str) -> None:
    frame = pl.DataFrame({"note": [invisible.join(bsn)]})
    assert kinds(frame) == {("note", "bsn")}


@st.composite
def eight_digits(draw: st.DrawFn) -> str:
    """A BSN with a leading zero as a number column keeps it: eight digits, maybe 12.345.672."""
    digits = draw(bsns(leading_zero=True))[1:]
    style = draw(st.sampled_from(["plain", "plain", "thousands", "float", "quoted"]))
    if style == "thousands":
        return write_grouped(digits, (2, 3, 3), draw(st.sampled_from([".", ",", " ", "\u00a0"])))
    return {"plain": digits, "float": f"{digits}.0", "quoted": f"\"{digits}\""}.get(style, digits)


@SETTINGS
@given(eight_digits())
def test_eight_digits_are_a_bsn_in_pseudonym_and_id_columns(value: str) -> None:
    frame = pl.DataFrame({"query_id": [value, "P202501-00000001"],
                          "subject_pseudonym": [value, None], "query_reason": [value, "verkeer"]})
    found = kinds(frame, pseudonym_columns=PERSON_PSEUDONYMS, id_columns=["query_id"])
    assert found == {("query_id", "bsn"), ("subject_pseudonym", "bsn")}


@SETTINGS
@given(bsns(leading_zero=True), st.sampled_from(
    ["BSN {}", "bsn:{}", "BSN-nummer: {}", "sofinummer {}", "burgerservicenummer ({})",
     "Sofi-nr. {}", "BSN\u00a0{}"]))
def test_eight_digits_after_a_bsn_label_are_a_bsn_in_free_text(bsn: str, template: str) -> None:
    frame = pl.DataFrame({"opmerking": [template.format(bsn[1:])]})
    assert kinds(frame) == {("opmerking", "bsn")}


def test_eight_digits_in_an_id_column_count_only_as_the_whole_value() -> None:
    # 012345672 passes the 11-test; as a counter inside a longer id it is not a BSN
    frame = pl.DataFrame({"query_id": ["P202501-12345672", "12345672-A", "12345672"]})
    assert scan_for_identifiers(frame, id_columns=["query_id"]) == [
        IdentifierFinding("query_id", "bsn", 1)]


def test_eight_digits_in_a_malformed_hex_pseudonym_are_left_to_quarantine() -> None:
    # a truncated pseudonym (63 hex) is a bad_pseudonym row, not a refused file
    truncated = ("ab" + "12345672" + "c" * 54)[:63]
    frame = pl.DataFrame({"subject_pseudonym": [truncated, truncated.upper()]})
    assert scan_for_identifiers(frame, pseudonym_columns=PERSON_PSEUDONYMS) == []


def test_bsn_in_nested_and_binary_columns() -> None:
    frame = pl.DataFrame({
        "notes": [["geen", "bsn 123456782"], []],
        "extra": [{"a": "x", "b": "123.456.782"}, {"a": None, "b": None}],
        "raw": [b"123 456 782", b"\xff\xfe"],
    })
    assert kinds(frame) == {("notes", "bsn"), ("extra", "bsn"), ("raw", "bsn")}


def test_lazy_and_eager_frames_give_the_same_findings() -> None:
    frame = pl.DataFrame({"query_reason": ["1234.56.782", "kenteken GH-452-K", "verkeer"],
                          "subject_pseudonym": ["12345672", "0" * 64, None]})
    eager = scan_for_identifiers(frame, pseudonym_columns=PERSON_PSEUDONYMS)
    assert eager == scan_for_identifiers(frame.lazy(), pseudonym_columns=PERSON_PSEUDONYMS)
    assert {(f.column, f.kind) for f in eager} == {
        ("query_reason", "bsn"), ("query_reason", "licence_plate"), ("subject_pseudonym", "bsn")}


# --------------------------------------------------------------------------- licence plates

SIDECODES = ("XX-99-99", "99-99-XX", "99-XX-99", "XX-99-XX", "XX-XX-99", "99-XX-XX", "99-XXX-9",
             "9-XXX-99", "XX-999-X", "X-999-XX", "XXX-99-X", "X-99-XXX", "9-XX-999", "999-XX-9")
"""RDW sidecodes 1–14 (X a letter, 9 a digit)."""
RDW_LETTERS = "BDFGHJKLNPRSTVXZ"
"""Letters the RDW issues since sidecode 4 (no vowels, no C, Q); sidecodes 1–3 used A–Z."""


@st.composite
def plates(draw: st.DrawFn, *, free_text: bool = True) -> str:
    """A plate of any sidecode with dashes, spaces or nothing between its groups, in any case.

    In free text a plate of sidecode 1 or 2 always has separators (without, XX9999 and 9999XX
    read as a flight number and a postcode), and one of sidecodes 1–3 with spaces is in capitals
    ("op 12 05" is words and numbers).
    """
    number = draw(st.integers(0, len(SIDECODES) - 1))
    letters = string.ascii_uppercase if number < 3 else RDW_LETTERS
    groups = ["".join(draw(st.sampled_from(letters if ch == "X" else string.digits)) for ch in g)
              for g in SIDECODES[number].split("-")]
    separators = ["-", " ", "\u00a0", "\u2011"] + ([""] if number >= 2 or not free_text else [])
    separator = draw(st.sampled_from(separators))
    plate = separator.join(groups)
    cases = ["upper"] if free_text and number < 3 and separator in " \u00a0" else [
        "upper", "upper", "lower", "title"]
    case = draw(st.sampled_from(cases))
    plate = {"lower": plate.lower(), "title": plate.title()}.get(case, plate)
    return plate.translate(FULL_WIDTH_ALL) if draw(st.integers(0, 9)) == 0 else plate


PLATE_BEFORE = st.sampled_from(["", "kenteken ", "kenteken: ", "kent.", "(", "auto ", "voertuig #",
                                "op A10 ", "\"", "plaat=", "BMW, "])
PLATE_AFTER = st.sampled_from(["", ")", " gezien", ".", ", bestuurder aangesproken", "\"", "!",
                               " (NL)", "\t"])


@SETTINGS
@given(plates(), PLATE_BEFORE, PLATE_AFTER)
def test_a_plate_in_free_text_is_refused(plate: str, before: str, after: str) -> None:
    value = f"{before}{plate}{after}"
    frame = pl.DataFrame({"query_reason": [value, "verkeer"], "opmerking": [None, value],
                          "subject_pseudonym": [value, None]})
    assert scan_for_identifiers(frame, pseudonym_columns=PERSON_PSEUDONYMS) == [
        IdentifierFinding(column, "licence_plate", 1) for column in frame.columns]


@SETTINGS
@given(plates(free_text=False), st.sampled_from(["", ".", "_", "/"]))
def test_a_plate_filling_a_pseudonym_column_is_refused(plate: str, separator: str) -> None:
    if separator:
        plate = re.sub(r"[-\s\u00a0\u2011]", separator, plate)
    frame = pl.DataFrame({"plate_pseudonym": [plate, "f" * 64]})
    assert scan_for_identifiers(frame, pseudonym_columns=["plate_pseudonym"]) == [
        IdentifierFinding("plate_pseudonym", "licence_plate", 1)]


@pytest.mark.parametrize("value", [
    "kenteken GH-452-K", "GH-452-K", "gh 452 k", "GH452K", "(47-KRT-3)", "s-123-bd",
    "kent.1-KBT-23.", "ZZ99ZZ", "12-34-AB", "AB-12-34", "ab-12-34", "AB 12 34", "ＧＨ－４５２－Ｋ",
    "auto:XF-51-NR,gezien",
    "GH-452-K-"])
def test_listed_plate_forms_are_refused(value: str) -> None:
    assert kinds(pl.DataFrame({"query_reason": [value]})) == {("query_reason", "licence_plate")}


@pytest.mark.parametrize("value", [
    "XGH-452-K", "GH-452-KX", "GH452KX", "1GH452K", "van 1 tot 25", "3 uur 15", "1-jan-25",
    "1012AB", "1012 AB", "KL1234", "PV2025", "A10-west", "COVID19", "mp3", "2x gecontroleerd",
    "H2O", "BU0363AE01", "AMS-C1", "AMS-ZO1", "WK0363AA", "P202501-00000001", "op 01-01-2000",
    "PV-24-05-123", "om 12 30", "op 12 05", "GH-452 K", "AB-GH-452-K"])
def test_plate_like_text_that_is_not_a_plate_token(value: str) -> None:
    assert kinds(pl.DataFrame({"query_reason": [value]})) == set()


# --------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize("value", [
    "JAN.JANSEN@EXAMPLE.NL", "jan＠example.nl", "jürgen@müller.de",
    "mail: w.de.vries@politie.nl;"])
def test_email_forms_are_refused(value: str) -> None:
    assert kinds(pl.DataFrame({"opmerking": [value]})) == {("opmerking", "email")}


# --------------------------------------------------------------------------- what is never refused

PSEUDONYMS = st.binary(min_size=32, max_size=32).map(bytes.hex)
TEAM_CODES = st.from_regex(r"\A(?:[A-Z]{2,4}-[A-Z]{1,2}[0-9]{1,2}|[A-Z][0-9]{1,2}|ALL)\Z")
"""AMS-C1, AMS-ZO1 (the sample's), A1, B12 (basisteam numbers) and ALL."""
BUURT_CODES = st.from_regex(r"\ABU[0-9]{4}[0-9A-Z]{2}[0-9]{2}\Z")
WIJK_CODES = st.from_regex(r"\AWK[0-9]{4}[0-9A-Z]{2}\Z")
QUERY_IDS = st.from_regex(r"\A[PK]20[0-9]{2}(?:0[1-9]|1[0-2])-[0-9]{8}\Z")
POSTCODES = st.from_regex(r"\A[1-9][0-9]{3} ?[A-Z]{2}\Z")
PHONES = st.from_regex(
    r"\A(?:06[- ]?[0-9]{8}|06 [0-9]{4} [0-9]{4}|0[1-9][0-9] [0-9]{3} [0-9]{4}"
    r"|0[1-9][0-9]-[0-9]{7}|\+31 ?6 ?[0-9]{8}|\+31 [1-9][0-9] [0-9]{3} [0-9]{4})\Z")


@st.composite
def dates_and_times(draw: st.DrawFn) -> str:
    """A date or an instant as a system writes it, from 1900 to 2100."""
    day = draw(st.dates(date(1900, 1, 1), date(2100, 12, 31)))
    instant = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 86_400 * 10**6 - 1)))
    nanoseconds = f"{instant.microsecond:06d}{draw(st.integers(0, 999)):03d}"
    fmt = draw(st.sampled_from([
        "%Y%m%d", "%d%m%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%dT%H%M%S",
        "%Y-%m-%dT%H:%M:%S.%f+00:00", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M", "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S.{ns}+01:00", "%Y-%m-%d %H:%M:%S,{ns}", "%d %b %Y", "%Y-W%V-%u"]))
    return instant.strftime(fmt).replace("{ns}", nanoseconds)


@SETTINGS
@given(st.lists(st.tuples(PSEUDONYMS, PSEUDONYMS, TEAM_CODES, BUURT_CODES, WIJK_CODES, QUERY_IDS,
                          dates_and_times(), POSTCODES, PHONES), min_size=1, max_size=10))
def test_a_clean_export_is_never_refused(rows) -> None:
    columns = ("officer_pseudonym", "subject_pseudonym", "team_code", "buurt_code", "wijk_code",
               "query_id", "queried_at", "postcode", "telefoon")
    frame = pl.DataFrame(rows, schema=list(columns), orient="row")
    refuse_if_identifiers(frame, source="clean.csv", pseudonym_columns=PERSON_PSEUDONYMS,
                          id_columns=["query_id"])


@SETTINGS
@given(st.lists(dates_and_times(), min_size=1, max_size=50))
def test_dates_in_free_text_are_never_a_bsn(values: list[str]) -> None:
    # about one eight-digit date in eleven (20250115) passes the 11-test with a leading zero
    frame = pl.DataFrame({"opmerking": [f"gezien op {v}" for v in values], "datum": values})
    assert scan_for_identifiers(frame) == []


def test_the_refusal_names_every_new_form_by_count_only() -> None:
    values = ["1234.56.782", "12345672", "kenteken GH-452-K", "jan＠example.nl"]
    frame = pl.DataFrame({"subject_pseudonym": values[:2] + [None, None],
                          "query_reason": [None, None] + values[2:]})
    with pytest.raises(RawIdentifierError) as caught:
        refuse_if_identifiers(frame, source="landing/2025-03.csv",
                              pseudonym_columns=PERSON_PSEUDONYMS)
    message = str(caught.value)
    assert "column 'subject_pseudonym': 2 values look like a BSN" in message
    assert "column 'query_reason': 1 value looks like a licence plate" in message
    assert "column 'query_reason': 1 value looks like an e-mail address" in message
    for needle in [*values, "123456782", "012345672", "GH452K", "GH-452-K", "jan"]:
        assert needle not in message


@pytest.mark.parametrize(("value", "is_bsn"), [
    ("BSN:1234.56.782", True), ("BSN:123456782", True), ("om 12:34 BSN 123456782", True),
    ("1.123456782", True), ("12.123456782", True), ("123,123456782", True), (":12.123456782", True),
    ("12:34:56.123456782", False), ("2025-03-01T12:34:56,123456782+01:00", False),
    ("12:30.123456782", False)])
def test_only_a_clock_times_fraction_is_not_a_bsn(value: str, is_bsn: bool) -> None:
    # 123456782 passes the 11-test; after hh:mm:ss. it is nanoseconds
    expected = {("opmerking", "bsn")} if is_bsn else set()
    assert kinds(pl.DataFrame({"opmerking": [value]})) == expected


@SETTINGS
@given(st.lists(bsns(leading_zero=True), min_size=1, max_size=5), st.sampled_from(
    ["nummer", "persoon", "BSN", "klant_bsn", "Sofinummer"]), st.booleans())
def test_a_csv_column_of_eight_digit_numbers_is_read_like_an_integer_column(
        bsns_: list[str], name: str, quoted: bool) -> None:
    # a CSV is read as text: a column of BSNs that lost their leading zero holds eight-digit
    # strings, which must count as they do in an integer column
    assume(all(b[1] != "0" for b in bsns_))  # eight digits, also as a number
    values = [f"\"{b[1:]}\"" if quoted else b[1:] for b in bsns_] + ["12345678", None]
    frame = pl.DataFrame({name: values, "other": ["gezien op 20250115"] * len(values)})
    assert scan_for_identifiers(frame) == [IdentifierFinding(name, "bsn", len(bsns_))]
    as_numbers = pl.DataFrame({name: [int(b) for b in bsns_] + [12345678, None]})
    assert scan_for_identifiers(as_numbers) == [IdentifierFinding(name, "bsn", len(bsns_))]


def test_eight_digits_in_a_column_named_after_a_bsn() -> None:
    frame = pl.DataFrame({"BSN klant": ["12345672", "onbekend", None]})
    assert scan_for_identifiers(frame) == [IdentifierFinding("BSN klant", "bsn", 1)]
    frame = pl.DataFrame({"opmerking": ["12345672", "onbekend", None]})
    assert scan_for_identifiers(frame) == []


@SETTINGS
@given(st.lists(st.dates(date(1900, 1, 1), date(2100, 12, 31)), min_size=1, max_size=50),
       st.sampled_from(["%Y%m%d", "%d%m%Y"]))
def test_a_column_of_dates_written_as_numbers_is_not_refused(days: list[date], fmt: str) -> None:
    # about one in eleven passes the 11-test with a 0 in front; every one reads as a date
    text = [d.strftime(fmt) for d in days]
    assert scan_for_identifiers(pl.DataFrame({"datum": text})) == []
    assert scan_for_identifiers(pl.DataFrame({"datum": [int(t) for t in text]})) == []


def test_one_eight_digit_number_that_is_no_date_makes_a_date_column_a_number_column() -> None:
    # 20250101 passes the 11-test with a 0 in front (020250101); 12345672 is no date
    assert is_valid_bsn("020250101") and is_valid_bsn("012345672")
    frame = pl.DataFrame({"datum": ["20250101", "12345672"]})
    assert scan_for_identifiers(frame) == [IdentifierFinding("datum", "bsn", 2)]
