"""Losses. Every trainer loss has the signature ``loss_fn(output: FPSNetOutput, batch: dict) -> (loss, logs)``
where ``loss`` is a scalar tensor to back-propagate and ``logs`` maps names to floats for the CSV log.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wiml.networks.fpsnet import FPSNetOutput


def tag_loss(cls_logits: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on image tags.

    Args:
        cls_logits: (B, C) logits; C=1 uses sigmoid BCE, C=2 softmax cross-entropy (the two-class form of BCE).
        tags: (B,) float or int in {0, 1}.

    Returns:
        Scalar mean loss.
    """
    if cls_logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(cls_logits[:, 0], tags.float())
    return F.cross_entropy(cls_logits, tags.long())


def weak_loss(output: FPSNetOutput, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """Tags-only loss of weak training: BCE of the classification output against ``batch['tag']``."""
    loss = tag_loss(output.cls, batch["tag"])
    return loss, {"bce": float(loss.detach())}
