"""``wiml curve``: patient folds, cost model, run plan, resumable CSV, early stopping, and a tiny sweep."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import write_tiny_prepared
from wiml.cli import curve as curve_cli
from wiml.config import load_config
from wiml.data.slices import read_manifest
from wiml.errors import ConfigError, InputError
from wiml.experiments.curve import (
    CSV_COLUMNS,
    CostConfig,
    CurveConfig,
    annotation_cost_s,
    fold_records,
    make_folds,
    plan_runs,
    read_results,
    run_curve,
)

TINY = [
    "msl.model.base_width=4",
    "msl.model.depth=3",
    "msl.trainer.batch_size=4",
    "msl.trainer.progress=false",
    "msl.augment.enabled=false",
    "msl.optim.lr=0.01",
    "device=cpu",
    "steps=2",
    "val_every_steps=1",
    "robot.max_clicks=3",
]


def test_folds_rotate_test_and_val_patients():
    folds = make_folds(["p3", "p1", "p0", "p2", "p4", "p1"], 5)
    assert [f.test for f in folds] == [("p0",), ("p1",), ("p2",), ("p3",), ("p4",)]
    assert [f.val for f in folds] == [("p1",), ("p2",), ("p3",), ("p4",), ("p0",)]
    assert folds[4].train == ("p1", "p2", "p3")
    for f in folds:
        assert not set(f.train) & (set(f.test) | set(f.val)) and len(f.train) == 3
    seven = make_folds([f"q{i}" for i in range(7)], 3)
    assert [len(f.test) for f in seven] == [3, 2, 2]
    assert sorted(p for f in seven for p in f.test) == [f"q{i}" for i in range(7)]
    with pytest.raises(InputError, match="3 folds"):
        make_folds(["a", "b", "c"], 2)
    with pytest.raises(InputError, match="one patient per fold"):
        make_folds(["a", "b", "c"], 4)


def test_fold_records_replace_the_manifest_split(tiny_prepared):
    records = read_manifest(tiny_prepared)
    fold = make_folds([r.patient_id for r in records], 5)[4]  # test p4 (the manifest's test), val p0
    split = fold_records(records, fold)
    assert {r.patient_id for r in split["test"]} == {"p4"}
    assert {r.patient_id for r in split["val"]} == {"p0"}
    assert {r.patient_id for r in split["train"]} == {"p1", "p2", "p3"}
    assert all(r.split == s for s in split for r in split[s])
    assert sum(len(v) for v in split.values()) == len(records)


def test_annotation_cost_by_method():
    cost = CostConfig(seconds_per_tag=1.5, seconds_per_click=2.0, seconds_per_manual_label=100.0)
    assert annotation_cost_s("wiml", 400, 150, 30, cost) == 400 * 1.5 + 30 * 2.0
    assert annotation_cost_s("mlynarski", 400, 150, 30, cost) == 400 * 1.5 + 30 * 2.0
    assert annotation_cost_s("strong_only", 400, 150, 30, cost) == 60.0
    assert annotation_cost_s("full", 400, 150, 30, cost) == 150 * 100.0 + 250 * 1.5


def test_plan_runs_full_once_per_fold_and_seed():
    config = CurveConfig(k_values=[20, 5], methods=["wiml", "full"], seeds=[0, 1], run_folds=[2, 0])
    plan = plan_runs(config)
    assert plan[:3] == [(2, 5, "wiml", 0), (2, 20, "wiml", 0), (2, None, "full", 0)]
    assert len(plan) == 2 * 2 * 3 and sum(m == "full" for _, _, m, _ in plan) == 4
    config.order = "k"
    plan_k = plan_runs(config)
    assert plan_k[:4] == [(2, None, "full", 0), (0, None, "full", 0), (2, 5, "wiml", 0), (0, 5, "wiml", 0)]
    assert set(plan_k) == set(plan) and len(plan_k) == len(plan)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="unknown"):
        CurveConfig(methods=["wiml", "nnunet"]).validate()
    with pytest.raises(ConfigError, match="k_values"):
        CurveConfig(k_values=[0]).validate()
    with pytest.raises(ConfigError, match="run_folds"):
        CurveConfig(run_folds=[5]).validate()
    with pytest.raises(ConfigError):
        load_config(CurveConfig, None, ["stepz=3"])
    a, b = CurveConfig(), CurveConfig(seeds=[0, 1, 2], k_values=[5, 10])
    assert a.fingerprint() == b.fingerprint() != CurveConfig(steps=7).fingerprint()


def test_paired_comparisons_by_fold():
    from wiml.experiments.curve import paired_comparisons

    def row(fold, k, method, dice):
        return {"fold": str(fold), "seed": "0", "k": str(k), "method": method, "test_dice": str(dice)}

    rows = [row(0, 5, "wiml", 0.8), row(0, 5, "strong_only", 0.7), row(0, "all", "full", 0.9)]
    rows += [row(1, 5, "wiml", 0.5), row(1, 5, "strong_only", 0.6), row(1, "all", "full", 0.5)]
    rows += [row(2, 5, "wiml", 0.9)]  # no partner: left out
    got = {p["comparison"]: p for p in paired_comparisons(rows)}
    assert (
        got["WIML - strong-only"]["values"] == [0.1, -0.1] and abs(got["WIML - strong-only"]["mean"]) < 1e-12
    )
    assert got["WIML / full"]["values"] == [round(0.8 / 0.9, 4), 1.0]
    assert "WIML - Mlynarski-style" not in got
    rows += [row(0, 5, "wiml_neg_half_strong", 0.75), row(0, 5, "mlynarski", 0.85)]
    got = {p["comparison"]: p for p in paired_comparisons(rows)}
    assert got["WIML+neg half-strong - strong-only"]["values"] == [0.05]
    assert got["WIML+neg half-strong / full"]["values"] == [round(0.75 / 0.9, 4)]
    assert got["WIML - Mlynarski-style"]["values"] == [-0.05]


def test_read_results_drops_a_cut_line(tmp_path):
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        w.writerow({"fold": 0, "k": 5, "method": "wiml", "seed": 0, "finished_utc": "2026-01-01T00:00:00Z"})
    with path.open("a") as fh:
        fh.write("brats,1,p1,p2,5,wi")  # interrupted while writing
    rows = read_results(path)
    assert len(rows) == 1 and rows[0]["method"] == "wiml"
    assert read_results(tmp_path / "absent.csv") == []


def test_patience_stops_training_early_and_a_resumed_run_stays_stopped(tmp_path):
    """Val Dice 0.5, 0.6, 0.55, 0.58, 0.59, ...: best at epoch 2, patience 3 stops after epoch 5 of 10."""
    import numpy as np
    import torch

    from wiml.networks.fpsnet import FPSNet, FPSNetConfig
    from wiml.training.config import OptimConfig, TrainerConfig
    from wiml.training.trainer import Trainer

    def make(values):
        seq = iter(values)
        torch.manual_seed(0)
        model = FPSNet(FPSNetConfig(in_channels=1, base_width=4, depth=2))
        return Trainer(
            model,
            lambda out, batch: (out.seg.mean() ** 2, {}),
            [{"image": torch.rand(2, 1, 8, 8)}],
            tmp_path / "run",
            TrainerConfig(epochs=10, patience=3, monitor="dice", progress=False, device="cpu"),
            OptimConfig(),
            torch.device("cpu"),
            val_loader=[{"image": torch.rand(1, 1, 8, 8)}],
            val_step=lambda m, b: {"x": np.zeros(1)},
            val_metrics=lambda v: {"dice": next(seq)},
        )

    summary = make([0.5, 0.6, 0.55, 0.58, 0.59, 0.9, 0.9, 0.9, 0.9, 0.9]).fit()
    assert summary["epochs_done"] == 5 and summary["best_epoch"] == 2
    again = make([0.99] * 10).fit(resume=True)  # the saved history already says stop
    assert again["epochs_done"] == 5 and again["best_epoch"] == 2
    no_patience = make([0.5, 0.6, 0.55, 0.58, 0.59, 0.9, 0.9, 0.9, 0.9, 0.9])
    no_patience.config.patience = 0
    no_patience.out_dir = tmp_path / "run0"
    assert no_patience.fit()["epochs_done"] == 10


@pytest.mark.slow
def test_tiny_sweep_appends_skips_and_refuses_other_settings(tiny_prepared, tmp_path, capsys):
    out = tmp_path / "curve"
    config = load_config(
        CurveConfig, None, TINY + ["run_folds=[0]", "k_values=[2]", "methods=[wiml,strong_only,full]"]
    )
    external = write_tiny_prepared(tmp_path / "ext", size=48, slices=6, patients=(("x0", "test"),), seed=5)
    rows = run_curve(config, tiny_prepared, out, external=external)
    assert [(r["method"], r["k"]) for r in rows] == [("wiml", "2"), ("strong_only", "2"), ("full", "all")]
    for r in rows:
        assert r["test_patients"] == "p0" and r["val_patients"] == "p1"
        assert 0.0 <= float(r["test_dice"]) <= 1.0 and int(r["steps_done"]) <= 2
        # every run is also tested on the external set (another size: the network runs at native size)
        assert r["ext_dataset"] == "ext" and 0.0 <= float(r["ext_test_dice"]) <= 1.0
        assert 0.0 <= float(r["ext_test_dice_ungated"]) <= 1.0
        folder = out / "runs" / "fold0" / ("all" if r["k"] == "all" else "k2") / r["method"] / "seed0"
        summary = json.loads((folder / "test_external" / "summary.json").read_text())
        assert summary["per_patient"]["dice"]["mean"] == pytest.approx(float(r["ext_test_dice"]), abs=1e-5)
        assert (folder / "test_external_ungated").is_dir() == (r["gate_with_tag"] == "True")
    assert "external test Dice" in (out / "summary.md").read_text()
    assert (out / "dice_vs_k_external.png").is_file()
    wiml = rows[0]
    assert int(wiml["n_strong"]) == 2 and 1 <= int(wiml["strong_clicks"]) <= 6
    assert float(wiml["cost_s"]) == pytest.approx(
        int(wiml["n_train_slices"]) * 1.0 + int(wiml["strong_clicks"]) * 2.0
    )
    labels = sorted((out / "wia" / "fold0_k2" / "strong_label").glob("*.png"))
    assert len(labels) == 2 and all(
        p.name.split("_")[0] in ("p2", "p3", "p4") for p in labels
    )  # train patients
    for name in (
        "summary.md",
        "dice_vs_k.png",
        "dice_vs_cost.png",
        "learning_curves.png",
        "curve_config.yaml",
    ):
        assert (out / name).is_file(), name
    # run again with one more method: only the new run trains, the CSV keeps one row per run
    config2 = load_config(
        CurveConfig,
        None,
        TINY + ["run_folds=[0]", "k_values=[2]", "methods=[wiml,strong_only,full,mlynarski]"],
    )
    rows2 = run_curve(config2, tiny_prepared, out)
    assert [r["method"] for r in rows2] == ["wiml", "strong_only", "full", "mlynarski"]
    assert rows2[0]["finished_utc"] == rows[0]["finished_utc"]
    with pytest.raises(ConfigError, match="other settings"):
        run_curve(load_config(CurveConfig, None, TINY + ["steps=3"]), tiny_prepared, out)
    # the CLI: summary from the CSV only
    assert curve_cli.main(["--out", str(out), "--summarize-only"]) == 0
    assert "| wiml | 2 |" in capsys.readouterr().out
    assert curve_cli.main(["--out", str(out)]) == 2  # --data missing: one-line error
    assert "--data" in capsys.readouterr().err
    # the val-patient diagnosis of K = 2 (and full supervision): one row per method, val patient p1
    assert curve_cli.main(["--out", str(out), "--data", str(tiny_prepared), "--diagnose-val", "2"]) == 0
    assert "| wiml | 2 | 1 |" in capsys.readouterr().out
    with (out / "val_diag_k2.csv").open(newline="") as fh:
        diag = {r["method"]: r for r in csv.DictReader(fh)}
    assert sorted(diag) == ["full", "mlynarski", "strong_only", "wiml"]
    for r in diag.values():
        assert r["val_patients"] == "p1" and r["n_tag0"] == "2"  # p1's first and last slices hold no disk
        assert 0.0 <= float(r["dice_gated"]) <= 1.0 and 0.0 <= float(r["recall"]) <= 1.0
        assert (r["tag_accuracy"] == "") == (r["method"] in ("strong_only", "full"))
        if r["method"] in ("strong_only", "full"):
            assert r["dice_gated"] == r["dice_ungated"]
    assert curve_cli.main(["--out", str(out), "--data", str(tiny_prepared), "--diagnose-val", "five"]) == 2


def test_a_row_with_a_new_column_keeps_an_older_header(tmp_path, caplog):
    from wiml.experiments.curve import _append_row

    path = tmp_path / "results.csv"
    old = [c for c in CSV_COLUMNS if not c.startswith("ext_")]
    path.write_text(",".join(old) + "\n")
    row = {c: "1" for c in CSV_COLUMNS}
    row["finished_utc"] = "now"
    _append_row(path, row)
    with path.open(newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == old and len(lines[1]) == len(old)
    assert "ext_test_dice" in caplog.text
    assert read_results(path)[0]["finished_utc"] == "now"


@pytest.mark.parametrize("name", ["curve_brats.yaml", "curve_liver.yaml"])
def test_curve_config_file_loads(project_root, name):
    config = load_config(CurveConfig, project_root / "configs" / name, []).validate()
    assert config.folds == 5 and config.k_values == [5, 20] and "full" in config.methods
    assert config.msl.trainer.threads == 1 and config.cost.seconds_per_manual_label == 108.0


def test_method_settings_reach_the_msl_config():
    from wiml.experiments.curve import _msl_config

    config = CurveConfig(steps=100, val_every_steps=30, patience=2, seeds=[3])
    wiml, mly, neg, full = (_msl_config(config, m, 3) for m in ("wiml", "mlynarski", "wiml_neg", "full"))
    assert (wiml.mode, wiml.model.head, wiml.loss.negative_weight, wiml.init) == (
        "mixed",
        "fps",
        0.0,
        "scratch",
    )
    assert (mly.mode, mly.model.head) == ("mixed", "separate")
    assert neg.loss.negative_weight == 1.0 and full.mode == "full"
    assert wiml.strong_per_batch == config.msl.strong_per_batch == 2
    half, neg_half = (_msl_config(config, m, 3) for m in ("wiml_half_strong", "wiml_neg_half_strong"))
    assert half.strong_per_batch == neg_half.strong_per_batch == config.msl.trainer.batch_size // 2
    assert (half.loss.negative_weight, neg_half.loss.negative_weight, half.mode) == (0.0, 1.0, "mixed")
    t = wiml.trainer
    assert (t.epochs, t.samples_per_epoch, t.val_every, t.patience, t.seed) == (4, 30 * t.batch_size, 1, 2, 3)
