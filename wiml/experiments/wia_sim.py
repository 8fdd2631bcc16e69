"""Robot-user WIA simulation over a prepared folder: what ``wiml wia-sim`` runs.

For every slice of a split that has a ground-truth mask with foreground, the robot user
(:mod:`wiml.interactive.robot`) refines the mask with up to ``max_clicks`` clicks, in up to three modes:

* ``cam``: from the CAM initial mask of the weak model (the WIA way),
* ``no_cam``: from an empty mask with the same refinement but no CAM, so the clicks the weak model saves are
  measured,
* ``jitter``: as the first mode, with every click moved by up to ``jitter_px`` pixels (robot users flatter
  real ones).

Outputs (docs/architecture.md, "Run folder" and "WIA results")::

    slices.csv          one row per slice and mode: target area (px), initial Dice, Dice after each click,
                        NoC@80/85/90, s/click
    summary.json        means per mode, clicks saved by the CAM, the resolved config
    dice_vs_clicks.png  mean Dice against the number of clicks, one line per mode
    config.yaml         the resolved config
    result/strong_label/<name>.png, result/recording/<name>.json   for ``select`` chosen slices
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from wiml.config import check_ranges, save_config, to_dict
from wiml.data.slices import SliceRecord, load_slice, read_manifest
from wiml.data.wia_result import Recording, write_png, write_recording
from wiml.errors import ConfigError, InputError
from wiml.interactive.robot import MAX_CLICKS, NOC_THRESHOLDS, RobotResult, simulate
from wiml.interactive.session import RefinementConfig
from wiml.layout import CONFIG_YAML, summary_json
from wiml.training.strong_labels import slice_name
from wiml.utils import atomic_write_csv, atomic_write_text, pyplot, save_figure

logger = logging.getLogger(__name__)

#: CAM source: (slice record, prepared image (C, H, W) float32) -> (H, W) CAM in [0, 1], or None for no CAM.
CamSource = Callable[[SliceRecord, np.ndarray], "np.ndarray | None"]

DICE_AFTER = (1, 3, 5, 10)


@dataclasses.dataclass
class WiaSimConfig:
    """Configuration of ``wiml wia-sim``.

    Attributes:
        split: manifest split whose slices are simulated.
        max_clicks: clicks per slice at most (NoC is capped here; 20 is the field's convention).
        target_dice: the robot stops once Dice reaches it (later Dice values carry the last one forward).
        select: number of slices whose final masks are written as strong labels + interaction records.
        jitter_px: largest click displacement of the jittered run, px (0 = no jittered run).
        no_cam_run: also run the robot from an empty mask without a CAM.
        max_slices: simulate at most this many slices (evenly spaced over the split; None = all).
        channel: image channel the refinement sees (prepared slices are (C, H, W)).
        window_percentiles: intensity percentiles of that channel mapped to [0, 1] for the graph cut.
        seed: seed of the click jitter.
        device: device of the weak model for Grad-CAM (auto | cpu | cuda).
        cam_input_px: side of the square network input for Grad-CAM (None = the slice's own size).
        refinement: the refinement parameters.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "max_clicks": ">= 1",
        "target_dice": "(0, 1]",
        "select": ">= 0",
        "jitter_px": ">= 0",
        "max_slices": ">= 1",
        "channel": ">= 0",
        "window_percentiles": "[0, 100]",
        "cam_input_px": ">= 8",
        "seed": ">= 0",
    }

    split: str = "test"
    max_clicks: int = MAX_CLICKS
    target_dice: float = 0.90
    select: int = 5
    jitter_px: float = 3.0
    no_cam_run: bool = True
    max_slices: int | None = None
    channel: int = 0
    window_percentiles: tuple[float, float] = (0.5, 99.5)
    seed: int = 0
    device: str = "auto"
    cam_input_px: int | None = None
    refinement: RefinementConfig = dataclasses.field(default_factory=RefinementConfig)


def refinement_image(
    image: np.ndarray, channel: int = 0, percentiles: tuple[float, float] = (0.5, 99.5)
) -> np.ndarray:
    """The (H, W) image in [0, 1] the refinement sees: one channel of a prepared slice, percentile-windowed
    as for the CAM's initial mask (:func:`wiml.cam.graph_cut_image`).

    Raises:
        InputError: the channel does not exist.
    """
    from wiml.cam import graph_cut_image

    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        if not 0 <= channel < arr.shape[0]:
            raise InputError(f"channel {channel} requested but the slice has {arr.shape[0]} channel(s)")
        arr = arr[channel]
    return graph_cut_image(arr, percentiles)


def checkpoint_cam_source(
    checkpoint: str | Path, device: str = "auto", input_px: int | None = None, restrict_to_body: bool = True
) -> CamSource:
    """CAM source from a weak checkpoint: :func:`wiml.cam.cam_for_image` of the loaded FPSNet.

    Args:
        checkpoint: weak ``*.safetensors`` (loaded with :func:`wiml.networks.checkpoint.load_model`).
        device: auto | cpu | cuda.
        input_px: resize slices to this square side for the network (None: as they are).
        restrict_to_body: keep the CAM inside the body / brain (as ``wiml cam`` and the GUI).

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
    """
    from wiml.cam import cam_for_image
    from wiml.networks.checkpoint import load_model
    from wiml.utils import resolve_device

    model, _ = load_model(checkpoint, resolve_device(device))

    def source(record: SliceRecord, image: np.ndarray) -> np.ndarray:
        try:
            return cam_for_image(model, image, input_px, restrict_to_body)
        except InputError as err:
            raise InputError(str(err), record.path) from err

    return source


def select_slices(records: list[SliceRecord], areas: list[int], k: int) -> list[int]:
    """Indices of ``k`` slices for strong labels: round-robin over patients, largest target area first.

    Spreading the chosen slices over patients gives MSL diverse strong labels; within a patient the slice
    with the most foreground teaches the most.
    """
    by_patient: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        by_patient.setdefault(rec.patient_id, []).append(i)
    queues = [
        sorted(idx, key=lambda i: (-areas[i], records[i].slice_index))
        for _, idx in sorted(by_patient.items())
    ]
    chosen: list[int] = []
    while len(chosen) < k and any(queues):
        for q in queues:
            if q and len(chosen) < k:
                chosen.append(q.pop(0))
    return chosen


def write_wia_result(result_dir: Path, record: SliceRecord, result: RobotResult) -> tuple[Path, Path]:
    """Write one strong label (PNG 0/255) and its interaction record (:class:`wiml.data.wia_result.Recording`,
    the schema the annotator GUI writes too), keeping previous versions.

    Returns:
        (strong label path, recording path).
    """
    name = slice_name(record)
    label_path = write_png(
        result_dir / "strong_label" / f"{name}.png", (np.asarray(result.mask) > 0).astype(np.uint8) * 255
    )
    steps = [round(float(result.initial_dice), 6)] + [round(float(d), 6) for d in result.dice_per_step]
    recording = Recording(
        image=str(record.path),
        patient_id=record.patient_id,
        slice_index=record.slice_index,
        source="robot",
        clicks=[c.to_dict() for c in result.clicks],
        dice_per_step=steps,
        initial_dice=steps[0],
        final_dice=steps[-1],
        total_time_s=round(float(sum(result.seconds_per_click)), 4),
        proposal="cam",
        shape=list(np.asarray(result.mask).shape),
        foreground_px=int((np.asarray(result.mask) > 0).sum()),
    )
    record_path = write_recording(result_dir / "recording" / f"{name}.json", recording)
    return label_path, record_path


def _row(name: str, record: SliceRecord, mode: str, r: RobotResult, max_clicks: int, target_px: int) -> dict:
    steps = [r.dice_after(k) for k in range(1, max_clicks + 1)]
    row = {
        "name": name,
        "patient_id": record.patient_id,
        "slice_index": record.slice_index,
        "mode": mode,
        "target_px": target_px,
        "initial_dice": round(r.initial_dice, 4),
        "n_clicks": len(r.clicks),
        "final_dice": round(r.final_dice, 4),
    }
    row.update({f"noc{int(round(t * 100))}": r.noc(t, max_clicks) for t in NOC_THRESHOLDS})
    row["s_per_click"] = round(float(np.mean(r.seconds_per_click)), 5) if r.seconds_per_click else ""
    row.update({f"dice_{k}": round(d, 4) for k, d in enumerate(steps, start=1)})
    return row


def summarize(rows: list[dict], max_clicks: int) -> dict:
    """Means per mode (initial Dice, Dice after 1/3/5/10 clicks, NoC@80/85/90, median s/click)."""
    out: dict = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sel = [r for r in rows if r["mode"] == mode]
        times = [r["s_per_click"] for r in sel if r["s_per_click"] != ""]
        s = {"n_slices": len(sel), "initial_dice": float(np.mean([r["initial_dice"] for r in sel]))}
        for k in DICE_AFTER:
            if k <= max_clicks:
                s[f"dice_after_{k}"] = float(np.mean([r[f"dice_{k}"] for r in sel]))
        for t in NOC_THRESHOLDS:
            key = f"noc{int(round(t * 100))}"
            s[key] = float(np.mean([r[key] for r in sel]))
            s[f"reached_{int(round(t * 100))}"] = float(
                np.mean([r[key] < max_clicks or r[f"dice_{max_clicks}"] >= t for r in sel])
            )
        s["median_s_per_click"] = float(np.median(times)) if times else None
        out[mode] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
    if "cam" in out and "no_cam" in out:
        out["clicks_saved_by_cam"] = {
            f"noc{int(round(t * 100))}": round(
                out["no_cam"][f"noc{int(round(t * 100))}"] - out["cam"][f"noc{int(round(t * 100))}"], 4
            )
            for t in NOC_THRESHOLDS
        }
    return out


def plot_dice_vs_clicks(rows: list[dict], max_clicks: int, path: Path, title: str = "") -> Path:
    """Mean Dice against clicks (0 = initial mask), one line per mode, written atomically as PNG."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    xs = np.arange(max_clicks + 1)
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sel = [r for r in rows if r["mode"] == mode]
        ys = [np.mean([r["initial_dice"] for r in sel])] + [
            np.mean([r[f"dice_{k}"] for r in sel]) for k in range(1, max_clicks + 1)
        ]
        ax.plot(xs, ys, marker="o", ms=3, label=f"{mode} (n={len(sel)})")
    for t in NOC_THRESHOLDS:
        ax.axhline(t, color="grey", lw=0.5, ls=":")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("clicks (0 = initial mask)")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, max_clicks)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "robot user: Dice vs clicks")
    return save_figure(fig, path)


def wia_slices(data: str | Path, config: WiaSimConfig) -> list[SliceRecord]:
    """The slices the robot user annotates: ``config.split``'s slices with a target in their ground truth,
    at most ``config.max_slices`` of them (evenly spaced); the ``select`` strong labels are chosen among them.

    Raises:
        InputError: no manifest, an unknown split, or no slice of the split with a foreground ground truth.
        ConfigError: a setting out of range, or ``select`` larger than the slices available.
    """
    from wiml.data.slices import SPLITS

    data = Path(data)
    if config.split not in SPLITS:
        raise InputError(f"unknown split {config.split!r}; expected one of {SPLITS}")
    check_ranges(config)  # the same one-line range checks as load_config, for configs built in code
    records = [r for r in read_manifest(data, config.split) if r.has_mask and r.tag == 1]
    if not records:
        raise InputError(f"no slice of split {config.split!r} has a ground-truth mask with foreground", data)
    if config.max_slices is not None and len(records) > config.max_slices:
        idx = np.linspace(0, len(records) - 1, config.max_slices).round().astype(int)
        records = [records[i] for i in dict.fromkeys(idx.tolist())]
    if config.select > len(records):
        raise ConfigError(
            f"select = {config.select}: only {len(records)} slice(s) of split {config.split!r} have a target"
            + (f" (max_slices = {config.max_slices})" if config.max_slices is not None else "")
            + f"; expected select <= {len(records)} (the K strong labels are chosen among them)"
        )
    return records


def run_wia_simulation(
    data: Path, out: Path, config: WiaSimConfig, cam_source: CamSource | None = None
) -> dict:
    """Run the robot user over the slices of ``config.split`` and write the outputs listed in the module doc.

    Args:
        data: prepared folder (manifest.csv; :mod:`wiml.data.slices`).
        out: output folder (created).
        config: the simulation config.
        cam_source: where CAMs come from (:func:`checkpoint_cam_source`, or any callable); None = no CAM, so
            the main mode is ``no_cam``.

    Returns:
        The summary (also written to ``out/summary.json``).

    Raises:
        InputError: no manifest, or no slice of the split with a foreground ground truth.
        ConfigError: a setting out of range, or ``select`` larger than the slices available (before anything
            is written).
    """
    from tqdm import tqdm

    data, out = Path(data), Path(out)
    records = wia_slices(data, config)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / CONFIG_YAML)
    modes = ["cam"] if cam_source is not None else []
    if config.no_cam_run or cam_source is None:
        modes.append("no_cam")
    main_mode = modes[0]
    if config.jitter_px > 0:
        modes.append("jitter")
    session = config.refinement.make_session()
    rng = np.random.default_rng(config.seed)
    rows: list[dict] = []
    main_results: list[RobotResult] = []
    areas: list[int] = []
    for record in tqdm(records, desc="wia-sim", unit="slice", disable=None):
        image, gt = load_slice(record)
        gt = (gt > 0).astype(np.uint8)
        img = refinement_image(image, config.channel, config.window_percentiles)
        cam = cam_source(record, image) if cam_source is not None else None
        name = slice_name(record)
        areas.append(int(gt.sum()))
        for mode in modes:
            use_cam = cam if (mode == "cam" or (mode == "jitter" and main_mode == "cam")) else None
            session.set_image(img, use_cam)
            result = simulate(
                session,
                gt,
                config.max_clicks,
                config.target_dice,
                jitter_px=config.jitter_px if mode == "jitter" else 0.0,
                rng=rng,
            )
            rows.append(_row(name, record, mode, result, config.max_clicks, areas[-1]))
            if mode == main_mode:
                main_results.append(result)
    atomic_write_csv(out / "slices.csv", rows, list(rows[0]))
    summary = summarize(rows, config.max_clicks)
    chosen = select_slices(records, areas, config.select)
    for i in chosen:
        write_wia_result(out / "result", records[i], main_results[i])
    summary["main_mode"] = main_mode
    summary["selected"] = [slice_name(records[i]) for i in chosen]
    summary["config"] = to_dict(config)
    summary["data"] = str(data)
    atomic_write_text(summary_json(out), json.dumps(summary, indent=2))
    plot_dice_vs_clicks(
        rows,
        config.max_clicks,
        out / "dice_vs_clicks.png",
        f"robot user: {config.split} split of {data.resolve().parent.name}/{data.name}, "
        f"{len(records)} slices",
    )
    logger.info("wia-sim: %d slices, modes %s -> %s", len(records), modes, out)
    return summary
