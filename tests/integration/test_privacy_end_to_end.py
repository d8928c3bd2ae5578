"""A monthly file holding an un-pseudonymised identifier is refused whole and the value is never
shown (DESIGN.md §6, issues 3 and 16).

For every privacy damage of tests/corpus.py (a BSN passing the 11-test in a string column, in an
extra free-text column, embedded in an id or in a CSV file; a licence plate of sidecode 1, 7 or
9 in a pseudonym column; an e-mail address in officer_pseudonym; and issue 16's exports: 24 BSNs
written 1234.56.782 / 123 456 782 / 123-456-782 or as eight digits in subject_pseudonym, plates
typed into query_reason, and forms the issue does not list):

- `stopcheck run` (the console script, a real SQLite DAGSTER_HOME) exits 1 and names, per
  refused file, the asset, the partition, the file, the column and the count of values;
- nothing of the refused file is in the warehouse; the other month is complete;
- the value (and a BSN's digits, a plate without dashes) is nowhere: not in the bytes of any
  warehouse file, not in any string cell of any warehouse Parquet file (they are compressed),
  not in any file under DAGSTER_HOME (the SQLite event log, compute logs, ...) nor in any cell
  of its SQLite databases read with sqlite3 (zlib-compressed blobs decompressed), not on the
  console (fd-level capture), not in the exception or its pickle.

A run costs seconds, so one run holds every damage: MONTHS gives each pair of damages (one in
the person file, one in the plate file) a month of its own, next to a clean month. Every damage
is still checked on its own. The console is captured at file-descriptor level for the whole
run (pytest's capfd is per test), so a C library writing to fd 2 would be caught too.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import sqlite3
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from assets import frames
from assets.identifiers import RawIdentifierError
from tests import corpus

OTHER = "2025-01"
"""The clean month: it must be materialised whatever the other months hold."""
MONTHLY_TABLES = ("raw_person_queries", "raw_plate_queries", "core_person_queries",
                  "core_plate_queries", "core_quarantine")
KIND_WORDS = {"bsn": "BSN", "licence_plate": "licence plate", "email": "e-mail"}

MONTHS = {
    "2025-02": ("bsn_in_query_reason", "bsn_embedded_in_query_id"),
    "2025-03": ("bsn_in_extra_text_column", "plate_sidecode_7_in_holder"),
    "2025-04": ("plate_sidecode_1_in_subject", "plate_lowercase_in_plate_pseudonym"),
    "2025-05": ("email_in_officer", "bsn_in_csv_query_reason"),
    "2025-06": ("bsn_grouped_in_subject", "plate_in_query_reason"),
    "2025-07": ("bsn_eight_digits_in_subject", "plate_lowercase_spaced_in_extra_column"),
    "2025-08": ("bsn_labelled_no_break_spaces_in_query_reason", "bsn_full_width_in_csv_holder"),
}
"""Month → (person damage, plate damage)."""
MONTH_OF = {name: month for month, pair in MONTHS.items() for name in pair}


def test_every_privacy_damage_is_run():
    assert sorted(MONTH_OF) == sorted(corpus.PRIVACY_DAMAGES)
    for person, plate in MONTHS.values():
        assert corpus.PRIVACY_DAMAGES[person].query_type == "person"
        assert corpus.PRIVACY_DAMAGES[plate].query_type == "plate"


@contextlib.contextmanager
def console_captured(request) -> Iterator[dict[str, str]]:
    """Capture file descriptors 1 and 2 (and so sys.stdout/err) for a module-scoped fixture."""
    capture_manager = request.config.pluginmanager.getplugin("capturemanager")
    suspended = (capture_manager.global_and_fixture_disabled() if capture_manager
                 else contextlib.nullcontext())
    captured: dict[str, str] = {}
    with suspended, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for name, file in (("out", out), ("err", err)):
                file.seek(0)
                captured[name] = file.read().decode("utf-8", errors="replace")


@dataclass(frozen=True)
class PrivacyRun:
    landing: Path
    warehouse: Path
    home: Path
    paths: dict[str, Path]
    """The damaged file of each damage, by damage name."""
    exit_code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def privacy_run(small_landing, tmp_path_factory, request) -> PrivacyRun:
    """`stopcheck run` over a landing zone with every privacy damage, one pair per month."""
    from pipelines import cli

    root = tmp_path_factory.mktemp("privacy")
    landing = corpus.copy_landing(small_landing, root / "landing")
    for month in MONTHS:
        if month != "2025-02":
            corpus.copy_month(landing, "2025-02", month)
    paths = {name: corpus.inject_identifier(landing, MONTH_OF[name], corpus.PRIVACY_DAMAGES[name])
             for name in MONTH_OF}
    warehouse, home = root / "warehouse", root / "dagster_home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STOPCHECK_LANDING_DIR", str(landing))
        env.setenv("STOPCHECK_WAREHOUSE_DIR", str(warehouse))
        env.setenv("DAGSTER_HOME", str(home))
        with console_captured(request) as console:
            # NOTE: past the pre-flight check, which would stop the run before it starts: this
            # is the run's own guard (test_check_finds_every_damage covers the check).
            exit_code = cli.main(["run", "--skip-check"])
    return PrivacyRun(landing, warehouse, home, paths, exit_code, console["out"], console["err"])


def found_in_bytes(root: Path, needles: tuple[str, ...]) -> list[str]:
    """`file: needle` for every file under root whose bytes hold a needle (UTF-8 or UTF-16)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for needle in needles:
            if any(form in data for form in (needle.encode(), needle.encode("utf-16-le"))):
                found.append(f"{path.relative_to(root)}: {needle}")
    return found


def found_in_parquet_cells(root: Path, needles: tuple[str, ...]) -> list[str]:
    """`file column: needle` for every string cell (or whole-number cell, or column name) of
    every Parquet file under root that holds a needle."""
    found = []
    for path in sorted(root.rglob("*.parquet")):
        frame = pl.read_parquet(path)
        for name, dtype in frame.schema.items():
            column = frame[name]
            for needle in needles:
                if needle in name:
                    hit = True
                elif dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
                    hit = bool(column.cast(pl.String).str.contains(needle, literal=True).any())
                elif dtype.is_integer() and needle.isdigit():
                    hit = bool((column == int(needle)).any())
                else:
                    hit = False
                if hit:
                    found.append(f"{path.relative_to(root)} {name}: {needle}")
    return found


def found_in_sqlite(root: Path, needles: tuple[str, ...]) -> list[str]:
    """`file table.column: needle` for every cell of every table of every SQLite database under
    root that holds a needle: text as stored, blobs decoded and, when zlib-compressed (Dagster
    compresses its snapshots), decompressed."""
    found = []
    for path in sorted(root.rglob("*.db")):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = [row[0] for row in
                      db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                cursor = db.execute(f'SELECT * FROM "{table}"')
                names = [d[0] for d in cursor.description]
                for row in cursor:
                    for name, cell in zip(names, row, strict=True):
                        texts = _cell_texts(cell)
                        found += [f"{path.relative_to(root)} {table}.{name}: {needle}"
                                  for needle in needles if any(needle in t for t in texts)]
    return found


def _cell_texts(cell) -> list[str]:
    if isinstance(cell, str):
        return [cell]
    if isinstance(cell, bytes):
        texts = [cell.decode("utf-8", errors="replace")]
        with contextlib.suppress(zlib.error):
            texts.append(zlib.decompress(cell).decode("utf-8", errors="replace"))
        return texts
    return [str(cell)] if cell is not None else []


def test_run_exits_non_zero_other_month_complete(privacy_run):
    assert privacy_run.exit_code == 1
    assert f"FAILED ({len(MONTH_OF)} failed step(s))" in privacy_run.err
    assert f"] {OTHER} ok in " in privacy_run.out
    assert "statistics skipped" in privacy_run.err
    for name in MONTHLY_TABLES:
        assert (privacy_run.warehouse / name / f"{OTHER}.parquet").is_file()
    assert not list(privacy_run.warehouse.glob("out_*"))


@pytest.mark.parametrize("name", list(MONTH_OF))
def test_file_refused_naming_file_column_and_count(privacy_run, name):
    damage, month = corpus.PRIVACY_DAMAGES[name], MONTH_OF[name]
    lines = [line for line in privacy_run.err.splitlines()
             if line.startswith(f"  - raw_{damage.query_type}_queries [{month}]: ")]
    assert len(lines) == 1, privacy_run.err
    assert str(privacy_run.paths[name]) in lines[0]
    assert f"'{damage.column}'" in lines[0]
    assert f"{len(damage.rows)} values" in lines[0]
    assert KIND_WORDS[damage.kind] in lines[0]
    assert f"] {month} FAILED in " in privacy_run.out


@pytest.mark.parametrize("name", list(MONTH_OF))
def test_nothing_of_the_month_in_the_warehouse(privacy_run, name):
    month = MONTH_OF[name]
    for table_name in MONTHLY_TABLES:
        assert not (privacy_run.warehouse / table_name / f"{month}.parquet").exists()


@pytest.mark.parametrize("name", list(MONTH_OF))
def test_value_never_shown(privacy_run, name):
    needles = corpus.PRIVACY_DAMAGES[name].all_needles
    assert [n for n in needles if n in privacy_run.out or n in privacy_run.err] == []
    assert found_in_bytes(privacy_run.warehouse, needles) == []
    assert found_in_parquet_cells(privacy_run.warehouse, needles) == []
    assert list(privacy_run.home.rglob("*.db"))
    assert found_in_bytes(privacy_run.home, needles) == []
    assert found_in_sqlite(privacy_run.home, needles) == []
    # NOTE: a positive control: the refusal (naming the file) is in the SQLite event log as
    # searchable bytes and cells, so a value in any message would have been found there too.
    assert found_in_bytes(privacy_run.home, (str(privacy_run.paths[name]),))
    assert found_in_sqlite(privacy_run.home, (str(privacy_run.paths[name]),))


def test_check_finds_every_damage_never_showing_the_value(privacy_run):
    from assets.paths import SAMPLE_THEMES_PATH
    from assets.preflight import check_landing_zone, format_report

    report = check_landing_zone(privacy_run.landing, SAMPLE_THEMES_PATH)
    shown = format_report(report)
    for name, path in privacy_run.paths.items():
        damage = corpus.PRIVACY_DAMAGES[name]
        assert ("blocking", report.relative(path), damage.column) in [
            (f.severity, f.file, f.column) for f in report.findings], name
        assert [n for n in damage.all_needles if n in shown] == []


def test_search_finds_a_planted_value(small_landing, tmp_path):
    """The searches above can fail: they find a value in a landing file and a Parquet cell."""
    damage = corpus.PRIVACY_DAMAGES["plate_sidecode_1_in_subject"]
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    corpus.inject_identifier(landing, OTHER, damage)
    meos = landing / "meos"
    assert found_in_parquet_cells(meos, damage.all_needles) == [
        f"person_queries/{OTHER}.parquet subject_pseudonym: {damage.values[0]}"]
    corpus.to_csv(landing, "person", OTHER)
    assert found_in_bytes(meos, damage.all_needles) == [
        f"person_queries/{OTHER}.csv: {damage.values[0]}"]


def test_sqlite_search_reads_text_and_compressed_blobs(tmp_path):
    needle = corpus.GROUPED_BSNS[0]
    compressed = zlib.compress(f'{{"message": "{needle}"}}'.encode())
    assert needle.encode() not in compressed  # a byte search would miss this one
    with contextlib.closing(sqlite3.connect(tmp_path / "events.db")) as db:
        db.execute("CREATE TABLE event_logs (id INTEGER, event TEXT, body BLOB)")
        db.execute("INSERT INTO event_logs VALUES (1, ?, ?)", ("clean", compressed))
        db.execute("INSERT INTO event_logs VALUES (2, ?, NULL)", (f"x {needle} y",))
        db.commit()
    assert found_in_sqlite(tmp_path, (needle,)) == [
        f"events.db event_logs.body: {needle}", f"events.db event_logs.event: {needle}"]


def test_corpus_identifiers_are_what_they_claim():
    """Checked without the guard: each BSN passes the 11-test, the eight-digit ones with a 0."""
    def passes(digits: str) -> bool:
        return len(digits) == 9 and sum(
            w * int(d) for w, d in zip(corpus.BSN_WEIGHTS, digits, strict=True)) % 11 == 0

    assert all(passes(re.sub(r"\D", "", v)) for v in corpus.GROUPED_BSNS)
    assert [sorted({len(g) for g in re.split(r"\D", v)}) for v in corpus.GROUPED_BSNS[:3]] == [
        [2, 3, 4], [3], [3]]
    assert all(len(v) == 8 and passes(f"0{v}") for v in corpus.EIGHT_DIGIT_BSNS)
    assert all(passes(b) for b in (*corpus.BSNS, *corpus.MORE_BSNS))
    for damage in corpus.PRIVACY_DAMAGES.values():
        assert len(damage.rows) == len(damage.values) == len(set(damage.rows))


@pytest.mark.parametrize("name", list(corpus.PRIVACY_DAMAGES))
def test_exception_names_file_column_and_count_never_the_value(name, small_landing, tmp_path):
    damage = corpus.PRIVACY_DAMAGES[name]
    landing = corpus.copy_landing(small_landing, tmp_path / "landing")
    path = corpus.inject_identifier(landing, OTHER, damage)

    with pytest.raises(RawIdentifierError) as raised:
        frames.read_query_month(landing, damage.query_type, OTHER)

    error = raised.value
    message = str(error)
    assert str(path) in message and f"'{damage.column}'" in message
    assert f"{len(damage.rows)} values" in message
    assert [(f.column, f.kind, f.match_count) for f in error.findings] == [
        (damage.column, damage.kind, len(damage.rows))]
    shown = [message, repr(error), *map(str, error.args), repr(error.findings)]
    for exc in (error.__cause__, error.__context__):
        if exc is not None:
            shown += [str(exc), repr(exc)]
    for needle in damage.all_needles:
        assert not [text for text in shown if needle in text]
        assert needle.encode() not in pickle.dumps(error)
