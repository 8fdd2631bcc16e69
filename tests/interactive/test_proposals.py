"""Proposals (box, propagation, CAM, model probability) and the refinement features they rely on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from wiml.cam import cam_to_initial_mask
from wiml.errors import InputError
from wiml.evaluation.metrics import dice_score
from wiml.interactive.proposals import (
    ProposalConfig,
    box_prior,
    check_box,
    mask_to_prior,
    probability_prior,
    target_box,
)
from wiml.interactive.session import (
    RefinementConfig,
    RefinementSession,
    adaptive_click_scale,
    boundary_distance_px,
    spatial_decay,
)


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) <= radius**2


def _noisy(mask, seed=0, fg=0.75, bg=0.2, noise=0.03):
    rng = np.random.default_rng(seed)
    return np.clip(np.where(mask, fg, bg) + rng.normal(0, noise, mask.shape), 0, 1).astype(np.float32)


def test_box_around_a_bright_disk_gives_the_disk_without_a_click():
    disk = _disk((80, 96), (38, 50), 14)
    image = _noisy(disk)
    box = target_box(disk)
    assert box == (24, 36, 52, 64)
    s = RefinementSession()
    s.set_image(image)
    mask = s.set_box(box)
    assert s.proposal_source == "box" and not s.clicks
    assert dice_score(mask, disk) >= 0.95
    prior = box_prior(image, box, lam=10.0, sigma=0.05)
    assert prior.dtype == np.float32 and not prior[:, :30].any()  # nothing outside the box
    # a jittered box (each side moved by up to 3 px) still gives the disk
    jittered = target_box(disk, jitter_px=3, rng=np.random.default_rng(1))
    assert jittered != box
    s.set_box(jittered)
    assert dice_score(s.mask, disk) >= 0.95


def test_propagation_over_drifting_disks_keeps_proposal_dice_high():
    shape = (72, 72)
    disks = [_disk(shape, (30 + 2 * k, 28 + 3 * k), 11 + (k % 2)) for k in range(5)]
    s = RefinementSession()
    previous = disks[0]
    for k in range(1, len(disks)):
        s.set_image(_noisy(disks[k], seed=k), prior=mask_to_prior(previous), source="propagate")
        proposal = s.initial_mask()
        assert dice_score(proposal, disks[k]) >= 0.9, k
        assert dice_score(previous, disks[k]) < 0.9  # the shift alone would not do it
        previous = proposal  # the proposal accepted as it is: errors could add up, they do not


def test_mask_to_prior_values_and_cam_fusion():
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    p = mask_to_prior(mask)
    assert 0.8 < p[10, 10] <= 0.9 and 0.1 <= p[0, 0] < 0.14
    assert p[5, 10] == pytest.approx(0.1 + 0.8 / (1 + np.exp(-0.25)), abs=1e-5)  # soft border: sigmoid
    cam = np.ones((20, 20), np.float32)
    fused = mask_to_prior(mask, cam, ProposalConfig(cam_weight=0.5))
    np.testing.assert_allclose(fused, 0.5 * p + 0.5, atol=1e-6)
    with pytest.raises(InputError, match="CAM shape"):
        mask_to_prior(mask, np.ones((5, 5), np.float32))
    with pytest.raises(InputError, match="mask_outside"):
        ProposalConfig(mask_inside=0.4).validate()


def test_probability_prior_and_box_checks():
    p = probability_prior(np.array([[0.0, 0.5, 1.0]], np.float32))
    np.testing.assert_allclose(p, [[0.02, 0.5, 0.98]], atol=1e-6)
    with pytest.raises(InputError):
        probability_prior(np.full((2, 2), np.nan))
    assert check_box((10, 12, 2, 3), (8, 8)) == (2, 3, 7, 7)  # ordered and clipped
    with pytest.raises(InputError, match="outside"):
        check_box((20, 20, 30, 30), (8, 8))
    with pytest.raises(InputError, match="row0"):
        check_box((1, 2, 3), (8, 8))
    assert target_box(np.zeros((4, 4))) is None


def test_set_proposal_validates_and_restarts():
    s = RefinementSession()
    with pytest.raises(InputError, match="no image"):
        s.set_proposal(None)
    s.set_image(np.zeros((10, 12), np.float32))
    with pytest.raises(InputError, match="proposal shape"):
        s.set_proposal(np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        s.set_proposal(np.full((10, 12), 2.0, np.float32))
    s.add_click(5, 5, True)
    assert s.set_proposal(None).sum() == 0 and not s.clicks and s.proposal_source == "none"


def test_one_initial_mask_function_for_cam_and_session():
    """wiml cam (cam_to_initial_mask) and the annotator / wia-sim (the session) give the same mask."""
    yy, xx = np.mgrid[:64, :64]
    body = ((yy - 32) / 30.0) ** 2 + ((xx - 32) / 28.0) ** 2 <= 1
    disk = _disk((64, 64), (30, 34), 10)
    image = np.clip(np.where(body, 0.35, 0.0) + 0.4 * disk, 0, 1).astype(np.float32)
    cam = ndimage.gaussian_filter(disk.astype(np.float32), 5)
    cam = np.roll(cam / cam.max(), 4, axis=0) * body
    for config in (RefinementConfig(), RefinementConfig(cam_appearance=False, lam=5.0, sigma=0.1)):
        s = config.make_session()
        s.set_image(image, cam)
        np.testing.assert_array_equal(s.initial_mask(), cam_to_initial_mask(image, cam, config))
        assert dice_score(s.initial_mask(), disk) > 0.8


def test_adaptive_click_scale_is_local_near_the_boundary():
    assert adaptive_click_scale(float("inf"), 3.0, 2.0, 40.0, 2) == (40.0, 2)
    assert adaptive_click_scale(1.0, 3.0, 2.0, 40.0, 2) == (3.0, 0)  # seed disk stays off the boundary
    assert adaptive_click_scale(0.2, 3.0, 2.0, 40.0, 2) == (2.0, 0)
    assert adaptive_click_scale(100.0, 3.0, 2.0, 40.0, 2) == (40.0, 2)
    mask = np.zeros((9, 9), np.uint8)
    mask[2:7, 2:7] = 1
    assert boundary_distance_px(mask, 4, 4) == 3.0  # inside: to the nearest background pixel
    assert boundary_distance_px(mask, 4, 8) == 2.0  # outside: to the nearest foreground pixel
    assert boundary_distance_px(np.zeros((3, 3)), 1, 1) == float("inf")
    decay = spatial_decay((5, 5), [(0, 0), (4, 4)], [1.0, 2.0])
    assert decay[0, 0] == 1.0 and decay[4, 4] == 1.0
    assert decay[4, 3] == pytest.approx(np.exp(-0.25)) and decay[0, 1] == pytest.approx(np.exp(-1.0))


def test_adaptive_reach_fixes_a_thin_error_and_undo_restores_it():
    """A background click on a 2-px sliver next to the target removes the sliver only; undo + the same click
    gives the same mask (the click's reach is stored with it)."""
    target = np.zeros((60, 60), bool)
    target[20:40, 20:40] = True
    image = _noisy(target, noise=0.0)
    image[20:40, 40:42] = 0.6  # a sliver a little darker than the target
    s = RefinementSession(adaptive_scale=3.0)
    s.set_image(image)
    first = s.add_click(30, 30, True)
    assert first[20:40, 40:42].mean() > 0.9  # target + sliver
    mask = s.add_click(30, 41, False)
    assert dice_score(mask, target) > 0.99 and mask[20:40, 20:38].all()
    np.testing.assert_array_equal(s.undo(), first)
    np.testing.assert_array_equal(s.add_click(30, 41, False), mask)


def test_multichannel_image_uses_both_channels():
    """A target visible in channel 1 only is found when the session sees both channels."""
    disk = _disk((48, 48), (24, 24), 9)
    ch0 = np.full((48, 48), 0.5, np.float32)
    ch1 = _noisy(disk, noise=0.01)
    s = RefinementSession()
    s.set_image(np.stack([ch0, ch1]), channels_first=True)
    assert s.shape == (48, 48) and s.image.shape == (2, 48, 48)
    mask = s.add_click(24, 24, True)
    assert dice_score(mask, disk) > 0.9
    with pytest.raises(InputError, match="channels-first"):
        s.set_image(ch0, channels_first=True)


def test_refinement_config_rejects_bad_values_and_unknown_overrides():
    with pytest.raises(InputError, match=r"adaptive_scale = 0\.0: expected > 0"):
        RefinementConfig(adaptive_scale=0.0).validate()
    with pytest.raises(InputError, match=r"open_radius_px = -1: expected >= 0"):
        RefinementConfig(open_radius_px=-1).validate()
    with pytest.raises(InputError, match=r"lam = -1\.0: expected >= 0; mask_prior = 2\.0: expected \[0, 1\]"):
        RefinementConfig(lam=-1.0, mask_prior=2.0).validate()  # every bad value in one line
    with pytest.raises(InputError, match="empty_prior"):
        RefinementConfig(empty_prior=0.45, roi_threshold=0.4).validate()  # the cross-field rule
    assert RefinementConfig(roi_margin_px=None, cam_threshold=None, adaptive_scale=None).validate()
    with pytest.raises(InputError, match="unknown refinement parameter"):
        RefinementSession(lamda=3)
    assert RefinementSession(mask_prior=0.3).config.mask_prior == 0.3
