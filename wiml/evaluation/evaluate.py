"""The test harness: predict test cases with a checkpoint and write per-slice / per-patient metrics.

Inputs are either a prepared folder (``manifest.csv``; the ``test`` split by default; per-patient metrics
stack each patient's slices with the manifest spacing; NIfTI predictions are written back with the source
geometry from ``patients.json``) or a PNG folder in the original release's layout (``data/*.png`` +
``label/*.png`` of the same names; each image is its own case, no spacing: distances in px).

Outputs (``out``): ``per_slice.csv``, ``per_patient.csv``, ``metrics.md``, ``summary.json``,
``overlays/<name>.png`` and, for volume data, ``predictions/<patient>.nii.gz``.
See :mod:`wiml.evaluation.metrics` for the empty-mask convention.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import numpy as np

from wiml.errors import InputError
from wiml.evaluation.metrics import (
    METRIC_NAMES,
    format_mean_std,
    segmentation_metrics,
    summarize,
    volume_metrics,
)
from wiml.layout import CONFIG_YAML, SUMMARY_JSON, summary_json
from wiml.utils import atomic_path, atomic_write_csv, atomic_write_text, enlarge_nearest, staged_output

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclasses.dataclass
class TestConfig:
    """Options of ``wiml test``.

    Attributes:
        split: manifest split to evaluate (prepared folders only).
        threshold: foreground probability threshold.
        batch_size: slices per forward pass.
        overlays: number of overlay PNGs to write (slices with the target, spread over the cases).
        size: network input side in px; None = the checkpoint's training size (sidecar ``image_size``).
        write_nifti: write NIfTI predictions for volume data.
        gate_with_tag: empty the predicted mask of a slice whose predicted tag probability is below 0.5 (uses
            FPSNet's classification output to suppress false positives on slices without the target); None =
            automatic: on for checkpoints trained with tags (weak, MSL), off for the supervised baselines whose
            classification output is untrained (see :func:`trained_with_tags`).
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "threshold": "(0, 1)",
        "batch_size": ">= 1",
        "overlays": ">= 0",
        "size": ">= 8",
    }

    split: str = "test"
    threshold: float = 0.5
    batch_size: int = 8
    overlays: int = 6
    size: int | None = None
    write_nifti: bool = True
    gate_with_tag: bool | None = None
    device: str = "auto"


@dataclasses.dataclass
class Case:
    """One test slice.

    Attributes:
        name: ``<patient>_<slice:04d>`` (prepared) or the file stem (PNG folder).
        patient_id: patient the slice belongs to.
        slice_index: axial index in the source volume.
        image: (C, H, W) float32.
        mask: (H, W) uint8 ground truth.
        spacing_mm: (row, col, slice) mm, or None (distances in px).
    """

    name: str
    patient_id: str
    slice_index: int
    image: np.ndarray
    mask: np.ndarray
    spacing_mm: tuple[float, float, float] | None = None


def cases_from_prepared(folder: Path, split: str = "test") -> list[Case]:
    """Load the ``split`` slices (with masks) of a prepared folder.

    Raises:
        InputError: no manifest, no slice of that split, or slices without masks.
    """
    from wiml.data.slices import load_slice, read_manifest

    records = read_manifest(folder, split=split)
    if not records:
        raise InputError(f"no slice of split {split!r} in the manifest", Path(folder) / "manifest.csv")
    cases = []
    for rec in records:
        image, mask = load_slice(rec)
        if mask is None:
            raise InputError("test slice has no ground-truth mask", rec.path)
        cases.append(
            Case(
                f"{rec.patient_id}_{rec.slice_index:04d}",
                rec.patient_id,
                rec.slice_index,
                image,
                (mask > 0).astype(np.uint8),
                rec.spacing_mm,
            )
        )
    return cases


def _scale_to_unit(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    array = array.astype(np.float32)
    lo, hi = float(array.min()), float(array.max())
    return (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)


def cases_from_png_folder(folder: Path) -> list[Case]:
    """Load ``folder/data/<name>.png`` images (scaled to [0, 1]) with masks ``folder/label/<name>.png`` (> 0).

    Raises:
        InputError: missing sub-folders, no image, a missing or mismatched label.
    """
    from wiml.data.io import read_slice

    folder = Path(folder)
    data_dir, label_dir = folder / "data", folder / "label"
    if not data_dir.is_dir() or not label_dir.is_dir():
        raise InputError(
            "expected a prepared folder (manifest.csv) or a PNG folder with data/ and label/", folder
        )
    files = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no image ({', '.join(IMAGE_SUFFIXES)}) found", data_dir)
    cases = []
    for i, path in enumerate(files):
        labels = [
            label_dir / (path.stem + s) for s in IMAGE_SUFFIXES if (label_dir / (path.stem + s)).is_file()
        ]
        if not labels:
            raise InputError(f"no label for {path.name} (expected {label_dir / (path.stem + '.png')})", path)
        image = _scale_to_unit(read_slice(path))
        mask = (read_slice(labels[0]) > 0).astype(np.uint8)
        if mask.shape != image.shape:
            raise InputError(f"label shape {mask.shape} differs from the image {image.shape}", labels[0])
        cases.append(Case(path.stem, path.stem, i, image[None], mask, None))
    return cases


def load_cases(data: Path, split: str = "test") -> tuple[list[Case], str]:
    """Cases from a prepared folder or a PNG folder; returns ``(cases, kind)`` with kind ``prepared``/``png``."""
    data = Path(data)
    if is_prepared(data):
        return cases_from_prepared(data, split), "prepared"
    return cases_from_png_folder(data), "png"


def trained_with_tags(meta: dict) -> bool:
    """Whether a checkpoint's classification output was trained (weak models and mixed MSL, tag weight > 0)."""
    run_config = meta.get("run_config") or {}
    kind = str(meta.get("kind", ""))
    if kind == "weak":
        return True
    if run_config.get("mode", "mixed") != "mixed":
        return False
    return float((run_config.get("loss") or {}).get("tag_weight", 1.0)) > 0


def _overlay_rgb(image: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(C, H, W) image + masks -> (H, W, 3) uint8, reference (ground truth) outline blue, prediction outline
    green (:mod:`wiml.colors`)."""
    from skimage.segmentation import find_boundaries

    from wiml.colors import MASK_RGB, REFERENCE_RGB

    grey = image[0] if image.ndim == 3 else image
    lo, hi = np.percentile(grey, [1, 99])
    grey = np.clip((grey - lo) / (hi - lo + 1e-8), 0, 1)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)
    rgb[find_boundaries(gt > 0, mode="inner")] = REFERENCE_RGB
    rgb[find_boundaries(pred > 0, mode="inner")] = MASK_RGB
    return rgb


def write_overlay(
    path: Path, image: np.ndarray, gt: np.ndarray, pred: np.ndarray, min_side_px: int = 256
) -> Path:
    """Write an overlay PNG (ground truth blue, prediction green; :mod:`wiml.colors`) atomically, small slices enlarged
    (nearest neighbour, integer factor) to at least ``min_side_px``."""
    from PIL import Image

    rgb = enlarge_nearest(_overlay_rgb(image, gt, pred), min_side_px)
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path


def _pick_overlays(cases: list[Case], n: int) -> list[int]:
    positive = [i for i, c in enumerate(cases) if c.mask.any()] or list(range(len(cases)))
    if n <= 0 or not positive:
        return []
    picks = np.linspace(0, len(positive) - 1, min(n, len(positive))).round().astype(int)
    return sorted({positive[i] for i in picks})


def _write_csv(path: Path, rows: list[dict]) -> Path:
    return atomic_write_csv(path, rows, list(rows[0]) if rows else ["name"], float_format=".6g")


def _source_geometry(pid: str, info: dict, shown):
    """The source file's own geometry of a patient: ``source_geometry`` in ``patients.json`` (written by
    ``prepare``), else the header of the source mask or image; None when neither is available."""
    from wiml.data.io import Geometry, read_geometry

    stored = info.get("source_geometry")
    if isinstance(stored, dict):
        return Geometry(**{k: tuple(stored[k]) for k in ("size", "spacing", "origin", "direction")})
    image = info.get("image")
    for src in (info.get("mask"), image[0] if isinstance(image, list) and image else image):
        if src and Path(src).exists():
            try:
                return read_geometry(src)
            except InputError:
                continue
    logger.warning(
        "%s: patients.json has no source_geometry and the source files are gone; the NIfTI prediction is written "
        "on the prepared (reoriented) grid, origin %s, direction %s",
        pid,
        shown.origin,
        shown.direction,
    )
    return None


def write_nifti_predictions(out_dir: Path, data: Path, preds: dict[str, dict[int, np.ndarray]]) -> list[Path]:
    """Write each patient's predicted slices as a NIfTI volume on the source's own voxel grid.

    The prepared slice ``i`` of a patient is axial slice ``i`` of the volume as ``prepare`` reoriented it
    (``patients.json``: size, spacing, origin, direction); predictions are resized back to that grid
    (nearest neighbour), then reoriented back to the source file's array order and written with its size,
    spacing, origin and direction (``source_geometry``), so the file is voxel-aligned with the source image
    and label, for any orientation (oblique included). Slices that were not prepared stay 0.

    Returns:
        the written paths (empty when ``patients.json`` is absent or holds no geometry).

    Raises:
        InputError: ``patients.json`` is not valid JSON, or a grid that does not fit its source.
    """
    from skimage.transform import resize

    from wiml.data.io import Geometry, to_source_grid, write_volume

    meta_path = Path(data) / "patients.json"
    if not meta_path.is_file():
        return []
    try:
        patients = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", meta_path) from exc
    written = []
    for pid, slices in preds.items():
        info = patients.get(pid) or {}
        size = info.get("size")
        if not size or len(size) != 3 or not info.get("spacing"):
            continue
        x, y, z = (int(s) for s in size)
        vol = np.zeros((z, y, x), np.uint8)
        for idx, mask in slices.items():
            if 0 <= idx < z:
                vol[idx] = (
                    resize(mask.astype(np.float32), (y, x), order=0, preserve_range=True, anti_aliasing=False)
                    > 0.5
                )
        shown = Geometry(
            (x, y, z),
            tuple(float(v) for v in info["spacing"]),
            tuple(float(v) for v in info.get("origin") or (0.0, 0.0, 0.0)),
            tuple(float(v) for v in info.get("direction") or (1, 0, 0, 0, 1, 0, 0, 0, 1)),
        )
        source = _source_geometry(pid, info, shown)
        path = out_dir / f"{pid}.nii.gz"
        if source is None:
            write_volume(path, vol, like=shown)
        else:
            try:
                array = to_source_grid(vol, shown, source)
            except InputError as exc:
                raise InputError(f"patient {pid}: {exc}", meta_path) from exc
            write_volume(path, array, like=source)
        written.append(path)
    return written


def metrics_markdown(summary: dict) -> str:
    """The markdown table of a test ``summary`` (mean ± std of each metric per level)."""
    head = "| level | n | " + " | ".join(METRIC_NAMES) + " |"
    lines = [head, "|" + "---|" * (len(METRIC_NAMES) + 2)]
    for key, label in (
        ("per_patient", "per patient (3-D)"),
        ("per_slice_positive", "slices with target"),
        ("per_slice", "all slices"),
    ):
        stats = summary.get(key)
        if not stats:
            continue
        n = stats["dice"]["n"]
        lines.append(
            f"| {label} | {n} | " + " | ".join(format_mean_std(stats[m]) for m in METRIC_NAMES) + " |"
        )
    return "\n".join(lines) + "\n"


def evaluate(
    model,
    cases: list[Case],
    out: Path,
    config: TestConfig,
    device,
    data: Path | None = None,
    kind: str = "png",
    extra: dict | None = None,
    predictions: list[np.ndarray] | None = None,
) -> dict:
    """Predict ``cases``, compute metrics and write the test outputs (and the resolved ``config.yaml``) into
    ``out``.

    Args:
        model: FPSNet in eval mode on ``device``.
        cases: test slices (see :func:`load_cases`).
        out: output folder.
        config: thresholds, batch size, overlays.
        device: torch device.
        data: the data folder (for ``patients.json`` of volume data).
        kind: ``prepared`` or ``png``.
        extra: fields copied into ``summary.json`` (e.g. the checkpoint path).
        predictions: (H, W) masks to evaluate instead of the model's (model may then be None), e.g. the
            weak-only baseline's CAM initial masks.

    Returns:
        the summary dict also written to ``summary.json``.

    Everything is written into a staging folder beside ``out`` and moved into ``out`` only when complete
    (:func:`wiml.utils.staged_output`, ``summary.json`` last): a failure (a bad input, a full disk, a
    read-only folder) leaves ``out`` as it was, never a partial ``test/`` without ``summary.json``.

    Raises:
        InputError: predictions that do not match the cases; an unreadable ``patients.json``.
        OutputError: ``out`` cannot be written (read-only, full disk, permission), naming the path.
    """
    out = Path(out)
    with staged_output(out, last=(SUMMARY_JSON,)) as stage:
        return _evaluate(model, cases, stage, out, config, device, data, kind, extra, predictions)


def _evaluate(model, cases, out, final_out, config, device, data, kind, extra, predictions) -> dict:
    """:func:`evaluate` writing into ``out`` (the staging folder); paths in the summary point to ``final_out``."""
    from tqdm import tqdm

    from wiml.config import save_config
    from wiml.networks.inference import predict_slices

    save_config(config, out / CONFIG_YAML)
    size = config.size
    slice_rows, seconds, n_done = [], 0.0, 0
    preds: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        by_shape[c.image.shape].append(i)
    pred_masks: list[np.ndarray | None] = [None] * len(cases)
    tag_probs = np.zeros(len(cases), np.float32)
    if predictions is not None:
        if len(predictions) != len(cases):
            raise InputError(f"{len(predictions)} predictions for {len(cases)} cases")
        pred_masks = [(np.asarray(p) > 0).astype(np.uint8) for p in predictions]
        tag_probs = np.array([float(p.any()) for p in pred_masks], np.float32)
        by_shape = {}
    for idxs in by_shape.values():
        for start in tqdm(
            range(0, len(idxs), 64), desc="test", leave=False, disable=True if len(idxs) <= 64 else None
        ):
            chunk = idxs[start : start + 64]
            prob, tags, sec = predict_slices(
                model, np.stack([cases[i].image for i in chunk]), device, config.batch_size, size
            )
            seconds += sec * len(chunk)
            n_done += len(chunk)
            for j, i in enumerate(chunk):
                pred_masks[i] = (prob[j] >= config.threshold).astype(np.uint8)
                tag_probs[i] = tags[j]
                if config.gate_with_tag and tags[j] < 0.5:
                    pred_masks[i][:] = 0
    for i, c in enumerate(cases):
        sp2 = None if c.spacing_mm is None else c.spacing_mm[:2]
        m = segmentation_metrics(pred_masks[i], c.mask, sp2)
        slice_rows.append(
            {
                "name": c.name,
                "patient_id": c.patient_id,
                "slice_index": c.slice_index,
                "tag": int(c.mask.any()),
                "tag_prob": float(tag_probs[i]),
                "gt_px": int(c.mask.sum()),
                "pred_px": int(pred_masks[i].sum()),
                **m,
            }
        )
        preds[c.patient_id][c.slice_index] = pred_masks[i]
    patient_rows = []
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[c.patient_id].append(i)
    if kind == "prepared":
        for pid, idxs in groups.items():
            idxs = sorted(idxs, key=lambda i: cases[i].slice_index)
            m = volume_metrics(
                [pred_masks[i] for i in idxs], [cases[i].mask for i in idxs], cases[idxs[0]].spacing_mm
            )
            patient_rows.append({"patient_id": pid, "n_slices": len(idxs), **m})
    _write_csv(out / "per_slice.csv", slice_rows)
    if patient_rows:
        _write_csv(out / "per_patient.csv", patient_rows)
    overlay_dir = out / "overlays"
    for i in _pick_overlays(cases, config.overlays):
        write_overlay(overlay_dir / f"{cases[i].name}.png", cases[i].image, cases[i].mask, pred_masks[i])
    nifti = []
    if kind == "prepared" and config.write_nifti and data is not None:
        nifti = write_nifti_predictions(out / "predictions", data, preds)
    positive = [r for r in slice_rows if r["tag"] == 1]
    summary = {
        **(extra or {}),
        "data": str(data) if data is not None else None,
        "kind": kind,
        "threshold": config.threshold,
        "gate_with_tag": config.gate_with_tag,
        "n_slices": len(cases),
        "n_patients": len(groups),
        "seconds_per_slice": seconds / max(n_done, 1),
        "per_slice": summarize(slice_rows),
        "per_slice_positive": summarize(positive),
        "per_patient": summarize(patient_rows) if patient_rows else None,
        "nifti_predictions": [str(final_out / p.relative_to(out)) for p in nifti],
    }
    summary["headline_dice"] = (summary["per_patient"] or summary["per_slice_positive"])["dice"]["mean"]
    atomic_write_text(summary_json(out), json.dumps(_finite(summary), indent=2))
    md = [
        "# Test metrics",
        "",
        f"Checkpoint: `{(extra or {}).get('checkpoint', '?')}`  ",
        f"Data: `{data}` ({kind}, {len(cases)} slices, {len(groups)} cases), threshold {config.threshold}  ",
        f"Inference: {1000 * summary['seconds_per_slice']:.1f} ms per slice",
        "",
        metrics_markdown(summary),
        "HD95/ASD in mm (px where the data has no spacing); mean ± std (population) over the cases; "
        "surface distances are undefined (left out, see n) where exactly one of prediction and ground truth "
        "is empty.",
        "",
    ]
    atomic_write_text(out / "metrics.md", "\n".join(md))
    logger.info("test: %d slices, headline Dice %.4f -> %s", len(cases), summary["headline_dice"], final_out)
    return summary


def is_prepared(data: str | Path) -> bool:
    """Whether ``data`` is a prepared folder (holds ``manifest.csv``, or is that file) rather than PNGs."""
    data = Path(data)
    return (data / "manifest.csv").is_file() or data.name == "manifest.csv"


def resolve_test_config(config: TestConfig, meta: dict) -> TestConfig:
    """``config`` with its automatic fields filled in from a checkpoint's sidecar ``meta``.

    ``size`` None -> the size the checkpoint was trained at (``image_size`` of the sidecar or of its run
    config); ``gate_with_tag`` None -> :func:`trained_with_tags`.
    """
    trained_size = meta.get("image_size") or (meta.get("run_config") or {}).get("image_size")
    size = config.size if config.size is not None or not trained_size else int(trained_size)
    gate = trained_with_tags(meta) if config.gate_with_tag is None else config.gate_with_tag
    return dataclasses.replace(config, size=size, gate_with_tag=gate)


def evaluate_checkpoint(
    config: TestConfig, data: str | Path, checkpoint: str | Path, out: str | Path
) -> tuple[dict, list[Case]]:
    """``wiml test``: check the data, load the checkpoint, fill in the automatic settings, evaluate.

    Writes ``out/config.yaml`` (the resolved :class:`TestConfig`) and everything :func:`evaluate` writes.

    Args:
        config: test options (``size`` / ``gate_with_tag`` None = from the checkpoint).
        data: prepared folder (checked with :func:`wiml.data.check.require_valid_data`) or PNG folder with
            ``data/`` and ``label/``.
        checkpoint: FPSNet ``.safetensors``.
        out: output folder.

    Returns:
        ``(summary, cases)``: the summary written to ``summary.json`` and the evaluated cases.

    Raises:
        InputError: bad data; CheckpointError: a checkpoint of another architecture or not safetensors.
    """
    from wiml.data.check import require_valid_data
    from wiml.networks.checkpoint import load_model
    from wiml.utils import resolve_device

    data, checkpoint, out = Path(data), Path(checkpoint), Path(out)
    if is_prepared(data):
        require_valid_data(data)
    device = resolve_device(config.device)
    model, meta = load_model(checkpoint, device)
    config = resolve_test_config(config, meta)
    cases, kind = load_cases(data, config.split)
    summary = evaluate(
        model,
        cases,
        out,
        config,
        device,
        data=data,
        kind=kind,
        extra={"checkpoint": str(checkpoint), "checkpoint_kind": meta.get("kind")},
    )
    return summary, cases


def _finite(obj):
    """NaN/inf -> None so that summary.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj
