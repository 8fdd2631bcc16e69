"""Checkpoints: safetensors weights + a JSON sidecar; training state for resume.

Weights never go through pickle: ``save_checkpoint`` writes ``<name>.safetensors`` (tensors only) and
``<name>.json`` (architecture, epoch, metrics, library versions, kind, size and SHA-256 of the weights).
``load_model`` refuses anything that is not such a pair (a truncated file, another architecture, a pickle)
with :class:`wiml.errors.CheckpointError`. Weights are stored on the CPU, so a checkpoint made on a GPU loads
on a CPU. The resume state (``state.pt``: optimiser, scheduler, epoch) is read with
``torch.load(..., weights_only=True)``, which only rebuilds tensors and plain containers.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wiml.errors import CheckpointError, ConfigError
from wiml.utils import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

ARCHITECTURE = "FPSNet"
FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    import numpy
    import safetensors

    import wiml

    return {
        "wiml": wiml.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "safetensors": safetensors.__version__,
        "python": platform.python_version(),
    }


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def sidecar_path(path: str | Path) -> Path:
    """``x.safetensors`` -> ``x.json``."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, model: nn.Module, extra: dict[str, Any] | None = None) -> Path:
    """Save model weights as safetensors and a JSON sidecar, both atomically.

    Args:
        path: destination ``*.safetensors``.
        model: an FPSNet (possibly wrapped in DDP); it must have ``config_dict()``.
        extra: JSON-serialisable fields for the sidecar, e.g. ``{"epoch": 3, "metrics": {...}, "kind": "weak"}``.

    Returns:
        The path of the weights file.

    Raises:
        OutputError: a file cannot be written (read-only folder, full disk, permission), naming it.
    """
    from safetensors.torch import save

    path = Path(path)
    model = unwrap(model)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # serialised in memory, then written with plain file I/O: a full disk or a read-only folder is an
    # OutputError naming the file (safetensors' and torch's own writers report neither path nor cause)
    data = save(tensors, metadata={"architecture": ARCHITECTURE, "format_version": str(FORMAT_VERSION)})
    atomic_write_bytes(path, data)
    sidecar = {
        "architecture": ARCHITECTURE,
        "format_version": FORMAT_VERSION,
        "model_config": model.config_dict(),
        "versions": _versions(),
        "weights_file": path.name,
        "weights_bytes": len(data),
        "weights_sha256": hashlib.sha256(data).hexdigest(),
    }
    sidecar.update(extra or {})
    atomic_write_text(sidecar_path(path), json.dumps(sidecar, indent=2, sort_keys=False, default=str))
    return path


def read_sidecar(path: str | Path) -> dict:
    """Read and check the JSON sidecar of ``path`` (``.safetensors`` or ``.json``).

    Raises:
        CheckpointError: missing or unreadable sidecar, or another architecture.
    """
    side = sidecar_path(path)
    if not side.is_file():
        raise CheckpointError(
            f"checkpoint sidecar {side.name} not found (expected a WIML checkpoint: "
            "<name>.safetensors + <name>.json)",
            Path(path),
        )
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"sidecar is not valid JSON ({exc})", side) from exc
    if not isinstance(meta, dict) or meta.get("architecture") != ARCHITECTURE:
        got = meta.get("architecture") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"checkpoint is of architecture {got!r}, expected {ARCHITECTURE!r}", side)
    if not isinstance(meta.get("model_config"), dict):
        raise CheckpointError("sidecar lacks 'model_config'", side)
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load an FPSNet checkpoint (weights only, no unpickling) onto ``device``, in eval mode.

    Args:
        path: ``<name>.safetensors`` (or its ``<name>.json`` sidecar).
        device: target device; a checkpoint made on a GPU loads on a CPU.

    Returns:
        ``(model, sidecar dict)``.

    Raises:
        CheckpointError: missing, truncated or corrupt weights, a pickle or other non-safetensors file,
            another architecture, weights that do not match the stored architecture, or weights whose
            SHA-256 differs from the one the sidecar records (``weights_sha256``; the file is read once,
            hashed, then parsed).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    from wiml.networks.fpsnet import FPSNet

    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise CheckpointError("checkpoint not found (expected <name>.safetensors)", path)
    meta = read_sidecar(path)
    size = path.stat().st_size
    if "weights_bytes" in meta and size != meta["weights_bytes"]:
        raise CheckpointError(
            f"weights file is {size} bytes, the sidecar says {meta['weights_bytes']} (truncated or replaced)",
            path,
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read the weights ({exc.strerror or exc})", path) from exc
    expected = meta.get("weights_sha256")
    if expected:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise CheckpointError(
                f"weights SHA-256 {digest[:12]}... does not match the sidecar's {str(expected)[:12]}... "
                f"(the weights were replaced or damaged; {sidecar_path(path).name} describes other weights)",
                path,
            )
    else:
        logger.warning("%s: the sidecar records no weights_sha256; the weights are not verified", path)
    try:
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"not a readable safetensors file ({exc}); pickled checkpoints are refused", path
        ) from exc
    try:
        model = FPSNet.from_config(meta["model_config"])
    except ConfigError as exc:
        raise CheckpointError(f"sidecar model_config is not a valid FPSNet config: {exc}", path) from exc
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(f"weights do not match the FPSNet in the sidecar ({first})", path) from exc
    model.to(device).eval()
    return model, meta


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write the resume state (tensors, numbers, strings, containers only) atomically with ``torch.save``.

    Raises:
        OutputError: the file cannot be written (read-only folder, full disk, permission), naming it.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)  # in memory: on a full disk torch's zip writer only says "enforce fail"
    return atomic_write_bytes(path, buffer.getvalue())


def load_training_state(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read ``state.pt`` with ``torch.load(weights_only=True)`` (no arbitrary objects are unpickled).

    Raises:
        CheckpointError: missing, truncated or unsafe file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("training state not found (nothing to resume)", path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(
            f"cannot read training state safely ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})",
            path,
        ) from exc
    if not isinstance(state, dict) or "epoch" not in state or "model" not in state:
        raise CheckpointError("training state lacks 'epoch'/'model'", path)
    return state
