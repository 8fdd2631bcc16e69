"""``wiml pipeline``: (make-demo ->) prepare -> train-weak -> cam -> robot WIA -> train-msl -> test -> report.

Each step is skipped when its outputs are already valid, so an interrupted run resumes where it stopped::

    wiml pipeline --config configs/demo.yaml --out runs/demo
    wiml pipeline --config configs/brats2015.yaml --out runs/real/brats2015 --set device=cpu
    wiml pipeline --config configs/demo.yaml --out runs/demo --force train-msl     # redo one step (and after)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import add_overrides_argument, make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="pipeline YAML (configs/demo.yaml, ...)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    add_overrides_argument(
        parser,
        "override a field of the pipeline config, e.g. --set k=3, --set weak.trainer.epochs=2 (repeatable)",
    )
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STEP",
        help="redo STEP (and every later step) even if its outputs are valid; 'all' = everything",
    )


def run(args: argparse.Namespace) -> int:
    from wiml.evaluation.report import terminal_summary
    from wiml.experiments.pipeline import load_pipeline_config, run_pipeline

    out = args.out.resolve()
    config = load_pipeline_config(args.config, args.overrides, run=out)  # every section checked first
    record = run_pipeline(config, out, force=args.force)  # locks RUN, writes RUN/config.yaml
    print()
    print(terminal_summary(out))
    print(f"pipeline finished in {record['total_s']:.0f} s")
    return 0


main = make_main(
    "wiml pipeline",
    "make-demo -> prepare -> train-weak -> cam -> WIA -> train-msl -> test -> report",
    add_arguments,
    run,
)

if __name__ == "__main__":
    sys.exit(main())
