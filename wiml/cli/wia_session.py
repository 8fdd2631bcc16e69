"""``wiml wia-session``: robot annotation sessions, one per proposal source (none, cam, cam+, box, propagate,
bootstrap): clicks per label, shares accepted with 0 / <= 1 click, proposal Dice, Dice after 0..5 clicks.

Example::

    wiml wia-session --data RUN/data --checkpoint RUN/weak/best.safetensors --out RUN/wia_session \\
        --split test --sources none,cam,box --n-labels 20
    wiml wia-session --data RUN/data --checkpoint none --out RUN/wia_volume --order volume --sources none,box,propagate
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
        help="weak checkpoint (*.safetensors) for cam, cam+ and bootstrap, or 'none' (none, box, propagate only)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--split", default=None, help="manifest split (default: test)")
    parser.add_argument(
        "--sources",
        default=None,
        help="comma-separated: none,cam,cam+,box,propagate,bootstrap (default none,cam,box)",
    )
    parser.add_argument("--n-labels", type=int, default=None, help="strong labels per session (default 20)")
    parser.add_argument(
        "--order", default=None, help="spread (over patients, default) | volume (neighbouring slices)"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML with WiaSessionConfig fields (optional)"
    )
    parser.add_argument("--device", default=None, help="device of the models: auto | cpu | cuda")
    add_overrides_argument(
        parser, "override, e.g. --set box_jitter_px=5 --set bootstrap.every=5 --set refinement.lam=5"
    )


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.experiments.wia_session import WiaSessionConfig, run_wia_session

    flags = {"split": args.split, "n_labels": args.n_labels, "order": args.order, "device": args.device}
    named = given_overrides(flags)
    if args.sources:
        named.append(f"sources=[{','.join(s.strip() for s in args.sources.split(','))}]")
    overrides = combine_overrides(named, args.overrides)
    config = load_config(
        WiaSessionConfig, args.config, overrides, section="wia_session" if args.config else None
    )
    checkpoint = None if str(args.checkpoint).lower() == "none" else Path(args.checkpoint)
    s = run_wia_session(args.data, args.out, config, checkpoint)
    for source in config.sources:
        m = s[source]
        print(
            f"wia-session {source:>9}: {m['n_labels']} labels, {m['total_clicks']} clicks "
            f"({m.get('clicks_vs_none', float('nan')):.2f} x none), accepted with 0 / <=1 click "
            f"{100 * m['accepted_0_clicks']:.0f}% / {100 * m['accepted_le1_click']:.0f}%, proposal Dice "
            f"{m['proposal_dice']:.3f}"
        )
    print(f"wia-session: -> {args.out}")
    return 0


main = make_main(
    "wiml wia-session",
    "robot annotation sessions per proposal source (none/cam/cam+/box/propagate/bootstrap)",
    add_arguments,
    run,
)

if __name__ == "__main__":
    sys.exit(main())
