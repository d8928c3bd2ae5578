"""Where the themes file comes from (DESIGN.md §3): configured, STOPCHECK_THEMES_FILE, the
sample's themes for a synthetic landing zone, else the shipped themes.yaml."""

from __future__ import annotations

from assets.paths import SAMPLE_THEMES_PATH, TRUTH_FILE, resolve_themes_file
from assets.resources import ThemesFile
from assets.themes import THEMES_PATH


def test_themes_file_order_of_precedence(tmp_path, monkeypatch):
    real, sample = tmp_path / "real", tmp_path / "sample"
    real.mkdir()
    sample.mkdir()
    (sample / TRUTH_FILE).write_text("{}\n")
    monkeypatch.delenv("STOPCHECK_THEMES_FILE", raising=False)
    assert resolve_themes_file("", real) == THEMES_PATH
    assert resolve_themes_file("", sample) == SAMPLE_THEMES_PATH
    monkeypatch.setenv("STOPCHECK_THEMES_FILE", str(tmp_path / "env.yaml"))
    assert resolve_themes_file("", sample) == tmp_path / "env.yaml"
    assert ThemesFile(path=str(tmp_path / "own.yaml")).resolve(sample) == tmp_path / "own.yaml"
