"""Sums of floats that do not depend on the order of the rows.

polars hands the rows of a group over in no fixed order (a hash group-by, a join), and float
addition depends on order: the same inputs would give outputs that differ in the last bits, and
DESIGN.md §6 asks for byte-identical outputs. Sorting the values first does not help: the query
optimiser drops a sort in front of a sum. So each term is rounded to a multiple of 2⁻ᵇ and summed
as a 64-bit integer, which is exact in any order.
"""

from __future__ import annotations

import polars as pl

FIXED_POINT_BITS = 24
"""Terms are rounded to multiples of 2⁻²⁴ (6·10⁻⁸): far below any published precision, and
sums up to 5·10¹¹ stay exact in 64-bit integers."""


def fixed_point_sum(expr: pl.Expr, bits: int = FIXED_POINT_BITS) -> pl.Expr:
    """Σ expr in an aggregation, the same in any row order (nulls are skipped)."""
    scale = float(2**bits)
    return (expr * scale).round().cast(pl.Int64).sum().cast(pl.Float64) / scale


def fixed_point_mean(expr: pl.Expr, bits: int = FIXED_POINT_BITS) -> pl.Expr:
    """The mean of expr in an aggregation, the same in any row order (nulls are skipped)."""
    return fixed_point_sum(expr, bits) / expr.count()
