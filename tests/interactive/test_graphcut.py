"""Graph cut and post-processing on tiny images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from wiml.errors import InputError
from wiml.interactive.graphcut import graph_cut
from wiml.interactive.postprocess import largest_component, postprocess_mask


def _square_image():
    img = np.zeros((32, 32), np.float32)
    img[8:24, 8:24] = 1.0
    return img


def test_graph_cut_follows_edges_of_a_blurry_probability():
    img = _square_image()
    prob = np.full(img.shape, 0.3, np.float32)
    prob[6:26, 6:26] = 0.7  # too large by 2 px on every side; the image edge should win
    out = graph_cut(img, prob, lam=5.0, sigma=0.1)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, img.astype(np.uint8))


def test_seeds_are_hard_constraints():
    img = _square_image()
    prob = np.zeros(img.shape, np.float32)
    fg = np.zeros(img.shape, bool)
    fg[2, 2] = True
    bg = np.zeros(img.shape, bool)
    bg[16, 16] = True
    out = graph_cut(img, prob + 0.01, 5.0, 0.1, fg_seeds=fg, bg_seeds=bg)
    assert out[2, 2] == 1 and out[16, 16] == 0


@pytest.mark.parametrize("prob", [np.zeros((4, 4)), np.full((32, 32), np.nan)])
def test_graph_cut_rejects_bad_input(prob):
    with pytest.raises(InputError):
        graph_cut(_square_image(), prob, 5.0, 0.1)


def test_largest_component_and_postprocess():
    m = np.zeros((20, 20), np.uint8)
    m[2:10, 2:10] = 1
    m[5, 5] = 0  # a hole
    m[15:17, 15:17] = 1  # a small extra component
    out = postprocess_mask(m, open_radius_px=0, close_radius_px=0)
    assert out[5, 5] == 1 and out[15:17, 15:17].sum() == 0 and out.sum() == 64
    keep = np.zeros_like(m)
    keep[16, 16] = 1
    assert largest_component(m, keep=keep)[15:17, 15:17].sum() == 4
    assert postprocess_mask(np.zeros((5, 5))).sum() == 0
