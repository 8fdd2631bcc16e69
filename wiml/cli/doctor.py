"""``wiml doctor``: versions of the libraries WIML stands on, and a tiny run of each native extension.

Prints one line per library (Python, torch and whether CUDA is seen, NumPy, SimpleITK, MONAI, GeodisTK,
SimpleCRF, FastGeodis, PyQt5) and, for anything wrong, how to fix it. Checks that the ``maxflow`` module
found first is SimpleCRF's (PyMaxflow installs another one that shadows it). Exit status 0 when everything
works, 1 otherwise.

Example::

    wiml doctor
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata as md
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wiml.cli.main import make_main

#: the fix for a native build that is missing or broken (README, "Troubleshooting the native builds").
NATIVE_FIX = (
    'CPPFLAGS="-DNPY_IN_ARRAY=NPY_ARRAY_IN_ARRAY" .venv/bin/pip install --no-build-isolation '
    "--force-reinstall --no-deps {dist} (or `make clean-venv && make test`)"
)


@dataclasses.dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    version: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        text = f"  {'ok  ' if self.ok else 'FAIL'}  {self.name} {self.version}"
        text += f": {self.detail}" if self.detail else ""
        return text + (f"\n        fix: {self.fix}" if self.fix and not self.ok else "")


def _version(dist: str) -> str:
    if not dist:
        return platform.python_version()
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "(not installed)"


def _run(name: str, dist: str, probe: Callable[[], str], fix: str) -> Check:
    """Run ``probe`` (returns a detail string); any exception is a failed check with ``fix``."""
    version = _version(dist)
    try:
        detail = probe()
    except Exception as exc:  # the doctor reports whatever goes wrong; it never crashes
        first = str(exc).splitlines()[0] if str(exc) else ""
        return Check(name, version, False, f"{exc.__class__.__name__}: {first}", fix)
    return Check(name, version, True, detail)


def _probe_python() -> str:
    return sys.executable


def _probe_torch() -> str:
    import torch

    x = torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3))
    if float(x.sum()) != 36.0:
        raise RuntimeError(f"a 3x3 convolution of ones gave {float(x.sum())}, expected 36")
    if torch.cuda.is_available():
        return f"CUDA seen ({torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)})"
    return "CUDA not seen (CPU only; --device auto uses the CPU)"


def _probe_numpy() -> str:
    return f"{np.__file__}"


def _probe_simpleitk() -> str:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.arange(8, dtype=np.int16).reshape(2, 2, 2))
    image.SetSpacing((0.5, 0.5, 2.0))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "x.nii.gz")
        sitk.WriteImage(image, path)
        back = sitk.ReadImage(path)
    if not np.array_equal(sitk.GetArrayFromImage(back), np.arange(8).reshape(2, 2, 2)):
        raise RuntimeError("a NIfTI round trip changed the voxels")
    return "NIfTI write/read round trip"


def _probe_monai() -> str:
    import torch
    from monai.losses import DiceLoss

    loss = float(DiceLoss()(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
    if abs(loss) > 1e-4:
        raise RuntimeError(f"Dice loss of identical masks is {loss}, expected 0")
    return "Dice loss"


def _seeds() -> tuple[np.ndarray, np.ndarray]:
    image = np.arange(25, dtype=np.float32).reshape(5, 5) / 24.0  # a ramp: distances grow away from the seed
    seeds = np.zeros((5, 5), np.uint8)
    seeds[0, 0] = 1
    return image, seeds


def _probe_geodistk() -> str:
    import GeodisTK

    image, seeds = _seeds()
    d = np.asarray(GeodisTK.geodesic2d_fast_marching(image, seeds))
    if d.shape != (5, 5) or d[0, 0] != 0 or not d[4, 4] > 0:
        raise RuntimeError("fast marching on a 5 x 5 image gave wrong distances")
    return "geodesic2d_fast_marching on 5 x 5"


def _probe_fastgeodis() -> str:
    import FastGeodis
    import torch

    image, seeds = _seeds()
    d = FastGeodis.generalised_geodesic2d_toivanen(
        torch.from_numpy(image)[None, None],
        torch.from_numpy(1.0 - seeds.astype(np.float32))[None, None],
        1e10,
        1.0,
        2,
    )[0, 0].numpy()
    if d[0, 0] != 0 or not d[4, 4] > 0:
        raise RuntimeError("the raster scan on a 5 x 5 image gave wrong distances")
    return "generalised_geodesic2d_toivanen on 5 x 5"


def _probe_simplecrf() -> str:
    import denseCRF  # noqa: F401  (SimpleCRF's dense CRF extension must import too)

    from wiml.interactive.graphcut import check_maxflow

    maxflow = check_maxflow()
    image = np.zeros((6, 6), np.float32)
    image[:, 3:] = 1.0
    fg = np.where(image > 0.5, 0.9, 0.1).astype(np.float32)
    prob = np.ascontiguousarray(np.stack([1 - fg, fg], axis=-1))
    out = np.asarray(maxflow.maxflow2d(image, prob, (5.0, 0.1)))
    if not np.array_equal(out > 0, image > 0.5):
        raise RuntimeError("max-flow on a 6 x 6 two-region image gave a wrong cut")
    return f"maxflow is SimpleCRF's ({getattr(maxflow, '__file__', '?')}); maxflow2d on 6 x 6"


def _probe_pyqt5() -> str:
    from PyQt5 import QtCore, QtGui, QtWidgets  # noqa: F401

    return (
        f"Qt {QtCore.QT_VERSION_STR} (imports only; a window needs a display, see README for xcb libraries)"
    )


def run_checks() -> list[Check]:
    """Every check of ``wiml doctor``, in report order."""
    reinstall = "re-create the environment: `make clean-venv && make test`"
    return [
        _run("Python", "", _probe_python, "use Python 3.10 or newer"),
        _run(
            "torch", "torch", _probe_torch, "pip install torch==2.13.0 (see requirements.txt); " + reinstall
        ),
        _run("NumPy", "numpy", _probe_numpy, reinstall),
        _run("SimpleITK", "SimpleITK", _probe_simpleitk, "pip install --force-reinstall SimpleITK"),
        _run("MONAI", "monai", _probe_monai, "pip install monai (see requirements.txt)"),
        _run("GeodisTK", "GeodisTK", _probe_geodistk, NATIVE_FIX.format(dist="GeodisTK")),
        _run("SimpleCRF", "SimpleCRF", _probe_simplecrf, NATIVE_FIX.format(dist="SimpleCRF")),
        _run(
            "FastGeodis",
            "FastGeodis",
            _probe_fastgeodis,
            ".venv/bin/pip install --no-build-isolation --force-reinstall --no-deps FastGeodis "
            "(needs torch and setuptools<81 installed first)",
        ),
        _run("PyQt5", "PyQt5", _probe_pyqt5, "pip install PyQt5 (see requirements.txt)"),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options besides --debug / --quiet


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    print("wiml doctor:")
    print("\n".join(c.line() for c in checks))
    bad = [c.name for c in checks if not c.ok]
    print(f"{len(checks) - len(bad)} of {len(checks)} OK" + (f"; fix: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


main = make_main(
    "wiml doctor", "library versions, CUDA, native extensions and the maxflow check", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(main())
