"""Jobs: each selects asset groups; schedules, sensors and `stopcheck run` launch these."""

import dagster as dg

from assets.partitions import MONTHS

PUBLISHES = {"stopcheck/publication": "true"}
"""Tag of jobs that write publication/: the run queue runs one at a time (docs/operations.md)."""

reference_job = dg.define_asset_job(
    "reference_job",
    selection=dg.AssetSelection.groups("reference"),
    description="CBS persons, population and team areas: read, check, key.",
)
monthly_job = dg.define_asset_job(
    "monthly_job",
    selection=dg.AssetSelection.groups("monthly"),
    partitions_def=MONTHS,
    description="One export month: read, guard, quarantine, link.",
)
statistics_job = dg.define_asset_job(
    "statistics_job",
    selection=dg.AssetSelection.groups("statistics", "publication"),
    description="Every out_ table over all materialised months, then publication.",
    tags=PUBLISHES,
)

thematic_job = dg.define_asset_job(
    "thematic_job",
    selection=dg.AssetSelection.assets("out_thematic_disproportionality")
    | dg.AssetSelection.groups("publication"),
    description="The thematic analyses of themes.yaml, then publication.",
    tags=PUBLISHES,
)

JOBS = [reference_job, monthly_job, statistics_job, thematic_job]
