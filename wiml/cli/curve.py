"""``wiml curve``: Dice against strong labels K and annotation cost over patient folds (resumable sweep).

Example::

    wiml curve --config configs/curve_brats.yaml --data runs/real/brats2015_data --out runs/real/curve_brats
    wiml curve --config configs/curve_brats.yaml --data ... --out ... --set "k_values=[5,10,20]"   # add K values
    wiml curve --summarize-only --out runs/real/curve_brats                       # table + plots from the CSV
    wiml curve --config configs/curve_liver.yaml --data runs/real/liver_slices_data \
        --external-test runs/real/ircadb_data --out runs/real/curve_liver         # + an external test set

Each finished (fold, K, method, seed) is appended to ``OUT/results.csv`` and skipped when the command is run
again; stop it at any point and start it again with the same arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wiml.cli.main import add_overrides_argument, combine_overrides, given_overrides, make_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="curve YAML (configs/curve_brats.yaml)")
    parser.add_argument("--data", type=Path, help="prepared folder holding manifest.csv")
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (results.csv, summary.md, plots)"
    )
    parser.add_argument("--name", help="dataset name in the CSV (default: the data folder's name)")
    parser.add_argument(
        "--external-test",
        type=Path,
        help="prepared folder every run is also tested on (e.g. runs/real/ircadb_data for the liver sweep)",
    )
    parser.add_argument("--device", help="auto | cpu | cuda (device)")
    parser.add_argument(
        "--summarize-only", action="store_true", help="only rewrite summary.md and the plots from results.csv"
    )
    parser.add_argument(
        "--diagnose-val",
        metavar="K",
        help="re-run the finished runs of this K (and full supervision) on each fold's val patients: "
        "gated / ungated Dice, false positives on target-free slices, tag accuracy -> OUT/val_diag_k<K>.csv",
    )
    add_overrides_argument(parser, "config override, e.g. --set steps=800 --set 'seeds=[0,1]' (repeatable)")


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.errors import InputError
    from wiml.experiments.curve import (
        CurveConfig,
        aggregate,
        diagnose_val,
        diagnosis_table,
        read_results,
        run_curve,
        summary_table,
        write_summary,
    )

    overrides = combine_overrides(given_overrides({"device": args.device}), args.overrides)
    if args.diagnose_val is not None:
        if args.data is None:
            raise InputError("--data (the prepared folder the sweep ran on) is required with --diagnose-val")
        try:
            k = int(args.diagnose_val)
        except ValueError as exc:
            raise InputError(f"--diagnose-val: expected a K (an integer), got {args.diagnose_val!r}") from exc
        rows = diagnose_val(args.out, args.data, k, device=args.device or "cpu")
        print("\n".join(diagnosis_table(rows)))
        print(f"-> {args.out / f'val_diag_k{k}.csv'}")
        return 0
    if args.summarize_only:
        config_path = args.config or (args.out / "curve_config.yaml")
        config = load_config(CurveConfig, config_path if config_path.is_file() else None, overrides)
        rows = read_results(args.out / "results.csv")
        if not rows:
            raise InputError("no finished run in results.csv", args.out / "results.csv")
        write_summary(rows, args.out, config.cost, config.val_every_steps)
    else:
        if args.data is None:
            raise InputError("--data (the prepared folder) is required unless --summarize-only")
        config = load_config(CurveConfig, args.config, overrides)
        rows = run_curve(config, args.data, args.out, args.name, args.external_test)
    print("\n".join(summary_table(aggregate(rows))))
    written = [args.out / "summary.md", args.out / "summary.json", *sorted(args.out.glob("*.png"))]
    print("-> " + ", ".join(str(p) for p in written if p.is_file()))
    return 0


main = make_main(
    "wiml curve", "Dice vs strong labels K and annotation cost over patient folds", add_arguments, run
)

if __name__ == "__main__":
    sys.exit(main())
