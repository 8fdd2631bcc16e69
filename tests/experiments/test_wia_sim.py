"""`wiml wia-sim` on a tiny synthetic prepared folder: files, formats, CAM source pluggability."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import ndimage

from wiml.cli import wia_sim
from wiml.data.slices import save_slice, write_manifest
from wiml.errors import InputError
from wiml.experiments.wia_sim import WiaSimConfig, run_wia_simulation, select_slices


@pytest.fixture()
def prepared(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for p, patient in enumerate(("pa", "pb")):
        for k in range(3):
            img = np.full((32, 40), 0.2, np.float32)
            mask = np.zeros((32, 40), np.uint8)
            if k > 0:  # slice 0 is tag-negative and is skipped by the robot
                mask[6 + k : 22 + p, 8 : 26 + k] = 1
            img[mask > 0] = 0.8
            img += rng.normal(0, 0.01, img.shape).astype(np.float32)
            rel = f"slices/{patient}/{patient}_{k:04d}.npz"
            save_slice(tmp_path / "data" / rel, img[None], mask)
            rows.append(
                {
                    "patient_id": patient,
                    "slice_index": k,
                    "file": rel,
                    "tag": int(mask.any()),
                    "has_mask": 1,
                    "split": "test",
                    "spacing_mm": "",
                    "source": "synthetic",
                }
            )
    write_manifest(tmp_path / "data" / "manifest.csv", rows)
    return tmp_path / "data"


def test_cli_without_checkpoint_writes_every_file(prepared, tmp_path):
    out = tmp_path / "wia"
    rc = wia_sim.main(
        [
            "--data",
            str(prepared),
            "--checkpoint",
            "none",
            "--out",
            str(out),
            "--max-clicks",
            "4",
            "--select",
            "2",
            "--jitter-px",
            "2",
            "--quiet",
        ]
    )
    assert rc == 0
    for name in ("slices.csv", "summary.json", "dice_vs_clicks.png", "config.yaml"):
        assert (out / name).is_file()
    rows = list(csv.DictReader((out / "slices.csv").open()))
    assert len(rows) == 8 and {r["mode"] for r in rows} == {"no_cam", "jitter"}
    assert {"initial_dice", "dice_1", "dice_4", "noc80", "noc85", "noc90", "s_per_click"} <= set(rows[0])
    assert all(float(r["initial_dice"]) == 0.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["main_mode"] == "no_cam" and summary["no_cam"]["n_slices"] == 4
    assert summary["no_cam"]["dice_after_3"] > 0.8
    assert len(summary["selected"]) == 2 and {s.split("_")[0] for s in summary["selected"]} == {"pa", "pb"}
    for name in summary["selected"]:
        import SimpleITK as sitk

        label = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "result" / "strong_label" / f"{name}.png")))
        assert label.shape == (32, 40) and set(np.unique(label)) <= {0, 255} and label.max() == 255
        rec = json.loads((out / "result" / "recording" / f"{name}.json").read_text())
        assert {
            "image",
            "patient_id",
            "slice_index",
            "clicks",
            "dice_per_step",
            "initial_dice",
            "final_dice",
            "total_time_s",
        } <= set(rec)
        assert rec["clicks"] and set(rec["clicks"][0]) == {"row", "col", "label", "t_s"}
        # schema 2, shared with the annotator GUI: the proposal's Dice first, then one per click
        assert rec["schema_version"] == 2 and rec["source"] == "robot"
        assert len(rec["dice_per_step"]) == len(rec["clicks"]) + 1
        assert (
            rec["dice_per_step"][0] == rec["initial_dice"] and rec["dice_per_step"][-1] == rec["final_dice"]
        )


def test_cam_source_is_pluggable_and_previous_labels_are_kept(prepared, tmp_path):
    def blurred_truth(record, image):
        from wiml.data.slices import load_slice

        gt = load_slice(record)[1].astype(np.float32)
        cam = ndimage.gaussian_filter(gt, 2)
        return cam / cam.max()

    cfg = WiaSimConfig(max_clicks=3, select=1, jitter_px=0)
    out = tmp_path / "wia"
    s = run_wia_simulation(prepared, out, cfg, cam_source=blurred_truth)
    assert s["main_mode"] == "cam" and set(s) >= {"cam", "no_cam", "clicks_saved_by_cam"}
    assert s["cam"]["initial_dice"] > 0.8 and s["no_cam"]["initial_dice"] == 0.0
    assert s["cam"]["noc80"] <= s["no_cam"]["noc80"]
    run_wia_simulation(prepared, out, cfg, cam_source=blurred_truth)
    name = s["selected"][0]
    assert (out / "result" / "strong_label" / f"{name}.v1.png").is_file()
    assert (out / "result" / "recording" / f"{name}.v1.json").is_file()


def test_bad_inputs_are_reported(prepared, tmp_path):
    with pytest.raises(InputError, match="no slice"):
        run_wia_simulation(prepared, tmp_path / "o", WiaSimConfig(split="val"))
    with pytest.raises(InputError, match="manifest"):
        run_wia_simulation(tmp_path / "nothing", tmp_path / "o", WiaSimConfig())
    assert (
        wia_sim.main(
            [
                "--data",
                str(tmp_path / "nothing"),
                "--checkpoint",
                "none",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
        == 2
    )
    assert (
        wia_sim.main(
            [
                "--data",
                str(prepared),
                "--checkpoint",
                str(tmp_path / "missing.safetensors"),
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
        == 2
    )


def test_select_slices_round_robin_over_patients():
    from wiml.data.slices import SliceRecord

    recs = [
        SliceRecord(p, i, None, 1, True, "test", None, "")
        for p, i in [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 5)]
    ]
    areas = [10, 30, 20, 5, 7]
    assert select_slices(recs, areas, 4) == [1, 3, 4, 2]
    assert select_slices(recs, areas, 0) == []
    assert sorted(select_slices(recs, areas, 99)) == [0, 1, 2, 3, 4]
