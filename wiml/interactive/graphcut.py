"""Binary graph cut (max-flow) with a contrast-sensitive pairwise term, via SimpleCRF.

The energy is the one of Boykov & Jolly (ICCV 2001), "Interactive graph cuts for optimal boundary & region
segmentation of objects in N-D images": unary terms -log p from the foreground/background probabilities and a
pairwise term ``lam * exp(-(I_p - I_q)^2 / (2 sigma^2)) / dist(p, q)`` between 8-neighbours. Seeds are hard
constraints. SimpleCRF (Wang et al., HiLab) implements it with the Boykov-Kolmogorov max-flow.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from types import ModuleType

import numpy as np

from wiml.errors import DependencyError, InputError

_EPS = 1e-4


def _check_2d(name: str, arr: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name} shape {arr.shape} does not match the image {shape}")
    return arr


def _simplecrf_maxflow_file() -> Path | None:
    """Where SimpleCRF installed its ``maxflow`` extension (None when SimpleCRF is not installed)."""
    import importlib.metadata as md

    try:
        files = md.files("SimpleCRF") or []
    except md.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith("maxflow.") and f.suffix in (".so", ".pyd"):
            return Path(f.locate())
    return None


def check_maxflow(module: ModuleType | None = None) -> ModuleType:
    """The ``maxflow`` module if it is SimpleCRF's (has ``maxflow2d`` and ``interactive_maxflow2d``).

    PyMaxflow installs another top-level ``maxflow`` package; where it comes first on the path it shadows
    SimpleCRF's extension and every graph cut would fail deep inside.

    Args:
        module: the module to check; None imports ``maxflow``.

    Returns:
        The module.

    Raises:
        DependencyError: one line: ``maxflow`` cannot be imported, or the one imported (its file named) is not
            SimpleCRF's, with the fix.
    """
    if module is None:
        try:
            module = importlib.import_module("maxflow")
        except ImportError as exc:
            raise DependencyError(
                f"cannot import SimpleCRF's 'maxflow' extension ({exc}); install it: "
                'CPPFLAGS="-DNPY_IN_ARRAY=NPY_ARRAY_IN_ARRAY" pip install --no-build-isolation SimpleCRF'
            ) from exc
    if all(hasattr(module, name) for name in ("maxflow2d", "interactive_maxflow2d")):
        return module
    where = getattr(module, "__file__", None) or "an unknown location"
    ours = _simplecrf_maxflow_file()
    hint = f"SimpleCRF's is {ours}" if ours is not None else "SimpleCRF is not installed"
    raise DependencyError(
        f"the 'maxflow' module imported from {where} is not SimpleCRF's (it lacks interactive_maxflow2d; "
        f"{hint}); it shadows SimpleCRF (PyMaxflow installs such a package): `pip uninstall PyMaxflow` "
        "or remove that file, then run `wiml doctor`"
    )


@functools.lru_cache(maxsize=1)
def _maxflow() -> ModuleType:
    """:func:`check_maxflow`, once per process (the graph cut's first use)."""
    return check_maxflow()


def graph_cut(
    image: np.ndarray,
    fg_prob: np.ndarray,
    lam: float,
    sigma: float,
    fg_seeds: np.ndarray | None = None,
    bg_seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Segment ``image`` by max-flow / min-cut.

    Args:
        image: (H, W) float, intensities normalised to about [0, 1] (``sigma`` is in those units), or
            (C, H, W) for several channels (the pairwise term then uses the Euclidean intensity difference).
        fg_prob: (H, W) foreground probability in [0, 1]; background probability is ``1 - fg_prob``.
        lam: weight of the pairwise (smoothness) term (5.0 in the original WIML release; callers pass
            ``RefinementConfig.lam``, the one place the value is set).
        sigma: intensity scale of the contrast-sensitive pairwise term (0.1 in the original release;
            ``RefinementConfig.sigma``).
        fg_seeds: optional (H, W) bool/uint8, pixels forced to foreground (hard constraints).
        bg_seeds: optional (H, W) bool/uint8, pixels forced to background.

    Returns:
        (H, W) uint8 mask in {0, 1}.

    Raises:
        InputError: shapes are not 2-D or do not match, values are not finite, or lam/sigma are not positive.
        DependencyError: the ``maxflow`` module found first is not SimpleCRF's (see :func:`check_maxflow`).
    """
    image = np.asarray(image)
    if image.ndim == 3:
        image = np.moveaxis(image, 0, -1)  # SimpleCRF takes (H, W, C)
    else:
        image = _check_2d("image", image)
    image = image.astype(np.float32, copy=False)
    shape = image.shape[:2]
    fg_prob = _check_2d("fg_prob", fg_prob, shape).astype(np.float32)
    if not (np.isfinite(image).all() and np.isfinite(fg_prob).all()):
        raise InputError("image and fg_prob must be finite (found NaN or inf)")
    if lam < 0 or sigma <= 0:
        raise InputError(f"need lam >= 0 and sigma > 0, got lam={lam}, sigma={sigma}")
    maxflow = _maxflow()  # SimpleCRF's max-flow extension (DependencyError where it is shadowed)

    fg = np.clip(fg_prob, _EPS, 1.0 - _EPS)
    prob = np.ascontiguousarray(np.stack([1.0 - fg, fg], axis=-1), dtype=np.float32)
    img = np.ascontiguousarray(image)
    if fg_seeds is None and bg_seeds is None:
        out = maxflow.maxflow2d(img, prob, (float(lam), float(sigma)))
    else:
        seeds = np.zeros(shape + (2,), np.uint8)
        if bg_seeds is not None:
            seeds[..., 0] = _check_2d("bg_seeds", bg_seeds, shape) > 0
        if fg_seeds is not None:
            seeds[..., 1] = _check_2d("fg_seeds", fg_seeds, shape) > 0
            seeds[..., 0][seeds[..., 1] > 0] = 0  # a pixel clicked as both: the foreground click wins
        out = maxflow.interactive_maxflow2d(
            img, prob, np.ascontiguousarray(seeds), (float(lam), float(sigma))
        )
    return (np.asarray(out) > 0).astype(np.uint8)
