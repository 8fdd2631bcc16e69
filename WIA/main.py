"""WIA annotator, the entry point users know from the original WIML release.

    python WIA/main.py [IMAGE] [--checkpoint CKPT] [--result-dir DIR]

Without arguments it opens the project's ``data_source/`` with the weak checkpoint that the README's main
command (``make demo``) trains, ``runs/demo/weak/best.safetensors``; both are resolved from this file's
location, so it works from any working directory. See docs/usage_gui.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    try:
        import wiml  # noqa: F401 - installed (pip install -e .)
    except ImportError:  # running from a checkout without installing
        sys.path.insert(0, str(PROJECT_ROOT))
    from wiml.cli.annotate import main

    sys.exit(
        main(
            default_image=PROJECT_ROOT / "data_source",
            default_checkpoint=PROJECT_ROOT / "runs" / "demo" / "weak" / "best.safetensors",
        )
    )
