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
    # NOTE: stdout carries the answer only: anything a library prints goes to stderr.
    answer, sys.stdout = sys.stdout.buffer, sys.stderr
    warm_up()
    answer.write(READY)
    answer.flush()
    tables, context, languages = pickle.load(sys.stdin.buffer)
    pages = {language: render_report(tables, context=context, language=language)
             for language in languages}
    pickle.dump(pages, answer)
    answer.flush()


if __name__ == "__main__":
    main()
