"""A landing zone whose months are all CSV runs to publication with results identical to the same
months as Parquet (DESIGN.md §4 accepts both): every out_ table and every published table (the
report and the JSON companions differ only in the input fingerprint: the files differ)."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.frames import list_months
from pipelines.cli import run_pipeline
from tests import corpus


@pytest.fixture(scope="module")
def csv_run(small_landing, pipeline_run, tmp_path_factory):
    landing = corpus.copy_landing(small_landing, tmp_path_factory.mktemp("csv") / "landing")
    for month in list_months(landing):
        # NOTE: both offset styles of the contract: Amsterdam clock time with +01:00, UTC with Z.
        corpus.to_csv(landing, "person", month, offsets="local")
        corpus.to_csv(landing, "plate", month, offsets="utc", quote_all=True)
    assert not list((landing / "meos").rglob("*.parquet"))
    warehouse = tmp_path_factory.mktemp("csv_warehouse")
    failures = run_pipeline(landing, warehouse, dg.DagsterInstance.ephemeral())
    return failures, warehouse


def test_csv_months_run_to_publication(csv_run):
    failures, warehouse = csv_run
    assert failures == []
    assert (warehouse / "publication" / "thematic_report.html").is_file()


def test_every_out_table_equals_the_parquet_run(csv_run, pipeline_run):
    _, warehouse = csv_run
    names = sorted(p.name for p in pipeline_run.warehouse.glob("out_*.parquet"))
    assert names == sorted(p.name for p in warehouse.glob("out_*.parquet"))
    assert len(names) == 8
    for name in names:
        assert_frame_equal(pl.read_parquet(warehouse / name),
                           pl.read_parquet(pipeline_run.warehouse / name))


def test_published_tables_are_byte_identical(csv_run, pipeline_run):
    _, warehouse = csv_run
    published = sorted(p.name for p in (pipeline_run.warehouse / "publication").glob("*.csv"))
    assert published == sorted(p.name for p in (warehouse / "publication").glob("*.csv"))
    for name in published:
        assert ((warehouse / "publication" / name).read_bytes()
                == (pipeline_run.warehouse / "publication" / name).read_bytes()), name


def test_monthly_tables_differ_only_in_source_file(csv_run, pipeline_run):
    _, warehouse = csv_run
    for name in ("raw_person_queries", "core_person_queries", "core_quarantine",
                 "raw_plate_queries", "core_plate_queries"):
        for path in sorted((pipeline_run.warehouse / name).glob("*.parquet")):
            parquet, csv = pl.read_parquet(path), pl.read_parquet(warehouse / name / path.name)
            if name == "core_quarantine":
                assert set(csv["source_file"]) <= {f"{path.stem}.csv"}
                csv, parquet = csv.drop("source_file"), parquet.drop("source_file")
            assert_frame_equal(csv, parquet)
