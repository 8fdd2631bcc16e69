"""Tiny synthetic datasets in the real layouts, written for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from wiml.data.io import write_slice, write_volume

SPACING = (0.8, 0.7, 2.5)


def ct_case(seed: int, shape=(10, 24, 20)) -> tuple[np.ndarray, np.ndarray]:
    """(Z, Y, X) int16 HU volume and a 0/1/2 label volume: liver on slices 3..6, a lesion on slice 4-5."""
    rng = np.random.default_rng(seed)
    vol = rng.normal(40, 10, size=shape).round().astype(np.int16)
    vol[:, :2] = -1000
    seg = np.zeros(shape, np.uint8)
    seg[3:7, 8:16, 5:14] = 1
    seg[4:6, 10:13, 7:10] = 2
    vol[seg == 1] = 60
    vol[seg == 2] = 20
    return vol, seg


def write_lits(root: Path, n: int = 4, shape=(10, 24, 20)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        vol, seg = ct_case(i, shape)
        write_volume(root / f"volume-{i}.nii", vol, spacing=SPACING)
        write_volume(root / f"segmentation-{i}.nii", seg, spacing=SPACING)
    return root


def write_brats2019(root: Path, cases=("HGG/BraTS19_A_1", "LGG/BraTS19_B_1"), shape=(6, 16, 16)) -> Path:
    rng = np.random.default_rng(0)
    for case in cases:
        d = root / case
        d.mkdir(parents=True)
        name = d.name
        brain = np.zeros(shape, bool)
        brain[:, 3:13, 3:13] = True
        for k, ch in enumerate(("flair", "t1", "t1ce", "t2")):
            vol = np.where(brain, rng.normal(500 + 100 * k, 50, shape), 0).astype(np.float32)
            write_volume(d / f"{name}_{ch}.nii.gz", vol, spacing=(1, 1, 1))
        seg = np.zeros(shape, np.uint8)
        seg[2:4, 6:9, 6:9] = 2
        seg[2, 7, 7] = 4
        seg[3, 7, 7] = 1
        write_volume(d / f"{name}_seg.nii.gz", seg, spacing=(1, 1, 1))
    return root


def write_msd(root: Path, n: int = 3, modalities: int = 1) -> Path:
    import json

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(n):
        vol, seg = ct_case(10 + i, (8, 12, 12))
        if modalities > 1:  # a 4-D NIfTI (x, y, z, c) as MSD stores multi-modal images
            image = sitk.JoinSeries([sitk.GetImageFromArray(vol + 100 * c) for c in range(modalities)])
            sitk.WriteImage(image, str(root / "imagesTr" / f"liver_{i}.nii.gz"))
        else:
            write_volume(root / "imagesTr" / f"liver_{i}.nii.gz", vol)
        write_volume(root / "labelsTr" / f"liver_{i}.nii.gz", seg)
    mods = {str(c): "CT" if modalities == 1 else f"MR{c}" for c in range(modalities)}
    (root / "dataset.json").write_text(
        json.dumps(
            {"name": "tiny", "modality": mods, "labels": {"0": "background", "1": "liver", "2": "cancer"}}
        )
    )
    return root


def write_slice_folder(
    root: Path,
    names=("flipped_101_5", "flipped_101_7", "mirrored_102_3", "flipped_103_9"),
    image_dir="images",
    mask_dir="masks",
    suffix=".png",
) -> Path:
    (root / image_dir).mkdir(parents=True)
    (root / mask_dir).mkdir(parents=True)
    for k, name in enumerate(names):
        img = np.full((32, 32), 40 + k, np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        mask[10:20, 5 + k : 15 + k] = 255
        write_slice(root / image_dir / f"{name}{suffix}", img)
        write_slice(root / mask_dir / f"{name}{suffix}", mask)
    return root
