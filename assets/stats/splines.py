"""R-compatible natural cubic spline basis (``splines::ns``) for the veil-of-darkness model.

Python's usual spline bases (patsy's ``cr()`` and ``bs()``, scikit-learn's
``SplineTransformer``) span different function spaces from R's ``ns()``: their knots,
boundary behaviour or constraints differ, and the veil-of-darkness coefficient moves in
the third decimal (../shared/external/vod_spline_case). This module rebuilds R's
construction step by step, so a published R model can be reproduced here:

1. interior knots at quantiles (R type 7) of ``x`` inside the boundary knots, boundary
   knots at ``min(x)``/``max(x)`` unless given;
2. the cubic (order 4) B-spline basis on the knot sequence with each boundary knot
   repeated four times (R's ``splineDesign``), evaluated by scipy's ``BSpline``;
3. without an intercept the first B-spline column is dropped;
4. the natural boundary conditions (second derivative zero at both boundary knots) are
   imposed as R does: QR-decompose the transposed 2-row constraint matrix and multiply
   the basis by the columns of Q orthogonal to the constraints (R's
   ``t(qr.qty(qr(t(const)), t(basis)))[, -(1:2)]``). LAPACK's Householder QR uses the same
   reflectors as R's LINPACK ``dqrdc2`` here, so even the signs of the columns agree;
5. beyond the boundary knots the basis continues linearly (R's behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg
from scipy.interpolate import BSpline

_ORDER = 4
_DEGREE = _ORDER - 1


def natural_spline_knots(
    x: np.ndarray | Sequence[float],
    df: int,
    boundary_knots: tuple[float, float] | None = None,
    *,
    intercept: bool = False,
    counts: np.ndarray | Sequence[int] | None = None,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Knots R's ``ns(x, df)`` chooses: interior knots at type-7 quantiles, boundary at the range.

    Returns ``(interior_knots, (lower, upper))``. Pass them to :func:`natural_spline_basis`
    to evaluate the same basis at other points (R's ``predict.ns``), e.g. at the distinct
    values of an aggregated data set. NaN values of ``x`` are ignored; interior knots use
    only the values inside the boundary knots, as in R. With `counts`, each value of ``x``
    stands for that many observations (an aggregated data set): the knots are those of the
    values repeated so, to the last bit (`quantiles_of_counts`).
    """
    x = np.asarray(x, dtype=float)
    known = ~np.isnan(x)
    x_known = x[known]
    if x_known.size == 0:
        raise ValueError("x has no non-missing value")
    if boundary_knots is None:
        lower, upper = float(x_known.min()), float(x_known.max())
    else:
        lower, upper = sorted(float(k) for k in boundary_knots)
    if not lower < upper:
        raise ValueError("the boundary knots coincide: x has no spread")
    interior_count = df - 1 - int(intercept)
    if interior_count < 0:
        raise ValueError(f"df must be at least {1 + int(intercept)}")
    within = (x_known >= lower) & (x_known <= upper)
    # NOTE: R: quantile(x[!outside], seq(0, 1, length = nIknots + 2)[-c(1, nIknots + 2)]),
    # type 7 = numpy's "linear" method.
    probabilities = np.linspace(0.0, 1.0, interior_count + 2)[1:-1]
    if interior_count == 0:
        interior = np.empty(0)
    elif counts is None:
        interior = np.quantile(x_known[within], probabilities, method="linear")
    else:
        interior = quantiles_of_counts(x_known[within], np.asarray(counts)[known][within],
                                       probabilities)
    return interior, (lower, upper)


def quantiles_of_counts(values: np.ndarray, counts: np.ndarray,
                        probabilities: np.ndarray) -> np.ndarray:
    """``np.quantile(np.repeat(values, counts), probabilities, method="linear")``, bit for bit,
    without repeating: `values` (float) each seen `counts` (positive integer) times.

    The order statistics around each virtual index (n − 1)·p are found in the cumulative
    counts, and interpolated with numpy's own arithmetic (its ``_lerp``: from the lower value
    below a weight of 0.5, from the upper one from 0.5 on).
    """
    order = np.argsort(values, kind="stable")
    values = np.asarray(values, dtype=float)[order]
    ends = np.cumsum(np.asarray(counts, dtype=np.int64)[order])
    n = int(ends[-1]) if ends.size else 0
    if n == 0:
        raise ValueError("no observations")
    probabilities = np.asarray(probabilities, dtype=float)
    virtual = (n - 1) * probabilities
    previous = np.floor(virtual)
    last = virtual >= n - 1
    below = np.where(last, n - 1, previous).astype(np.intp)
    above = np.where(last, n - 1, previous + 1).astype(np.intp)
    low = values[np.searchsorted(ends, below, side="right")]
    high = values[np.searchsorted(ends, above, side="right")]
    # NOTE: numpy takes the weight against the index it interpolates from, which is −1 (the
    # last) at or beyond the end: there both values are the largest and the weight is moot.
    gamma = virtual - np.where(last, -1.0, previous)
    diff = high - low
    return np.where(gamma >= 0.5, high - diff * (1 - gamma), low + diff * gamma)


def natural_spline_basis(
    x: np.ndarray | Sequence[float],
    df: int | None = None,
    knots: np.ndarray | Sequence[float] | None = None,
    boundary_knots: tuple[float, float] | None = None,
    *,
    intercept: bool = False,
) -> np.ndarray:
    """Evaluate R's natural cubic spline basis ``splines::ns(x, df, knots, intercept, Boundary.knots)``.

    Parameters
    ----------
    x : array_like
        Values of the predictor. NaN values give NaN rows, as R gives NA rows.
    df : int, optional
        Degrees of freedom (number of columns). With ``knots`` absent, ``df - 1 - intercept``
        interior knots are put at the quantiles ``seq(0, 1, length = df + 1 - intercept)``
        (without the ends) of the non-missing ``x`` inside the boundary knots, using R's
        default quantile (type 7, linear interpolation).
    knots : array_like, optional
        Interior knots; overrides ``df``.
    boundary_knots : (float, float), optional
        Where the natural boundary conditions are imposed; default the range of ``x``.
        Values of ``x`` outside them get the linear continuation of the basis.
    intercept : bool, default False
        Keep the first B-spline column (R's ``intercept = TRUE``).

    Returns
    -------
    numpy.ndarray
        Matrix of shape ``(len(x), n_interior_knots + 1 + intercept)``, equal to R's ``ns()``
        output (without its attributes).

    Raises
    ------
    ValueError
        If neither ``df`` nor ``knots`` is given, ``df`` is too small, ``x`` has no
        finite value or no spread, or a knot lies outside the boundary knots.

    References
    ----------
    R Core Team, ``splines::ns`` and ``splines::splineDesign`` (R package splines).
    Hastie, T. J. (1992). Generalized additive models. Chapter 7 of *Statistical Models
    in S*, eds J. M. Chambers and T. J. Hastie. Wadsworth & Brooks/Cole.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError("x must be one-dimensional")
    is_missing = np.isnan(x)
    x_known = x[~is_missing]
    if x_known.size == 0:
        raise ValueError("x has no non-missing value")

    if knots is None:
        if df is None:
            raise ValueError("give df or knots")
        interior, (lower, upper) = natural_spline_knots(
            x_known, df, boundary_knots, intercept=intercept
        )
    else:
        if boundary_knots is None:
            lower, upper = float(x_known.min()), float(x_known.max())
        else:
            lower, upper = sorted(float(k) for k in boundary_knots)
        if not lower < upper:
            raise ValueError("the boundary knots coincide: x has no spread")
        interior = np.sort(np.asarray(knots, dtype=float))
        if interior.size and (interior.min() <= lower or interior.max() >= upper):
            raise ValueError("interior knots must lie strictly inside the boundary knots")
    is_outside = (x_known < lower) | (x_known > upper)

    knot_sequence = np.sort(np.concatenate([np.repeat([lower, upper], _ORDER), interior]))
    basis_count = knot_sequence.size - _ORDER
    # NOTE: one BSpline whose coefficient matrix is the identity evaluates every basis
    # function (column) at once.
    all_bsplines = BSpline(knot_sequence, np.eye(basis_count), _DEGREE, extrapolate=False)

    basis = np.empty((x_known.size, basis_count))
    inside = ~is_outside
    basis[inside] = all_bsplines(x_known[inside])
    for pivot, side in ((lower, x_known < lower), (upper, x_known > upper)):
        if side.any():
            # NOTE: R continues the basis linearly beyond a boundary knot:
            # value at the knot + (x - knot) * first derivative at the knot.
            value = all_bsplines(np.array([pivot]))
            slope = all_bsplines(np.array([pivot]), nu=1)
            basis[side] = value + np.outer(x_known[side] - pivot, slope[0])

    constraints = all_bsplines(np.array([lower, upper]), nu=2)
    if not intercept:
        basis = basis[:, 1:]
        constraints = constraints[:, 1:]
    q_matrix, _ = scipy.linalg.qr(constraints.T)
    projected = basis @ q_matrix[:, 2:]

    result = np.full((x.size, projected.shape[1]), np.nan)
    result[~is_missing] = projected
    return result
