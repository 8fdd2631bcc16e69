"""Geodesic backends against analytic answers (an independent oracle) and against each other."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from wiml.errors import InputError
from wiml.interactive.geodesic import NO_SEED_DISTANCE, click_likelihood, geodesic_distance


@pytest.mark.parametrize("backend", ["fastgeodis", "geodistk"])
def test_step_image_distance_is_the_step_height(backend):
    img = np.zeros((12, 16), np.float32)
    img[:, 9:] = 2.5  # crossing the edge costs 2.5; within a flat half the pure geodesic costs nothing
    seeds = np.zeros(img.shape, np.uint8)
    seeds[6, 2] = 1
    d = geodesic_distance(img, seeds, backend)
    assert d.dtype == np.float32 and d.shape == img.shape
    np.testing.assert_allclose(d[:, :9], 0.0, atol=1e-3)
    np.testing.assert_allclose(d[:, 9:], 2.5, atol=1e-3)


@pytest.mark.parametrize("backend", ["fastgeodis", "geodistk"])
def test_ramp_image_distance_is_the_intensity_difference(backend):
    cols = np.arange(20, dtype=np.float32)
    img = np.tile(0.1 * cols, (10, 1))  # I = 0.1 * col: geodesic distance = 0.1 * |col - col0|
    seeds = np.zeros(img.shape, bool)
    seeds[:, 5] = True
    d = geodesic_distance(img, seeds, backend)
    np.testing.assert_allclose(d, np.tile(0.1 * np.abs(cols - 5), (10, 1)), atol=2e-3)


def test_backends_agree_on_a_tiny_noisy_image():
    rng = np.random.default_rng(0)
    img = ndimage.gaussian_filter(rng.normal(size=(24, 24)), 1.5).astype(np.float32) * 5
    seeds = np.zeros(img.shape, bool)
    seeds[12, 12] = True
    a = geodesic_distance(img, seeds, "fastgeodis")
    b = geodesic_distance(img, seeds, "geodistk")
    # both are discrete approximations of the same continuous distance (raster scan vs fast marching)
    assert np.abs(a - b).mean() < 0.15 * b.mean()
    assert np.abs(click_likelihood(a) - click_likelihood(b)).mean() < 0.05


def test_euclidean_limit_on_a_flat_image():
    img = np.zeros((15, 15), np.float32)
    seeds = np.zeros(img.shape, bool)
    seeds[7, 7] = True
    d = geodesic_distance(img, seeds, "fastgeodis", lamb=0.0)
    np.testing.assert_allclose(d, ndimage.distance_transform_edt(~seeds), rtol=0.1, atol=1e-3)


def test_no_seed_bad_backend_and_likelihood():
    img = np.zeros((4, 4), np.float32)
    assert (geodesic_distance(img, np.zeros((4, 4))) == NO_SEED_DISTANCE).all()
    assert click_likelihood(geodesic_distance(img, np.zeros((4, 4)))).max() == 0.0
    np.testing.assert_allclose(
        click_likelihood(np.array([0.0, 1.0, 2.0]), scale=2.0), np.exp([0, -0.25, -1.0]), rtol=1e-6
    )
    with pytest.raises(InputError):
        geodesic_distance(img, np.zeros((4, 5)))
    with pytest.raises(InputError):
        geodesic_distance(img, np.ones((4, 4)), backend="nope")
    with pytest.raises(InputError):
        geodesic_distance(img, np.ones((4, 4)), backend="geodistk", lamb=0.5)
    with pytest.raises(InputError):
        click_likelihood(np.zeros(3), scale=0)
