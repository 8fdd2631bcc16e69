"""``wiml annotate`` (and ``python WIA/main.py``): start the WIA annotator GUI.

Example:
    python WIA/main.py                                   # data_source/ + runs/demo/weak/best.safetensors
    python WIA/main.py scan.nii.gz --checkpoint runs/real/liver/weak/best.safetensors --result-dir out/
    python WIA/main.py ../shared/data/ircadb_patient1/PATIENT_DICOM   # a DICOM series
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from wiml.errors import WimlError
from wiml.layout import DEMO_RUN, SAMPLE_IMAGES


def main(
    argv: Sequence[str] | None = None,
    default_image: Path | None = SAMPLE_IMAGES,
    default_checkpoint: Path | None = DEMO_RUN.weak.best,
) -> int:
    """Parse arguments, build the window, run the Qt event loop. Returns the exit status (2 on bad input)."""
    from wiml.gui.app import build_parser, create_window, show_splash

    args = build_parser(default_image, default_checkpoint).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        from PyQt5.QtWidgets import QApplication
    except ImportError:
        print("WIA/main.py: error: PyQt5 is not installed (pip install 'wiml[gui]')", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("WIML annotator")
    splash = show_splash()  # at once; the libraries (SciPy, SimpleITK, torch) load meanwhile
    try:
        window = create_window(args)
    except WimlError as exc:
        print(f"WIA/main.py: error: {exc}", file=sys.stderr)
        return 2
    finally:
        splash.close()
    status = int(app.exec_())
    window.worker.shutdown()
    window.controller.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
