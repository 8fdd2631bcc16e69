"""Do refined masks have straight edges where the refinement's region of interest ends? (issue 10 item 4)

The graph cut of :func:`wiml.interactive.session.refine_mask` runs inside a box (the candidates' bounding box
grown by ``roi_margin_px``); a target that reaches past the box is cut straight along it. For every refinement
of a robot-user session (Segment without a CAM, then clicks by :func:`wiml.interactive.robot.next_click` until
Dice 0.9 or ``--clicks``) on real volume slices, this records the box and counts the mask's boundary pixels
that lie on the box's border (image borders excluded). Prints the share per data set and overall.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python bench/roi_edges.py ../shared/data [--slices 6] [--clicks 10] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def _boundary(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    m = mask > 0
    return m & ~ndimage.binary_erosion(m, border_value=1)


def _on_box_border(boundary: np.ndarray, roi: tuple[slice, slice]) -> int:
    """Boundary pixels on the ROI box's edges that are not image edges."""
    h, w = boundary.shape
    r, c = roi
    edge = np.zeros_like(boundary)
    if r.start > 0:
        edge[r.start, c] = True
    if r.stop < h:
        edge[r.stop - 1, c] = True
    if c.start > 0:
        edge[r, c.start] = True
    if c.stop < w:
        edge[r, c.stop - 1] = True
    return int((boundary & edge).sum())


def _cases(shared: Path, n_slices: int, checkpoints: dict[str, Path]):
    """(set name, (H, W) image in [0, 1], (H, W) reference, CAM or None) for evenly spaced target slices of
    each volume; the CAM of the weak checkpoint given for that set (``ct`` / ``mr``)."""
    from wiml.annotator.controller import AnnotationController

    volumes = [("IRCADb liver CT", "ct", shared / "ircadb_patient1" / "PATIENT_DICOM")]
    volumes += [
        ("BraTS 2015 tumour (FLAIR)", "mr", p / "Flair_subtrMeanDivStd.nii.gz")
        for p in sorted((shared / "brats2015").glob("brats_*"))[:2]
    ]
    for name, kind, path in volumes:
        if not path.exists():
            continue
        ctl = AnnotationController(propagate=False, autosave=False)
        if kind in checkpoints:
            ctl.load_checkpoint(checkpoints[kind])
        ctl.open(path)
        gt = ctl.image.ground_truth
        present = [i for i in range(gt.shape[0]) if gt[i].sum() > 50]
        for i in np.linspace(0, len(present) - 1, n_slices).round().astype(int):
            ctl.set_slice(present[i])
            cam = ctl._cam() if ctl.model is not None else None
            yield (
                name + (" + CAM" if cam is not None else ""),
                ctl.analysis_image,
                ctl.ground_truth.copy(),
                cam,
            )


def main(argv: list[str] | None = None) -> int:
    from wiml.cli.main import add_overrides_argument

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="the shared data folder (../shared/data)")
    parser.add_argument("--slices", type=int, default=6, help="target slices per volume (default 6)")
    parser.add_argument("--clicks", type=int, default=10, help="robot clicks per slice at most (default 10)")
    add_overrides_argument(
        parser,
        "refinement parameter (RefinementConfig), e.g. the earlier defaults: --set lam=5 --set sigma=0.1",
    )
    parser.add_argument(
        "--ct-checkpoint", type=Path, help="weak checkpoint: start the CT slices from its CAM"
    )
    parser.add_argument(
        "--mr-checkpoint", type=Path, help="weak checkpoint: start the MR slices from its CAM"
    )
    parser.add_argument("--label", default="defaults", help="name of this setting in the docs table")
    parser.add_argument("--write-docs", action="store_true", help="append this run to docs/benchmarks.md")
    args = parser.parse_args(argv)

    import wiml.interactive.session as session_module
    from wiml.evaluation.metrics import dice_score
    from wiml.interactive.robot import next_click
    from wiml.interactive.session import RefinementConfig

    rois: list[tuple[slice, slice] | None] = []
    original = session_module.region_of_interest

    def recording(candidates, margin_px):
        roi = original(candidates, margin_px)
        rois.append(roi)
        return roi

    session_module.region_of_interest = recording
    totals: dict[str, list[int]] = {}
    from wiml.config import load_config

    config = load_config(RefinementConfig, None, args.overrides)
    checkpoints = {k: v for k, v in (("ct", args.ct_checkpoint), ("mr", args.mr_checkpoint)) if v}
    for name, image, gt, cam in _cases(args.shared, args.slices, checkpoints):
        session = config.make_session()
        rois.clear()
        session.set_image(image, cam=cam)
        mask = session.initial_mask()
        if cam is not None and rois and rois[-1] is not None:  # the initial mask's cut counts too
            b = _boundary(mask)
            t = totals.setdefault(name, [0, 0, 0])
            t[0] += _on_box_border(b, rois[-1])
            t[1] += int(b.sum())
            t[2] += 1
        for _ in range(args.clicks):
            if dice_score(mask, gt) >= 0.9:
                break
            click = next_click(mask, gt)
            if click is None:
                break
            rois.clear()
            mask = session.add_click(click.row, click.col, bool(click.label))
            roi = rois[-1] if rois else None
            b = _boundary(mask)
            on = _on_box_border(b, roi) if roi is not None else 0
            t = totals.setdefault(name, [0, 0, 0])
            t[0] += on
            t[1] += int(b.sum())
            t[2] += 1
    session_module.region_of_interest = original
    load = os.getloadavg()[0]
    lines = [
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/roi_edges.py ../shared/data --slices {args.slices} "
        f"--clicks {args.clicks}"
        + "".join(f" --set {o}" for o in args.overrides)
        + f" --label '{args.label}' --write-docs` (load average {load:.2f}; `RefinementConfig` "
        f"{'defaults' if not args.overrides else 'with ' + ', '.join(args.overrides)}, "
        f"roi_margin_px={config.roi_margin_px})",
        "",
        "| data | refinements | mask boundary px | on the ROI border | share |",
        "|---|---|---|---|---|",
    ]
    all_on = all_b = 0
    for name, (on, b, n) in totals.items():
        lines.append(f"| {name} | {n} | {b} | {on} | {on / max(b, 1):.4f} |")
        all_on, all_b = all_on + on, all_b + b
    lines.append(
        f"| all | {sum(t[2] for t in totals.values())} | {all_b} | {all_on} | {all_on / max(all_b, 1):.4f} |"
    )
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchdoc import write_section

        write_section(
            Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md",
            f"Refinement: straight edges at the region of interest, {args.label} (bench/roi_edges.py)",
            text,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
