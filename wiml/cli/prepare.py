"""``wiml prepare``: volumes / slice folders -> 2-D slices, image tags, manifest.csv and a patient split.

Example::

    wiml prepare --input ../shared/data/brats2015 --out runs/real/brats2015_data \
        --set channels=[flair,t1c] --set size=128
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wiml.cli.main import add_overrides_argument, combine_overrides, make_main
from wiml.config import load_config
from wiml.data.prepare import PrepareConfig, prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, help="dataset root (overrides input: of the config)")
    parser.add_argument("--out", type=Path, required=True, help="output folder of the prepared slices")
    parser.add_argument(
        "--config", type=Path, help="YAML file with PrepareConfig fields (e.g. configs/prepare_*.yaml)"
    )
    parser.add_argument("--section", help="read only this top-level section of the YAML (e.g. prepare)")
    add_overrides_argument(
        parser, "override a config field, e.g. --set size=128 --set split.seed=1 (repeatable)"
    )
    parser.add_argument("--force", action="store_true", help="prepare again even if the inputs are unchanged")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    overrides = combine_overrides([f"input={args.input}"] if args.input is not None else [], args.overrides)
    cfg = load_config(PrepareConfig, args.config, overrides, section=args.section)
    if (
        args.config is not None
        and cfg.input is not None
        and not Path(cfg.input).is_absolute()
        and args.input is None
    ):
        cfg.input = (Path(args.config).resolve().parent / cfg.input).resolve()
    summary = prepare(cfg, args.out, force=args.force, progress=not args.no_progress)
    counts = ", ".join(f"{k} {len(v)}" for k, v in summary.splits.items())
    state = "up to date, nothing to do" if summary.skipped else f"{summary.seconds:.1f} s"
    print(
        f"{summary.out}: {summary.layout}, {summary.n_patients} patients ({counts}), {summary.n_slices} slices, "
        f"{summary.n_positive} tag-positive [{state}]"
    )
    return 0


main = make_main(
    "wiml prepare",
    "volumes / slice folders -> 2-D slices, image tags, manifest.csv, split",
    add_arguments,
    run,
)
