"""Renders report pages in a process of its own, for `assets.report.render_reports`.

``python -m assets.report.worker`` warms vl-convert up and says so on stdout (`READY`), then reads
one pickled (tables, context, languages) from stdin and writes the pickled pages (language → HTML)
to stdout.
"""

from __future__ import annotations

import pickle
import sys

from assets.report import READY, render_report, warm_up


def main() -> None:
    warm_up()
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    tables, context, languages = pickle.load(sys.stdin.buffer)
    pages = {language: render_report(tables, context=context, language=language)
             for language in languages}
    pickle.dump(pages, sys.stdout.buffer)


if __name__ == "__main__":
    main()
