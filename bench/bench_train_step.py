"""Training throughput: FPSNet train steps side by side with MONAI's BasicUNet of comparable size.

One train step = forward, loss (MONAI DiceCELoss on the segmentation; + tag BCE for FPSNet, as in MSL),
backward and an AdamW step, on batches of real BraTS 2015 slices (FLAIR + T1c, 128 px, the prepared folder of
``wiml prepare --config configs/prepare_brats2015.yaml``) or random tensors of that shape when it is absent.
The models run in interleaved rounds (A, B, C, A, B, C, ...) so that a change of machine load hits them alike;
the report gives the median step time, slices/s and the ratio to FPSNet (shared machine: state the load).

Models:
* FPSNet default (base width 16, depth 4, scSE, FPS head): what ``wiml curve`` and ``train-msl`` train.
* FPSNet without scSE (the ablation).
* MONAI ``BasicUNet(features=(16, 16, 32, 64, 128, 16))``: a plain 2-D U-Net with about the same number of
  parameters (496 k vs 511 k).

Usage::

    .venv/bin/python bench/bench_train_step.py --prepared runs/real/brats2015_data   # writes docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np

from wiml.layout import PROJECT_ROOT as PROJECT

HEADING = "Training throughput: FPSNet vs MONAI BasicUNet (bench/bench_train_step.py)"


def load_batches(prepared: Path, batch: int, n_batches: int, size: int, seed: int = 0):
    """``n_batches`` (images (B, 2, H, W) float32, masks (B, H, W) int64, tags (B,)) of real slices (random
    slices of the prepared folder) or random tensors when the folder is absent. Returns (batches, source)."""
    import torch

    rng = np.random.default_rng(seed)
    if (prepared / "manifest.csv").is_file():
        from wiml.data.slices import load_slice, read_manifest

        records = [r for r in read_manifest(prepared) if r.has_mask]
        out = []
        for _ in range(n_batches):
            pick = rng.choice(len(records), batch, replace=False)
            items = [load_slice(records[i]) for i in pick]
            x = torch.from_numpy(np.stack([im for im, _ in items]).astype(np.float32))
            m = torch.from_numpy(np.stack([mk for _, mk in items]).astype(np.int64))
            out.append((x, m, (m.flatten(1).amax(1) > 0).float()))
        return out, f"real slices of `{prepared.name}`"
    out = []
    for _ in range(n_batches):
        x = torch.from_numpy(rng.normal(size=(batch, 2, size, size)).astype(np.float32))
        m = torch.from_numpy((rng.random((batch, size, size)) > 0.9).astype(np.int64))
        out.append((x, m, (m.flatten(1).amax(1) > 0).float()))
    return out, "random tensors"


def make_models(in_channels: int) -> dict:
    """name -> (model, kind) with kind ``fps`` (FPSNetOutput) or ``unet`` (a logits tensor)."""
    from monai.networks.nets import BasicUNet

    from wiml.networks.fpsnet import FPSNet, FPSNetConfig

    return {
        "FPSNet (16, depth 4, scSE)": (FPSNet(FPSNetConfig(in_channels=in_channels)), "fps"),
        "FPSNet (16, depth 4, no scSE)": (
            FPSNet(FPSNetConfig(in_channels=in_channels, attention="none")),
            "fps",
        ),
        "MONAI BasicUNet (16,16,32,64,128,16)": (
            BasicUNet(
                spatial_dims=2, in_channels=in_channels, out_channels=1, features=(16, 16, 32, 64, 128, 16)
            ),
            "unet",
        ),
    }


def bench(models: dict, batches: list, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Median-ready step times (s) per model, interleaved over ``rounds`` rounds after ``warmup`` steps each."""
    import torch
    import torch.nn.functional as F
    from monai.losses import DiceCELoss

    seg_loss = DiceCELoss(sigmoid=True)
    optims = {n: torch.optim.AdamW(m.parameters(), lr=1e-3) for n, (m, _) in models.items()}

    def step(name: str, i: int) -> float:
        model, kind = models[name]
        x, m, tags = batches[i % len(batches)]
        t0 = time.perf_counter()
        optims[name].zero_grad(set_to_none=True)
        out = model(x)
        if kind == "fps":
            loss = seg_loss(out.seg, m[:, None].float()) + F.binary_cross_entropy_with_logits(
                out.cls[:, 0], tags
            )
        else:
            loss = seg_loss(out, m[:, None].float())
        loss.backward()
        optims[name].step()
        return time.perf_counter() - t0

    for model, _ in models.values():
        model.train()
    for name in models:
        for i in range(warmup):
            step(name, i)
    times: dict[str, list[float]] = {n: [] for n in models}
    for r in range(rounds):
        for name in models:
            times[name].append(step(name, warmup + r))
    return times


def report(
    times: dict, models: dict, batch: int, size: int, source: str, threads: int, load, wall_s: float
) -> str:
    import torch

    ref = float(np.median(next(iter(times.values()))))
    lines = [
        f"Latest run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"`{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`, {wall_s:.0f} s wall; "
        f"{os.cpu_count()} cores visible, load average {load[0][0]:.1f} before / {load[1][0]:.1f} after "
        f"(shared machine: medians, interleaved rounds); torch {torch.__version__}, {threads} thread(s); "
        f"batch {batch} x 2 channels x {size} x {size} px ({source}); step = forward + DiceCE (+ tag BCE) + "
        "backward + AdamW.",
        "",
        "| model | parameters | median step ms | IQR ms | slices/s | step time vs FPSNet |",
        "|---|---|---|---|---|---|",
    ]
    for name, ts in times.items():
        ts = np.array(ts)
        med = float(np.median(ts))
        q1, q3 = np.percentile(ts, [25, 75])
        params = sum(p.numel() for p in models[name][0].parameters())
        lines.append(
            f"| {name} | {params:,} | {1000 * med:.0f} | {1000 * q1:.0f}-{1000 * q3:.0f} | {batch / med:.1f} | "
            f"{med / ref:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=PROJECT / "runs" / "real" / "brats2015_data")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--size", type=int, default=128, help="side of random inputs (real slices keep theirs)"
    )
    parser.add_argument("--rounds", type=int, default=12, help="timed steps per model (interleaved)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=PROJECT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    before = os.getloadavg()
    t0 = time.perf_counter()
    batches, source = load_batches(args.prepared, args.batch, 4, args.size)
    size = int(batches[0][0].shape[-1])
    models = make_models(int(batches[0][0].shape[1]))
    times = bench(models, batches, args.rounds, args.warmup)
    text = report(
        times,
        models,
        args.batch,
        size,
        source,
        args.threads,
        (before, os.getloadavg()),
        time.perf_counter() - t0,
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchdoc import write_section

    write_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
