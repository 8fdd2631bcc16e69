"""Render the annotator offscreen after Segment and a few robot-user clicks, and save the window as PNG.

Makes the pictures in docs/images/gui_*.png; the clicks are the robot user's
(:func:`wiml.interactive.robot.next_click`) against the image's ground truth, so the picture is reproducible.

For a volume: ``--finish`` annotates (robot clicks up to Dice 0.9) and saves those slices first, ``--tag-range``
tags the target's first and last slice (E twice), ``--predict-tags`` fills the strip with the weak model's tag
probabilities, and ``--slice`` is then shown: next to a finished slice it holds the propagated proposal.

Example:
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/gui_screenshot.py ../shared/data/wiml_samples/WIA/data_source/1.png \\
        --checkpoint runs/real/weak_liver/best.safetensors --clicks 3 --out docs/images/gui_liver.png
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/gui_screenshot.py ../shared/data/ircadb_patient1/PATIENT_DICOM \\
        --finish 70,71 --tag-range reference --slice 72 --clicks 0 --out docs/images/gui_volume.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gui_screenshot.py", description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="image with a ground truth in a label/ folder beside it")
    parser.add_argument("--checkpoint", type=Path, default=None, help="weak checkpoint for the CAM")
    parser.add_argument("--clicks", type=int, default=3, help="robot-user clicks after Segment (default 3)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--size", default="1100x900", help="window size WxH in px (default 1100x900)")
    parser.add_argument("--show-cam", action="store_true", help="draw the CAM heat map too")
    parser.add_argument(
        "--finish", default="", help="volume: slices (0-based, comma-separated) to annotate and save first"
    )
    parser.add_argument(
        "--tag-range", default="", help="volume: FIRST,LAST slice of the target (0-based), or 'reference'"
    )
    parser.add_argument(
        "--predict-tags", action="store_true", help="volume: tag probabilities of the weak model"
    )
    parser.add_argument("--slice", type=int, default=None, help="volume: the slice to show (0-based)")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PyQt5.QtWidgets import QApplication

    from wiml.annotator.controller import AnnotationController
    from wiml.gui.window import AnnotatorWindow
    from wiml.interactive.robot import next_click

    app = QApplication.instance() or QApplication(sys.argv[:1])
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        controller = AnnotationController(result_dir=Path(tmp))
        if args.checkpoint is not None:
            controller.load_checkpoint(args.checkpoint)
        window = AnnotatorWindow(controller, ask_to_save=False)
        window.resize(width, height)
        window.show()

        def settle() -> None:
            window.worker.wait_idle(poll_ms=20)
            app.processEvents()

        window.open_path(args.image)
        settle()
        if window.snapshot.ground_truth is None and args.clicks:
            print(
                f"{args.image}: no ground truth in a label/ folder; the robot user cannot click",
                file=sys.stderr,
            )
            return 2

        def robot(max_clicks: int, until_dice: float = 1.01) -> None:
            for _ in range(max_clicks):
                snap = window.snapshot
                if snap.dice is not None and snap.dice >= until_dice:
                    break
                click = next_click(snap.mask, snap.ground_truth)
                if click is None:
                    break
                window.click(click.row, click.col, bool(click.label))
                settle()

        for index in [int(v) for v in args.finish.split(",") if v.strip()]:
            window.set_slice(index)
            settle()
            if window.snapshot.mask is None:
                window.segment()
                settle()
            robot(10, until_dice=0.9)
            window.save()
            settle()
        if args.tag_range:
            if args.tag_range == "reference":
                gt = controller.image.ground_truth
                present = [i for i in range(gt.shape[0]) if gt[i].any()]
                first, last = present[0], present[-1]
            else:
                first, last = (int(v) for v in args.tag_range.split(","))
            for index in (first, last):
                window.set_slice(index)
                settle()
                window.mark_range()
                settle()
        if args.predict_tags:
            window.predict_tags()
            settle()
        if args.slice is not None:
            window.set_slice(args.slice)
            settle()
        if window.snapshot.mask is None or args.slice is None:
            window.segment()
            settle()
        for _ in range(args.clicks):
            click = next_click(window.snapshot.mask, window.snapshot.ground_truth)
            if click is None:
                break
            window.click(click.row, click.col, bool(click.label))
            settle()
        if args.show_cam:
            window.act_show_cam.setChecked(True)
        window.statusBar().clearMessage()
        window.refresh_status()
        app.processEvents()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.out))
        snap = window.snapshot
        print(
            f"{args.out}: {len(snap.clicks)} click(s), Dice {snap.dice:.3f}"
            if snap.dice is not None
            else f"{args.out}: {len(snap.clicks)} click(s)"
        )
        window.worker.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
