"""Click-to-mask latency of the WIA refinement, side by side with the original release's way.

Three refinement paths see the same real slices and the same robot-user clicks:

* ``original``: the original release's way: GeodisTK fast marching from each click set on the standardised
  image, likelihoods ``exp(-d^2)``, SimpleCRF interactive max-flow over the whole image (no smoothing, no
  spatial decay, no region of interest, no mask prior);
* ``geodistk``: WIML's refinement settings (smoothing, likelihood scale, spatial decay) with GeodisTK fast
  marching and the max-flow over the whole image — the quality reference of the fast path;
* ``wiml``: WIML's default session: FastGeodis raster scan and the graph cut restricted to the region of
  interest around the possible foreground (:class:`wiml.interactive.RefinementSession` defaults).

The clicks come from the robot user (:mod:`wiml.interactive.robot`) running on the ``geodistk`` path from an
empty mask (no CAM); the other paths replay them, so Dice after the same clicks is comparable. Timing is the
refinement only (``RefinementSession.last_seconds``), after one warm-up refinement per path; medians are
quoted because the machine is shared. Slices: liver_ct_slices (256 x 256 JPEG) and the 512 x 512 slices of
wiml_samples and ircadb_patient1 (DICOM, HU windowed to [-100, 200]).

Usage::

    .venv/bin/python bench/bench_refinement.py                       # writes docs/benchmarks.md
    .venv/bin/python bench/bench_refinement.py --n256 4 --n512 2 --clicks 3 --out /tmp/bench.md
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from wiml.layout import PROJECT_ROOT as PROJECT

logger = logging.getLogger("bench_refinement")

PATHS = {
    "original": dict(
        backend="geodistk",
        lam=5.0,
        sigma=0.1,
        likelihood_scale=1.0,
        spatial_scale=None,
        smoothing_px=0.0,
        roi_margin_px=None,
        mask_prior=0.0,
        adaptive_scale=None,
        open_radius_px=1,
    ),
    "geodistk": dict(backend="geodistk", roi_margin_px=None),
    "wiml": dict(),
}
TARGET_MS = {256: 50.0, 512: 200.0}
HEADING = "WIA refinement: click-to-mask latency (bench/bench_refinement.py)"


def _read(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3].mean(axis=-1)
    return np.squeeze(arr)


def load_slices(root: Path, n256: int, n512: int) -> list[dict]:
    """Real slices with liver masks: ``{"name", "size", "image", "gt", "value_range"}``."""
    out = []
    liver = sorted((root / "liver_ct_slices" / "images").glob("*.jpg"))
    if liver and n256 > 0:
        for i in np.linspace(0, len(liver) - 1, n256).round().astype(int):
            img = liver[i]
            gt = _read(root / "liver_ct_slices" / "masks" / img.name) > 127
            out.append(
                {
                    "name": img.stem,
                    "size": 256,
                    "image": _read(img).astype(np.float32),
                    "gt": gt,
                    "value_range": None,
                }
            )
    big = []
    samples = sorted((root / "wiml_samples" / "WIA" / "data_source").glob("*.png"))
    for img in samples:
        gt = _read(root / "wiml_samples" / "WIA" / "label" / img.name) > 127
        big.append(
            {
                "name": f"wiml_samples_{img.stem}",
                "size": 512,
                "image": _read(img).astype(np.float32),
                "gt": gt,
                "value_range": None,
            }
        )
    ircadb = root / "ircadb_patient1"
    if ircadb.is_dir():
        for k in (40, 60, 80, 100):
            gt = _read(ircadb / "MASKS_DICOM" / "liver" / f"image_{k}") > 127
            big.append(
                {
                    "name": f"ircadb1_{k}",
                    "size": 512,
                    "image": _read(ircadb / "PATIENT_DICOM" / f"image_{k}").astype(np.float32),
                    "gt": gt,
                    "value_range": (-100.0, 200.0),
                }
            )
    if big and n512 > 0:
        out += [big[i] for i in np.linspace(0, len(big) - 1, min(n512, len(big))).round().astype(int)]
    return out


def run(slices: list[dict], n_clicks: int) -> dict:
    """Robot clicks on the reference path, replayed on every path. Returns per-path times and Dice."""
    from wiml.evaluation.metrics import dice_score
    from wiml.interactive import RefinementSession
    from wiml.interactive.robot import simulate

    sessions = {name: RefinementSession(**kw) for name, kw in PATHS.items()}
    warm = np.zeros((64, 64), np.float32)
    warm[20:40, 20:40] = 1
    for s in sessions.values():  # first calls load libraries (torch / FastGeodis): not part of a click
        s.set_image(warm)
        s.add_click(30, 30, True)
    res = {(sl["size"], name): {"ms": [], "dice": [], "final": []} for sl in slices for name in PATHS}
    for sl in slices:
        ref = sessions["geodistk"]
        ref.set_image(sl["image"], value_range=sl["value_range"])
        robot = simulate(ref, sl["gt"], max_clicks=n_clicks, target_dice=None)
        r = res[(sl["size"], "geodistk")]
        r["ms"] += [1000 * t for t in robot.seconds_per_click]
        r["dice"] += robot.dice_per_step
        r["final"].append(robot.final_dice)
        for name, s in sessions.items():
            if name == "geodistk":
                continue  # its clicks and times are the robot's own run above
            s.set_image(sl["image"], value_range=sl["value_range"])
            dice = []
            for c in robot.clicks:
                mask = s.add_click(c.row, c.col, bool(c.label))
                res[(sl["size"], name)]["ms"].append(1000 * s.last_seconds)
                dice.append(dice_score(mask, sl["gt"]))
            res[(sl["size"], name)]["dice"] += dice
            res[(sl["size"], name)]["final"].append(dice[-1] if dice else 0.0)
        logger.info(
            "%s: %d clicks, final Dice %s",
            sl["name"],
            len(robot.clicks),
            {n: round(res[(sl["size"], n)]["final"][-1], 3) for n in PATHS},
        )
    return res


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(
    res: dict, slices: list[dict], args: argparse.Namespace, load_before, load_after, wall_s: float
) -> str:
    import FastGeodis
    import torch
    from benchdoc import shown_path

    lines = [
        f"Latest run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"`.venv/bin/python bench/{' '.join([Path(sys.argv[0]).name] + [shown_path(a) for a in sys.argv[1:]])}`, "
        f"{wall_s:.0f} s wall.",
        f"Machine: {_cpu_name()}, {os.cpu_count()} cores visible, load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after (the machine is shared: medians, not means); "
        f"torch {torch.__version__} ({torch.get_num_threads()} thread), FastGeodis {FastGeodis.__version__}.",
        "",
        "Paths (same slices, same robot clicks from an empty mask, replayed): **original** = GeodisTK fast "
        "marching, `exp(-d^2)`, SimpleCRF max-flow over the whole image; **geodistk** = WIML's likelihood "
        "settings with GeodisTK and the whole image (quality reference); **wiml** = the default session "
        "(FastGeodis + region of interest). Time = one refinement (geodesic maps of both click sets, "
        "likelihoods, graph cut, post-processing), the click-to-mask time without drawing.",
        "",
        "| size | slices | clicks | path | median ms/click | p90 ms | mean Dice over all clicks "
        "| mean final Dice |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for size in sorted({s["size"] for s in slices}):
        n = sum(1 for s in slices if s["size"] == size)
        med = {}
        for name in PATHS:
            r = res[(size, name)]
            med[name] = float(np.median(r["ms"]))
            lines.append(
                f"| {size} | {n} | {len(r['ms'])} | {name} | {med[name]:.1f} | "
                f"{np.percentile(r['ms'], 90):.1f} | {np.mean(r['dice']):.4f} | {np.mean(r['final']):.4f} |"
            )
        d_ref = np.mean(res[(size, "wiml")]["dice"]) - np.mean(res[(size, "geodistk")]["dice"])
        d_orig = np.mean(res[(size, "wiml")]["dice"]) - np.mean(res[(size, "original")]["dice"])
        target = TARGET_MS.get(size)
        ok = target is not None and med["wiml"] <= target
        verdicts.append(
            f"- {size} x {size}: wiml median {med['wiml']:.1f} ms/click "
            f"({'meets' if ok else 'MISSES'} the {target:.0f} ms target); "
            f"{med['original'] / med['wiml']:.1f}x faster than the original "
            f"({med['original']:.0f} ms), {med['geodistk'] / med['wiml']:.1f}x faster than the GeodisTK "
            f"path; mean Dice wiml - geodistk = {d_ref:+.4f} "
            f"({'within' if abs(d_ref) <= 0.01 else 'OUTSIDE'} 0.01), wiml - original = {d_orig:+.4f}."
        )
    lines += ["", *verdicts, "", "Slices: " + ", ".join(s["name"] for s in slices) + ".", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("WIML_SHARED_DATA", PROJECT.parent / "shared" / "data")),
    )
    parser.add_argument("--n256", type=int, default=8, help="liver_ct_slices slices (256 px)")
    parser.add_argument("--n512", type=int, default=5, help="512 px slices (wiml_samples, ircadb_patient1)")
    parser.add_argument("--clicks", type=int, default=5, help="robot clicks per slice")
    parser.add_argument("--out", type=Path, default=PROJECT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    torch.set_num_threads(1)
    if not args.data_root.is_dir():
        print(f"bench_refinement: real data not found at {args.data_root}; nothing measured", file=sys.stderr)
        return 1
    slices = load_slices(args.data_root, args.n256, args.n512)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = run(slices, args.clicks)
    text = report(res, slices, args, load_before, os.getloadavg(), time.perf_counter() - t0)
    from benchdoc import write_section

    write_section(args.out, HEADING, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
