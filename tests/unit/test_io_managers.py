"""The Parquet IO manager hands the raw query months on in memory to the step of the same run that
loads them whole, only while the file is the one written with the frame, and never past the run;
a raw table whose landing file is already its typed table is stored as a byte copy of that file."""

from __future__ import annotations

import gc
import hashlib
import os
import weakref

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.atomic import copy_delivered_atomic, write_parquet_atomic
from assets.frames import DeliveredFile, InputError
from assets.stored import RawTable
from pipelines.io_managers import HANDED_ON, ParquetIOManager
from pipelines.runs import execute

WRITTEN = pl.DataFrame({"query_id": ["q1", "q2", "q3"], "hit": [True, False, None]})
REPLACED = pl.DataFrame({"query_id": ["r1"], "hit": [False]})


def _materialise(tmp_path, *, replace_between: bool) -> dict[str, pl.DataFrame]:
    """raw_person_queries (handed on) and core_team_areas (not), then a step that loads both
    whole; with `replace_between`, a step in between rewrites raw_person_queries' file."""
    received: dict[str, pl.DataFrame] = {}

    @dg.asset(name="raw_person_queries")
    def raw() -> pl.DataFrame:
        return WRITTEN

    @dg.asset(name="core_team_areas")
    def teams() -> pl.DataFrame:
        return WRITTEN

    @dg.asset(deps=[raw])
    def meddler() -> None:
        if replace_between:
            write_parquet_atomic(REPLACED, tmp_path / "raw_person_queries.parquet", {})

    @dg.asset(deps=[meddler])
    def consumer(raw_person_queries: pl.DataFrame, core_team_areas: pl.DataFrame) -> None:
        received.update(raw_person_queries=raw_person_queries, core_team_areas=core_team_areas)

    result = dg.materialize([raw, teams, meddler, consumer],
                            resources={"io_manager": ParquetIOManager(warehouse_dir=str(tmp_path))})
    assert result.success
    return received


def test_a_raw_month_reaches_the_step_that_loads_it_without_being_read_back(tmp_path):
    assert {"raw_person_queries", "raw_plate_queries"} <= HANDED_ON
    received = _materialise(tmp_path, replace_between=False)
    assert received["raw_person_queries"] is WRITTEN
    # NOTE: written all the same, and read back by any later load.
    assert_frame_equal(pl.read_parquet(tmp_path / "raw_person_queries.parquet"), WRITTEN)
    # NOTE: an asset not handed on is read back from its file.
    assert received["core_team_areas"] is not WRITTEN
    assert_frame_equal(received["core_team_areas"], WRITTEN)


def test_a_raw_month_whose_file_was_replaced_after_the_write_is_read_from_the_file(tmp_path):
    received = _materialise(tmp_path, replace_between=True)
    assert_frame_equal(received["raw_person_queries"], REPLACED)


def test_a_frame_no_step_loaded_goes_with_its_run_and_no_later_run_gets_it(tmp_path):
    written: list[weakref.ref] = []

    @dg.asset(name="raw_plate_queries")
    def raw() -> pl.DataFrame:
        frame = pl.DataFrame({"query_id": ["p1", "p2"]})
        written.append(weakref.ref(frame))
        return frame

    @dg.asset
    def consumer(raw_plate_queries: pl.DataFrame) -> None:
        assert raw_plate_queries.height == 2

    defs = dg.Definitions(
        assets=[raw, consumer], jobs=[dg.define_asset_job("raw_job", selection=[raw]),
                                      dg.define_asset_job("consumer_job", selection=[consumer])],
        resources={"io_manager": ParquetIOManager(warehouse_dir=str(tmp_path))})
    with dg.DagsterInstance.ephemeral() as instance:
        assert execute(defs, instance, "raw_job") == []
        gc.unfreeze()
        # NOTE: `execute` collects the run's objects: nothing else holds the frame.
        assert written[0]() is None
        # NOTE: the next run reads the file; it never gets a frame of the run before.
        assert execute(defs, instance, "consumer_job") == []
        gc.unfreeze()
    assert (tmp_path / "raw_plate_queries.parquet").exists()


def _delivered(path) -> DeliveredFile:
    stat = path.stat()
    return DeliveredFile(path, stat.st_size, stat.st_mtime_ns)


def _materialise_raw_table(tmp_path, month: RawTable):
    """raw_person_queries returning `month`, and a step that loads it whole."""
    received: dict[str, pl.DataFrame] = {}

    @dg.asset(name="raw_person_queries")
    def raw() -> RawTable:
        return month

    @dg.asset
    def consumer(raw_person_queries: pl.DataFrame) -> None:
        received["frame"] = raw_person_queries

    result = dg.materialize([raw, consumer], resources={
        "io_manager": ParquetIOManager(warehouse_dir=str(tmp_path / "warehouse"))})
    assert result.success
    metadata = result.asset_materializations_for_node("raw_person_queries")[0].metadata
    return received["frame"], metadata, tmp_path / "warehouse" / "raw_person_queries.parquet"


def test_a_delivered_raw_table_is_stored_as_a_byte_copy_with_its_sha256(tmp_path):
    landing = tmp_path / "2025-03.parquet"
    WRITTEN.write_parquet(landing)
    frame, metadata, stored = _materialise_raw_table(
        tmp_path, RawTable(WRITTEN, _delivered(landing)))
    assert stored.read_bytes() == landing.read_bytes()
    assert metadata["sha256"].value == hashlib.sha256(landing.read_bytes()).hexdigest()
    assert metadata["delivered_file"].value == str(landing)
    assert metadata["dagster/row_count"].value == WRITTEN.height
    assert frame is WRITTEN


def test_a_raw_table_not_delivered_as_its_rows_is_written(tmp_path):
    frame, metadata, stored = _materialise_raw_table(tmp_path, RawTable(WRITTEN))
    assert "sha256" not in metadata
    assert "stopcheck:code_version" in pl.read_parquet_metadata(stored)
    assert_frame_equal(pl.read_parquet(stored), WRITTEN)
    assert frame is WRITTEN


@pytest.mark.parametrize("change", ["size", "modification time"])
def test_a_delivered_file_changed_since_it_was_read_is_not_copied(tmp_path, change):
    landing = tmp_path / "2025-03.parquet"
    WRITTEN.write_parquet(landing)
    delivered = _delivered(landing)
    if change == "size":
        REPLACED.write_parquet(landing)
    else:
        os.utime(landing, ns=(delivered.mtime_ns + 1, delivered.mtime_ns + 1))
    target = tmp_path / "warehouse" / "2025-03.parquet"
    with pytest.raises(InputError, match="changed since it was read"):
        copy_delivered_atomic(delivered, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
