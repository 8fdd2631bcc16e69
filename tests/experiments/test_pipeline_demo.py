"""The real pipeline, end to end, on a tiny phantom (every step for real, 1 epoch each), then a resume."""

from __future__ import annotations

import json

import pytest

from wiml.cli import pipeline as pipeline_cli

TINY = """
name: tiny
k: 2
seed: 0
device: cpu
defaults: {prepare: "{project}/configs/prepare_lits.yaml"}
make_demo: {patients: 4, size: 32, slices: 10}
prepare: {size: 32, split: {ratios: [0.5, 0.25, 0.25]}}
weak:
  model: {base_width: 4, depth: 3}
  trainer: {epochs: 1, batch_size: 8, progress: false}
  augment: {enabled: false}
cam: {split: test}
wia: {split: train, max_slices: 3, jitter_px: 0, no_cam_run: false, max_clicks: 3}
msl:
  trainer: {epochs: 1, batch_size: 4, progress: false}
  augment: {enabled: false}
"""


@pytest.mark.slow
def test_tiny_pipeline_runs_then_skips(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    run = tmp_path / "run"
    assert pipeline_cli.main(["--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    state = json.loads((run / "pipeline.json").read_text())
    assert [k for k, v in state["steps"].items() if v["status"] == "done"] == [
        "make-demo",
        "prepare",
        "train-weak",
        "cam",
        "wia",
        "train-msl",
        "test",
        "report",
    ]
    report = (run / "report" / "report.md").read_text()
    assert "## Test set" in report and "per patient (3-D)" in report
    out = capsys.readouterr().out
    assert "TEST (per patient)" in out and "report:" in out
    assert pipeline_cli.main(["--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    state = json.loads((run / "pipeline.json").read_text())
    assert all(v["status"] == "skipped" for v in state["steps"].values())
