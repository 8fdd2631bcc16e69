"""Robot annotation sessions: N strong labels in a row, each starting from a proposal (``wiml wia-session``).

A session makes ``n_labels`` strong labels one after the other the way a person works with the annotator:
each label starts from a proposal (:mod:`wiml.interactive.proposals`), the robot user
(:mod:`wiml.interactive.robot`) clicks until Dice >= ``target_dice`` (at most ``max_clicks``), then the next
label. One run per proposal source, on the same labels in the same order:

* ``none``: clicks only;
* ``cam``: the weak model's Grad-CAM with the refinement's CAM prior (the WIA way);
* ``cam+``: the CAM with the settings of ``cam_plus`` (calibration ``cam_threshold``, GrabCut-style
  re-estimation of the appearance prior, tag gating), chosen on validation patients;
* ``box``: a bounding box of the target jittered by up to ``box_jitter_px`` (a drag in the GUI), then clicks;
* ``propagate``: the finished neighbouring slice's mask (fused with the CAM when there is one) is the prior; a
  label without a finished neighbour starts like ``propagate_fallback``;
* ``bootstrap``: an MSL model fine-tuned in the background on all training tags + the labels made so far
  (:mod:`wiml.experiments.bootstrap`), updated after every ``bootstrap.every`` labels; until its first update
  finishes, labels start like ``cam`` (or ``none`` without a weak model).

Label order: ``spread`` takes slices as the pipeline chooses strong labels (round robin over patients, largest
target first; :func:`wiml.experiments.wia_sim.select_slices`); ``volume`` takes runs of neighbouring slices
of one patient at a time, from the slice with the largest target outwards (up, then down), as a person
annotates a volume.

Outputs (``out/``)::

    labels.csv            one row per label and source: proposal Dice, clicks, final Dice, Dice after the
                          proposal + 0..5 clicks, seconds of computing (proposal, refinement, model update)
    summary.json          per source: total / mean clicks, share accepted with 0 and <= 1 click, mean proposal
                          Dice (all labels, labels 6-20), Dice after 0..5 clicks, clicks relative to ``none``;
                          the bootstrap updates; the resolved config
    clicks_per_label.png  clicks of each label over the session, one line per source
    config.yaml           the resolved config
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from wiml.config import check_ranges, save_config, to_dict
from wiml.data.slices import SliceRecord, load_slice, read_manifest
from wiml.errors import InputError
from wiml.experiments.bootstrap import BootstrapConfig
from wiml.interactive.proposals import (
    PROPOSAL_SOURCES,
    ProposalConfig,
    cam_prior,
    mask_to_prior,
    probability_prior,
    target_box,
)
from wiml.interactive.robot import MAX_CLICKS, simulate
from wiml.interactive.session import RefinementConfig
from wiml.utils import atomic_write_csv, atomic_write_text, pyplot, save_figure

logger = logging.getLogger(__name__)

#: Dice after the proposal and after 1..5 clicks is reported (the "box + up to 5 clicks" protocol).
DICE_AFTER = (0, 1, 2, 3, 4, 5)
ORDERS = ("spread", "volume")


@dataclasses.dataclass
class CamPlusConfig:
    """The ``cam+`` proposal: the CAM prior with other settings than ``cam`` (chosen on validation patients).

    Attributes:
        cam_threshold: CAM value that counts as probability 0.5 (None = the CAM itself).
        appearance_iterations: GrabCut-style re-estimation rounds of the appearance prior.
        tag_gate: tag probability below which the slice gets no proposal (the weak model says "absent"); 0 = off.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "cam_threshold": "(0, 1)",
        "appearance_iterations": ">= 0",
        "tag_gate": "[0, 1]",
    }

    cam_threshold: float | None = 0.2
    appearance_iterations: int = 2
    tag_gate: float = 0.5


@dataclasses.dataclass
class WiaSessionConfig:
    """Configuration of ``wiml wia-session``.

    Attributes:
        split: manifest split the labels are made on.
        sources: proposal sources, one run each (see the module docstring).
        n_labels: strong labels per session.
        order: ``spread`` (over patients, as the pipeline picks) or ``volume`` (runs of neighbouring slices).
        patients: with ``volume``, only these patients (empty = all of the split, in order).
        max_clicks: clicks per label at most (20).
        target_dice: the robot accepts a label at this Dice.
        box_jitter_px: largest move of each side of the robot's box, px.
        propagate_fallback: source of a ``propagate`` label without a finished neighbour (``box``, ``cam`` or
            ``none``).
        channel: image channel the refinement sees.
        window_percentiles: intensity percentiles of that channel mapped to [0, 1].
        seed: seed of the box jitter and the bootstrap batches.
        device: device of the models (auto | cpu | cuda).
        cam_input_px: network input side for Grad-CAM and the bootstrap model (None = the slice's size).
        refinement: refinement parameters (the one graph-cut parameter set and the click engine).
        proposals: :class:`wiml.interactive.proposals.ProposalConfig`.
        cam_plus: :class:`CamPlusConfig`.
        bootstrap: :class:`wiml.experiments.bootstrap.BootstrapConfig`.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "n_labels": ">= 1",
        "max_clicks": ">= 1",
        "target_dice": "(0, 1]",
        "box_jitter_px": ">= 0",
        "channel": ">= 0",
        "window_percentiles": "[0, 100]",
    }

    split: str = "test"
    sources: list[str] = dataclasses.field(default_factory=lambda: ["none", "cam", "box"])
    n_labels: int = 20
    order: str = "spread"
    patients: list[str] = dataclasses.field(default_factory=list)
    max_clicks: int = MAX_CLICKS
    target_dice: float = 0.90
    box_jitter_px: float = 3.0
    propagate_fallback: str = "box"
    channel: int = 0
    window_percentiles: tuple[float, float] = (0.5, 99.5)
    seed: int = 0
    device: str = "auto"
    cam_input_px: int | None = None
    refinement: RefinementConfig = dataclasses.field(default_factory=RefinementConfig)
    proposals: ProposalConfig = dataclasses.field(default_factory=ProposalConfig)
    cam_plus: CamPlusConfig = dataclasses.field(default_factory=CamPlusConfig)
    bootstrap: BootstrapConfig = dataclasses.field(default_factory=BootstrapConfig)

    def validate(self, has_model: bool) -> WiaSessionConfig:
        """Check the settings before anything runs; returns ``self``.

        Raises:
            InputError: an unknown source or order, a model source without a weak model, or a value out of range.
        """
        from wiml.data.slices import SPLITS

        if self.split not in SPLITS:
            raise InputError(f"unknown split {self.split!r}; expected one of {SPLITS}")
        unknown = [s for s in self.sources if s not in PROPOSAL_SOURCES]
        if unknown or not self.sources:
            raise InputError(
                f"unknown proposal source(s) {unknown}; expected some of {list(PROPOSAL_SOURCES)}"
            )
        needs_model = [s for s in self.sources if s in ("cam", "cam+", "bootstrap")]
        if needs_model and not has_model:
            raise InputError(f"sources {needs_model} need a weak checkpoint (--checkpoint)")
        if self.order not in ORDERS:
            raise InputError(f"unknown order {self.order!r}; expected one of {ORDERS}")
        if self.propagate_fallback not in ("box", "cam", "none"):
            raise InputError(f"propagate_fallback must be box, cam or none, got {self.propagate_fallback!r}")
        if self.propagate_fallback == "cam" and not has_model:
            raise InputError("propagate_fallback 'cam' needs a weak checkpoint")
        check_ranges(self)  # RANGES of this class and of its sections, every bad value in one line
        self.refinement.validate()
        self.proposals.validate()
        self.bootstrap.validate()
        return self


@dataclasses.dataclass
class LabelTask:
    """One label of a session: the slice, its image for the refinement and its ground truth."""

    record: SliceRecord
    image: np.ndarray  # (C, H, W) prepared slice
    view: np.ndarray  # (H, W) float32 in [0, 1], what the refinement sees
    gt: np.ndarray  # (H, W) uint8


def session_order(records: list[SliceRecord], areas: list[int], n: int, order: str) -> list[int]:
    """Indices of the ``n`` labels of a session, in annotation order.

    ``spread``: round robin over patients, largest target first (the pipeline's choice of strong labels).
    ``volume``: per patient (in the given order), the slice with the largest target, then its neighbours
    upwards while they hold the target, then downwards; patients follow each other until ``n`` labels.

    Args:
        records: slices with a non-empty ground truth.
        areas: target area of each, px.
        n: labels wanted.
        order: ``spread`` or ``volume``.

    Returns:
        Indices into ``records`` (at most ``n``).
    """
    from wiml.experiments.wia_sim import select_slices

    if order == "spread":
        return select_slices(records, areas, n)
    chosen: list[int] = []
    by_patient: dict[str, dict[int, int]] = {}
    for i, rec in enumerate(records):
        by_patient.setdefault(rec.patient_id, {})[rec.slice_index] = i
    for pid in dict.fromkeys(r.patient_id for r in records):
        slices = by_patient[pid]
        start = max(slices, key=lambda z: (areas[slices[z]], -z))
        run = [start]
        z = start + 1
        while z in slices:
            run.append(z)
            z += 1
        z = start - 1
        while z in slices:
            run.append(z)
            z -= 1
        chosen += [slices[z] for z in run]
        if len(chosen) >= n:
            break
    return chosen[:n]


class _Proposer:
    """Turns a label into a proposal prior for one source (the session runner's only model-facing part)."""

    def __init__(self, config: WiaSessionConfig, cam_source, model, tagged, device) -> None:
        self.config = config
        self.cam_source = cam_source
        self.model = model
        self.device = device
        self.tagged = tagged
        self._cams: dict[str, tuple[np.ndarray, float]] = {}
        self.updater = None

    def cam(self, task: LabelTask) -> tuple[np.ndarray, float]:
        key = f"{task.record.patient_id}:{task.record.slice_index}"
        if key not in self._cams:
            self._cams[key] = self.cam_source(task.record, task.image)
        return self._cams[key]

    def start_bootstrap(self):
        from wiml.experiments.bootstrap import BackgroundUpdater

        self.updater = BackgroundUpdater(self.model, self.tagged, self.config.bootstrap, self.device)
        return self.updater

    def model_probability(self, model, task: LabelTask) -> np.ndarray:
        from wiml.networks.inference import predict_slices

        prob, _, _ = predict_slices(model, task.image[None], self.device, 1, self.config.cam_input_px)
        return prob[0]


def run_wia_session(
    data: Path,
    out: Path,
    config: WiaSessionConfig,
    checkpoint: Path | None = None,
    cam_source: Callable | None = None,
) -> dict:
    """Run one robot annotation session per proposal source and write the outputs of the module docstring.

    Args:
        data: prepared folder (manifest.csv).
        out: output folder (created).
        config: the session config (validated here, before any work).
        checkpoint: the weak model (``*.safetensors``) for ``cam``, ``cam+`` and ``bootstrap``; None = clicks,
            boxes and propagation only.
        cam_source: override of the CAM source, ``(record, image) -> (cam (H, W), tag probability)``; tests use
            it to run without a network.

    Returns:
        The summary (also ``out/summary.json``).

    Raises:
        InputError: a bad config, no manifest, or no slice with a target in the split.
    """
    from tqdm import tqdm

    from wiml.experiments.wia_sim import refinement_image

    data, out = Path(data), Path(out)
    model = None
    device = "cpu"
    if checkpoint is not None:
        from wiml.networks.checkpoint import load_model
        from wiml.utils import resolve_device

        device = resolve_device(config.device)
        model, _ = load_model(checkpoint, device)
        if cam_source is None:
            cam_source = model_cam_source(model, config.cam_input_px)
    config.validate(has_model=cam_source is not None)
    if "bootstrap" in config.sources and model is None:
        raise InputError("source 'bootstrap' needs a weak checkpoint (--checkpoint) to fine-tune")
    records = [r for r in read_manifest(data, config.split) if r.has_mask and r.tag == 1]
    if config.order == "volume" and config.patients:
        wanted = list(config.patients)
        records = [r for p in wanted for r in records if r.patient_id == p]
    if not records:
        raise InputError(f"no slice of split {config.split!r} has a ground-truth mask with foreground", data)
    if config.order == "spread":
        records.sort(key=lambda r: (r.patient_id, r.slice_index))
    areas = []
    for r in records:
        _, gt = load_slice(r)
        areas.append(int((gt > 0).sum()))
    order = session_order(records, areas, config.n_labels, config.order)
    tasks = []
    for i in order:
        image, gt = load_slice(records[i])
        view = refinement_image(image, config.channel, config.window_percentiles)
        tasks.append(LabelTask(records[i], image, view, (gt > 0).astype(np.uint8)))
    tagged = []
    if "bootstrap" in config.sources:
        tag_records = read_manifest(data, config.bootstrap.tag_split)
        if config.bootstrap.tag_slices and len(tag_records) > config.bootstrap.tag_slices:
            idx = np.linspace(0, len(tag_records) - 1, config.bootstrap.tag_slices).round().astype(int)
            tag_records = [tag_records[j] for j in dict.fromkeys(idx.tolist())]
        tagged = [(load_slice(r)[0], int(r.tag)) for r in tag_records]
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    proposer = _Proposer(config, cam_source, model, tagged, device)
    rows: list[dict] = []
    updates: dict[str, list[dict]] = {}
    for source in config.sources:
        rows += _run_source(source, tasks, config, proposer, updates, tqdm)
    summary = summarize_session(rows, config.sources)
    summary["bootstrap_updates"] = updates.get("bootstrap", [])
    summary["labels"] = [f"{t.record.patient_id}_{t.record.slice_index:04d}" for t in tasks]
    summary["order"] = config.order
    summary["config"] = to_dict(config)
    summary["data"] = str(data)
    summary["checkpoint"] = str(checkpoint) if checkpoint else None
    atomic_write_csv(out / "labels.csv", rows)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot_clicks_per_label(rows, config.sources, out / "clicks_per_label.png", f"{data.name}, {config.split}")
    logger.info("wia-session: %d labels x %d sources -> %s", len(tasks), len(config.sources), out)
    return summary


def model_cam_source(model, input_px: int | None) -> Callable:
    """``(record, image) -> (CAM (H, W) in [0, 1] inside the body, tag probability)`` of a loaded weak model."""
    import torch

    from wiml.cam import cam_for_image
    from wiml.networks.fpsnet import tag_probability

    def source(record: SliceRecord, image: np.ndarray) -> tuple[np.ndarray, float]:
        try:
            cam = cam_for_image(model, image, input_px, True)
        except InputError as err:
            raise InputError(str(err), record.path) from err
        with torch.no_grad():
            device = next(model.parameters()).device
            x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None].to(device)
            if input_px and tuple(x.shape[-2:]) != (input_px, input_px):
                x = torch.nn.functional.interpolate(x, size=(input_px, input_px), mode="bilinear")
            tag = float(tag_probability(model(x).cls).cpu()[0])
        return cam, tag

    return source


def _run_source(source, tasks, config, proposer, updates, tqdm) -> list[dict]:
    session = config.refinement.make_session()
    rng = np.random.default_rng(config.seed)
    finished: dict[tuple[str, int], np.ndarray] = {}
    strong: list[tuple[np.ndarray, np.ndarray]] = []
    updater = proposer.start_bootstrap() if source == "bootstrap" else None
    rows = []
    for k, task in enumerate(tqdm(tasks, desc=f"wia-session {source}", unit="label", disable=None)):
        t0 = time.perf_counter()
        used, version = _propose(source, task, session, config, proposer, finished, updater, rng)
        proposal_s = time.perf_counter() - t0
        result = simulate(session, task.gt, config.max_clicks, config.target_dice)
        finished[(task.record.patient_id, task.record.slice_index)] = result.mask
        row = {
            "source": source,
            "label": k + 1,
            "name": f"{task.record.patient_id}_{task.record.slice_index:04d}",
            "patient_id": task.record.patient_id,
            "slice_index": task.record.slice_index,
            "proposal": used,
            "model_version": version,
            "target_px": int(task.gt.sum()),
            "proposal_dice": round(result.initial_dice, 4),
            "clicks": len(result.clicks),
            "final_dice": round(result.final_dice, 4),
            "reached": int(result.final_dice >= config.target_dice),
            "proposal_s": round(proposal_s, 4),
            "refine_s": round(float(sum(result.seconds_per_click)), 4),
        }
        row.update({f"dice_{n}": round(result.dice_after(n), 4) for n in DICE_AFTER})
        rows.append(row)
        if updater is not None:
            strong.append((task.image, result.mask))
            due = len(strong) >= config.bootstrap.min_labels and (len(strong) % config.bootstrap.every == 0)
            due = due and k + 1 < len(tasks)  # no update after the last label: nothing would use it
            if due and updater.submit(strong) and config.bootstrap.wait:
                updater.wait()
    if updater is not None:
        updater.close()
        updates[source] = [dataclasses.asdict(u) for u in updater.updates]
        seconds = {u.n_labels: u.seconds for u in updater.updates}
        for row in rows:  # the update that followed a label is charged to it
            row["update_s"] = round(seconds.get(row["label"], 0.0), 3)
    return rows


def _propose(source, task, session, config, proposer, finished, updater, rng) -> tuple[str, int]:
    """Set the session's image and proposal for ``source``; returns (what was used, model version)."""
    view = task.view
    if source == "propagate":
        pid, z = task.record.patient_id, task.record.slice_index
        neighbour = finished.get((pid, z - 1), finished.get((pid, z + 1)))
        if neighbour is not None and neighbour.any():
            cam = proposer.cam(task)[0] if proposer.cam_source is not None else None
            session.set_image(view, prior=mask_to_prior(neighbour, cam, config.proposals), source="propagate")
            return "propagate", 0
        source = config.propagate_fallback
    if source == "bootstrap":
        model, version = updater.current()
        if version > 0:
            prob = proposer.model_probability(model, task)
            session.set_image(view, prior=probability_prior(prob, config.proposals), source="bootstrap")
            return "bootstrap", version
        source = "cam"
    if source == "none":
        session.set_image(view)
        return "none", 0
    if source == "box":
        session.set_image(view)
        session.set_box(target_box(task.gt, config.box_jitter_px, rng), config.proposals)
        return "box", 0
    cam, tag = proposer.cam(task)
    if source == "cam":
        session.set_image(view, cam)
        return "cam", 0
    # cam+
    plus = config.cam_plus
    if plus.tag_gate > 0 and tag < plus.tag_gate:
        session.set_image(view)
        return "cam+ (gated)", 0
    appearance = dataclasses.replace(config.refinement.appearance, iterations=plus.appearance_iterations)
    r = config.refinement
    prior = cam_prior(
        view, cam, plus.cam_threshold, appearance if r.cam_appearance else None, lam=r.lam, sigma=r.sigma
    )
    session.set_image(view, cam, prior=prior, source="cam+")
    return "cam+", 0


def summarize_session(rows: list[dict], sources: list[str]) -> dict:
    """Per source: total and mean clicks, shares accepted with 0 / <= 1 click, proposal Dice (all labels and
    labels 6-20), Dice after the proposal + 0..5 clicks, reached share, and total clicks relative to ``none``."""
    out: dict = {}
    for source in sources:
        sel = [r for r in rows if r["source"] == source]
        clicks = np.array([r["clicks"] for r in sel], float)
        later = [r["proposal_dice"] for r in sel if 6 <= r["label"] <= 20]
        s = {
            "n_labels": len(sel),
            "total_clicks": int(clicks.sum()),
            "mean_clicks": float(clicks.mean()),
            "accepted_0_clicks": float(np.mean(clicks == 0)),
            "accepted_le1_click": float(np.mean(clicks <= 1)),
            "proposal_dice": float(np.mean([r["proposal_dice"] for r in sel])),
            "proposal_dice_labels_6_20": float(np.mean(later)) if later else None,
            "reached_target": float(np.mean([r["reached"] for r in sel])),
            "seconds_computing": float(
                sum(r["proposal_s"] + r["refine_s"] + r.get("update_s", 0.0) for r in sel)
            ),
        }
        s.update({f"dice_after_{n}": float(np.mean([r[f"dice_{n}"] for r in sel])) for n in DICE_AFTER})
        out[source] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
    if "none" in out and out["none"]["total_clicks"] > 0:
        base = out["none"]["total_clicks"]
        for source in sources:
            out[source]["clicks_vs_none"] = round(out[source]["total_clicks"] / base, 4)
    return out


def plot_clicks_per_label(rows: list[dict], sources: list[str], path: Path, title: str = "") -> Path:
    """Clicks of each label over the session (x = label number), one line per source; PNG, atomic."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for source in sources:
        sel = [r for r in rows if r["source"] == source]
        total = sum(r["clicks"] for r in sel)
        ax.plot(
            [r["label"] for r in sel],
            [r["clicks"] for r in sel],
            marker="o",
            ms=3,
            label=f"{source} ({total})",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("label in the session")
    ax.set_ylabel("clicks to Dice >= target")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", title="source (total clicks)")
    ax.set_title(title or "robot annotation session: clicks per label")
    return save_figure(fig, path)
