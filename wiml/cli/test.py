"""``wiml test``: predict test cases with a checkpoint; per-slice and per-patient metrics, overlays, NIfTI.

Defaults (no arguments): the project's ``test_data/`` PNG folder with ``runs/demo/msl/best.safetensors``, the
checkpoint the README's main command trains; results go to ``runs/demo/test_data_eval/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wiml.cli.main import make_main

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = PROJECT_ROOT / "test_data"
DEFAULT_CHECKPOINT = PROJECT_ROOT / "runs" / "demo" / "msl" / "best.safetensors"
DEFAULT_OUT = PROJECT_ROOT / "runs" / "demo" / "test_data_eval"


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
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TestConfig field, e.g. threshold=0.4 (repeatable)",
    )
    parser.add_argument("--split", help="manifest split to test (default test)")
    parser.add_argument("--device", help="auto, cpu or cuda[:N]")


def resolve_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(data, checkpoint, out) from ``--run`` / ``--data`` / ``--checkpoint`` / ``--out`` and the defaults."""
    if args.run is not None:
        data = args.data or args.run / "data"
        ckpt = args.checkpoint or args.run / "msl" / "best.safetensors"
        out = args.out or args.run / "test"
    else:
        data = args.data or DEFAULT_DATA
        ckpt = args.checkpoint or DEFAULT_CHECKPOINT
        out = args.out or DEFAULT_OUT
    return Path(data).resolve(), Path(ckpt).resolve(), Path(out).resolve()


def run(args: argparse.Namespace) -> int:
    from wiml.config import load_config, save_config
    from wiml.data.check import require_valid_data
    from wiml.evaluation.evaluate import TestConfig, evaluate, load_cases, trained_with_tags
    from wiml.evaluation.metrics import format_mean_std
    from wiml.networks.checkpoint import load_model
    from wiml.utils import resolve_device

    overrides = list(args.overrides)
    if args.split:
        overrides.append(f"split={args.split}")
    if args.device:
        overrides.append(f"device={args.device}")
    config = load_config(TestConfig, args.config, overrides, section="test" if args.config else None)
    data, ckpt, out = resolve_paths(args)
    if (data / "manifest.csv").is_file() or data.name == "manifest.csv":
        require_valid_data(data)
    device = resolve_device(config.device)
    model, meta = load_model(ckpt, device)  # CheckpointError for another architecture / not safetensors
    trained_size = meta.get("image_size") or (meta.get("run_config") or {}).get("image_size")
    if config.size is None and trained_size:
        config.size = int(trained_size)
    if config.gate_with_tag is None:
        config.gate_with_tag = trained_with_tags(meta)
    cases, kind = load_cases(data, config.split)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    summary = evaluate(
        model,
        cases,
        out,
        config,
        device,
        data=data,
        kind=kind,
        extra={"checkpoint": str(ckpt), "checkpoint_kind": meta.get("kind")},
    )
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
