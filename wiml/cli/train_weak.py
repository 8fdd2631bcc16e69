"""``wiml train-weak``: train FPSNet on image tags only and write the weak checkpoint.

Example::

    wiml train-weak --config configs/weak_default.yaml --data RUN/data --out RUN/weak
    torchrun --nproc_per_node 2 -m wiml.cli.train_weak --config ... --data ... --out ...   # data-parallel
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wiml.cli.main import (
    add_training_arguments,
    combine_overrides,
    guarded_training_folder,
    make_main,
    trainer_overrides,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="YAML config (configs/weak_*.yaml)")
    parser.add_argument("--data", type=Path, required=True, help="prepared folder holding manifest.csv")
    parser.add_argument("--out", type=Path, required=True, help="output run folder")
    add_training_arguments(parser, "config override, e.g. --set optim.lr=3e-4 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.data.check import require_valid_data
    from wiml.training.config import WeakConfig
    from wiml.training.weak import train_weak

    config = load_config(WeakConfig, args.config, combine_overrides(trainer_overrides(args), args.overrides))
    require_valid_data(args.data)
    with guarded_training_folder(args.out, "wiml train-weak", args.resume, args.overwrite):
        summary = train_weak(config, args.data, args.out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
        return 0
    last = summary["last"]
    print(
        f"train-weak: {summary['epochs_done']} epochs, {summary['n_train']} train / {summary['n_val']} val slices, "
        f"best epoch {summary['best_epoch']} ({config.trainer.monitor}={summary.get('best_' + config.trainer.monitor)}), "
        f"last val auc={last.get('val_auc', float('nan')):.4f} acc={last.get('val_accuracy', float('nan')):.4f}, "
        f"{summary['mean_epoch_s']:.1f} s/epoch -> {args.out}"
    )
    return 0


main = make_main("wiml train-weak", "train FPSNet on image tags only (weak checkpoint)", add_arguments, run)

if __name__ == "__main__":
    sys.exit(main())
