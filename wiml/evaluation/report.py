"""Markdown + PNG report of a run folder (``wiml report``) and the one-screen terminal summary.

Reads what the steps wrote (see docs/architecture.md, "Run folder"): ``pipeline.json``, ``data/prepare.json``,
``weak/best.json``, ``cam/summary.json``, ``wia/summary.json`` + ``wia/result/recording/*.json``,
``msl/best.json`` + ``msl/strong_labels.json``, ``test/summary.json`` + ``test/overlays/``,
``baselines/summary.json``; any of them may be missing (the section then says so). Figures are copied into
``RUN/report/`` so that the report folder stands alone.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np

from wiml.evaluation.metrics import format_mean_std
from wiml.layout import RunLayout, summary_json
from wiml.utils import atomic_path, atomic_write_text, pyplot, save_figure, staged_output

logger = logging.getLogger(__name__)


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    if value is None:
        return "n/a"
    return str(value)


def _scalars_table(data: dict, title: str = "value") -> list[str]:
    rows = [(k, v) for k, v in data.items() if isinstance(v, (int, float, str)) or v is None]
    if not rows:
        return []
    return [f"| key | {title} |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in rows]


def _flatten(data: dict, skip: tuple[str, ...] = ("config", "per_slice")) -> dict:
    """One level of nested dicts -> ``{"outer.inner": value}``; lists and ``skip`` keys are left out."""
    out = {}
    for k, v in data.items():
        if k in skip or isinstance(v, list):
            continue
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items() if not isinstance(vv, (dict, list))})
        else:
            out[k] = v
    return out


def wia_main_stats(wia: dict) -> dict:
    """The WIA summary's numbers of its main mode (``cam``) or the top level of a flat summary."""
    mode = wia.get("main_mode")
    return wia[mode] if isinstance(wia.get(mode), dict) else wia


def _copy(src: Path, dst_dir: Path, name: str | None = None) -> str | None:
    if not src.is_file():
        return None
    dst = dst_dir / (name or src.name)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst.name


def recordings_curve(recording_dir: Path) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Mean Dice after 0..N clicks over the WIA recordings (a slice that stopped early keeps its last Dice).

    Returns:
        ``(clicks (N+1,), mean dice (N+1,), number of slices)`` or None without recordings.
    """
    from wiml.data.wia_result import is_previous_version, read_recording
    from wiml.errors import InputError

    curves = []
    for path in sorted(Path(recording_dir).glob("*.json")):
        if is_previous_version(path):
            continue
        try:
            steps = read_recording(path).dice_per_step  # the proposal's Dice first, then after each click
        except InputError as exc:
            logger.warning("%s", exc)
            continue
        if steps:
            curves.append([float(s) for s in steps])
    if not curves:
        return None
    n = max(len(c) for c in curves)
    padded = np.array([c + [c[-1]] * (n - len(c)) for c in curves])
    return np.arange(n), padded.mean(axis=0), len(curves)


def plot_dice_vs_clicks(recording_dir: Path, path: Path) -> Path | None:
    """Draw the mean Dice-vs-clicks curve of the WIA recordings into ``path`` (None without recordings)."""
    curve = recordings_curve(recording_dir)
    if curve is None:
        return None
    plt = pyplot()

    clicks, dice, n = curve
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(clicks, dice, marker="o")
    ax.axhline(0.9, color="grey", ls="--", lw=0.8)
    ax.set(xlabel="clicks", ylabel="mean Dice", title=f"robot WIA, {n} slices", ylim=(0, 1))
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=100)


def baselines_table(summary: dict) -> list[str]:
    """Markdown rows of ``baselines/summary.json`` (method, seeds, test Dice / HD95 mean ± std over seeds)."""
    rows = summary.get("methods") or []
    if not rows:
        return []
    lines = [
        "| method | strong labels | seeds | test Dice (per patient) | HD95 mm | train s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r.get('strong', 'n/a')} | {r.get('n_seeds', 1)} | "
            f"{format_mean_std(r.get('dice') or {})} | {format_mean_std(r.get('hd95_mm') or {}, 2)} | "
            f"{_fmt(r.get('train_s'))} |"
        )
    return lines


def write_report(run: str | Path) -> Path:
    """Write ``RUN/report/report.md`` (+ figures) from whatever the run folder holds. Returns its path."""
    run = Path(run).resolve()
    layout = RunLayout(run)
    # written into a staging folder and moved into place when complete (report.md last): nothing half-written
    with staged_output(layout.report, last=(layout.report_md.name,)) as stage:
        _write_report(run, layout, stage)
    logger.info("report: %s", layout.report_md)
    return layout.report_md


def _write_report(run: Path, layout: RunLayout, out: Path) -> None:
    """:func:`write_report` into ``out`` (the staging folder)."""
    from wiml.evaluation.evaluate import metrics_markdown

    md = [f"# WIML run report — {run.name}", "", f"Run folder: `{run}`", ""]

    pipe = _load(layout.pipeline_state)
    if pipe:
        md += ["## Steps and wall time", "", "| step | status | wall time s |", "|---|---|---|"]
        for name, st in pipe.get("steps", {}).items():
            status = st.get("status")
            if name == "report" and status == "running":
                status = "this report"
            md.append(f"| {name} | {status} | {_fmt(st.get('seconds'))} |")
        md += ["", f"Total of this invocation: {_fmt(pipe.get('total_s'))} s.", ""]

    prep = _load(layout.prepare_record)
    if prep:
        md += ["## Data", ""]
        info = {
            k: v for k, v in prep.items() if isinstance(v, (int, float, str)) and k not in ("fingerprint",)
        }
        splits = prep.get("splits")
        if isinstance(splits, dict):
            info.update({f"patients ({k})": len(v) if isinstance(v, list) else v for k, v in splits.items()})
        md += _scalars_table(info) + [""]

    weak = _load(layout.weak.best_sidecar)
    md += ["## Weak model (tags only)", ""]
    if weak:
        md += _scalars_table({"epoch": weak.get("epoch"), **(weak.get("metrics") or {})}) + [""]
        if _copy(layout.weak.curves, out, "weak_curves.png"):
            md += ["![weak training curves](weak_curves.png)", ""]
    else:
        md += ["(no weak checkpoint)", ""]

    cam = _load(summary_json(layout.cam))
    if cam:
        md += ["## CAM initial masks (weak model, test split)", ""] + _scalars_table(_flatten(cam)) + [""]
        overlays = sorted((layout.cam / "overlays").glob("*.png"))
        overlays = (
            [overlays[i] for i in np.linspace(0, len(overlays) - 1, 3).round().astype(int)]
            if overlays
            else []
        )
        for p in overlays:
            md.append(f"![CAM {p.stem}]({_copy(p, out, 'cam_' + p.name)})")
        md += [""] if overlays else []

    wia = _load(summary_json(layout.wia))
    md += ["## Weakly-interactive annotation (robot user)", ""]
    if wia:
        stats = wia_main_stats(wia)
        md += [
            f"Robot user on {stats.get('n_slices', '?')} slices (mode {wia.get('main_mode', '?')}); strong labels "
            f"written for {', '.join(wia.get('selected', [])) or 'n/a'}.",
            "",
        ]
        md += _scalars_table(_flatten(stats)) + [""]
        md += [
            "`nocXX`: mean number of clicks to reach Dice 0.XX (capped at the click limit); `reached_XX`: share "
            "of slices (0-1) that reach Dice 0.XX within the limit; `dice_k`: mean Dice after k clicks.",
            "",
        ]
    fig = _copy(layout.wia / "dice_vs_clicks.png", out)
    if fig is None and plot_dice_vs_clicks(layout.wia_result / "recording", out / "dice_vs_clicks.png"):
        fig = "dice_vs_clicks.png"
    if fig:
        md += [f"![Dice vs clicks]({fig})", ""]
    elif not wia:
        md += ["(no WIA results)", ""]

    msl = _load(layout.msl.best_sidecar)
    md += ["## MSL model (tags + K strong labels)", ""]
    if msl:
        strong = _load(layout.msl.strong_labels) or {}
        md += _scalars_table(
            {
                "epoch": msl.get("epoch"),
                "strong labels": strong.get("n_strong"),
                "strong source": strong.get("source"),
                **(msl.get("metrics") or {}),
            }
        ) + [""]
        if _copy(layout.msl.curves, out, "msl_curves.png"):
            md += ["![MSL training curves](msl_curves.png)", ""]
    else:
        md += ["(no MSL checkpoint)", ""]

    test = _load(summary_json(layout.test))
    md += ["## Test set", ""]
    if test:
        md += [
            f"{test.get('n_slices')} slices of {test.get('n_patients')} held-out cases; inference "
            f"{1000 * (test.get('seconds_per_slice') or 0):.1f} ms per slice.",
            "",
            metrics_markdown(test),
            "",
        ]
        for p in sorted((layout.test / "overlays").glob("*.png"))[:4]:
            md.append(f"![test {p.stem}]({_copy(p, out, 'test_' + p.name)})")
        md += ["", "Overlays: ground truth blue, prediction green.", ""]
    else:
        md += ["(no test results)", ""]

    for folder, title in ((layout.baselines, "Baselines"), (layout.ablations, "Ablations")):
        base = _load(summary_json(folder))
        if base:
            md += [
                f"## {title} (same split, strong labels and test code)",
                "",
                f"Seeds {base.get('seeds')}; strong labels: {' '.join(base.get('strong', []))}.",
                "",
            ]
            md += baselines_table(base) + [""]
    atomic_write_text(out / layout.report_md.name, "\n".join(md) + "\n")


def _seconds(step: dict) -> str:
    return f"{step['seconds']:.0f}s" if step.get("seconds") else "-"


def terminal_summary(run: str | Path) -> str:
    """A one-screen text summary of a run (what ``wiml pipeline`` prints at the end)."""
    run = Path(run).resolve()
    layout = RunLayout(run)
    lines = [f"WIML run {run}"]
    pipe = _load(layout.pipeline_state) or {}
    steps = pipe.get("steps", {})
    if steps:
        lines.append(
            "  steps: "
            + ", ".join(
                f"{k} {_seconds(v)}{'' if v.get('status') == 'done' else ' (skipped)'}"
                for k, v in steps.items()
            )
        )
    weak = _load(layout.weak.best_sidecar) or {}
    if weak:
        m = weak.get("metrics") or {}
        lines.append(
            f"  weak model:  val AUC {_fmt(m.get('val_auc'))}, accuracy {_fmt(m.get('val_accuracy'))}"
        )
    wia = _load(summary_json(layout.wia)) or {}
    if wia:
        stats = wia_main_stats(wia)
        keys = [k for k in ("n_slices", "initial_dice", "noc85", "noc90") if k in stats]
        lines.append("  WIA (robot): " + ", ".join(f"{k} {_fmt(stats[k])}" for k in keys))
    strong = _load(layout.msl.strong_labels) or {}
    msl = _load(layout.msl.best_sidecar) or {}
    if msl:
        lines.append(
            f"  MSL model:   {strong.get('n_strong', '?')} strong labels ({strong.get('source', '?')}), "
            f"best val Dice {_fmt((msl.get('metrics') or {}).get('val_dice'))} at epoch {msl.get('epoch')}"
        )
    test = _load(summary_json(layout.test)) or {}
    if test:
        level = "per_patient" if test.get("per_patient") else "per_slice_positive"
        s = test[level]
        lines.append(
            f"  TEST ({level.replace('_', ' ')}): Dice {format_mean_std(s['dice'])}, IoU "
            f"{format_mean_std(s['iou'])}, HD95 {format_mean_std(s['hd95_mm'], 2)} mm, "
            f"ASD {format_mean_std(s['asd_mm'], 2)} mm"
        )
    base = _load(summary_json(layout.baselines)) or {}
    abl = _load(summary_json(layout.ablations)) or {}
    for r in base.get("methods", []) + abl.get("methods", []):
        lines.append(f"    {r['method']:<24} Dice {format_mean_std(r.get('dice') or {})}")
    if layout.report_md.is_file():
        lines.append(f"  report: {layout.report_md}")
    return "\n".join(lines)
