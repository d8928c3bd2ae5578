"""Statistical disclosure control of `out_*` tables on their way to `publication/` (METHODS.md §9).

One step, in one place (STYLE.md rule 6): every publication table goes through
:func:`apply_disclosure_control`, and :func:`check_disclosure` is the blocking check that refuses a
table breaking the rules. Cells are flagged (`is_suppressed`, `suppression_reason`) and emptied,
never dropped.

Rules (docs/publication.md explains them for readers):

* **Primary suppression** of a cell (one row) when
  - its person count is below the threshold (10), or unknown;
  - any event count (the numerator of a published rate or share) is below the threshold;
  - for a rate or share, the complement (denominator − numerator) is below the threshold;
  - any other published count lies in 1..threshold − 1.
  "Below the threshold" includes zero for person counts, event counts and complements: a share of
  0 % or 100 % of a small group discloses something about every member of it (group disclosure).
* **Secondary suppression** so that no suppressed cell can be derived from published totals.
  A *margin* names a dimension column and its total value (``team_code`` = ``"ALL"``): the total
  row equals the sum of the rows with the same other keys. In every such group (total plus
  members) the number of suppressed cells must be 0 or at least 2; a group with exactly one gets the
  smallest published member suppressed as well (ties broken by key order; the total when no member
  is left). This repeats over all margins until nothing changes, because a suppression in one
  dimension can leave a single suppressed cell in another. Finally a linear-algebra test over all
  margin equations at once looks for suppressed cells that are still determined exactly by
  combining groups (possible in tables with two margins), and suppresses more until none is.
* **Linked dimensions** hold alternative views of the same counts (``benchmark``: team_residents and
  area_residents rows repeat one query count with different populations). A cell suppressed for one
  value of a linked dimension is suppressed for all of its values, or the other row would publish
  the hidden count.
* **Emptying**: on a suppressed row every column except the key columns and the declared
  pass-through columns becomes null: counts, estimates and anything else.
* **Rounding** (optional): published counts are rounded to the nearest multiple of `round_to`
  (5 in CBS practice). CBS rounds at random; this rounding is deterministic so that the same
  inputs give byte-identical outputs. Counts are non-negative integers and 5 is odd, so there are
  no ties; for an even base a tie rounds up (half away from zero). Estimates are computed from the
  unrounded counts and are not rounded.

A spec must classify every column of the table (key, count, estimate or pass-through): an
unclassified column is an error, so that a count added to a table later cannot reach publication
without a decision about it.

References
----------
.. [1] Hundepool, A., Domingo-Ferrer, J., Franconi, L., Giessing, S., Schulte Nordholt, E.,
   Spicer, K. and de Wolf, P.-P. (2012). *Statistical Disclosure Control*. Wiley. The chapters
   on tabular data: threshold rule, secondary cell suppression, rounding, linked tables.
.. [2] METHODS.md §9 (CBS practice for output leaving the secure environment) and DESIGN.md §6.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
import functools

import numpy as np
import polars as pl
import scipy.linalg

from assets.schema import ALL_TEAMS

SUPPRESSED_COLUMN = "is_suppressed"
REASON_COLUMN = "suppression_reason"
FLAG_COLUMNS = (SUPPRESSED_COLUMN, REASON_COLUMN)
REASON_PRIMARY = "primary"
REASON_SECONDARY = "secondary"
DEFAULT_THRESHOLD = 10
_NULL_SPACE_TOLERANCE = 1e-8


@dataclass(frozen=True)
class Margin:
    """A dimension of a table along which rows add up to a total row.

    Rows whose `dimension` equals `total` hold the sum of the rows that share every other key
    column and whose `dimension` is one of `members` (every other value when `members` is None).
    A hierarchy such as origin codes under an origin group is several margins on one dimension,
    e.g. ``Margin("origin", "Buiten Europa", ("TR", "MA", ...))``.
    """

    dimension: str
    total: object
    members: tuple[object, ...] | None = None
    where: tuple[tuple[str, tuple], ...] = ()
    """Only rows whose column holds one of the listed values: ``(("benchmark", ("a", "b")),)``."""
    at_least: bool = False
    """The total holds at least the sum of its members (the members are disjoint parts of it,
    but not all of it), e.g. resident-only queries: queries of residents in their own team's
    area, against queries of residents anywhere in the covered area."""
    person_attribute: bool = False
    """The dimension is an attribute of the person (origin): distinct persons add up along it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", tuple((c, tuple(v)) for c, v in self.where))
        if self.members is not None:
            object.__setattr__(self, "members", tuple(self.members))
            if self.total in self.members:
                raise ValueError(
                    f"margin {self.dimension!r}: the total is listed among its members"
                )


@dataclass(frozen=True)
class DisclosureSpec:
    """What every column of one publication table is, for disclosure control.

    Parameters
    ----------
    key_columns
        Columns that identify a cell (one row); must be unique together.
    person_count
        Column with the number of distinct persons in the cell, or None for tables without persons.
    event_counts
        Counts of events that are numerators of published rates or shares (``query_count``,
        ``hit_count``).
    complements
        ``(numerator, denominator)`` pairs of a published share or rate: the complement
        denominator − numerator must also reach the threshold.
    count_columns
        Every other published count (rounded, and suppressed when in 1..threshold − 1). Person and
        event counts and complement columns are always treated as published counts too.
    estimate_columns
        Ratios, intervals, rates, p- and q-values: emptied on suppressed rows.
    margins
        The additive structure used for secondary suppression, as :class:`Margin` objects or
        ``(dimension, total)`` / ``(dimension, total, members)`` tuples.
    linked_dimensions
        Key columns whose values are alternative views of the same counts; suppression is made
        identical across them.
    passthrough_columns
        Descriptive, non-disclosive columns kept on suppressed rows (a team name, a label).
    public_columns
        Counts the public knows from elsewhere (CBS populations): the attacker model
        (``assets.attacker``) takes them as known even on suppressed rows.
    distinct_counts
        Counts of distinct persons: along a margin the total is at least every member and at
        most their sum (their sum, when the margin runs over a person attribute).
    monotone_counts
        Counts that only grow with the set of queries (persons queried twice or more): the
        total of a margin is at least every member.
    row_relations
        ``(smaller, sense, larger)`` within every row: Σ smaller ≤ (or ==) Σ larger.
    repeated_counts
        ``(column, dimension)``: the count is one value repeated on every row that differs only
        in `dimension` (a team's unlinked queries on each origin's row).
    positive_with
        ``(column, partner)``: column ≥ 1 whenever partner ≥ 1 (persons of queries).
    period_dimension
        A key column of period labels (``2025-Q3``, ``2025``, ``2025-01..2026-06``): quarters
        add up to their year, every period lies within the range (``assets.attacker``).
    reference_dimension
        The key column of the reference value (origin) of ratio estimates.
    reference_estimates
        Estimate columns that also use the reference row (same keys, reference value in
        `reference_dimension`): hidden when that row is suppressed.
    q_values
        ``(q column, p column)``: Benjamini–Hochberg q-values, recomputed in publication over
        the published p-values only (per value of `q_value_family` columns), so that no q-value
        depends on a hidden p-value.
    q_value_family
        Key columns that separate families of tests (the theme).
    pooled_estimates
        Estimate columns that use every member row of their margin groups (a mean over teams,
        a shrunk estimate): hidden on every row of a group with a suppressed member.
    """

    key_columns: tuple[str, ...]
    person_count: str | None = None
    event_counts: tuple[str, ...] = ()
    complements: tuple[tuple[str, str], ...] = ()
    count_columns: tuple[str, ...] = ()
    estimate_columns: tuple[str, ...] = ()
    margins: tuple[Margin, ...] = field(default=())
    linked_dimensions: tuple[str, ...] = ()
    passthrough_columns: tuple[str, ...] = ()
    public_columns: tuple[str, ...] = ()
    distinct_counts: tuple[str, ...] = ()
    monotone_counts: tuple[str, ...] = ()
    row_relations: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = ()
    positive_with: tuple[tuple[str, str], ...] = ()
    repeated_counts: tuple[tuple[str, str], ...] = ()
    period_dimension: str | None = None
    reference_dimension: str = "origin"
    reference_estimates: tuple[str, ...] = ()
    pooled_estimates: tuple[str, ...] = ()
    q_values: tuple[tuple[str, str], ...] = ()
    q_value_family: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        for name in ("public_columns", "distinct_counts", "monotone_counts",
                     "reference_estimates", "pooled_estimates"):
            set_(name, tuple(getattr(self, name)))
        set_("row_relations", tuple((tuple(a), str(s), tuple(b)) for a, s, b in self.row_relations))
        set_("positive_with", tuple((str(a), str(b)) for a, b in self.positive_with))
        set_("repeated_counts", tuple((str(a), str(b)) for a, b in self.repeated_counts))
        set_("q_values", tuple((str(a), str(b)) for a, b in self.q_values))
        set_("q_value_family", tuple(self.q_value_family))
        set_("key_columns", tuple(self.key_columns))
        set_("event_counts", tuple(self.event_counts))
        set_("complements", tuple((str(n), str(d)) for n, d in self.complements))
        set_("count_columns", tuple(self.count_columns))
        set_("estimate_columns", tuple(self.estimate_columns))
        set_("linked_dimensions", tuple(self.linked_dimensions))
        set_("passthrough_columns", tuple(self.passthrough_columns))
        set_("margins", tuple(m if isinstance(m, Margin) else Margin(*m) for m in self.margins))
        if not self.key_columns:
            raise ValueError("a disclosure spec needs at least one key column")
        roles = {
            "key": set(self.key_columns),
            "count": set(self.published_counts),
            "estimate": set(self.estimate_columns),
            "passthrough": set(self.passthrough_columns),
        }
        names = list(roles)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                both = sorted(roles[first] & roles[second])
                if both:
                    raise ValueError(f"columns classified both {first} and {second}: {both}")
        reserved = sorted(set(self.classified_columns) & set(FLAG_COLUMNS))
        if reserved:
            raise ValueError(f"{reserved} are written by disclosure control; do not classify them")
        for dimension in [m.dimension for m in self.margins] + list(self.linked_dimensions):
            if dimension not in self.key_columns:
                raise ValueError(f"dimension {dimension!r} is not a key column")
        counts = set(self.published_counts)
        for role in ("public_columns", "distinct_counts", "monotone_counts"):
            stray = sorted(set(getattr(self, role)) - counts)
            if stray:
                raise ValueError(f"{role} must be count columns: {stray}")
        estimates = set(self.estimate_columns) | set(self.passthrough_columns)
        for role in ("reference_estimates", "pooled_estimates"):
            stray = sorted(set(getattr(self, role)) - estimates)
            if stray:
                raise ValueError(f"{role} must be estimate columns: {stray}")
        for a, sense, b in self.row_relations:
            if sense not in ("<=", "=="):
                raise ValueError(f"row relation sense must be '<=' or '==', not {sense!r}")
            stray = sorted(set(a + b) - counts)
            if stray:
                raise ValueError(f"row relations must name count columns: {stray}")

    @property
    def published_counts(self) -> tuple[str, ...]:
        """Every count column, in a fixed order: person, event, complement columns, other counts."""
        ordered = [self.person_count] if self.person_count else []
        ordered += list(self.event_counts)
        ordered += [c for pair in self.complements for c in pair]
        ordered += list(self.count_columns)
        return tuple(dict.fromkeys(ordered))

    @property
    def classified_columns(self) -> tuple[str, ...]:
        """Every column the spec names."""
        return tuple(
            dict.fromkeys(
                [*self.key_columns, *self.published_counts, *self.estimate_columns]
                + list(self.passthrough_columns)
            )
        )

    @property
    def emptied_columns(self) -> tuple[str, ...]:
        """Columns set to null on a suppressed row: everything but keys and pass-through."""
        kept = set(self.key_columns) | set(self.passthrough_columns)
        return tuple(c for c in self.classified_columns if c not in kept)

    def restricted_to(self, columns: Iterable[str]) -> DisclosureSpec:
        """Drop optional count, estimate and pass-through columns absent from `columns`.

        Key, person, event and complement columns are never dropped: without them the rules
        cannot be applied, so their absence stays an error. The one exception is the period
        dimension: a table of one period has no period labels.
        """
        present = set(columns)
        keys = tuple(k for k in self.key_columns
                     if k in present or k != self.period_dimension)
        kept = set(self.key_columns) | {self.person_count} | set(self.event_counts) | {
            c for pair in self.complements for c in pair} | present

        def keep(names: Iterable[str]) -> tuple[str, ...]:
            return tuple(c for c in names if c in present)

        return replace(
            self,
            key_columns=keys,
            count_columns=keep(self.count_columns),
            estimate_columns=keep(self.estimate_columns),
            passthrough_columns=keep(self.passthrough_columns),
            public_columns=keep(self.public_columns),
            distinct_counts=keep(self.distinct_counts),
            monotone_counts=keep(self.monotone_counts),
            row_relations=tuple(r for r in self.row_relations if set(r[0] + r[2]) <= kept),
            positive_with=tuple(p for p in self.positive_with if set(p) <= kept),
            repeated_counts=tuple(p for p in self.repeated_counts if p[0] in kept),
            q_values=tuple(p for p in self.q_values if set(p) <= present),
            reference_estimates=keep(self.reference_estimates),
            pooled_estimates=keep(self.pooled_estimates),
        )


_RATIO_ESTIMATES = (
    "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high",
    "std_ratio", "std_ratio_ci_low", "std_ratio_ci_high",
    "person_rate_ratio", "person_rate_ratio_ci_low", "person_rate_ratio_ci_high",
    "p_value", "q_value",
)
_SHRUNK = ("shrunk_ratio", "shrunk_ci_low", "shrunk_ci_high")
_ALL_SCOPE = ("team_residents", "area_residents")

TEAM_DISPROPORTIONALITY_SPEC = DisclosureSpec(
    # NOTE: `period` (issue 13) is dropped by restricted_to while the table lacks it.
    key_columns=("period", "period_start", "period_end", "query_type", "benchmark", "team_code",
                 "origin"),
    person_count="person_count",
    event_counts=("query_count",),
    # NOTE: population is a CBS count (already rounded to 5 by CBS); it is treated as a published
    # count so that a tiny origin group in a team's area is not published next to its rates.
    # It is public (CBS publishes it), so the attacker model knows it on every row.
    count_columns=("population",),
    public_columns=("population",),
    # NOTE: person_rate_ratio* and interval_method come with issue 11; restricted_to drops
    # them while the table lacks them.
    estimate_columns=("queries_per_1000", *_RATIO_ESTIMATES, *_SHRUNK),
    passthrough_columns=("interval_method",),
    # NOTE: the whole area is the sum of the teams for the all-queries benchmarks; under
    # resident_only it holds residents queried anywhere in the area, so at least their sum.
    margins=(
        Margin("team_code", ALL_TEAMS, where=(("benchmark", _ALL_SCOPE),)),
        Margin("team_code", ALL_TEAMS, where=(("benchmark", ("resident_only",)),), at_least=True),
    ),
    # NOTE: team_residents and area_residents rows share one query count (only the population
    # differs), so a cell hidden under one benchmark must be hidden under all of them.
    linked_dimensions=("benchmark",),
    distinct_counts=("person_count",),
    row_relations=((("person_count",), "<=", ("query_count",)),),
    positive_with=(("person_count", "query_count"),),
    period_dimension="period",
    reference_estimates=(*_RATIO_ESTIMATES, *_SHRUNK),
    pooled_estimates=_SHRUNK,
    q_values=(("q_value", "p_value"),),
)
"""Spec of `out_team_disproportionality` (DESIGN.md §5). Use ``.restricted_to(frame.columns)``
while the std_ratio, q_value or shrunk_* columns do not exist yet."""


# --------------------------------------------------------------------------------------------
# Table structure: margin groups and linked groups as lists of row positions.


@dataclass(frozen=True)
class _Group:
    """One additive equation: the total row equals the sum of the member rows."""

    margin: int
    total: int
    members: tuple[int, ...]

    @property
    def cells(self) -> tuple[int, ...]:
        return (self.total, *self.members)


@dataclass(frozen=True)
class _Structure:
    groups: tuple[_Group, ...]
    linked: tuple[tuple[int, ...], ...]


# NOTE: cached because the judge's search (assets/release.py) controls the same tables once a
# round and the publication check judges them again: a structure is a function of the keys.
@functools.lru_cache(maxsize=32)
def _build_structure(keys: tuple[tuple, ...], spec: DisclosureSpec) -> _Structure:
    groups: list[_Group] = []
    for m_index, margin in enumerate(spec.margins):
        d = spec.key_columns.index(margin.dimension)
        scope = [(spec.key_columns.index(c), set(v)) for c, v in margin.where]
        totals: dict[tuple, int] = {}
        members: dict[tuple, list[int]] = {}
        for row, key in enumerate(keys):
            if any(key[i] not in values for i, values in scope):
                continue
            other = key[:d] + key[d + 1 :]
            value = key[d]
            if value == margin.total:
                totals[other] = row
            elif margin.members is None or value in margin.members:
                members.setdefault(other, []).append(row)
        for other, total in totals.items():
            if members.get(other):
                groups.append(_Group(m_index, total, tuple(members[other])))
    linked: list[tuple[int, ...]] = []
    for dimension in spec.linked_dimensions:
        d = spec.key_columns.index(dimension)
        by_other: dict[tuple, list[int]] = {}
        for row, key in enumerate(keys):
            by_other.setdefault(key[:d] + key[d + 1 :], []).append(row)
        linked += [tuple(rows) for rows in by_other.values() if len(rows) > 1]
    return _Structure(tuple(groups), tuple(linked))


def _find_determined(suppressed: Sequence[bool], structure: _Structure) -> list[int]:
    """Suppressed rows whose additive counts follow exactly from the published ones.

    Every margin group gives an equation total − Σ members = 0 and every linked pair one of
    equality; published cells are constants. A suppressed cell is determined when its unit vector
    lies in the row space of the equations restricted to the suppressed cells, i.e. when every
    vector of their null space is zero at that cell.
    """
    equations: list[dict[int, float]] = []
    for group in structure.groups:
        coefficients = {group.total: 1.0} | {m: -1.0 for m in group.members}
        equations.append({c: v for c, v in coefficients.items() if suppressed[c]})
    for rows in structure.linked:
        for a, b in zip(rows, rows[1:]):
            equations.append({c: v for c, v in ((a, 1.0), (b, -1.0)) if suppressed[c]})
    equations = [e for e in equations if e]
    # NOTE: union-find over suppressed cells sharing an equation keeps each SVD small.
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for equation in equations:
        cells = sorted(equation)
        for other in cells[1:]:
            ra, rb = find(cells[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    components: dict[int, list[dict[int, float]]] = {}
    for equation in equations:
        components.setdefault(find(next(iter(equation))), []).append(equation)
    determined: list[int] = []
    for component in components.values():
        cells = sorted({c for e in component for c in e})
        position = {c: i for i, c in enumerate(cells)}
        matrix = np.zeros((len(component), len(cells)))
        for r, equation in enumerate(component):
            for c, v in equation.items():
                matrix[r, position[c]] = v
        null_space = scipy.linalg.null_space(matrix)
        norms = np.linalg.norm(null_space, axis=1) if null_space.size else np.zeros(len(cells))
        determined += [c for c, n in zip(cells, norms) if n < _NULL_SPACE_TOLERANCE]
    return sorted(determined)


def _pick_smallest(candidates: Iterable[int], sizes: Sequence[float | None]) -> int | None:
    ordered = sorted(candidates, key=lambda r: (sizes[r] is None, sizes[r] or 0, r))
    return ordered[0] if ordered else None


def _suppress_secondary(
    suppressed: list[bool], structure: _Structure, sizes: Sequence[float | None]
) -> list[bool]:
    """Grow the suppressed set to a fixed point where no suppressed cell can be derived."""
    suppressed = list(suppressed)
    unfixable: set[int] = set()
    while True:
        changed = True
        while changed:
            changed = False
            for rows in structure.linked:
                if any(suppressed[r] for r in rows) and not all(suppressed[r] for r in rows):
                    for r in rows:
                        suppressed[r] = True
                    changed = True
            for group in structure.groups:
                if sum(suppressed[c] for c in group.cells) != 1:
                    continue
                pick = _pick_smallest((m for m in group.members if not suppressed[m]), sizes)
                suppressed[group.total if pick is None else pick] = True
                changed = True
        determined = [r for r in _find_determined(suppressed, structure) if r not in unfixable]
        if not determined:
            return suppressed
        # NOTE: one cell at a time: the singleton pass above often settles the rest cheaply.
        cell = determined[0]
        for group in structure.groups:
            if cell in group.cells and not all(suppressed[c] for c in group.cells):
                pick = _pick_smallest((m for m in group.members if not suppressed[m]), sizes)
                suppressed[group.total if pick is None else pick] = True
                break
        else:
            unfixable.add(cell)


# --------------------------------------------------------------------------------------------
# Validation shared by apply and check.


def _missing_columns(frame: pl.DataFrame, spec: DisclosureSpec) -> list[str]:
    return [c for c in spec.classified_columns if c not in frame.columns]


def _unclassified_columns(frame: pl.DataFrame, spec: DisclosureSpec) -> list[str]:
    known = set(spec.classified_columns) | set(FLAG_COLUMNS)
    return [c for c in frame.columns if c not in known]


def _validate(frame: pl.DataFrame, spec: DisclosureSpec, threshold: int) -> None:
    if threshold < 1:
        raise ValueError("the disclosure threshold must be at least 1")
    missing = _missing_columns(frame, spec)
    if missing:
        raise ValueError(f"columns named by the disclosure spec are missing: {missing}")
    unclassified = _unclassified_columns(frame, spec)
    if unclassified:
        raise ValueError(
            f"columns not classified by the disclosure spec (key, count, estimate or "
            f"pass-through): {unclassified}"
        )
    for column in spec.published_counts:
        if not frame.schema[column].is_integer():
            raise TypeError(f"count column {column!r} must be an integer type")
        negative = frame.filter(pl.col(column) < 0).height
        if negative:
            raise ValueError(f"count column {column!r} has {negative} negative rows")
    duplicated = frame.select(pl.struct(spec.key_columns).is_duplicated().sum()).item()
    if duplicated:
        raise ValueError(f"{duplicated} rows share their key columns with another row")
    if SUPPRESSED_COLUMN in frame.columns and frame.schema[SUPPRESSED_COLUMN] != pl.Boolean:
        raise TypeError(f"{SUPPRESSED_COLUMN!r} must be Boolean")


def primary_expr(spec: DisclosureSpec, threshold: int) -> pl.Expr:
    """True where a row breaks a primary rule (see the module docstring)."""
    conditions: list[pl.Expr] = []
    if spec.person_count:
        person = pl.col(spec.person_count)
        conditions.append(person.is_null() | (person < threshold))
    conditions += [(pl.col(c) < threshold).fill_null(False) for c in spec.event_counts]
    conditions += [
        ((pl.col(d).cast(pl.Int64) - pl.col(n).cast(pl.Int64)) < threshold).fill_null(False)
        for n, d in spec.complements
    ]
    conditions += [
        pl.col(c).is_between(1, threshold - 1).fill_null(False) for c in spec.published_counts
    ]
    # NOTE: a table without counts (model coefficients) has no primary rule to break.
    return pl.any_horizontal(conditions) if conditions else pl.lit(False)


def _size_column(spec: DisclosureSpec) -> str | None:
    counts = spec.published_counts
    return counts[0] if counts else None


# --------------------------------------------------------------------------------------------
# Public API.


def apply_disclosure_control(
    frame: pl.DataFrame,
    spec: DisclosureSpec,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    round_to: int | None = None,
) -> pl.DataFrame:
    """One row per cell of the input table, flagged and emptied by disclosure control.

    Applies primary suppression, secondary suppression to a fixed point over all margins and
    linked dimensions, empties suppressed rows and optionally rounds published counts (rules in
    the module docstring). Rows are sorted by the key columns. A pre-existing Boolean
    `is_suppressed` column is respected: its true rows stay suppressed.

    Parameters
    ----------
    frame
        The table; every column must be classified by `spec`.
    spec
        What each column is, and the table's margins.
    threshold
        Smallest publishable person, event or complement count.
    round_to
        Round published counts to the nearest multiple of this number (None: no rounding).

    Returns
    -------
    pl.DataFrame
        The input columns with `is_suppressed` (Boolean) and `suppression_reason`
        ("primary", "secondary" or null) added or replaced.

    Raises
    ------
    ValueError, TypeError
        When the table does not match the spec (missing or unclassified columns, non-integer or
        negative counts, duplicate keys). Messages name columns and row counts, never values.

    References
    ----------
    .. [1] Hundepool, A. et al. (2012). *Statistical Disclosure Control*. Wiley.
    """
    _validate(frame, spec, threshold)
    if round_to is not None and round_to < 1:
        raise ValueError("round_to must be a positive integer")
    ordered = frame.sort(list(spec.key_columns), nulls_last=True, maintain_order=True)
    rule = primary_expr(spec, threshold)
    if SUPPRESSED_COLUMN in ordered.columns:
        rule = rule | pl.col(SUPPRESSED_COLUMN).fill_null(False)
    primary = ordered.with_columns(rule.alias("_p")).get_column("_p").to_list()
    previous_reason = (
        ordered.get_column(REASON_COLUMN).to_list()
        if REASON_COLUMN in ordered.columns
        else [None] * ordered.height
    )
    keys = tuple(ordered.select(spec.key_columns).rows())
    size_column = _size_column(spec)
    sizes = ordered.get_column(size_column).to_list() if size_column else [None] * ordered.height
    suppressed = _suppress_secondary(primary, _build_structure(keys, spec), sizes)
    reasons = [
        (previous or REASON_PRIMARY) if is_primary else (REASON_SECONDARY if hidden else None)
        for is_primary, hidden, previous in zip(primary, suppressed, previous_reason)
    ]
    published = ~pl.col(SUPPRESSED_COLUMN)
    emptied = [
        pl.when(published).then(pl.col(c)).otherwise(None).alias(c) for c in spec.emptied_columns
    ]
    result = ordered.with_columns(
        pl.Series(SUPPRESSED_COLUMN, suppressed, dtype=pl.Boolean),
        pl.Series(REASON_COLUMN, reasons, dtype=pl.String),
    ).with_columns(emptied)
    if round_to is not None:
        result = result.with_columns(
            ((pl.col(c) + round_to // 2) // round_to * round_to).cast(result.schema[c]).alias(c)
            for c in spec.published_counts
        )
    return result


def check_disclosure(
    frame: pl.DataFrame, spec: DisclosureSpec, *, threshold: int = DEFAULT_THRESHOLD
) -> list[str]:
    """Violations of the disclosure rules in a publication table; an empty list means it passes.

    Checks that published rows meet every primary rule, that suppressed rows carry no value
    outside their key and pass-through columns, that no margin group has exactly one suppressed
    cell (the total counts as a cell: a hidden total under published members is their sum), that
    linked dimensions are suppressed alike, and that no suppressed cell is determined exactly by
    the published totals. Messages name columns, margins and numbers of rows, never cell values.
    """
    missing = _missing_columns(frame, spec) + (
        [] if SUPPRESSED_COLUMN in frame.columns else [SUPPRESSED_COLUMN])
    if missing:
        return [f"columns are missing: {missing}"]
    violations: list[str] = []
    unclassified = _unclassified_columns(frame, spec)
    if unclassified:
        violations.append(f"columns not classified by the disclosure spec: {unclassified}")
    if frame.schema[SUPPRESSED_COLUMN] != pl.Boolean:
        return [*violations, f"{SUPPRESSED_COLUMN!r} is not Boolean"]
    unflagged = frame.get_column(SUPPRESSED_COLUMN).null_count()
    if unflagged:
        violations.append(f"{unflagged} rows have a null {SUPPRESSED_COLUMN!r}")
    duplicated = frame.select(pl.struct(spec.key_columns).is_duplicated().sum()).item()
    if duplicated:
        violations.append(f"{duplicated} rows share their key columns with another row")

    published = frame.filter(~pl.col(SUPPRESSED_COLUMN).fill_null(False))

    def count_rows(expr: pl.Expr) -> int:
        return published.select(expr.fill_null(False).sum()).item()

    if spec.person_count:
        person = pl.col(spec.person_count)
        n = count_rows(person.is_null() | (person < threshold))
        if n:
            violations.append(
                f"{n} published rows have {spec.person_count!r} missing or below {threshold}"
            )
    for column in spec.event_counts:
        n = count_rows(pl.col(column) < threshold)
        if n:
            violations.append(f"{n} published rows have {column!r} below {threshold}")
    for numerator, denominator in spec.complements:
        complement = pl.col(denominator).cast(pl.Int64) - pl.col(numerator).cast(pl.Int64)
        n = count_rows(complement < threshold)
        if n:
            violations.append(
                f"{n} published rows have {denominator!r} - {numerator!r} below {threshold}"
            )
    for column in spec.published_counts:
        n = count_rows(pl.col(column).is_between(1, threshold - 1))
        if n:
            violations.append(f"{n} published rows have {column!r} between 1 and {threshold - 1}")
        n = count_rows(pl.col(column) < 0)
        if n:
            violations.append(f"{n} published rows have a negative {column!r}")

    hidden = frame.filter(pl.col(SUPPRESSED_COLUMN).fill_null(False))
    kept = set(spec.key_columns) | set(spec.passthrough_columns) | set(FLAG_COLUMNS)
    for column in [c for c in frame.columns if c not in kept]:
        n = hidden.height - hidden.get_column(column).null_count()
        if n:
            violations.append(f"{n} suppressed rows carry a value in {column!r}")

    if duplicated:
        return violations
    keys = tuple(frame.select(spec.key_columns).rows())
    suppressed = frame.get_column(SUPPRESSED_COLUMN).fill_null(False).to_list()
    structure = _build_structure(keys, spec)
    for m_index, margin in enumerate(spec.margins):
        singles = sum(
            1
            for g in structure.groups
            if g.margin == m_index and sum(suppressed[c] for c in g.cells) == 1
        )
        if singles:
            violations.append(
                f"margin {margin.dimension}={margin.total!r}: {singles} groups have exactly one "
                f"suppressed cell, recoverable from the total"
            )
    misaligned = sum(
        1
        for rows in structure.linked
        if any(suppressed[r] for r in rows) and not all(suppressed[r] for r in rows)
    )
    if misaligned:
        violations.append(
            f"{misaligned} cells are suppressed for some but not all values of a linked dimension "
            f"{list(spec.linked_dimensions)}"
        )
    determined = _find_determined(suppressed, structure)
    if determined:
        violations.append(
            f"{len(determined)} suppressed cells can be derived exactly from published totals"
        )
    return violations
