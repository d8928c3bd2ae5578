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

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from assets.report.document import Document, ReportContext, ThemeSection
from assets.report.figures import Figures, checking_specs, normalise_svg
from assets.report.language import DEFAULT_LANGUAGE, LANGUAGES, get_language
from assets.report.sections import KNOWN_TABLES, SECTIONS
from assets.report.view import render_document
from assets.stats.processors import available_processors

__all__ = [
    "KNOWN_TABLES",
    "LANGUAGES",
    "ReportContext",
    "ReportProcess",
    "ThemeSection",
    "build_document",
    "normalise_svg",
    "render_report",
    "render_reports",
    "report_file_name",
    "report_process",
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


def warm_up() -> None:
    """Start vl-convert's JavaScript engine: 0.9 s at the first figure of a process, then
    milliseconds."""
    import vl_convert

    vl_convert.vegalite_to_svg({"data": {"values": [{"x": 1}]}, "mark": "point"})


READY = b"ready\n"
"""What `python -m assets.report.worker` writes to stdout once it can render at once."""

WORKER_DELAY_SECONDS = 2.0
"""How long the caller works before :func:`report_process` starts the worker: a release judged
sooner is small, its reports quick, and the worker's imports (4 s of a processor) would not pay."""


class ReportProcess:
    """``python -m assets.report.worker``, started by :meth:`start` (:func:`report_process`);
    `ready` is set when it has imported the report's libraries and warmed vl-convert up."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.ready = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._waiting: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker, unless :meth:`stop` came first."""
        with self._lock:
            if self._stopped or self.child is not None:
                return
            # NOTE: a plain subprocess, not multiprocessing: a spawned child would import the
            # caller's main module, which breaks a script that materialises assets without a
            # main guard.
            paths = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
            self.child = subprocess.Popen(
                [sys.executable, "-m", "assets.report.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, paths))})
            self._waiting = threading.Thread(target=self._await_ready, args=(self.child,),
                                             daemon=True)
            self._waiting.start()

    def _await_ready(self, child: subprocess.Popen) -> None:
        if child.stdout.readline() == READY:
            self.ready.set()

    def stop(self) -> None:
        """End the worker (if it runs) and keep it from starting."""
        with self._lock:
            self._stopped = True
            if self.child is None:
                return
            if self.child.poll() is None:
                self.child.kill()
            self._waiting.join()
            self.child.communicate()


@contextmanager
def report_process(delay: float = WORKER_DELAY_SECONDS) -> Iterator[ReportProcess | None]:
    """A Python process for :func:`render_reports`, started after `delay` seconds (at once for
    0) so that it imports the report's libraries and warms vl-convert up while the caller works;
    None when this process has one processor. Leaving the block ends the process."""
    if available_processors() < 2:
        yield None
        return
    process = ReportProcess()
    timer = threading.Timer(delay, process.start)
    if delay > 0:
        timer.start()
    else:
        process.start()
    try:
        yield process
    finally:
        timer.cancel()
        process.stop()


def render_reports(
    tables: Mapping[str, pl.DataFrame], *, context: ReportContext,
    languages: Sequence[str] = LANGUAGES, process: ReportProcess | None = None,
) -> dict[str, str]:
    """:func:`render_report` in each of `languages`: language → HTML page.

    With a `process` (:func:`report_process`), every language but the first is rendered there
    while this process renders the first: a page takes 6-7 s of one processor, mostly altair
    and vl-convert, which hold the GIL, so threads would not run them side by side. The process
    gets the work as soon as it is ready, if that is before this process has rendered the first
    page; otherwise (small tables, a quick judge, a process not started) this process renders
    every page. The pages are the same bytes wherever they are rendered. When the process fails
    (out of memory, killed), its languages are rendered here, where an error in the report's
    own code shows in full.
    """
    first, rest = list(languages[:1]), list(languages[1:])
    abandoned = threading.Event()

    def hand_over() -> bytes | None:
        # NOTE: a short poll: `ready` is set by the process's reader thread, `abandoned` by this
        # function's caller, and either ends the wait.
        # Once it hands the pages over, the caller takes them from its result.
        while not process.ready.wait(timeout=0.05):
            if abandoned.is_set():
                return None
        out, _ = process.child.communicate(pickle.dumps((dict(tables), context, rest)))
        return out if process.child.returncode == 0 else None

    with ThreadPoolExecutor(1) as feeder:
        elsewhere = feeder.submit(hand_over) if process is not None and rest else None
        try:
            pages = {language: render_report(tables, context=context, language=language)
                     for language in first}
        finally:
            # NOTE: also when the first page fails: the hand-over must not wait on.
            abandoned.set()
        out = elsewhere.result() if elsewhere is not None else None
    pages |= pickle.loads(out) if out is not None else {
        language: render_report(tables, context=context, language=language) for language in rest}
    return {language: pages[language] for language in languages}
