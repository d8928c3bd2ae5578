"""SQLAlchemy dialect ``duckdb+stopcheck``: duckdb-engine's DuckDB dialect without transactions.

Great Expectations 1.24.1 reads DuckDB through SQLAlchemy and fetches a query's rows after it has
closed the connection. Closing rolls the connection's transaction back, which discards DuckDB's
unbuffered result: every metric came back empty, every expectation "broken" (GX issue #11579).
Within one transaction, a query that fails (a broken expectation) also aborts every query after it.
GX only reads, so this dialect runs each statement in DuckDB's autocommit mode instead: no BEGIN,
no COMMIT, no ROLLBACK. Registered by :func:`pipelines.gx.install_duckdb_shims`; the dialect's
name stays ``duckdb``, so GX treats it as DuckDB.
"""

from __future__ import annotations

from typing import Any

from duckdb_engine import Dialect


class AutocommitDuckDBDialect(Dialect):
    """duckdb-engine's dialect with transactions left to DuckDB's autocommit (read-only use)."""

    # NOTE: as duckdb-engine (it does not declare statement caching); False only silences
    # SQLAlchemy's warning about it.
    supports_statement_cache = False

    def do_begin(self, dbapi_connection: Any) -> None:
        pass

    def do_commit(self, dbapi_connection: Any) -> None:
        pass

    def do_rollback(self, dbapi_connection: Any) -> None:
        pass
