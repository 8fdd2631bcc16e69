"""Appearance-aware CAM prior (wiml.interactive.appearance) and its use in the initial mask and the session."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from wiml.cam import cam_to_initial_mask
from wiml.errors import InputError
from wiml.evaluation.metrics import dice_score
from wiml.interactive.appearance import appearance_prior, intensity_likelihood
from wiml.interactive.session import RefinementConfig, RefinementSession


def _phantom(shift_px: int = 9, blur_px: float = 8.0):
    """A bright disc in a grey body on a black background and a blurred CAM shifted off the disc."""
    yy, xx = np.mgrid[:96, :96]
    body = ((yy - 48) / 44.0) ** 2 + ((xx - 48) / 40.0) ** 2 <= 1.0
    disc = ((yy - 44) ** 2 + (xx - 50) ** 2) <= 13**2
    rng = np.random.default_rng(0)
    image = np.where(body, 0.35, 0.0) + 0.45 * disc + rng.normal(0, 0.02, disc.shape) * body
    cam = ndimage.gaussian_filter(disc.astype(np.float32), blur_px)
    cam = np.roll(cam / cam.max(), shift_px, axis=1) * body
    return np.clip(image, 0, 1).astype(np.float32), cam.astype(np.float32), body, disc


def test_intensity_likelihood_is_a_density_of_the_sample():
    image = np.array([[0.1, 0.1, 0.9, 0.9]], np.float32)
    lik = intensity_likelihood(image, np.array([[True, True, False, False]]), bins=10, smoothing_bins=0)
    assert lik[0, 0] > 100 * lik[0, 2]  # dark pixels likely, bright ones not
    assert lik.min() > 0


def test_appearance_mask_beats_cam_only_on_a_shifted_blurred_cam():
    image, cam, body, disc = _phantom()
    # the original graph-cut weights (lam 5, sigma 0.1): with them the CAM alone leaks off the disc
    cam_only = cam_to_initial_mask(image, cam, RefinementConfig(lam=5.0, sigma=0.1, cam_appearance=False))
    with_appearance = cam_to_initial_mask(image, cam, RefinementConfig(lam=5.0, sigma=0.1), region=body)
    assert dice_score(with_appearance, disc) > 0.9
    assert dice_score(with_appearance, disc) > dice_score(cam_only, disc) + 0.05
    prior = appearance_prior(image, cam, body)
    assert prior.dtype == np.float32 and prior.shape == image.shape
    assert 0.0 <= prior.min() and prior.max() <= 1.0 and not prior[~body].any()
    assert prior[disc].mean() > 0.5 > prior[body & ~disc].mean()


def test_grabcut_iterations_and_session_use_it():
    image, cam, body, disc = _phantom()
    prior = appearance_prior(image, cam, body, iterations=2, lam=5.0, sigma=0.1)
    with pytest.raises(InputError, match="lam and sigma"):
        appearance_prior(image, cam, body, iterations=2)
    assert prior[disc].mean() > 0.5 > prior[body & ~disc].mean()
    weights = RefinementConfig(lam=5.0, sigma=0.1)
    plain = RefinementSession(weights, cam_appearance=False)
    aware = RefinementSession(weights)  # appearance by default
    plain.set_image(image, cam)
    aware.set_image(image, cam)
    assert dice_score(aware.initial_mask(), disc) > dice_score(plain.initial_mask(), disc)


def test_degenerate_inputs():
    image, cam, body, _ = _phantom()
    assert not appearance_prior(image, np.zeros_like(cam), body).any()  # empty CAM: nothing
    assert cam_to_initial_mask(image, np.zeros_like(cam)).sum() == 0
    flat = np.full_like(image, 0.5)
    np.testing.assert_array_equal(appearance_prior(flat, cam), cam)  # no contrast: the CAM is kept
    tiny = np.zeros_like(cam)
    tiny[40, 40] = 1.0  # too few confident pixels to learn from
    np.testing.assert_array_equal(appearance_prior(image, tiny, body), tiny)
    with pytest.raises(InputError, match="shape"):
        appearance_prior(image, cam[:10], body)
    with pytest.raises(InputError):
        appearance_prior(image, cam, body[:10])
    with pytest.raises(InputError):
        appearance_prior(image, cam, fg_threshold=0.1, bg_threshold=0.2)
    with pytest.raises(InputError, match="finite"):
        appearance_prior(np.full_like(image, np.nan), cam)
