"""Parquet IO manager writing the warehouse layout of DESIGN.md §5.

`<warehouse>/<asset>.parquet` for unpartitioned assets, `<warehouse>/<asset>/<month>.parquet`
for monthly ones; zstd; written to a temporary file and renamed, so a killed run never leaves a
partial file. Metadata is aggregate only: row count, column schema, settings and code version
(and a copied landing file's name and sha256).

The raw query months are handed on in memory to the step of the same run that loads them whole
(`HANDED_ON`): stored as always, but not read back. A raw table whose landing file already holds
its typed rows (`assets.stored.RawTable` with a `DeliveredFile`) is stored as a byte copy of that
file, with its sha256 in the metadata, instead of its rows written again.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import PrivateAttr

from assets.atomic import copy_delivered_atomic, write_parquet_atomic
from assets.paths import DEFAULT_WAREHOUSE, resolve_dir
from assets.provenance import code_version
from assets.stored import ParquetFiles, RawTable


HANDED_ON = frozenset({"raw_person_queries", "raw_plate_queries"})
"""Assets whose frame a later step of the same run (core_queries) loads whole: kept from the
write to that load, so the month is not read back from the file just written (at 50M person
queries 0.65 s a month; docs/performance.md)."""


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars DataFrames as Parquet; loads them as DataFrame, LazyFrame or ParquetFiles by
    annotation."""

    warehouse_dir: str = ""
    _handed_on: dict[Path, tuple[tuple[int, int, int], pl.DataFrame]] = PrivateAttr(
        default_factory=dict)
    """Frames of `HANDED_ON` written in this run and not yet loaded, by path, with the identity
    of the file written (inode, size, modification time). Dagster gives each run its own copy
    of the IO manager, so a run never sees another's frames."""

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        # NOTE: frames no step took (a run whose raw check failed) go with the run, whatever
        # keeps the run's objects alive after it.
        self._handed_on.clear()

    @property
    def root(self) -> Path:
        return resolve_dir(self.warehouse_dir, "STOPCHECK_WAREHOUSE_DIR", DEFAULT_WAREHOUSE)

    def _path(self, asset_key: dg.AssetKey, partition: str | None) -> Path:
        base = self.root.joinpath(*asset_key.path)
        return base / f"{partition}.parquet" if partition else base.with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | RawTable) -> None:
        partition = None
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            if len(keys) != 1:
                raise ValueError(f"{context.asset_key.to_user_string()}: one partition per output")
            partition = keys[0]
        path = self._path(context.asset_key, partition)
        frame, delivered = (obj.frame, obj.delivered) if isinstance(obj, RawTable) else (obj, None)
        copied = {}
        if delivered is None:
            stamp = {"stopcheck:code_version": code_version()}
            settings = context.output_metadata.get("settings")
            if settings is not None:
                stamp["stopcheck:settings"] = json.dumps(settings.value, sort_keys=True)
            write_parquet_atomic(frame, path, stamp)
        else:
            # NOTE: the landing file is immutable and already the table (issue 15: "don't
            # rewrite what is immutable"); its copy keeps the warehouse layout of DESIGN.md §5.
            copied = {"delivered_file": dg.MetadataValue.path(str(delivered.path)),
                      "sha256": copy_delivered_atomic(delivered, path)}
        if context.asset_key.to_user_string() in HANDED_ON:
            self._handed_on[path] = (_identity(path), frame)
        context.add_output_metadata({
            "dagster/row_count": frame.height,
            "dagster/column_schema": dg.TableSchema(columns=[
                dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()
            ]),
            "code_version": code_version(),
            "file": dg.MetadataValue.path(str(path)),
            **copied,
        })

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame | ParquetFiles:
        key = context.asset_key
        if context.has_asset_partitions:
            paths = [self._path(key, p) for p in context.asset_partition_keys]
        else:
            paths = [self._path(key, None)]
        missing = [p for p in paths if not p.exists()]
        if missing:
            names = ", ".join(p.stem for p in missing[:12])
            raise FileNotFoundError(
                f"{key.to_user_string()}: {len(missing)} partition file(s) not materialised "
                f"({names}); materialise them first"
            )
        if not paths:
            raise FileNotFoundError(f"{key.to_user_string()}: no partition materialised yet")
        if context.dagster_type.typing_type is ParquetFiles:
            return ParquetFiles(tuple(paths))
        if len(paths) == 1 and context.dagster_type.typing_type is pl.DataFrame:
            kept = self._handed_on.pop(paths[0], None)
            # NOTE: only while the file is the one written with it: every write is a rename, so
            # a file replaced since (by another process or run) is a new file, which would have
            # to match inode, size and modification time to the nanosecond.
            if kept is not None and kept[0] == _identity(paths[0]):
                return kept[1]
        lazy = pl.scan_parquet(paths)
        if context.dagster_type.typing_type is pl.LazyFrame:
            return lazy
        return lazy.collect()
