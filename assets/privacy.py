"""Keep person-level values out of the Dagster event log, whatever goes wrong.

Library errors (polars, pyarrow, scipy) may quote the values they choked on. Every asset is
wrapped with `withhold_values`: our own errors (StopcheckError and its kinds: InputError,
ConfigError for themes and settings; RawIdentifierError), whose messages are aggregate or quote
configuration only, pass unchanged and in full; any other error is replaced by a WithheldError
that names the asset, the month, the input files and the columns to look at (column names that
the library's message mentions, taken from the inputs' schemas, never from the message), with
its cause chain cut.

On the assets side because asset modules apply it (STYLE.md rule 13).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from collections.abc import Iterator

import dagster as dg
import polars as pl

from assets.frames import StopcheckError
from assets.identifiers import RawIdentifierError

OWN_ERRORS = (StopcheckError, RawIdentifierError, dg.DagsterError)

WITHHOLDS_VALUES = "__stopcheck_withholds_values__"
"""Attribute set on a wrapped function, so a test can find every asset that is not wrapped."""


class WithheldError(StopcheckError):
    """An error whose message was withheld because it may quote person-level values."""


def _current_context() -> dg.AssetExecutionContext | None:
    try:
        return dg.AssetExecutionContext.get()
    except Exception:  # noqa: BLE001 - outside a run (a direct call in a test or notebook)
        return None


def _input_file(context: dg.AssetExecutionContext | None, name: str) -> str:
    """The warehouse file of an input (DESIGN.md §5 layout), relative to the warehouse."""
    try:
        months = context.asset_partition_keys_for_input(name) if context else []
    except Exception:  # noqa: BLE001 - Dagster raises for an unpartitioned input
        months = []
    if not months:
        return f"{name}.parquet"
    return f"{name}/{months[0]}.parquet" if len(months) == 1 else f"{name}/*.parquet"


def _columns(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    try:
        return frame.collect_schema().names()
    except Exception:  # noqa: BLE001 - a plan that cannot resolve its schema names no column
        return []


def _mentioned(columns: list[str], message: str) -> list[str]:
    """The columns whose name occurs in the message as a whole word (names only, no values)."""
    return [c for c in columns if re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", message)]


def _locate(fn, args: tuple, kwargs: dict, exc: Exception) -> Iterator[str]:
    """Clauses saying where to look: month, input files, and columns the message mentions."""
    context = _current_context()
    if context is not None and context.has_partition_key:
        yield f"month {context.partition_key}"
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except TypeError:
        bound = dict(kwargs)
    message = str(exc)
    inputs = {name: value for name, value in bound.items()
              if isinstance(value, pl.DataFrame | pl.LazyFrame)}
    if inputs:
        yield "input files " + ", ".join(_input_file(context, name) for name in inputs) + \
            " in the warehouse"
    else:
        yield "the landing-zone files it reads"
    named = [f"{name}.{column}" for name, frame in inputs.items()
             for column in _mentioned(_columns(frame), message)]
    if named:
        yield "column(s) " + ", ".join(named)


def _withheld(fn, args: tuple, kwargs: dict, exc: Exception) -> WithheldError:
    try:
        where = "; ".join(_locate(fn, args, kwargs, exc))
    except Exception:  # noqa: BLE001 - never let the hint hide the error itself
        where = "location unknown"
    return WithheldError(
        f"{type(exc).__name__} while computing {fn.__name__} ({where}); the message is withheld "
        "because it may quote person-level values: rerun the pure function on those files "
        "locally to debug"
    )


@contextlib.contextmanager
def _withholding(fn, args: tuple, kwargs: dict) -> Iterator[None]:
    """Let our own errors through; replace any other by a WithheldError, its chain cut."""
    try:
        yield
    except OWN_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _withheld(fn, args, kwargs, exc) from None


def withhold_values(fn):
    """Decorate an asset body so that only aggregate error messages reach the event log."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _withholding(fn, args, kwargs):
                yield from fn(*args, **kwargs)

    else:

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _withholding(fn, args, kwargs):
                return fn(*args, **kwargs)

    setattr(wrapper, WITHHOLDS_VALUES, True)
    return wrapper
