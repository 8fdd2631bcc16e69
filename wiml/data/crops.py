"""Crop-level image tags for slice sets that hold only tag-positive slices (e.g. liver_ct_slices).

A tag classifier needs both classes; when every slice shows the target, random square crops of each slice
give them: a crop's tag is 1 when it holds target pixels. See docs/usage_data.md.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np


@dataclasses.dataclass
class CropConfig:
    """Crop-level tags for slice sets that hold only tag-positive slices (e.g. liver_ct_slices).

    Each (resized) slice gives ``per_slice`` square crops of ``size`` px; a crop's tag is 1 when it holds at
    least ``min_foreground_px`` target pixels. With ``balance`` half of the crops of a slice are drawn from
    the positions whose crop holds target and half from those whose crop holds none (where such exist), so
    that both tag classes occur.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "size": ">= 8",
        "per_slice": ">= 1",
        "min_foreground_px": ">= 1",
        "seed": ">= 0",
    }

    enabled: bool = False
    size: int = 128
    per_slice: int = 4
    min_foreground_px: int = 1
    balance: bool = True
    seed: int = 0


def crop_positions(
    mask: np.ndarray, crop: int, n: int, rng: np.random.Generator, min_fg: int = 1, balance: bool = True
) -> list[tuple[int, int]]:
    """Top-left corners (row, col) of ``n`` square crops of ``crop`` px from an (H, W) mask.

    With ``balance``, ``ceil(n/2)`` crops are drawn among positions whose crop holds >= ``min_fg``
    foreground pixels and the rest among positions that hold fewer (falling back to the other kind where
    one kind does not exist); otherwise positions are uniform.
    """
    h, w = mask.shape
    rows, cols = h - crop + 1, w - crop + 1
    if not balance:
        return [(int(rng.integers(rows)), int(rng.integers(cols))) for _ in range(n)]
    sat = np.pad(np.cumsum(np.cumsum(mask.astype(np.int64), 0), 1), ((1, 0), (1, 0)))
    counts = sat[crop:, crop:] - sat[:-crop, crop:] - sat[crop:, :-crop] + sat[:-crop, :-crop]
    pos = np.argwhere(counts >= min_fg)
    neg = np.argwhere(counts < min_fg)
    n_pos = (n + 1) // 2
    picks = []
    for k in range(n):
        pool = pos if (k < n_pos and len(pos)) or not len(neg) else neg
        r, c = pool[int(rng.integers(len(pool)))]
        picks.append((int(r), int(c)))
    return picks
