"""``wiml test``: predict test cases with a checkpoint; per-slice and per-patient metrics, overlays, NIfTI.

Defaults (no arguments): the project's ``test_data/`` PNG folder with ``runs/demo/msl/best.safetensors``, the
checkpoint the README's main command trains; results go to ``runs/demo/test_data_eval/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wiml.cli.main import add_overrides_argument, combine_overrides, given_overrides, make_main
from wiml.layout import DEMO_RUN, SAMPLE_TEST_DATA, RunLayout

DEFAULT_DATA = SAMPLE_TEST_DATA
DEFAULT_CHECKPOINT = DEMO_RUN.msl.best
DEFAULT_OUT = DEMO_RUN.sample_test


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        type=Path,
        help="run folder: data RUN/data, checkpoint RUN/msl/best.safetensors, "
        "output RUN/test (each overridable)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help=f"prepared folder (manifest.csv) or PNG folder with data/ and label/ (default {DEFAULT_DATA})",
    )
    parser.add_argument("--checkpoint", type=Path, help=f"FPSNet .safetensors (default {DEFAULT_CHECKPOINT})")
    parser.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--config", type=Path, help="YAML with a `test:` section (TestConfig)")
    add_overrides_argument(parser, "override a TestConfig field, e.g. threshold=0.4 (repeatable)")
    parser.add_argument("--split", help="manifest split to test (default test)")
    parser.add_argument("--device", help="auto, cpu or cuda[:N]")


def resolve_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(data, checkpoint, out) from ``--run`` / ``--data`` / ``--checkpoint`` / ``--out`` and the defaults."""
    if args.run is not None:
        layout = RunLayout(args.run)
        data = args.data or layout.data
        ckpt = args.checkpoint or layout.msl.best
        out = args.out or layout.test
    else:
        data = args.data or DEFAULT_DATA
        ckpt = args.checkpoint or DEFAULT_CHECKPOINT
        out = args.out or DEFAULT_OUT
    return Path(data).resolve(), Path(ckpt).resolve(), Path(out).resolve()


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config
    from wiml.evaluation.evaluate import TestConfig, evaluate_checkpoint
    from wiml.evaluation.metrics import format_mean_std

    overrides = combine_overrides(
        given_overrides({"split": args.split or None, "device": args.device or None}), args.overrides
    )
    config = load_config(TestConfig, args.config, overrides, section="test" if args.config else None)
    data, ckpt, out = resolve_paths(args)
    summary, cases = evaluate_checkpoint(config, data, ckpt, out)
    level = "per_patient" if summary["per_patient"] else "per_slice_positive"
    unit = "mm" if any(c.spacing_mm for c in cases) else "px (no spacing known)"
    print(f"wiml test: {summary['n_slices']} slices / {summary['n_patients']} cases from {data}")
    print(
        f"  Dice ({level.replace('_', ' ')}): {format_mean_std(summary[level]['dice'])}   "
        f"HD95: {format_mean_std(summary[level]['hd95_mm'], 2)} {unit}   "
        f"{1000 * summary['seconds_per_slice']:.1f} ms/slice"
    )
    print(f"  -> {out / 'metrics.md'}")
    return 0


main = make_main("wiml test", "predict test cases; per-slice and per-patient metrics", add_arguments, run)

if __name__ == "__main__":
    raise SystemExit(main())
