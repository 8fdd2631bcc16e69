"""Train the MSL FPSNet (tags of every slice + K strong labels): the original release's entry point.

With no arguments it trains on the demo run that the README's main command makes (``runs/demo``): the
prepared data, the robot-made WIA strong labels and the weak checkpoint, into ``runs/demo/msl_script``.
Every option of ``wiml train-msl`` is accepted and overrides these defaults, e.g.::

    python MSL/code/train_MSL_FPSNet.py --data RUN/data --out RUN/msl --strong-from gt --k 5 --select random
    python MSL/code/train_MSL_FPSNet.py --config configs/msl_paper.yaml      # the original recipe
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, before any installed wiml

from wiml.layout import CONFIGS, DEMO_RUN  # noqa: E402 - after the path set-up

#: the demo run's files (wiml.layout.RunLayout); the MSL output goes beside them into msl_script/
DEFAULTS = {
    "--config": CONFIGS / "msl_default.yaml",
    "--data": DEMO_RUN.data,
    "--out": DEMO_RUN.root / "msl_script",
    "--strong-from": "wia",
    "--wia-dir": DEMO_RUN.wia_result,
    "--init-checkpoint": DEMO_RUN.weak.best,
}


def with_defaults(argv: list[str]) -> list[str]:
    """``argv`` plus every default option it does not give (``--opt value`` or ``--opt=value``)."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    extra = []
    for opt, value in DEFAULTS.items():
        if opt in given:
            continue
        if opt in ("--wia-dir",) and ("--strong-from" in given and "wia" not in argv):
            continue  # ground-truth strong labels: no WIA folder
        if opt == "--init-checkpoint" and "--init" in given and "scratch" in argv:
            continue
        extra += [opt, str(value)]
    return list(argv) + extra


def main(argv: list[str] | None = None) -> int:
    from wiml.cli.train_msl import main as train_msl_main

    return train_msl_main(with_defaults(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
