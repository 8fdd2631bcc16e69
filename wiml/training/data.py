"""Torch datasets over prepared slices (``manifest.csv``) and the weighted / class-balanced sampler.

Batches are dicts (default collation):
    image: (B, C, H, W) float32; tag: (B,) float32 in {0, 1}; mask: (B, H, W) int64 (zeros where the
    slice has no strong label); has_mask: (B,) bool; index: (B,) int64 position in the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from wiml.data.slices import SliceRecord, load_slice
from wiml.errors import InputError

logger = logging.getLogger(__name__)


class SliceDataset(Dataset):
    """Prepared slices as training/validation items, optionally augmented.

    Args:
        records: manifest rows (``wiml.data.slices.read_manifest``).
        transform: a MONAI dictionary transform over ``image`` (C, H, W) and ``mask`` (1, H, W), or None.
        use_masks: return the ground-truth mask where the NPZ has one. Tags-only training passes False so
            that no strong label can leak into it; ``has_mask`` is then False everywhere.
        cache: keep decoded slices in memory after the first read (prepared sets here are small).
        seed: base seed of the transform's random state (see :meth:`set_epoch`).
        arrays: slices already in memory, ``{record.path: (image (C, H, W) float32, mask (H, W) uint8 | None)}``
            (e.g. :func:`wiml.data.slices.load_slices`); records found there are not read from disk.

    Raises:
        InputError: ``records`` is empty.
    """

    def __init__(
        self,
        records: Sequence[SliceRecord],
        transform=None,
        use_masks: bool = False,
        cache: bool = True,
        seed: int = 0,
        arrays: Mapping[Path, tuple[np.ndarray, np.ndarray | None]] | None = None,
    ) -> None:
        if not records:
            raise InputError("no slices to train or validate on (check the manifest's split column)")
        self.records = list(records)
        self.transform = transform
        self.use_masks = use_masks
        self.cache = cache
        self.seed = seed
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self.arrays = arrays
        self.set_epoch(0)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def tags(self) -> np.ndarray:
        """(N,) int64 image tags of the records."""
        return np.array([r.tag for r in self.records], dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the augmentation so that epoch ``e`` draws the same transforms on every run (and resume)."""
        if self.transform is not None and hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(seed=(self.seed * 1_000_003 + epoch) % (2**32))

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i in self._cache:
            return self._cache[i]
        rec = self.records[i]
        image, mask = self.arrays[rec.path] if self.arrays and rec.path in self.arrays else load_slice(rec)
        if not self.use_masks:
            mask = None
        if self.cache:
            self._cache[i] = (image, mask)
        return image, mask

    def __getitem__(self, i: int) -> dict:
        image, mask = self._load(i)
        rec = self.records[i]
        if self.transform is not None:
            item = {"image": image.copy()}
            if mask is not None:
                item["mask"] = mask[None].astype(np.float32)
            item = self.transform(item)
            image = np.asarray(item["image"], dtype=np.float32)
            if mask is not None:
                mask = np.asarray(item["mask"])[0].round().astype(np.uint8)
        has_mask = mask is not None
        mask_t = (
            torch.from_numpy(mask.astype(np.int64))
            if has_mask
            else torch.zeros(image.shape[1:], dtype=torch.int64)
        )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "tag": torch.tensor(float(rec.tag)),
            "mask": mask_t,
            "has_mask": torch.tensor(has_mask),
            "index": torch.tensor(i),
        }


def class_balanced_weights(tags: Sequence[int]) -> np.ndarray:
    """Per-sample weights that give every tag class the same total weight.

    Args:
        tags: (N,) class of each sample.

    Returns:
        (N,) float64 weights summing to 1.
    """
    tags = np.asarray(tags)
    classes, counts = np.unique(tags, return_counts=True)
    per_class = dict(zip(classes.tolist(), (1.0 / (len(classes) * counts)).tolist()))
    return np.array([per_class[t] for t in tags.tolist()], dtype=np.float64)


class WeightedEpochSampler(Sampler[int]):
    """Draw indices with replacement in proportion to ``weights``; a fresh, seeded draw every epoch.

    Works with and without DistributedDataParallel: every rank draws the same global sequence (seed + epoch)
    and keeps every ``world_size``-th index from ``rank`` on, so ranks see disjoint parts of one epoch.
    Over-sampling (class balance, strongly labelled slices in mixed training) is expressed by the weights.

    Args:
        weights: (N,) non-negative sampling weights (need not sum to 1).
        num_samples: samples per epoch over all ranks (rounded up to a multiple of ``world_size``).
        seed: base seed.
        rank: this process's rank.
        world_size: number of processes.

    Raises:
        InputError: empty weights, negative weights or all zero.
    """

    def __init__(
        self, weights: Sequence[float], num_samples: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.numel() == 0 or (w < 0).any() or w.sum() <= 0:
            raise InputError("sampling weights must be non-negative with a positive sum")
        self.weights = w
        self.world_size = int(world_size)
        self.rank = int(rank)
        self.total = int(np.ceil(max(1, num_samples) / self.world_size)) * self.world_size
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        idx = torch.multinomial(self.weights, self.total, replacement=True, generator=g)
        return iter(idx[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.total // self.world_size
