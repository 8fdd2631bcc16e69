"""Strong labels for mixed-supervised training: K slices chosen from the ground truth, or WIA results.

* ``gt``: K training slices with the target (tag 1) are chosen (``random``: a seeded draw; ``spread``:
  evenly spaced over the training patients' positive slices in (patient, slice) order) and their
  ground-truth masks are used — the "ideal annotator" reference.
* ``wia``: ``result/strong_label/<name>.png`` made by the annotation GUI or ``wiml wia-sim`` (0/255 at the
  prepared slice's resolution), ``<name> = <patient_id>_<slice_index:04d>``; the interaction record
  ``result/recording/<name>.json`` is read when present (clicks, time) for the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wiml.data.slices import SliceRecord, load_slice
from wiml.data.wia_result import is_previous_version
from wiml.errors import InputError

logger = logging.getLogger(__name__)


def slice_name(record: SliceRecord) -> str:
    """``<patient_id>_<slice_index:04d>``, the name of a prepared slice in WIA results."""
    return f"{record.patient_id}_{record.slice_index:04d}"


def select_strong_slices(
    records: Sequence[SliceRecord], k: int, mode: str = "spread", seed: int = 0
) -> list[int]:
    """Choose ``k`` tag-positive slices to label strongly.

    Args:
        records: the training records (sorted by patient, slice as ``read_manifest`` returns them).
        k: number of slices (>= 1).
        mode: ``random`` (seeded draw without replacement) or ``spread`` (evenly spaced positions among the
            positive slices, so the picks cover patients and depths).
        seed: seed of ``random``.

    Returns:
        sorted indices into ``records``.

    Raises:
        InputError: k < 1, fewer than k positive slices, or an unknown mode.
    """
    positive = [i for i, r in enumerate(records) if r.tag == 1]
    if k >= 1 and len(positive) < k:
        raise InputError(f"only {len(positive)} training slices contain the target; cannot choose k={k}")
    return sorted(positive[i] for i in choose_k(len(positive), k, mode, seed))


def choose_k(n: int, k: int, mode: str = "spread", seed: int = 0) -> list[int]:
    """``k`` of ``n`` ordered items: ``spread`` (evenly spaced positions) or ``random`` (seeded, no repeats).

    Args:
        n: number of items.
        k: how many to choose (1 <= k <= n).
        mode: ``spread`` or ``random``.
        seed: seed of ``random``.

    Returns:
        sorted positions in ``range(n)``.

    Raises:
        InputError: k < 1, k > n, or an unknown mode.
    """
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    if n < k:
        raise InputError(f"cannot choose k={k} of {n}")
    if mode == "random":
        picks = np.random.default_rng(seed).choice(n, size=k, replace=False)
    elif mode == "spread":
        picks = np.round((np.arange(k) + 0.5) * n / k - 0.5).astype(int)
    else:
        raise InputError(f"unknown selection {mode!r}; expected random or spread")
    return sorted(int(i) for i in picks)


def gt_strong_labels(records: Sequence[SliceRecord], indices: Sequence[int]) -> dict[int, np.ndarray]:
    """Ground-truth masks of the chosen slices: ``{index: (H, W) uint8 {0, 1}}``.

    Raises:
        InputError: a chosen slice has no mask.
    """
    out = {}
    for i in indices:
        _, mask = load_slice(records[i])
        if mask is None:
            raise InputError("slice chosen for a strong label has no ground-truth mask", records[i].path)
        out[int(i)] = (mask > 0).astype(np.uint8)
    return out


def wia_strong_labels(
    records: Sequence[SliceRecord],
    result_dir: str | Path,
    all_records: Sequence[SliceRecord] | None = None,
    k: int | None = None,
    select: str = "spread",
    seed: int = 0,
) -> tuple[dict[int, np.ndarray], list[dict]]:
    """Read WIA strong labels and match them to the training records by name.

    Args:
        records: training records.
        result_dir: a WIA ``result`` folder (holding ``strong_label/``) or ``strong_label/`` itself.
        all_records: every manifest record, to name the split of a label that is not a training slice.
        k: use ``k`` of the labels found, chosen by ``select`` among them in (patient, slice) order
            (:func:`choose_k`); None = every label.
        select: ``spread`` or ``random``.
        seed: seed of ``random``.

    Returns:
        ``({index: (H, W) uint8 mask}, [recording dicts])`` of the labels used.

    Raises:
        InputError: no label found, fewer than ``k``, a label of a val/test slice (it would leak into
            training), a label that matches no slice, or a label whose size differs from the slice.
    """
    from wiml.data.io import read_slice

    result_dir = Path(result_dir)
    label_dir = result_dir if result_dir.name == "strong_label" else result_dir / "strong_label"
    if not label_dir.is_dir():
        raise InputError(
            "WIA strong_label folder not found (run `wiml wia-sim` or the annotation GUI first)", label_dir
        )
    files = sorted(
        p for p in label_dir.iterdir() if p.suffix.lower() == ".png" and not is_previous_version(p)
    )
    if not files:
        raise InputError("no strong label (*.png) found", label_dir)
    by_name = {slice_name(r): i for i, r in enumerate(records)}
    other = {slice_name(r): r.split for r in (all_records or [])}
    for path in files:
        if path.stem not in by_name:
            where = other.get(path.stem)
            reason = (
                f"it belongs to the {where!r} split and would leak into training"
                if where
                else "no prepared training slice has this name"
            )
            raise InputError(f"strong label {path.stem!r} cannot be used: {reason}", path)
    if k is not None and k != len(files):
        if len(files) < k:
            raise InputError(f"{len(files)} strong label(s) found, k={k} asked for", label_dir)
        ordered = sorted(files, key=lambda p: by_name[p.stem])
        keep = {ordered[i] for i in choose_k(len(ordered), k, select, seed)}
        logger.info("using k=%d of the %d strong labels in %s (%s)", k, len(files), label_dir, select)
        files = [p for p in files if p in keep]
    masks, recordings = {}, []
    for path in files:
        name = path.stem
        idx = by_name[name]
        mask = (read_slice(path) > 0).astype(np.uint8)
        image, _ = load_slice(records[idx])
        if mask.shape != image.shape[1:]:
            raise InputError(
                f"strong label shape {mask.shape} differs from the slice {image.shape[1:]}", path
            )
        masks[idx] = mask
        rec_path = label_dir.parent / "recording" / f"{name}.json"
        if rec_path.is_file():
            try:
                recordings.append(json.loads(rec_path.read_text(encoding="utf-8")))
            except json.JSONDecodeError:
                logger.warning("%s: unreadable interaction record, ignored", rec_path)
    return masks, recordings


def _resolved(path: str | Path) -> str:
    try:
        return str(Path(path).expanduser().resolve())
    except OSError:
        return str(path)


def annotation_strong_labels(
    records: Sequence[SliceRecord],
    result_dir: str | Path,
    all_records: Sequence[SliceRecord] | None = None,
    orient: str | None = "LPS",
) -> tuple[dict[int, np.ndarray], list[dict], dict[int, int]]:
    """Read what a person made in the annotator (its ``result/`` folder) for the prepared training slices.

    Every interaction record (``recording/<name>.json``, :class:`wiml.data.wia_result.Recording`) names the
    annotated image and slice; it is matched to the prepared slice cut from the same source (the manifest's
    ``source`` and ``slice_index``; a prepared slice NPZ annotated directly by its path). Its mask is the
    saved strong label: slice ``slice_index`` of ``strong_label/<image>.nii.gz`` (read in ``prepare``'s
    orientation) for a volume, ``strong_label/<name>.png`` for a 2-D image, resized (nearest neighbour) to the
    prepared slice's size. The tags CSVs (``tags/<image>.csv``) give the person's image tags of the slices of
    that image, which replace the tags ``prepare`` derived from the ground truth.

    Args:
        records: training records.
        result_dir: the annotator's ``result`` folder.
        all_records: every manifest record, to refuse a label of a val/test slice (it would leak).
        orient: the orientation ``prepare`` gave the volumes (its ``orient``; None = as stored).

    Returns:
        ``({index into records: (H, W) uint8 mask}, [recording dicts], {index into records: tag})``.

    Raises:
        InputError: no annotation found, a recording of a val/test slice or of no prepared slice, or a saved
            label missing for a recording.
    """
    from wiml.data.io import read_slice, read_volume, strip_suffix
    from wiml.data.prepare import resize_stack
    from wiml.data.wia_result import is_previous_version, read_recording, read_tags_csv

    result_dir = Path(result_dir)
    rec_dir = result_dir / "recording"
    files = (
        sorted(p for p in rec_dir.glob("*.json") if not is_previous_version(p)) if rec_dir.is_dir() else []
    )
    if not files:
        raise InputError(
            "no annotation found (recording/*.json); annotate and save in WIA/main.py first", rec_dir
        )
    index_of: dict[tuple[str, int], int] = {}
    for i, r in enumerate(records):
        index_of[(_resolved(r.source), int(r.slice_index))] = i
        index_of[(_resolved(r.path), -1)] = i
    other = {(_resolved(r.source), int(r.slice_index)): r.split for r in (all_records or [])}
    volumes: dict[str, np.ndarray] = {}
    masks: dict[int, np.ndarray] = {}
    recordings: list[dict] = []
    for path in files:
        rec = read_recording(path)
        image = _resolved(rec.image)
        key = (image, -1) if image.endswith(".npz") else (image, int(rec.slice_index))
        if key not in index_of:
            split = other.get(key)
            reason = (
                f"it is a slice of the {split!r} split and would leak into training"
                if split
                else "no prepared training slice comes from this image and slice (prepare the folder it is in)"
            )
            raise InputError(
                f"annotation of {rec.image} slice {rec.slice_index} cannot be used: {reason}", path
            )
        idx = index_of[key]
        stem = strip_suffix(Path(rec.image))
        volume_path = result_dir / "strong_label" / f"{stem}.nii.gz"
        if (
            not image.endswith(".npz")
            and volume_path.is_file()
            and Path(rec.image).suffix.lower()
            not in (
                ".png",
                ".jpg",
                ".jpeg",
                ".bmp",
                ".tif",
                ".tiff",
            )
        ):
            if stem not in volumes:
                volumes[stem] = (read_volume(volume_path, orient=orient).array > 0).astype(np.uint8)
            mask = volumes[stem][int(rec.slice_index)]
        else:
            png = result_dir / "strong_label" / f"{path.stem}.png"
            if not png.is_file():
                raise InputError("the saved strong label of this recording is missing", png)
            mask = (read_slice(png) > 0).astype(np.uint8)
        image_arr, _ = load_slice(records[idx])
        if mask.shape != image_arr.shape[1:]:
            if image_arr.shape[1] != image_arr.shape[2]:
                raise InputError(f"label {mask.shape} cannot be matched to slice {image_arr.shape[1:]}", path)
            mask = resize_stack(mask[None], image_arr.shape[1], is_mask=True)[0]
        masks[idx] = mask
        recordings.append(rec.to_dict())
    tags: dict[int, int] = {}
    tags_dir = result_dir / "tags"
    for csv_path in sorted(tags_dir.glob("*.csv")) if tags_dir.is_dir() else []:
        if is_previous_version(csv_path):
            continue
        stem = csv_path.stem
        person = read_tags_csv(csv_path)
        for i, r in enumerate(records):
            if strip_suffix(Path(r.source)) == stem and int(r.slice_index) in person:
                tags[i] = person[int(r.slice_index)]
    for idx, mask in masks.items():  # a strong label implies its slice's tag
        tags[idx] = int(mask.any())
    logger.info(
        "annotations: %d strong label(s), %d person tag(s) from %s", len(masks), len(tags), result_dir
    )
    return masks, recordings, tags
