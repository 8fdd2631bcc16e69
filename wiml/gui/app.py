"""The annotator's arguments and window set-up (the command line itself is :mod:`wiml.cli.annotate`).

Example:
    python WIA/main.py                                   # data_source/ + runs/demo/weak/best.safetensors
    python WIA/main.py scan.nii.gz --checkpoint runs/real/liver/weak/best.safetensors --result-dir out/
    python WIA/main.py ../shared/data/ircadb_patient1/PATIENT_DICOM   # a DICOM series
"""

from __future__ import annotations

# light imports only: the command line parses and a splash window shows before the libraries load
import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def build_parser(
    default_image: Path | None = None, default_checkpoint: Path | None = None
) -> argparse.ArgumentParser:
    """Arguments of the annotator; the defaults come from the entry point (WIA/main.py)."""
    parser = argparse.ArgumentParser(
        prog="WIA/main.py", description="WIA annotator: CAM initial mask + click refinement -> strong labels"
    )
    parser.add_argument(
        "image",
        nargs="?",
        type=Path,
        default=default_image,
        help="image, volume, DICOM folder, or a folder of slices (its first image opens) "
        f"(default: {default_image})",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=default_checkpoint,
        help=f"weak checkpoint (.safetensors) for the CAM (default: {default_checkpoint})",
    )
    parser.add_argument(
        "--result-dir",
        type=Path,
        default=None,
        help="where result/{CAM,initial_mask,strong_label,recording} go "
        "(default: result/ beside the image's folder)",
    )
    parser.add_argument(
        "--device", default="cpu", help="device of the weak model: cpu, cuda, auto (default cpu)"
    )
    parser.add_argument(
        "--cam-size",
        type=int,
        default=None,
        help="side in px of the square network input for Grad-CAM (default: the size the weak "
        "model was trained at, from its sidecar; 256 when the sidecar does not say)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="refinement parameter (wiml.interactive.session.RefinementConfig), e.g. --set lam=5 "
        "--set click_radius_px=3 --set backend=geodistk",
    )
    parser.add_argument(
        "--in-thread",
        action="store_true",
        help="refine on the worker thread of this process instead of a helper process (the GUI "
        "then stalls while SimpleCRF holds Python's GIL)",
    )
    parser.add_argument("--debug", action="store_true", help="debug logging")
    return parser


def resolve_start_image(path: Path | None) -> Path | None:
    """A file stays; a folder of slices gives its first image; any other folder (a DICOM series) stays."""
    from wiml.annotator.loading import list_images

    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        images = list_images(path)
        return images[0] if images else path
    return path


def show_splash():
    """A small window shown at once while the libraries load (needs a ``QApplication``); close it later."""
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QApplication, QLabel

    splash = QLabel("WIML annotator\n\nstarting: loading the libraries ...")
    splash.setWindowTitle("WIML annotator")
    splash.setAlignment(Qt.AlignCenter)
    splash.setStyleSheet("QLabel { font-size: 15px; padding: 30px; }")
    splash.resize(420, 160)
    splash.show()
    QApplication.processEvents()
    return splash


def create_window(args: argparse.Namespace):
    """Build the controller and the shown window from parsed arguments; open the start image.

    Needs a ``QApplication``. A missing or unreadable checkpoint is not an error: the window says so.

    Raises:
        wiml.errors.WimlError: a bad ``--set`` refinement override.
    """
    from wiml.annotator.controller import AnnotationController
    from wiml.config import load_config
    from wiml.gui.window import AnnotatorWindow
    from wiml.interactive.session import RefinementConfig

    refinement = load_config(RefinementConfig, None, args.overrides)
    refinement.make_session()  # validates the values
    cam_input_px = args.cam_size if args.cam_size is not None else "auto"
    controller = AnnotationController(
        result_dir=args.result_dir,
        device=args.device,
        refinement=refinement,
        cam_input_px=cam_input_px,
        refine_in_process=not args.in_thread,
    )
    start = resolve_start_image(args.image)
    folder = (
        start if (start is not None and start.is_dir()) else (start.parent if start is not None else None)
    )
    window = AnnotatorWindow(controller, start_folder=folder)
    window.show()
    if start is not None:
        if start.exists():
            window.open_path(start)
        else:
            window.show_error(f"{start}: not found; use File > Open Image")
    if args.checkpoint is not None:  # on the worker, after the window shows (torch loads in seconds)
        window.load_checkpoint(args.checkpoint)
    window.worker.submit(controller.warm_up)  # after opening, so the image shows first
    return window
