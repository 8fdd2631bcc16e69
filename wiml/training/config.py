"""Typed configs of the training commands (loaded with ``wiml.config.load_config``).

YAML layout of ``configs/weak_*.yaml``::

    model:   FPSNetConfig fields (in_channels: 0 = take it from the data)
    trainer: TrainerConfig fields (epochs, batch_size, seed, device, ...)
    optim:   OptimConfig fields (AdamW or Adam + cosine)
    augment: AugmentConfig fields
    data:    DataConfig fields (which splits to train / validate on)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from wiml.data.transforms import AugmentConfig
from wiml.networks.fpsnet import FPSNetConfig


@dataclasses.dataclass
class OptimConfig:
    """AdamW (or Adam) with a cosine learning-rate schedule (stepped once per epoch).

    Attributes:
        name: ``adamw`` (decoupled weight decay; Loshchilov & Hutter, ICLR 2019) or ``adam`` (weight decay as an
            L2 term in the gradient, as torch.optim.Adam and the original WIML release do).
        lr: initial learning rate.
        weight_decay: weight decay (decoupled for ``adamw``, L2 for ``adam``).
        min_lr_ratio: the cosine ends at ``lr * min_lr_ratio``.
        warmup_epochs: linear warm-up epochs before the cosine (0 = none).
        grad_clip: clip the gradient norm to this value (0 = no clipping).
    """

    RANGES: ClassVar[dict[str, str]] = {
        "lr": "> 0",
        "weight_decay": ">= 0",
        "min_lr_ratio": "[0, 1]",
        "warmup_epochs": ">= 0",
        "grad_clip": ">= 0",
    }

    name: Literal["adamw", "adam"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    min_lr_ratio: float = 0.01
    warmup_epochs: int = 0
    grad_clip: float = 0.0


@dataclasses.dataclass
class TrainerConfig:
    """Loop settings shared by weak and mixed training.

    Attributes:
        epochs: number of epochs.
        batch_size: slices per batch per process.
        samples_per_epoch: slices drawn per epoch over all processes (0 = the training set size).
        num_workers: DataLoader workers (0 keeps augmentation deterministic and the shared CPU free).
        seed: seed of initialisation, sampling and augmentation.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        monitor: validation metric that selects ``best.safetensors``.
        monitor_mode: ``max`` or ``min``.
        val_every: validate every n epochs (and always after the last one).
        threads: torch CPU threads per process (0 = leave torch's default).
        progress: show tqdm bars.
        patience: early stopping: stop after this many validations in a row without a better ``monitor``
            value (0 = train all epochs); ``best.safetensors`` is the best epoch either way.
    """

    RANGES: ClassVar[dict[str, str]] = {
        "epochs": ">= 1",
        "batch_size": ">= 1",
        "samples_per_epoch": ">= 0",
        "num_workers": ">= 0",
        "val_every": ">= 1",
        "threads": ">= 0",
        "patience": ">= 0",
        "seed": ">= 0",
    }

    epochs: int = 10
    batch_size: int = 16
    samples_per_epoch: int = 0
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"
    monitor: str = "auc"
    monitor_mode: Literal["max", "min"] = "max"
    val_every: int = 1
    threads: int = 0
    progress: bool = True
    patience: int = 0


@dataclasses.dataclass
class DataConfig:
    """Which manifest splits are trained on and validated on."""

    train_split: str = "train"
    val_split: str = "val"


@dataclasses.dataclass
class WeakConfig:
    """``wiml train-weak``: FPSNet on image tags only (binary cross-entropy, class-balanced sampling)."""

    model: FPSNetConfig = dataclasses.field(default_factory=lambda: FPSNetConfig(in_channels=0))
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
