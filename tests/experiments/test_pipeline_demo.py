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
make_demo_args: [--patients, "4", --size, "32", --slices, "10"]
prepare_args: [--config, "{project}/configs/prepare_lits.yaml", --set, size=32, --set, "split.ratios=[0.5,0.25,0.25]"]
train_weak_args: [--set, model.base_width=4, --set, model.depth=3, --set, trainer.epochs=1, --set, trainer.batch_size=8,
                  --set, trainer.progress=false, --set, augment.enabled=false]
cam_args: [--split, test]
wia_args: [--split, train, --max-slices, "3", --set, jitter_px=0, --set, no_cam_run=false, --max-clicks, "3"]
train_msl_args: [--set, trainer.epochs=1, --set, trainer.batch_size=4, --set, trainer.progress=false,
                 --set, augment.enabled=false]
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
