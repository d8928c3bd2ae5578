"""The Parquet IO manager hands the raw query months on in memory to the step of the same run that
loads them whole, only while the file is the one written with the frame, and never past the run."""

from __future__ import annotations

import gc
import weakref

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from assets.atomic import write_parquet_atomic
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
