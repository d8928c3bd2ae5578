"""The privacy guard refuses un-pseudonymised identifiers and never repeats a value."""

from __future__ import annotations

import pickle
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st
import polars as pl
import pytest

from assets import identifiers
from assets.identifiers import (
    BSN_WEIGHTS,
    PLATE_SIDECODES,
    IdentifierFinding,
    RawIdentifierError,
    is_valid_bsn,
    is_valid_bsn_expr,
    refuse_if_identifiers,
    scan_for_identifiers,
)
from assets.schema import PSEUDONYM_COLUMNS

SETTINGS = settings(max_examples=150, deadline=None)
NON_DIGIT_TEXT = st.text(
    alphabet=string.ascii_letters + " .,:;-_/#()", min_size=0, max_size=20
)


def _weighted_sum(digits: list[int]) -> int:
    return sum(w * d for w, d in zip(BSN_WEIGHTS, digits, strict=False))


@st.composite
def valid_bsns(draw: st.DrawFn) -> str:
    """Eight random digits and the check digit that makes the 11-test pass (skip 10)."""
    head = draw(st.lists(st.integers(0, 9), min_size=8, max_size=8))
    check = _weighted_sum(head) % 11  # 9·d1 + … + 2·d8 − d9 ≡ 0 (mod 11)
    assume(check <= 9)
    digits = [*head, check]
    assume(any(digits))
    return "".join(map(str, digits))


@st.composite
def invalid_nine_digits(draw: st.DrawFn) -> str:
    digits = draw(st.lists(st.integers(0, 9), min_size=9, max_size=9))
    total = _weighted_sum(digits[:8]) - digits[8]
    assume(total % 11 != 0)
    return "".join(map(str, digits))


@st.composite
def plates(draw: st.DrawFn) -> str:
    """A plate of a random sidecode, with or without dashes, in random case."""
    layout = draw(st.sampled_from(sorted(PLATE_SIDECODES.values())))
    chars = [
        draw(st.sampled_from(string.ascii_uppercase))
        if ch == "X"
        else draw(st.sampled_from(string.digits))
        if ch == "9"
        else ch
        for ch in layout
    ]
    plate = "".join(chars)
    if draw(st.booleans()):
        plate = plate.replace("-", "")
    return plate.lower() if draw(st.booleans()) else plate


PSEUDONYMS = st.binary(min_size=32, max_size=32).map(bytes.hex)


def _kinds(frame: pl.DataFrame, pseudonym_columns=()) -> set[tuple[str, str]]:
    return {(f.column, f.kind) for f in scan_for_identifiers(frame, pseudonym_columns=pseudonym_columns)}


# --- the 11-test ---------------------------------------------------------------------------


def test_known_bsns() -> None:
    # 111222333 and 123456782 are the textbook examples of numbers passing the 11-test.
    assert is_valid_bsn("111222333")
    assert is_valid_bsn("123456782")
    assert not is_valid_bsn("123456789")
    assert not is_valid_bsn("000000000")
    assert not is_valid_bsn("12345678")
    assert not is_valid_bsn("1234567820")
    assert is_valid_bsn(12345672)  # an int loses its leading zero: 012345672


@SETTINGS
@given(valid_bsns())
def test_vectorised_11_test_agrees_with_scalar(bsn: str) -> None:
    flagged = pl.select(is_valid_bsn_expr(pl.lit(int(bsn)))).item()
    assert flagged is True
    assert is_valid_bsn(bsn)


@SETTINGS
@given(st.integers(0, 999_999_999))
def test_vectorised_11_test_agrees_with_scalar_on_any_number(number: int) -> None:
    # most numbers fail the 11-test: the two must agree on those too
    assert pl.select(is_valid_bsn_expr(pl.lit(number))).item() is is_valid_bsn(number)


# --- BSNs ------------------------------------------------------------------------------------


@SETTINGS
@given(valid_bsns(), NON_DIGIT_TEXT, NON_DIGIT_TEXT)
def test_valid_bsn_is_caught_alone_and_embedded(bsn: str, before: str, after: str) -> None:
    frame = pl.DataFrame({"note": [bsn, f"{before}{bsn}{after}", "nothing here"]})
    findings = scan_for_identifiers(frame)
    assert findings == [IdentifierFinding("note", "bsn", 2)]


@SETTINGS
@given(invalid_nine_digits(), NON_DIGIT_TEXT)
def test_nine_digits_failing_11_test_are_not_a_bsn(number: str, text: str) -> None:
    frame = pl.DataFrame({"note": [number, f"{text}{number}{text}"]})
    assert ("note", "bsn") not in _kinds(frame)


@SETTINGS
@given(valid_bsns(), st.integers(0, 9))
def test_a_valid_bsn_inside_a_longer_digit_run_is_not_a_bsn(bsn: str, extra: int) -> None:
    frame = pl.DataFrame({"note": [f"{bsn}{extra}", f"{extra}{bsn}"]})
    assert ("note", "bsn") not in _kinds(frame)


def test_bsn_in_an_integer_column_is_caught() -> None:
    frame = pl.DataFrame({"bsn": [111222333, 12345672, 42, None]})
    assert scan_for_identifiers(frame) == [IdentifierFinding("bsn", "bsn", 2)]


def test_birth_years_and_counts_are_not_bsns() -> None:
    frame = pl.DataFrame({"birth_year": [1900, 1985, 2024], "population": [0, 5, 123_456]})
    assert scan_for_identifiers(frame) == []


# --- licence plates ---------------------------------------------------------------------------


@SETTINGS
@given(plates())
def test_plates_of_every_sidecode_are_caught_in_pseudonym_columns(plate: str) -> None:
    frame = pl.DataFrame({"plate_pseudonym": ["0" * 64, plate]})
    assert scan_for_identifiers(frame, pseudonym_columns=["plate_pseudonym"]) == [
        IdentifierFinding("plate_pseudonym", "licence_plate", 1)
    ]


@pytest.mark.parametrize("plate", ["XX-99-99", "99-XXX-9", "9-XX-999", "999-XX-9", "xx99xx", "X-99-XXX"])
def test_each_listed_sidecode_shape(plate: str) -> None:
    concrete = plate.replace("X", "K").replace("x", "k").replace("9", "7")
    frame = pl.DataFrame({"holder_pseudonym": [concrete]})
    assert _kinds(frame, ["holder_pseudonym"]) == {("holder_pseudonym", "licence_plate")}


def test_plates_count_in_every_column_but_ambiguous_codes_do_not() -> None:
    # ZZ99ZZ is sidecode 4 wherever it stands; AB1234 (sidecode 1 without dashes) reads as a
    # flight or file number, BU0363AE01 is one ten-character token.
    frame = pl.DataFrame({"team_code": ["AB1234", "ZZ99ZZ"], "buurt_code": ["BU0363AE01"] * 2})
    assert scan_for_identifiers(frame, pseudonym_columns=["subject_pseudonym"]) == [
        IdentifierFinding("team_code", "licence_plate", 1)]


# --- pseudonyms ---------------------------------------------------------------------------


@SETTINGS
@given(st.lists(PSEUDONYMS, min_size=1, max_size=50))
def test_hex_pseudonyms_never_match(pseudonyms: list[str]) -> None:
    frame = pl.DataFrame(
        {column: pseudonyms for column in PSEUDONYM_COLUMNS["plate"]}
    )
    assert scan_for_identifiers(frame, pseudonym_columns=PSEUDONYM_COLUMNS["plate"]) == []


def test_hex_with_a_valid_bsn_run_is_a_pseudonym_only_in_a_pseudonym_column() -> None:
    pseudonym = "ab" + "111222333" + "c" * 53
    assert len(pseudonym) == 64
    frame = pl.DataFrame({"subject_pseudonym": [pseudonym], "free_text": [pseudonym]})
    assert scan_for_identifiers(frame, pseudonym_columns=["subject_pseudonym"]) == [
        IdentifierFinding("free_text", "bsn", 1)
    ]


def test_non_hex_value_in_a_pseudonym_column_is_scanned() -> None:
    frame = pl.DataFrame({"subject_pseudonym": ["111222333", "A" * 64 + "111222333"]})
    assert _kinds(frame, ["subject_pseudonym"]) == {("subject_pseudonym", "bsn")}


# --- e-mail -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["jan.jansen@example.nl", "melding van j_de-vries+meos@politie.example.com vandaag"]
)
def test_email_is_caught_in_any_string_column(value: str) -> None:
    frame = pl.DataFrame({"query_id": [value, "Q-1"]})
    assert scan_for_identifiers(frame) == [IdentifierFinding("query_id", "email", 1)]


def test_at_sign_without_address_is_not_an_email() -> None:
    frame = pl.DataFrame({"note": ["@home", "a @ b", "x@y"]})
    assert scan_for_identifiers(frame) == []


# --- refusal ------------------------------------------------------------------------------------


def test_column_name_that_is_an_identifier_is_reported_by_position() -> None:
    # A headerless CSV turns its first data row into the header.
    frame = pl.DataFrame({"query_id": ["Q-1"], "111222333": ["Q-2"], "jan@example.nl": ["x"]})
    findings = scan_for_identifiers(frame)
    assert findings == [
        IdentifierFinding("#1", "bsn", 1, is_header=True),
        IdentifierFinding("#2", "email", 1, is_header=True),
    ]
    with pytest.raises(RawIdentifierError) as caught:
        refuse_if_identifiers(frame, source="landing/x.csv")
    assert "111222333" not in str(caught.value)
    assert "jan@example.nl" not in str(caught.value)


def test_refusal_names_file_column_kind_and_count_but_never_a_value() -> None:
    values = {
        "bsn": "111222333",
        "plate": "KX-77-KK",
        "email": "jan.jansen@example.nl",
        "embedded": "meld 123456782 bij",
    }
    frame = pl.DataFrame(
        {
            "query_id": ["Q-1", values["embedded"], "Q-3"],
            "subject_pseudonym": ["0" * 64, values["bsn"], values["plate"]],
            "query_reason": ["verkeer", values["email"], None],
        }
    )
    with pytest.raises(RawIdentifierError) as caught:
        refuse_if_identifiers(
            frame, source="meos/person_queries/2025-03.parquet", pseudonym_columns=PSEUDONYM_COLUMNS["person"]
        )
    error = caught.value
    message = str(error)
    assert "meos/person_queries/2025-03.parquet" in message
    assert "column 'query_id': 1 value looks like a BSN" in message
    assert "column 'subject_pseudonym': 1 value looks like a BSN" in message
    assert "column 'subject_pseudonym': 1 value looks like a licence plate" in message
    assert "column 'query_reason': 1 value looks like an e-mail address" in message
    carried = repr(error) + repr(error.__dict__) + repr(error.args) + repr(pickle.loads(pickle.dumps(error)).__dict__)
    for value in [*values.values(), "123456782"]:
        assert value not in carried
    assert not any(isinstance(v, pl.DataFrame | pl.Series) for v in error.__dict__.values())
    assert set(error.__dict__) == {"source", "findings"}
    assert error.__cause__ is None and error.__context__ is None


def test_clean_batch_passes() -> None:
    frame = pl.DataFrame(
        {
            "query_id": ["MEOS-202503-00000001"],
            "officer_pseudonym": ["f" * 64],
            "subject_pseudonym": [None],
            "buurt_code": ["BU0363AE01"],
        },
        schema_overrides={"subject_pseudonym": pl.String},
    )
    refuse_if_identifiers(frame, source="x.parquet", pseudonym_columns=PSEUDONYM_COLUMNS["person"])


def test_findings_follow_the_columns_whichever_thread_scans_them(monkeypatch) -> None:
    # The columns are scanned side by side in threads: a long first column finishes after the
    # short ones, and the findings must still come in column order, as one at a time.
    rows = 200_000
    frame = pl.DataFrame({
        "note": ["vrije tekst"] * (rows - 1) + ["jan@example.nl"],
        "team_code": ["KX-77-KK"] + ["AMS-C1"] * (rows - 1),
        "query_reason": ["meld 123456782 bij"] + [None] * (rows - 1),
        "subject_pseudonym": ["0" * 64] * (rows - 1) + ["111222333"],
    })
    roles = {"pseudonym_columns": ["subject_pseudonym"]}
    together = scan_for_identifiers(frame, **roles)
    assert together == scan_for_identifiers(frame.lazy(), **roles)
    monkeypatch.setattr(identifiers.pl, "thread_pool_size", lambda: 1)
    assert scan_for_identifiers(frame, **roles) == together
    assert [(f.column, f.kind, f.match_count) for f in together] == [
        ("note", "email", 1), ("team_code", "licence_plate", 1), ("query_reason", "bsn", 1),
        ("subject_pseudonym", "bsn", 1)]


# --- machine-made ids -------------------------------------------------------------------------


def test_uuid_query_ids_are_exempt_only_when_declared_opaque() -> None:
    uuid_with_bsn_run = "6f1c2a3b-0d4e-4f50-8a61-b111222333ce"  # last group holds 111222333
    frame = pl.DataFrame({"query_id": [uuid_with_bsn_run, "0" * 31 + "f", "id 123456782"]})
    assert scan_for_identifiers(frame) == [IdentifierFinding("query_id", "bsn", 2)]
    assert scan_for_identifiers(frame, opaque_id_columns=["query_id"]) == [
        IdentifierFinding("query_id", "bsn", 1)  # the free-text id is still scanned
    ]


def test_nanoseconds_of_a_csv_timestamp_are_not_a_bsn() -> None:
    # .111222333 would pass the 11-test, but it is the fraction of a second.
    frame = pl.DataFrame({"queried_at": ["2025-03-01T12:34:56.111222333+01:00", "2025-03-01 12:34:56,111222333Z"]})
    assert scan_for_identifiers(frame) == []
    frame = pl.DataFrame({"note": ["om 12:34 BSN 111222333"]})
    assert scan_for_identifiers(frame) == [IdentifierFinding("note", "bsn", 1)]


def test_bsn_in_a_float_column_is_found():
    # An integer column with a missing value, as pandas writes it: float64 with NaN.
    frame = pl.DataFrame({"remark_number": [111222333.0, None, float("nan"), 1.5]})
    findings = scan_for_identifiers(frame)
    assert [(f.column, f.kind, f.match_count) for f in findings] == [("remark_number", "bsn", 1)]
