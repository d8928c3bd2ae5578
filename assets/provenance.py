"""What produced an output: code version and input fingerprints, recorded with every output."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@cache
def code_version() -> str:
    """`<package version>+<12 hex of the sha256 over the project's Python sources>`.

    NOTE: a content hash rather than a git sha, so it is the same in a clean clone, an sdist or
    a CI checkout, and changes whenever the code that computes the numbers changes.
    """
    digest = hashlib.sha256()
    for package in ("assets", "pipelines"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{version('stopcheck')}+{digest.hexdigest()[:12]}"


def fingerprint_files(paths: list[Path]) -> str:
    """sha256 over the names and bytes of files (sorted by name): the fingerprint of the inputs."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
