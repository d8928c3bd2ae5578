"""Keep person-level values out of the Dagster event log, whatever goes wrong.

Library errors (polars, pyarrow, scipy) may quote the values they choked on. An asset that reads
person-level data is wrapped with `withhold_values`: our own errors (StopcheckError,
RawIdentifierError), whose messages are aggregate by construction, pass unchanged; any other
error is replaced by its type and the asset name, with its cause chain cut.

On the assets side because asset modules apply it (STYLE.md rule 13).
"""

from __future__ import annotations

import functools
import inspect

import dagster as dg

from assets.frames import StopcheckError
from assets.identifiers import RawIdentifierError

OWN_ERRORS = (StopcheckError, RawIdentifierError, dg.DagsterError)


class WithheldError(StopcheckError):
    """An error whose message was withheld because it may quote person-level values."""


def _withheld(name: str, exc: Exception) -> WithheldError:
    return WithheldError(
        f"{type(exc).__name__} while computing {name}; the message is withheld because it may "
        "quote person-level values (rerun the pure function locally to debug)"
    )


def withhold_values(fn):
    """Decorate an asset body so that only aggregate error messages reach the event log."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except OWN_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _withheld(fn.__name__, exc) from None

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OWN_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _withheld(fn.__name__, exc) from None

    return wrapper
