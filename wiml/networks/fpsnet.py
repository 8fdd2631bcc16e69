"""FPSNet: the multi-task U-Net shared by weakly-interactive annotation (WIA) and mixed-supervised learning (MSL).

Nie et al., "Weakly-Interactive-Mixed Learning: Less Labelling Cost for Better Medical Image Segmentation",
IEEE JBHI 27(7), 2023. FPS ("full parameter sharing"): the image-tag output is computed from the decoder's
full-resolution features, so every encoder and decoder weight serves both segmentation and classification.
In the original release the classification path is a 1x1 convolution to class scores followed by global
average pooling; those are the only weights it owns.

Variants (``FPSNetConfig``):
    * ``cls_pool``: ``conv_gap`` (default, FPS as in the release), or parameter-free pooling of the
      segmentation logits: ``gmp`` (global max), ``lse`` (log-sum-exp, Pinheiro & Collobert CVPR 2015),
      ``topk`` (mean of the top-k fraction of pixels).
    * ``head``: ``fps`` (above) or ``separate`` (global average pooling + linear layer on the bottleneck,
      the usual "classification branch" design, for ablation).
    * ``attention``: ``scse`` after every stage (Roy et al. MICCAI 2018) or ``none``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import torch
from torch import nn

from wiml.config import from_dict, to_dict
from wiml.errors import ConfigError, InputError
from wiml.networks.blocks import ConvBlock

CLS_POOLS = ("conv_gap", "gmp", "lse", "topk")


@dataclasses.dataclass
class FPSNetConfig:
    """Architecture of an FPSNet (saved in every checkpoint's sidecar).

    Attributes:
        in_channels: image channels C of the (B, C, H, W) input.
        out_channels: segmentation channels K (1: sigmoid foreground; >= 2: softmax, channel 1 = foreground).
        num_classes: tag outputs (1: sigmoid tag; 2: softmax, index 1 = present).
        base_width: channels of the first stage; stage i has ``base_width * 2**i``.
        depth: number of resolution levels (the last one is the bottleneck); inputs must be divisible by
            ``2**(depth - 1)``.
        norm: ``batch`` or ``instance``.
        attention: ``scse`` or ``none``.
        head: ``fps`` (classification from the decoder's full-resolution output) or ``separate``
            (classification head on the bottleneck).
        cls_pool: for ``head: fps``: ``conv_gap`` | ``gmp`` | ``lse`` | ``topk``.
        lse_r: sharpness r of log-sum-exp pooling (large r -> max, small r -> mean).
        topk_fraction: fraction of pixels averaged by top-k pooling.
        dropout: dropout after the bottleneck block (and before the separate head's linear layer).
    """

    in_channels: int = 1
    out_channels: int = 1
    num_classes: int = 1
    base_width: int = 16
    depth: int = 4
    norm: Literal["batch", "instance"] = "batch"
    attention: Literal["scse", "none"] = "scse"
    head: Literal["fps", "separate"] = "fps"
    cls_pool: Literal["conv_gap", "gmp", "lse", "topk"] = "conv_gap"
    lse_r: float = 4.0
    topk_fraction: float = 0.02
    dropout: float = 0.0

    @classmethod
    def paper(cls, **changes) -> FPSNetConfig:
        """The original release's size: base width 64, 3-channel input, 1-channel seg, 2-class tags, depth 5."""
        values = dict(in_channels=3, out_channels=1, num_classes=2, base_width=64, depth=5)
        values.update(changes)
        return cls(**values)

    def validate(self) -> FPSNetConfig:
        """Check ranges and combinations.

        Raises:
            ConfigError: a value out of range or a parameter-free pooling whose class count does not match
                the segmentation channels.
        """
        for name in ("in_channels", "out_channels", "num_classes", "base_width"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.depth <= 7:
            raise ConfigError(f"model.depth must be in [2, 7], got {self.depth}")
        if self.cls_pool not in CLS_POOLS:
            raise ConfigError(f"model.cls_pool: {self.cls_pool!r} is not one of {list(CLS_POOLS)}")
        if self.head not in ("fps", "separate"):
            raise ConfigError(f"model.head: {self.head!r} is not one of ['fps', 'separate']")
        if self.head == "fps" and self.cls_pool != "conv_gap" and self.num_classes != self.out_channels:
            raise ConfigError(
                f"model.cls_pool={self.cls_pool!r} pools the segmentation logits, so num_classes "
                f"({self.num_classes}) must equal out_channels ({self.out_channels})"
            )
        if not 0.0 < self.topk_fraction <= 1.0:
            raise ConfigError(f"model.topk_fraction must be in (0, 1], got {self.topk_fraction}")
        if self.lse_r <= 0:
            raise ConfigError(f"model.lse_r must be > 0, got {self.lse_r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        return self


class FPSNetOutput(NamedTuple):
    """FPSNet outputs.

    Attributes:
        seg: (B, K, H, W) float32 segmentation logits.
        cls: (B, C) float32 image-tag logits.
    """

    seg: torch.Tensor
    cls: torch.Tensor


def global_pool(
    logits: torch.Tensor, kind: str, lse_r: float = 4.0, topk_fraction: float = 0.02
) -> torch.Tensor:
    """Pool (B, K, H, W) maps to (B, K) scores.

    Args:
        logits: (B, K, H, W).
        kind: ``gap`` / ``conv_gap`` (mean), ``gmp`` (max), ``lse`` (``log(mean(exp(r x))) / r``),
            ``topk`` (mean of the largest ``ceil(topk_fraction * H * W)`` values).

    Returns:
        (B, K) tensor.
    """
    flat = logits.flatten(2)
    if kind in ("gap", "conv_gap"):
        return flat.mean(-1)
    if kind == "gmp":
        return flat.amax(-1)
    if kind == "lse":
        return (torch.logsumexp(lse_r * flat, dim=-1) - math.log(flat.shape[-1])) / lse_r
    if kind == "topk":
        k = max(1, int(math.ceil(topk_fraction * flat.shape[-1])))
        return flat.topk(k, dim=-1).values.mean(-1)
    raise ConfigError(f"unknown pooling {kind!r}; expected one of {list(CLS_POOLS)}")


class FPSNet(nn.Module):
    """U-Net encoder-decoder with scSE and a full-parameter-sharing classification output.

    Args:
        config: the architecture (``FPSNetConfig``); a dict is accepted too.

    Layers named for Grad-CAM (``wiml.cam``): ``cls_conv`` (the FPS 1x1 convolution, default CAM layer),
    ``seg_head`` (1x1 segmentation head, default for the parameter-free poolings), ``encoders.<depth-1>``
    (the bottleneck, default for ``head: separate``), ``decoders.<i>.block``.

    Shapes:
        input (B, C_in, H, W) float32 with H and W divisible by ``2**(depth-1)`` ->
        ``FPSNetOutput(seg=(B, K, H, W), cls=(B, C))`` logits.
    """

    def __init__(self, config: FPSNetConfig | dict | None = None) -> None:
        super().__init__()
        if config is None:
            config = FPSNetConfig()
        elif isinstance(config, dict):
            config = from_dict(FPSNetConfig, config, "model")
        self.config = config.validate()
        c = self.config
        widths = [c.base_width * 2**i for i in range(c.depth)]
        self.encoders = nn.ModuleList()
        in_ch = c.in_channels
        for i, w in enumerate(widths):
            drop = c.dropout if i == c.depth - 1 else 0.0
            self.encoders.append(ConvBlock(in_ch, w, c.norm, c.attention, drop))
            in_ch = w
        self.pool = nn.MaxPool2d(2)
        self.decoders = nn.ModuleList()
        for i in range(c.depth - 2, -1, -1):
            dec = nn.Module()
            dec.up = nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            dec.block = ConvBlock(2 * widths[i], widths[i], c.norm, c.attention)
            self.decoders.append(dec)
        self.seg_head = nn.Conv2d(widths[0], c.out_channels, 1)
        self.cls_conv: nn.Module | None = None
        self.cls_fc: nn.Module | None = None
        if c.head == "fps" and c.cls_pool == "conv_gap":
            self.cls_conv = nn.Conv2d(widths[0], c.num_classes, 1)
        elif c.head == "separate":
            self.cls_fc = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(widths[-1], c.num_classes))

    @classmethod
    def from_config(cls, config: dict | FPSNetConfig) -> FPSNet:
        """Build from a config dict (as stored in a checkpoint sidecar) or ``FPSNetConfig``."""
        return cls(config)

    def config_dict(self) -> dict:
        """The architecture as a plain dict (what checkpoints store)."""
        return to_dict(self.config)

    @property
    def default_cam_layer(self) -> str:
        """Name of the layer Grad-CAM uses by default for this variant."""
        if self.config.head == "separate":
            return f"encoders.{self.config.depth - 1}"
        return "cls_conv" if self.cls_conv is not None else "seg_head"

    @property
    def size_divisor(self) -> int:
        """H and W of the input must be multiples of this."""
        return 2 ** (self.config.depth - 1)

    def forward(self, x: torch.Tensor) -> FPSNetOutput:
        """Segment and tag a batch.

        Args:
            x: (B, C_in, H, W) float32.

        Returns:
            ``FPSNetOutput(seg (B, K, H, W) logits, cls (B, C) logits)``.

        Raises:
            InputError: wrong number of dimensions or channels, or H/W not divisible by ``size_divisor``.
        """
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise InputError(f"FPSNet expects (B, {c.in_channels}, H, W) input, got {tuple(x.shape)}")
        d = self.size_divisor
        if x.shape[2] % d or x.shape[3] % d:
            raise InputError(
                f"FPSNet(depth={c.depth}) needs H and W divisible by {d}, got {tuple(x.shape[2:])}"
            )
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        bottleneck = x
        for dec, skip in zip(self.decoders, reversed(skips[:-1])):
            x = dec.block(torch.cat([dec.up(x), skip], dim=1))
        seg = self.seg_head(x)
        if self.cls_fc is not None:
            cls = self.cls_fc(bottleneck.mean(dim=(2, 3)))
        elif self.cls_conv is not None:
            cls = global_pool(self.cls_conv(x), "gap")
        else:
            cls = global_pool(seg, c.cls_pool, c.lse_r, c.topk_fraction)
        return FPSNetOutput(seg=seg, cls=cls)

    def classification_parameters(self) -> list[nn.Parameter]:
        """Parameters that only the classification path owns (the 1x1 conv, the separate head, or none)."""
        owner = self.cls_conv if self.cls_conv is not None else self.cls_fc
        return [] if owner is None else list(owner.parameters())


def foreground_probability(seg: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) segmentation logits -> (B, H, W) foreground probability (sigmoid for K=1, softmax[1] else)."""
    if seg.shape[1] == 1:
        return torch.sigmoid(seg[:, 0])
    return torch.softmax(seg, dim=1)[:, 1]


def tag_probability(cls: torch.Tensor) -> torch.Tensor:
    """(B, C) tag logits -> (B,) probability that the target is present (sigmoid for C=1, softmax[1] else)."""
    if cls.shape[1] == 1:
        return torch.sigmoid(cls[:, 0])
    return torch.softmax(cls, dim=1)[:, 1]


def tag_score(cls: torch.Tensor) -> torch.Tensor:
    """(B, C) tag logits -> (B,) scalar score of "present" whose gradient Grad-CAM follows (logit or logit diff)."""
    if cls.shape[1] == 1:
        return cls[:, 0]
    return cls[:, 1] - cls[:, 0]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
