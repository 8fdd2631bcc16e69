"""The optimiser named in OptimConfig is the one the trainer steps."""

from __future__ import annotations

import pytest
import torch

from wiml.config import load_config
from wiml.errors import ConfigError
from wiml.networks.fpsnet import FPSNet, FPSNetConfig
from wiml.training.config import OptimConfig, TrainerConfig
from wiml.training.trainer import Trainer


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)])
def test_optimiser_choice(tmp_path, name, cls):
    model = FPSNet(FPSNetConfig(base_width=4, depth=2))
    optim = OptimConfig(name=name, lr=1e-4, weight_decay=1e-4)
    trainer = Trainer(
        model,
        lambda out, batch: (out.seg.mean(), {}),
        [],
        tmp_path,
        TrainerConfig(epochs=1),
        optim,
        torch.device("cpu"),
    )
    assert type(trainer.optimizer) is cls
    assert trainer.optimizer.defaults["weight_decay"] == pytest.approx(1e-4)


def test_unknown_optimiser_is_refused():
    with pytest.raises(ConfigError, match="name"):
        load_config(OptimConfig, None, ["name=sgd"])


def test_paper_config_uses_adam(project_root):
    from wiml.training.msl import MSLConfig

    cfg = load_config(MSLConfig, project_root / "configs" / "msl_paper.yaml")
    assert cfg.optim.name == "adam" and cfg.optim.lr == pytest.approx(1e-4) and cfg.optim.min_lr_ratio == 1.0
