"""What the warehouse's IO manager (pipelines/io_managers.py) takes and hands over besides polars
frames. Plain dataclasses, so that assets can use them without importing the pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assets.frames import DeliveredFile


@dataclass(frozen=True)
class RawTable:
    """A raw table as read from the landing zone: its typed rows, and the landing file when its
    bytes are those rows (`DeliveredFile`): the warehouse then copies the file instead of writing
    the rows again."""

    frame: pl.DataFrame
    delivered: DeliveredFile | None = None


@dataclass(frozen=True)
class ParquetFiles:
    """The Parquet files of one asset as stored (one per partition loaded, in partition order),
    not their content.

    An input annotated with this type gets the paths instead of a frame, for a reader that scans
    the files itself (the Great Expectations checks on DuckDB, pipelines/gx.py; the rows received
    per month, assets/statistics.py).
    """

    paths: tuple[Path, ...]
