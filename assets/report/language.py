"""The words and number formats of one report language.

Each language's text is one YAML file in ``assets/report/words/`` (``nl.yaml``, ``en.yaml``).
English is the fallback: a key missing from another language's file takes the English words, as
mkdocs-material does for its theme languages (a test keeps the Dutch file complete, so the
fallback only matters for a language that is being added). Numbers are formatted here, in
Python, never in a template: the Jinja environment (``assets.report.view``) exposes these methods
as filters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from assets.schema import ORIGIN_CODES

LANGUAGES = ("nl", "en")
"""Languages the report is published in; the first is the default (its readers read Dutch)."""
DEFAULT_LANGUAGE = LANGUAGES[0]
FALLBACK_LANGUAGE = "en"
SUPPRESSED_MARK = "—"
"""What a suppressed cell shows, in every language."""
NUMBER_FORMATS = ("count", "ratio", "number", "plain", "ci", "ratio_ci", "range3", "p", "pct",
                  "pct_ci", "points", "text")  # fmt: skip
"""Methods of :class:`Language` that write a value: the templates' filters and table kinds."""
LABEL_FORMATS = ("origin", "team", "text")
"""Methods of :class:`Language` that write a key code (besides ``term:<group>``)."""


def is_number(value: object) -> bool:
    """A finite int or float (not a bool, None, NaN or ±∞): what a cell can show as a number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            merged[key] = _merge(base[key], value)
        else:
            merged[key] = value
    return merged


def read_words_file(language: str) -> dict[str, Any]:
    """The words of one language file as written (no fallback)."""
    path = resources.files("assets.report") / "words" / f"{language}.yaml"
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@dataclass(frozen=True, eq=False)
class Language:
    """Words and number formats of one language.

    Attributes
    ----------
    code
        ISO 639-1 code, written to ``<html lang>``.
    words
        The nested words of the language file, English filling in missing keys.
    """

    code: str
    words: Mapping[str, Any]

    def w(self, path: str, **values: object) -> str:
        """The words at a dotted path (``"summary.more"``), placeholders filled in when given."""
        node: Any = self.words
        for part in path.split("."):
            node = node[part]
        if not isinstance(node, str):
            raise KeyError(f"{path} is not a text in the {self.code} words")
        return node.format(**values) if values else node

    def term(self, group: str, value: object) -> str:
        """The label of a code in a words group (origins, verdicts ...), the code when unknown."""
        labels = self.words.get("terms", {}).get(group, {})
        return str(labels.get(str(value), value))

    # ----------------------------------------------------------------------------------------
    # Numbers. Python formats with "." and ","; other conventions swap them afterwards.

    def _localise(self, text: str) -> str:
        decimal, thousands = self.words["numbers"]["decimal"], self.words["numbers"]["thousands"]
        if (decimal, thousands) == (".", ","):
            return text
        return text.translate(str.maketrans({".": decimal, ",": thousands}))

    def count(self, value: object) -> str:
        """An integer with thousands separators (1,234 or 1.234)."""
        return self._localise(f"{int(value):,}") if is_number(value) else SUPPRESSED_MARK

    def ratio(self, value: object) -> str:
        """Two decimals (1.23 or 1,23)."""
        return self._localise(f"{value:.2f}") if is_number(value) else SUPPRESSED_MARK

    def number(self, value: object) -> str:
        """Three decimals (a log-odds γ, an SE, a Gini coefficient)."""
        return self._localise(f"{value:.3f}") if is_number(value) else SUPPRESSED_MARK

    def plain(self, value: object) -> str:
        """A short number as written in text (0.05 or 0,05)."""
        return self._localise(f"{value:g}") if is_number(value) else SUPPRESSED_MARK

    def ci(self, low: object, high: object) -> str:
        """A ratio interval, ``low–high``; an infinite upper bound (zero counts) shows as ∞."""
        if not (is_number(low) and (is_number(high) or high == math.inf)):
            return SUPPRESSED_MARK
        high_text = self.ratio(high) if is_number(high) else "∞"
        return f"{self.ratio(low)}–{high_text}"

    def ratio_ci(self, value: object, low: object, high: object) -> str:
        """A ratio with its interval in brackets: ``1.23 (1.10–1.40)``."""
        if not is_number(value):
            return SUPPRESSED_MARK
        return f"{self.ratio(value)} ({self.ci(low, high)})"

    def range3(self, low: object, high: object) -> str:
        """An interval of three-decimal numbers, in words (``-0.10 to 0.02``)."""
        if not (is_number(low) and is_number(high)):
            return SUPPRESSED_MARK
        return self.w("numbers.range", low=self.number(low), high=self.number(high))

    def p(self, value: object) -> str:
        """A p- or q-value with three decimals, ``<0.001`` below that."""
        if not is_number(value):
            return SUPPRESSED_MARK
        return "<" + self._localise("0.001") if value < 0.001 else self._localise(f"{value:.3f}")

    def pct(self, value: object) -> str:
        """A share as a percentage with one decimal (12.3% or 12,3%)."""
        return self._localise(f"{100 * value:.1f}%") if is_number(value) else SUPPRESSED_MARK

    def pct_ci(self, low: object, high: object) -> str:
        """A percentage interval, ``10.1–12.3%``."""
        if not (is_number(low) and is_number(high)):
            return SUPPRESSED_MARK
        return self._localise(f"{100 * low:.1f}–{100 * high:.1f}%")

    def points(self, value: object) -> str:
        """A signed difference of two percentages, in percentage points (+1.2 pp)."""
        if not is_number(value):
            return SUPPRESSED_MARK
        return f"{self._localise(f'{100 * value:+.1f}')} {self.w('numbers.points')}"

    def text(self, value: object) -> str:
        """A text cell as it is; a missing value shows as the suppression mark."""
        return SUPPRESSED_MARK if value is None else str(value)

    # ----------------------------------------------------------------------------------------
    # Labels.

    def origin(self, origin: object) -> str:
        """An origin code with its label, ``Marokko (MA)``; a group label as it is translated."""
        code = str(origin)
        label = self.term("origins", code)
        return f"{label} ({code})" if code in ORIGIN_CODES else label

    def origin_adjective(self, origin: object) -> str:
        """The origin as an adjective for sentences (``Moroccan``, ``Marokkaanse``)."""
        return self.term("origin_adjectives", origin)

    def team(self, team: object) -> str:
        """A team code; the whole area (``ALL``) as words."""
        return self.term("teams", team)

    def join(self, words: list[str]) -> str:
        """'a', 'a and b', 'a, b and c' in the language."""
        if len(words) == 1:
            return words[0]
        return ", ".join(words[:-1]) + f" {self.w('numbers.and')} " + words[-1]


@cache
def get_language(code: str) -> Language:
    """The language `code` (one of ``LANGUAGES``), English filling in words it lacks."""
    if code not in LANGUAGES:
        raise ValueError(f"the report has no language {code!r}; languages: {list(LANGUAGES)}")
    words = read_words_file(FALLBACK_LANGUAGE)
    if code != FALLBACK_LANGUAGE:
        words = _merge(words, read_words_file(code))
    return Language(code=code, words=words)
