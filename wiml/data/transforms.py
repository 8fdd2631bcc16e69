"""Training augmentation for prepared 2-D slices (MONAI dictionary transforms).

Random flips, small rotations and scalings (one affine, image bilinear / mask nearest) and intensity jitter
(scale and shift). Geometric transforms act on ``image`` (C, H, W) and, when present, ``mask`` (1, H, W)
together, so a strong label stays aligned. Randomness comes from the transform's own NumPy state, which
``SliceDataset.set_epoch`` reseeds, so that the same seed gives the same augmented batches.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar


@dataclasses.dataclass
class AugmentConfig:
    """Augmentation settings (``augment:`` section of the training configs).

    Attributes:
        enabled: apply augmentation to training slices.
        flip_prob: probability of a flip along each image axis.
        rotate_deg: rotations are drawn uniformly from [-rotate_deg, rotate_deg] degrees.
        scale: zoom factors are drawn from [1 - scale, 1 + scale].
        affine_prob: probability of applying the rotation/scaling.
        intensity_scale: multiply intensities by 1 + U(-intensity_scale, intensity_scale).
        intensity_shift: add U(-intensity_shift, intensity_shift) (in the image's units; z-score or [0, 1]).
        intensity_prob: probability of each intensity jitter.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "flip_prob": "[0, 1]",
        "rotate_deg": "[0, 180]",
        "scale": "[0, 1)",
        "affine_prob": "[0, 1]",
        "intensity_scale": "[0, 1)",
        "intensity_shift": ">= 0",
        "intensity_prob": "[0, 1]",
    }

    enabled: bool = True
    flip_prob: float = 0.5
    rotate_deg: float = 15.0
    scale: float = 0.1
    affine_prob: float = 0.5
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1
    intensity_prob: float = 0.5


def make_augmentation(config: AugmentConfig):
    """Build the MONAI ``Compose`` of dictionary transforms over keys ``image`` and ``mask`` (mask optional).

    Returns:
        A callable ``dict -> dict`` with ``set_random_state(seed)``, or None when augmentation is disabled.
    """
    if not config.enabled:
        return None
    from monai.transforms import Compose, RandAffined, RandFlipd, RandScaleIntensityd, RandShiftIntensityd

    keys = ("image", "mask")
    return Compose(
        [
            RandFlipd(keys, prob=config.flip_prob, spatial_axis=0, allow_missing_keys=True),
            RandFlipd(keys, prob=config.flip_prob, spatial_axis=1, allow_missing_keys=True),
            RandAffined(
                keys,
                prob=config.affine_prob,
                rotate_range=math.radians(config.rotate_deg),
                scale_range=(config.scale, config.scale),
                mode=("bilinear", "nearest"),
                padding_mode="border",
                allow_missing_keys=True,
            ),
            RandScaleIntensityd("image", factors=config.intensity_scale, prob=config.intensity_prob),
            RandShiftIntensityd("image", offsets=config.intensity_shift, prob=config.intensity_prob),
        ]
    )
