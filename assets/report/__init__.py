"""The thematic report: one self-contained, offline HTML page per language from publication tables.

Pure and Dagster-free. :func:`render_report` takes tables that already passed disclosure control
(``assets.disclosure``) and returns the HTML text of the page in one language; the ``publication``
asset writes the Dutch page to ``<warehouse>/publication/thematic_report.html`` and the English one
to ``thematic_report.en.html`` (DESIGN.md §5).

How it is made (docs/publication.md): the builders in :mod:`assets.report.sections` turn tables
into a :class:`~assets.report.document.Document` (rows, numbers, figures); the view
(:mod:`assets.report.view`) renders it with the Jinja2 templates in ``templates/`` and the words of
the language in ``words/<language>.yaml``. Numbers are formatted by Python filters of the language
(decimal comma in Dutch).

Self-contained means no network at all when the page is opened: no scripts, no external style
sheets or fonts, every figure inline as SVG (:mod:`assets.report.figures`), and a
Content-Security-Policy that forbids any fetch as a second line of defence.

Deterministic: the same tables and context give a byte-identical page in any process and with any
fonts installed. Rows are sorted explicitly, nothing depends on the clock unless the context passes
a time, element ids are numbered per page, and no position in a figure depends on measured text.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from assets.report.document import Document, ReportContext, ThemeSection
from assets.report.figures import Figures, checking_specs, normalise_svg
from assets.report.language import DEFAULT_LANGUAGE, LANGUAGES, get_language
from assets.report.sections import KNOWN_TABLES, SECTIONS
from assets.report.view import render_document

__all__ = [
    "KNOWN_TABLES",
    "LANGUAGES",
    "ReportContext",
    "ThemeSection",
    "build_document",
    "normalise_svg",
    "render_report",
    "report_file_name",
]


def report_file_name(language: str) -> str:
    """The file name of the report in `language`: Dutch without a suffix, others with one."""
    return "thematic_report.html" if language == DEFAULT_LANGUAGE else f"thematic_report.{language}.html"


def build_document(
    tables: Mapping[str, pl.DataFrame], *, context: ReportContext, language: str = DEFAULT_LANGUAGE
) -> Document:
    """The report's sections in `language`, each present only when its table is given.

    Raises
    ------
    ValueError
        For a table name the report does not know (a wiring mistake would otherwise drop it),
        or a language it has no words for.
    """
    unknown = sorted(set(tables) - set(KNOWN_TABLES))
    if unknown:
        raise ValueError(
            f"the report does not know the tables {unknown}; known: {list(KNOWN_TABLES)}"
        )
    words = get_language(language)
    figures = Figures(words)
    with checking_specs():
        sections = tuple(
            section
            for build in SECTIONS
            if (section := build(tables, context, words, figures)) is not None
        )
    others = {code: report_file_name(code) for code in LANGUAGES if code != language}
    return Document(language=language, context=context, sections=sections, other_versions=others)


def render_report(
    tables: Mapping[str, pl.DataFrame], *, context: ReportContext, language: str = DEFAULT_LANGUAGE
) -> str:
    """The thematic report as one self-contained HTML page in `language` (Dutch by default).

    Sections appear only when their table is given: summary, data suitability, disproportionality
    per team (forest plots), funnel plot, outcome test, repeat checks, veil of darkness, count
    models, then one section per theme, methods and caveats, and a footer with the settings, code
    version and input fingerprint.

    Parameters
    ----------
    tables
        Disclosure-controlled publication tables by asset name (see ``KNOWN_TABLES``). Unknown
        columns are ignored; columns the report would use but the table lacks are left out.
    context
        Title, period, provenance and themes.
    language
        One of ``LANGUAGES``; every language shows the same numbers.

    Returns
    -------
    str
        The HTML page; the same input gives the same bytes.
    """
    return render_document(build_document(tables, context=context, language=language))
