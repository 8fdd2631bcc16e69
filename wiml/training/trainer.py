"""A short, generic training loop (nnU-Net style ``train_step`` / ``validation_step``) for FPSNet.

The loop knows nothing about tags or masks. What is trained and how it is judged is plugged in:

* ``loss_fn(output: FPSNetOutput, batch: dict) -> (loss tensor, {name: float})`` — e.g.
  :func:`wiml.training.losses.weak_loss` (tags only) or a mixed tag + Dice/CE loss.
* ``train_loader`` — any DataLoader over dict batches; its sampler decides what is drawn (class-balanced,
  over-sampled strong slices, ...). If the sampler or dataset has ``set_epoch(epoch)`` it is called every epoch.
* ``val_step(model, batch) -> {name: (B,) np.ndarray}`` — per-sample values (e.g. tag probabilities, Dice);
  the trainer concatenates them over the validation set and
* ``val_metrics({name: (N,) np.ndarray}) -> {metric: float}`` turns them into the epoch's metrics. The metric
  named ``TrainerConfig.monitor`` picks ``best.safetensors``.

Outputs in ``out_dir``: ``best.safetensors``/``.json``, ``last.safetensors``/``.json``, ``state.pt`` (resume),
``log.csv`` (one row per epoch), ``curves.png``. With ``torchrun`` the model is wrapped in
DistributedDataParallel; rank 0 validates and writes files.

Optimisation: AdamW (or Adam, ``optim.name``), linear warm-up then cosine decay per epoch (Loshchilov & Hutter, ICLR 2017/2019).
Epoch ``e`` reseeds torch, the sampler and the augmentation from ``seed`` and ``e``, so a resumed run draws
the same batches as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wiml.errors import ConfigError
from wiml.layout import TrainingLayout
from wiml.networks.checkpoint import load_training_state, save_checkpoint, save_training_state
from wiml.networks.fpsnet import FPSNetOutput
from wiml.training.config import OptimConfig, TrainerConfig
from wiml.training.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    broadcast_flag,
    init_distributed,
    wrap_model,
)
from wiml.utils import (
    atomic_write_csv,
    pyplot,
    resolve_device,
    save_figure,
    seed_everything,
)

logger = logging.getLogger(__name__)

LossFn = Callable[[FPSNetOutput, dict], tuple[torch.Tensor, dict[str, float]]]
ValStep = Callable[[nn.Module, dict], dict[str, np.ndarray]]
ValMetrics = Callable[[dict[str, np.ndarray]], dict[str, float]]


def start_run(config: TrainerConfig) -> tuple[DistInfo, torch.device]:
    """Set up a training run once, before the model is built: torch threads (``config.threads`` > 0), the
    device (``config.device``: auto / cpu / cuda), the process group under torchrun, and the seed.

    Returns:
        (DistInfo, device); call :func:`wiml.training.distributed.cleanup` when the run ends.

    Raises:
        InputError: CUDA requested but not available.
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    dist, device = init_distributed(resolve_device(config.device))
    seed_everything(config.seed)
    return dist, device


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a dict batch to ``device``."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def cosine_factor(epoch: int, epochs: int, warmup_epochs: int = 0, min_ratio: float = 0.01) -> float:
    """Learning-rate factor of epoch ``epoch`` (0-based): linear warm-up, then cosine from 1 to ``min_ratio``."""
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    span = max(1, epochs - warmup_epochs)
    t = min(1.0, (epoch - warmup_epochs) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def write_log_csv(path: Path, history: list[dict]) -> None:
    """One row per epoch; columns are the union of all keys (in first-seen order)."""
    atomic_write_csv(path, history, float_format=".6g")


def plot_curves(path: Path, history: list[dict]) -> None:
    """``curves.png``: losses (left) and validation metrics in [0, 1] (right) per epoch."""
    plt = pyplot()

    epochs = [row["epoch"] for row in history]
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for key in sorted({k for row in history for k in row}):
        values = [row.get(key, float("nan")) for row in history]
        if key in ("epoch", "lr", "epoch_s") or not all(isinstance(v, (int, float)) for v in values):
            continue
        ax = ax_l if "loss" in key or key.startswith("train_") else ax_m
        ax.plot(epochs, values, marker="o", label=key)
    ax_l.set(xlabel="epoch", ylabel="loss", title="losses")
    ax_m.set(xlabel="epoch", ylabel="value", title="validation metrics")
    for ax in (ax_l, ax_m):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=100)


class Trainer:
    """Train an FPSNet with a pluggable loss, sampler and validation (see the module docstring).

    Args:
        model: the (unwrapped) network, already on ``device``.
        loss_fn: ``(output, batch) -> (loss, logs)``.
        train_loader: DataLoader over dict batches.
        out_dir: where checkpoints, state, log and plot go.
        config: loop settings.
        optim: optimiser settings.
        device: the resolved device.
        val_loader: DataLoader for validation (None: no validation, ``best`` = ``last``).
        val_step: ``(model, batch) -> {name: (B,) array}``; required with ``val_loader``.
        val_metrics: ``{name: (N,) array} -> {metric: float}``; required with ``val_loader``.
        dist: process-group info (single process by default).
        kind: stored in the checkpoint sidecars (``weak``, ``msl``, ...).
        run_config: the resolved run config (dict) stored in the sidecars.

    Raises:
        ConfigError: a validation loader without ``val_step`` / ``val_metrics``.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_loader,
        out_dir: str | Path,
        config: TrainerConfig,
        optim: OptimConfig,
        device: torch.device,
        val_loader=None,
        val_step: ValStep | None = None,
        val_metrics: ValMetrics | None = None,
        dist: DistInfo | None = None,
        kind: str = "weak",
        run_config: dict | None = None,
    ) -> None:
        if val_loader is not None and (val_step is None or val_metrics is None):
            raise ConfigError("a validation loader needs val_step and val_metrics")
        self.model = model
        self.loss_fn = loss_fn
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.val_step = val_step
        self.val_metrics = val_metrics
        self.out_dir = Path(out_dir)
        self.config = config
        self.optim_config = optim
        self.device = device
        self.dist = dist or DistInfo()
        self.kind = kind
        self.run_config = run_config or {}
        optimizer_cls = torch.optim.Adam if optim.name == "adam" else torch.optim.AdamW
        self.optimizer = optimizer_cls(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda e: cosine_factor(e, config.epochs, optim.warmup_epochs, optim.min_lr_ratio)
        )
        self.start_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.history: list[dict] = []
        self.net = model  # replaced by the DDP wrapper in fit()

    # -- steps ---------------------------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimisation step on a batch: forward, ``loss_fn``, backward, (clip), optimiser step."""
        batch = to_device(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        output = self.net(batch["image"])
        loss, logs = self.loss_fn(output, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {float(loss)}; lower optim.lr or check the data")
        loss.backward()
        if self.optim_config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.optim_config.grad_clip)
        self.optimizer.step()
        return {"loss": float(loss.detach()), **logs}

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict[str, np.ndarray]:
        """Per-sample validation values of one batch (``val_step`` on the unwrapped model in eval mode)."""
        return self.val_step(self.model, to_device(batch, self.device))

    # -- epochs --------------------------------------------------------------------------------------------
    def _reseed(self, epoch: int) -> None:
        torch.manual_seed(self.config.seed * 1_000_003 + epoch)
        np.random.seed((self.config.seed * 1_000_003 + epoch) % (2**32))
        for obj in (getattr(self.train_loader, "sampler", None), getattr(self.train_loader, "dataset", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Run one epoch; returns mean logs (averaged over processes) prefixed ``train_``."""
        from tqdm import tqdm

        self._reseed(epoch)
        self.net.train()
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            leave=False,
            disable=not (self.config.progress and self.dist.is_main),
        )
        for batch in bar:
            logs = self.train_step(batch)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            bar.set_postfix(loss=f"{logs['loss']:.4f}")
        return {f"train_{k}": all_reduce_mean(v / max(n, 1), self.dist) for k, v in sums.items()}

    def validate(self) -> dict[str, float]:
        """Run ``validation_step`` over the validation loader and reduce with ``val_metrics``."""
        self.model.eval()
        parts: dict[str, list[np.ndarray]] = {}
        for batch in self.val_loader:
            for k, v in self.validation_step(batch).items():
                parts.setdefault(k, []).append(np.asarray(v))
        values = {k: np.concatenate(v) for k, v in parts.items()}
        return {f"val_{k}": float(v) for k, v in self.val_metrics(values).items()}

    def _patience_exhausted(self) -> bool:
        """Whether ``config.patience`` validations in a row came after the best epoch (early stopping).

        Derived from the history alone, so a resumed run stops where an uninterrupted one would.
        """
        if self.config.patience <= 0 or self.val_loader is None:
            return False
        key = f"val_{self.config.monitor}"
        since_best = [r for r in self.history if key in r and r["epoch"] > self.best_epoch]
        return len(since_best) >= self.config.patience

    def _improved(self, value: float | None) -> bool:
        if self.best is None:
            return True
        if value is None or not math.isfinite(value):
            return False
        return value > self.best if self.config.monitor_mode == "max" else value < self.best

    # -- resume --------------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return TrainingLayout(self.out_dir).state

    def save_state(self, epoch: int) -> None:
        save_training_state(
            self.state_path,
            {
                "epoch": epoch,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "best": self.best,
                "best_epoch": self.best_epoch,
                "history": self.history,
            },
        )

    def load_state(self) -> None:
        """Restore model, optimiser, scheduler, best metric and history from ``state.pt``.

        Raises:
            CheckpointError: missing or unreadable state.
        """
        state = load_training_state(self.state_path, self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch = int(state["epoch"])
        self.best = state.get("best")
        self.best_epoch = int(state.get("best_epoch", 0))
        self.history = list(state.get("history", []))
        logger.info("resuming from %s after epoch %d", self.state_path, self.start_epoch)

    # -- the loop ------------------------------------------------------------------------------------------
    def fit(self, resume: bool = False, stop_after: int | None = None) -> dict:
        """Train from epoch 0 (or from ``state.pt`` with ``resume``) to ``config.epochs``.

        Args:
            resume: continue after the epoch saved in ``out_dir/state.pt``.
            stop_after: stop after this many epochs in total (simulates an interruption; None = all).

        Returns:
            Summary dict: ``epochs_done``, ``best_epoch``, ``best_<monitor>``, ``last`` metrics,
            ``mean_epoch_s``.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_state()
        self.net = wrap_model(self.model, self.dist, self.device)
        last_epoch = self.config.epochs if stop_after is None else min(stop_after, self.config.epochs)
        for epoch in range(self.start_epoch, last_epoch):
            if broadcast_flag(self._patience_exhausted(), self.dist):  # rank 0 alone validates
                logger.info(
                    "early stop after epoch %d: no better %s in %d validations (best epoch %d)",
                    epoch,
                    self.config.monitor,
                    self.config.patience,
                    self.best_epoch,
                )
                last_epoch = epoch
                break
            t0 = time.perf_counter()
            row: dict = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            row.update(self.train_epoch(epoch))
            self.scheduler.step()
            validate = self.val_loader is not None and (
                (epoch + 1) % max(1, self.config.val_every) == 0 or epoch + 1 == self.config.epochs
            )
            if self.dist.is_main:
                if validate:
                    row.update(self.validate())
                row["epoch_s"] = time.perf_counter() - t0
                self.history.append(row)
                self._save_epoch(epoch + 1, row, validate)
            barrier(self.dist)
        if self.dist.is_main and self.history:
            logger.info("done: best %s=%s at epoch %d", self.config.monitor, self.best, self.best_epoch)
        times = [r["epoch_s"] for r in self.history if "epoch_s" in r]
        return {
            "epochs_done": last_epoch,
            "best_epoch": self.best_epoch,
            f"best_{self.config.monitor}": self.best,
            "last": self.history[-1] if self.history else {},
            "mean_epoch_s": float(np.mean(times)) if times else float("nan"),
        }

    def _save_epoch(self, epoch: int, row: dict, validated: bool) -> None:
        metrics = {k: v for k, v in row.items() if k != "epoch"}
        extra = {"kind": self.kind, "epoch": epoch, "metrics": metrics, "run_config": self.run_config}
        files = TrainingLayout(self.out_dir)
        save_checkpoint(files.last, self.model, extra)
        value = row.get(f"val_{self.config.monitor}")
        if (validated or self.val_loader is None) and self._improved(value):
            self.best = value if value is None or math.isfinite(value) else self.best
            self.best_epoch = epoch
            save_checkpoint(files.best, self.model, {**extra, "monitor": self.config.monitor})
        self.save_state(epoch)
        write_log_csv(files.log, self.history)
        plot_curves(files.curves, self.history)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float) and k != "lr")
        logger.info("epoch %d/%d: %s", epoch, self.config.epochs, shown)
