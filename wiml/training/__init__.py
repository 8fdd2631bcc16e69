"""Training: configs, losses, checkpoints, the generic trainer, weak (tags-only) training, DDP helpers."""
