"""Test an MSL FPSNet: the original release's entry point.

With no arguments it segments the project's ``test_data/`` (``data/*.png`` with ``label/*.png``) with
``runs/demo/msl/best.safetensors`` (the checkpoint the README's main command trains) and writes per-slice
metrics, a markdown table and overlays to ``runs/demo/test_data_eval/``. Every option of ``wiml test`` is
accepted, e.g.::

    python MSL/code/test_MSL_FPSNet.py --run runs/demo              # the demo's held-out test patients
    python MSL/code/test_MSL_FPSNet.py --data RUN/data --checkpoint RUN/msl/best.safetensors --out RUN/test
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, before any installed wiml


def main(argv: list[str] | None = None) -> int:
    from wiml.cli.test import main as test_main  # defaults from wiml.layout, not the working directory

    return test_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
