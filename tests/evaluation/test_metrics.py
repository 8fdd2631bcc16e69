"""Metrics against hand-computed masks: overlap, HD95/ASD in mm on anisotropic grids, empty cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wiml.evaluation.metrics import (
    asd_mm,
    dice_score,
    format_mean_std,
    hd95_mm,
    iou_score,
    precision_score,
    recall_score,
    segmentation_metrics,
    summarize,
    volume_metrics,
)


def _box(shape, r0, r1, c0, c1):
    m = np.zeros(shape, np.uint8)
    m[r0:r1, c0:c1] = 1
    return m


def test_overlap_metrics_hand_computed():
    gt = _box((10, 10), 2, 5, 2, 5)  # 9 px
    pred = _box((10, 10), 2, 5, 2, 8)  # 18 px, 9 of them on the ground truth
    assert dice_score(pred, gt) == pytest.approx(2 * 9 / 27)
    assert iou_score(pred, gt) == pytest.approx(9 / 18)
    assert precision_score(pred, gt) == pytest.approx(9 / 18)
    assert recall_score(pred, gt) == pytest.approx(1.0)
    assert recall_score(gt, pred) == pytest.approx(0.5)


def test_single_pixel_distances_follow_anisotropic_spacing():
    gt = np.zeros((8, 8), np.uint8)
    gt[2, 2] = 1
    pred = np.zeros_like(gt)
    pred[2, 5] = 1  # 3 columns away
    assert hd95_mm(pred, gt) == pytest.approx(3.0)  # px without spacing
    assert hd95_mm(pred, gt, (2.0, 0.5)) == pytest.approx(1.5)  # 3 cols x 0.5 mm
    assert hd95_mm(pred, gt, (0.5, 2.0)) == pytest.approx(6.0)  # 3 cols x 2.0 mm
    assert asd_mm(pred, gt, (2.0, 0.5)) == pytest.approx(1.5)
    down = np.zeros_like(gt)
    down[5, 2] = 1  # 3 rows away: the row spacing applies
    assert hd95_mm(down, gt, (2.0, 0.5)) == pytest.approx(6.0)


def test_hd95_of_a_box_grown_to_the_right():
    # gt 3x3 box, pred the same rows but 3 more columns: the farthest pred edge pixels are 3 columns
    # from the gt edge; 3 of 14 pred edge pixels are at that distance, so the 95th percentile is it too.
    gt = _box((10, 10), 2, 5, 2, 5)
    pred = _box((10, 10), 2, 5, 2, 8)
    assert hd95_mm(pred, gt) == pytest.approx(3.0)
    assert hd95_mm(pred, gt, (2.0, 0.5)) == pytest.approx(1.5)
    assert hd95_mm(gt, gt, (2.0, 0.5)) == 0.0


def test_empty_cases_convention():
    empty = np.zeros((6, 6), np.uint8)
    some = _box((6, 6), 1, 3, 1, 3)
    both = segmentation_metrics(empty, empty, (1.0, 1.0))
    assert both == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0, "hd95_mm": 0.0, "asd_mm": 0.0}
    for pred, gt in ((empty, some), (some, empty)):
        m = segmentation_metrics(pred, gt, (1.0, 1.0))
        assert m["dice"] == m["iou"] == m["precision"] == m["recall"] == 0.0
        assert math.isnan(m["hd95_mm"]) and math.isnan(m["asd_mm"])


def test_volume_metrics_stack_slices_with_slice_spacing():
    gt = [np.zeros((5, 5), np.uint8) for _ in range(3)]
    pred = [np.zeros((5, 5), np.uint8) for _ in range(3)]
    gt[0][2, 2] = 1
    pred[1][2, 2] = 1  # one slice further, same pixel
    m = volume_metrics(pred, gt, spacing_mm=(0.7, 0.7, 5.0))  # (row, col, slice)
    assert m["hd95_mm"] == pytest.approx(5.0)
    assert m["dice"] == 0.0
    with pytest.raises(ValueError):
        volume_metrics(pred[:2], gt)


def test_validation_errors():
    with pytest.raises(ValueError, match="shape mismatch"):
        dice_score(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="spacing"):
        hd95_mm(np.ones((3, 3)), np.ones((3, 3)), (1.0,))


def test_summarize_skips_nan_and_counts():
    rows = [{"dice": 1.0, "hd95_mm": 2.0}, {"dice": 0.5, "hd95_mm": float("nan")}]
    s = summarize(rows, ("dice", "hd95_mm"))
    assert s["dice"] == {"mean": 0.75, "std": 0.25, "n": 2}
    assert s["hd95_mm"]["n"] == 1 and s["hd95_mm"]["mean"] == 2.0
    assert format_mean_std(s["dice"]) == "0.750 ± 0.250"
    assert format_mean_std({"mean": float("nan"), "std": float("nan"), "n": 0}) == "n/a"
