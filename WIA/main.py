"""WIA annotator, the entry point users know from the original WIML release.

    python WIA/main.py [IMAGE] [--checkpoint CKPT] [--result-dir DIR]

Without arguments it opens the project's ``data_source/`` with the weak checkpoint that the README's main
command (``make demo``) trains, ``runs/demo/weak/best.safetensors``; both come from :mod:`wiml.layout`
(the checkout the package is imported from), so it works from any working directory. See docs/usage_gui.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    try:
        import wiml  # noqa: F401 - installed (pip install -e .)
    except (
        ImportError
    ):  # running from a checkout without installing: the checkout is this file's parent's parent
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from wiml.cli.annotate import main  # defaults: wiml.layout.SAMPLE_IMAGES and DEMO_RUN.weak.best

    sys.exit(main())
