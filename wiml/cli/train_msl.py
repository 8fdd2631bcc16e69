"""``wiml train-msl``: mixed-supervised FPSNet on every slice's tag + K strong labels.

Examples::

    wiml train-msl --data RUN/data --out RUN/msl --strong-from wia --wia-dir RUN/wia/result \
        --init-checkpoint RUN/weak/best.safetensors
    wiml train-msl --data RUN/data --out RUN/msl_gt --strong-from gt --k 5 --select spread --init scratch
    wiml train-msl --data PREPARED --out RUN/msl --strong-from annotations --annotations SCANS/result
    wiml train-msl --config configs/msl_paper.yaml --data ... --out ...          # the original recipe
    torchrun --nproc_per_node 2 -m wiml.cli.train_msl ...                          # data-parallel
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wiml.cli.main import (
    add_training_arguments,
    combine_overrides,
    given_overrides,
    guarded_training_folder,
    make_main,
    trainer_overrides,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="YAML config (configs/msl_default.yaml, configs/msl_paper.yaml)"
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared folder holding manifest.csv")
    parser.add_argument("--out", type=Path, required=True, help="output run folder")
    parser.add_argument(
        "--strong-from",
        choices=("wia", "gt", "annotations"),
        help="strong labels from WIA results, from the ground truth of K chosen slices, or from the "
        "annotator's result folder (labels + the person's tags; --annotations) (strong.source)",
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        help="the annotator's result folder (strong_label/, recording/, tags/) for --strong-from annotations",
    )
    parser.add_argument(
        "--wia-dir", type=Path, help="WIA result folder (holding strong_label/) for --strong-from wia"
    )
    parser.add_argument(
        "--k",
        type=int,
        help="number of strong labels (default 5): K chosen slices (gt) or K of the WIA labels found (wia)",
    )
    parser.add_argument(
        "--select",
        choices=("random", "spread"),
        help="how the K slices (gt) or the K WIA labels (wia) are chosen",
    )
    parser.add_argument(
        "--init", choices=("weak", "scratch"), help="start from the weak checkpoint or from scratch"
    )
    parser.add_argument(
        "--init-checkpoint",
        type=Path,
        help="the weak checkpoint for --init weak (default: RUN/weak of the run holding --data)",
    )
    parser.add_argument(
        "--mode", choices=("mixed", "strong_only", "full"), help="mixed (MSL) or a supervised baseline"
    )
    add_training_arguments(parser, "config override, e.g. --set loss.seg_weight=2 (repeatable)")


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """``--k 5`` etc. -> ``strong.k=5`` overrides, with the ``--set`` ones (:func:`combine_overrides`)."""
    flags = {
        "strong.source": args.strong_from,
        "strong.wia_dir": args.wia_dir,
        "strong.annotations_dir": args.annotations,
        "strong.k": args.k,
        "strong.select": args.select,
        "init": args.init,
        "init_checkpoint": args.init_checkpoint,
        "mode": args.mode,
    }
    return combine_overrides(given_overrides(flags) + trainer_overrides(args), args.overrides)


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.data.check import require_valid_data
    from wiml.training.msl import MSLConfig, train_msl

    config = load_config(MSLConfig, args.config, overrides_from_args(args))
    require_valid_data(args.data)
    with guarded_training_folder(args.out, "wiml train-msl", args.resume, args.overwrite):
        summary = train_msl(config, args.data, args.out, resume=args.resume)
    if summary.get("world_size", 1) > 1 and int(os.environ.get("RANK", "0")) != 0:
        return 0
    last = summary["last"]
    print(
        f"train-msl ({config.mode}, init {summary['init']}): {summary['epochs_done']} epochs, "
        f"{summary['n_train']} train slices, {summary['n_strong']} strong, {summary['n_val']} val; "
        f"best epoch {summary['best_epoch']} (val dice={summary.get('best_dice')}), "
        f"last val dice={last.get('val_dice', float('nan')):.4f}, {summary['mean_epoch_s']:.1f} s/epoch -> {args.out}"
    )
    return 0


main = make_main(
    "wiml train-msl", "mixed-supervised FPSNet training on tags + K strong labels", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(main())
