"""Building blocks of FPSNet: normalised double convolutions and scSE attention.

scSE is the concurrent spatial and channel squeeze-and-excitation block of Roy, Navab & Wachinger,
"Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks", MICCAI 2018.
"""

from __future__ import annotations

import torch
from torch import nn

from wiml.errors import ConfigError

NORMS = ("batch", "instance")


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer: ``batch`` (BatchNorm2d) or ``instance`` (InstanceNorm2d with affine).

    Raises:
        ConfigError: unknown ``kind``.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise ConfigError(f"model.norm: {kind!r} is not one of {list(NORMS)}")


class ChannelSE(nn.Module):
    """Channel squeeze-and-excitation (cSE): global average pool -> bottleneck MLP -> per-channel gate.

    Args:
        channels: number of input channels.
        reduction: bottleneck ratio of the MLP (2 in Roy et al.).
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), each channel scaled by a gate in (0, 1)."""
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


class SpatialSE(nn.Module):
    """Spatial squeeze-and-excitation (sSE): 1x1 convolution to one map -> per-pixel gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), each pixel scaled by a gate in (0, 1)."""
        return x * torch.sigmoid(self.conv(x))


class SCSE(nn.Module):
    """Concurrent spatial and channel SE (scSE, Roy et al. MICCAI 2018): ``cSE(x) + sSE(x)``.

    The sum ("max-out" and "multiplication" are the paper's alternatives) is the aggregation used by the
    original WIML release.

    Args:
        channels: number of channels of the (B, C, H, W) input.
        reduction: bottleneck ratio of the channel branch.
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.cse = ChannelSE(channels, reduction)
        self.sse = SpatialSE(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return self.cse(x) + self.sse(x)


class ConvBlock(nn.Sequential):
    """Two (3x3 convolution -> normalisation -> ReLU) layers, then scSE (or nothing).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        norm: ``batch`` or ``instance``.
        attention: ``scse`` or ``none``.
        dropout: dropout probability after the convolutions (0 = none).

    Shapes:
        (B, in_channels, H, W) -> (B, out_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: str = "batch",
        attention: str = "scse",
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        if attention == "scse":
            layers.append(SCSE(out_channels))
        elif attention != "none":
            raise ConfigError(f"model.attention: {attention!r} is not one of ['scse', 'none']")
        super().__init__(*layers)
