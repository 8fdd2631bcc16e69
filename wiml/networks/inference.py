"""Inference with a trained FPSNet: foreground probabilities and tag probabilities of 2-D slices.

Slices of any size are fed at the network's training size (``size``) and the probabilities are resized back,
or, without ``size``, zero-padded up to the network's size divisor and cropped back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wiml.errors import InputError

logger = logging.getLogger(__name__)


def fit_channels(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, in_channels, H, W): a grey slice is repeated into a multi-channel network's input.

    Raises:
        InputError: C differs from ``in_channels`` and is not 1.
    """
    if x.shape[1] == in_channels:
        return x
    if x.shape[1] == 1:
        return x.repeat(1, in_channels, 1, 1)  # grey slice into a 3-channel network (the original's input)
    raise InputError(f"images have {x.shape[1]} channels but the network expects {in_channels}")


@torch.no_grad()
def predict_slices(
    model: torch.nn.Module,
    images: np.ndarray | Sequence[np.ndarray],
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Foreground and tag probabilities of a stack of slices.

    Args:
        model: an FPSNet in eval mode (``.config.in_channels``, ``.size_divisor``), on ``device``.
        images: (N, C, H, W) float32 array, or a sequence of (C, H, W) / (H, W) slices of one size.
        device: where to run.
        batch_size: slices per forward pass.
        size: network input side in px (the training size); None = native size (padded to the divisor).

    Returns:
        prob: (N, H, W) float32 foreground probability at the input size.
        tag_prob: (N,) float32 probability that the target is present.
        seconds_per_slice: mean wall time of the forward passes (incl. resizing), s.

    Raises:
        InputError: images of different sizes or an unsuitable channel count.
    """
    from wiml.networks.fpsnet import foreground_probability, tag_probability

    if not isinstance(images, np.ndarray):
        arrs = [np.asarray(im, np.float32) for im in images]
        arrs = [a[None] if a.ndim == 2 else a for a in arrs]
        if len({a.shape for a in arrs}) > 1:
            raise InputError(f"slices of different shapes in one call: {sorted({a.shape for a in arrs})}")
        images = np.stack(arrs) if arrs else np.zeros((0, 1, 1, 1), np.float32)
    if images.ndim != 4:
        raise InputError(f"expected (N, C, H, W) images, got shape {images.shape}")
    n, _, h, w = images.shape
    divisor = int(getattr(model, "size_divisor", 1))
    in_ch = int(model.config.in_channels)
    probs = np.zeros((n, h, w), np.float32)
    tags = np.zeros((n,), np.float32)
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], np.float32)).to(device)
        x = fit_channels(x, in_ch)
        if size is not None and (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        hh, ww = x.shape[2:]
        pad_h, pad_w = (-hh) % divisor, (-ww) % divisor
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = model(x)
        p = foreground_probability(out.seg)[:, :hh, :ww]
        if (hh, ww) != (h, w):
            p = F.interpolate(p[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        probs[start : start + len(x)] = p.float().cpu().numpy()
        tags[start : start + len(x)] = tag_probability(out.cls).float().cpu().numpy()
    seconds = (time.perf_counter() - t0) / max(n, 1)
    return probs, tags, seconds
