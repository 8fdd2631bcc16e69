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
