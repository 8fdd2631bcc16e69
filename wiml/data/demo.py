"""Synthetic abdominal CT phantom in LiTS layout, so that the default pipeline needs no download.

Each patient is an axial CT volume in Hounsfield units (int16) with a LiTS-style segmentation (uint8: 0
background, 1 liver, 2 lesion), written as ``volume-N.nii`` / ``segmentation-N.nii`` with true spacing
(default 1.40625 x 1.40625 x 2.5 mm: a 360 mm field of view on 256 px). Contents, in patient coordinates
(LPS: row 0 anterior, column 0 the patient's right, slice 0 inferior):

* air outside the body (-1000 HU); an elliptical body whose size changes slowly along z;
* subcutaneous and visceral fat (about -100 HU); soft tissue and muscle (40-55 HU);
* the spine (vertebral body, cortical rim, spinal canal), aorta and inferior vena cava (contrast-enhanced);
* kidneys (enhancing cortex) in the lower slices, lung bases (about -850 HU) in the upper slices;
* a liver (90-110 HU: portal-venous phase) on the patient's right whose outline is a smooth radial function
  of angle and slice,
  growing from nothing at its inferior tip to its widest and back to nothing at the dome, so slices above and
  below it hold no liver (both image-tag classes);
* a thin fat plane (3-6 mm) between the liver and the body wall on its lateral side only; medially and
  posteriorly the liver touches soft tissue and muscle (45-55 HU) and the inferior vena cava (150 HU), so the
  clicks-only WIA robot needs a few clicks per slice, as on real liver CT (docs/results.md);
* 0-3 spherical hypodense lesions (15-35 HU darker), inside the liver (label 2);
* a little blur (partial volume) and Gaussian noise.

Everything depends only on ``(seed, patient index, size, n_slices)``: the same arguments give identical
arrays on any machine.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from wiml.config import check_ranges
from wiml.data.io import write_slice, write_volume

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PhantomConfig:
    """Size of one phantom volume.

    Attributes:
        size: in-plane size in px (square).
        n_slices: number of axial slices.
        fov_mm: in-plane field of view in mm (pixel spacing = fov_mm / size).
        slice_mm: slice spacing in mm.
        noise_hu: standard deviation of the Gaussian noise in HU.
    """

    size: int = 256
    n_slices: int = 48
    fov_mm: float = 360.0
    slice_mm: float = 2.5
    noise_hu: float = 12.0

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(x, y, z) spacing in mm."""
        return (self.fov_mm / self.size, self.fov_mm / self.size, self.slice_mm)


@dataclasses.dataclass
class DemoDataConfig:
    """The synthetic demo set ``wiml make-demo`` writes (the pipeline's ``make_demo`` section).

    Attributes:
        patients: number of phantom patients (>= 1).
        seed: seed (same seed, same volumes).
        size: in-plane size in px (>= 32).
        slices: axial slices per patient (>= 8).
        fov_mm: in-plane field of view in mm.
        slice_mm: slice spacing in mm.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "patients": ">= 1",
        "size": ">= 32",
        "slices": ">= 8",
        "fov_mm": "> 0",
        "slice_mm": "> 0",
        "seed": ">= 0",
    }

    patients: int = 12
    seed: int = 0
    size: int = 256
    slices: int = 48
    fov_mm: float = 360.0
    slice_mm: float = 2.5

    def validate(self) -> DemoDataConfig:
        """Returns self.

        Raises:
            ConfigError: a setting outside :attr:`RANGES` (one line each).
        """
        check_ranges(self, "make_demo")
        return self

    def phantom(self) -> PhantomConfig:
        """The per-volume :class:`PhantomConfig`."""
        return PhantomConfig(size=self.size, n_slices=self.slices, fov_mm=self.fov_mm, slice_mm=self.slice_mm)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float, angle: float = 0.0):
    c, s = np.cos(angle), np.sin(angle)
    u = (x - cx) * c + (y - cy) * s
    v = -(x - cx) * s + (y - cy) * c
    return (u / ax) ** 2 + (v / ay) ** 2 <= 1.0


def _smooth_profile(t: np.ndarray, power: float = 0.6) -> np.ndarray:
    """0 outside (0, 1), a smooth bump inside: sin(pi t) ** power."""
    out = np.zeros_like(t, dtype=np.float64)
    inside = (t > 0) & (t < 1)
    out[inside] = np.sin(np.pi * t[inside]) ** power
    return out


def make_phantom(
    index: int, seed: int = 0, config: PhantomConfig = PhantomConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic abdominal CT volume and its LiTS-style segmentation.

    Args:
        index: patient index (each index is a different patient).
        seed: global seed.
        config: volume size and spacing.

    Returns:
        volume: (Z, Y, X) int16 HU.
        segmentation: (Z, Y, X) uint8, 0 background, 1 liver, 2 lesion.
    """
    rng = np.random.default_rng([int(seed), int(index), 20230701])
    n, nz = config.size, config.n_slices
    sx, _, sz = config.spacing
    coords = (np.arange(n) - (n - 1) / 2.0) * sx
    x, y = np.meshgrid(coords, coords)  # x: patient right -> left (columns), y: anterior -> posterior
    z_mm = np.arange(nz) * sz

    # patient-level parameters
    body_a, body_b = rng.uniform(135, 160), rng.uniform(95, 115)
    body_cy = rng.uniform(0, 12)
    fat_mm = rng.uniform(8, 22)
    liver_hu = rng.uniform(90, 110)
    fat_plane_mm = rng.uniform(3.0, 6.0)
    fat_plane_dir, fat_plane_cut = np.pi + rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.0)
    z_extent = nz * sz
    liver_z0 = z_extent * rng.uniform(0.15, 0.28)  # inferior tip
    liver_z1 = z_extent * rng.uniform(0.80, 0.92)  # dome
    liver_cx, liver_cy = -rng.uniform(45, 60), body_cy - rng.uniform(0, 15)
    liver_r0 = rng.uniform(62, 78)
    harmonics = np.arange(2, 6)
    amp_lo = rng.uniform(0.03, 0.12, size=len(harmonics)) / harmonics**0.5
    amp_hi = rng.uniform(0.03, 0.12, size=len(harmonics)) / harmonics**0.5
    phase_lo = rng.uniform(0, 2 * np.pi, size=len(harmonics))
    phase_hi = phase_lo + rng.uniform(-0.8, 0.8, size=len(harmonics))
    lobe_dx, lobe_dy, lobe_r = rng.uniform(45, 70), -rng.uniform(20, 40), rng.uniform(28, 40)
    kidney_z1 = z_extent * rng.uniform(0.45, 0.6)
    lung_z0 = liver_z1 - z_extent * rng.uniform(0.05, 0.15)
    spine_cy = body_cy + body_b * 0.55

    volume = np.full((nz, n, n), -1000.0, dtype=np.float32)
    liver = np.zeros((nz, n, n), dtype=bool)
    theta = np.arctan2(y - liver_cy, x - liver_cx)
    radius = np.hypot(x - liver_cx, y - liver_cy)
    for k, z in enumerate(z_mm):
        wobble = 1.0 + 0.03 * np.sin(2 * np.pi * z / z_extent + index)
        a, b = body_a * wobble, body_b * wobble
        body = _ellipse(x, y, 0, body_cy, a, b)
        inner = _ellipse(x, y, 0, body_cy, a - fat_mm, b - fat_mm * 0.8)
        sl = volume[k]
        sl[body] = -100.0  # subcutaneous fat
        sl[inner] = 45.0  # soft tissue
        # visceral fat blobs and a muscle wall
        for j in range(4):
            cx = np.sin(1.7 * j + index) * a * 0.35
            cy = body_cy - b * 0.35 + 12 * np.cos(j + z / 40.0)
            sl[_ellipse(x, y, cx + 30, cy, 22, 12, 0.5 * j) & inner] = -90.0
        sl[inner & ~_ellipse(x, y, 0, body_cy, a - fat_mm - 9, b - fat_mm * 0.8 - 9)] = 55.0
        # spine, paraspinal muscles, vessels
        sl[_ellipse(x, y, -28, spine_cy + 22, 22, 16) | _ellipse(x, y, 28, spine_cy + 22, 22, 16)] = 55.0
        sl[_ellipse(x, y, 0, spine_cy, 19, 16)] = 700.0
        sl[_ellipse(x, y, 0, spine_cy, 15, 12)] = 280.0
        sl[_ellipse(x, y, 0, spine_cy + 24, 7, 7)] = 15.0
        sl[_ellipse(x, y, 0, spine_cy + 37, 5, 8)] = 500.0
        sl[_ellipse(x, y, 14, spine_cy - 27, 11, 11)] = 180.0  # aorta
        sl[_ellipse(x, y, -20, spine_cy - 24, 12, 9)] = 150.0  # IVC
        # kidneys (lower slices)
        t_k = _smooth_profile(np.array([z / kidney_z1]), 0.5)[0]
        if t_k > 0.15:
            for side in (-1, 1):
                kx, ky = side * 62, spine_cy - 2
                outer = _ellipse(x, y, kx, ky, 26 * t_k, 17 * t_k, side * 0.5)
                sl[outer] = 160.0
                sl[_ellipse(x, y, kx, ky, 14 * t_k, 8 * t_k, side * 0.5)] = 30.0
        # stomach / bowel on the patient's left, with gas
        sl[_ellipse(x, y, 55, body_cy - 35, 32, 22, 0.4) & inner] = 25.0
        sl[_ellipse(x, y, 55, body_cy - 50, 18, 7, 0.4) & inner] = -800.0
        # lung bases (upper slices), posterior
        if z > lung_z0:
            grow = min(1.0, (z - lung_z0) / (z_extent * 0.15))
            for side in (-1, 1):
                sl[_ellipse(x, y, side * 70, body_cy + 25, 45 * grow, 45 * grow) & inner] = -850.0
        # liver: smooth radial outline, absent outside (liver_z0, liver_z1)
        t = (z - liver_z0) / (liver_z1 - liver_z0)
        scale = _smooth_profile(np.array([t]), 0.45)[0]
        if scale > 0.08:
            w = np.clip(t, 0, 1)
            amps, phases = (1 - w) * amp_lo + w * amp_hi, (1 - w) * phase_lo + w * phase_hi
            outline = (
                liver_r0
                * scale
                * (1 + sum(am * np.cos(h * theta + ph) for am, h, ph in zip(amps, harmonics, phases)))
            )
            region = radius <= outline
            lobe_scale = _smooth_profile(np.array([(t - 0.35) / 0.65]), 0.6)[0]
            if lobe_scale > 0.1:
                region |= _ellipse(
                    x,
                    y,
                    liver_cx + lobe_dx,
                    liver_cy + lobe_dy,
                    lobe_r * lobe_scale * 1.4,
                    lobe_r * lobe_scale * 0.7,
                    0.3,
                )
            region &= _ellipse(x, y, 0, body_cy, a - fat_mm - 10, b - fat_mm * 0.8 - 10)
            region &= ~_ellipse(x, y, -20, spine_cy - 24, 14, 11)
            liver[k] = region
            # a thin fat plane separates the liver from the body wall on its lateral side; medially and
            # posteriorly it touches soft tissue and muscle of nearly its own density
            rim = (ndimage.distance_transform_edt(~region) * sx <= fat_plane_mm) & ~region
            rim &= ((sl == 45.0) | (sl == 55.0)) & (np.cos(theta - fat_plane_dir) > fat_plane_cut)
            sl[rim] = -80.0
            sl[region] = liver_hu
    # hepatic vessels: a few bright tubes running along z inside the liver
    for _ in range(3):
        vx, vy = liver_cx + rng.uniform(-25, 25), liver_cy + rng.uniform(-25, 25)
        tube = _ellipse(x, y, vx, vy, 3.5, 3.5)
        for k in range(nz):
            volume[k][tube & liver[k]] = liver_hu + 35
    # lesions: spheres centred inside the liver
    lesions = np.zeros_like(liver)
    n_lesions = int(rng.integers(0, 4))
    liver_slices = np.flatnonzero(liver.reshape(nz, -1).any(1))
    zz = z_mm[:, None, None]
    n_liver = len(liver_slices)
    central = liver_slices[
        n_liver // 5 : max(n_liver * 4 // 5, n_liver // 5 + 1)
    ]  # lesions away from the tips
    for _ in range(n_lesions if n_liver else 0):
        k = int(rng.choice(central))
        inside = ndimage.distance_transform_edt(liver[k]) * sx
        candidates = np.argwhere(inside > 12)
        if not len(candidates):
            continue
        r_px, c_px = candidates[int(rng.integers(len(candidates)))]
        r_mm = rng.uniform(6, min(16, float(inside[r_px, c_px]) + 2))
        sphere = (x[None] - x[r_px, c_px]) ** 2 + (y[None] - y[r_px, c_px]) ** 2 + (
            zz - z_mm[k]
        ) ** 2 <= r_mm**2
        lesion = sphere & liver
        lesions |= lesion
        volume[lesion] = liver_hu - rng.uniform(15, 35)
    volume = ndimage.gaussian_filter(volume, sigma=(0.0, 0.7, 0.7))
    volume += rng.normal(0.0, config.noise_hu, size=volume.shape).astype(np.float32)
    volume = np.clip(np.round(volume), -1024, 3071).astype(np.int16)
    segmentation = liver.astype(np.uint8)
    segmentation[lesions] = 2
    return volume, segmentation


def make_demo(
    out: str | Path,
    n_patients: int = 12,
    seed: int = 0,
    config: PhantomConfig = PhantomConfig(),
    progress: bool = True,
) -> list[Path]:
    """Write ``n_patients`` phantoms as ``out/volume-N.nii`` + ``out/segmentation-N.nii`` (LiTS layout).

    Returns:
        The volume paths, in patient order.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in tqdm(range(n_patients), desc="make-demo", unit="patient", disable=not progress):
        volume, segmentation = make_phantom(index, seed, config)
        origin = (-config.fov_mm / 2, -config.fov_mm / 2, 0.0)
        vpath = write_volume(out / f"volume-{index}.nii", volume, spacing=config.spacing, origin=origin)
        write_volume(out / f"segmentation-{index}.nii", segmentation, spacing=config.spacing, origin=origin)
        paths.append(vpath)
    logger.info(
        "wrote %d phantom patients (%s voxels, spacing %s mm) to %s",
        n_patients,
        (config.n_slices, config.size, config.size),
        config.spacing,
        out,
    )
    return paths


#: 8-bit sample slices use this HU window (the default CT window of ``wiml prepare``), scaled to 0..255.
SAMPLE_WINDOW_HU = (-100.0, 200.0)
#: phantom patients the sample slices come from (outside the 0..n-1 range of make_demo).
SAMPLE_PATIENTS = (1000, 1001)


def _to_uint8(slice_hu: np.ndarray) -> np.ndarray:
    lo, hi = SAMPLE_WINDOW_HU
    return np.round((np.clip(slice_hu.astype(np.float32), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)


def write_samples(root: str | Path, seed: int = 0, config: PhantomConfig = PhantomConfig()) -> list[Path]:
    """Write the small sample slices the annotator and the test script open by default.

    ``root/data_source/{1..5}.png`` with liver masks ``root/data_source/label/{1..5}.png`` (0/255), and
    ``root/test_data/data/{1..5}.png`` + ``root/test_data/label/{1..5}.png`` + ``root/test_data/tags.txt``
    (``<name> <tag>`` lines: 3 slices with liver, 2 without). Slices are 8-bit grey, HU window
    :data:`SAMPLE_WINDOW_HU` scaled to 0..255, from held-out phantom patients :data:`SAMPLE_PATIENTS`.

    Returns:
        The written paths.
    """
    root = Path(root)
    written = []
    vol, seg = make_phantom(SAMPLE_PATIENTS[0], seed, config)
    liver_slices = np.flatnonzero((seg > 0).reshape(len(seg), -1).any(1))
    picks = np.linspace(liver_slices[2], liver_slices[-3], 5).round().astype(int)
    for i, k in enumerate(picks, start=1):
        written.append(write_slice(root / "data_source" / f"{i}.png", _to_uint8(vol[k])))
        written.append(
            write_slice(root / "data_source" / "label" / f"{i}.png", ((seg[k] > 0) * 255).astype(np.uint8))
        )
    vol, seg = make_phantom(SAMPLE_PATIENTS[1], seed, config)
    has_liver = (seg > 0).reshape(len(seg), -1).any(1)
    pos = np.flatnonzero(has_liver)
    neg = np.flatnonzero(~has_liver)
    picks = list(np.linspace(pos[3], pos[-4], 3).round().astype(int)) + [int(neg[0]), int(neg[-1])]
    lines = []
    for i, k in enumerate(picks, start=1):
        written.append(write_slice(root / "test_data" / "data" / f"{i}.png", _to_uint8(vol[k])))
        written.append(
            write_slice(root / "test_data" / "label" / f"{i}.png", ((seg[k] > 0) * 255).astype(np.uint8))
        )
        lines.append(f"{i}.png {int(has_liver[k])}")
    from wiml.utils import atomic_write_text

    written.append(atomic_write_text(root / "test_data" / "tags.txt", "\n".join(lines) + "\n"))
    return written
