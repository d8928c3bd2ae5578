"""Landing-zone reading: Parquet and CSV alike; clear errors naming file and column, never values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from assets import frames
from assets.frames import InputError, list_months, read_table
from assets.schema import PERSON_QUERIES

PSEUDO = "cd" * 32


def good() -> pl.DataFrame:
    return pl.DataFrame({
        "query_id": ["q1", "q2"],
        "queried_at": [datetime(2025, 3, 1, 9, tzinfo=UTC), datetime(2025, 3, 2, 21, tzinfo=UTC)],
        "team_code": ["T1", "T2"], "officer_pseudonym": [PSEUDO, PSEUDO],
        "subject_pseudonym": [PSEUDO, None], "query_reason": ["verkeer", None],
        "buurt_code": [None, "BU0363AA01"], "hit": [True, None],
    }, schema=PERSON_QUERIES)


def test_parquet_and_csv_read_the_same(tmp_path):
    good().write_parquet(tmp_path / "a.parquet")
    csv = good().with_columns(
        pl.col("queried_at").dt.convert_time_zone("Europe/Amsterdam")
        .dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
    csv.write_csv(tmp_path / "a.csv")
    from_parquet = read_table(tmp_path / "a.parquet", PERSON_QUERIES).frame
    from_csv = read_table(tmp_path / "a.csv", PERSON_QUERIES).frame
    assert from_csv.equals(from_parquet)


def test_missing_column_names_file_and_column(tmp_path):
    good().drop("team_code").write_parquet(tmp_path / "m.parquet")
    with pytest.raises(InputError, match=r"m\.parquet: missing column\(s\) team_code"):
        read_table(tmp_path / "m.parquet", PERSON_QUERIES)


def test_mistyped_column_counts_values_without_quoting_them(tmp_path):
    good().with_columns(hit=pl.Series(["yes", "no"])).write_csv(tmp_path / "t.csv")
    with pytest.raises(InputError) as info:
        read_table(tmp_path / "t.csv", PERSON_QUERIES)
    message = str(info.value)
    assert "t.csv" in message and "hit" in message and "2 value(s)" in message
    assert "yes" not in message


def test_csv_timestamp_without_offset_is_refused(tmp_path):
    good().with_columns(pl.col("queried_at").dt.strftime("%Y-%m-%dT%H:%M:%S")).write_csv(
        tmp_path / "n.csv")
    with pytest.raises(InputError, match="queried_at"):
        read_table(tmp_path / "n.csv", PERSON_QUERIES)


def test_naive_parquet_timestamp_is_refused(tmp_path):
    good().with_columns(pl.col("queried_at").dt.replace_time_zone(None)).write_parquet(
        tmp_path / "naive.parquet")
    with pytest.raises(InputError, match="without time zone"):
        read_table(tmp_path / "naive.parquet", PERSON_QUERIES)


def test_extra_column_is_a_warning(tmp_path):
    good().with_columns(remark=pl.lit("x")).write_parquet(tmp_path / "e.parquet")
    result = read_table(tmp_path / "e.parquet", PERSON_QUERIES)
    assert result.frame.columns == list(PERSON_QUERIES)
    assert result.warnings == (f"{tmp_path / 'e.parquet'}: extra column remark ignored",)


def test_truncated_and_missing_files(tmp_path):
    good().write_parquet(tmp_path / "full.parquet")
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.parquet: unreadable or truncated"):
        read_table(tmp_path / "cut.parquet", PERSON_QUERIES)
    with pytest.raises(InputError, match="file missing"):
        read_table(tmp_path / "absent.parquet", PERSON_QUERIES)


def test_months_come_from_both_query_folders(tmp_path):
    for query_type, month in (("person", "2025-01"), ("plate", "2025-02"), ("person", "notes")):
        folder = tmp_path / "meos" / f"{query_type}_queries"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{month}.parquet").write_bytes(b"")
    assert list_months(tmp_path) == ["2025-01", "2025-02"]


def test_csv_row_with_missing_fields_is_refused(tmp_path):
    from assets.schema import TEAM_AREAS

    (tmp_path / "t.csv").write_text("team_code,team_name,wijk_code\nA,x,WK0363AA\nB,WK0363AB\n")
    with pytest.raises(InputError, match="t.csv: unreadable or truncated .malformed CSV"):
        read_table(tmp_path / "t.csv", TEAM_AREAS)


def _ids_month(landing, month: str, ids: list[str]) -> Path:
    folder = landing / "meos" / "person_queries"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{month}.parquet"
    pl.DataFrame({"query_id": ids}).write_parquet(path)
    return path


def test_earlier_months_that_cannot_share_an_id_are_read_once(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    _ids_month(landing, "2025-01", ["A-001", "A-002"])
    _ids_month(landing, "2025-02", ["B-001", "C-050"])
    _ids_month(landing, "2025-03", ["C-001", "C-002"])
    reads = []
    real_read = pl.read_parquet
    monkeypatch.setattr(frames.pl, "read_parquet",
                        lambda path, **kw: reads.append(Path(path).stem) or real_read(path, **kw))

    current = pl.Series(["B-500", "C-010"])  # overlaps February's range only
    found = list(frames.iter_earlier_query_ids(landing, "person", "2025-03", overlapping=current))
    assert [s.to_list() for s in found] == [["B-001", "C-050"]]
    assert reads == ["2025-01", "2025-02"]  # each read once, January's range remembered

    again = list(frames.iter_earlier_query_ids(landing, "person", "2025-03", overlapping=current))
    assert [s.to_list() for s in again] == [["B-001", "C-050"]]
    assert reads == ["2025-01", "2025-02", "2025-02"]  # January skipped without a read

    # A replaced file is read again: the remembered range belongs to the old file.
    _ids_month(landing, "2025-01", ["A-001", "B-700"])
    found = list(frames.iter_earlier_query_ids(landing, "person", "2025-03", overlapping=current))
    assert [s.to_list() for s in found] == [["A-001", "B-700"], ["B-001", "C-050"]]

    # Without `overlapping` every earlier month is yielded, as before.
    assert len(list(frames.iter_earlier_query_ids(landing, "person", "2025-03"))) == 2


def test_a_parquet_file_in_the_contracts_columns_and_types_is_delivered_as_read(tmp_path):
    path = tmp_path / "d.parquet"
    good().write_parquet(path)
    result = read_table(path, PERSON_QUERIES)
    stat = path.stat()
    assert result.delivered == frames.DeliveredFile(path, stat.st_size, stat.st_mtime_ns)
    # NOTE: what makes the copy safe: the file's rows, read back, are the typed frame.
    assert pl.read_parquet(path).equals(result.frame)


@pytest.mark.parametrize("variant", ["csv", "column order", "time unit", "time zone",
                                     "categorical", "extra column", "key-value metadata"])
def test_a_file_whose_bytes_are_not_the_typed_frame_is_not_delivered(tmp_path, variant):
    frame, metadata = good(), None
    if variant == "column order":
        frame = frame.select(reversed(frame.columns))
    elif variant == "time unit":
        frame = frame.with_columns(pl.col("queried_at").dt.cast_time_unit("ns"))
    elif variant == "time zone":
        frame = frame.with_columns(pl.col("queried_at").dt.convert_time_zone("Europe/Amsterdam"))
    elif variant == "categorical":
        frame = frame.with_columns(pl.col("team_code").cast(pl.Categorical))
    elif variant == "extra column":
        frame = frame.with_columns(remark=pl.lit("x"))
    elif variant == "key-value metadata":
        metadata = {"exported_by": "someone"}
    path = tmp_path / ("d.csv" if variant == "csv" else "d.parquet")
    if variant == "csv":
        frame.with_columns(pl.col("queried_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")).write_csv(path)
    else:
        frame.write_parquet(path, metadata=metadata)
    result = read_table(path, PERSON_QUERIES)
    assert result.delivered is None
    # NOTE: read all the same, into the same typed frame.
    assert result.frame.equals(good())
