"""Partitions of the wiring (DESIGN.md §2 names this module): defined on the assets side, in
assets/partitions.py, because asset modules declare them and must not import pipelines/."""

from assets.partitions import MONTHS

__all__ = ["MONTHS"]
