"""The original-release entry points MSL/code/{train,test}_MSL_FPSNet.py: defaults from their own location."""

from __future__ import annotations

import importlib.util
import json

import torch

from wiml.networks.checkpoint import save_checkpoint
from wiml.networks.fpsnet import FPSNet, FPSNetConfig


def _load(project_root, name):
    spec = importlib.util.spec_from_file_location(name, project_root / "MSL" / "code" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_script_defaults_resolve_from_the_project(project_root):
    script = _load(project_root, "train_MSL_FPSNet")
    argv = script.with_defaults([])
    assert argv[argv.index("--data") + 1] == str(project_root / "runs" / "demo" / "data")
    assert argv[argv.index("--strong-from") + 1] == "wia"
    gt = script.with_defaults(["--strong-from", "gt", "--init", "scratch", "--out", "x"])
    assert "--wia-dir" not in gt and "--init-checkpoint" not in gt and gt.count("--out") == 1


def test_test_script_runs_on_the_project_test_data(project_root, tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "m.safetensors",
        FPSNet(FPSNetConfig(base_width=4, depth=2)),
        {"kind": "msl-mixed", "run_config": {"image_size": 32}},
    )
    script = _load(project_root, "test_MSL_FPSNet")
    assert (
        script.main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"])
        == 0
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["data"] == str(project_root / "test_data") and summary["n_slices"] >= 1


def test_train_script_k_sets_the_number_of_strong_labels(project_root, tiny_prepared, tmp_path, capsys):
    """``--k 3`` with 5 WIA labels trains on 3 of them (it used to be ignored for WIA labels)."""
    import numpy as np

    from wiml.data.io import write_slice

    result = tmp_path / "wia" / "result"
    for name in ["p0_0002", "p0_0004", "p1_0003", "p2_0002", "p2_0005"]:
        write_slice(result / "strong_label" / f"{name}.png", np.full((32, 32), 255, np.uint8))
    script = _load(project_root, "train_MSL_FPSNet")
    out = tmp_path / "msl"
    small = ["model.base_width=4", "model.depth=2", "trainer.batch_size=4", "trainer.progress=false"]
    argv = ["--data", str(tiny_prepared), "--out", str(out), "--wia-dir", str(result), "--k", "3"]
    argv += ["--init", "scratch", "--epochs", "1", "--device", "cpu", "--quiet"]
    argv += [a for s in small for a in ("--set", s)]
    assert script.main(argv) == 0
    used = json.loads((out / "strong_labels.json").read_text(encoding="utf-8"))
    assert used["n_strong"] == 3 and used["source"] == "wia"
    too_many = [*argv, "--k", "6", "--out", str(tmp_path / "msl6")]  # the last --k / --out win
    assert script.main(too_many) == 2
    assert "5 strong label(s) found, k=6 asked for" in capsys.readouterr().err
