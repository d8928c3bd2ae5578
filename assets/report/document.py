"""What a report holds, apart from how it looks: the input context and the built document.

The builders (``assets.report.sections``) turn publication tables into a :class:`Document`:
sections of plain data (codes, numbers, table rows, rendered figures). The view
(``assets.report.view``) only renders a document with the Jinja2 templates and the words of its
language; it computes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from assets.report.language import LABEL_FORMATS, NUMBER_FORMATS


@dataclass(frozen=True, eq=False)
class ThemeSection:
    """One thematic analysis: a `out_team_disproportionality`-style table for a slice of queries."""

    name: str
    description: str
    table: pl.DataFrame
    title: str | None = None


@dataclass(frozen=True, eq=False)
class ReportContext:
    """Everything the report says about how it was made.

    Parameters
    ----------
    period_start, period_end
        Inclusive dates covered; team tables are shown for this period when they hold several.
    title
        Page title; by default the title in the language's words.
    settings
        The analysis settings of the run (shown in the footer, sorted by name).
    code_version, input_fingerprint
        Provenance shown in the footer.
    themes
        Thematic sections, as :class:`ThemeSection` or ``(name, description, table)`` tuples.
    is_synthetic
        True when the inputs are the built-in synthetic sample: a warning is shown at the top.
    generated_at
        Optional time stamp text; nothing time-dependent is added unless it is passed.
    reference_origin
        The reference origin of the ratios (default NL).
    benchmark
        The benchmark shown in the summary and the figures (default team_residents).
    fdr_level
        q-value below which a team difference counts as clear in the summary.
    """

    period_start: dt.date
    period_end: dt.date
    title: str | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    code_version: str = "unknown"
    input_fingerprint: str = "unknown"
    themes: Sequence[ThemeSection | tuple[str, str, pl.DataFrame]] = ()
    is_synthetic: bool = False
    generated_at: str | None = None
    reference_origin: str = "NL"
    benchmark: str = "team_residents"
    fdr_level: float = 0.05

    def theme_sections(self) -> tuple[ThemeSection, ...]:
        """The themes as :class:`ThemeSection` objects."""
        return tuple(t if isinstance(t, ThemeSection) else ThemeSection(*t) for t in self.themes)


@dataclass(frozen=True)
class Column:
    """A column of a report table.

    Attributes
    ----------
    header
        Dotted path of its header in the words (``"columns.query_count"``).
    kind
        How its cells are written: a method of :class:`~assets.report.language.Language`
        (``count``, ``ratio``, ``ci``, ``origin`` ...) or ``term:<group>`` for a code translated
        through a words group (``term:verdicts``).
    sources
        The table columns the cells are made of, in the order `kind` takes them (``ci``: low,
        high).
    is_label
        A key column: shown on suppressed rows too, with its code in ``data-value``.
    """

    header: str
    kind: str
    sources: tuple[str, ...]
    is_label: bool = False

    def __post_init__(self) -> None:
        kinds = LABEL_FORMATS if self.is_label else NUMBER_FORMATS
        if not (self.kind in kinds or self.kind.startswith("term:")):
            raise ValueError(f"a column of kind {self.kind!r}; kinds: {list(kinds)} or term:<group>")

    @property
    def is_numeric(self) -> bool:
        return not self.is_label and not self.kind.startswith("term:") and self.kind != "text"


def label(header: str, source: str, kind: str = "text") -> Column:
    """A key column (team, origin, month ...)."""
    return Column(header, kind, (source,), is_label=True)


def value(header: str, kind: str, *sources: str) -> Column:
    """A value column, hidden on suppressed rows."""
    return Column(header, kind, sources)


def is_suppressed_row(row: Mapping[str, object]) -> bool:
    """A row to show without numbers: flagged, or with a null flag; no flag column: published."""
    return "is_suppressed" in row and row["is_suppressed"] is not False


@dataclass(frozen=True)
class Table:
    """Rows of a table as the report shows them.

    Attributes
    ----------
    columns
        The columns shown, in order.
    rows
        One mapping per row with the source columns (raw values) and ``is_suppressed``.
    source
        The published table the rows come from (``data-source``), when they are its rows as
        published; None for a table the report derives.
    where
        Key values every shown row of `source` shares (``data-where``), e.g. the benchmark.
    """

    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]
    source: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """A section of the page: its anchor, the words group of its title, template and data."""

    anchor: str
    words: str
    template: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Document:
    """A whole report in one language, ready for the view.

    Attributes
    ----------
    other_versions
        File names of the same report in the other languages, by language code.
    """

    language: str
    context: ReportContext
    sections: tuple[Section, ...]
    other_versions: Mapping[str, str] = field(default_factory=dict)
