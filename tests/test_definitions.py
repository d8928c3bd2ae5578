"""The code location loads, with the asset keys, checks and jobs other programs rely on."""

from pathlib import Path

import dagster as dg

import assets
import pipelines
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[1]


def test_packages_resolve_inside_the_repository():
    # NOTE: `assets` and `pipelines` are generic names; a stray installed package must not win.
    assert Path(assets.__file__).resolve().is_relative_to(REPO)
    assert Path(pipelines.__file__).resolve().is_relative_to(REPO)


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_asset_keys():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "raw_person_queries", "raw_plate_queries", "raw_persons", "raw_population",
        "raw_team_areas", "core_person_queries", "core_plate_queries", "core_quarantine",
        "core_persons", "core_population", "core_team_areas", "out_team_disproportionality",
        "out_team_trends",
    } <= keys


def test_jobs_select_their_groups():
    assert defs.resolve_job_def("monthly_job").partitions_def is not None
    monthly = defs.resolve_job_def("monthly_job").asset_layer.executable_asset_keys
    assert dg.AssetKey("core_quarantine") in monthly
    assert dg.AssetKey("out_team_disproportionality") not in monthly
    statistics = defs.resolve_job_def("statistics_job").asset_layer.executable_asset_keys
    assert dg.AssetKey("out_team_disproportionality") in statistics


def test_rows_accounted_for_check_is_blocking():
    specs = {spec.name: spec for a in defs.assets for spec in getattr(a, "check_specs", [])}
    assert specs["rows_accounted_for"].blocking
    assert specs["rows_accounted_for"].asset_key == dg.AssetKey("core_quarantine")
