"""Shared fixtures: a small synthetic landing zone and one full pipeline run over it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import settings

from assets.synthetic import SampleSpec, generate_sample

# NOTE: under CI the property tests draw the same examples every time (derandomize), so a
# verdict on a commit does not depend on luck; locally they explore new examples on every run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

SMALL = SampleSpec(seed=7, months=2, person_queries=24_000, plate_queries=16_000)
"""Two months, a few tens of thousands of queries: the whole graph in seconds."""


@dataclass(frozen=True)
class PipelineRun:
    landing: Path
    warehouse: Path
    failures: list
    instance: dg.DagsterInstance


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("landing")
    generate_sample(landing, SMALL)
    return landing


@pytest.fixture(scope="session")
def pipeline_run(small_landing, tmp_path_factory) -> PipelineRun:
    """`stopcheck run`'s code path over the small sample, into a fresh warehouse."""
    from pipelines.cli import run_pipeline

    warehouse = tmp_path_factory.mktemp("warehouse")
    instance = dg.DagsterInstance.ephemeral()
    failures = run_pipeline(small_landing, warehouse, instance)
    return PipelineRun(small_landing, warehouse, failures, instance)
