"""``wiml cam``: Grad-CAM overlays, initial masks and CAM quality of a weak checkpoint.

Example::

    wiml cam --checkpoint RUN/weak/best.safetensors --data RUN/data --out RUN/cam --split test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import add_overrides_argument, combine_overrides, given_overrides, make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="weak checkpoint (*.safetensors)")
    parser.add_argument("--data", type=Path, required=True, help="prepared folder holding manifest.csv")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--split", default=None, help="manifest split to evaluate (default: test)")
    parser.add_argument("--config", type=Path, default=None, help="YAML with CamConfig fields (optional)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_overrides_argument(
        parser, "override, e.g. --set refinement.lam=3 --set 'taus=[0.3,0.5]' --set overlays=false"
    )


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.experiments.cam_quality import CamConfig, run_cam

    overrides = combine_overrides(given_overrides({"split": args.split}), args.overrides)
    config = load_config(CamConfig, args.config, overrides, section="cam" if args.config else None)
    s = run_cam(args.checkpoint, args.data, args.out, config, args.device)
    c = s["classification"]
    print(
        f"cam: {s['n_slices']} {config.split} slices, AUC {c['auc']:.4f}, acc {c['accuracy']:.4f}; initial-mask "
        f"Dice {s['initial_mask_dice']:.4f} on {s['n_positive_with_mask']} positive slices (gated "
        f"{s['gated_initial_mask_dice']:.4f}); FPR {s['initial_mask_fpr_slices']:.3f} (gated "
        f"{s['gated_initial_mask_fpr_slices']:.3f}) on {s['n_negative']} negative slices; best CAM>=tau "
        f"{s['best_cam_tau']} Dice {s['best_cam_dice'] if s['best_cam_dice'] is not None else float('nan'):.4f} "
        f"-> {args.out}"
    )
    return 0


main = make_main("wiml cam", "Grad-CAM overlays, initial masks and CAM quality", add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
