"""Mixed-supervised learning (MSL): the loss on tags + a few strong labels, and strong-slice over-sampling.

MSL (Nie et al., "Weakly-interactive-mixed learning: less labelling cost for better medical image
segmentation", IEEE JBHI 2023) trains FPSNet on the image tag of every slice plus pixel masks of K
slices (K = 5 by default). Every slice contributes a tag loss; the strongly labelled slices also contribute a
segmentation loss. Because K is tiny, the strong slices are over-sampled so that every batch holds some.

Loss (ours, default):  ``L = w_tag * BCE/CE(tag) + w_seg * (Dice + CE)(seg | strong slices)`` with MONAI's
``DiceCELoss`` (sigmoid + BCE for a 1-channel segmentation, softmax + CE for >= 2 channels).
Paper recipe (``seg_loss="bce"``): BCE on a 1-channel segmentation of the strong slices, CE on 2-class tags.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import ClassVar, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from wiml.training.losses import tag_loss


@dataclasses.dataclass
class MixedLossConfig:
    """Weights and kind of the MSL loss.

    Attributes:
        seg_loss: ``dice_ce`` (MONAI DiceCELoss, ours) or ``bce``/``ce`` (cross-entropy only, the paper).
        seg_weight: weight of the segmentation term on the strong slices.
        tag_weight: weight of the tag term on every slice.
        negative_weight: weight of a cross-entropy term that pushes the segmentation of tag-negative slices
            (tag 0 and no strong label) to background: a tag of 0 says exactly that the mask is empty. 0 = off,
            as in the original method.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "seg_weight": ">= 0",
        "tag_weight": ">= 0",
        "negative_weight": ">= 0",
    }

    seg_loss: Literal["dice_ce", "bce", "ce"] = "dice_ce"
    seg_weight: float = 1.0
    tag_weight: float = 1.0
    negative_weight: float = 0.0


class MixedLossTerms(NamedTuple):
    """The total loss and its terms (0-d tensors); ``seg`` is 0 when the batch has no strong slice, ``neg`` is 0
    when ``negative_weight`` is 0 or the batch has no tag-negative weak slice."""

    total: torch.Tensor
    tag: torch.Tensor
    seg: torch.Tensor
    neg: torch.Tensor


def segmentation_loss(seg_logits: torch.Tensor, masks: torch.Tensor, kind: str = "dice_ce") -> torch.Tensor:
    """Segmentation loss of strongly labelled slices.

    Args:
        seg_logits: (B, K, H, W) float logits; K = 1 (sigmoid foreground) or K >= 2 (softmax).
        masks: (B, H, W) integer masks (0/1, or class ids < K).
        kind: ``dice_ce`` (MONAI ``DiceCELoss``: Dice per sample, averaged, + BCE/CE), or ``bce``/``ce``
            (cross-entropy only; BCE for K = 1, CE otherwise).

    Returns:
        0-d tensor.

    Raises:
        ValueError: unknown ``kind`` or shapes that do not fit.
    """
    if seg_logits.ndim != 4 or masks.shape != (seg_logits.shape[0],) + tuple(seg_logits.shape[2:]):
        raise ValueError(
            f"seg_logits (B,K,H,W) {tuple(seg_logits.shape)} and masks (B,H,W) "
            f"{tuple(masks.shape)} do not fit"
        )
    k = seg_logits.shape[1]
    target = masks[:, None].to(seg_logits.dtype)
    if kind in ("bce", "ce"):
        if k == 1:
            return F.binary_cross_entropy_with_logits(seg_logits, target)
        return F.cross_entropy(seg_logits, masks.long())
    if kind != "dice_ce":
        raise ValueError(f"unknown segmentation loss {kind!r}; expected dice_ce, bce or ce")
    from monai.losses import DiceCELoss

    if k == 1:
        loss = DiceCELoss(sigmoid=True)
    else:
        loss = DiceCELoss(softmax=True, to_onehot_y=True, include_background=False)
    return loss(seg_logits, target)


def mixed_loss(
    seg_logits: torch.Tensor,
    cls_logits: torch.Tensor,
    tags: torch.Tensor,
    masks: torch.Tensor,
    strong: torch.Tensor,
    config: MixedLossConfig | None = None,
) -> MixedLossTerms:
    """MSL loss: tag loss on every slice + weighted segmentation loss on the strong slices only
    (+ optionally, ``negative_weight`` x cross-entropy to an empty mask on tag-negative weak slices).

    Args:
        seg_logits: (B, K, H, W) segmentation logits.
        cls_logits: (B, C) tag logits.
        tags: (B,) 0/1 image tags.
        masks: (B, H, W) masks; rows where ``strong`` is False are ignored (may be zeros).
        strong: (B,) bool, True where the slice has a strong label.
        config: weights and kind; defaults to :class:`MixedLossConfig`.

    Returns:
        :class:`MixedLossTerms` (total, tag, seg).
    """
    config = config or MixedLossConfig()
    t = tag_loss(cls_logits, tags)
    strong = strong.bool()
    if bool(strong.any()):
        s = segmentation_loss(seg_logits[strong], masks[strong], config.seg_loss)
    else:
        s = seg_logits.sum() * 0.0  # keeps the graph (DDP needs every parameter used)
    neg = (tags.reshape(-1) < 0.5) & ~strong
    if config.negative_weight > 0 and bool(neg.any()):
        n = segmentation_loss(seg_logits[neg], torch.zeros_like(masks[neg]), "ce")
    else:
        n = seg_logits.sum() * 0.0
    total = config.tag_weight * t + config.seg_weight * s + config.negative_weight * n
    return MixedLossTerms(total, t, s, n)


def make_mixed_loss(config: MixedLossConfig | None = None):
    """A trainer loss ``(output, batch) -> (loss, logs)`` (see :mod:`wiml.training.trainer`) for MSL.

    The batch needs ``tag`` (B,), ``mask`` (B, H, W) and ``has_mask`` (B,) bool (True on strong slices).
    """
    config = config or MixedLossConfig()

    def loss_fn(output, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        terms = mixed_loss(output.seg, output.cls, batch["tag"], batch["mask"], batch["has_mask"], config)
        logs = {"tag_loss": float(terms.tag.detach()), "seg_loss": float(terms.seg.detach())}
        if config.negative_weight > 0:
            logs["neg_loss"] = float(terms.neg.detach())
        return terms.total, logs

    return loss_fn


def mixed_batches(
    n_items: int,
    strong_indices: Sequence[int],
    batch_size: int,
    strong_per_batch: int = 1,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    max_batches: int | None = None,
) -> list[list[int]]:
    """Batches of dataset indices in which every batch holds ``strong_per_batch`` strong slices.

    The weak (non-strong) slices are shuffled and cut into chunks of ``batch_size - strong_per_batch`` (the
    last chunk is filled up with randomly drawn weak slices, so every batch has ``batch_size`` slices);
    each chunk is completed with strong slices drawn in turn from a shuffled cycle of ``strong_indices``,
    so the few strong slices are over-sampled evenly (the original release paired a strong and a weak
    slice in every batch). One epoch covers every weak slice once. Deterministic in (seed, epoch).

    Args:
        n_items: dataset length; indices not in ``strong_indices`` are the weak slices.
        strong_indices: indices of the strongly labelled slices (may be empty: plain shuffled batches).
        batch_size: slices per batch (> strong_per_batch unless there are no weak slices).
        strong_per_batch: strong slices per batch.
        seed: base seed.
        epoch: epoch number (mixed into the seed).
        rank: this process's rank (DDP); batches are dealt round-robin to the ranks.
        world_size: number of processes (DDP).
        max_batches: keep only the first this many batches of the epoch (over all ranks; None = all), for
            large training sets on a CPU budget.

    Returns:
        list of batches (lists of indices); with DDP every rank gets the same number of batches.

    Raises:
        ValueError: bad sizes or indices.
    """
    strong = sorted(set(int(i) for i in strong_indices))
    if batch_size < 1 or strong_per_batch < 0 or n_items < 0:
        raise ValueError(f"need batch_size >= 1, strong_per_batch >= 0, got {batch_size}, {strong_per_batch}")
    if any(i < 0 or i >= n_items for i in strong):
        raise ValueError(f"strong indices must lie in [0, {n_items})")
    rng = np.random.default_rng([seed, epoch])
    strong_set = set(strong)
    weak = np.array([i for i in range(n_items) if i not in strong_set], dtype=np.int64)
    rng.shuffle(weak)
    n_strong = min(strong_per_batch, batch_size) if strong else 0
    if n_strong == 0:
        pool = np.concatenate([weak, np.array(strong, dtype=np.int64)])
        rng.shuffle(pool)
        batches = [pool[i : i + batch_size].tolist() for i in range(0, len(pool), batch_size)]
    else:
        per_weak = batch_size - n_strong
        if per_weak == 0 or len(weak) == 0:
            n_batches = max(1, math.ceil(len(strong) / n_strong))
            chunks = [[] for _ in range(n_batches)]
        else:
            chunks = [weak[i : i + per_weak].tolist() for i in range(0, len(weak), per_weak)]
            if len(chunks[-1]) < per_weak:  # fill the last chunk so that every batch is full
                chunks[-1] += rng.choice(weak, per_weak - len(chunks[-1])).tolist()
        cycle: list[int] = []
        batches = []
        for chunk in chunks:
            picked = []
            while len(picked) < n_strong:
                if not cycle:
                    cycle = rng.permutation(strong).tolist()
                picked.append(cycle.pop())
            batches.append(chunk + picked)
    if max_batches is not None and max_batches > 0:
        batches = batches[:max_batches]
    if world_size > 1 and batches:
        pad = (-len(batches)) % world_size  # repeat the first batches so every rank gets as many
        batches = batches + [batches[i % len(batches)] for i in range(pad)]
        batches = batches[rank::world_size]
    return batches


class MixedSampler(torch.utils.data.Sampler):
    """Index sampler that yields :func:`mixed_batches` flattened: use it with ``DataLoader(batch_size=...)``
    and the same ``batch_size`` so that every loader batch is one mixed batch.

    The trainer calls :meth:`set_epoch` every epoch (like ``DistributedSampler``).

    Args:
        n_items: dataset length.
        strong_indices: indices of the strong slices.
        batch_size: slices per batch (must equal the DataLoader's).
        strong_per_batch: strong slices per batch.
        seed: base seed.
        rank: process rank (DDP).
        world_size: process count (DDP).
        max_batches: batches per epoch at most (None = every weak slice once per epoch).
    """

    def __init__(
        self,
        n_items: int,
        strong_indices: Sequence[int],
        batch_size: int,
        strong_per_batch: int = 1,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        max_batches: int | None = None,
    ) -> None:
        self.n_items = n_items
        self.strong_indices = list(strong_indices)
        self.batch_size = batch_size
        self.strong_per_batch = strong_per_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.max_batches = max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def batches(self) -> list[list[int]]:
        """This epoch's batches for this rank."""
        return mixed_batches(
            self.n_items,
            self.strong_indices,
            self.batch_size,
            self.strong_per_batch,
            self.seed,
            self.epoch,
            self.rank,
            self.world_size,
            self.max_batches,
        )

    def __iter__(self) -> Iterator[int]:
        return iter([i for batch in self.batches() for i in batch])

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches())
