"""`wiml wia-session` (robot annotation sessions per proposal source) and the background bootstrap updates."""

from __future__ import annotations

import csv
import json
import threading

import numpy as np
import pytest
import torch

from wiml.cli import wia_session
from wiml.data.slices import save_slice, write_manifest
from wiml.errors import InputError
from wiml.experiments.bootstrap import BackgroundUpdater, BootstrapConfig, fine_tune
from wiml.experiments.wia_session import (
    WiaSessionConfig,
    run_wia_session,
    session_order,
    summarize_session,
)
from wiml.networks.fpsnet import FPSNet, FPSNetConfig


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius**2


@pytest.fixture()
def volume(tmp_path):
    """One patient: 6 slices of a bright disk drifting by 2 px per slice (slice 0 holds no disk)."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(6):
        mask = (
            np.zeros((48, 48), np.uint8)
            if k == 0
            else _disk((48, 48), (20 + 2 * k, 18 + 2 * k), 8).astype(np.uint8)
        )
        img = np.where(mask > 0, 0.8, 0.2).astype(np.float32) + rng.normal(0, 0.02, mask.shape).astype(
            np.float32
        )
        rel = f"slices/pv/pv_{k:04d}.npz"
        save_slice(tmp_path / "data" / rel, img[None], mask)
        rows.append(
            {
                "patient_id": "pv",
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


def test_summary_accounting_on_a_hand_made_session():
    rows = []
    for label, (source, clicks, pdice, reached) in enumerate(
        [("none", 3, 0.0, 1), ("none", 5, 0.0, 1), ("box", 0, 0.93, 1), ("box", 1, 0.8, 0)], start=1
    ):
        row = {"source": source, "label": 1 + (label - 1) % 2, "clicks": clicks, "proposal_dice": pdice}
        row.update({"reached": reached, "proposal_s": 0.5, "refine_s": 0.25})
        row.update({f"dice_{n}": pdice + 0.01 * n for n in range(6)})
        rows.append(row)
    s = summarize_session(rows, ["none", "box"])
    assert s["none"]["total_clicks"] == 8 and s["box"]["total_clicks"] == 1
    assert s["box"]["accepted_0_clicks"] == 0.5 and s["box"]["accepted_le1_click"] == 1.0
    assert s["none"]["accepted_0_clicks"] == 0.0 and s["none"]["accepted_le1_click"] == 0.0
    assert s["box"]["clicks_vs_none"] == 0.125 and s["none"]["clicks_vs_none"] == 1.0
    assert s["box"]["proposal_dice"] == pytest.approx(0.865)
    assert s["box"]["proposal_dice_labels_6_20"] is None  # only labels 1-2 here
    assert s["box"]["reached_target"] == 0.5 and s["box"]["seconds_computing"] == 1.5
    assert s["box"]["dice_after_2"] == pytest.approx(0.885)


def test_session_order_spread_and_volume():
    from wiml.data.slices import SliceRecord

    def rec(p, z):
        return SliceRecord(p, z, f"{p}_{z}.npz", 1, True, "test", "", "")

    records = [rec("a", 1), rec("a", 2), rec("a", 3), rec("b", 5), rec("b", 6)]
    areas = [10, 30, 20, 5, 50]
    assert session_order(records, areas, 3, "spread") == [1, 4, 2]  # round robin, largest first
    assert session_order(records, areas, 5, "volume") == [1, 2, 0, 4, 3]  # largest, up, then down


def test_volume_session_box_then_propagation_is_cheaper_than_clicks(volume, tmp_path):
    out = tmp_path / "session"
    config = WiaSessionConfig(
        split="test", sources=["none", "box", "propagate"], n_labels=5, order="volume", box_jitter_px=1
    )
    s = run_wia_session(volume, out, config)
    for name in ("labels.csv", "summary.json", "clicks_per_label.png", "config.yaml"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert len(rows) == 15
    for source in ("none", "box", "propagate"):
        sel = [r for r in rows if r["source"] == source]
        assert [int(r["label"]) for r in sel] == [1, 2, 3, 4, 5]
        assert s[source]["total_clicks"] == sum(int(r["clicks"]) for r in sel)
        assert s[source]["accepted_0_clicks"] == pytest.approx(np.mean([int(r["clicks"]) == 0 for r in sel]))
    prop = [r for r in rows if r["source"] == "propagate"]
    assert prop[0]["proposal"] == "box" and {r["proposal"] for r in prop[1:]} == {"propagate"}
    assert min(float(r["proposal_dice"]) for r in prop) >= 0.9
    assert s["box"]["total_clicks"] < s["none"]["total_clicks"]
    assert s["propagate"]["accepted_le1_click"] == 1.0
    saved = json.loads((out / "summary.json").read_text())
    assert saved["order"] == "volume" and len(saved["labels"]) == 5


def test_config_is_checked_before_any_work(volume, tmp_path):
    with pytest.raises(InputError, match="unknown proposal source"):
        run_wia_session(volume, tmp_path / "x", WiaSessionConfig(sources=["boxes"]))
    with pytest.raises(InputError, match="need a weak checkpoint"):
        run_wia_session(volume, tmp_path / "x", WiaSessionConfig(sources=["none", "cam"]))
    with pytest.raises(InputError, match="order"):
        run_wia_session(volume, tmp_path / "x", WiaSessionConfig(sources=["none"], order="random"))
    # out-of-range values of the session and of its sections, all in one line
    bad = WiaSessionConfig(sources=["none"], n_labels=0, box_jitter_px=-1.0)
    bad.bootstrap.lr = 0.0
    with pytest.raises(InputError, match=r"n_labels = 0: .*box_jitter_px = -1\.0: .*bootstrap\.lr = 0\.0"):
        run_wia_session(volume, tmp_path / "x", bad)
    assert not (tmp_path / "x").exists()
    rc = wia_session.main(
        ["--data", str(volume), "--checkpoint", "none", "--out", str(tmp_path / "y"), "--sources", "none,cam"]
    )
    assert rc != 0 and not (tmp_path / "y").exists()


def test_cli_runs_with_a_fake_cam_free_source(volume, tmp_path, capsys):
    rc = wia_session.main(
        [
            "--data",
            str(volume),
            "--checkpoint",
            "none",
            "--out",
            str(tmp_path / "cli"),
            "--sources",
            "none,box",
            "--n-labels",
            "2",
        ]
    )
    assert rc == 0
    assert "wia-session       box: 2 labels" in capsys.readouterr().out


# --------------------------------------------------------------------------- background updates


def _tiny_net():
    torch.manual_seed(0)
    return FPSNet(FPSNetConfig(in_channels=1, base_width=8, depth=2))


def test_submit_never_blocks_and_the_new_model_arrives_after_the_update():
    release = threading.Event()
    started = threading.Event()

    def blocked_train(model, strong, tagged, config, device, should_stop):
        started.set()
        assert release.wait(30)  # the update holds here until the test lets it go
        return 7

    base = _tiny_net()
    updater = BackgroundUpdater(base, [], BootstrapConfig(), train_fn=blocked_train)
    strong = [(np.zeros((1, 16, 16), np.float32), np.zeros((16, 16), np.uint8))]
    assert updater.submit(strong)  # returned although the update cannot finish yet
    assert started.wait(30)
    assert updater.busy and updater.current() == (base, 0)
    assert not updater.submit(strong)  # one update at a time; the caller is not held either
    release.set()
    assert updater.wait(30)
    model, version = updater.current()
    assert version == 1 and model is not base
    assert updater.updates[-1].ok and updater.updates[-1].steps == 7 and updater.updates[-1].n_labels == 1


def test_a_failed_update_keeps_the_previous_proposer():
    def failing_train(*args):
        raise RuntimeError("out of memory")

    base = _tiny_net()
    updater = BackgroundUpdater(base, [], BootstrapConfig(), train_fn=failing_train)
    assert updater.submit([(np.zeros((1, 16, 16), np.float32), np.zeros((16, 16), np.uint8))])
    assert updater.wait(30)
    assert updater.current() == (base, 0)
    record = updater.updates[-1]
    assert not record.ok and "out of memory" in record.error and record.version == 0


def test_fine_tune_learns_a_disk_from_a_few_strong_labels():
    disk = _disk((16, 16), (8, 8), 4).astype(np.uint8)
    image = np.where(disk > 0, 0.9, 0.1).astype(np.float32)[None]
    net = _tiny_net()
    config = BootstrapConfig(max_steps=60, batch_size=4, strong_per_batch=2, lr=1e-2)
    tagged = [(np.full((1, 16, 16), 0.1, np.float32), 0)]
    steps = fine_tune(net, [(image, disk)], tagged, config)
    assert steps == 60 and not net.training
    with torch.no_grad():
        prob = torch.sigmoid(net(torch.from_numpy(image)[None]).seg)[0, 0].numpy()
    assert prob[disk > 0].mean() > 0.7 > 0.3 > prob[disk == 0].mean()
    with pytest.raises(InputError, match="no strong label"):
        fine_tune(net, [], tagged, config)
    with pytest.raises(InputError, match="strong_per_batch"):
        BootstrapConfig(strong_per_batch=9, batch_size=8).validate()
