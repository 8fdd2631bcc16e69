"""Baselines and ablations of MSL in one harness (same data, split, strong labels, seeds and test code).

Methods (``METHODS``):

* ``wiml`` — MSL: tags of every training slice + the K strong labels, initialised from the weak model.
* ``wiml_scratch`` — the same from random initialisation (the reference of the two ablations).
* ``strong_only`` — the same K strong labels, plain supervised (Dice + CE), no tags.
* ``full`` — every training slice's ground-truth mask (upper bound).
* ``weak_only`` — no training: the weak model's CAM initial masks (Grad-CAM -> graph cut -> post-processing)
  on tag-positive predicted slices, empty elsewhere.
* ``separate_head`` — ablation: MSL from scratch with the classification head on the bottleneck (no FPS).
* ``no_scse`` — ablation: MSL from scratch without scSE blocks.

Every trained method is tested with :func:`wiml.evaluation.evaluate.evaluate` on the test split; the
summary holds, per method, the mean ± std over seeds of the per-patient 3-D Dice (and HD95).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wiml.config import load_config, with_overrides
from wiml.errors import ConfigError, InputError
from wiml.layout import RunLayout, TrainingLayout, summary_json
from wiml.utils import atomic_write_text, resolve_device

if TYPE_CHECKING:  # torch is imported only when a method is trained (`wiml baselines --help` stays fast)
    from wiml.training.msl import MSLConfig

logger = logging.getLogger(__name__)

METHODS = ("wiml", "strong_only", "full", "weak_only", "wiml_scratch", "separate_head", "no_scse")

#: MSL config overrides that define each trained method
METHOD_OVERRIDES = {
    "wiml": ["mode=mixed", "init=weak"],
    "wiml_scratch": ["mode=mixed", "init=scratch"],
    "strong_only": ["mode=strong_only", "init=scratch"],
    "full": ["mode=full", "init=scratch"],
    "separate_head": ["mode=mixed", "init=scratch", "model.head=separate"],
    "no_scse": ["mode=mixed", "init=scratch", "model.attention=none"],
}


@dataclasses.dataclass
class BaselinesConfig:
    """The pipeline's ``baselines`` section (``wiml baselines`` takes the same as options).

    Attributes:
        methods: names from :data:`METHODS`.
        seeds: training seeds; empty = the pipeline's ``seed``.
    """

    methods: list[str] = dataclasses.field(default_factory=lambda: list(METHODS))
    seeds: list[int] = dataclasses.field(default_factory=list)

    def validate(self) -> BaselinesConfig:
        """Returns self.

        Raises:
            ConfigError: an unknown method.
        """
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ConfigError(f"unknown baseline method(s) {unknown}; expected some of {list(METHODS)}")
        return self


def weak_only_predictions(checkpoint: Path, cases, device, batch_size: int = 8) -> list[np.ndarray]:
    """CAM initial masks of the weak model for each case (empty where the predicted tag is < 0.5).

    Args:
        checkpoint: the weak checkpoint.
        cases: :class:`wiml.evaluation.evaluate.Case` list.
        device: torch device.

    Returns:
        list of (H, W) uint8 masks.
    """
    import torch

    from wiml.cam import cam_to_initial_mask, compute_grad_cam
    from wiml.networks.checkpoint import load_model
    from wiml.networks.fpsnet import tag_probability
    from wiml.networks.inference import fit_channels

    model, _ = load_model(checkpoint, device)
    out = []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        x = fit_channels(
            torch.from_numpy(np.stack([c.image for c in chunk])).to(device), model.config.in_channels
        )
        with torch.no_grad():
            tags = tag_probability(model(x).cls).cpu().numpy()
        cams = compute_grad_cam(model, x)[0]
        for c, cam, t in zip(chunk, cams, tags):
            out.append(cam_to_initial_mask(c.image, cam) if t >= 0.5 else np.zeros(c.mask.shape, np.uint8))
    return out


def _aggregate(method: str, runs: list[dict]) -> dict:
    dice = [r["dice"] for r in runs if r.get("dice") is not None]
    hd = [r["hd95_mm"] for r in runs if r.get("hd95_mm") is not None]

    def stats(v):
        return {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} if v else {"n": 0}

    return {
        "method": method,
        "n_seeds": len(runs),
        "seeds": [r["seed"] for r in runs],
        "dice": stats(dice),
        "hd95_mm": stats(hd),
        "strong": runs[0].get("strong") if runs else None,
        "train_s": float(np.mean([r["train_s"] for r in runs])) if runs else None,
        "runs": runs,
    }


def run_baselines(
    run: Path,
    out: Path,
    methods: list[str],
    seeds: list[int],
    msl_config: MSLConfig | Path | None,
    overrides: list[str],
    k: int = 5,
    device: str = "auto",
    wia_dir: Path | None = None,
    weak_checkpoint: Path | None = None,
    data: Path | None = None,
) -> dict:
    """Train and test every method for every seed; write ``out/summary.json`` and ``out/summary.md``.

    Args:
        run: run folder (``data/``, ``weak/``, ``wia/``).
        out: output folder (``<method>/seed<k>/{train,test}``).
        methods: names from :data:`METHODS`.
        seeds: training seeds.
        msl_config: MSL YAML, or a resolved :class:`MSLConfig` (shared by all trained methods).
        overrides: extra MSL overrides (shared; applied after each method's own).
        k: strong labels when they come from the ground truth.
        device: device.
        wia_dir: WIA ``result`` folder (default ``run/wia/result`` when it exists; otherwise the K strong
            labels are ground-truth masks of K ``spread`` slices).
        weak_checkpoint: default ``run/weak/best.safetensors``.
        data: default ``run/data``.

    Returns:
        the summary dict.

    Raises:
        ConfigError: an unknown method.
    """
    from wiml.evaluation.evaluate import TestConfig, cases_from_prepared, evaluate, trained_with_tags
    from wiml.networks.checkpoint import load_model
    from wiml.training.msl import MSLConfig, train_msl

    BaselinesConfig(list(methods)).validate()
    layout, out = RunLayout(run), Path(out)
    data = Path(data or layout.data)
    weak = Path(weak_checkpoint or layout.weak.best)
    wia_dir = Path(wia_dir) if wia_dir else layout.wia_result
    strong = (
        ["strong.source=wia", f"strong.wia_dir={wia_dir}"]
        if (wia_dir / "strong_label").is_dir()
        else ["strong.source=gt", f"strong.k={k}", "strong.select=spread"]
    )
    cases = cases_from_prepared(data, "test")
    dev = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    previous = {}
    if summary_json(out).is_file():  # methods run earlier into the same folder are kept
        try:
            previous = {
                r["method"]: r for r in json.loads(summary_json(out).read_text(encoding="utf-8"))["methods"]
            }
        except (json.JSONDecodeError, KeyError, TypeError):
            previous = {}
    results = [r for m, r in previous.items() if m not in methods]
    for method in methods:
        runs = []
        for seed in seeds if method != "weak_only" else seeds[:1]:
            folder = out / method / f"seed{seed}"
            t0 = time.perf_counter()
            if method == "weak_only":
                if not weak.is_file():
                    raise InputError("weak_only needs the weak checkpoint", weak)
                preds = weak_only_predictions(weak, cases, dev)
                train_s = 0.0
                summary = evaluate(
                    None,
                    cases,
                    folder / "test",
                    TestConfig(overlays=4, write_nifti=False),
                    dev,
                    data=data,
                    kind="prepared",
                    extra={"method": method},
                    predictions=preds,
                )
                strong_desc = "0 (CAM)"
            else:
                cfg_over = [
                    *strong,
                    *METHOD_OVERRIDES[method],
                    f"trainer.seed={seed}",
                    f"trainer.device={device}",
                    f"init_checkpoint={weak}",
                    *overrides,
                ]
                if isinstance(msl_config, MSLConfig):
                    config = with_overrides(msl_config, cfg_over)
                else:
                    config = load_config(MSLConfig, msl_config, cfg_over)
                res = train_msl(config, data, folder / "train")
                train_s = time.perf_counter() - t0
                model, meta = load_model(TrainingLayout(folder / "train").best, dev)
                test_cfg = TestConfig(overlays=4, write_nifti=False, gate_with_tag=trained_with_tags(meta))
                summary = evaluate(
                    model,
                    cases,
                    folder / "test",
                    test_cfg,
                    dev,
                    data=data,
                    kind="prepared",
                    extra={"method": method, "seed": seed},
                )
                strong_desc = "all" if method == "full" else str(res["n_strong"])
            pp = summary.get("per_patient") or summary["per_slice_positive"]
            runs.append(
                {
                    "seed": seed,
                    "dice": pp["dice"]["mean"],
                    "hd95_mm": pp["hd95_mm"]["mean"],
                    "train_s": train_s,
                    "strong": strong_desc,
                    "test": str(folder / "test"),
                }
            )
            logger.info(
                "baselines: %s seed %d: test Dice %.4f (%.0f s)", method, seed, runs[-1]["dice"], train_s
            )
        results.append(_aggregate(method, runs))
        _write(out, results, seeds, strong)
    return _write(out, results, seeds, strong)


def _write(out: Path, results: list[dict], seeds: list[int], strong: list[str]) -> dict:
    from wiml.evaluation.report import baselines_table

    summary = {"seeds": seeds, "strong": strong, "methods": results}
    atomic_write_text(summary_json(out), json.dumps(summary, indent=2, default=float))
    atomic_write_text(
        out / "summary.md",
        "\n".join(
            [
                "# Baselines and ablations",
                "",
                f"Strong labels: {' '.join(strong)}; seeds {seeds}.",
                "",
                *baselines_table(summary),
                "",
            ]
        ),
    )
    return summary
