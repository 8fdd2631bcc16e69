"""Patient-level train/val/test split: explicit lists first, the rest by seeded ratios.

Slices of one patient never land in two splits; the same seed and patient ids give the same split.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from wiml.data.slices import SPLITS
from wiml.errors import ConfigError


@dataclasses.dataclass
class SplitConfig:
    """Patient-level split.

    Attributes:
        seed: seed of the shuffle of the (sorted) patient ids.
        ratios: train/val/test fractions of the patients not listed explicitly.
        train, val, test: patient ids placed in that split explicitly.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "ratios": ">= 0",
        "seed": ">= 0",
    }

    seed: int = 0
    ratios: list[float] = dataclasses.field(default_factory=lambda: [0.7, 0.15, 0.15])
    train: list[str] = dataclasses.field(default_factory=list)
    val: list[str] = dataclasses.field(default_factory=list)
    test: list[str] = dataclasses.field(default_factory=list)


def split_counts(n: int, ratios: list[float]) -> tuple[int, int, int]:
    """Numbers of (train, val, test) patients for ``n`` patients and ``ratios``.

    Each split gets ``round(n * ratio)`` (halves rounded up); a split with a positive ratio gets at least one
    patient while there are enough; the totals are then fixed on the largest split.
    """
    r = np.asarray(ratios, dtype=float) / float(sum(ratios))
    counts = np.floor(r * n + 0.5).astype(int)
    wanted = r > 0
    if n >= int(wanted.sum()):
        counts[wanted & (counts == 0)] = 1
    while counts.sum() > n:
        floor = wanted.astype(int)
        counts[int(np.argmax(np.where(counts > floor, counts, -1)))] -= 1
    while counts.sum() < n:
        counts[0 if wanted[0] else int(np.argmax(r))] += 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def split_patients(patient_ids: list[str], cfg: SplitConfig) -> dict[str, str]:
    """Patient-level split: explicit lists first, the rest by seeded ratios.

    The patients not listed are sorted, shuffled with ``numpy.random.default_rng(seed)``, and the first
    ``n_val`` go to val, the next ``n_test`` to test, the rest to train (counts: :func:`split_counts`).

    Returns:
        patient_id -> ``train`` | ``val`` | ``test``.

    Raises:
        ConfigError: a patient listed in two splits, or listed but not present.
    """
    assigned: dict[str, str] = {}
    for split in SPLITS:
        for pid in getattr(cfg, split):
            pid = str(pid)
            if pid in assigned:
                raise ConfigError(f"patient {pid!r} listed in split {assigned[pid]!r} and {split!r}")
            if pid not in patient_ids:
                raise ConfigError(f"split.{split} lists patient {pid!r}, which the input does not hold")
            assigned[pid] = split
    rest = sorted(p for p in patient_ids if p not in assigned)
    rest = [rest[i] for i in np.random.default_rng(cfg.seed).permutation(len(rest))]
    _, n_val, n_test = split_counts(len(rest), cfg.ratios)
    for i, pid in enumerate(rest):
        assigned[pid] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return assigned
