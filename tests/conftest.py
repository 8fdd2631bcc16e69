"""Shared test fixtures. Tests that need ../shared/data skip with a clear reason where it is absent."""

from __future__ import annotations

import json
import locale
import os
from pathlib import Path

import numpy as np
import pytest

from wiml.data.slices import save_slice, write_manifest
from wiml.layout import PROJECT_ROOT

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["annotator_fixtures"]  # tests/annotator_fixtures.py: images for the annotator tests

SHARED_DATA = Path(os.environ.get("WIML_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip where torch sees no CUDA GPU."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in cuda_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $WIML_SHARED_DATA); skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set WIML_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _keep_locale():
    """Restore the C locale's character type after each test: GDCM's DICOM writer (used by fixtures that
    write DICOM series) sets LC_CTYPE to "C", which would make later tests read text as ASCII."""
    ctype = locale.setlocale(locale.LC_CTYPE)
    yield
    locale.setlocale(locale.LC_CTYPE, ctype)


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep tests on one thread each: the CI machine has 2 cores and tests must be deterministic."""
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- a tiny prepared data set (bright disks on noise) for MSL / pipeline tests ------------------------------


def write_tiny_prepared(
    folder,
    size=32,
    slices=8,
    patients=(("p0", "train"), ("p1", "train"), ("p2", "train"), ("p3", "val"), ("p4", "test")),
    seed=0,
):
    """Write a prepared folder: per patient ``slices`` slices, a disk in the middle ones (tag 1), none at the ends."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    rows, meta = [], {}
    for pid, split in patients:
        cy, cx = rng.uniform(size * 0.35, size * 0.65, 2)
        for s in range(slices):
            r = (size / 5) * np.sin(np.pi * s / (slices - 1)) if 0 < s < slices - 1 else 0.0
            mask = (
                ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
                if r > 1.5
                else np.zeros_like(yy, np.uint8)
            )
            image = 0.3 + 0.5 * mask + rng.normal(0, 0.05, (size, size))
            rel = f"slices/{pid}/{pid}_{s:04d}.npz"
            save_slice(folder / rel, image.astype(np.float32)[None], mask)
            rows.append(
                {
                    "patient_id": pid,
                    "slice_index": s,
                    "file": rel,
                    "tag": int(mask.any()),
                    "has_mask": 1,
                    "split": split,
                    "spacing_mm": "1.5,1.5,2.5",
                    "source": f"{pid}.nii",
                }
            )
        meta[pid] = {
            "image": f"{pid}.nii",
            "mask": f"{pid}_seg.nii",
            "size": [size, size, slices],
            "spacing": [1.5, 1.5, 2.5],
            "origin": [0.0, 0.0, 0.0],
            "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
            "slices": f"0-{slices - 1}",
        }
    write_manifest(folder / "manifest.csv", rows)
    (folder / "patients.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture()
def tiny_prepared(tmp_path):
    return write_tiny_prepared(tmp_path / "data")
