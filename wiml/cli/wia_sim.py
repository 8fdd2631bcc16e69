"""``wiml wia-sim``: robot-user WIA simulation (NoC@80/85/90, Dice vs clicks, strong labels + records).

Example::

    wiml wia-sim --data RUN/data --checkpoint RUN/weak/best.safetensors --out RUN/wia --split test \\
        --max-clicks 20 --select 5 --jitter-px 3
    wiml wia-sim --data RUN/data --checkpoint none --out RUN/wia_nocam     # clicks only, no CAM
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import add_overrides_argument, combine_overrides, given_overrides, make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="prepared folder holding manifest.csv")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="weak checkpoint (*.safetensors) for the CAM, or 'none' for clicks only",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--split", default=None, help="manifest split (default: test)")
    parser.add_argument("--max-clicks", type=int, default=None, help="clicks per slice at most (default 20)")
    parser.add_argument(
        "--select",
        type=int,
        default=None,
        help="number of slices written as strong labels + interaction records (default 5)",
    )
    parser.add_argument(
        "--jitter-px",
        type=float,
        default=None,
        help="click jitter of the extra jittered run, px (default 3; 0 = no such run)",
    )
    parser.add_argument("--max-slices", type=int, default=None, help="simulate at most this many slices")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML with a `wia:` section of WiaSimConfig fields (a pipeline YAML)",
    )
    parser.add_argument("--device", default=None, help="device of the weak model: auto | cpu | cuda")
    add_overrides_argument(parser, "override, e.g. --set target_dice=0.85 --set refinement.backend=geodistk")


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.experiments.wia_sim import WiaSimConfig, checkpoint_cam_source, run_wia_simulation

    flags = {
        "split": args.split,
        "max_clicks": args.max_clicks,
        "select": args.select,
        "jitter_px": args.jitter_px,
        "max_slices": args.max_slices,
        "device": args.device,
    }
    overrides = combine_overrides(given_overrides(flags), args.overrides)
    config = load_config(WiaSimConfig, args.config, overrides, section="wia" if args.config else None)
    cam_source = None
    if str(args.checkpoint).lower() != "none":
        cam_source = checkpoint_cam_source(Path(args.checkpoint), config.device, config.cam_input_px)
    s = run_wia_simulation(args.data, args.out, config, cam_source)
    for mode in ("cam", "no_cam", "jitter"):
        if mode in s:
            m = s[mode]
            print(
                f"wia-sim {mode:>6}: {m['n_slices']} slices, initial Dice {m['initial_dice']:.3f}, "
                f"NoC@85 {m['noc85']:.2f}, NoC@90 {m['noc90']:.2f}, "
                f"median {1000 * (m['median_s_per_click'] or 0):.0f} ms/click"
            )
    print(f"wia-sim: {len(s['selected'])} strong labels -> {Path(args.out) / 'result'}")
    return 0


main = make_main(
    "wiml wia-sim", "robot-user WIA simulation: NoC@85/90, strong labels + records", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(main())
