"""Great Expectations 1.x suites as blocking Dagster asset checks.

One JSON suite per asset lives in ``expectations/<asset_name>.json`` (file stem == asset name);
:func:`build_gx_asset_checks` turns every suite whose stem names an asset into one blocking check
``gx_suite`` on that asset, so adding a JSON file adds a check. This module is the only place where
a polars frame becomes a pandas frame (GX 1.x validates pandas, Spark and SQL, not polars).

Privacy: GX is asked for counts only (``result_format`` BASIC without unexpected values), and the
outcome keeps expectation types, column names and counts, never a value, an observed statistic or
an exception message (a traceback can quote a value). See docs/validation.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import datetime as dt
import inspect
import json
from pathlib import Path
import re
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from assets.schema import TIMEZONE, month_bounds_utc

GX_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "exclude_unexpected_values": True,
}
"""Counts without values: BOOLEAN_ONLY would drop unexpected_count too (FACTS.md)."""

GX_TYPE_NAMES: dict[type[pl.DataType], str] = {
    pl.String: "str",
    pl.Boolean: "bool",
    pl.Int64: "int64",
    pl.Int32: "int32",
    pl.UInt64: "uint64",
    pl.UInt32: "uint32",
    pl.Float64: "float64",
    pl.Datetime: "Timestamp",
}
"""The ``type_`` an ``expect_column_values_to_be_of_type`` needs for a polars dtype after
:func:`convert_to_pandas`: GX compares the pandas dtype's scalar type (StringDtype → ``str``,
BooleanDtype → ``numpy.bool_``, UInt64Dtype → ``numpy.uint64``, a tz-aware datetime64 →
``pandas.Timestamp``; a naive datetime64 would be ``numpy.datetime64`` and fail)."""

CHECK_NAME = "gx_suite"

REFERENCE_PARAMETERS: dict[str, tuple[str, str]] = {"team_codes": ("core_team_areas", "team_code")}
"""Suite parameter → (reference asset, column): a check whose suite uses the parameter declares
the asset as an extra input and fills the parameter with the column's sorted distinct values."""

_ZONE = ZoneInfo(TIMEZONE)


def lookup_gx_type_name(dtype: pl.DataType) -> str:
    """Return the GX ``type_`` name matching a polars dtype (see :data:`GX_TYPE_NAMES`)."""
    name = GX_TYPE_NAMES.get(dtype.base_type())
    if name is None:
        raise KeyError(f"no GX type name for polars dtype {dtype}")
    return name


def _pandas_dtype_for(arrow_type: pa.DataType) -> Any:
    # NOTE: nullable pandas dtypes keep a Boolean or UInt64 column with nulls as bool/uint64
    # (plain to_pandas makes them object/float64, which breaks type and value-set checks), and
    # timestamps stay numpy datetime64 so GX's between-comparison is vectorised (on Arrow-backed
    # timestamps GX loops in Python: the raw suite ran 6× slower; docs/validation.md).
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        # pandas 3's default "str" dtype: Arrow storage, NaN for missing.
        return pd.StringDtype("pyarrow", na_value=np.nan)
    if pa.types.is_integer(arrow_type):
        name = str(arrow_type)  # int64 -> Int64, uint64 -> UInt64
        return pd.api.types.pandas_dtype(name.replace("uint", "UInt").replace("int", "Int"))
    return None


def convert_to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """Convert a polars frame to the pandas frame GX validates (the only polars → pandas step).

    Strings become pandas' ``str`` dtype (Arrow storage), integers and booleans pandas'
    nullable dtypes, timestamps numpy ``datetime64`` with their time zone.
    """
    return frame.to_pandas(types_mapper=_pandas_dtype_for)


def load_suite_json(path: Path) -> dict[str, Any]:
    """Read a suite file as plain JSON (name, expectations [{type, kwargs, meta}], meta)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_suite_parameters(suite_json: Mapping[str, Any]) -> frozenset[str]:
    """Return the names of every ``{"$PARAMETER": name}`` used in a suite's kwargs."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if "$PARAMETER" in value:
                names.add(str(value["$PARAMETER"]))
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner)

    for expectation in suite_json.get("expectations", []):
        walk(expectation.get("kwargs", {}))
    return frozenset(names)


def read_condition_columns(condition: Any) -> frozenset[str]:
    """Return the columns a GX 1.x row condition (a Condition as JSON) reads."""
    columns: set[str] = set()
    if isinstance(condition, Mapping):
        column = condition.get("column")
        if isinstance(column, Mapping) and "name" in column:
            columns.add(str(column["name"]))
        for inner in condition.get("conditions", ()):
            columns |= read_condition_columns(inner)
    return frozenset(columns)


def describe_condition(condition: Any) -> str | None:
    """Render a GX 1.x row condition as text, e.g. ``is_linked == True``; None for no condition."""
    if not condition:
        return None
    if isinstance(condition, str):
        return condition
    kind = condition.get("type")
    if kind in ("and", "or"):
        parts = [describe_condition(inner) for inner in condition.get("conditions", ())]
        return "(" + f" {kind} ".join(p for p in parts if p) + ")"
    name = condition.get("column", {}).get("name")
    if kind == "nullity":
        return f"{name} is {'null' if condition.get('is_null') else 'not null'}"
    return f"{name} {condition.get('operator')} {condition.get('parameter')!r}"


def read_suite_columns(suite_json: Mapping[str, Any]) -> frozenset[str]:
    """Return every column a suite names (column, column_list, column_set, row conditions)."""
    columns: set[str] = set()
    for expectation in suite_json.get("expectations", []):
        kwargs = expectation.get("kwargs", {})
        if "column" in kwargs:
            columns.add(kwargs["column"])
        for key in ("column_list", "column_set"):
            columns.update(kwargs.get(key) or ())
        columns |= read_condition_columns(kwargs.get("row_condition"))
    return frozenset(columns)


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation on one batch: names and counts, never a value.

    ``is_broken`` means GX could not evaluate the expectation (an exception in its metrics, e.g.
    string bounds on a datetime column, a column that does not exist): not bad data.
    ``unexpected_count``/``element_count`` are None for table-level expectations.
    """

    position: int
    expectation_type: str
    column: str | None
    row_condition: str | None
    success: bool
    is_broken: bool
    unexpected_count: int | None
    element_count: int | None

    @property
    def label(self) -> str:
        """``expect_x(column)`` plus the row condition, for messages."""
        target = f"({self.column})" if self.column else "()"
        where = f" where {self.row_condition}" if self.row_condition else ""
        return f"{self.expectation_type}{target}{where}"


@dataclass(frozen=True)
class SuiteOutcome:
    """One suite validated on one batch; counts only, safe for Dagster metadata."""

    suite_name: str
    row_count: int
    expectations: tuple[ExpectationOutcome, ...] = field(default_factory=tuple)

    @property
    def broken(self) -> tuple[ExpectationOutcome, ...]:
        """Expectations GX could not evaluate."""
        return tuple(e for e in self.expectations if e.is_broken)

    @property
    def failed(self) -> tuple[ExpectationOutcome, ...]:
        """Expectations evaluated and not met by the data (broken ones excluded)."""
        return tuple(e for e in self.expectations if not e.success and not e.is_broken)

    @property
    def success(self) -> bool:
        """True when every expectation was evaluated and met."""
        return not self.broken and not self.failed

    def describe(self) -> str:
        """A plain-language summary with names and counts only."""
        if self.success:
            return f"suite {self.suite_name}: all {len(self.expectations)} expectations met"
        parts = []
        if self.broken:
            labels = ", ".join(e.label for e in self.broken)
            parts.append(
                f"{len(self.broken)} broken expectation(s), not bad data (GX could not "
                f"evaluate them; fix the suite or the adapter): {labels}"
            )
        if self.failed:
            labels = ", ".join(
                e.label
                + (f": {e.unexpected_count} unexpected rows" if e.unexpected_count else "")
                for e in self.failed
            )
            parts.append(f"{len(self.failed)} expectation(s) failed on the data: {labels}")
        return f"suite {self.suite_name}: " + "; ".join(parts)

    def to_metadata(self) -> dict[str, Any]:
        """Dagster metadata: counts, expectation types and column names only."""
        return {
            "suite": self.suite_name,
            "row_count": self.row_count,
            "expectations_evaluated": len(self.expectations),
            "expectations_failed": len(self.failed),
            "expectations_broken": len(self.broken),
            "failed_expectations": dg.MetadataValue.json(
                [
                    {
                        "expectation": e.expectation_type,
                        "column": e.column,
                        "row_condition": e.row_condition,
                        "unexpected_count": e.unexpected_count,
                    }
                    for e in self.failed
                ]
            ),
            "broken_expectations": dg.MetadataValue.json(
                [
                    {"expectation": e.expectation_type, "column": e.column}
                    for e in self.broken
                ]
            ),
        }


def _is_broken(exception_info: Any) -> bool:
    # NOTE: GX never raises on a metric error: exception_info is either flat
    # {raised_exception, ...} or keyed by metric id, one entry per failed metric (FACTS.md).
    if not exception_info:
        return False
    if isinstance(exception_info, Mapping) and "raised_exception" in exception_info:
        return bool(exception_info["raised_exception"])
    if isinstance(exception_info, Mapping):
        for value in exception_info.values():
            if isinstance(value, Mapping):
                raised = value.get("raised_exception", True)
            else:
                raised = getattr(value, "raised_exception", True)
            if raised:
                return True
        return False
    return bool(getattr(exception_info, "raised_exception", False))


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    if kwargs.get("column") is not None:
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    return None


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


SCHEMA_EXPECTATIONS = frozenset({
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
    "expect_column_to_exist",
})
"""Expectations decided by the column names alone: validated on a 0-row frame."""

ROW_COUNT_EXPECTATIONS = frozenset({
    "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
})
"""Expectations decided by the row count alone: validated on a frame with no columns."""


def plan_batches(
    expectations: Sequence[Mapping[str, Any]], frame_columns: Sequence[str]
) -> dict[tuple[str, ...], list[int]]:
    """Group expectation positions by the batch they need, one GX batch per group.

    A key is the tuple of frame columns the expectations read (in frame order), or one of
    three markers: ``("<schema>",)`` for :data:`SCHEMA_EXPECTATIONS` (a 0-row frame),
    ``("<rows>",)`` for :data:`ROW_COUNT_EXPECTATIONS` (no columns, every row) and
    ``("<all>",)`` for any other expectation without a column and any expectation naming a
    column the frame lacks (the whole frame, so GX reports the missing column itself).
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for position, expectation in enumerate(expectations):
        kwargs = expectation.get("kwargs", {})
        needed: list[str] = []
        if kwargs.get("column") is not None:
            needed.append(kwargs["column"])
        needed.extend(kwargs.get("column_list") or ())
        condition = kwargs.get("row_condition")
        if isinstance(condition, str):  # GX < 1.9 style; unused by our suites
            needed.extend(
                c
                for c in frame_columns
                if re.search(rf"(?<![\w`]){re.escape(c)}(?![\w`])", condition)
            )
        else:
            needed.extend(sorted(read_condition_columns(condition)))
        kind = expectation.get("type")
        if kind in SCHEMA_EXPECTATIONS and set(needed) <= set(frame_columns):
            key: tuple[str, ...] = ("<schema>",)
        elif kind in ROW_COUNT_EXPECTATIONS and not needed:
            key = ("<rows>",)
        elif not needed or not set(needed) <= set(frame_columns):
            key = ("<all>",)
        else:
            key = tuple(sorted(set(needed), key=list(frame_columns).index))
        groups.setdefault(key, []).append(position)
    return groups


def _batch_frame(frame: pl.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    """The pandas frame one group of :func:`plan_batches` is validated on."""
    if key == ("<schema>",):
        return convert_to_pandas(frame.head(0))
    if key == ("<rows>",):
        return pd.DataFrame(index=pd.RangeIndex(frame.height))
    if key == ("<all>",):
        return convert_to_pandas(frame)
    return convert_to_pandas(frame.select(key))


def _skip_batch_fingerprint() -> None:
    from great_expectations.execution_engine import pandas_execution_engine

    # NOTE: GX md5-hashes every cell of each pandas batch under 1 GB (hash_pandas_object), only
    # to label the batch in its result. That was 45% of a suite's time on 5M rows and changes no
    # outcome. GX 1.x has no setting for it; the threshold is a module global (GX is pinned, and
    # tests/unit/test_gx.py fails if the hash still runs after an upgrade).
    pandas_execution_engine.HASH_THRESHOLD = 0


def _new_context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    _skip_batch_fingerprint()
    # NOTE: an ephemeral context keeps suites and results in memory only; a file context would
    # write validation results (with their counts) under gx/uncommitted/ (FACTS.md).
    return gx.get_context(mode="ephemeral", project_config=config)


def validate_with_suite(
    frame: pl.DataFrame, suite_path: Path, parameters: Mapping[str, Any]
) -> SuiteOutcome:
    """Validate a polars frame against one GX 1.x JSON suite; return counts, never values.

    Parameters
    ----------
    frame
        The whole batch (one month of a partitioned asset, or an unpartitioned table).
    suite_path
        ``expectations/<asset_name>.json``.
    parameters
        Values for the suite's ``{"$PARAMETER": name}`` placeholders (``month_start`` and
        ``month_end`` as tz-aware datetimes, ``team_codes`` as a list, ...). Extra keys are
        ignored; a missing one raises ValueError naming it.

    Returns
    -------
    SuiteOutcome
        One ExpectationOutcome per expectation, in suite order.
    """
    from great_expectations.core import ExpectationSuite, ValidationDefinition

    suite_json = load_suite_json(suite_path)
    missing = sorted(read_suite_parameters(suite_json) - set(parameters))
    if missing:
        raise ValueError(
            f"suite {suite_path.name} needs parameter(s) {', '.join(missing)}; "
            f"given: {', '.join(sorted(parameters)) or 'none'}"
        )
    context = _new_context()
    batch_definition = (
        context.data_sources.add_pandas("stopcheck")
        .add_dataframe_asset(suite_json["name"])
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    results = []
    groups = plan_batches(suite_json["expectations"], frame.columns)
    for group_number, (key, positions) in enumerate(groups.items()):
        # NOTE: GX filters the whole frame (every column) for each column expectation
        # (df[df[col].notnull()]), so each group of expectations gets a pandas frame of only
        # the columns it reads, converted just before and freed just after: time and memory
        # follow the columns read, not the width of the table (docs/validation.md).
        batch = _batch_frame(frame, key)
        suite = context.suites.add(
            ExpectationSuite(
                name=f"{suite_json['name']}__{group_number}",
                expectations=[
                    {
                        **suite_json["expectations"][i],
                        "meta": {
                            **suite_json["expectations"][i].get("meta", {}),
                            "stopcheck_position": i,
                        },
                    }
                    for i in positions
                ],
            )
        )
        # NOTE: a ValidationDefinition builds its batch once; Batch.validate builds it twice,
        # and GX fingerprints (hashes) every batch it builds under 1 GB, ~40% of the time of a
        # 4M-row month (docs/validation.md).
        validation = context.validation_definitions.add(
            ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
        )
        result = validation.run(
            batch_parameters={"dataframe": batch},
            expectation_parameters=dict(parameters),
            result_format=GX_RESULT_FORMAT,
        )
        results.extend(result.results)
        del batch, result

    outcomes = []
    for item in results:
        config = item.expectation_config
        kwargs = config.kwargs
        counts = item.result or {}
        outcomes.append(
            ExpectationOutcome(
                position=int(config.meta["stopcheck_position"]),
                expectation_type=config.type,
                column=_column_of(kwargs),
                row_condition=describe_condition(kwargs.get("row_condition")),
                success=bool(item.success),
                is_broken=_is_broken(item.exception_info),
                unexpected_count=_as_int(counts.get("unexpected_count")),
                element_count=_as_int(counts.get("element_count")),
            )
        )
    outcomes.sort(key=lambda e: e.position)
    return SuiteOutcome(
        suite_name=suite_json["name"], row_count=frame.height, expectations=tuple(outcomes)
    )


def build_default_parameters(
    suite_parameters: Iterable[str],
    partition_keys: Sequence[str],
    references: Mapping[str, Any],
    *,
    reference_parameters: Mapping[str, tuple[str, str]] = REFERENCE_PARAMETERS,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Fill the standard suite parameters a suite asks for.

    - ``month_start``/``month_end``: [start of the first, end of the last) partition month in
      Europe/Amsterdam, as UTC datetimes; ``months``: the partition keys.
    - ``current_year``: this year in Europe/Amsterdam (``today`` overrides, for tests).
    - a reference parameter (``team_codes``): sorted distinct non-null values of the column of
      the loaded reference frame (:data:`REFERENCE_PARAMETERS`).
    - ``quarantine_reasons``: ``assets.quarantine.QUARANTINE_REASONS`` (imported lazily).
    """
    wanted = set(suite_parameters)
    parameters: dict[str, Any] = {}
    if partition_keys and wanted & {"month_start", "month_end", "months"}:
        keys = sorted(partition_keys)
        parameters["month_start"] = month_bounds_utc(keys[0])[0]
        parameters["month_end"] = month_bounds_utc(keys[-1])[1]
        parameters["months"] = keys
    if "current_year" in wanted:
        parameters["current_year"] = (today or dt.datetime.now(_ZONE).date()).year
    for name, (asset_name, column) in reference_parameters.items():
        if name in wanted and asset_name in references:
            frame = _as_polars(references[asset_name])
            parameters[name] = frame.get_column(column).drop_nulls().unique().sort().to_list()
    if "quarantine_reasons" in wanted:
        from assets.quarantine import QUARANTINE_REASONS  # the lead owns the reason codes

        parameters["quarantine_reasons"] = list(QUARANTINE_REASONS)
    return parameters


def _as_polars(value: Any) -> pl.DataFrame:
    # NOTE: the IO manager returns a polars DataFrame; loading several partitions through a
    # UPathIOManager gives {partition_key: frame}, concatenated here in key order.
    if isinstance(value, pl.DataFrame):
        return value
    if isinstance(value, pl.LazyFrame):
        return value.collect()
    if isinstance(value, Mapping):
        frames = [_as_polars(value[key]) for key in sorted(value)]
        return pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    raise TypeError(f"expected a polars DataFrame from the IO manager, got {type(value).__name__}")


def _partition_keys(context: dg.AssetCheckExecutionContext) -> list[str]:
    if context.has_partition_key_range:
        return list(context.partition_keys)
    if context.has_partition_key:
        return [context.partition_key]
    return []


ParametersFor = Callable[[str, "str | None", Any], Mapping[str, Any]]


def _build_check(
    asset_key: dg.AssetKey,
    suite_path: Path,
    partitions_def: dg.PartitionsDefinition | None,
    parameters_for: ParametersFor | None,
    reference_parameters: Mapping[str, tuple[str, str]],
    check_name: str,
) -> dg.AssetChecksDefinition:
    suite_json = load_suite_json(suite_path)
    suite_parameters = read_suite_parameters(suite_json)
    asset_name = asset_key.to_python_identifier()
    reference_assets = sorted(
        {
            asset
            for name, (asset, _column) in reference_parameters.items()
            if name in suite_parameters and asset != asset_name
        }
    )

    def check_fn(context: dg.AssetCheckExecutionContext, asset_value: Any, **references: Any):
        frame = _as_polars(asset_value)
        keys = _partition_keys(context)
        parameters = build_default_parameters(
            suite_parameters, keys, references, reference_parameters=reference_parameters
        )
        if parameters_for is not None:
            single_key = keys[0] if len(keys) == 1 else None
            parameters.update(parameters_for(asset_name, single_key, references))
        outcome = validate_with_suite(frame, suite_path, parameters)
        metadata = outcome.to_metadata()
        if keys:
            metadata["months"] = dg.MetadataValue.json(keys)
        return dg.AssetCheckResult(
            passed=outcome.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=outcome.describe(),
        )

    # NOTE: Dagster reads a check's inputs from the function signature; one function serves
    # every suite, so its signature is set per check (Dagster honours __signature__).
    parameters = [
        inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("asset_value", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ] + [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for name in reference_assets
    ]
    check_fn.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    check_fn.__name__ = f"{asset_name}__{check_name}"

    description = (
        f"Great Expectations suite expectations/{suite_path.name} "
        f"({len(suite_json.get('expectations', []))} expectations). "
        + suite_json.get("meta", {}).get("stopcheck", {}).get("notes", "")
    ).strip()
    return dg.asset_check(
        asset=asset_key,
        name=check_name,
        description=description,
        blocking=True,
        additional_ins={name: dg.AssetIn(key=name) for name in reference_assets},
        partitions_def=partitions_def,
        metadata={"suite_file": f"expectations/{suite_path.name}"},
    )(check_fn)


def build_gx_asset_checks(
    assets_defs: Sequence[dg.AssetsDefinition],
    expectations_dir: Path,
    parameters_for: ParametersFor | None = None,
    *,
    reference_parameters: Mapping[str, tuple[str, str]] = REFERENCE_PARAMETERS,
    check_name: str = CHECK_NAME,
) -> list[dg.AssetChecksDefinition]:
    """Build one blocking asset check per suite file whose stem names an asset.

    Parameters
    ----------
    assets_defs
        The assets to look at; each key of a multi-asset is matched on its own.
    expectations_dir
        Folder of ``<asset_name>.json`` suites. Files naming no asset are ignored.
    parameters_for
        Optional hook ``(asset_name, partition_key | None, references) -> dict`` whose values
        override the defaults of :func:`build_default_parameters`; ``references`` maps the
        reference asset name (e.g. ``"core_team_areas"``) to its loaded value. The partition key
        is None for unpartitioned assets and for a run over a range of partitions.
    reference_parameters
        Suite parameter → (asset, column) filled from a reference asset the check loads as an
        extra input (``additional_ins``): by default ``team_codes`` from ``core_team_areas``.
    check_name
        Name of every check (checks are told apart by their asset).

    Returns
    -------
    list of AssetChecksDefinition
        Sorted by asset key; partitioned assets get a check with the same partitions_def.
    """
    suite_paths = {path.stem: path for path in sorted(Path(expectations_dir).glob("*.json"))}
    checks = []
    seen: set[dg.AssetKey] = set()
    for assets_def in assets_defs:
        for key in sorted(assets_def.keys, key=lambda k: k.to_user_string()):
            name = key.to_python_identifier()
            if name not in suite_paths or key in seen:
                continue
            seen.add(key)
            checks.append(
                _build_check(
                    key,
                    suite_paths[name],
                    assets_def.specs_by_key[key].partitions_def,
                    parameters_for,
                    reference_parameters,
                    check_name,
                )
            )
    return sorted(checks, key=lambda c: next(iter(c.check_keys)).asset_key.to_user_string())
