"""The view: renders a built :class:`~assets.report.document.Document` with Jinja2 templates.

One environment per language, loading the templates of this package (``PackageLoader``) with
autoescape on and undefined names an error. The language's number formats and words are its
filters and globals, so a template writes ``{{ row.query_count | count }}`` or
``{{ w.summary.more | fill(origin=...) }}`` and never formats a number itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from assets.report.document import Column, Document, is_suppressed_row
from assets.report.language import NUMBER_FORMATS, SUPPRESSED_MARK, Language, get_language

# NOTE: the policy forbids every fetch (scripts, styles, fonts, images, frames) except the page's
# own inline style: a reader's browser enforces "no network" even if a figure slipped something in.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def fill(text: str, **values: object) -> Markup:
    """Words with their placeholders filled in; the words and plain values are escaped, values
    that are already markup (a number in ``<strong>``) are kept."""
    return escape(text).format(**values)


def strong(value: object) -> Markup:
    return Markup("<strong>{}</strong>").format(value)


def cell(language: Language, column: Column, row: Mapping[str, Any]) -> str:
    """The text of one table cell: the column's kind applied to its source values."""
    values = [row.get(source) for source in column.sources]
    if column.kind.startswith("term:"):
        return SUPPRESSED_MARK if values[0] is None else language.term(column.kind[5:], values[0])
    return getattr(language, column.kind)(*values)


@cache
def environment(code: str) -> jinja2.Environment:
    """The Jinja environment of one language."""
    language = get_language(code)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("assets.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(w=language.words, language=code, mark=SUPPRESSED_MARK, csp=Markup(CSP),
                       words_of=lambda other: get_language(other).words)
    env.filters.update(
        fill=fill,
        strong=strong,
        code=lambda value: Markup("<code>{}</code>").format(value),
        words=language.w,
        term=lambda value, group: language.term(group, value),
        cell=lambda column, row: cell(language, column, row),
        is_suppressed=is_suppressed_row,
        adjective=language.origin_adjective,
        team=language.team,
        join_words=language.join,
        setting=_setting_text,
        **{name: getattr(language, name) for name in NUMBER_FORMATS},
    )
    return env


def _setting_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def render_document(document: Document) -> str:
    """The HTML page of a document."""
    template = environment(document.language).get_template("page.html.j2")
    return template.render(doc=document, context=document.context)
