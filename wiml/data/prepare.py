"""``wiml prepare``: volumes or slice folders -> 2-D slices, image tags, manifest and a patient-level split.

Steps per patient:

1. read the channels (and mask) with :mod:`wiml.data.io`; check shapes, label values and finite voxels;
2. normalise: CT -> Hounsfield window ``window_hu`` scaled to [0, 1]; MR -> z-score inside the brain/body
   mask (voxels outside set to 0); 2-D slice files -> grey value / dtype maximum (8-bit: / 255);
3. take axial slices (NumPy axis 0), resize to ``size`` x ``size`` (linear; masks nearest-neighbour);
4. tag = the slice's target mask has any foreground pixel; optionally drop empty slices more than
   ``drop_empty_margin`` slices away from the target; optionally cut random crops with crop-level tags;
5. write ``slices/<patient>/<patient>_<index:04d>.npz`` and, at the end, ``manifest.csv``,
   ``patients.json``, ``prepare.json`` and ``config.yaml`` (format: :mod:`wiml.data.slices`).

The output folder is built beside the destination and renamed into place only when every patient was
prepared, so an error never leaves a half-written folder. A re-run whose config and input files (names,
sizes, modification times) are unchanged finds the same fingerprint in ``prepare.json`` and does nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from skimage.transform import resize
from tqdm import tqdm

from wiml import __version__
from wiml.config import save_config, to_dict
from wiml.data.crops import CropConfig, crop_positions
from wiml.data.datasets import (
    DEFAULT_CHANNELS,
    SliceCase,
    VolumeCase,
    find_cases,
    parse_target,
    resolve_target,
)
from wiml.data.io import read_slice, read_volume
from wiml.data.normalize import normalize_ct, normalize_unit, normalize_zscore
from wiml.data.slices import SPLITS, format_spacing, save_slice, write_manifest
from wiml.data.split import SplitConfig, split_counts, split_patients
from wiml.errors import ConfigError, InputError
from wiml.layout import CONFIG_YAML
from wiml.utils import atomic_write_text

__all__ = [
    "CropConfig",
    "PrepareConfig",
    "PrepareSummary",
    "SplitConfig",
    "check_config",
    "crop_positions",
    "fingerprint",
    "normalize_ct",
    "normalize_unit",
    "normalize_zscore",
    "prepare",
    "resize_stack",
    "split_counts",
    "split_patients",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PrepareConfig:
    """Configuration of ``wiml prepare`` (YAML + ``--set key=value``).

    Attributes:
        input: dataset root folder.
        layout: ``auto`` or one of :data:`wiml.data.datasets.LAYOUTS`.
        channels: input channels (BraTS: ``flair``, ``t1``, ``t1c``/``t1ce``, ``t2``; MSD: component
            indices); empty = the layout's default.
        target: named target (``liver``, ``tumour``, ``whole_tumour`` ...) or an expression (``>0``,
            ``==2``, ``1,4``); empty = the layout's default (LiTS: liver = label >= 1; BraTS: label > 0).
        normalize: ``auto`` (CT volumes: window; MR: zscore; slice files: unit), ``window``, ``zscore``,
            ``unit`` (value / dtype maximum) or ``none``.
        window_hu: [low, high] Hounsfield window for CT, scaled to [0, 1]. The default [-100, 200] HU
            covers liver (~60 HU), lesions and vessels; [0, 255] reproduces the liver_ct_slices grey values.
        size: output slice size in px (square).
        orient: reorient volumes to this DICOM code before slicing (default ``LPS``: row 0 anterior, column 0
            the patient's right, slice 0 inferior — the radiological display, also for LiTS files whose
            arrays are stored flipped); ``""`` keeps the file's array order. ``patients.json`` holds the
            geometry of the reoriented volume and, as ``source_geometry``, the file's own, so that ``wiml
            test`` writes its NIfTI predictions on the source's voxel grid.
        drop_empty_margin: keep tag-negative slices only within this many slices of the target's axial
            extent; -1 keeps all slices. Patients without any target keep all slices.
        patients: prepare only these patient ids (empty = all).
        max_patients: prepare at most this many (first in sorted order; 0 = all).
        patient_regex: slice folders: regex giving the patient id from a file stem (group ``patient``).
        mask_threshold: slice folders: foreground = mask grey value > this (JPEG edge noise).
        image_dir, mask_dir: slice folders: folder names when they are not a known pair.
        dicom_image_dir, dicom_mask_dir: DICOM layout: the series folders inside a patient folder.
        split: the patient-level split.
        crops: crop-level tags.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "size": ">= 8",
        "drop_empty_margin": ">= -1",
        "max_patients": ">= 0",
        "mask_threshold": ">= 0",
    }

    input: Path | None = None
    layout: Literal["auto", "lits", "brats2019", "brats2015", "msd", "dicom", "slices"] = "auto"
    channels: list[str] = dataclasses.field(default_factory=list)
    target: str = ""
    normalize: Literal["auto", "window", "zscore", "unit", "none"] = "auto"
    window_hu: list[float] = dataclasses.field(default_factory=lambda: [-100.0, 200.0])
    size: int = 256
    drop_empty_margin: int = -1
    orient: str = "LPS"
    patients: list[str] = dataclasses.field(default_factory=list)
    max_patients: int = 0
    patient_regex: str = ""
    mask_threshold: int = 127
    image_dir: str = ""
    mask_dir: str = ""
    dicom_image_dir: str = "PATIENT_DICOM"
    dicom_mask_dir: str = "MASKS_DICOM/liver"
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    crops: CropConfig = dataclasses.field(default_factory=CropConfig)


@dataclasses.dataclass
class PrepareSummary:
    """What :func:`prepare` did."""

    out: Path
    layout: str
    n_patients: int
    n_slices: int
    n_positive: int
    splits: dict[str, list[str]]
    skipped: bool
    seconds: float


# ------------------------------------------------------------------------------------------ helpers
def check_config(cfg: PrepareConfig) -> None:
    """Raise ConfigError for values out of range."""
    if cfg.input is None:
        raise ConfigError("prepare: no input folder (give --input or input: in the YAML)")
    if cfg.size < 8:
        raise ConfigError(f"prepare.size must be >= 8 px, got {cfg.size}")
    if len(cfg.window_hu) != 2 or cfg.window_hu[1] <= cfg.window_hu[0]:
        raise ConfigError(f"prepare.window_hu must be [low, high] with low < high, got {cfg.window_hu}")
    ratios = cfg.split.ratios
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ConfigError(f"prepare.split.ratios must be three non-negative numbers, got {ratios}")
    if cfg.crops.enabled and not 8 <= cfg.crops.size <= cfg.size:
        raise ConfigError(f"prepare.crops.size must be in [8, size={cfg.size}], got {cfg.crops.size}")
    if cfg.crops.enabled and cfg.crops.per_slice < 1:
        raise ConfigError(f"prepare.crops.per_slice must be >= 1, got {cfg.crops.per_slice}")


def resize_stack(stack: np.ndarray, size: int, is_mask: bool = False) -> np.ndarray:
    """Resize (N, H, W) -> (N, size, size): linear for images, nearest-neighbour for masks."""
    if stack.shape[1:] == (size, size):
        return stack
    out = resize(
        stack,
        (stack.shape[0], size, size),
        order=0 if is_mask else 1,
        preserve_range=True,
        anti_aliasing=False,
        mode="edge",
    )
    return out.astype(stack.dtype)


def _check_labels(mask: np.ndarray, allowed: tuple[int, ...] | None, path: Path | None) -> None:
    if allowed is None:
        return
    values = np.unique(mask)
    bad = [v for v in values.tolist() if v not in allowed]
    if bad:
        raise InputError(f"unexpected label value(s) {bad[:8]}; expected some of {list(allowed)}", path)


@dataclasses.dataclass
class _Prepared:
    images: np.ndarray  # (N, C, S, S) float32
    masks: np.ndarray | None  # (N, S, S) uint8
    indices: list[int]  # source slice index per row
    sources: list[str]
    spacing_mm: tuple[float, float, float] | None
    info: dict


def _load_volume_case(case: VolumeCase, cfg: PrepareConfig, target: str) -> _Prepared:
    arrays, geometry, info_path, source_geometry = [], None, None, None
    orient = cfg.orient or None
    normalize = cfg.normalize
    if normalize == "auto":
        normalize = "window" if case.modality == "ct" else "zscore"
    body = None
    if normalize == "zscore" and case.body_mask is not None:
        body = read_volume(case.body_mask, orient=orient).array > 0
    for ch in case.channels:
        vol = read_volume(ch.path, component=ch.index, orient=orient)
        if geometry is None:
            geometry, info_path, source_geometry = vol.geometry, ch.path, vol.source_geometry
        elif vol.array.shape != arrays[0].shape:
            raise InputError(
                f"channel shape {vol.array.shape} differs from {arrays[0].shape} of {info_path}", ch.path
            )
        if vol.array.ndim != 3:
            raise InputError(f"expected a 3-D volume, got shape {vol.array.shape}", ch.path)
        arrays.append(vol.array)
    if body is not None and body.shape != arrays[0].shape:
        raise InputError(
            f"brain mask shape {body.shape} does not match the image {arrays[0].shape}", case.body_mask
        )
    if normalize == "zscore" and body is None:
        body = np.any(np.stack([a != 0 for a in arrays]), axis=0)
    normed = []
    for a in arrays:
        if normalize == "window":
            normed.append(normalize_ct(a, tuple(cfg.window_hu)))
        elif normalize == "zscore":
            normed.append(normalize_zscore(a, body))
        elif normalize == "unit":
            normed.append(normalize_unit(a))
        else:
            normed.append(a.astype(np.float32))
    mask, source_tags = None, None
    if case.mask is not None:
        m = read_volume(case.mask, orient=orient).array
        if m.shape != arrays[0].shape:
            raise InputError(
                f"mask shape {m.shape} (z, y, x) does not match the image {arrays[0].shape} of {info_path}",
                case.mask,
            )
        if np.issubdtype(m.dtype, np.floating) and not np.array_equal(m, np.round(m)):
            raise InputError("mask holds non-integer values; expected integer labels", case.mask)
        _check_labels(m, case.label_values, case.mask)
        mask = parse_target(target)(m).astype(np.uint8)
        source_tags = mask.reshape(len(mask), -1).max(1) > 0
    size = cfg.size
    images = np.stack([resize_stack(a, size) for a in normed], axis=1)
    masks = resize_stack(mask, size, is_mask=True) if mask is not None else None
    if masks is not None:
        lost = int((source_tags & ~(masks.reshape(len(masks), -1).max(1) > 0)).sum())
        if lost:
            logger.warning(
                "%s: %d slice(s) with a tiny target became empty (tag 0) when resized to %d px",
                case.patient_id,
                lost,
                size,
            )
    z = images.shape[0]
    sx, sy, sz = geometry.spacing[:3]
    h0, w0 = arrays[0].shape[1:]
    spacing_mm = (sy * h0 / size, sx * w0 / size, sz)
    info = {
        "image": [str(c.path) for c in case.channels]
        if len(case.channels) > 1
        else str(case.channels[0].path),
        "mask": str(case.mask) if case.mask is not None else None,
        "channels": [c.name for c in case.channels],
        **geometry.to_dict(),
        "source_geometry": source_geometry.to_dict(),
    }
    return _Prepared(images, masks, list(range(z)), [str(case.channels[0].path)] * z, spacing_mm, info)


def _load_slice_case(case: SliceCase, cfg: PrepareConfig) -> _Prepared:
    size = cfg.size
    images, masks, sources = [], [], []
    has_masks = all(item.mask is not None for item in case.items)
    normalize = "unit" if cfg.normalize == "auto" else cfg.normalize
    for item in case.items:
        img = read_slice(item.image)
        if normalize == "window":
            x = normalize_ct(img, tuple(cfg.window_hu))
        elif normalize == "zscore":
            x = normalize_zscore(img[None])[0]
        elif normalize == "unit":
            x = normalize_unit(img)
        else:
            x = img.astype(np.float32)
        images.append(resize_stack(x[None], size)[0])
        if has_masks:
            m = read_slice(item.mask)
            if m.shape != img.shape:
                raise InputError(
                    f"mask shape {m.shape} does not match the image {img.shape} of {item.image}", item.mask
                )
            m = (m > cfg.mask_threshold).astype(np.uint8)
            masks.append(resize_stack(m[None], size, is_mask=True)[0])
        sources.append(str(item.image))
    info = {
        "image": str(case.image_dir),
        "mask": str(case.mask_dir) if case.mask_dir else None,
        "files": [p.name for p in (it.image for it in case.items)],
        "size": [size, size, len(case.items)],
        "spacing": None,
        "origin": None,
        "direction": None,
    }
    return _Prepared(
        np.stack(images)[:, None],
        np.stack(masks) if has_masks else None,
        list(range(len(case.items))),
        sources,
        None,
        info,
    )


def _keep_rows(tags: np.ndarray, margin: int) -> np.ndarray:
    """Indices of slices kept by ``drop_empty_margin`` (tags: (N,) 0/1 in axial order)."""
    if margin < 0 or not tags.any():
        return np.arange(len(tags))
    pos = np.flatnonzero(tags)
    lo, hi = pos[0] - margin, pos[-1] + margin
    return np.flatnonzero((tags > 0) | ((np.arange(len(tags)) >= lo) & (np.arange(len(tags)) <= hi)))


def _input_files(cases) -> list[Path]:
    files = []
    for case in cases:
        if isinstance(case, SliceCase):
            for it in case.items:
                files += [it.image] + ([it.mask] if it.mask else [])
        else:
            paths = [c.path for c in case.channels] + [p for p in (case.mask, case.body_mask) if p]
            for p in paths:
                files += sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
    return files


def fingerprint(cfg: PrepareConfig, cases) -> str:
    """SHA-256 of the resolved config, the WIML version and the input files' names, sizes and mtimes."""
    h = hashlib.sha256()
    h.update(
        json.dumps({"config": to_dict(cfg), "version": __version__}, sort_keys=True, default=str).encode()
    )
    for p in _input_files(cases):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _is_up_to_date(out: Path, fp: str) -> dict | None:
    meta_path = out / "prepare.json"
    if not (meta_path.is_file() and (out / "manifest.csv").is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return meta if meta.get("fingerprint") == fp else None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit_folder(staging: Path, out: Path) -> None:
    """Swap the finished staging folder into ``out`` (the previous ``out``, if any, is removed)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------- main
def prepare(
    cfg: PrepareConfig, out: str | Path, force: bool = False, progress: bool = True
) -> PrepareSummary:
    """Prepare a dataset: see the module docstring.

    Args:
        cfg: the prepare configuration (``cfg.input`` is the dataset root).
        out: output folder (created; replaced as a whole when the inputs or config changed).
        force: prepare again even when the fingerprint is unchanged.
        progress: show a tqdm bar over patients.

    Returns:
        PrepareSummary (``skipped`` True when the folder was already up to date).

    Raises:
        ConfigError: a config value out of range; an existing ``out`` that is not a prepared folder.
        InputError: missing/empty input, a layout not recognised, shape mismatches, unexpected label values,
            non-image files, NaN/inf voxels, masks without images (nothing is written then).
    """
    check_config(cfg)
    out = Path(out).resolve()
    root = Path(cfg.input).expanduser().resolve()
    if not root.exists():
        raise InputError("input folder not found", root)
    if out.exists() and not out.is_dir():
        raise ConfigError("output exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not (out / "prepare.json").is_file():
        raise ConfigError("output folder is not empty and holds no prepare.json; refusing to replace it", out)
    t0 = time.perf_counter()
    layout, cases = find_cases(
        root,
        cfg.layout,
        cfg.channels,
        cfg.patient_regex,
        cfg.image_dir,
        cfg.mask_dir,
        cfg.dicom_image_dir,
        cfg.dicom_mask_dir,
    )
    if cfg.patients:
        wanted = [str(p) for p in cfg.patients]
        known = {c.patient_id for c in cases}
        missing = [p for p in wanted if p not in known]
        if missing:
            raise ConfigError(f"prepare.patients lists {missing}, which {root} does not hold")
        cases = [c for c in cases if c.patient_id in wanted]
    if cfg.max_patients > 0:
        cases = cases[: cfg.max_patients]
    target = resolve_target(layout, cfg.target)
    resolved = dataclasses.replace(
        cfg,
        input=root,
        layout=layout,
        target=target,
        channels=list(cfg.channels or DEFAULT_CHANNELS.get(layout, ())),
    )
    fp = fingerprint(resolved, cases)
    meta = None if force else _is_up_to_date(out, fp)
    if meta is not None:
        logger.info("%s is up to date (fingerprint %s); nothing to do", out, fp[:12])
        return PrepareSummary(
            out,
            layout,
            meta["n_patients"],
            meta["n_slices"],
            meta["n_positive"],
            meta["splits"],
            True,
            time.perf_counter() - t0,
        )
    splits = split_patients([c.patient_id for c in cases], resolved.split)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700
    try:
        rows, patients = _prepare_cases(cases, resolved, target, splits, staging, progress)
        n_pos = sum(r["tag"] for r in rows)
        write_manifest(staging / "manifest.csv", rows)
        atomic_write_text(staging / "patients.json", json.dumps(patients, indent=1))
        save_config(resolved, staging / CONFIG_YAML)
        split_lists = {s: sorted(p for p, v in splits.items() if v == s) for s in SPLITS}
        meta = {
            "fingerprint": fp,
            "wiml_version": __version__,
            "layout": layout,
            "target": target,
            "n_patients": len(cases),
            "n_slices": len(rows),
            "n_positive": n_pos,
            "splits": split_lists,
            "seconds": round(time.perf_counter() - t0, 2),
            "config": to_dict(resolved),
        }
        atomic_write_text(staging / "prepare.json", json.dumps(meta, indent=1))
        _commit_folder(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "prepared %d slices (%d tag-positive) of %d patients into %s in %.1f s",
        len(rows),
        n_pos,
        len(cases),
        out,
        time.perf_counter() - t0,
    )
    return PrepareSummary(
        out, layout, len(cases), len(rows), n_pos, split_lists, False, time.perf_counter() - t0
    )


def _prepare_cases(
    cases, cfg: PrepareConfig, target: str, splits: dict[str, str], staging: Path, progress: bool
) -> tuple[list[dict], dict]:
    rows, patients = [], {}
    for case in tqdm(cases, desc="prepare", unit="patient", disable=not progress):
        pid = case.patient_id
        if isinstance(case, SliceCase):
            prep = _load_slice_case(case, cfg)
        else:
            prep = _load_volume_case(case, cfg, target)
        tags = (
            (prep.masks.reshape(len(prep.masks), -1).max(1) > 0).astype(np.uint8)
            if prep.masks is not None
            else np.zeros(len(prep.images), np.uint8)
        )
        keep = _keep_rows(tags, cfg.drop_empty_margin) if prep.masks is not None else np.arange(len(tags))
        info = dict(prep.info)
        info["n_source_slices"] = len(prep.images)
        info["split"] = splits[pid]
        rng = np.random.default_rng([cfg.crops.seed, zlib.crc32(pid.encode())])
        out_index = 0
        kept = []
        for i in keep:
            image, mask = prep.images[i], (prep.masks[i] if prep.masks is not None else None)
            if cfg.crops.enabled and mask is not None:
                cs = cfg.crops.size
                pieces = [
                    (r, c, image[:, r : r + cs, c : c + cs], mask[r : r + cs, c : c + cs])
                    for r, c in crop_positions(
                        mask, cs, cfg.crops.per_slice, rng, cfg.crops.min_foreground_px, cfg.crops.balance
                    )
                ]
            else:
                pieces = [(None, None, image, mask)]
            for r, c, img, msk in pieces:
                index = prep.indices[i] if not cfg.crops.enabled else out_index
                name = f"{pid}_{index:04d}.npz"
                save_slice(staging / "slices" / pid / name, img, msk)
                if msk is None:
                    tag = 0
                elif cfg.crops.enabled:
                    tag = int(msk.sum() >= cfg.crops.min_foreground_px)
                else:
                    tag = int(msk.any())
                source = prep.sources[i] if r is None else f"{prep.sources[i]}#crop={r},{c},{cfg.crops.size}"
                rows.append(
                    {
                        "patient_id": pid,
                        "slice_index": index,
                        "file": f"slices/{pid}/{name}",
                        "tag": tag,
                        "has_mask": int(msk is not None),
                        "split": splits[pid],
                        "spacing_mm": format_spacing(prep.spacing_mm),
                        "source": source,
                    }
                )
                out_index += 1
            kept.append(prep.indices[i])
        info["slices"] = f"{kept[0]}-{kept[-1]}" if kept else ""
        info["n_slices"] = len(kept)
        info["spacing_mm"] = list(prep.spacing_mm) if prep.spacing_mm else None
        patients[pid] = info
    return rows, patients
