"""Networks: FPSNet (multi-task U-Net with scSE) and its building blocks."""

from wiml.networks.blocks import SCSE, ConvBlock
from wiml.networks.fpsnet import (
    FPSNet,
    FPSNetConfig,
    FPSNetOutput,
    count_parameters,
    foreground_probability,
    global_pool,
    tag_probability,
    tag_score,
)

__all__ = [
    "FPSNet",
    "FPSNetConfig",
    "FPSNetOutput",
    "SCSE",
    "ConvBlock",
    "count_parameters",
    "foreground_probability",
    "global_pool",
    "tag_probability",
    "tag_score",
]
