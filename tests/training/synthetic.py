"""Tiny synthetic prepared folders for training and CAM tests: bright disks (tag 1) on noise (tag 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wiml.data.slices import save_slice, write_manifest


def make_prepared(
    root: Path,
    n_per_patient: int = 8,
    size: int = 32,
    patients=("p0", "p1", "p2"),
    splits=("train", "val", "test"),
    channels: int = 1,
    seed: int = 0,
) -> Path:
    """Write ``root/manifest.csv`` + slices; every other slice holds a disk (tag 1) with its mask."""
    rng = np.random.default_rng(seed)
    rows = []
    yy, xx = np.mgrid[:size, :size]
    for pid, split in zip(patients, splits):
        for i in range(n_per_patient):
            tag = i % 2
            image = rng.normal(0.0, 0.15, (channels, size, size)).astype(np.float32) + 0.2
            mask = np.zeros((size, size), np.uint8)
            if tag:
                r = rng.integers(size // 8, size // 4)
                cy, cx = rng.integers(r + 1, size - r - 1, size=2)
                mask = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.uint8)
                image[:, mask > 0] += 0.6
            rel = Path("slices") / pid / f"{pid}_{i:04d}.npz"
            save_slice(root / rel, image, mask)
            rows.append(
                {
                    "patient_id": pid,
                    "slice_index": i,
                    "file": rel.as_posix(),
                    "tag": tag,
                    "has_mask": 1,
                    "split": split,
                    "spacing_mm": "1,1,1",
                    "source": "synthetic",
                }
            )
    write_manifest(root / "manifest.csv", rows)
    return root
