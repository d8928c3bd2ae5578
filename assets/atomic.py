"""Atomic file writes: a temporary file in the same folder, then a rename.

A run killed mid-write leaves at most a hidden `.<name>.<pid>.tmp` file, never a partial output;
the next write of the same output removes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    _replace_atomically(Path(path), lambda tmp: tmp.write_bytes(data))


def write_parquet_atomic(frame: pl.DataFrame, path: Path, metadata: dict[str, str]) -> None:
    """Write `frame` as zstd Parquet with key-value `metadata` to `path` atomically."""
    # NOTE: zstd level 1: a 4.2M-row month writes in 1.04 s instead of 1.57 s (level 3) at the
    # same size, as pseudonyms are random hex that no level compresses (docs/performance.md).
    _replace_atomically(
        Path(path),
        lambda tmp: frame.write_parquet(
            tmp, compression="zstd", compression_level=1, metadata=metadata))
