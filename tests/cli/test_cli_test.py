"""``wiml test`` on tiny synthetic inputs: outputs, NIfTI geometry, refusal of another architecture."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from wiml.cli import test as test_cli
from wiml.data.io import write_slice
from wiml.data.slices import save_slice, write_manifest
from wiml.networks.checkpoint import save_checkpoint
from wiml.networks.fpsnet import FPSNet, FPSNetConfig


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = FPSNet(FPSNetConfig(base_width=4, depth=2))
    return save_checkpoint(tmp_path / "ckpt" / "best.safetensors", model, {"kind": "msl", "image_size": 16})


def _disk(n=16, r=4):
    yy, xx = np.mgrid[:n, :n]
    return ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 <= r * r).astype(np.uint8)


def test_png_folder_outputs(tmp_path, checkpoint, capsys):
    for name in ("a", "b"):
        write_slice(tmp_path / "png" / "data" / f"{name}.png", (_disk() * 200).astype(np.uint8))
        write_slice(tmp_path / "png" / "label" / f"{name}.png", _disk() * 255)
    out = tmp_path / "out"
    assert (
        test_cli.main(
            [
                "--data",
                str(tmp_path / "png"),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "per_slice.csv").open()))
    assert [r["name"] for r in rows] == ["a", "b"]
    assert {"dice", "iou", "precision", "recall", "hd95_mm", "asd_mm"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_slices"] == 2 and summary["seconds_per_slice"] > 0
    assert "| slices with target |" in (out / "metrics.md").read_text()
    assert len(list((out / "overlays").glob("*.png"))) == 2
    assert "Dice" in capsys.readouterr().out


def test_prepared_folder_writes_nifti_with_source_geometry(tmp_path, checkpoint):
    data = tmp_path / "data"
    rows = []
    for i in range(3):
        rel = f"slices/p1/p1_{i:04d}.npz"
        save_slice(
            data / rel, (_disk() * 0.8).astype(np.float32), _disk() if i else np.zeros((16, 16), np.uint8)
        )
        rows.append(
            {
                "patient_id": "p1",
                "slice_index": i,
                "file": rel,
                "tag": int(i > 0),
                "has_mask": 1,
                "split": "test",
                "spacing_mm": "2,2,3",
                "source": "x.nii",
            }
        )
    write_manifest(data / "manifest.csv", rows)
    geom = {
        "size": [32, 32, 4],
        "spacing": [1.0, 1.0, 3.0],
        "origin": [5.0, 6.0, 7.0],
        "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
    }
    (data / "patients.json").write_text(json.dumps({"p1": {"image": "x.nii", "mask": "y.nii", **geom}}))
    out = tmp_path / "out"
    assert (
        test_cli.main(
            [
                "--data",
                str(data),
                "--checkpoint",
                str(checkpoint),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    img = sitk.ReadImage(str(out / "predictions" / "p1.nii.gz"))
    assert img.GetSize() == (32, 32, 4) and img.GetOrigin() == (5.0, 6.0, 7.0) and img.GetSpacing()[2] == 3.0
    per_patient = list(csv.DictReader((out / "per_patient.csv").open()))
    assert per_patient[0]["patient_id"] == "p1" and per_patient[0]["n_slices"] == "3"


def test_refuses_checkpoint_of_another_architecture(tmp_path, checkpoint, capsys):
    side = checkpoint.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["architecture"] = "UNet3D"
    side.write_text(json.dumps(meta))
    rc = test_cli.main(
        ["--data", str(tmp_path), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "architecture 'UNet3D'" in err and "expected 'FPSNet'" in err
