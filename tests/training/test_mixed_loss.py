"""MSL loss on hand-computed tiny cases and the strong-slice over-sampling batches."""

from __future__ import annotations

import math

import pytest
import torch

from wiml.training.losses import tag_loss
from wiml.training.mixed import (
    MixedLossConfig,
    MixedSampler,
    make_mixed_loss,
    mixed_batches,
    mixed_loss,
    segmentation_loss,
)

LN2 = math.log(2.0)


def test_mixed_loss_hand_computed():
    # slice 0: strong, seg logits 0 -> p = 0.5 on a mask [1, 0]: BCE = ln 2, soft Dice = 2*0.5/(1+1) -> loss 0.5.
    # slice 1: weak only; its huge seg logits must not count.
    seg = torch.tensor([[[[0.0, 0.0]]], [[[50.0, -50.0]]]])
    masks = torch.tensor([[[1, 0]], [[0, 1]]])
    cls = torch.zeros(2, 1)  # p = 0.5 for both tags -> BCE = ln 2
    tags = torch.tensor([1, 0])
    strong = torch.tensor([True, False])
    out = mixed_loss(seg, cls, tags, masks, strong, MixedLossConfig(seg_weight=2.0))
    assert out.tag.item() == pytest.approx(LN2, abs=1e-6)
    assert out.seg.item() == pytest.approx(LN2 + 0.5, abs=1e-4)
    assert out.total.item() == pytest.approx(LN2 + 2.0 * (LN2 + 0.5), abs=1e-4)
    # tag-negative weak slice 1 (logits +50 / -50 against an empty mask): BCE = (50 + 0) / 2 per pixel
    neg = mixed_loss(seg, cls, tags, masks, strong, MixedLossConfig(negative_weight=0.5))
    assert neg.neg.item() == pytest.approx(25.0, abs=1e-4)
    assert neg.total.item() == pytest.approx(LN2 + (LN2 + 0.5) + 0.5 * 25.0, abs=1e-3)
    # the paper's recipe: cross-entropy only on the strong slice
    paper = mixed_loss(seg, cls, tags, masks, strong, MixedLossConfig(seg_loss="bce"))
    assert paper.seg.item() == pytest.approx(LN2, abs=1e-6)
    # trainer form: strong flag from the batch's has_mask
    output = type("Out", (), {"seg": seg, "cls": cls})()
    loss, logs = make_mixed_loss()(output, {"tag": tags, "mask": masks, "has_mask": strong})
    assert loss.item() == pytest.approx(LN2 + LN2 + 0.5, abs=1e-4) and set(logs) == {"tag_loss", "seg_loss"}


def test_two_class_tags_use_cross_entropy_and_no_strong_slice_gives_zero_seg():
    cls = torch.tensor([[0.0, math.log(3.0)]])  # softmax p(present) = 3/4
    assert tag_loss(cls, torch.tensor([1])).item() == pytest.approx(math.log(4 / 3), abs=1e-6)
    seg = torch.zeros(1, 1, 2, 2, requires_grad=True)
    out = mixed_loss(seg, cls, torch.tensor([1]), torch.zeros(1, 2, 2), torch.tensor([False]))
    assert out.seg.item() == 0.0
    out.total.backward()  # graph intact although no strong slice
    assert seg.grad is not None


def test_segmentation_loss_two_channels_and_validation():
    seg = torch.zeros(1, 2, 1, 2)  # softmax 0.5/0.5 -> CE = ln 2
    assert segmentation_loss(seg, torch.tensor([[[1, 0]]]), "ce").item() == pytest.approx(LN2, abs=1e-6)
    with pytest.raises(ValueError, match="unknown"):
        segmentation_loss(seg, torch.tensor([[[1, 0]]]), "focal")
    with pytest.raises(ValueError, match="do not fit"):
        segmentation_loss(seg, torch.zeros(1, 3, 3), "ce")


def test_every_batch_holds_a_strong_slice_and_every_weak_slice_appears_once():
    strong = [3, 7]
    batches = mixed_batches(20, strong, batch_size=4, strong_per_batch=1, seed=0, epoch=0)
    assert all(len(b) == 4 and sum(i in strong for i in b) == 1 for b in batches)
    weak = sorted(i for b in batches for i in b if i not in strong)
    assert weak == [i for i in range(20) if i not in strong]
    assert len(batches) == math.ceil(18 / 3)
    padded = mixed_batches(21, strong, batch_size=4, strong_per_batch=1)  # 19 weak: last chunk filled up
    assert all(len(b) == 4 for b in padded) and len(padded) == 7
    assert set(i for b in padded for i in b) == set(range(21))
    assert batches == mixed_batches(20, strong, 4, 1, seed=0, epoch=0)  # deterministic
    assert batches != mixed_batches(20, strong, 4, 1, seed=0, epoch=1)  # reshuffled per epoch


def test_ddp_ranks_get_disjoint_equal_shares_and_sampler_len():
    full = mixed_batches(21, [0], 4, 1, seed=1, world_size=1)
    r0 = mixed_batches(21, [0], 4, 1, seed=1, rank=0, world_size=2)
    r1 = mixed_batches(21, [0], 4, 1, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) == math.ceil(len(full) / 2)
    sampler = MixedSampler(21, [0], 4, 1, seed=1)
    assert len(sampler) == 4 * len(full) and list(sampler) == [i for b in full for i in b]
    with pytest.raises(ValueError):
        mixed_batches(5, [9], 4, 1)
