"""RefinementSession on tiny synthetic images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from wiml.errors import InputError
from wiml.evaluation.metrics import dice_score
from wiml.interactive import RefinementSession
from wiml.interactive.session import (
    Click,
    RefinementConfig,
    blend_previous_mask,
    click_disks,
    combine_probabilities,
    normalize_image,
    refine_mask,
    region_of_interest,
)


def _scene(shape=(48, 64), seed=0):
    """A bright rectangle (the target) and a bright disk far from it, on a dark noisy background."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, 0.2, np.float32)
    gt = np.zeros(shape, np.uint8)
    gt[10:30, 8:30] = 1
    img[gt > 0] = 0.7
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    blob = (yy - 30) ** 2 + (xx - 50) ** 2 <= 36
    img[blob] = 0.7
    img += rng.normal(0, 0.01, shape).astype(np.float32)
    return img, gt, blob


def _half_cam(gt):
    cam = np.zeros(gt.shape, np.float32)
    cam[10:30, 8:18] = 0.9  # the CAM finds only the left half of the target
    return cam


def test_click_in_missed_region_raises_dice_and_undo_restores():
    img, gt, _ = _scene()
    s = RefinementSession(
        cam_appearance=False
    )  # CAM alone: the appearance prior would already find the target
    s.set_image(img, _half_cam(gt))
    before = s.mask
    assert 0.3 < dice_score(before, gt) < 0.9
    after = s.add_click(20, 25, foreground=True)  # inside the missed right half
    assert dice_score(after, gt) > dice_score(before, gt) + 0.2
    assert len(s.clicks) == 1 and s.clicks[0].label == 1
    np.testing.assert_array_equal(s.undo(), before)
    assert s.clicks == []
    np.testing.assert_array_equal(s.undo(), before)  # nothing left to undo: a no-op


def test_background_click_removes_a_spurious_region_and_reset_returns_to_initial():
    img, gt, _ = _scene()
    cam = np.zeros(gt.shape, np.float32)
    cam[10:30, 8:40] = 0.9  # the CAM spills over the target's right edge into the dark background
    s = RefinementSession()
    s.set_image(img, cam)
    spurious = s.mask[10:30, 30:40].sum()
    assert spurious > 100
    mask = s.add_click(20, 35, foreground=False)
    assert mask[10:30, 30:40].sum() < 0.1 * spurious
    assert dice_score(mask, gt) > 0.95
    np.testing.assert_array_equal(s.reset(), s.initial_mask())
    assert s.clicks == []


def test_foreground_clicks_only_without_cam_grow_a_region():
    img, gt, blob = _scene()
    s = RefinementSession()
    s.set_image(img)
    assert s.mask.sum() == 0 and s.initial_mask().sum() == 0
    mask = s.add_click(20, 19, foreground=True)
    assert dice_score(mask, gt) > 0.9
    assert mask[blob].sum() == 0  # the bright distractor is not connected to the click


def test_background_clicks_only_without_cam_stay_empty():
    img, _, _ = _scene()
    s = RefinementSession()
    s.set_image(img)
    assert s.add_click(5, 5, foreground=False).sum() == 0
    assert s.add_click(20, 19, foreground=False).sum() == 0


@pytest.mark.parametrize("row,col", [(-1, 3), (3, -1), (48, 0), (0, 64), (100, 100)])
def test_clicks_outside_the_image_are_refused(row, col):
    img, _, _ = _scene()
    s = RefinementSession()
    s.set_image(img)
    with pytest.raises(InputError, match="outside the image"):
        s.add_click(row, col, foreground=True)
    assert s.clicks == []


def test_non_integer_click_and_missing_image_are_refused():
    s = RefinementSession()
    with pytest.raises(InputError, match="no image"):
        s.add_click(1, 1, True)
    s.set_image(np.zeros((8, 8), np.float32))
    with pytest.raises(InputError, match="integer"):
        s.add_click(1.5, 2, True)


@pytest.mark.parametrize(
    "dtype,scale", [(np.uint16, 65535), (np.uint8, 255), (np.int16, 1000), (np.float64, 1.0)]
)
def test_16_bit_8_bit_and_float_inputs_give_the_same_mask(dtype, scale):
    img, gt, _ = _scene()
    ref = RefinementSession()
    ref.set_image(img)
    expected = ref.add_click(20, 19, True)
    s = RefinementSession()
    s.set_image((img * scale).astype(dtype))
    assert s.image.dtype == np.float32 and 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert dice_score(s.add_click(20, 19, True), expected) > 0.98


def test_non_square_and_transposed_images_work():
    img, gt, _ = _scene((48, 64))
    for image, target, click in ((img, gt, (20, 19)), (img.T, gt.T, (19, 20))):
        s = RefinementSession()
        s.set_image(image)
        mask = s.add_click(*click, True)
        assert mask.shape == image.shape and mask.dtype == np.uint8
        assert dice_score(mask, target) > 0.9


def test_both_backends_and_whole_image_cut_agree_on_a_simple_scene():
    img, gt, _ = _scene()
    masks = []
    for kw in ({}, {"backend": "geodistk"}, {"roi_margin_px": None}):
        s = RefinementSession(**kw)
        s.set_image(img, _half_cam(gt))
        masks.append(s.add_click(20, 25, True))
    assert dice_score(masks[0], masks[1]) > 0.98 and dice_score(masks[0], masks[2]) > 0.98


def test_bad_parameters_and_cam_are_refused():
    with pytest.raises(InputError):
        RefinementSession(backend="nope")
    with pytest.raises(InputError):
        RefinementSession(sigma=0)
    s = RefinementSession()
    with pytest.raises(InputError, match="CAM shape"):
        s.set_image(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(InputError, match="CAM values"):
        s.set_image(np.zeros((8, 8)), np.full((8, 8), 2.0))
    with pytest.raises(InputError):
        s.set_image(np.zeros((2, 8, 8)))
    with pytest.raises(InputError):
        s.set_image(np.full((8, 8), np.nan))


def test_helpers():
    np.testing.assert_array_equal(
        normalize_image(np.array([[0, 50], [100, 200]], np.uint8), (0, 100)),
        np.array([[0, 0.5], [1, 1]], np.float32),
    )
    assert normalize_image(np.full((3, 3), 7)).max() == 0
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = 255
    assert normalize_image(rgb)[0, 0] == 1.0
    fg, bg = click_disks((9, 9), [Click(0, 0, 1), Click(4, 4, 0), Click(4, 5, 1)], radius_px=1)
    assert fg[0, 0] and fg[1, 0] and not fg[1, 1] and fg[4, 5] and not bg[4, 5] and bg[4, 3]
    prior = np.full((1, 3), 0.4, np.float32)
    lf, lb = np.array([[0.9, 0.0, 0.2]]), np.array([[0.1, 0.0, 0.7]])
    p = combine_probabilities(prior, lf, lb)
    np.testing.assert_allclose(p, [[0.9 * 0.9 + 0.1 * 0.4, 0.4, 0.7 * 0.2 / 0.9 + 0.3 * 0.4]], atol=1e-6)
    np.testing.assert_allclose(combine_probabilities(prior, lf), 1 - 0.6 * (1 - lf), atol=1e-6)  # noisy-OR
    np.testing.assert_allclose(combine_probabilities(prior, None, lb), 0.4 * (1 - lb), atol=1e-6)
    np.testing.assert_array_equal(combine_probabilities(prior), prior)
    assert region_of_interest(np.zeros((5, 5), bool), 2) is None
    roi = region_of_interest(np.eye(5, dtype=bool)[::-1] & (np.arange(5) == 2), 1)
    assert roi == (slice(1, 4), slice(1, 4))


def test_cam_threshold_calibrates_a_low_cam():
    img, gt, _ = _scene()
    cam = np.where(gt > 0, 0.3, 0.05).astype(np.float32)  # a weak CAM: low, but higher on the target
    plain = RefinementSession()
    plain.set_image(img, cam)
    assert plain.initial_mask().sum() == 0  # 0.3 < 0.5 everywhere: nothing is foreground
    calibrated = RefinementSession(cam_threshold=0.2)  # CAM 0.2 counts as probability 0.5
    calibrated.set_image(img, cam)
    assert dice_score(calibrated.initial_mask(), gt) > 0.95
    with pytest.raises(InputError):
        RefinementSession(cam_threshold=1.5)


#: the refinement defaults before the adaptive click reach (the mask-prior tests were written for them)
OLD = RefinementConfig(lam=5.0, sigma=0.1, mask_prior=0.5, adaptive_scale=None, open_radius_px=1)


def _bar_and_blob(seed=0):
    """An elongated target (a bar) touching a spurious blob of the same intensity at its right end."""
    shape = (64, 128)
    rng = np.random.default_rng(seed)
    img = np.full(shape, 0.2, np.float32)
    gt = np.zeros(shape, np.uint8)
    gt[28:37, 10:110] = 1
    blob = np.zeros(shape, bool)
    blob[22:43, 110:126] = True
    img[(gt > 0) | blob] = 0.7
    img += rng.normal(0, 0.01, shape).astype(np.float32)
    cam = np.zeros(shape, np.float32)
    cam[(gt > 0) | blob] = 0.55  # a moderately confident CAM over both: the initial mask has both
    return img, gt, blob, cam


def test_mask_prior_keeps_the_target_far_from_a_background_click():
    img, gt, blob, cam = _bar_and_blob()
    masks = {}
    for weight in (0.0, 1.0):
        s = RefinementSession(OLD, cam_appearance=False, mask_prior=weight)
        s.set_image(img, cam)
        assert s.mask[blob].mean() > 0.9 and s.mask[gt > 0].mean() > 0.9
        masks[weight] = (dice_score(s.mask, gt), s.add_click(32, 118, foreground=False))
    for _, mask in masks.values():
        assert mask[blob].mean() < 0.05  # the clicked blob goes either way
    # without the prior the click's geodesic reach along the bar deletes it 20-80 px away from the click
    assert masks[0.0][1][28:37, 60:90].mean() < 0.1
    assert dice_score(masks[0.0][1], gt) < masks[0.0][0]
    # with it the bar away from the click stays, and Dice rises
    assert masks[1.0][1][28:37, 10:90].mean() > 0.95
    assert dice_score(masks[1.0][1], gt) > masks[1.0][0] + 0.05


def test_mask_prior_zero_is_the_cut_from_the_clicks_alone_and_undo_is_exact():
    img, gt, blob, cam = _bar_and_blob()
    clicks = [(32, 118, False), (32, 40, True), (25, 60, False)]
    for weight in (0.0, 0.7):
        s = RefinementSession(OLD, cam_appearance=False, mask_prior=weight)
        s.set_image(img, cam)
        history = [s.mask]
        for r, c, fg in clicks:
            history.append(s.add_click(r, c, fg))
            if weight == 0.0:  # no history: the same as one refinement from all clicks so far
                expected = refine_mask(s.image, cam, s.clicks, s.config)
                np.testing.assert_array_equal(history[-1], expected)
        for previous in reversed(history[:-1]):
            np.testing.assert_array_equal(s.undo(), previous)
    prob = np.full((4, 4), 0.3, np.float32)
    prev = np.eye(4, dtype=np.uint8)
    np.testing.assert_array_equal(blend_previous_mask(prob, prev, np.zeros((4, 4)), 0.0), prob)
    np.testing.assert_allclose(blend_previous_mask(prob, prev, np.zeros((4, 4)), 1.0), prev)
    np.testing.assert_allclose(blend_previous_mask(prob, prev, np.ones((4, 4)), 1.0), prob)
    np.testing.assert_allclose(blend_previous_mask(prob, prev, np.zeros((4, 4)), 0.5), 0.15 + 0.5 * prev)
    with pytest.raises(InputError, match="mask_prior"):
        RefinementSession(mask_prior=1.5)
