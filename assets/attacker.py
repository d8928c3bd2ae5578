"""What an attacker who reads the whole release can learn about each suppressed count.

The attacker of DESIGN.md §6 and METHODS.md §9 holds every table of one release (every theme,
period, benchmark and column, ratios, intervals and bounds included), knows the rules (threshold,
rounding base, published precision, the specs) and public facts (CBS populations, the length of
each period), and can solve linear programmes. This module is that attacker, in code:

1. :func:`derive_relations` turns the release into linear relations between counts. Every count
   cell of every table is a variable; a published cell is known (an interval when counts are
   rounded), an empty one is unknown. Relations come from the specs (margins such as
   ``team_code = ALL``, period hierarchies, relations inside one row such as persons ≤ queries)
   and from declarations that span tables (:class:`Balance`: the same count published twice, a
   total published in another table) and from published estimates (:class:`Ratio`: a rate ratio
   next to public populations is a linear relation between two counts, widened by the published
   precision).
2. :func:`attack` solves, per connected component of the relation graph, linear programmes
   (HiGHS through ``highspy``, one model per component) for the feasible interval ``[low, high]`` of every
   suppressed count, rounded inwards to integers. A count is **pinned** when ``high − low`` is
   below the threshold or the interval lies inside ``1..threshold − 1``.

What the attacker does not get: which cells were suppressed as primary or secondary (publication
carries no reason), per-stratum counts (so the standardised ratio, intervals and p-values, which
are not linear in the counts, are not used; they are hidden with their inputs instead, see
``assets.release``).

Work is bounded: published exact counts are substituted, so a programme only holds unknowns;
each component is solved once for the smallest and once for the largest sum of its unknowns, and
those two solutions (and the true values, when the defender passes them) are witnesses that
certify most counts at once. Only counts no witness certifies get programmes of their own.

References
----------
.. [1] Hundepool, A. et al. (2012). *Statistical Disclosure Control*, Wiley, ch. 4 (tabular data:
   attacker intervals by linear programming, protection levels, linked tables).
.. [2] de Wolf, P.-P. (2002). HiTaS: a heuristic approach to cell suppression in hierarchical
   tables. In *Inference Control in Statistical Databases*, LNCS 2316, Springer.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import highspy
import numpy as np
import polars as pl
import scipy.sparse as sparse
from scipy.sparse.csgraph import connected_components

from assets.disclosure import DisclosureSpec
from assets.stats.processors import available_processors

_TOLERANCE = 1e-6
_FULL_PRECISION = 1e-9
"""Relative half-width of an estimate published at full float precision."""


@dataclass(frozen=True)
class Rules:
    """The rules of one release, as the attacker knows them."""

    threshold: int = 10
    round_to: int | None = None
    """Published counts are rounded to this base (None: exact)."""
    significant_digits: int | None = None
    """Published estimates carry this many significant digits (None: full precision)."""
    reference: str = "NL"
    """The reference value of the ``reference_dimension`` of the specs."""


@dataclass(frozen=True)
class Side:
    """Count columns of one table, summed over the rows that share the join key values.

    `on` names this table's columns that are matched, in order, with the other side's `on`.
    `where` keeps only rows whose column holds one of the listed values.
    """

    table: str
    columns: tuple[str, ...]
    on: tuple[str, ...]
    where: tuple[tuple[str, tuple], ...] = ()


@dataclass(frozen=True)
class Balance:
    """Σ left (`sense`) Σ right, for every key present on both sides.

    ``identity=True`` says both sides are one and the same count published twice (one column,
    one row on each side): a hidden count whose twin is published is not a suppressed count.
    `complete` names a column of the left table that the left sum runs over: the relation is an
    equality only for keys whose rows hold every value of that column seen in the table, and
    ``left ≤ right`` otherwise. `months_within` = (left period_start, left period_end, right
    month column) matches right rows whose month lies in the left row's period.
    """

    name: str
    left: Side
    right: Side
    sense: Literal["==", "<="] = "=="
    identity: bool = False
    complete: str | None = None
    months_within: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Within:
    """Each count of an inner row is at most the same count of every outer row containing it.

    Rows match on the `on` columns and, with `periods` = ((inner start, inner end), (outer
    start, outer end)), when the outer period contains the inner one. `inner.columns` and
    `outer.columns` pair up in order.
    """

    name: str
    inner: Side
    outer: Side
    periods: tuple[tuple[str, str], tuple[str, str]] | None = None


@dataclass(frozen=True)
class Term:
    """``coef × column`` of the row (or of its reference row); column None is the constant 1.

    `coef` is a number or a polars expression over the row's public values: key columns,
    public columns (``population``) and the reference row's columns prefixed ``ref_``.
    """

    column: str | None
    coef: float | pl.Expr = 1.0
    reference: bool = False


@dataclass(frozen=True)
class Ratio:
    """A published estimate that is a ratio of linear forms in counts: column = N / D.

    Where the estimate is published, ``low ≤ N/D ≤ high`` with [low, high] the values that round
    to the published one; with D > 0 that is two linear inequalities.
    """

    table: str
    column: str
    numerator: tuple[Term, ...]
    denominator: tuple[Term, ...]


@dataclass(frozen=True)
class Bound:
    """Whatever else a published row says about one of its counts: ``low ≤ column ≤ high``,
    both polars expressions over the published row (null: no bound). A per-cell suppression
    reason is such a statement ('primary': below the threshold)."""

    table: str
    column: str
    low: pl.Expr
    high: pl.Expr


@dataclass(frozen=True)
class Declarations:
    """Everything the release says about how its tables relate, beyond each spec."""

    specs: Mapping[str, DisclosureSpec]
    balances: tuple[Balance, ...] = ()
    within: tuple[Within, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    bounds: tuple[Bound, ...] = ()


# --------------------------------------------------------------------------------------------
# Variables and relations.


@dataclass
class _System:
    """Every count cell as a variable, every relation as a ranged row ``low ≤ Σ coef·x ≤ high``."""

    cells: pl.DataFrame  # var, table, row, column, value (null: hidden), truth, public_twin
    # (public_twin: the value an identical published count gives, NaN when none)
    tables: dict[str, pl.DataFrame]  # published tables with `_row` and public values
    rel: np.ndarray
    var: np.ndarray
    coef: np.ndarray
    low: np.ndarray
    high: np.ndarray
    source: np.ndarray  # per relation: its declaration's place in `names`
    names: list[str]  # the declarations that give relations
    lower_bound: np.ndarray  # per variable (the implication persons ≥ 1 when queries ≥ 1)
    positive_pairs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    inexact: dict[str, int] = field(default_factory=dict)


class _Builder:
    def __init__(self, tables: Mapping[str, pl.DataFrame], decl: Declarations,
                 public: Mapping[str, pl.DataFrame], truth: Mapping[str, pl.DataFrame] | None):
        self.decl = decl
        self.tables: dict[str, pl.DataFrame] = {}
        self.base: dict[tuple[str, str], int] = {}
        parts = []
        offset = 0
        for name in sorted(tables):
            spec = decl.specs[name]
            frame = tables[name].with_row_index("_row")
            public_cols = [c for c in spec.public_columns if c in frame.columns]
            if public_cols:
                known = public[name].select(*spec.key_columns, *public_cols)
                frame = frame.drop(public_cols).join(
                    known, on=list(spec.key_columns), how="left", nulls_equal=True)
            frame = frame.sort("_row")
            counts = [c for c in spec.published_counts
                      if c in frame.columns and c not in spec.public_columns]
            true = None
            if truth is not None:
                true = frame.select(*spec.key_columns, "_row").join(
                    truth[name].select(*spec.key_columns, *counts), on=list(spec.key_columns),
                    how="left", nulls_equal=True).sort("_row")
            for column in counts:
                self.base[(name, column)] = offset
                values = frame.get_column(column).cast(pl.Float64)
                parts.append(pl.DataFrame({
                    "var": np.arange(offset, offset + frame.height),
                    "table": [name] * frame.height,
                    "row": np.arange(frame.height),
                    "column": [column] * frame.height,
                    "value": values,
                    "truth": (true.get_column(column).cast(pl.Float64) if true is not None
                              else pl.Series([None] * frame.height, dtype=pl.Float64)),
                }))
                offset += frame.height
            self.tables[name] = frame
        self.cells = pl.concat(parts) if parts else pl.DataFrame(
            schema={"var": pl.Int64, "table": pl.String, "row": pl.Int64, "column": pl.String,
                    "value": pl.Float64, "truth": pl.Float64})
        self.value = self.cells.get_column("value").to_numpy().astype(float)
        self.truth = self.cells.get_column("truth").to_numpy().astype(float)
        self.lower_bound = np.zeros(len(self.value))
        self.rels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rel local, var, coef)
        self.low: list[np.ndarray] = []
        self.high: list[np.ndarray] = []
        self.source: list[np.ndarray] = []
        self.names: dict[str, int] = {}
        self.twins: list[tuple[np.ndarray, np.ndarray]] = []
        self.positive_pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self.inexact: dict[str, int] = {}
        self.n_rel = 0

    def vars_of(self, table: str, column: str, rows: np.ndarray) -> np.ndarray:
        return self.base[(table, column)] + rows

    def has(self, table: str, column: str) -> bool:
        return (table, column) in self.base

    def add(self, name: str, rel: np.ndarray, var: np.ndarray, coef: np.ndarray,
            low: np.ndarray, high: np.ndarray) -> None:
        """Relations numbered 0..len(low)−1 locally; `rel` gives each term's relation."""
        if len(low) == 0:
            return
        self.rels.append((rel + self.n_rel, var, coef))
        self.low.append(np.asarray(low, dtype=float))
        self.high.append(np.asarray(high, dtype=float))
        self.source.append(np.full(len(low), self.names.setdefault(name, len(self.names))))
        self.n_rel += len(low)

    def build(self) -> _System:
        if self.rels:
            rel = np.concatenate([r for r, _, _ in self.rels])
            var = np.concatenate([v for _, v, _ in self.rels])
            coef = np.concatenate([c for _, _, c in self.rels])
            low, high = np.concatenate(self.low), np.concatenate(self.high)
        else:
            rel = var = np.zeros(0, dtype=np.int64)
            coef = low = high = np.zeros(0)
        published = ~np.isnan(self.value)
        if self.twins:
            # NOTE: a hidden count identical to a published count is not a suppressed count.
            left = np.concatenate([a for a, _ in self.twins])
            right = np.concatenate([b for _, b in self.twins])
            n = len(self.value)
            graph = sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
            _, labels = connected_components(graph, directed=False)
            # NOTE: the value the twins publish (counts published exactly; NaN when none is).
            twin_value = np.full(labels.max() + 1, np.nan)
            twin_value[labels[published]] = self.value[published]
            twin = twin_value[labels]
            twin[published] = np.nan
        else:
            twin = np.full(len(self.value), np.nan)
        cells = self.cells.with_columns(public_twin=pl.Series(twin))
        source = np.concatenate(self.source) if self.source else np.zeros(0, dtype=np.int64)
        return _System(cells, self.tables, rel.astype(np.int64), var.astype(np.int64), coef.astype(float),
                       low, high, source, list(self.names), self.lower_bound,
                       self.positive_pairs, self.inexact)


def _group_ids(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    if not columns:
        return np.zeros(frame.height, dtype=np.int64)
    return (frame.select(pl.struct(list(columns)).rank("dense").cast(pl.Int64) - 1)
            .to_series().to_numpy())


def _filter(frame: pl.DataFrame, where: Sequence[tuple[str, tuple]]) -> pl.DataFrame:
    for column, values in where:
        frame = frame.filter(pl.col(column).is_in(list(values)))
    return frame


def _add_margins(b: _Builder, name: str, spec: DisclosureSpec) -> None:
    """Total row against its member rows, for every margin of the spec.

    Additive counts: total = Σ members (total ≥ Σ members for an ``at_least`` margin).
    Distinct counts (persons): total ≥ every member, and total ≤ Σ members unless the margin
    runs over a person attribute (then additive). Monotone counts: total ≥ every member.
    """
    frame = b.tables[name]
    for margin in spec.margins:
        scoped = _filter(frame, margin.where)
        d = margin.dimension
        others = [k for k in spec.key_columns if k != d]
        totals = scoped.filter(pl.col(d) == margin.total)
        members = scoped.filter(pl.col(d) != margin.total)
        if margin.members is not None:
            members = members.filter(pl.col(d).is_in(list(margin.members)))
        if totals.is_empty() or members.is_empty():
            continue
        pairs = members.select(*others, "_row").join(
            totals.select(*others, _total="_row"), on=others, how="inner", nulls_equal=True,
            maintain_order="left")
        if pairs.is_empty():
            continue
        group = _group_ids(pairs, ["_total"])
        member_rows = pairs.get_column("_row").to_numpy()
        total_rows_by_group = np.zeros(group.max() + 1, dtype=np.int64)
        total_rows_by_group[group] = pairs.get_column("_total").to_numpy()
        n_groups = len(total_rows_by_group)
        # NOTE: an equality only where every member has a row (every value seen in the table,
        # or every listed member); elsewhere the total is at least the sum of those present.
        expected = (members.get_column(d).n_unique() if margin.members is None
                    else len(margin.members))
        complete = np.bincount(group, minlength=n_groups) == expected
        exact = complete & (not margin.at_least)
        _add_parts(b, name, spec, f"{name}: margin {d}={margin.total}", total_rows_by_group,
                   group, member_rows, sums_exact=exact, persons_add=margin.person_attribute,
                   persons_at_most_sum=np.full(n_groups, not margin.at_least))


def _add_parts(b: _Builder, name: str, spec: DisclosureSpec, label: str,
               whole_rows: np.ndarray, group: np.ndarray, part_rows: np.ndarray, *,
               sums_exact: np.ndarray, persons_add: bool,
               persons_at_most_sum: np.ndarray) -> None:
    """A whole row against its part rows (part i belongs to whole ``group[i]``).

    Additive counts: whole = Σ parts where `sums_exact`, whole ≥ Σ parts elsewhere. Distinct
    counts: whole ≥ every part and, where `persons_at_most_sum`, whole ≤ Σ parts (additive
    when `persons_add`). Monotone counts: whole ≥ every part.
    """
    n, k = len(whole_rows), len(part_rows)
    for column in spec.published_counts:
        if not b.has(name, column):
            continue
        distinct = column in spec.distinct_counts
        monotone = column in spec.monotone_counts

        def whole_minus_parts(low: np.ndarray, high: np.ndarray, suffix: str) -> None:
            b.add(f"{label} ({column}){suffix}", np.concatenate([np.arange(n), group]),
                  np.concatenate([b.vars_of(name, column, whole_rows),
                                  b.vars_of(name, column, part_rows)]),
                  np.concatenate([np.ones(n), -np.ones(k)]), low, high)

        if (not distinct and not monotone) or (distinct and persons_add):
            whole_minus_parts(np.zeros(n), np.where(sums_exact, 0.0, np.inf), "")
        if distinct or monotone:
            b.add(f"{label} ({column}) ≥ part", np.concatenate([np.arange(k), np.arange(k)]),
                  np.concatenate([b.vars_of(name, column, whole_rows[group]),
                                  b.vars_of(name, column, part_rows)]),
                  np.concatenate([np.ones(k), -np.ones(k)]), np.zeros(k), np.full(k, np.inf))
        if distinct and not persons_add:
            whole_minus_parts(np.full(n, -np.inf), np.where(persons_at_most_sum, 0.0, np.inf),
                              " ≤ Σ parts")


def _add_periods(b: _Builder, name: str, spec: DisclosureSpec) -> None:
    """Period hierarchy from the labels of ``spec.period_dimension`` (see `period_relations`)."""
    if spec.period_dimension is None or spec.period_dimension not in b.tables[name].columns:
        return
    frame = b.tables[name]
    d = spec.period_dimension
    others = [k for k in spec.key_columns if k != d]
    labels = frame.get_column(d).unique().drop_nulls().sort().to_list()
    for outer, inners, exact in period_relations(labels):
        rows_outer = frame.filter(pl.col(d) == outer).select(*others, _outer="_row")
        inner = frame.filter(pl.col(d).is_in(inners)).select(*others, "_row")
        pairs = inner.join(rows_outer, on=others, how="inner", nulls_equal=True,
                           maintain_order="left")
        if pairs.is_empty():
            continue
        group = _group_ids(pairs, ["_outer"])
        n_groups = group.max() + 1
        outer_rows = np.zeros(n_groups, dtype=np.int64)
        outer_rows[group] = pairs.get_column("_outer").to_numpy()
        inner_rows = pairs.get_column("_row").to_numpy()
        complete = np.bincount(group, minlength=n_groups) == len(inners)
        _add_parts(b, name, spec, f"{name}: period {outer} ⊇ {'+'.join(inners)}", outer_rows,
                   group, inner_rows, sums_exact=complete & exact, persons_add=False,
                   persons_at_most_sum=complete & exact)
        if exact and len(inners) == 1:
            for column in spec.published_counts:
                if b.has(name, column):
                    b.twins.append((b.vars_of(name, column, outer_rows[group]),
                                    b.vars_of(name, column, inner_rows)))


def _months(label: str) -> tuple[str, str] | None:
    """First and last month (YYYY-MM) of a period label, or None when it is not one."""

    if m := re.fullmatch(r"(\d{4})-Q([1-4])", label):
        year, quarter = int(m[1]), int(m[2])
        return f"{year}-{3 * quarter - 2:02d}", f"{year}-{3 * quarter:02d}"
    if re.fullmatch(r"\d{4}", label):
        return f"{label}-01", f"{label}-12"
    if m := re.fullmatch(r"(\d{4}-\d{2})\.\.(\d{4}-\d{2})", label):
        return m[1], m[2]
    if re.fullmatch(r"\d{4}-\d{2}", label):
        return label, label
    return None


def period_relations(labels: Sequence[str]) -> list[tuple[str, list[str], bool]]:
    """Relations between period labels: ``(outer, inner labels, exact)``.

    Labels are ``2025-Q3`` (quarter), ``2025`` (calendar year), ``2025-01..2026-06`` (a range of
    months) or ``2025-07`` (a month). For each label, the largest disjoint set of other labels
    inside it, preferring years over quarters over months (so a year is its four quarters only
    when the year itself is not a candidate): its count is at least their sum, and exactly
    their sum when they cover every month of it (``exact``); every label inside another is also
    related to it alone (``outer ≥ inner``; ``exact`` False), so containment holds even when the
    cover is incomplete. Two labels of the same months (``2025`` and ``2025-01..2025-12``) are
    one count: ``(first, [second], True)``.
    """
    spans = {label: _months(label) for label in labels}
    spans = {k: v for k, v in spans.items() if v is not None}

    def months_of(span: tuple[str, str]) -> list[str]:
        (y0, m0), (y1, m1) = (map(int, s.split("-")) for s in span)
        return [f"{y}-{m:02d}" for y in range(y0, y1 + 1) for m in range(1, 13)
                if (y, m) >= (y0, m0) and (y, m) <= (y1, m1)]

    month_sets = {k: set(months_of(v)) for k, v in spans.items()}
    relations: list[tuple[str, list[str], bool]] = []
    for outer, months in sorted(month_sets.items()):
        # NOTE: two labels of the same months (a range that is one calendar year) are one count.
        relations += [(outer, [twin], True) for twin, s in sorted(month_sets.items())
                      if twin > outer and s == months]
        inside = [k for k, s in month_sets.items() if k != outer and s <= months and s != months]
        # NOTE: greedy disjoint cover, largest parts first (year, then quarter, then month).
        cover: list[str] = []
        covered: set[str] = set()
        for label in sorted(inside, key=lambda k: (-len(month_sets[k]), k)):
            if not (month_sets[label] & covered):
                cover.append(label)
                covered |= month_sets[label]
        if len(cover) > 1:
            relations.append((outer, sorted(cover), covered == months))
        relations += [(outer, [inner], False) for inner in sorted(inside)]
    return relations


def _add_row_relations(b: _Builder, name: str, spec: DisclosureSpec) -> None:
    """Σ smaller (≤ or ==) Σ larger within every row; and the implication persons ≥ 1."""
    frame = b.tables[name]
    rows = np.arange(frame.height)
    for smaller, sense, larger in spec.row_relations:
        if not all(b.has(name, c) for c in (*smaller, *larger)):
            continue
        rel = np.concatenate([rows] * (len(smaller) + len(larger)))
        var = np.concatenate([b.vars_of(name, c, rows) for c in (*smaller, *larger)])
        coef = np.concatenate([np.full(frame.height, 1.0)] * len(smaller)
                              + [np.full(frame.height, -1.0)] * len(larger))
        high = np.zeros(frame.height)
        low = high if sense == "==" else np.full(frame.height, -np.inf)
        b.add(f"{name}: {'+'.join(smaller)} {sense} {'+'.join(larger)}", rel, var, coef, low, high)
        if sense == "==" and len(smaller) == 1 and len(larger) == 1:
            b.twins.append((b.vars_of(name, smaller[0], rows), b.vars_of(name, larger[0], rows)))
    for column, partner in spec.positive_with:
        if b.has(name, column) and b.has(name, partner):
            # NOTE: persons ≥ 1 where queries ≥ 1 is not linear; it is applied where the
            # partner count is published (a bound), and checked again after the programmes.
            partner_value = b.value[b.vars_of(name, partner, rows)]
            positive = np.nan_to_num(partner_value, nan=0.0) >= 1
            b.lower_bound[b.vars_of(name, column, rows[positive])] = 1.0
            b.positive_pairs.append((b.vars_of(name, column, rows), b.vars_of(name, partner, rows)))


def _side_frame(b: _Builder, side: Side, names: Sequence[str]) -> pl.DataFrame:
    frame = _filter(b.tables[side.table], side.where)
    return frame.select(*[pl.col(c).alias(n) for c, n in zip(side.on, names, strict=True)],
                        pl.all().exclude(list(names)))


def _add_balance(b: _Builder, balance: Balance) -> None:
    left_t, right_t = balance.left.table, balance.right.table
    if left_t not in b.tables or right_t not in b.tables:
        return
    if not all(b.has(left_t, c.lstrip("-")) for c in balance.left.columns) or not all(
            b.has(right_t, c.lstrip("-")) for c in balance.right.columns):
        return
    keys = [f"_k{i}" for i in range(len(balance.left.on))]
    left = _side_frame(b, balance.left, keys)
    right = _side_frame(b, balance.right, keys)
    group_keys = list(keys)
    if balance.months_within is not None:
        start, end, month = balance.months_within
        group_keys += [start, end]
        # NOTE: two period labels may cover the same months (a range that is one year).
        label = b.decl.specs[left_t].period_dimension
        if label is not None and label in left.columns:
            group_keys.append(label)
        periods = left.select(*group_keys).unique()
        right = right.join(periods, on=keys, how="inner", nulls_equal=True,
                           maintain_order="left_right").filter(
            (pl.col(month) >= pl.col(start).dt.strftime("%Y-%m"))
            & (pl.col(month) <= pl.col(end).dt.strftime("%Y-%m")))
    both = left.select(group_keys).unique().join(
        right.select(group_keys).unique(), on=group_keys, how="inner", nulls_equal=True
    ).sort(group_keys).with_row_index("_g")
    if both.is_empty():
        return
    # NOTE: sorted by relation, so that the twins of an identity pair up row by row.
    left = left.join(both, on=group_keys, how="inner", nulls_equal=True).sort("_g", "_row")
    right = right.join(both, on=group_keys, how="inner", nulls_equal=True).sort("_g", "_row")
    n = both.height
    exact = np.full(n, balance.sense == "==")
    if balance.complete is not None and balance.sense == "==":
        seen = b.tables[left_t].get_column(balance.complete).n_unique()
        sizes = np.bincount(left.get_column("_g").to_numpy(), minlength=n)
        exact &= sizes == seen
    rel, var, coef = [], [], []
    for frame, columns, sign in ((left, balance.left.columns, 1.0),
                                 (right, balance.right.columns, -1.0)):
        g = frame.get_column("_g").to_numpy().astype(np.int64)
        rows = frame.get_column("_row").to_numpy().astype(np.int64)
        table = left_t if sign > 0 else right_t
        for column in columns:
            negated = column.startswith("-")
            rel.append(g)
            var.append(b.vars_of(table, column.lstrip("-"), rows))
            coef.append(np.full(len(g), -sign if negated else sign))
    b.add(balance.name, np.concatenate(rel), np.concatenate(var), np.concatenate(coef),
          np.where(exact, 0.0, -np.inf), np.zeros(n))
    if balance.identity:
        if left.height != n or right.height != n:
            raise ValueError(f"{balance.name}: an identity needs one row on each side per key")
        b.twins.append((var[0], var[1]))


def _add_within(b: _Builder, within: Within) -> None:
    inner_t, outer_t = within.inner.table, within.outer.table
    if inner_t not in b.tables or outer_t not in b.tables:
        return
    pairs_ = [(i, o) for i, o in zip(within.inner.columns, within.outer.columns, strict=True)
              if b.has(inner_t, i) and b.has(outer_t, o)]
    keys = [f"_k{i}" for i in range(len(within.inner.on))]
    inner = _side_frame(b, within.inner, keys)
    outer = _side_frame(b, within.outer, keys)
    extra_inner, extra_outer = [], []
    if within.periods is not None:
        (i_start, i_end), (o_start, o_end) = within.periods
        if not {i_start, i_end} <= set(inner.columns) or not {o_start, o_end} <= set(outer.columns):
            return
        inner = inner.with_columns(_is=pl.col(i_start), _ie=pl.col(i_end))
        outer = outer.with_columns(_os=pl.col(o_start), _oe=pl.col(o_end))
        extra_inner, extra_outer = ["_is", "_ie"], ["_os", "_oe"]
    matched = inner.select(*keys, *extra_inner, "_row").join(
        outer.select(*keys, *extra_outer, _outer="_row"), on=keys, how="inner", nulls_equal=True,
        maintain_order="left_right")
    if within.periods is not None:
        matched = matched.filter((pl.col("_os") <= pl.col("_is")) & (pl.col("_ie") <= pl.col("_oe")))
    if matched.is_empty():
        return
    k = matched.height
    inner_rows = matched.get_column("_row").to_numpy().astype(np.int64)
    outer_rows = matched.get_column("_outer").to_numpy().astype(np.int64)
    for i_col, o_col in pairs_:
        rel = np.concatenate([np.arange(k), np.arange(k)])
        var = np.concatenate([b.vars_of(inner_t, i_col, inner_rows),
                              b.vars_of(outer_t, o_col, outer_rows)])
        coef = np.concatenate([np.ones(k), -np.ones(k)])
        b.add(f"{within.name} ({i_col})", rel, var, coef, np.full(k, -np.inf), np.zeros(k))


def _add_repeats(b: _Builder, name: str, spec: DisclosureSpec) -> None:
    """A count repeated on every row that differs only in one dimension (a team's unlinked
    queries on each origin's row) is one count: equal, and twins for `public_twin`."""
    frame = b.tables[name]
    for column, dimension in spec.repeated_counts:
        if not b.has(name, column) or dimension not in frame.columns:
            continue
        others = [k for k in spec.key_columns if k != dimension]
        first = frame.select(*others, "_row").join(
            frame.group_by(others).agg(_first=pl.col("_row").min()), on=others, nulls_equal=True,
            maintain_order="left").filter(pl.col("_row") != pl.col("_first"))
        if first.is_empty():
            continue
        k = first.height
        a = b.vars_of(name, column, first.get_column("_row").to_numpy().astype(np.int64))
        c = b.vars_of(name, column, first.get_column("_first").to_numpy().astype(np.int64))
        b.add(f"{name}: {column} repeated over {dimension}",
              np.concatenate([np.arange(k), np.arange(k)]), np.concatenate([a, c]),
              np.concatenate([np.ones(k), -np.ones(k)]), np.zeros(k), np.zeros(k))
        b.twins.append((a, c))


def half_width(values: np.ndarray, significant_digits: int | None) -> np.ndarray:
    """Half the step of the published precision: a published v stands for v ± this."""
    magnitude = np.abs(values)
    if significant_digits is None:
        return magnitude * _FULL_PRECISION
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0)))
    step = np.power(10.0, exponent - (significant_digits - 1))
    return np.where(magnitude > 0, 0.5 * step, 0.5 * 10.0 ** (-300))


def _add_ratio(b: _Builder, ratio: Ratio, rules: Rules) -> None:
    if ratio.table not in b.tables:
        return
    spec = b.decl.specs[ratio.table]
    frame = b.tables[ratio.table]
    if ratio.column not in frame.columns:
        return
    terms = (*ratio.numerator, *ratio.denominator)
    needs_reference = any(t.reference for t in terms)
    if needs_reference:
        d = spec.reference_dimension
        others = [k for k in spec.key_columns if k != d]
        reference = frame.filter(pl.col(d) == rules.reference).select(
            *others, *[pl.col(c).alias(f"ref_{c}") for c in frame.columns if c not in others])
        frame = frame.join(reference, on=others, how="inner", nulls_equal=True,
                           maintain_order="left")
    frame = frame.filter(pl.col(ratio.column).is_not_null() & pl.col(ratio.column).is_finite())
    needed = {t.column for t in terms if t.column is not None}
    needed |= {n for t in terms if isinstance(t.coef, pl.Expr) for n in t.coef.meta.root_names()}
    if frame.is_empty() or not all(b.has(ratio.table, c) for c in needed if c in
                                   {t.column for t in terms}) or not needed <= set(frame.columns):
        # NOTE: a ratio whose public inputs the table lacks cannot be rebuilt from it.
        return
    published = frame.get_column(ratio.column).to_numpy().astype(float)
    h = half_width(published, rules.significant_digits)
    rows = frame.get_column("_row").to_numpy().astype(np.int64)
    ref_rows = frame.get_column("ref__row").to_numpy().astype(np.int64) if needs_reference else rows
    n = frame.height

    def coefficient(term: Term) -> np.ndarray:
        if isinstance(term.coef, pl.Expr):
            return frame.select(term.coef.cast(pl.Float64)).to_series().to_numpy()
        return np.full(n, float(term.coef))

    # N − r·D within [ (low−r)·D, (high−r)·D ]: two rows, N − high·D ≤ 0 and N − low·D ≥ 0.
    for bound, low_side in ((published + h, False), (published - h, True)):
        rel, var, coef = [], [], []
        constant = np.zeros(n)
        for term, sign in [(t, 1.0) for t in ratio.numerator] + [(t, -1.0) for t in ratio.denominator]:
            c = coefficient(term) * (sign if sign > 0 else -bound)
            if term.column is None:
                constant += c
                continue
            rel.append(np.arange(n))
            var.append(b.vars_of(ratio.table, term.column, ref_rows if term.reference else rows))
            coef.append(c)
        if not rel:
            continue
        low = -constant if low_side else np.full(n, -np.inf)
        high = np.full(n, np.inf) if low_side else -constant
        b.add(f"{ratio.table}: {ratio.column}", np.concatenate(rel), np.concatenate(var),
              np.concatenate(coef), low, high)


def derive_relations(tables: Mapping[str, pl.DataFrame], declarations: Declarations,
                     rules: Rules, *, public: Mapping[str, pl.DataFrame],
                     truth: Mapping[str, pl.DataFrame] | None = None) -> _System:
    """Every linear relation the release gives between its counts (see the module docstring).

    `tables` are the published tables; `public` holds, per table, the key columns and the
    public columns (populations) that the attacker knows from elsewhere; `truth`, when the
    defender passes it, holds the unsuppressed counts: relations from estimates that do not hold
    exactly for the true counts (a ratio over strata with residents only) are dropped and
    counted, any other relation that fails for the true counts is an error.
    """
    b = _Builder(tables, declarations, public, truth)
    for name in sorted(b.tables):
        spec = declarations.specs[name]
        _add_margins(b, name, spec)
        _add_periods(b, name, spec)
        _add_row_relations(b, name, spec)
        _add_repeats(b, name, spec)
    for balance in declarations.balances:
        _add_balance(b, balance)
    for within in declarations.within:
        _add_within(b, within)
    for bound in declarations.bounds:
        if bound.table in b.tables and b.has(bound.table, bound.column):
            frame = b.tables[bound.table]
            limits = frame.select(bound.low.cast(pl.Float64).fill_null(-np.inf).alias("lo"),
                                  bound.high.cast(pl.Float64).fill_null(np.inf).alias("hi"))
            rows = np.arange(frame.height)
            b.add(f"{bound.table}: bound on {bound.column}", rows,
                  b.vars_of(bound.table, bound.column, rows), np.ones(frame.height),
                  limits.get_column("lo").to_numpy(), limits.get_column("hi").to_numpy())
    n_structural = b.n_rel
    for ratio in declarations.ratios:
        _add_ratio(b, ratio, rules)
    system = b.build()
    return _validate_against_truth(system, b.truth, n_structural) if truth is not None else system


def _validate_against_truth(system: _System, truth: np.ndarray, n_structural: int) -> _System:
    if len(system.low) == 0:
        return system
    value = np.bincount(system.rel, weights=system.coef * np.nan_to_num(truth[system.var]),
                        minlength=len(system.low))
    unknown = np.bincount(system.rel, weights=np.isnan(truth[system.var]).astype(float),
                          minlength=len(system.low)) > 0
    scale = np.bincount(system.rel, weights=np.abs(system.coef * np.nan_to_num(truth[system.var])),
                        minlength=len(system.low)) + 1.0
    bad = ~unknown & ((value < system.low - 1e-7 * scale) | (value > system.high + 1e-7 * scale))
    structural_bad = bad[:n_structural]
    if structural_bad.any():
        names = sorted({system.names[i] for i in system.source[:n_structural][structural_bad]})
        raise ValueError(f"{int(structural_bad.sum())} relations do not hold for the true counts "
                         f"(a declaration is wrong): {names[:5]}")
    if not bad.any():
        return system
    for i, n in zip(*np.unique(system.source[bad], return_counts=True), strict=True):
        system.inexact[system.names[i]] = system.inexact.get(system.names[i], 0) + int(n)
    keep_rel = ~bad
    keep_term = keep_rel[system.rel]
    renumber = np.cumsum(keep_rel) - 1
    system.rel = renumber[system.rel[keep_term]]
    system.var = system.var[keep_term]
    system.coef = system.coef[keep_term]
    system.low = system.low[keep_rel]
    system.high = system.high[keep_rel]
    system.source = system.source[keep_rel]
    return system


# --------------------------------------------------------------------------------------------
# The attack.


@dataclass
class AttackReport:
    """Feasible intervals of the suppressed counts of one release.

    `counts` has one row per suppressed count: table, row (position in the published table),
    column, low, high (integer bounds the attacker can prove, or a certified inner interval
    when ``exact`` is false), pinned, exempt (``structural zero`` / ``published elsewhere`` /
    null). `binding` maps each pinned count's index in `counts` to the published cells
    (table, row) in the relations that confine it.
    """

    counts: pl.DataFrame
    binding: dict[int, list[tuple[str, int]]]
    stats: dict

    @property
    def pinned(self) -> pl.DataFrame:
        return self.counts.filter(pl.col("pinned"))


def attack(tables: Mapping[str, pl.DataFrame], declarations: Declarations, rules: Rules, *,
           public: Mapping[str, pl.DataFrame], truth: Mapping[str, pl.DataFrame] | None = None,
           structural: Mapping[str, pl.DataFrame] | None = None,
           cache: dict | None = None) -> AttackReport:
    """Solve for the feasible interval of every suppressed count of a release.

    Parameters
    ----------
    tables
        The published tables by name (as written: empty cells for hidden values).
    declarations
        Specs, cross-table balances and ratio estimates of the release.
    rules
        Threshold, rounding, published precision, reference value.
    public
        Per table, key columns and the spec's public columns (CBS populations).
    truth
        The unsuppressed tables (defender only): checks every relation against the true
        counts and serves as a feasible point. The intervals do not depend on it.
    structural
        Per table, key columns and Boolean columns named after count columns:
        that count is zero by construction (a theme that excludes the row's query type or
        period, unlinked queries of a theme on linked persons' sex or age); a pinned zero there
        is not a disclosure. With `truth`, a structural count that is not zero is an error.
    cache
        A dict kept between calls (the defender's search loop): components whose programmes
        are unchanged are not solved again.

    Returns
    -------
    AttackReport
    """
    started = time.perf_counter()
    system = derive_relations(tables, declarations, rules, public=public, truth=truth)
    derived = time.perf_counter()
    cells = system.cells
    value = cells.get_column("value").to_numpy().astype(float)
    true = cells.get_column("truth").to_numpy().astype(float)
    hidden = np.isnan(value)
    rounded = np.zeros(len(value), dtype=bool)
    lower = system.lower_bound.copy()
    upper = np.full(len(value), np.inf)
    if rules.round_to and rules.round_to > 1:
        rounded = ~hidden
        lower[rounded] = np.maximum(0.0, value[rounded] - rules.round_to // 2)
        upper[rounded] = value[rounded] + (rules.round_to - 1) // 2
    exempt = np.full(len(value), None, dtype=object)
    for name, flags in (structural or {}).items():
        if name not in system.tables:
            continue
        keys = list(declarations.specs[name].key_columns)
        aligned = system.tables[name].select(*keys, "_row").join(
            flags, on=keys, how="left", nulls_equal=True).sort("_row")
        for column in [c for c in flags.columns if c not in keys]:
            rows = cells.with_row_index("_i").filter(
                (pl.col("table") == name) & (pl.col("column") == column))
            if rows.is_empty():
                continue
            flag = aligned.get_column(column).fill_null(False).to_numpy()[
                rows.get_column("row").to_numpy()]
            ids = rows.get_column("_i").to_numpy()[flag]
            if truth is not None and np.nansum(np.abs(true[ids])) > 0:
                raise ValueError(f"{name}: {column!r} is declared zero by construction on rows "
                                 "where it is not")
            exempt[ids] = "structural zero"
    # NOTE: a hidden count whose twin publishes it at the threshold or above is a published
    # count (a repeat-checks row hidden for its shares); a twin that publishes a small value is
    # a disclosure and stays in the judgement.
    twin = cells.get_column("public_twin").to_numpy()
    exempt[(np.nan_to_num(twin, nan=-1.0) >= rules.threshold) & (exempt == None)] = (  # noqa: E711
        "published elsewhere")
    protected = hidden & (exempt == None)  # noqa: E711
    # NOTE: only counts with a hidden partner can have their lower end raised to 1 after
    # solving (persons ≥ 1 where queries ≥ 1, unless a feasible point has the partner at 0).
    partner_of = np.full(len(value), -1)
    for column_var, partner_var in system.positive_pairs:
        both = hidden[column_var] & hidden[partner_var]
        partner_of[column_var[both]] = partner_var[both]
    lp_var = hidden | rounded
    finite = value[~np.isnan(value)]
    cap = float(max(1e6, 100 * (finite.max() if finite.size else 0)))
    upper[hidden] = cap

    # Substitute exact published counts.
    in_lp = lp_var[system.var]
    shift = np.bincount(system.rel[~in_lp],
                        weights=system.coef[~in_lp] * value[system.var[~in_lp]],
                        minlength=len(system.low))
    low, high = system.low - shift, system.high - shift
    rel, var, coef = system.rel[in_lp], system.var[in_lp], system.coef[in_lp]
    active = np.bincount(rel, minlength=len(system.low)) > 0
    lp_ids = np.flatnonzero(lp_var)
    position = np.full(len(value), -1)
    position[lp_ids] = np.arange(len(lp_ids))
    rel_ids = np.flatnonzero(active)
    rel_position = np.full(len(system.low), -1)
    rel_position[rel_ids] = np.arange(len(rel_ids))
    n_v, n_r = len(lp_ids), len(rel_ids)
    graph = sparse.coo_matrix(
        (np.ones(len(rel)), (position[var], n_v + rel_position[rel])), shape=(n_v + n_r,) * 2)
    n_comp, labels = connected_components(graph, directed=False)
    var_comp = labels[:n_v]
    rel_comp = labels[n_v:]

    result_low = np.full(len(value), np.nan)
    result_high = np.full(len(value), np.nan)
    exact = np.zeros(len(value), dtype=bool)
    binding: dict[int, set[int]] = {}
    lp_count = 0
    inconsistent = 0
    unsolved = 0
    term_order = np.argsort(rel_position[rel], kind="stable")
    sorted_rel = rel_position[rel][term_order]
    comp_of_var = np.full(len(value), -1)
    comp_of_var[lp_ids] = var_comp
    comp_vars = _Members(var_comp, n_comp)
    comp_rels = _Members(rel_comp, n_comp)
    # NOTE: a component's terms in relation order, and each term's relation and unknown
    # numbered within its component, for all components at once.
    comp_terms = _Members(rel_comp[sorted_rel], n_comp)
    term_rows = comp_rels.rank[sorted_rel]
    term_cols = comp_vars.rank[position[var[term_order]]]
    has_protected = np.zeros(n_comp, dtype=bool)
    np.logical_or.at(has_protected, var_comp, protected[lp_ids])
    # Unknowns in no relation: only their bounds confine them.
    lonely = protected & (comp_of_var < 0)
    result_low[lonely], result_high[lonely] = lower[lonely], cap
    cache = {} if cache is None else cache
    # NOTE: a feasible point of an earlier call stays feasible when the same cells exist and
    # every count published now was published then with the same value (a count hidden since
    # becomes an unknown that may keep its value, and the estimates hidden with it only drop
    # relations): its values certify counts again for free. Otherwise they are forgotten.
    identity = cells.select("table", "row", "column")
    before = cache.get(_PUBLISHED)
    if before is None or not before[1].equals(identity) or not np.array_equal(
            before[0][~hidden], value[~hidden]):
        cache[_WITNESSES] = np.full((len(value), 2), np.nan)
        cache[_SETTLED] = np.zeros(len(value), dtype=bool)
    cache[_PUBLISHED] = (value, identity)
    witnesses, settled = cache[_WITNESSES], cache[_SETTLED]
    # NOTE: a partner outside the component's protected counts has no interval of its own
    # here: the raise is then assumed (_RAISED).
    partner_local = np.full(len(value), _UNRAISED)
    paired = np.flatnonzero(partner_of >= 0)
    partners = partner_of[paired]
    partner_local[paired] = np.where(
        protected[partners] & (comp_of_var[partners] == comp_of_var[paired]),
        comp_vars.rank[position[partners]], _RAISED)
    reused = 0
    components, todo = [], {}
    for component in np.flatnonzero(has_protected):
        vars_ = lp_ids[comp_vars[component]]
        rels = comp_rels[component]
        in_component = comp_terms[component]
        terms = term_order[in_component]
        rows_, cols_ = term_rows[in_component], term_cols[in_component]
        partner = partner_local[vars_]
        # NOTE: by content, not relation numbers: hiding a row elsewhere renumbers relations.
        key = _signature(vars_, rows_, cols_, coef[terms], low[rel_ids[rels]],
                         high[rel_ids[rels]], lower[vars_], upper[vars_], protected[vars_],
                         partner, rules.threshold)
        components.append((vars_, rels, key))
        if key in cache:
            reused += 1
        else:
            matrix = sparse.csr_matrix((coef[terms], (rows_, cols_)),
                                       shape=(len(rels), len(vars_)))
            todo[key] = (
                matrix, low[rel_ids[rels]], high[rel_ids[rels]], lower[vars_], upper[vars_],
                protected[vars_], partner, rules.threshold,
                true[vars_] if truth is not None else None, witnesses[vars_], settled[vars_])
    for key, outcome in _solve_components(todo).items():
        cache[key] = outcome
        lp_count += outcome.programmes
    for vars_, rels, key in components:
        outcome = cache[key]
        unsolved += outcome.unsolved
        if outcome.low is None:
            inconsistent += 1
            continue
        found = ~np.isnan(outcome.low)
        witnesses[vars_[found]] = np.column_stack([outcome.low[found], outcome.high[found]])
        v = vars_[found]
        result_low[v], result_high[v], exact[v] = (
            outcome.low[found], outcome.high[found], outcome.exact[found])
        for i, relations in outcome.binding.items():
            if relations is not None and found[i]:
                binding[vars_[i]] = set(rel_ids[rels[relations]].tolist())
    solved = time.perf_counter()
    lo = np.where(np.isnan(result_low), np.nan, np.ceil(np.nan_to_num(result_low) - _TOLERANCE))
    hi = np.where(np.isnan(result_high), np.nan,
                  np.floor(np.nan_to_num(result_high, posinf=cap) + _TOLERANCE))
    lo = np.maximum(lo, lower)
    # NOTE: persons ≥ 1 where queries ≥ 1, for a hidden partner: assumed unless a feasible
    # point (a programme's optimum or a witness) has the partner at 0 (conservative: it can
    # only make more counts pinned).
    for column_var, partner_var in system.positive_pairs:
        can_be_zero = lo[partner_var] <= 0
        apply = hidden[column_var] & hidden[partner_var] & ~can_be_zero
        lo[column_var[apply]] = np.maximum(lo[column_var[apply]], 1.0)
    report = cells.with_row_index("_i").filter(pl.Series(hidden)).select(
        "_i", "table", "row", "column").with_columns(
        low=pl.Series(lo[hidden]), high=pl.Series(hi[hidden]),
        exact=pl.Series(exact[hidden]), exempt=pl.Series(exempt[hidden].tolist(), dtype=pl.String))
    # NOTE: a count whose primary rule publishes a zero (only 1..threshold − 1 is small, as for
    # quarantined rows) may be known to be zero: a published zero margin says as much.
    zero_published = pl.concat_str("table", "column", separator="|").is_in([
        f"{name}|{c}" for name, spec in declarations.specs.items()
        for c in spec.published_counts if c not in _zero_protected(spec)])
    report = report.with_columns(
        pinned=pl.col("exempt").is_null()
        & pl.Series(_is_pinned(lo[hidden], hi[hidden], rules.threshold))
        & ~(zero_published & (pl.col("high") <= 0)))
    # NOTE: an exact interval found not pinned stays not pinned while the feasible set only
    # grows (the same condition under which witnesses are kept): later calls skip its two
    # programmes. The interval itself is kept among the witnesses (its ends are optima).
    settled[report.filter(pl.col("exact") & ~pl.col("pinned")).get_column("_i").to_numpy()] = True
    table_of = cells.get_column("table").to_list()
    row_of_var = cells.get_column("row").to_numpy()
    published_terms = ~lp_var[system.var]
    binding_rows: dict[int, list[tuple[str, int]]] = {}
    pinned_ids = report.filter("pinned").get_column("_i").to_list()
    if pinned_ids:
        rel_terms = _Members(system.rel, len(system.low))
        for v in pinned_ids:
            rels_ = sorted(binding.get(v, ()))
            if not rels_:
                rels_ = sorted(set(system.rel[system.var == v].tolist()))
            found = set()
            for r in rels_:
                t = rel_terms[r]
                t = t[published_terms[t]]
                found.update((table_of[x], int(row_of_var[x])) for x in system.var[t])
            binding_rows[v] = sorted(found)
    stats = {
        "variables": int(len(value)),
        "suppressed_counts": int(hidden.sum()),
        "protected_counts": int(protected.sum()),
        "relations": int(len(system.low)),
        "components": int(has_protected.sum()),
        "largest_component": int(comp_vars.sizes[has_protected].max(initial=0)),
        "linear_programmes": lp_count,
        "components_reused": reused,
        "inconsistent_components": inconsistent,
        # NOTE: a count without a bound reads as not pinned: a release is not judged safe
        # while any is left (assets/release.py refuses it).
        "unsolved_programmes": unsolved,
        "inexact_ratio_relations": int(sum(system.inexact.values())),
        "pinned": int(report.get_column("pinned").sum()),
        "seconds_relations": round(derived - started, 3),
        "seconds_programmes": round(solved - derived, 3),
    }
    return AttackReport(report.rename({"_i": "variable"}), binding_rows, stats)


def _zero_protected(spec: DisclosureSpec) -> set[str]:
    """The counts of a spec whose primary rule hides a zero: persons, events and both sides
    of a complement (``count < threshold``, zero included)."""
    return {spec.person_count, *spec.event_counts, *(c for pair in spec.complements for c in pair)}


def _signature(*arrays) -> bytes:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(np.asarray(array, dtype=float)).tobytes())
        digest.update(b"|")
    return digest.digest()


_WITNESSES = "witnesses"
"""The key in an `attack` cache under which values of earlier feasible points are kept: per
cell, the lowest and highest value seen (NaN: none)."""
_SETTLED = "settled"
"""The key in an `attack` cache of the cells (Boolean per cell) whose exact interval was found
not pinned while the witnesses were kept."""
_PUBLISHED = "published"
"""The key in an `attack` cache of the last call's values (NaN: hidden) and its cells (table,
row, column)."""


@dataclass
class _Outcome:
    """Per variable of a component: interval, whether it is exact, binding relations."""

    low: np.ndarray | None
    high: np.ndarray | None
    exact: np.ndarray | None
    binding: dict[int, np.ndarray]
    programmes: int
    unsolved: int = 0
    """Programmes HiGHS left unsolved for single counts that no feasible point certifies: those
    counts have an end without a bound."""


def _solve_component(matrix: sparse.csr_matrix, low: np.ndarray, high: np.ndarray,
                     lower: np.ndarray, upper: np.ndarray, protected: np.ndarray,
                     partner: np.ndarray, threshold: int, true: np.ndarray | None,
                     prior: np.ndarray | None = None,
                     settled: np.ndarray | None = None) -> _Outcome:
    """Intervals of the protected variables of one component: witnesses first, then for each
    count no witness certifies, a relaxation around it (large components only,
    `_Neighbourhoods`) and, if that does not pin it, programmes over the whole component.

    A count is certified (not pinned) when two feasible points differ in it by at least the
    threshold. Where the implication persons ≥ 1 can raise its lower end after solving
    (`partner`: the local index of its hidden queries, `_RAISED` when that partner is not
    judged here, `_UNRAISED` for none), the lower end is taken as at least 1 until a feasible
    point has the partner at 0. The first point (the anchor) is the true counts when the defender
    passes them, else the optimum of a first programme. Witnesses come in pairs: each open
    count gets a random direction (up in one point of the pair, down in the other), pushed as
    far as a certificate needs and no further. Capped that way, and with neighbours pushed in
    opposite directions (so that a margin with two hidden cells does not block both), one
    pair certifies about half of the open counts of a large component. Pairs go on while a
    pair certifies at least `_WITNESS_YIELD` of the open counts. `prior` (one row per
    variable: low and high, NaN where unknown) holds values of feasible points found earlier
    in the same search; `settled` marks counts whose exact interval an earlier call of the
    same search found not pinned (feasible sets only grow within a search, so they stay so).
    """
    solver = _ComponentSolver(matrix, low, high, lower, upper)
    n = len(lower)
    prot = np.flatnonzero(protected)
    if true is not None and not np.isnan(true).any():
        anchor = true.copy()
    else:
        objective = np.zeros(n)
        objective[prot] = 1.0
        first = solver.solve(objective)
        if first is None:
            return _Outcome(None, None, None, {}, solver.programmes)
        anchor = first.x
    seen_low, seen_high = anchor.copy(), anchor.copy()
    if prior is not None:
        seen_low, seen_high = np.fmin(seen_low, prior[:, 0]), np.fmax(seen_high, prior[:, 1])
    done = np.zeros(n, dtype=bool) if settled is None else settled.copy()

    has_partner = partner >= 0

    def certified() -> np.ndarray:
        raised = partner == _RAISED
        raised[has_partner] = seen_low[partner[has_partner]] > _TOLERANCE
        low_ = np.maximum(np.ceil(seen_low - _TOLERANCE), np.where(raised, 1.0, -np.inf))
        return done | (np.floor(seen_high + _TOLERANCE) - low_ >= threshold)

    # NOTE: up to max(anchor, 1) + threshold and down to anchor − threshold suffices.
    up_to = np.minimum(upper, np.ceil(np.maximum(anchor, 1.0)) + threshold)
    down_to = np.maximum(lower, np.floor(anchor) - threshold)
    # NOTE: a fixed seed per component: the same release gives the same witnesses.
    rng = np.random.default_rng(n)
    bulk: list[_ComponentSolver] = []
    # NOTE: the two points of a pair are independent programmes: on a large component each gets
    # a model and a thread of its own (HiGHS releases the GIL while it solves). Each model is
    # solved from scratch, so the points are the same as one after the other in one model.
    pair_threads = 2 if n > _PARALLEL_FROM and available_processors() > 1 else 1
    open_ = prot[~certified()[prot]]
    while len(open_) > 0:
        # NOTE: whole-component programmes with many objective terms are solved from scratch
        # by dual simplex after presolve, in a model of their own: 0.2–0.3 s each on the
        # sample's largest component (7,016 unknowns) and 0.6–1.1 s on a sparse panel's
        # (19,387), against 0.3–1 s and 2.4–7.8 s for the interior point method and 16–50 s
        # for primal simplex warm-started from the last basis.
        bulk = bulk or [_ComponentSolver(matrix, low, high, lower, upper, bulk=True)
                        for _ in range(pair_threads)]
        up = rng.random(len(open_)) < 0.5
        pair = []
        for pushed_up in (up, ~up):
            objective = np.zeros(n)
            objective[open_] = np.where(pushed_up, -1.0, 1.0)
            bounded_lower, bounded_upper = lower.copy(), upper.copy()
            bounded_upper[open_[pushed_up]] = up_to[open_[pushed_up]]
            bounded_lower[open_[~pushed_up]] = down_to[open_[~pushed_up]]
            pair.append((objective, bounded_lower, bounded_upper))
        if len(bulk) == 2:
            with ThreadPoolExecutor(2) as pool:
                solutions = list(pool.map(lambda model, problem: model.solve(*problem),
                                          bulk, pair))
        else:
            solutions = [bulk[0].solve(*problem) for problem in pair]
        for solution in solutions:
            if solution is not None:
                seen_low = np.minimum(seen_low, solution.x)
                seen_high = np.maximum(seen_high, solution.x)
        still = prot[~certified()[prot]]
        if len(open_) - len(still) < _WITNESS_YIELD * len(open_):
            open_ = still
            break
        open_ = still
    result_low, result_high = np.full(n, np.nan), np.full(n, np.nan)
    exact = np.zeros(n, dtype=bool)
    binding: dict[int, np.ndarray] = {}
    unsolved = 0
    # NOTE: on a large component, the relations near a count often pin it already (a zero
    # margin, a small sum): a relaxation whose interval contains the true one, in milliseconds.
    local = _Neighbourhoods(matrix, low, high, lower, upper) if (
        n > _LOCAL_FROM and len(open_)) else None
    for i in open_:
        # NOTE: the optima of earlier counts' programmes are witnesses for the later ones.
        if certified()[i]:
            continue
        if local is not None:
            outer = local.relaxed_interval(i, seen_low[i] <= lower[i])
            if outer is not None and _is_pinned(*outer[:2], threshold):
                exact[i] = True
                result_low[i], result_high[i], binding[i] = outer
                continue
        bounds, rows, failed = {}, [], 0
        # NOTE: the largest value first: a suppressed count is small, so its maximum alone
        # usually certifies it, and then its minimum is not needed. An end a feasible point
        # already reaches at the variable's own bound needs no programme.
        for sign in (-1.0, 1.0):
            reached = seen_high[i] >= upper[i] if sign < 0 else seen_low[i] <= lower[i]
            if reached:
                bounds[sign] = upper[i] if sign < 0 else lower[i]
                continue
            unit = np.zeros(n)
            unit[i] = sign
            solution = solver.solve(unit)
            if solution is None:
                bounds[sign] = np.nan
                failed += 1
                continue
            bounds[sign] = solution.x[i]
            rows.append(solution.binding)
            seen_low = np.minimum(seen_low, solution.x)
            seen_high = np.maximum(seen_high, solution.x)
            if certified()[i]:
                break
        if certified()[i]:
            continue
        # NOTE: a programme left unsolved matters only for a count no feasible point certifies:
        # its interval then has an unknown end (the release is refused, assets/release.py).
        unsolved += failed
        exact[i] = True
        result_low[i], result_high[i] = bounds[1.0], bounds[-1.0]
        binding[i] = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
    witnessed = prot[~exact[prot]]
    result_low[witnessed], result_high[witnessed] = seen_low[witnessed], seen_high[witnessed]
    return _Outcome(result_low, result_high, exact, binding,
                    solver.programmes + sum(model.programmes for model in bulk)
                    + (local.programmes if local else 0), unsolved)


def _solve_components(todo: Mapping[bytes, tuple]) -> dict[bytes, _Outcome]:
    """`_solve_component` for each entry of `todo` (key → arguments). With a large component
    and more than one processor, the large ones are solved in threads (largest first) while
    this thread solves the rest. The outcomes do not depend on where a component was solved."""
    large = sorted((k for k, args in todo.items() if args[0].shape[1] > _PARALLEL_FROM),
                   key=lambda k: -todo[k][0].shape[1])
    workers = min(len(large), available_processors())
    # NOTE: one large component is worth a thread too when others wait: the sample's first
    # round solved its largest (7,016 unknowns, 4.9 s) and then the 72 others (2.6 s) in turn.
    if workers < 1 or available_processors() < 2 or len(todo) < 2:
        return {key: _solve_component(*args) for key, args in todo.items()}
    # NOTE: threads suffice: HiGHS releases the GIL while it solves (two components of a sparse
    # panel's first round: 12.7 s one after the other, 7.0 s in two threads), and they need
    # no new process, no pickling and no guard in the caller's script.
    with ThreadPoolExecutor(workers) as pool:
        futures = {key: pool.submit(_solve_component, *todo[key]) for key in large}
        outcomes = {key: _solve_component(*args) for key, args in todo.items()
                    if key not in futures}
        outcomes.update({key: future.result() for key, future in futures.items()})
    return outcomes


_PARALLEL_FROM = 5000
"""Components with more unknowns than this get a thread of their own when there are two or
more of them."""


def _is_pinned(low, high, threshold: int):
    """Pinned: on bounds rounded inwards to integers, narrower than the threshold or inside
    1..threshold − 1 (elementwise for arrays; NaN bounds are not pinned)."""
    low, high = np.ceil(low - _TOLERANCE), np.floor(high + _TOLERANCE)
    return (high - low < threshold) | ((low >= 1) & (high <= threshold - 1))


_LOCAL_FROM = 2000
"""Components with more unknowns than this try a relaxation around a count before a programme
over the whole component."""
_LOCAL_SIZE = 600
"""The most unknowns in a neighbourhood."""
_LOCAL_DEPTH = 3
"""Steps from a count to its neighbourhood's edge, each through one relation."""


class _Neighbourhoods:
    """Relaxations of a component around one count: the unknowns reached from the count
    through at most `_LOCAL_DEPTH` relations (at most `_LOCAL_SIZE` of them, nearest first),
    and only the relations that lie inside them. The feasible set only grows when relations
    are left out, so an interval found this way contains the count's true interval: a count it
    pins is pinned, and the relations that bind it are ones that confine it.

    A programme over a few hundred unknowns takes milliseconds where one over a component of
    19,000 unknowns takes up to a second. (Witnesses from neighbourhoods, with the rest of the
    component held at the true counts, were tried and dropped: on a sparse panel they certified
    none of the counts the witness pairs had left.)
    """

    def __init__(self, matrix: sparse.csr_matrix, low: np.ndarray, high: np.ndarray,
                 lower: np.ndarray, upper: np.ndarray):
        self.rows, self.columns = matrix.tocsr(), matrix.tocsc()
        self.low, self.high, self.lower, self.upper = low, high, lower, upper
        self.programmes = 0

    def members(self, i: int) -> np.ndarray:
        """The unknowns of count `i`'s neighbourhood, in component order."""
        members, frontier = {i}, [i]
        for _ in range(_LOCAL_DEPTH):
            reached = []
            for v in frontier:
                for r in self.columns.indices[self.columns.indptr[v]:self.columns.indptr[v + 1]]:
                    for w in self.rows.indices[self.rows.indptr[r]:self.rows.indptr[r + 1]]:
                        if w not in members and len(members) < _LOCAL_SIZE:
                            members.add(w)
                            reached.append(w)
            frontier = reached
            if not frontier:
                break
        return np.array(sorted(members), dtype=np.int64)

    def relaxed_interval(self, i: int, at_lower: bool
                         ) -> tuple[float, float, np.ndarray] | None:
        """Bounds on count `i` from the relations inside its neighbourhood (its smallest value
        is its own lower bound when `at_lower`), and the component's indices of the relations
        that bind them; None when a programme fails."""
        members = self.members(i)
        touching = np.unique(self.columns[:, members].indices)
        block = self.rows[touching]
        sub = block[:, members]
        inside = np.diff(block.indptr) == np.diff(sub.indptr)
        touching, sub = touching[inside], sub[inside]
        solver = _ComponentSolver(sub, self.low[touching], self.high[touching],
                                  self.lower[members], self.upper[members])
        k = int(np.searchsorted(members, i))
        bounds, binding = {1.0: self.lower[i]} if at_lower else {}, []
        for sign in (-1.0, 1.0):
            if sign in bounds:
                continue
            unit = np.zeros(len(members))
            unit[k] = sign
            solution = solver.solve(unit)
            if solution is None:
                break
            bounds[sign] = solution.x[k]
            binding.append(touching[solution.binding])
        self.programmes += solver.programmes
        if len(bounds) < 2:
            return None
        return bounds[1.0], bounds[-1.0], np.unique(np.concatenate(binding or [[]])).astype(
            np.int64)


_UNRAISED, _RAISED = -1, -2
"""Codes of `_solve_component`'s `partner`: no hidden partner; one judged elsewhere."""

_WITNESS_YIELD = 0.02
"""Witness pairs go on while a pair certifies at least this share of the open counts: a pair
over a whole component costs about as much as 10 to 25 programmes for one count each."""


class _Members:
    """Positions grouped by label 0..n−1: ``members[i]`` are the positions labelled i, in
    ascending order; ``rank[p]`` is position p's place among them, ``sizes[i]`` their number."""

    def __init__(self, labels: np.ndarray, n: int):
        self.order = np.argsort(labels, kind="stable")
        self.bounds = np.searchsorted(labels[self.order], np.arange(n + 1))
        self.sizes = np.diff(self.bounds)
        self.rank = np.empty(len(labels), dtype=np.int64)
        self.rank[self.order] = np.arange(len(labels)) - np.repeat(self.bounds[:-1], self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.order[self.bounds[i]:self.bounds[i + 1]]


@dataclass
class _Solution:
    x: np.ndarray
    binding: np.ndarray  # local relation indices with a non-zero dual value


class _ComponentSolver:
    """One component's programme ``low ≤ A x ≤ high``, ``lower ≤ x ≤ upper``, kept in one
    HiGHS model: each solve changes only the objective (and column bounds), so the simplex
    starts from the previous optimal basis instead of from scratch. With `bulk`, every
    programme from scratch instead, dual simplex after presolve: for objectives over many
    counts, whose optimum is far from the previous one. A bulk programme's solution depends on
    that programme alone, not on what the model solved before."""

    def __init__(self, matrix: sparse.csr_matrix, low: np.ndarray, high: np.ndarray,
                 lower: np.ndarray, upper: np.ndarray, *, bulk: bool = False):
        # NOTE: rows scaled to unit largest coefficient: ratio rows carry populations (~1e5).
        scale = np.asarray(abs(matrix).max(axis=1).todense()).ravel()
        scale[scale == 0] = 1.0
        matrix = (sparse.diags(1.0 / scale) @ matrix).tocsc()
        matrix.sort_indices()
        self.n = matrix.shape[1]
        self.lower, self.upper = lower.astype(float), upper.astype(float)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_, lp.col_upper_ = self.lower, self.upper
        lp.row_lower_, lp.row_upper_ = low / scale, high / scale
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = matrix.shape[1], matrix.shape[0]
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data.astype(float)
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("threads", 1)
        self._choose_method(bulk=bulk)
        self.bulk = bulk
        self.highs.passModel(lp)
        self.columns = np.arange(self.n, dtype=np.int32)
        self.bounds = (self.lower, self.upper)
        self.programmes = 0

    def _choose_method(self, *, bulk: bool) -> None:
        # NOTE: a new objective leaves the last optimal basis primal feasible: primal simplex
        # goes on from it, without presolve (which would start each programme afresh). On the
        # sample's largest component (8,018 unknowns) 58 → 36 s for its ~620 programmes.
        options = ({"solver": "simplex", "presolve": "choose", "simplex_strategy": 1} if bulk
                   else {"solver": "choose", "presolve": "off", "simplex_strategy": 4})
        for name, value in options.items():
            self.highs.setOptionValue(name, value)

    def solve(self, objective: np.ndarray, lower: np.ndarray | None = None,
              upper: np.ndarray | None = None) -> _Solution | None:
        """Minimise ``objective · x`` (within other column bounds when given)."""
        lower = self.lower if lower is None else lower
        upper = self.upper if upper is None else upper
        if lower is not self.bounds[0] or upper is not self.bounds[1]:
            self.highs.changeColsBounds(self.n, self.columns, lower, upper)
            self.bounds = (lower, upper)
        self.highs.changeColsCost(self.n, self.columns, objective.astype(float))
        if self.bulk:
            # NOTE: without it HiGHS would start from the last basis, and a point would depend on
            # the programmes solved before it in this model (one model or two for a pair).
            self.highs.clearSolver()
        self.highs.run()
        self.programmes += 1
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal and not self.bulk:
            # NOTE: primal simplex without presolve can stop with status Unknown on a bounded,
            # feasible programme (cases in tests/unit/test_attacker.py), from the last basis
            # and even from scratch; the bulk method (dual simplex after presolve) solves it.
            # A programme left unsolved gives its count no bound, which reads as not pinned.
            self.highs.clearSolver()
            self._choose_method(bulk=True)
            self.highs.run()
            self.programmes += 1
            self._choose_method(bulk=False)
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        solution = self.highs.getSolution()
        dual = np.asarray(solution.row_dual)
        return _Solution(np.asarray(solution.col_value),
                         np.flatnonzero(np.abs(dual) > 1e-9))
