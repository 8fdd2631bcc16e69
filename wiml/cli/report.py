"""``wiml report``: markdown + PNG report of a run folder (RUN/report/report.md) and a terminal summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", type=Path, required=True, help="run folder (what `wiml pipeline --out` wrote)"
    )


def run(args: argparse.Namespace) -> int:
    from wiml.errors import InputError
    from wiml.evaluation.report import terminal_summary, write_report

    if not args.run.is_dir():
        raise InputError("run folder not found", args.run)
    path = write_report(args.run)
    if not args.quiet:
        print(terminal_summary(args.run))
    print(f"report: {path}")
    return 0


main = make_main("wiml report", "markdown + PNG report of a run folder", add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
