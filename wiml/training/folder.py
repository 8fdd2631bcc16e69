"""A training folder is never silently replaced: refuse, resume, or keep the previous best as ``best.vN``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from wiml.errors import InputError
from wiml.layout import TrainingLayout

logger = logging.getLogger(__name__)


def _summary(files: TrainingLayout) -> str:
    try:
        meta = json.loads(files.best_sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return files.best.name
    planned = ((meta.get("run_config") or {}).get("trainer") or {}).get("epochs")
    metrics = meta.get("metrics") or {}
    monitor = meta.get("monitor")
    value = metrics.get(f"val_{monitor}") if monitor else None
    parts = [f"epoch {meta.get('epoch')}" + (f" of {planned}" if planned else "")]
    if isinstance(value, (int, float)):
        parts.append(f"val_{monitor} {value:.4g}")
    return f"{files.best.name}, {', '.join(parts)}"


def next_version(files: TrainingLayout) -> int:
    """The smallest N >= 1 with no ``best.vN.safetensors`` / ``best.vN.json`` yet."""
    n = 1
    while files.previous_best(n).exists() or files.previous_best(n).with_suffix(".json").exists():
        n += 1
    return n


def claim_training_folder(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> Path | None:
    """Make ``out_dir`` ready for a training run without losing a trained model.

    * empty / new folder: nothing to do;
    * a folder holding a model (``best.safetensors``) or a resumable state (``state.pt``): ``resume`` continues
      it; ``overwrite`` keeps the previous best as ``best.vN.safetensors`` + ``best.vN.json`` (N = the next free
      number) and removes ``last.*``, ``state.pt``, ``log.csv`` and ``curves.png`` so the new run starts clean;
      neither is refused.

    Args:
        out_dir: the training folder (``RUN/weak``, ``RUN/msl``, ...).
        resume: continue the run in the folder.
        overwrite: train anew, keeping the previous best.

    Returns:
        the path the previous best was kept as (``overwrite``), else None.

    Raises:
        InputError: both ``resume`` and ``overwrite``; or a folder holding a model and neither given (the
            one-line message names the model and the two options).
    """
    if resume and overwrite:
        raise InputError("give --resume or --overwrite, not both")
    files = TrainingLayout(Path(out_dir))
    holds_model = files.best.is_file()
    if resume or not (holds_model or files.state.is_file()):
        return None
    if not overwrite:
        what = _summary(files) if holds_model else f"{files.state.name} of an unfinished run"
        raise InputError(
            f"holds a trained model ({what}); give --resume to continue it or --overwrite to train anew "
            "(the old best is kept as best.v1.safetensors, ...)",
            files.root,
        )
    kept = None
    if holds_model:
        n = next_version(files)
        kept = files.previous_best(n)
        os.replace(files.best, kept)
        if files.best_sidecar.is_file():
            os.replace(files.best_sidecar, kept.with_suffix(".json"))
        logger.warning("%s: --overwrite: the previous best model is kept as %s", files.root, kept.name)
    for path in (files.last, files.last_sidecar, files.state, files.log, files.curves):
        path.unlink(missing_ok=True)
    return kept
