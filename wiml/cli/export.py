"""``wiml export``: what a person annotated (the annotator's result folder) as an nnU-Net v2 or MSD dataset.

Examples::

    wiml export --format nnunet --annotations SCANS/result --out nnUNet_raw --dataset-id 501 --name Liver
    wiml export --format msd --annotations SCANS/result --out exported --name Liver
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", dest="fmt", choices=("nnunet", "msd"), default="nnunet", help="layout")
    parser.add_argument(
        "--annotations", type=Path, required=True, help="the annotator's result folder (strong_label/, ...)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder the dataset folder is created in")
    parser.add_argument("--dataset-id", type=int, default=501, help="nnU-Net dataset id, 1-999 (default 501)")
    parser.add_argument("--name", default="WIML", help="dataset name (default WIML)")
    parser.add_argument("--channel", default="CT", help="name of the input channel: CT, MR, ... (default CT)")


def run(args: argparse.Namespace) -> int:
    from wiml.data.export import export_annotations

    summary = export_annotations(
        args.annotations, args.out, args.fmt, args.dataset_id, args.name, args.channel
    )
    print(
        f"export ({args.fmt}): {len(summary.cases)} case(s), "
        f"{sum(summary.labelled_slices)} labelled slice(s) -> {summary.dataset_dir}"
    )
    return 0


main = make_main("wiml export", "annotator results -> nnU-Net v2 / MSD raw dataset", add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
