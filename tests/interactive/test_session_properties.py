"""Property-based test of :class:`RefinementSession` (hypothesis): images of any dtype and of sizes from 1 x 1
to 600 x 3, clicks anywhere (inside, on the border, outside); every result is a uint8 {0, 1} mask of the
image's shape and every refusal is an :class:`~wiml.errors.InputError` (never another exception)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wiml.errors import InputError
from wiml.interactive.session import RefinementSession

DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64]  # fmt: skip

#: (H, W): small squares-ish, thin columns up to 600 x 3, thin rows up to 3 x 600
SHAPES = st.one_of(
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.tuples(st.integers(1, 600), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 600)),
)


@st.composite
def images(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(SHAPES)
    if dtype.kind == "f":  # NaN and inf included: the session must refuse them with an InputError
        elements = st.floats(width=8 * min(dtype.itemsize, 4) if dtype.itemsize < 8 else 64, allow_nan=True,
                             allow_infinity=True)  # fmt: skip
        fill = st.floats(-1e3, 1e3, width=16 if dtype.itemsize == 2 else 32)
        return draw(hnp.arrays(dtype, shape, elements=elements, fill=fill))
    if dtype.kind == "c":
        return np.zeros(shape, dtype)
    return draw(hnp.arrays(dtype, shape))


def _check_mask(mask, shape):
    assert isinstance(mask, np.ndarray) and mask.dtype == np.uint8 and mask.shape == shape
    assert set(np.unique(mask).tolist()) <= {0, 1}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(image=images(), data=st.data())
def test_refinement_session_results_are_masks_and_refusals_input_errors(image, data):
    session = RefinementSession()
    try:
        session.set_image(image)
    except InputError:
        bad_dtype = image.dtype.kind in "cb"  # complex and bool are not intensities
        non_finite = image.dtype.kind == "f" and not np.isfinite(image.astype(np.float64)).all()
        assert bad_dtype or non_finite, f"refused a valid {image.dtype} {image.shape} image"
        return
    h, w = image.shape
    _check_mask(session.initial_mask(), (h, w))
    n_clicks = data.draw(st.integers(1, 4), label="clicks")
    for _ in range(n_clicks):
        row = data.draw(st.integers(-3, h + 2), label="row")
        col = data.draw(st.integers(-3, w + 2), label="col")
        foreground = data.draw(st.booleans(), label="foreground")
        inside = 0 <= row < h and 0 <= col < w
        try:
            mask = session.add_click(row, col, foreground)
        except InputError:
            assert not inside, f"refused an in-image click ({row}, {col}) on {h} x {w}"
            continue
        assert inside, f"accepted a click ({row}, {col}) outside {h} x {w}"
        _check_mask(mask, (h, w))
        _check_mask(session.mask, (h, w))
        assert mask[row, col] == int(foreground), "a click is a hard constraint on its own pixel"
    session.undo()
    _check_mask(session.mask, (h, w))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_images_are_input_errors(value):
    image = np.zeros((5, 5), np.float32)
    image[2, 2] = value
    with pytest.raises(InputError):
        RefinementSession().set_image(image)


def test_float64_beyond_float32_range_is_normalised_not_refused():
    """Found by the property test: finite float64 values beyond float32's range used to overflow to inf and be
    refused as "NaN or infinite"; min-max scaling does not depend on the units."""
    from wiml.interactive.session import normalize_image

    out = normalize_image(np.array([[0.0, 1e300], [-1e300, 5e299]]))
    np.testing.assert_allclose(out, [[0.5, 1.0], [0.0, 0.75]], atol=1e-6)
    assert out.dtype == np.float32
