"""``wiml baselines``: WIML vs strong-only, full supervision, weak-only, and the FPS / scSE ablations.

Example::

    wiml baselines --run runs/demo --seeds 0,1,2                      # every method, 3 seeds
    wiml baselines --run runs/real/brats2015 --methods wiml,strong_only,full --config configs/msl_brats.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import add_overrides_argument, make_main
from wiml.layout import RunLayout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from wiml.experiments.baselines import METHODS

    parser.add_argument("--run", type=Path, required=True, help="run folder holding data/, weak/ and wia/")
    parser.add_argument("--out", type=Path, help="output folder (default RUN/baselines)")
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, from {','.join(METHODS)}"
    )
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default 0)")
    parser.add_argument("--k", type=int, default=5, help="strong labels when taken from the ground truth")
    parser.add_argument("--config", type=Path, help="MSL YAML shared by the trained methods")
    parser.add_argument("--wia-dir", type=Path, help="WIA result folder (default RUN/wia/result)")
    parser.add_argument("--weak", type=Path, help="weak checkpoint (default RUN/weak/best.safetensors)")
    parser.add_argument("--data", type=Path, help="prepared folder (default RUN/data)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_overrides_argument(parser, "MSL config override shared by all trained methods (repeatable)")


def run(args: argparse.Namespace) -> int:
    from wiml.errors import InputError
    from wiml.evaluation.metrics import format_mean_std
    from wiml.experiments.baselines import run_baselines

    try:
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    except ValueError as exc:
        raise InputError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from exc
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    out = args.out or RunLayout(args.run).baselines
    summary = run_baselines(
        args.run,
        out,
        methods,
        seeds,
        args.config,
        args.overrides,
        k=args.k,
        device=args.device,
        wia_dir=args.wia_dir,
        weak_checkpoint=args.weak,
        data=args.data,
    )
    for r in summary["methods"]:
        print(
            f"{r['method']:<15} strong {r['strong']:<8} seeds {r['n_seeds']}  test Dice {format_mean_std(r['dice'])}"
        )
    print(f"-> {out / 'summary.md'}")
    return 0


main = make_main(
    "wiml baselines", "strong-only / full / weak-only baselines and ablations", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(main())
