"""Reading a thematic report back for tests: its language, sections and tables, with Python's own
HTML parser (no knowledge of the templates beyond the documented data attributes)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

SUPPRESSED_MARK = "—"


@dataclass
class Cell:
    text: str
    value: str | None  # data-value of a label cell
    is_label: bool


@dataclass
class Row:
    cells: list[Cell]
    is_suppressed: bool


@dataclass
class ReportTable:
    source: str | None  # data-source: the published table
    where: dict[str, str]
    columns: list[list[str]]  # data-col of each header: the source columns of its cells
    numeric: list[bool] = field(default_factory=list)  # header class "num"
    rows: list[Row] = field(default_factory=list)

    def keyed(self) -> dict[tuple, Row]:
        """Rows by the (column, code) pairs of their label cells."""
        out = {}
        for row in self.rows:
            key = tuple((self.columns[i][0], c.value) for i, c in enumerate(row.cells) if c.is_label)
            assert key not in out, f"duplicate row {key} in {self.source}"
            out[key] = row
        return out


@dataclass
class Report:
    lang: str | None
    sections: list[str]
    tables: list[ReportTable]
    items: list[str]  # the text of every list item (the summary statements)
    text: str  # all text outside figures


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.report = Report(None, [], [], [], "")
        self.item: list[str] | None = None
        self.table: ReportTable | None = None
        self.row: Row | None = None
        self.cell: Cell | None = None
        self.in_svg = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.report.lang = a.get("lang")
        elif tag == "svg":
            self.in_svg += 1
        elif tag == "section":
            self.report.sections.append(a["id"])
        elif tag == "table":
            self.table = ReportTable(a.get("data-source"), json.loads(a.get("data-where") or "{}"), [])
            self.report.tables.append(self.table)
        elif tag == "th" and self.table is not None and "data-col" in a:
            self.table.columns.append(a["data-col"].split())
            self.table.numeric.append("num" in (a.get("class") or "").split())
        elif tag == "tr" and self.table is not None:
            self.row = Row([], "suppressed" in (a.get("class") or "").split())
        elif tag == "li":
            self.item = []
        elif tag == "td" and self.row is not None:
            is_label = "label" in (a.get("class") or "").split()
            self.cell = Cell("", a.get("data-value"), is_label)

    def handle_endtag(self, tag):
        if tag == "svg":
            self.in_svg -= 1
        elif tag == "td" and self.cell is not None:
            self.row.cells.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row.cells:
                self.table.rows.append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None
        elif tag == "li" and self.item is not None:
            self.report.items.append("".join(self.item))
            self.item = None

    def handle_data(self, data):
        if self.item is not None:
            self.item.append(data)
        if self.cell is not None:
            self.cell.text += data
        if not self.in_svg:
            self.text.append(data)


def parse_report(page: str) -> Report:
    parser = _Parser()
    parser.feed(page)
    parser.report.text = " ".join(parser.text)
    return parser.report


def parse_numbers(text: str, lang: str) -> list[float]:
    """The numbers in a cell, read in the page's convention (∞ as inf; "<0.001" as 0.001)."""
    decimal, thousands = (",", ".") if lang == "nl" else (".", ",")
    numbers = []
    for token in re.findall(r"[+\-−]?\d[\d.,]*|∞", text):
        if token == "∞":
            numbers.append(math.inf)
            continue
        token = token.replace("−", "-").replace(thousands, "").replace(decimal, ".")
        numbers.append(float(token))
    return numbers


def decimals(text: str, lang: str) -> int:
    """Decimals of the most precise number in a cell (its rounding)."""
    decimal = "," if lang == "nl" else "."
    found = [len(t.split(decimal)[1]) if decimal in t else 0
             for t in re.findall(r"\d[\d.,]*", text)]  # fmt: skip
    return max(found, default=0)


def _scale(text: str) -> float:
    """Percentages and percentage points show 100 × the published share."""
    return 100.0 if ("%" in text or " pp" in text or "procentpunt" in text) else 1.0


def check_published_cells(report: Report, frames: dict) -> int:
    """Every table of the report that names its published source shows exactly that table's rows
    (after its data-where), each value cell equal to the published value to the cell's rounding,
    and a suppressed row shows the mark in every value cell. Returns the number of cells checked.
    """
    import polars as pl

    checked = 0
    for table in report.tables:
        if table.source is None:
            continue
        frame = frames[table.source]
        for column, value in table.where.items():
            frame = frame.filter(pl.col(column).cast(pl.String) == value)
        labels = [cols[0] for cols, cell in zip(table.columns, table.rows[0].cells) if cell.is_label]
        index = {tuple(str(r[c]) for c in labels): r for r in frame.to_dicts()}
        assert len(index) == frame.height == len(table.rows), (table.source, table.where)
        for row in table.rows:
            source = index[tuple(c.value for c in row.cells if c.is_label)]
            hidden = source.get("is_suppressed", False) is not False
            assert row.is_suppressed == hidden, (table.source, source)
            for cols, is_numeric, cell in zip(table.columns, table.numeric, row.cells):
                if cell.is_label:
                    continue
                checked += 1
                expected = [source[c] for c in cols]
                if hidden or all(v is None for v in expected):
                    assert cell.text == SUPPRESSED_MARK, (table.source, cols, cell.text)
                    continue
                if not is_numeric:
                    continue
                shown = parse_numbers(cell.text, report.lang)
                assert len(shown) == len(expected), (table.source, cols, cell.text)
                tolerance = 0.5 * 10 ** -decimals(cell.text, report.lang) + 1e-9
                for number, value in zip(shown, expected):
                    value = value * _scale(cell.text)
                    if cell.text.startswith("<"):
                        assert value < number, (table.source, cols, cell.text, value)
                    elif math.isinf(number) or math.isinf(value):
                        assert number == value, (table.source, cols, cell.text, value)
                    else:
                        assert abs(number - value) <= tolerance, (table.source, cols, cell.text, value)
    return checked


def assert_same_numbers(dutch: Report, english: Report) -> None:
    """Two languages of one report: the same sections, tables, rows, codes and numbers."""
    assert (dutch.lang, english.lang) == ("nl", "en")
    assert dutch.sections == english.sections
    # NOTE: the settings table (no data-col headers) shows configuration as code, in JSON.
    nl_tables, en_tables = ([t for t in r.tables if t.columns] for r in (dutch, english))
    assert len(nl_tables) == len(en_tables) > 0
    for nl_table, en_table in zip(nl_tables, en_tables):
        assert (nl_table.source, nl_table.where, nl_table.columns) == (
            en_table.source, en_table.where, en_table.columns)  # fmt: skip
        assert len(nl_table.rows) == len(en_table.rows)
        for nl_row, en_row in zip(nl_table.rows, en_table.rows):
            assert nl_row.is_suppressed == en_row.is_suppressed
            for nl_cell, en_cell in zip(nl_row.cells, en_row.cells, strict=True):
                assert nl_cell.value == en_cell.value
                if not nl_cell.is_label:
                    assert parse_numbers(nl_cell.text, "nl") == parse_numbers(en_cell.text, "en"), (
                        nl_table.source, nl_cell.text, en_cell.text)  # fmt: skip
    assert len(dutch.items) == len(english.items)
    for nl_item, en_item in zip(dutch.items, english.items):
        assert parse_numbers(nl_item, "nl") == parse_numbers(en_item, "en"), (nl_item, en_item)
