"""Great Expectations 1.x suites as blocking Dagster asset checks.

One JSON suite per asset lives in ``expectations/<asset_name>.json`` (file stem == asset name);
:func:`build_gx_asset_checks` turns every suite whose stem names an asset into one blocking check
``gx_suite`` on that asset, so adding a JSON file adds a check. GX 1.x validates pandas, Spark and
SQL, not polars: the rows are validated by GX's SQL engine on DuckDB over the asset's Parquet
files, and the schema on a 0-row pandas frame (this module is the only place where a polars frame
becomes a pandas frame). DuckDB needs two shims to GX 1.24.1 (:func:`install_duckdb_shims`); a
third keeps GX from rebuilding each expectation's configuration (:func:`install_configuration_shim`).

Privacy: GX is asked for counts only (``result_format`` BASIC without unexpected values), and the
outcome keeps expectation types, column names and counts, never a value, an observed statistic or
an exception message (a traceback can quote a value). See docs/validation.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
import datetime as dt
import functools
import inspect
import json
from pathlib import Path
import tempfile
import threading
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from assets.frames import ConfigError
from assets.schema import TIMEZONE, month_bounds_utc
from assets.stored import ParquetFiles

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
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
})
"""Expectations decided by the column names and types alone: validated by GX on pandas, on a
0-row frame converted from the batch's schema (:func:`convert_to_pandas` maps dtypes, not values,
so its dtypes are those of the full conversion). Every other expectation runs on DuckDB."""

GX_VERSION = "1.24.1"
"""The GX release the DuckDB shims were written and tested for (pyproject.toml pins it)."""

DUCKDB_CONFIG: dict[str, Any] = {"memory_limit": "4GB"}
"""DuckDB settings of every validation: memory capped (beyond it DuckDB spills to the process's
private temporary folder). Without DuckDB's ICU extension (not installed) timestamps with time
zone are compared as UTC instants, whatever the machine's zone."""


def _duckdb_regex(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def regex_expression(column: Any, regex: str, dialect: Any, positive: bool = True) -> Any:
        if getattr(dialect, "name", None) != "duckdb":
            return original(column, regex, dialect, positive)
        import sqlalchemy as sa

        matches = sa.func.regexp_matches(column, sa.literal(regex))
        return matches if positive else sa.not_(matches)

    regex_expression.stopcheck_shim = True  # type: ignore[attr-defined]
    return regex_expression


DUCKDB_URL = "duckdb+stopcheck:///:memory:stopcheck"
"""SQLAlchemy URL of the DuckDB every validation of a process connects to
(pipelines/duckdb_dialect.py; `_duckdb_connect_args`)."""

_DUCKDB: dict[str, Any] = {}
"""The process's DuckDB database: its settings, its spill folder and the connection that keeps
it open."""

_DUCKDB_OPENING = threading.Lock()


def _duckdb_connect_args() -> dict[str, Any]:
    """Connection arguments of a validation's engine: the process's one in-memory DuckDB.

    NOTE: opening an in-memory DuckDB database costs 19 ms of CPU, and each validation opened
    two (GX connects twice): 2.3 s of CPU over the sample's monthly suites. A named in-memory
    database (``:memory:stopcheck``) is shared by the connections of a process while one stays
    open, so one is kept open here and later connections cost 0.05 ms. GX only reads (the
    query asset is a ``SELECT`` over the files, no table is created), so one validation leaves
    nothing for the next. DuckDB refuses a connection with other settings, so all share these.
    """
    # NOTE: a lock, so that two threads validating at once cannot open two databases with two
    # spill folders (the second one's connections would then be refused).
    with _DUCKDB_OPENING:
        if not _DUCKDB:
            from pipelines.duckdb_dialect import AutocommitDuckDBDialect

            spill = tempfile.TemporaryDirectory(prefix="stopcheck_duckdb_")
            config = {**DUCKDB_CONFIG, "temp_directory": spill.name}
            # NOTE: through the dialect, which adds its own settings (the user agent) to each.
            connection = AutocommitDuckDBDialect().connect(
                database=DUCKDB_URL.split("///", 1)[1], config=dict(config))
            _DUCKDB.update(spill=spill, config=config, connection=connection)
    # NOTE: a copy each time: the engine may add to the dict it is given, and the kept
    # database's settings must stay as opened.
    return {"config": dict(_DUCKDB["config"])}


def install_duckdb_shims() -> None:
    """Make GX 1.24.1's SQL engine work on DuckDB (duckdb-engine); idempotent.

    NOTE: two known problems (GX issue #11579; a native DuckDB engine is the open GX PR #12084):

    1. GX fetches a query's rows after closing its connection; the rollback on closing discards
       DuckDB's unbuffered result, so every metric came back empty and every expectation
       "broken". The SQLAlchemy dialect ``duckdb+stopcheck`` (pipelines/duckdb_dialect.py) runs
       every statement in autocommit mode; it is registered here (SQLAlchemy's public registry).
    2. GX has no regex expression for DuckDB ("Regex is not supported for dialect duckdb"):
       expect_column_values_to_match_regex gets DuckDB's ``regexp_matches`` (a search, as
       pandas' ``str.contains`` and Postgres' ``~``). This wraps one GX function (private).

    GX is pinned; another version is refused. ``tests/unit/test_gx.py`` checks exact counts
    through both shims, and that GX still needs each of them.
    """
    import great_expectations as gx_package
    from great_expectations.expectations.metrics.column_map_metrics import (
        column_values_match_regex as match_regex,
    )
    from sqlalchemy.dialects import registry

    if gx_package.__version__ != GX_VERSION:
        raise RuntimeError(
            f"great_expectations {gx_package.__version__} is installed; the DuckDB shims of "
            f"pipelines/gx.py are written for {GX_VERSION}: re-check them (tests/unit/test_gx.py)"
        )
    registry.register("duckdb.stopcheck", "pipelines.duckdb_dialect", "AutocommitDuckDBDialect")
    if not getattr(match_regex.get_dialect_regex_expression, "stopcheck_shim", False):
        match_regex.get_dialect_regex_expression = _duckdb_regex(
            match_regex.get_dialect_regex_expression)


_CONFIGURATIONS = threading.local()
"""Per thread, while :func:`_configurations_kept` is active: id → (expectation, configuration)."""


def _kept_configuration(original: property) -> property:
    def configuration(self: Any) -> Any:
        kept = getattr(_CONFIGURATIONS, "by_id", None)
        if kept is None:
            return original.fget(self)
        # NOTE: the expectation itself is kept too, so that its id is not reused meanwhile.
        hit = kept.get(id(self))
        if hit is None or hit[0] is not self:
            hit = kept[id(self)] = (self, original.fget(self))
        return hit[1]

    configuration.__wrapped__ = original  # type: ignore[attr-defined]
    configuration.stopcheck_shim = True  # type: ignore[attr-defined]
    return property(configuration)


@contextmanager
def _configurations_kept() -> Iterator[None]:
    """Within it, each expectation's ``configuration`` is built once (see
    :func:`install_configuration_shim`)."""
    _CONFIGURATIONS.by_id = {}
    try:
        yield
    finally:
        _CONFIGURATIONS.by_id = None


def install_configuration_shim() -> None:
    """Let GX 1.24.1 build an expectation's configuration once per validation; idempotent.

    NOTE: GX's ``Expectation.configuration`` is a property that rebuilds an
    ``ExpectationConfiguration`` from the pydantic model (``dict()`` and validation) on every
    read, and GX reads it for every domain, success and runtime keyword while it builds its
    metric graphs: 5,224 times in one month of the sample's five suites, 9% of a month's CPU.
    Within :func:`_configurations_kept` (one ``Batch.validate``, during which GX does not change
    an expectation) the first one built is returned again. Outside it GX is unchanged. A speed
    shim, not a fix: ``tests/unit/test_gx.py`` checks that the outcomes are the same with and
    without it, and that GX still rebuilds the configuration on every read.
    """
    from great_expectations.expectations.expectation import Expectation

    if not getattr(Expectation.configuration.fget, "stopcheck_shim", False):
        Expectation.configuration = _kept_configuration(Expectation.configuration)


def _without_unexpected_values(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_validation_dependencies(self: Any, *args: Any, **kwargs: Any) -> Any:
        dependencies = original(self, *args, **kwargs)
        wanted = dependencies.result_format
        name = f"{self.map_metric}.unexpected_values"
        if (wanted.get("partial_unexpected_count") == 0 and wanted.get("exclude_unexpected_values")
                and dependencies.get_metric_configuration(name) is not None):
            dependencies.remove_metric_configuration(name)
        return dependencies

    get_validation_dependencies.stopcheck_shim = True  # type: ignore[attr-defined]
    return get_validation_dependencies


def install_values_shim() -> None:
    """Let GX 1.24.1 leave out the unexpected values that `GX_RESULT_FORMAT` never shows;
    idempotent.

    NOTE: for a map expectation (a condition on every row) in the BASIC result format, GX asks
    for the ``unexpected_values`` metric whatever ``partial_unexpected_count`` says: with 0 (ours)
    it is one more query per expectation that returns no row (``... LIMIT 0``), and one more
    node of the metric graph: 23 of the 35 queries of a core person-query suite. When the
    format asks for no values and excludes them, the metric is dropped from the expectation's
    dependencies; GX then formats its result without values, as it does with them excluded. The
    counts and the verdict come from ``unexpected_count`` and ``element_count``, which stay. A
    sample month's five suites took 0.96 → 0.80 s of CPU. ``tests/unit/test_gx.py``
    checks that the outcomes are the same with and without it, and that GX still asks for the
    metric without it.
    """
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    for kind in (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation):
        if not getattr(kind.get_validation_dependencies, "stopcheck_shim", False):
            kind.get_validation_dependencies = _without_unexpected_values(
                kind.get_validation_dependencies)


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
    install_duckdb_shims()
    install_configuration_shim()
    install_values_shim()
    # NOTE: an ephemeral context keeps suites and results in memory only; a file context would
    # write validation results (with their counts) under gx/uncommitted/ (FACTS.md).
    return gx.get_context(mode="ephemeral", project_config=config)


def start_gx() -> None:
    """Import GX and build a context once, as the first suite of a process otherwise does (4–6 s
    of imports): for a worker process that has time before its first month."""
    _new_context()


BatchSource = pl.DataFrame | ParquetFiles | Sequence[Path]
"""What a suite validates: Parquet files (one batch over all of them) or a polars frame."""


@contextmanager
def _as_parquet_files(source: BatchSource) -> Iterator[tuple[Path, ...]]:
    if isinstance(source, pl.DataFrame):
        # NOTE: one SQL path for every batch: a frame (tests, notebooks, benchmarks) is written
        # to a private temporary file that is removed when the validation ends.
        with tempfile.TemporaryDirectory(prefix="stopcheck_gx_") as folder:
            path = Path(folder) / "batch.parquet"
            source.write_parquet(path)
            yield (path,)
    elif isinstance(source, ParquetFiles):
        yield source.paths
    else:
        yield tuple(Path(p) for p in source)


def _read_schema(paths: Sequence[Path]) -> pl.Schema:
    schemas = {tuple(pl.read_parquet_schema(path).items()) for path in paths}
    if len(schemas) != 1:
        raise ValueError(f"{len(paths)} Parquet files with {len(schemas)} different schemas")
    return pl.Schema(schemas.pop())


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _run_suite(batch_definition: Any, name: str, expectations: list[dict],
               positions: list[int], batch_parameters: Mapping[str, Any] | None = None,
               expectation_parameters: Mapping[str, Any] | None = None) -> list[Any]:
    from great_expectations.core import ExpectationSuite

    suite = ExpectationSuite(
        name=name,
        expectations=[
            {**expectations[i],
             "meta": {**expectations[i].get("meta", {}), "stopcheck_position": i}}
            for i in positions
        ],
    )
    # NOTE: Batch.validate rather than a ValidationDefinition: the definition, its suite and
    # its result would be serialised into the context's stores on every run, a third of the
    # CPU time of a suite on a small month, for records an ephemeral context throws away.
    batch = batch_definition.get_batch(batch_parameters=dict(batch_parameters or {}))
    with _configurations_kept():
        result = batch.validate(suite, result_format=GX_RESULT_FORMAT,
                                expectation_parameters=dict(expectation_parameters or {}))
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        counts = item.result or {}
        outcomes.append(ExpectationOutcome(
            position=int(config.meta["stopcheck_position"]),
            expectation_type=config.type,
            column=_column_of(config.kwargs),
            row_condition=describe_condition(config.kwargs.get("row_condition")),
            success=bool(item.success),
            is_broken=_is_broken(item.exception_info),
            unexpected_count=_as_int(counts.get("unexpected_count")),
            element_count=_as_int(counts.get("element_count")),
        ))
    return outcomes


_SCHEMA_OUTCOMES: dict[str, list[ExpectationOutcome]] = {}
"""Outcomes of schema expectations by (expectations, parameters, schema), for the process."""


def _validate_schema(context: Any, name: str, expectations: list[dict], positions: list[int],
                     schema: pl.Schema, parameters: Mapping[str, Any]) -> list[ExpectationOutcome]:
    chosen = [expectations[i] for i in positions]
    used = read_suite_parameters({"expectations": chosen})
    key = json.dumps([positions, chosen, {k: parameters[k] for k in sorted(used)},
                      [(column, str(dtype)) for column, dtype in schema.items()]],
                     sort_keys=True, default=str)
    # NOTE: on a 0-row frame the outcome is a function of the expectations and the schema
    # alone, the same for every month of an asset: GX runs once per process for each, not
    # twelve times a year (a tenth of a second of GX each time).
    if key not in _SCHEMA_OUTCOMES:
        batch_definition = (
            context.data_sources.add_pandas("stopcheck_schema")
            .add_dataframe_asset(name)
            .add_batch_definition_whole_dataframe("schema")
        )
        empty = convert_to_pandas(pl.DataFrame(schema=schema))
        _SCHEMA_OUTCOMES[key] = _run_suite(batch_definition, f"{name}__schema", expectations,
                                           positions, batch_parameters={"dataframe": empty},
                                           expectation_parameters=parameters)
    return list(_SCHEMA_OUTCOMES[key])


def validate_with_suite(
    source: BatchSource, suite_path: Path, parameters: Mapping[str, Any]
) -> SuiteOutcome:
    """Validate Parquet files (or a polars frame) against one GX 1.x JSON suite; counts only.

    Parameters
    ----------
    source
        The whole batch: the Parquet file(s) of one month of a partitioned asset or of an
        unpartitioned table (:class:`ParquetFiles` or paths), or a polars frame.
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

    Notes
    -----
    :data:`SCHEMA_EXPECTATIONS` run on GX's pandas engine on a 0-row frame of the batch's schema;
    every other expectation runs on GX's SQL engine on DuckDB over the Parquet files, every row
    (docs/validation.md). DuckDB reads only the columns a query names.
    """
    suite_json = load_suite_json(suite_path)
    missing = sorted(read_suite_parameters(suite_json) - set(parameters))
    if missing:
        raise ValueError(
            f"suite {suite_path.name} needs parameter(s) {', '.join(missing)}; "
            f"given: {', '.join(sorted(parameters)) or 'none'}"
        )
    expectations = suite_json["expectations"]
    on_schema = [i for i, e in enumerate(expectations) if e.get("type") in SCHEMA_EXPECTATIONS]
    on_rows = [i for i in range(len(expectations)) if i not in on_schema]
    name = suite_json["name"]
    context = _new_context()
    outcomes: list[ExpectationOutcome] = []
    with _as_parquet_files(source) as paths:
        schema = _read_schema(paths)
        row_count = int(pl.scan_parquet(list(paths)).select(pl.len()).collect().item())
        if on_schema:
            outcomes += _validate_schema(context, name, expectations, on_schema, schema,
                                         parameters)
        if on_rows:
            datasource = context.data_sources.add_sql(
                "stopcheck_duckdb", connection_string=DUCKDB_URL,
                kwargs={"connect_args": _duckdb_connect_args()},
            )
            files = ", ".join(_sql_string(str(path)) for path in paths)
            batch_definition = datasource.add_query_asset(
                name, query=f"SELECT * FROM read_parquet([{files}])"
            ).add_batch_definition_whole_table("rows")
            try:
                outcomes += _run_suite(batch_definition, f"{name}__rows", expectations,
                                       on_rows, expectation_parameters=parameters)
            finally:
                datasource.get_execution_engine().close()
    outcomes.sort(key=lambda e: e.position)
    return SuiteOutcome(suite_name=name, row_count=row_count, expectations=tuple(outcomes))


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

    def check_fn(context: dg.AssetCheckExecutionContext, asset_value: ParquetFiles,
                 **references: Any):
        keys = _partition_keys(context)
        parameters = build_default_parameters(
            suite_parameters, keys, references, reference_parameters=reference_parameters
        )
        if parameters_for is not None:
            single_key = keys[0] if len(keys) == 1 else None
            parameters.update(parameters_for(asset_name, single_key, references))
        outcome = validate_with_suite(asset_value, suite_path, parameters)
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
    # every suite, so its signature is set per check (Dagster honours __signature__). The
    # ParquetFiles annotation makes the IO manager hand over the asset's files, not a frame:
    # DuckDB reads them itself, only the columns each query needs.
    parameters = [
        inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("asset_value", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=ParquetFiles),
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
    required_prefixes: tuple[str, ...] = (),
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
    required_prefixes
        Assets whose name starts with one of these must have a suite: a missing one raises
        `ConfigError`, naming the folder and the files, instead of leaving the asset unchecked.

    Returns
    -------
    list of AssetChecksDefinition
        Sorted by asset key; partitioned assets get a check with the same partitions_def.
    """
    suite_paths = {path.stem: path for path in sorted(Path(expectations_dir).glob("*.json"))}
    names = {key.to_python_identifier() for assets_def in assets_defs for key in assets_def.keys}
    missing = sorted(name for name in names
                     if name.startswith(required_prefixes) and name not in suite_paths)
    if missing:
        # NOTE: a folder or a file left out of a deployment would otherwise build fewer checks,
        # and the runs would go on without validating those assets, without a word.
        raise ConfigError(f"{expectations_dir}: no Great Expectations suite for "
                          f"{', '.join(f'{name}.json' for name in missing)}; every asset named "
                          f"{' or '.join(f'{prefix}*' for prefix in required_prefixes)} is "
                          "validated by its suite (DESIGN.md §2)")
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
