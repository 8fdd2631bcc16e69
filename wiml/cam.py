"""Grad-CAM of FPSNet and CAM -> initial mask (the first proposal of weakly-interactive annotation).

Grad-CAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017. For a layer with activations A (B, K, h, w) and the tag score y (the "present"
logit), ``CAM = ReLU(sum_k mean_xy(dy/dA_k) * A_k)``, resized to the input and normalised per slice by its
maximum to [0, 1]. As in the original WIML release (Nie et al., IEEE JBHI 2023) the default layer is the
classification path's 1x1 convolution (``cls_conv``) of the FPS head; parameter-free poolings use the
segmentation head and the separate-head variant its bottleneck (``FPSNet.default_cam_layer``).

The initial mask is the refinement's graph cut of the CAM's prior without clicks, then post-processing
(:func:`cam_to_initial_mask`, the same function the annotator and ``wiml wia-sim`` use). By default the prior is
appearance-aware, learnt from the CAM's confident pixels (:mod:`wiml.interactive.appearance`, this project's
method after GrabCut, Rother et al., SIGGRAPH 2004).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wiml.errors import InputError
from wiml.interactive.postprocess import body_mask
from wiml.interactive.proposals import cam_prior
from wiml.interactive.session import RefinementConfig, initial_mask, normalize_image
from wiml.networks.checkpoint import unwrap
from wiml.networks.fpsnet import FPSNetOutput, tag_score


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``).

    Raises:
        InputError: no such layer (the message lists the candidates' first names).
    """
    modules = dict(unwrap(model).named_modules())
    if name not in modules or modules[name] is None:
        top = sorted({n.split(".")[0] for n in modules if n})
        raise InputError(
            f"layer {name!r} not found in {type(unwrap(model)).__name__}; top-level layers: {top}"
        )
    return modules[name]


def normalise_cam(cam: torch.Tensor) -> torch.Tensor:
    """Scale each (H, W) map of a (B, H, W) batch by its maximum to [0, 1]; an all-zero map stays zero."""
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return torch.where(peak > 1e-12, cam / peak, torch.zeros_like(cam)).clamp(0.0, 1.0)


def compute_grad_cam(
    model: nn.Module, images: torch.Tensor, layer: str | None = None
) -> tuple[np.ndarray, FPSNetOutput]:
    """Grad-CAM of the "target present" score and the network's outputs, for a batch.

    The model is run in eval mode (restored afterwards); slices do not interact, so the batch gives the same
    maps as one slice at a time.

    Args:
        model: an FPSNet (possibly wrapped).
        images: (B, C, H, W) float32 tensor on the model's device.
        layer: name of the layer (default ``model.default_cam_layer``).

    Returns:
        cams: (B, H, W) float32 in [0, 1] at input size.
        output: the detached ``FPSNetOutput`` of the same forward pass.

    Raises:
        InputError: unknown layer, or ``images`` not (B, C, H, W).
    """
    net = unwrap(model)
    if images.ndim != 4:
        raise InputError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    target = find_layer(net, layer or net.default_cam_layer)
    store: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        store["a"] = output

    handle = target.register_forward_hook(hook)
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            out = net(images)
            act = store["a"]
            grads = torch.autograd.grad(tag_score(out.cls).sum(), act)[0]
    finally:
        handle.remove()
        net.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    cam = normalise_cam(cam)
    return cam.float().cpu().numpy(), FPSNetOutput(out.seg.detach(), out.cls.detach())


def grad_cam(model: nn.Module, images: torch.Tensor, layer: str | None = None) -> np.ndarray:
    """Grad-CAM maps of a batch: (B, C, H, W) tensor -> (B, H, W) float32 in [0, 1]. See :func:`compute_grad_cam`."""
    return compute_grad_cam(model, images, layer)[0]


def restrict_cam(cam: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Zero a (H, W) or (B, H, W) CAM outside ``region`` and normalise each map again to [0, 1]."""
    cam = np.asarray(cam, dtype=np.float32) * np.asarray(region, dtype=np.float32)
    peak = cam.reshape(-1, *cam.shape[-2:]).max(axis=(1, 2)).reshape(cam.shape[:-2] + (1, 1))
    return np.where(peak > 1e-12, cam / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def cam_for_image(
    model: nn.Module,
    image: np.ndarray,
    input_size_px: int | None = None,
    restrict_to_body: bool = True,
    layer: str | None = None,
) -> np.ndarray:
    """Grad-CAM of one slice for a loaded weak model, at the slice's own resolution.

    The one place where a single slice's CAM is made (the GUI and ``wiml wia-sim`` call it): the slice is
    repeated to the model's input channels when it is grey, resized to ``input_size_px`` (the prepared-slice
    size the model was trained on), passed to :func:`grad_cam`, resized back, and by default zeroed outside
    the body / brain (:func:`body_mask`, :func:`restrict_cam`) and normalised again, as ``wiml cam`` does.

    Args:
        model: the weak FPSNet (possibly wrapped; ``config.in_channels`` input channels when it has a config).
        image: (H, W) or (C, H, W) float32 slice scaled like the training data (prepared slice).
        input_size_px: side of the square network input; None keeps (H, W) (must suit the network's strides).
        restrict_to_body: keep the CAM inside the body / brain only.
        layer: Grad-CAM layer (default the model's ``default_cam_layer``).

    Returns:
        (H, W) float32 CAM in [0, 1].

    Raises:
        InputError: ``image`` is not 2-D / 3-D, or has a channel count other than 1 or the model's.
    """
    image = np.asarray(image, np.float32)
    if image.ndim not in (2, 3):
        raise InputError(f"image must be (H, W) or (C, H, W), got shape {image.shape}")
    image = image[None] if image.ndim == 2 else image
    h, w = image.shape[-2:]
    net = unwrap(model)
    in_channels = int(net.config.in_channels) if hasattr(net, "config") else image.shape[0]
    if image.shape[0] not in (1, in_channels):
        raise InputError(f"the slice has {image.shape[0]} channels, the weak model expects {in_channels}")
    device = next(net.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)
    if input_size_px and (h, w) != (input_size_px, input_size_px):
        x = F.interpolate(
            x, size=(int(input_size_px), int(input_size_px)), mode="bilinear", align_corners=False
        )
    if x.shape[1] != in_channels:
        x = x.repeat(1, in_channels, 1, 1)  # a grey slice into a multi-channel network
    cam = np.asarray(grad_cam(model, x, layer))[0].astype(np.float32)
    if cam.shape != (h, w):
        cam = F.interpolate(
            torch.from_numpy(cam)[None, None], size=(h, w), mode="bilinear", align_corners=False
        )[0, 0].numpy()
    cam = np.clip(cam, 0.0, 1.0).astype(np.float32)
    if restrict_to_body:
        cam = restrict_cam(cam, body_mask(image))
    return cam


def graph_cut_image(image: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """The (H, W) image in [0, 1] that the graph cut's contrast term sees: channel 0, percentile-windowed.

    Args:
        image: (C, H, W) or (H, W) prepared slice (z-scored MR, [0, 1] CT, ...).
        percentiles: intensity percentiles mapped to 0 and 1 (robust to outliers).

    Returns:
        (H, W) float32 in [0, 1].
    """
    arr = np.asarray(image, dtype=np.float32)
    arr = arr[0] if arr.ndim == 3 else arr
    lo, hi = np.percentile(arr, percentiles)
    return normalize_image(arr, (float(lo), float(hi)) if hi > lo else None)


def cam_to_initial_mask(
    image: np.ndarray,
    cam: np.ndarray,
    refinement: RefinementConfig | None = None,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Initial mask from a CAM: the CAM's prior (calibration, appearance) -> graph cut -> post-processing.

    The same function as the annotator's and ``wiml wia-sim``'s initial mask
    (:meth:`wiml.interactive.session.RefinementSession.set_image` with a CAM): the prior of
    :func:`wiml.interactive.proposals.cam_prior` and :func:`wiml.interactive.session.initial_mask` with the
    refinement parameters (one graph-cut parameter set, ``refinement.lam`` / ``refinement.sigma``). With
    ``refinement.cam_appearance`` (the default) the prior is appearance-aware
    (:mod:`wiml.interactive.appearance`, this project's method after GrabCut, Rother et al., SIGGRAPH 2004);
    without it the CAM alone is the graph cut's probability (the original method).

    Args:
        image: (H, W) float32 in [0, 1] (see :func:`graph_cut_image`) or (C, H, W) prepared slice (channel 0,
            percentile-windowed, is used).
        cam: (H, W) float in [0, 1].
        refinement: the refinement parameters (:class:`wiml.interactive.session.RefinementConfig`; defaults
            when None).
        region: (H, W) bool body / brain for the appearance models; None = :func:`body_mask` of the (H, W)
            image the graph cut sees (what the session does).

    Returns:
        (H, W) uint8 in {0, 1}.

    Raises:
        InputError: shapes differ or values are not finite.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = graph_cut_image(image)
    config = refinement or RefinementConfig()
    cam = np.clip(np.asarray(cam, dtype=np.float32), 0.0, 1.0)
    if not cam.any():
        return np.zeros(cam.shape, np.uint8)
    appearance = config.appearance if config.cam_appearance else None
    prior = cam_prior(image, cam, config.cam_threshold, appearance, region, config.lam, config.sigma)
    return initial_mask(image, prior, config)
