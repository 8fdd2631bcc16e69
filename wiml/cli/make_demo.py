"""``wiml make-demo``: write the synthetic abdominal CT phantom in LiTS layout (and the sample slices).

Examples::

    wiml make-demo --out runs/demo/raw                  # 12 patients, 48 slices of 256 x 256
    wiml make-demo --samples                            # data_source/ and test_data/ of the project
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wiml.cli.main import make_main
from wiml.data.demo import DemoDataConfig, PhantomConfig, make_demo, write_samples
from wiml.errors import InputError
from wiml.layout import PROJECT_ROOT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="folder for volume-N.nii / segmentation-N.nii")
    parser.add_argument("--patients", type=int, default=12, help="number of phantom patients (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed (same seed -> identical volumes)")
    parser.add_argument("--size", type=int, default=256, help="in-plane size in px (default 256)")
    parser.add_argument("--slices", type=int, default=48, help="axial slices per patient (default 48)")
    parser.add_argument(
        "--fov-mm", type=float, default=360.0, help="in-plane field of view in mm (default 360)"
    )
    parser.add_argument("--slice-mm", type=float, default=2.5, help="slice spacing in mm (default 2.5)")
    parser.add_argument(
        "--samples",
        action="store_true",
        help="also (or only, without --out) write data_source/ and test_data/ sample slices",
    )
    parser.add_argument(
        "--samples-root",
        type=Path,
        default=PROJECT_ROOT,
        help="where --samples writes data_source/ and test_data/ (default: the project root)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    if args.out is None and not args.samples:
        raise InputError("nothing to do: give --out DIR and/or --samples")
    demo = DemoDataConfig(
        args.patients, args.seed, args.size, args.slices, args.fov_mm, args.slice_mm
    ).validate()
    config = demo.phantom()
    if args.out is not None:
        paths = make_demo(args.out, demo.patients, demo.seed, config, progress=not args.no_progress)
        sp = ", ".join(f"{s:.3g}" for s in config.spacing)
        print(
            f"{args.out}: {len(paths)} patients, {args.slices} x {args.size} x {args.size} voxels, spacing {sp} mm"
        )
    if args.samples:
        written = write_samples(args.samples_root, args.seed, PhantomConfig(size=256, n_slices=48))
        print(f"{args.samples_root}: {len(written)} sample files in data_source/ and test_data/")
    return 0


main = make_main(
    "wiml make-demo", "write the synthetic abdominal CT phantom (LiTS layout)", add_arguments, run
)
