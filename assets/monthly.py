"""Monthly tables: one partition per export month. Raw queries as delivered (refused whole if a
file holds a raw identifier); core queries validated, with every rejected row in core_quarantine."""

import dagster as dg
import polars as pl

from assets import frames, linkage
from assets.partitions import MONTHS
from assets.privacy import withhold_values
from assets.quarantine import QUARANTINE_REASONS, split_queries
from assets.resources import LandingZone, read_raw
from assets.stored import RawTable


@dg.asset(partitions_def=MONTHS)
@withhold_values
def raw_person_queries(context: dg.AssetExecutionContext, landing: LandingZone) -> RawTable:
    """One row per MEOS person query of one export month, as delivered (typed)."""
    return read_raw(context, frames.read_query_month(landing.root, "person", context.partition_key))


@dg.asset(partitions_def=MONTHS)
@withhold_values
def raw_plate_queries(context: dg.AssetExecutionContext, landing: LandingZone) -> RawTable:
    """One row per MEOS licence-plate query of one export month, as delivered (typed)."""
    return read_raw(context, frames.read_query_month(landing.root, "plate", context.partition_key))


@dg.multi_asset(
    outs={
        "core_person_queries": dg.AssetOut(
            description="One row per valid MEOS person query of one month, linked to CBS persons."),
        "core_plate_queries": dg.AssetOut(
            description="One row per valid licence-plate query of one month, linked to the holder."),
        "core_quarantine": dg.AssetOut(
            description="One row per rejected query row of one month with its reason; never "
                        "published."),
    },
    partitions_def=MONTHS,
    check_specs=[dg.AssetCheckSpec(
        "rows_accounted_for", asset="core_quarantine", blocking=True,
        description="Rows in (raw person + plate) = rows out (core person + plate + quarantine).",
    )],
)
@withhold_values
def core_queries(
    context: dg.AssetExecutionContext,
    landing: LandingZone,
    raw_person_queries: pl.DataFrame,
    raw_plate_queries: pl.DataFrame,
    core_team_areas: pl.DataFrame,
    core_persons: pl.DataFrame,
):
    """Quarantine invalid rows with a reason, link valid ones to CBS persons."""
    month = context.partition_key
    team_codes = core_team_areas["team_code"].unique().sort().to_list()
    outputs, quarantined = {}, []
    for query_type, raw in (("person", raw_person_queries), ("plate", raw_plate_queries)):
        split = split_queries(
            raw, query_type=query_type, month=month, team_codes=team_codes,
            source_file=frames.month_file(landing.root, query_type, month).name,
            earlier_ids=frames.iter_earlier_query_ids(landing.root, query_type, month,
                                                      overlapping=raw["query_id"]),
        )
        outputs[query_type] = linkage.link_queries(
            split.valid, core_persons, query_type=query_type, month=month)
        quarantined.append(split.quarantine)
    quarantine = pl.concat(quarantined)
    rows_in = raw_person_queries.height + raw_plate_queries.height
    rows_out = outputs["person"].height + outputs["plate"].height + quarantine.height
    by_reason = dict(quarantine.group_by("reason").len().iter_rows())
    yield dg.Output(outputs["person"], output_name="core_person_queries", metadata={
        "linked_count": int(outputs["person"]["is_linked"].sum())})
    yield dg.Output(outputs["plate"], output_name="core_plate_queries", metadata={
        "linked_count": int(outputs["plate"]["is_linked"].sum())})
    yield dg.Output(quarantine, output_name="core_quarantine", metadata={
        f"{reason}_count": int(by_reason.get(reason, 0)) for reason in QUARANTINE_REASONS})
    yield dg.AssetCheckResult(
        check_name="rows_accounted_for", asset_key="core_quarantine", passed=rows_in == rows_out,
        metadata={"rows_in": rows_in, "rows_out": rows_out},
    )
