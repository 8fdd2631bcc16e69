"""``wiml curve``: Dice against the number of strong labels K and against annotation cost, over patient folds.

The experiment behind the paper's headline figure (Nie et al., IEEE JBHI 2023, Fig. 1: WIML-FPSNet with
20 / 40 / 100 WIA-made strong labels against a fully supervised U-Net and Mlynarski et al.'s mixed-supervision
network), run as one resumable sweep over (fold, K, method, seed):

* **folds**: the patients are dealt into ``folds`` groups (one patient per group where there are as many
  patients as folds, e.g. BraTS 2015 here); fold ``f`` tests on group ``f``, validates (early stopping) on group
  ``f + 1`` and trains on the rest. Splits are by patient, never by slice.
* **strong labels**: for each (fold, K) the K training slices are chosen as the pipeline chooses them
  (:func:`wiml.training.strong_labels.select_strong_slices`, ``spread`` over the training patients' tumour
  slices) and a robot user (:mod:`wiml.interactive.robot`, clicks only: no weak model is trained per fold)
  makes each mask with the default refinement; its masks and interaction records are written as a WIA
  ``result`` folder (``OUT/wia/fold<f>_k<K>/``) and read back, so the cost axis counts the clicks of that run.
  ``strong_source: gt`` trains on the ground-truth masks of the same slices instead (the clicks are still
  counted, for the cost axis).
* **methods** (:data:`METHODS`), all from scratch with the same optimiser-step budget, validated every
  ``val_every_steps`` steps on the val patients (per-patient 3-D Dice) and stopped after ``patience``
  validations without improvement; the best validation checkpoint is tested.
* **external test** (optional, ``external``): a second prepared folder (e.g. the 3D-IRCADb liver volume for a
  sweep on liver_ct_slices) on which every run's best checkpoint is also tested (``ext_*`` columns); it never
  takes part in training, validation or the choice of settings.
* **output**: one row per finished run appended to ``OUT/results.csv`` (a run whose key is there is skipped,
  so the sweep can be stopped and restarted at any point; an interrupted training resumes from its
  ``state.pt``), ``OUT/summary.md`` (mean ± std over folds and seeds), ``OUT/dice_vs_k.png`` and
  ``OUT/dice_vs_cost.png``.

Annotation cost of a run, in seconds of a person's work (:class:`CostConfig`): tags x ``seconds_per_tag`` +
robot clicks x ``seconds_per_click`` for the strong labels; full supervision: every tumour slice's mask drawn
by hand (``seconds_per_manual_label``) + a tag for each empty slice.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Literal

import numpy as np

from wiml.config import save_config, to_dict
from wiml.data.slices import SliceRecord, load_slices, read_manifest
from wiml.errors import ConfigError, InputError
from wiml.experiments.wia_sim import WiaSimConfig
from wiml.layout import TrainingLayout
from wiml.training.msl import MSLConfig
from wiml.utils import atomic_write_text, pyplot, save_figure

logger = logging.getLogger(__name__)

#: what each method changes in the shared MSL config (every method starts from scratch)
METHOD_SETTINGS: dict[str, dict] = {
    "wiml": {"mode": "mixed", "head": "fps"},  # FPSNet: tags + K strong labels, full parameter sharing
    "strong_only": {"mode": "strong_only", "head": "fps"},  # the K strong labels alone
    # Mlynarski et al. (Comput. Med. Imaging Graph. 2019) style: the same mixed loss, but the image-level
    # classification is a separate branch (on the bottleneck) instead of FPSNet's shared full-resolution path
    "mlynarski": {"mode": "mixed", "head": "separate"},
    "full": {"mode": "full", "head": "fps"},  # every training slice's ground-truth mask
    # variant: a tag of 0 also supervises the segmentation of that slice as empty (loss.negative_weight 1)
    "wiml_neg": {"mode": "mixed", "head": "fps", "negative_weight": 1.0},
    # variants: half of every batch strong slices (instead of msl.strong_per_batch), so that under the same step
    # budget each strong label is seen twice as often (the exposure strong-only has is 4x at 2 of 8)
    "wiml_half_strong": {"mode": "mixed", "head": "fps", "half_strong": True},
    "wiml_neg_half_strong": {"mode": "mixed", "head": "fps", "negative_weight": 1.0, "half_strong": True},
}

METHODS = tuple(METHOD_SETTINGS)

CSV_COLUMNS = (
    "dataset",
    "fold",
    "test_patients",
    "val_patients",
    "k",
    "method",
    "seed",
    "strong_source",
    "n_train_slices",
    "n_train_positive",
    "n_strong",
    "strong_clicks",
    "strong_label_dice",
    "cost_s",
    "steps_budget",
    "steps_done",
    "best_step",
    "best_val_dice",
    "test_dice",
    "test_hd95_mm",
    "gate_with_tag",
    "train_s",
    "finished_utc",
    "ext_dataset",
    "ext_test_dice",
    "ext_test_hd95_mm",
    "ext_test_dice_ungated",
)


@dataclasses.dataclass
class CostConfig:
    """Seconds of a person's work per unit of annotation (the cost axis).

    Attributes:
        seconds_per_tag: one image tag (a yes/no look at a slice).
        seconds_per_click: one WIA click (look at the mask, click on the largest error).
        seconds_per_manual_label: one strong label drawn by hand (full supervision).
    """

    seconds_per_tag: float = 1.0
    seconds_per_click: float = 2.0
    seconds_per_manual_label: float = 108.0


@dataclasses.dataclass
class CurveConfig:
    """``wiml curve``: the sweep.

    Attributes:
        folds: number of patient groups (one fold per group).
        run_folds: folds to run (None = all).
        k_values: numbers of strong labels.
        methods: names from :data:`METHODS` (``full`` ignores K and runs once per fold and seed).
        seeds: training seeds.
        steps: optimiser steps per run (the same budget for every method).
        val_every_steps: steps between validations (= one trainer epoch of ``val_every_steps x batch_size``
            slices).
        patience: stop after this many validations without a better val Dice (0 = never).
        strong_source: ``wia`` (robot-made masks) or ``gt`` (ground truth of the same slices).
        device: ``auto`` | ``cpu`` | ``cuda``.
        msl: the training settings shared by every method (``trainer.epochs``, ``samples_per_epoch``,
            ``val_every`` and ``patience`` are set from the fields above; ``mode``, ``init`` and
            ``model.head`` per method).
        robot: robot-user settings (``max_clicks``, ``target_dice``, ``channel``, ``window_percentiles``,
            ``refinement``); its ``split``/``select``/``jitter_px`` fields are not used.
        cost: seconds per tag / click / manual label.
        order: ``fold`` or ``k``: the order of the runs (:func:`plan_runs`).
    """

    folds: int = 5
    run_folds: list[int] | None = None
    k_values: list[int] = dataclasses.field(default_factory=lambda: [5, 20])
    methods: list[str] = dataclasses.field(
        default_factory=lambda: ["wiml", "strong_only", "mlynarski", "full"]
    )
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    steps: int = 1200
    val_every_steps: int = 50
    patience: int = 8
    strong_source: Literal["wia", "gt"] = "wia"
    device: str = "auto"
    msl: MSLConfig = dataclasses.field(default_factory=MSLConfig)
    robot: WiaSimConfig = dataclasses.field(default_factory=WiaSimConfig)
    cost: CostConfig = dataclasses.field(default_factory=CostConfig)
    order: Literal["fold", "k"] = "fold"

    def validate(self) -> CurveConfig:
        """Check ranges and names.

        Raises:
            ConfigError: an unknown method, an empty list, or a value out of range.
        """
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"curve.methods: unknown {unknown}; expected some of {list(METHODS)}")
        if not self.methods or not self.seeds:
            raise ConfigError("curve.methods and curve.seeds must not be empty")
        if any(m != "full" for m in self.methods) and (not self.k_values or min(self.k_values) < 1):
            raise ConfigError(f"curve.k_values must be >= 1, got {self.k_values}")
        if self.folds < 3:
            raise ConfigError(f"curve.folds must be >= 3 (test, val and train groups), got {self.folds}")
        if self.run_folds is not None and any(not 0 <= f < self.folds for f in self.run_folds):
            raise ConfigError(f"curve.run_folds must lie in [0, {self.folds}), got {self.run_folds}")
        if self.steps < 1 or self.val_every_steps < 1 or self.patience < 0:
            raise ConfigError("curve.steps and curve.val_every_steps must be >= 1, curve.patience >= 0")
        for name in ("seconds_per_tag", "seconds_per_click", "seconds_per_manual_label"):
            if getattr(self.cost, name) < 0:
                raise ConfigError(f"curve.cost.{name} must be >= 0")
        return self

    def fingerprint(self) -> str:
        """SHA-256 of the settings that change a run's result (not the lists of folds / K / methods / seeds,
        which only choose which runs exist), so a results.csv is never extended with other settings."""
        keep = {
            k: v
            for k, v in to_dict(self).items()
            if k not in ("run_folds", "k_values", "methods", "seeds", "device", "cost", "order")
        }
        # the runner sets the splits, the strong labels and the init itself: those MSL fields are not used
        keep["msl"] = {k: v for k, v in keep["msl"].items() if k not in ("strong", "data", "init_checkpoint")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Fold:
    """One patient-level split of the cross-validation.

    Attributes:
        index: fold number.
        test: test patient ids.
        val: validation patient ids.
        train: training patient ids.
    """

    index: int
    test: tuple[str, ...]
    val: tuple[str, ...]
    train: tuple[str, ...]


def make_folds(patient_ids: list[str], n_folds: int) -> list[Fold]:
    """Deal sorted patients into ``n_folds`` groups; fold f tests on group f, validates on group f + 1.

    Args:
        patient_ids: the patients (any order; duplicates ignored).
        n_folds: number of groups (>= 3).

    Returns:
        ``n_folds`` folds; every patient is a test patient in exactly one of them.

    Raises:
        InputError: fewer patients than folds or fewer than 3 folds.
    """
    patients = sorted(set(patient_ids))
    if n_folds < 3 or len(patients) < n_folds:
        raise InputError(
            f"need >= 3 folds and at least one patient per fold; got {len(patients)} patients, {n_folds} folds"
        )
    groups = [tuple(g.tolist()) for g in np.array_split(np.array(patients, dtype=object), n_folds)]
    folds = []
    for f in range(n_folds):
        val_g = (f + 1) % n_folds
        train = tuple(p for g in range(n_folds) if g not in (f, val_g) for p in groups[g])
        folds.append(Fold(f, groups[f], groups[val_g], train))
    return folds


def fold_records(records: list[SliceRecord], fold: Fold) -> dict[str, list[SliceRecord]]:
    """The records of a fold with their ``split`` field set (``train``/``val``/``test``), in manifest order."""
    where = {
        **{p: "train" for p in fold.train},
        **{p: "val" for p in fold.val},
        **{p: "test" for p in fold.test},
    }
    out: dict[str, list[SliceRecord]] = {"train": [], "val": [], "test": []}
    for r in records:
        split = where[r.patient_id]
        out[split].append(dataclasses.replace(r, split=split))
    return out


def annotation_cost_s(method: str, n_train: int, n_positive: int, clicks: int, cost: CostConfig) -> float:
    """Seconds of annotation behind one run (see the module docstring).

    Args:
        method: a name from :data:`METHODS`.
        n_train: training slices (each gets a tag in the mixed methods).
        n_positive: training slices with the target (full supervision draws each by hand).
        clicks: robot clicks spent on the K strong labels.
        cost: seconds per unit.

    Returns:
        seconds.
    """
    if method == "full":
        return n_positive * cost.seconds_per_manual_label + (n_train - n_positive) * cost.seconds_per_tag
    strong = clicks * cost.seconds_per_click
    if METHOD_SETTINGS[method]["mode"] == "mixed":
        return n_train * cost.seconds_per_tag + strong
    return strong


def read_results(path: Path) -> list[dict]:
    """Rows of ``results.csv`` (empty list when absent). A last line cut short by an interruption is dropped."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if r.get("finished_utc")]


def _append_row(path: Path, row: dict) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    fields = list(CSV_COLUMNS)
    if (
        not new
    ):  # a results.csv written before a column was added keeps its header (the new column is dropped)
        with path.open(newline="", encoding="utf-8") as fh:
            fields = next(csv.reader(fh), fields)
        dropped = [k for k, v in row.items() if k not in fields and v not in ("", None)]
        if dropped:
            logger.warning("%s has no column for %s (an older results.csv); not recorded", path, dropped)
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        fh.flush()


def run_key(fold: int, k: int | str, method: str, seed: int) -> tuple[str, str, str, str]:
    """The key that identifies a run in ``results.csv``."""
    return (str(fold), str(k), method, str(seed))


def robot_strong_labels(
    train: list[SliceRecord],
    arrays: dict,
    k: int,
    robot: WiaSimConfig,
    result_dir: Path,
) -> tuple[dict[int, np.ndarray], list[dict], dict[int, np.ndarray]]:
    """Make (or read back) the K robot-WIA strong labels of a fold's training slices.

    The K slices are :func:`~wiml.training.strong_labels.select_strong_slices` (``spread``); the robot user
    refines each from an empty mask (clicks only) until ``robot.target_dice`` or ``robot.max_clicks``; the
    masks and interaction records are written to ``result_dir`` (a WIA ``result`` folder) and read back.

    Returns:
        (robot masks ``{train index: (H, W) uint8}``, interaction records, ground-truth masks of the same
        slices).

    Raises:
        InputError: fewer than K tumour slices among the training slices.
    """
    from wiml.experiments.wia_sim import refinement_image, write_wia_result
    from wiml.interactive.robot import simulate
    from wiml.training.strong_labels import select_strong_slices, slice_name, wia_strong_labels

    picks = select_strong_slices(train, k, "spread")
    gts = {i: (arrays[train[i].path][1] > 0).astype(np.uint8) for i in picks}
    missing = [i for i in picks if not (result_dir / "recording" / f"{slice_name(train[i])}.json").is_file()]
    if missing:
        session = robot.refinement.make_session()
        for i in missing:
            image = arrays[train[i].path][0]
            session.set_image(refinement_image(image, robot.channel, robot.window_percentiles), None)
            result = simulate(session, gts[i], robot.max_clicks, robot.target_dice)
            write_wia_result(result_dir, train[i], result)
    masks, recordings = wia_strong_labels([train[i] for i in picks], result_dir)
    masks = {picks[j]: m for j, m in masks.items()}
    return masks, recordings, gts


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * (a & b).sum() / s)


def _msl_config(config: CurveConfig, method: str, seed: int) -> MSLConfig:
    base = config.msl
    s = METHOD_SETTINGS[method]
    batch = base.trainer.batch_size
    trainer = dataclasses.replace(
        base.trainer,
        epochs=math.ceil(config.steps / config.val_every_steps),
        samples_per_epoch=config.val_every_steps * batch,
        val_every=1,
        patience=config.patience,
        seed=seed,
        device=config.device,
        monitor="dice",
        monitor_mode="max",
    )
    model = dataclasses.replace(base.model, head=s["head"])
    loss = dataclasses.replace(base.loss, negative_weight=s.get("negative_weight", base.loss.negative_weight))
    strong_per_batch = max(1, batch // 2) if s.get("half_strong") else base.strong_per_batch
    return dataclasses.replace(
        base,
        trainer=trainer,
        model=model,
        loss=loss,
        mode=s["mode"],
        init="scratch",
        strong_per_batch=strong_per_batch,
    )


def run_one(
    config: CurveConfig,
    dataset: str,
    fold: Fold,
    split: dict[str, list[SliceRecord]],
    arrays: dict,
    k: int | None,
    method: str,
    seed: int,
    folder: Path,
    strong: tuple[dict, list, dict] | None,
    data: Path,
    external: tuple[str, list[SliceRecord], dict] | None = None,
) -> dict:
    """Train and test one (fold, K, method, seed) and return its ``results.csv`` row.

    ``external`` = (name, records, arrays) of an external test set, tested as well (``ext_*`` columns)."""
    from wiml.evaluation.evaluate import Case, TestConfig, evaluate, trained_with_tags
    from wiml.networks.checkpoint import load_model
    from wiml.training.msl import train_msl
    from wiml.utils import resolve_device

    msl = _msl_config(config, method, seed)
    train, val, test = split["train"], split["val"], split["test"]
    n_pos = sum(r.tag for r in train)
    masks, recordings, gts = strong if strong is not None else ({}, [], {})
    if config.strong_source == "gt":
        masks = gts
    clicks = sum(len(r.get("clicks", [])) for r in recordings)
    label_dice = [_dice(masks[i], gts[i]) for i in masks] if strong is not None else []
    t0 = time.perf_counter()
    train_dir = folder / "train"
    resume = TrainingLayout(train_dir).state.is_file()
    summary = train_msl(
        msl,
        data,
        train_dir,
        resume=resume,
        records=(train, val),
        strong_labels=(masks, recordings) if method != "full" else None,
        arrays=arrays,
    )
    train_s = time.perf_counter() - t0
    device = resolve_device(config.device)
    model, meta = load_model(TrainingLayout(train_dir).best, device)
    model.eval()
    gate = trained_with_tags(meta)

    def test_on(recs: list[SliceRecord], arrs: dict, out: Path, gate: bool = gate) -> dict:
        cases = [
            Case(
                f"{r.patient_id}_{r.slice_index:04d}",
                r.patient_id,
                r.slice_index,
                arrs[r.path][0],
                (arrs[r.path][1] > 0).astype(np.uint8),
                r.spacing_mm,
            )
            for r in recs
        ]
        result = evaluate(
            model,
            cases,
            out,
            TestConfig(overlays=0, write_nifti=False, gate_with_tag=gate),
            device,
            kind="prepared",
            extra={"method": method, "fold": fold.index, "k": k, "seed": seed},
        )
        return result["per_patient"]

    pp = test_on(test, arrays, folder / "test")
    ext: dict = {"ext_dataset": "", "ext_test_dice": "", "ext_test_hd95_mm": "", "ext_test_dice_ungated": ""}
    if external is not None:
        ext_name, ext_records, ext_arrays = external
        epp = test_on(ext_records, ext_arrays, folder / "test_external")
        # a tag head trained on crops or another scanner may be miscalibrated on the external slices: the
        # segmentation output alone is recorded too (the same number for the methods without a tag gate)
        upp = test_on(ext_records, ext_arrays, folder / "test_external_ungated", False) if gate else epp
        ext = {
            "ext_dataset": ext_name,
            "ext_test_dice": float(epp["dice"]["mean"]),
            "ext_test_hd95_mm": float(epp["hd95_mm"]["mean"]) if epp["hd95_mm"].get("n") else float("nan"),
            "ext_test_dice_ungated": float(upp["dice"]["mean"]),
        }
    steps_per_epoch = config.val_every_steps
    return {
        "dataset": dataset,
        "fold": fold.index,
        "test_patients": " ".join(fold.test),
        "val_patients": " ".join(fold.val),
        "k": "all" if method == "full" else k,
        "method": method,
        "seed": seed,
        "strong_source": "gt-all" if method == "full" else config.strong_source,
        "n_train_slices": len(train),
        "n_train_positive": n_pos,
        "n_strong": n_pos if method == "full" else len(masks),
        "strong_clicks": "" if method == "full" else clicks,
        "strong_label_dice": float(np.mean(label_dice)) if label_dice else "",
        "cost_s": annotation_cost_s(method, len(train), n_pos, clicks, config.cost),
        "steps_budget": config.steps,
        "steps_done": int(summary["epochs_done"]) * steps_per_epoch,
        "best_step": int(summary["best_epoch"]) * steps_per_epoch,
        "best_val_dice": float("nan") if summary.get("best_dice") is None else float(summary["best_dice"]),
        "test_dice": float(pp["dice"]["mean"]),
        "test_hd95_mm": float(pp["hd95_mm"]["mean"]) if pp["hd95_mm"].get("n") else float("nan"),
        "gate_with_tag": gate,
        "train_s": train_s,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **ext,
    }


def plan_runs(config: CurveConfig) -> list[tuple[int, int | None, str, int]]:
    """The (fold, K, method, seed) runs of a sweep, in the order they run; ``full`` once per fold and seed
    (K None).

    ``order: fold``: fold by fold (a sweep cut short covers whole folds), K ascending, methods in the configured
    order. ``order: k``: ``full`` on every fold first, then K ascending, each K on every fold (a sweep cut short
    covers every patient for the smaller K). Seeds outermost in both.
    """
    folds = config.run_folds if config.run_folds is not None else list(range(config.folds))
    ks = sorted(config.k_values)
    mixed = [m for m in config.methods if m != "full"]
    full = "full" in config.methods
    out = []
    for seed in config.seeds:
        if config.order == "fold":
            for f in folds:
                out += [(f, k, m, seed) for k in ks for m in mixed]
                out += [(f, None, "full", seed)] if full else []
        else:
            out += [(f, None, "full", seed) for f in folds] if full else []
            out += [(f, k, m, seed) for k in ks for f in folds for m in mixed]
    return out


def run_curve(
    config: CurveConfig,
    data: Path,
    out: Path,
    dataset: str | None = None,
    external: Path | None = None,
) -> list[dict]:
    """Run (or resume) the sweep and write the table and plots.

    Args:
        config: the sweep (validated here).
        data: prepared folder (``manifest.csv``); its own split column is ignored (the folds replace it).
        out: output folder (``results.csv``, ``curve_config.yaml``, ``summary.md``, plots, ``runs/``, ``wia/``).
        dataset: name in the CSV (default: the data folder's name).
        external: a prepared folder every run is also tested on (every slice with a mask, whatever its
            split), e.g. the IRCADb volume for a liver sweep; None = none.

    Returns:
        every row of ``results.csv`` (earlier runs included).

    Raises:
        ConfigError: a bad config, or ``out`` holds results made with other settings.
        InputError: unreadable data, too few patients or tumour slices.
    """
    from tqdm import tqdm

    config.validate()
    data, out = Path(data), Path(out)
    dataset = dataset or data.name
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "fingerprint.txt"
    fp = config.fingerprint()
    if stamp.is_file() and stamp.read_text().strip() != fp:
        raise ConfigError(
            "this folder holds results made with other settings (fingerprint "
            f"{stamp.read_text().strip()}, now {fp}); use another --out or restore curve_config.yaml",
            out,
        )
    atomic_write_text(stamp, fp + "\n")
    save_config(config, out / "curve_config.yaml")
    records = [r for r in read_manifest(data) if r.has_mask]
    if not records:
        raise InputError("no slice with a ground-truth mask", data / "manifest.csv")
    folds = make_folds([r.patient_id for r in records], config.folds)
    logger.info("curve: loading %d slices into memory", len(records))
    arrays = load_slices(records)
    ext = None
    if external is not None:
        external = Path(external)
        ext_records = [r for r in read_manifest(external) if r.has_mask]
        if not ext_records:
            raise InputError("no slice with a ground-truth mask", external / "manifest.csv")
        ext = (external.name, ext_records, load_slices(ext_records))
        logger.info("curve: external test set %s (%d slices)", external, len(ext_records))
    csv_path = out / "results.csv"
    done = {run_key(r["fold"], r["k"], r["method"], r["seed"]) for r in read_results(csv_path)}
    plan = plan_runs(config)
    todo = [p for p in plan if run_key(p[0], "all" if p[1] is None else p[1], p[2], p[3]) not in done]
    logger.info(
        "curve: %d runs planned, %d done, %d to do -> %s", len(plan), len(plan) - len(todo), len(todo), out
    )
    strong_cache: dict[tuple[int, int], tuple] = {}
    for f, k, method, seed in tqdm(todo, desc="curve", unit="run", disable=None):
        fold = folds[f]
        split = fold_records(records, fold)
        strong = None
        if method != "full":
            if (f, k) not in strong_cache:
                strong_cache[(f, k)] = robot_strong_labels(
                    split["train"], arrays, k, config.robot, out / "wia" / f"fold{f}_k{k}"
                )
            strong = strong_cache[(f, k)]
        kname = "all" if k is None else f"k{k}"
        folder = out / "runs" / f"fold{f}" / kname / method / f"seed{seed}"
        row = run_one(config, dataset, fold, split, arrays, k, method, seed, folder, strong, data, ext)
        _append_row(csv_path, row)
        logger.info(
            "curve: fold %d %s %s seed %d: test Dice %.4f (best val %.4f at step %d, %.0f s)",
            f,
            kname,
            method,
            seed,
            row["test_dice"],
            row["best_val_dice"],
            row["best_step"],
            row["train_s"],
        )
    rows = read_results(csv_path)
    write_summary(rows, out, config.cost, config.val_every_steps)
    return rows


def diagnose_val(
    out: Path, data: Path, k: int, methods: list[str] | None = None, seed: int = 0, device: str = "cpu"
) -> list[dict]:
    """Why a method scores what it scores, measured on each fold's **validation** patients only: the best
    checkpoint of every finished (fold, K, method, seed) run under ``out/runs`` re-run on the val slices.

    Per run: ``dice_gated`` / ``dice_ungated`` (pooled over the val slices: tag-gated as the mixed methods are
    tested, and the segmentation output alone), ``fp_px_on_tag0`` (foreground pixels predicted on the slices
    without the target, ungated), ``tag0_slices_with_fp`` of ``n_tag0``, ``tag_accuracy`` (tag probability
    >= 0.5 against the slice's ground truth; empty for a model trained without tags) and ``recall``.
    Written to ``out/val_diag_k<K>.csv``.

    Args:
        out: the sweep folder (``curve_config.yaml``, ``runs/``).
        data: the prepared folder the sweep ran on.
        k: the K whose runs are diagnosed (full supervision is added as the reference).
        methods: methods to include (default: every method with a finished run at that K, and ``full``).
        seed: training seed of the runs.
        device: where to run the models.

    Returns:
        the CSV rows.

    Raises:
        InputError: no finished run to diagnose.
    """
    from wiml.config import load_config
    from wiml.networks.checkpoint import load_model
    from wiml.networks.inference import predict_slices

    out, data = Path(out), Path(data)
    config = load_config(CurveConfig, out / "curve_config.yaml")
    records = [r for r in read_manifest(data) if r.has_mask]
    folds = make_folds([r.patient_id for r in records], config.folds)
    arrays = load_slices(records)
    names = methods or sorted({p.parent.parent.name for p in out.glob(f"runs/fold*/k{k}/*/seed{seed}/train")})
    names = list(names) + (["full"] if "full" not in names else [])
    rows = []
    for fold in folds:
        val = fold_records(records, fold)["val"]
        x = np.stack([arrays[r.path][0] for r in val])
        gt = np.stack([arrays[r.path][1] > 0 for r in val])
        has = gt.reshape(len(val), -1).any(1)
        for method in names:
            kname = "all" if method == "full" else f"k{k}"
            ckpt = TrainingLayout(
                out / "runs" / f"fold{fold.index}" / kname / method / f"seed{seed}" / "train"
            )
            if not ckpt.best.is_file():
                continue
            model, meta = load_model(ckpt.best, device)
            model.eval()
            prob, tag_prob, _ = predict_slices(model, x, device, config.msl.trainer.batch_size)
            pred = prob >= 0.5
            with_tags = METHOD_SETTINGS.get(method, {}).get("mode") == "mixed"
            gated = pred & (tag_prob >= 0.5)[:, None, None] if with_tags else pred
            rows.append(
                {
                    "fold": fold.index,
                    "val_patients": " ".join(fold.val),
                    "method": method,
                    "k": "all" if method == "full" else k,
                    "dice_gated": _dice(gated, gt),
                    "dice_ungated": _dice(pred, gt),
                    "fp_px_on_tag0": int(pred[~has].sum()),
                    "tag0_slices_with_fp": int(pred[~has].reshape(int((~has).sum()), -1).any(1).sum()),
                    "n_tag0": int((~has).sum()),
                    "tag_accuracy": float(((tag_prob >= 0.5) == has).mean()) if with_tags else "",
                    "recall": float((pred & gt).sum() / max(int(gt.sum()), 1)),
                }
            )
    if not rows:
        raise InputError(f"no finished run with K = {k} and seed {seed} to diagnose", out / "runs")
    path = out / f"val_diag_k{k}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({c: (f"{v:.6g}" if isinstance(v, float) else v) for c, v in r.items()} for r in rows)
    return rows


def diagnosis_table(rows: list[dict]) -> list[str]:
    """Markdown lines: :func:`diagnose_val` rows averaged over folds per method."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    lines = [
        "| method | K | folds | val Dice, tag-gated | val Dice, segmentation alone | FP px on tag-0 slices | "
        "tag-0 slices with FP | tag accuracy | recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, rs in by.items():
        acc = [_float(r["tag_accuracy"]) for r in rs]
        acc_s = f"{np.nanmean(acc):.2f}" if np.isfinite(acc).any() else "-"
        lines.append(
            f"| {method} | {rs[0]['k']} | {len(rs)} | {np.mean([_float(r['dice_gated']) for r in rs]):.3f} | "
            f"{np.mean([_float(r['dice_ungated']) for r in rs]):.3f} | "
            f"{np.mean([_float(r['fp_px_on_tag0']) for r in rs]):,.0f} | "
            f"{np.mean([_float(r['tag0_slices_with_fp']) for r in rs]):.0f} of "
            f"{np.mean([_float(r['n_tag0']) for r in rs]):.0f} | {acc_s} | "
            f"{np.mean([_float(r['recall']) for r in rs]):.3f} |"
        )
    return lines


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean ± std (population) over folds and seeds per (method, K).

    Returns:
        one dict per (method, K): method, k, n, dice_mean, dice_std, hd95_mean, cost_mean_s, clicks_mean,
        label_dice_mean, folds, seeds, best_step_mean, and the external test's ext_dice_mean / ext_dice_std /
        ext_ungated_mean / ext_ungated_std (nan without one); sorted by method then K.
    """
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], str(r["k"]))].append(r)

    def korder(k: str) -> float:
        return math.inf if k == "all" else float(k)

    out = []
    for (method, k), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], korder(kv[0][1]))):
        dice = np.array([_float(r["test_dice"]) for r in rs])
        hd = np.array([_float(r["test_hd95_mm"]) for r in rs])
        clicks = np.array([_float(r["strong_clicks"]) for r in rs])
        ldice = np.array([_float(r["strong_label_dice"]) for r in rs])
        ext = {}
        for col, name in (("ext_test_dice", "ext_dice"), ("ext_test_dice_ungated", "ext_ungated")):
            v = np.array([_float(r.get(col)) for r in rs])
            v = v[np.isfinite(v)]
            ext[f"{name}_mean"] = float(v.mean()) if v.size else float("nan")
            ext[f"{name}_std"] = float(v.std()) if v.size else float("nan")
        out.append(
            {
                "method": method,
                "k": k,
                "n": len(rs),
                "dice_mean": float(np.nanmean(dice)),
                "dice_std": float(np.nanstd(dice)),
                "hd95_mean": float(np.nanmean(hd)) if np.isfinite(hd).any() else float("nan"),
                "cost_mean_s": float(np.mean([_float(r["cost_s"]) for r in rs])),
                "clicks_mean": float(np.nanmean(clicks)) if np.isfinite(clicks).any() else float("nan"),
                "label_dice_mean": float(np.nanmean(ldice)) if np.isfinite(ldice).any() else float("nan"),
                "folds": sorted({int(r["fold"]) for r in rs}),
                "seeds": sorted({int(r["seed"]) for r in rs}),
                "best_step_mean": float(np.mean([_float(r["best_step"]) for r in rs])),
                **ext,
            }
        )
    return out


def summary_table(groups: list[dict]) -> list[str]:
    """Markdown table lines of :func:`aggregate`'s output (with external-test columns when any run has one)."""
    with_ext = any(math.isfinite(g.get("ext_dice_mean", math.nan)) for g in groups)
    ext_head = " external test Dice | external, segmentation alone |" if with_ext else ""
    lines = [
        "| method | K | runs (folds, seeds) | test Dice mean ± std | HD95 mm | robot clicks (all K labels) | "
        "strong-label Dice | cost s | best step (mean) |" + ext_head,
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if with_ext else ""),
    ]

    def pm(g: dict, name: str) -> str:
        m = g.get(f"{name}_mean", math.nan)
        return "" if not math.isfinite(m) else f"{m:.3f} ± {g[f'{name}_std']:.3f}"

    for g in groups:
        clicks = "" if not math.isfinite(g["clicks_mean"]) else f"{g['clicks_mean']:.1f}"
        ld = "" if not math.isfinite(g["label_dice_mean"]) else f"{g['label_dice_mean']:.3f}"
        lines.append(
            f"| {g['method']} | {g['k']} | {g['n']} ({len(g['folds'])}, {len(g['seeds'])}) | "
            f"{g['dice_mean']:.3f} ± {g['dice_std']:.3f} | {g['hd95_mean']:.1f} | {clicks} | {ld} | "
            f"{g['cost_mean_s']:.0f} | {g['best_step_mean']:.0f} |"
            + (f" {pm(g, 'ext_dice')} | {pm(g, 'ext_ungated')} |" if with_ext else "")
        )
    return lines


#: short names of the methods in the paired comparisons
SHORT_NAMES = {
    "wiml": "WIML",
    "strong_only": "strong-only",
    "mlynarski": "Mlynarski-style",
    "full": "full",
    "wiml_neg": "WIML+neg",
    "wiml_half_strong": "WIML half-strong",
    "wiml_neg_half_strong": "WIML+neg half-strong",
}


def paired_comparisons(rows: list[dict], column: str = "test_dice") -> list[dict]:
    """Per-fold paired comparisons (same fold and seed) at each K: every mixed method (WIML and its variants)
    - strong-only and / full, and WIML - Mlynarski-style.

    Args:
        rows: ``results.csv`` rows.
        column: the Dice column compared (``test_dice``, ``ext_test_dice`` or ``ext_test_dice_ungated``).

    Returns:
        dicts with ``k``, ``comparison`` (e.g. ``WIML - strong-only``, ``WIML / full``), ``n`` (pairs), ``mean``,
        ``std`` (population), ``values`` (by fold and seed).
    """
    dice = {(r["fold"], r["seed"], str(r["k"]), r["method"]): _float(r.get(column)) for r in rows}
    ks = sorted({str(r["k"]) for r in rows if str(r["k"]) != "all"}, key=float)
    present = {r["method"] for r in rows}
    mixed = [
        m for m in METHODS if m in present and METHOD_SETTINGS[m]["mode"] == "mixed" and m != "mlynarski"
    ]
    pairs = [(m, "strong_only", False) for m in mixed] + [("wiml", "mlynarski", False)]
    pairs += [(m, "full", True) for m in mixed]
    out = []
    for k in ks:
        for method, other, ratio in pairs:
            vals = []
            for (f, seed, kk, m), v in sorted(dice.items()):
                if kk != k or m != method:
                    continue
                ref = dice.get((f, seed, "all" if other == "full" else k, other))
                if ref is not None and math.isfinite(ref) and math.isfinite(v) and (ref > 0 or not ratio):
                    vals.append(v / ref if ratio else v - ref)
            if vals:
                out.append(
                    {
                        "k": k,
                        "comparison": f"{SHORT_NAMES[method]} {'/' if ratio else '-'} {SHORT_NAMES[other]}",
                        "n": len(vals),
                        "mean": float(np.mean(vals)),
                        "std": float(np.std(vals)),
                        "values": [round(v, 4) for v in vals],
                    }
                )
    return out


def write_summary(rows: list[dict], out: Path, cost: CostConfig, val_every_steps: int | None = None) -> dict:
    """``summary.md``, ``summary.json``, ``dice_vs_k.png``, ``dice_vs_cost.png`` and (with
    ``val_every_steps``) ``learning_curves.png`` from the CSV rows and the runs' ``log.csv``."""
    out = Path(out)
    groups = aggregate(rows)
    md = [
        "# Dice vs strong labels K and annotation cost",
        "",
        f"{len(rows)} runs; test Dice = per-patient 3-D Dice of the fold's test patients; mean ± std (population) "
        "over folds and seeds.",
        f"Cost: {cost.seconds_per_tag:g} s per tag, {cost.seconds_per_click:g} s per robot click, "
        f"{cost.seconds_per_manual_label:g} s per hand-drawn mask (full supervision).",
        "",
        *summary_table(groups),
        "",
    ]
    paired_by: dict[str, list[dict]] = {}
    for column, title in (
        ("test_dice", "test patients of the fold"),
        ("ext_test_dice", "external test set"),
        ("ext_test_dice_ungated", "external test set, segmentation alone (no tag gate)"),
    ):
        paired = paired_comparisons(rows, column)
        paired_by[column] = paired
        if paired:
            md += [
                f"Paired by fold and seed, {title} (`{column}`):",
                "",
                "| K | comparison | pairs | mean ± std | per (fold, seed) |",
                "|---|---|---|---|---|",
                *(
                    f"| {p['k']} | {p['comparison']} | {p['n']} | {p['mean']:+.3f} ± {p['std']:.3f} | "
                    f"{', '.join(f'{v:.3f}' for v in p['values'])} |"
                    for p in paired
                ),
                "",
            ]
    atomic_write_text(out / "summary.md", "\n".join(md))
    summary = {"groups": groups, "paired": paired_by["test_dice"], "paired_by_column": paired_by}
    summary["cost"] = to_dict(cost)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    if groups:
        plot_curves(groups, out / "dice_vs_k.png", out / "dice_vs_cost.png")
        if any(math.isfinite(g["ext_dice_mean"]) for g in groups):
            for key, stem, what in (
                ("ext_dice", "external", "external test set"),
                ("ext_ungated", "external_ungated", "external test set, segmentation alone"),
            ):
                plot_curves(
                    groups, out / f"dice_vs_k_{stem}.png", out / f"dice_vs_cost_{stem}.png", what, key
                )
    if val_every_steps:
        plot_learning_curves(out, val_every_steps, out / "learning_curves.png")
    return summary


def plot_learning_curves(out: Path, val_every_steps: int, path: Path) -> Path | None:
    """Val Dice against optimiser steps of every run under ``out/runs`` (one panel per method and K, one line
    per fold and seed; a dot marks the checkpoint that was tested). None when no run has a ``log.csv``."""
    plt = pyplot()

    panels: dict[str, list[tuple[str, list[float], list[float]]]] = defaultdict(list)
    for log in sorted(Path(out).glob("runs/fold*/*/*/seed*/train/log.csv")):
        seed_dir = log.parent.parent
        method, kname, fold = (
            seed_dir.parent.name,
            seed_dir.parent.parent.name,
            seed_dir.parent.parent.parent.name,
        )
        with log.open(newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("val_dice")]
        if rows:
            xs = [int(r["epoch"]) * val_every_steps for r in rows]
            panels[f"{method} {kname}"].append(
                (f"{fold} {seed_dir.name}", xs, [float(r["val_dice"]) for r in rows])
            )
    if not panels:
        return None
    names = sorted(panels)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        for label, xs, ys in panels[name]:
            (line,) = ax.plot(xs, ys, marker=".", label=label)
            best = int(np.argmax(ys))
            ax.plot(xs[best], ys[best], "o", color=line.get_color(), markersize=7, fillstyle="none")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimiser steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("val Dice (per patient, 3-D)")
    axes[0][-1].legend(fontsize=6)
    return save_figure(fig, path, dpi=100)


def plot_curves(
    groups: list[dict], k_path: Path, cost_path: Path, title: str = "", key: str = "dice"
) -> tuple[Path, Path]:
    """Dice-vs-K (full supervision as a horizontal band) and Dice-vs-cost (log seconds) plots, error bars =
    std over folds and seeds; ``key`` = the :func:`aggregate` Dice (``dice``, ``ext_dice``, ``ext_ungated``)."""
    plt = pyplot()

    colours = {
        "wiml": "tab:red",
        "strong_only": "tab:blue",
        "mlynarski": "tab:green",
        "full": "black",
        "wiml_neg": "tab:orange",
        "wiml_half_strong": "tab:purple",
        "wiml_neg_half_strong": "tab:brown",
    }
    labels = {
        "wiml": "WIML (tags + K WIA labels)",
        "strong_only": "strong-only (K labels)",
        "mlynarski": "Mlynarski-style (tags + K, separate branch)",
        "full": "full supervision",
        "wiml_neg": "WIML + empty masks on tag-0 slices",
        "wiml_half_strong": "WIML, half of each batch strong",
        "wiml_neg_half_strong": "WIML + empty masks, half strong",
    }
    by_method: dict[str, list[dict]] = defaultdict(list)
    for g in groups:
        by_method[g["method"]].append(g)
    for path, xkey in ((k_path, "k"), (cost_path, "cost")):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        n_lines = sum(m != "full" for m in by_method)
        for i, (method, gs) in enumerate(by_method.items()):
            c = colours.get(method, None)
            if method == "full" and xkey == "k":
                g = gs[0]
                m, sd = g[f"{key}_mean"], g[f"{key}_std"]
                ax.axhline(m, color=c, label=f"{labels[method]} ({g['n']} runs)")
                ax.axhspan(m - sd, m + sd, color=c, alpha=0.1)
                continue
            dodge = 1.0 + 0.025 * (i - (n_lines - 1) / 2) if xkey == "k" else 1.0  # error bars side by side
            xs = [float(g["k"]) * dodge if xkey == "k" else g["cost_mean_s"] for g in gs]
            ys = [g[f"{key}_mean"] for g in gs]
            es = [g[f"{key}_std"] for g in gs]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=c, label=labels.get(method, method))
            if xkey == "cost":
                for x, y, g in zip(xs, ys, gs):
                    ax.annotate(
                        f"K={g['k']}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7
                    )
        ax.set_xscale("log")
        if xkey == "k":  # the K values themselves as ticks, not powers of ten
            ks = sorted({float(g["k"]) for g in groups if g["k"] != "all"})
            ax.set_xticks(ks, [f"{k:g}" for k in ks])
            ax.set_xticks([], minor=True)
        ax.set_xlabel("strong labels K" if xkey == "k" else "annotation cost, s (log)")
        ax.set_ylabel("test Dice (per patient, 3-D)")
        if title:
            ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
        save_figure(fig, path, dpi=110)
    return k_path, cost_path
