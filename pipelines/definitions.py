"""The one Definitions of stopcheck: asset modules by group, checks, jobs, schedules, sensors."""

import dagster as dg

from assets import monthly, publication, reference_tables, statistics
from assets.provenance import PROJECT_ROOT
from pipelines.gx import build_gx_asset_checks
from pipelines.jobs import JOBS
from pipelines.resources import build_resources
from pipelines.schedules import SCHEDULES, SENSORS

GROUPS = {
    "reference": reference_tables,
    "monthly": monthly,
    "statistics": statistics,
    "publication": publication,
}
"""Asset module per group: adding an asset to a module adds it to the graph and its job."""

all_assets = [
    asset
    for group, module in GROUPS.items()
    for asset in dg.load_assets_from_modules([module], group_name=group)
]


gx_checks = build_gx_asset_checks(all_assets, PROJECT_ROOT / "expectations",
                                  required_prefixes=("raw_", "core_"))
"""One blocking Great Expectations check per suite file in expectations/ (pipelines/gx.py); every
raw_ and core_ asset must have one."""


def build_definitions(landing_dir: str = "", warehouse_dir: str = "",
                      themes_file: str = "") -> dg.Definitions:
    """The Definitions, with paths given here or (when empty) resolved at run time from
    STOPCHECK_LANDING_DIR / STOPCHECK_WAREHOUSE_DIR / STOPCHECK_THEMES_FILE and the DESIGN.md §3
    defaults."""
    return dg.Definitions(
        assets=all_assets,
        asset_checks=gx_checks,
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=SENSORS,
        # NOTE: on 2 cores the multiprocess executor costs seconds per step for no gain;
        # docs/operations.md says how to scale out with dagster-k8s or dagster-celery instead.
        executor=dg.in_process_executor,
        resources=build_resources(landing_dir, warehouse_dir, themes_file),
    )


defs = build_definitions()
