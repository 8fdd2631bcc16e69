"""Robot user: click placement on hand-made masks, NoC, jitter, a full simulated run."""

from __future__ import annotations

import numpy as np
import pytest

from wiml.errors import InputError
from wiml.interactive import RefinementSession
from wiml.interactive.robot import clicks_to_reach, jitter_click, next_click, simulate
from wiml.interactive.session import Click


def test_missed_square_gets_a_foreground_click_at_its_centre():
    gt = np.zeros((20, 20), np.uint8)
    gt[4:13, 6:15] = 1  # 9 x 9: the interior point is its centre (8, 10)
    c = next_click(np.zeros_like(gt), gt)
    assert (c.row, c.col, c.label) == (8, 10, 1)


def test_spurious_region_gets_a_background_click():
    gt = np.zeros((20, 20), np.uint8)
    gt[2:5, 2:5] = 1
    pred = gt.copy()
    pred[10:17, 10:15] = 1  # 7 x 5 spurious rectangle: 3 px deep at column 12, rows 12-14
    c = next_click(pred, gt)
    assert c.label == 0 and c.col == 12 and 12 <= c.row <= 14


def test_largest_error_region_wins_and_image_border_counts_as_border():
    gt = np.zeros((20, 30), np.uint8)
    gt[:, :10] = 1  # a 20 x 10 band on the left edge, all missed
    pred = np.zeros_like(gt)
    pred[5:8, 20:23] = 1  # a small spurious 3 x 3 square
    c = next_click(pred, gt)
    assert c.label == 1
    # 5 px deep: from the image's left/top/bottom edges as from the band's right edge
    assert c.col in (4, 5) and 4 <= c.row <= 15


def test_perfect_mask_gives_no_click_and_shapes_are_checked():
    gt = np.zeros((8, 8), np.uint8)
    gt[2:5, 2:5] = 1
    assert next_click(gt, gt) is None
    assert next_click(np.zeros((8, 8)), np.zeros((8, 8))) is None
    with pytest.raises(InputError):
        next_click(np.zeros((8, 8)), np.zeros((8, 9)))


def test_noc_is_capped_and_counts_from_the_initial_mask():
    assert clicks_to_reach([0.5, 0.7, 0.86, 0.91], 0.85) == 2
    assert clicks_to_reach([0.92], 0.9) == 0
    assert clicks_to_reach([0.1] * 21, 0.9) == 20
    assert clicks_to_reach([0.1] * 30 + [0.95], 0.9, max_clicks=20) == 20


def test_jitter_is_seeded_bounded_and_inside_the_image():
    c = Click(0, 5, 1)
    a = [jitter_click(c, 3, (10, 10), np.random.default_rng(1)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(2)
    for _ in range(200):
        j = jitter_click(c, 3, (10, 10), rng)
        assert 0 <= j.row < 10 and 0 <= j.col < 10 and (j.row - c.row) ** 2 + (j.col - c.col) ** 2 <= 9 + 1
        assert j.label == 1
    assert jitter_click(c, 0, (10, 10), rng) == c


def test_simulate_reaches_the_target_from_an_empty_mask():
    rng = np.random.default_rng(0)
    img = np.full((40, 40), 0.2, np.float32)
    gt = np.zeros((40, 40), np.uint8)
    gt[8:30, 10:28] = 1
    img[gt > 0] = 0.8
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    s = RefinementSession()
    s.set_image(img)
    r = simulate(s, gt, max_clicks=5, target_dice=0.9)
    assert r.initial_dice == 0.0 and r.final_dice >= 0.9
    assert r.noc(0.9) == len(r.clicks) == len(r.dice_per_step) == len(r.seconds_per_click) >= 1
    assert r.clicks[0].label == 1 and r.dice_after(20) == r.final_dice
    with pytest.raises(InputError):
        simulate(s, gt[:10])
