"""Does the annotator's window stay responsive while a click is refined? (WIA GUI, issue 4 item 4)

Drives the real window offscreen on a real slice: Segment, then robot-user clicks
(:func:`wiml.interactive.robot.next_click`) against the ground truth. A 5 ms QTimer on the GUI thread
records the gaps between its ticks; a frozen window shows up as a gap as long as the refinement. For each
action the script also records the time from the click to the drawn mask. It runs the annotator's default
(refinement in a helper process, :mod:`wiml.annotator.remote`), then ``--in-thread`` (refinement on the worker
thread, where SimpleCRF holding Python's GIL still stalls the GUI thread), then replays the same clicks with
the refinement called directly on the GUI thread, the naive design, to show the stall it would cause.

With ``--sizes 256,512`` the slice (and its ground truth) is resized to each side and the default mode
(helper process) is measured at each size side by side in one run; the table goes to docs/benchmarks.md with
the machine's load (``os.getloadavg``) before and after.

Usage:
    QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python bench/gui_responsiveness.py \\
        ../shared/data/wiml_samples/WIA/data_source/1.png --checkpoint runs/real/weak_liver/best.safetensors
    QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python bench/gui_responsiveness.py \\
        ../shared/data/wiml_samples/WIA/data_source/1.png --sizes 256,512 --clicks 10 --write-docs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _percentiles(values: list[float]) -> str:
    v = np.asarray(values) * 1000.0
    return f"median {np.median(v):.0f} ms, p95 {np.percentile(v, 95):.0f} ms, max {v.max():.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument(
        "--sizes", default="", help="e.g. 256,512: the slice resized to each side, side by side"
    )
    parser.add_argument("--write-docs", action="store_true", help="with --sizes: update docs/benchmarks.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from wiml.annotator.controller import AnnotationController
    from wiml.gui.window import AnnotatorWindow
    from wiml.interactive.robot import next_click

    app = QApplication.instance() or QApplication(sys.argv[:1])
    ticks: list[float] = []
    heartbeat = QTimer(interval=5)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def drive(refine_in_process: bool) -> dict:
        """Segment + robot clicks in the real window; GUI event-loop gaps and click-to-mask times."""
        with tempfile.TemporaryDirectory() as tmp:
            ctl = AnnotationController(result_dir=Path(tmp), refine_in_process=refine_in_process)
            if args.checkpoint is not None:
                ctl.load_checkpoint(args.checkpoint)
            win = AnnotatorWindow(ctl, ask_to_save=False)
            win.resize(1100, 900)
            win.show()

            def settle() -> None:
                win.worker.wait_idle(poll_ms=2)

            win.open_path(args.image)
            win.worker.submit(ctl.warm_up)
            settle()
            gt = win.snapshot.ground_truth
            if gt is None:
                raise SystemExit(f"{args.image}: needs a ground truth in a label/ folder")
            heartbeat.start()
            ticks.clear()
            t0 = time.perf_counter()
            win.segment()
            settle()
            out = {
                "segment_s": time.perf_counter() - t0,
                "segment_gaps": np.diff(ticks).tolist() or [0.0],
                "click_s": [],
                "gaps": [],
                "clicks": [],
            }
            for _ in range(args.clicks):
                click = next_click(win.snapshot.mask, gt)
                if click is None:
                    break
                out["clicks"].append(click)
                ticks.clear()
                t0 = time.perf_counter()
                win.click(click.row, click.col, bool(click.label))
                settle()
                out["click_s"].append(time.perf_counter() - t0)
                out["gaps"].extend(np.diff(ticks).tolist())
            heartbeat.stop()
            out["dice"] = win.snapshot.dice
            out["shape"] = win.snapshot.raw.shape
            win.close()
        return out

    if args.sizes:
        return _side_by_side(args, drive)
    runs = {"helper process (default)": drive(True), "worker thread (--in-thread)": drive(False)}
    clicks = runs["helper process (default)"]["clicks"]

    # the naive design: the same clicks refined on the GUI thread (the event loop waits for each)
    with tempfile.TemporaryDirectory() as tmp:
        ctl2 = AnnotationController(result_dir=Path(tmp))
        if args.checkpoint is not None:
            ctl2.load_checkpoint(args.checkpoint)
        ctl2.open(args.image)
        ctl2.segment()
        blocked = []
        for click in clicks:
            t0 = time.perf_counter()
            ctl2.add_click(click.row, click.col, bool(click.label))
            app.processEvents()
            blocked.append(time.perf_counter() - t0)

    shape = runs["helper process (default)"]["shape"]
    print(f"image {args.image} ({shape[0]} x {shape[1]} px), checkpoint {args.checkpoint}")
    for name, out in runs.items():
        print(
            f"[{name}] Segment on the worker: {1000 * out['segment_s']:.0f} ms, GUI gaps meanwhile: "
            f"{_percentiles(out['segment_gaps'])}"
        )
        print(
            f"[{name}] {len(out['click_s'])} robot clicks, click -> mask drawn: {_percentiles(out['click_s'])}; "
            f"final Dice {out['dice']:.3f}"
        )
        print(f"[{name}] GUI event-loop gaps during the clicks (5 ms timer): {_percentiles(out['gaps'])}")
    print(f"[GUI thread, naive] same clicks: window frozen per click {_percentiles(blocked)}")
    return 0


def _resized_case(image: Path, size: int, folder: Path) -> Path:
    """``folder/images/<name>.png`` and ``folder/label/<name>.png``: the slice and its ground truth at size x size."""
    import SimpleITK as sitk

    from wiml.annotator.loading import find_ground_truth
    from wiml.data.io import read_slice
    from wiml.data.prepare import resize_stack

    gt_path = find_ground_truth(image)
    if gt_path is None:
        raise SystemExit(f"{image}: needs a ground truth in a label/ folder")
    pixels = read_slice(image).astype(np.float32)
    gt = (read_slice(gt_path) > 127).astype(np.uint8)
    out = folder / f"{size}"
    (out / "images").mkdir(parents=True)
    (out / "label").mkdir()
    img = np.clip(resize_stack(pixels[None], size)[0], 0, 255).round().astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(img), str(out / "images" / "case.png"))
    lab = resize_stack(gt[None], size, is_mask=True)[0] * np.uint8(255)
    sitk.WriteImage(sitk.GetImageFromArray(lab), str(out / "label" / "case.png"))
    return out / "images" / "case.png"


def _side_by_side(args, drive) -> int:
    """The default mode at each size of ``args.sizes``, one table (and docs/benchmarks.md)."""
    from benchdoc import shown_path, write_section

    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    load_before = os.getloadavg()
    rows = []
    original = args.image
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            args.image = _resized_case(original, size, Path(tmp))
            out = drive(True)
            rows.append((size, out))
    args.image = original
    load_after = os.getloadavg()
    ms = lambda v: 1000.0 * np.asarray(v)  # noqa: E731
    lines = [
        f"Command: `QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python bench/gui_responsiveness.py "
        f"{shown_path(original)} --sizes {args.sizes} --clicks {args.clicks} --write-docs`"
        + (f" (checkpoint {args.checkpoint})" if args.checkpoint else " (no checkpoint: clicks only)"),
        "",
        f"Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on "
        f"{os.cpu_count()} cores shared with other jobs. Refinement in the helper process (the default); the "
        "slice and its ground truth resized to each side; robot-user clicks; click -> refined mask drawn in the "
        "window (offscreen); GUI event-loop gaps from a 5 ms timer.",
        "",
        "| side (px) | clicks | click -> mask: median | p95 | max | GUI gap median | GUI gap max | final Dice |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, out in rows:
        c, g = ms(out["click_s"]), ms(out["gaps"] or [0.0])
        lines.append(
            f"| {size} | {len(c)} | {np.median(c):.0f} ms | {np.percentile(c, 95):.0f} ms | {c.max():.0f} ms | "
            f"{np.median(g):.0f} ms | {g.max():.0f} ms | {out['dice']:.3f} |"
        )
    if len(rows) == 2:
        a, b = (np.median(ms(out["click_s"])) for _size, out in rows)
        lines += ["", f"Ratio of the medians, {rows[1][0]} / {rows[0][0]} px: {b / a:.2f}."]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        from wiml.layout import PROJECT_ROOT

        write_section(
            PROJECT_ROOT / "docs" / "benchmarks.md",
            "Annotator: click-to-mask at 256 and 512 px (bench/gui_responsiveness.py)",
            text,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
