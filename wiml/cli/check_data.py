"""``wiml check-data PREPARED``: check a prepared folder (files open, shapes, dtypes, finite values, tags
that agree with their masks, patient-level split, positive spacing) without changing it.

``train-weak``, ``train-msl``, ``test`` and ``pipeline`` run the same check before they start.

Example::

    wiml check-data runs/real/brats2015_data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prepared", type=Path, help="prepared folder holding manifest.csv")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from wiml.data.check import check_data
    from wiml.errors import InputError

    report = check_data(args.prepared, progress=not args.no_progress)
    if not report.ok:
        raise InputError(report.message(), report.folder / "manifest.csv")
    splits = ", ".join(f"{n} {s}" for s, n in sorted(report.splits.items()))
    print(
        f"check-data: {report.folder}: {report.n_rows} slices of {report.n_patients} patients ({splits}) OK "
        f"in {report.seconds:.2f} s"
    )
    return 0


main = make_main("wiml check-data", "check a prepared folder before training or testing", add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
