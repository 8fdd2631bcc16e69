"""Cost of the reliability checks: ``wiml check-data`` on a prepared folder and the SHA-256 that
``load_model`` verifies.

* check-data: :func:`wiml.data.check.check_data` over every row of a prepared folder (the 775-slice BraTS 2015
  folder by default: ``wiml prepare --config configs/prepare_brats2015.yaml --out runs/real/brats2015_data``);
  one first run, then ``--repeats`` more (the files are then in the page cache); median and range.
* load_model: checkpoints of the demo's FPSNet (base width 8, depth 4; what ``make demo`` trains), the default
  (16, 4) and the original release's size (64, depth 5, 3 channels, 2 classes), saved with random weights (the
  hash cost depends on the file size only). Median wall time of ``load_model`` (which reads the file once,
  hashes it and parses it) and of the SHA-256 alone over the same bytes.

Usage::

    .venv/bin/python bench/bench_reliability.py --prepared runs/real/brats2015_data   # writes docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wiml.layout import PROJECT_ROOT as PROJECT

HEADING = "Reliability checks: check-data and checkpoint SHA-256 (bench/bench_reliability.py)"


def bench_check_data(prepared: Path, repeats: int) -> dict:
    from wiml.data.check import check_data

    times, report = [], None
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        report = check_data(prepared)
        times.append(time.perf_counter() - t0)
    if not report.ok:
        raise SystemExit(f"bench_reliability: {prepared} has problems: {report.message()}")
    return {"rows": report.n_rows, "patients": report.n_patients, "first_s": times[0], "rest_s": times[1:]}


def bench_load_model(repeats: int) -> list[dict]:
    import torch

    from wiml.networks.checkpoint import load_model, save_checkpoint
    from wiml.networks.fpsnet import FPSNet, FPSNetConfig

    sizes = {  # name -> FPSNetConfig
        "demo (width 8, depth 4)": FPSNetConfig(base_width=8, depth=4),
        "default (width 16, depth 4)": FPSNetConfig(base_width=16, depth=4),
        "original (width 64, depth 5)": FPSNetConfig.paper(),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in sizes.items():
            torch.manual_seed(0)
            path = save_checkpoint(Path(tmp) / f"{len(rows)}.safetensors", FPSNet(config), {"kind": "bench"})
            load_model(path)  # warm-up
            load_ms, sha_ms = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                load_model(path)
                load_ms.append(1000 * (time.perf_counter() - t0))
                data = path.read_bytes()
                t0 = time.perf_counter()
                hashlib.sha256(data).hexdigest()
                sha_ms.append(1000 * (time.perf_counter() - t0))
            rows.append({"name": name, "mb": path.stat().st_size / 1e6, "load_ms": load_ms, "sha_ms": sha_ms})
    return rows


def report(cd: dict | None, prepared: Path, lm: list[dict], load: tuple, wall_s: float) -> str:
    import torch

    lines = [
        f"Latest run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"`{' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`, {wall_s:.0f} s wall; "
        f"{os.cpu_count()} cores visible, load average {load[0][0]:.1f} before / {load[1][0]:.1f} after "
        f"(shared machine: medians); torch {torch.__version__}, 1 thread.",
        "",
    ]
    if cd is not None:
        rest = np.array(cd["rest_s"])
        lines += [
            f"**check-data** on `{prepared.name}` ({cd['rows']} slices of {cd['patients']} patients; every NPZ "
            "opened and decoded, shapes, dtypes, finiteness, tag vs mask, split, spacing): first run "
            f"{cd['first_s']:.2f} s, then median {np.median(rest):.2f} s (range {rest.min():.2f}-{rest.max():.2f} s, "
            f"{len(rest)} runs) = {1000 * np.median(rest) / cd['rows']:.2f} ms/slice.",
            "",
        ]
    lines += [
        "**load_model SHA-256** (the weights file is read once, hashed, then parsed):",
        "",
        "| checkpoint | MB | median load_model ms | median SHA-256 ms | SHA-256 share |",
        "|---|---|---|---|---|",
    ]
    for r in lm:
        load_ms, sha_ms = float(np.median(r["load_ms"])), float(np.median(r["sha_ms"]))
        lines.append(
            f"| {r['name']} | {r['mb']:.2f} | {load_ms:.1f} | {sha_ms:.2f} | {100 * sha_ms / load_ms:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=PROJECT / "runs" / "real" / "brats2015_data")
    parser.add_argument("--repeats", type=int, default=5, help="check-data runs after the first")
    parser.add_argument("--load-repeats", type=int, default=20, help="load_model runs per checkpoint")
    parser.add_argument("--out", type=Path, default=PROJECT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    before = os.getloadavg()
    t0 = time.perf_counter()
    cd = None
    if (args.prepared / "manifest.csv").is_file():
        cd = bench_check_data(args.prepared, args.repeats)
    else:
        print(
            f"bench_reliability: no prepared folder at {args.prepared}; check-data not measured",
            file=sys.stderr,
        )
    lm = bench_load_model(args.load_repeats)
    text = report(cd, args.prepared, lm, (before, os.getloadavg()), time.perf_counter() - t0)
    from benchdoc import write_section

    write_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
