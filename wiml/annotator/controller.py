"""The annotator's state and actions, without Qt: :class:`AnnotationController`.

The widgets (:mod:`wiml.gui.window`) only draw :class:`Snapshot` objects that the controller returns after each
action, and run every action on one worker thread (:mod:`wiml.gui.worker`), in the order the user gave them.
Everything here is therefore testable headless, and the controller is never touched by two threads at once.

Workflow (WIA, Nie et al., IEEE JBHI 2023): open an image -> Segment (Grad-CAM of the weak model -> graph cut
-> initial mask) -> clicks (left = foreground, right = background), each re-running the geodesic + graph-cut
refinement of :class:`wiml.interactive.RefinementSession` -> Save (strong label + recording). Without a weak
checkpoint the annotator still works: Segment gives an empty initial mask and the clicks do the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wiml.annotator.annotation import SliceAnnotation
from wiml.annotator.loading import PREPARE_WINDOW_HU, AnnotationImage, normalise, open_image
from wiml.annotator.results import default_result_dir, slice_name, write_json, write_mask_volume, write_png
from wiml.data.prepare import normalize_ct, normalize_zscore
from wiml.errors import CheckpointError, InputError
from wiml.evaluation.metrics import dice_score, iou_score
from wiml.interactive.session import Click, RefinementConfig

logger = logging.getLogger(__name__)

#: the message shown while no weak checkpoint is loaded.
NO_CHECKPOINT_MESSAGE = (
    "no weak checkpoint loaded: Segment gives an empty initial mask, clicks still work "
    "(File > Load Checkpoint, or --checkpoint)"
)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything the window draws after an action (arrays are copies; the worker may go on).

    Attributes:
        image_id: increases with every Open (the window resets its view for a new image).
        name: result name of the current slice (``1``, or ``volume-3_0042`` for a volume slice).
        image_path: the opened file or DICOM folder (None before anything is opened).
        slice_index: index of the shown slice; depth: number of slices.
        raw: (H, W) float32 slice in source units (HU for CT), or None.
        window: default (level, width) of the image; is_ct: whether the values are HU.
        mask: (H, W) uint8 current mask, or None before Segment / the first click.
        initial: (H, W) uint8 initial mask, or None; cam: (H, W) float32 in [0, 1], or None.
        ground_truth: (H, W) uint8 ground truth of the slice, or None.
        clicks: clicks so far, in order.
        dice, iou: of the current mask against the ground truth (None without one).
        elapsed_s: seconds the slice had been shown when the snapshot was taken (the window adds the time
            since it received it, so it never asks the controller from the GUI thread).
        message: one line for the status bar about what just happened.
        saved: paths written by the last Save, else empty.
    """

    image_id: int = 0
    name: str = ""
    image_path: Path | None = None
    slice_index: int = 0
    depth: int = 0
    raw: np.ndarray | None = None
    window: tuple[float, float] = (127.5, 255.0)
    is_ct: bool = False
    mask: np.ndarray | None = None
    initial: np.ndarray | None = None
    cam: np.ndarray | None = None
    ground_truth: np.ndarray | None = None
    clicks: tuple[Click, ...] = ()
    dice: float | None = None
    iou: float | None = None
    elapsed_s: float = 0.0
    message: str = ""
    saved: tuple[Path, ...] = ()


def compute_cam(
    model, image: np.ndarray, input_size_px: int | None = 256, restrict_to_body: bool = True
) -> np.ndarray:
    """Grad-CAM of the weak model for one slice, at the slice's resolution (:func:`wiml.cam.cam_for_image`).

    Args:
        model: the weak FPSNet (eval mode; ``model.config.in_channels`` input channels).
        image: (H, W) or (C, H, W) float32 scaled like the training data
            (:attr:`AnnotationController.network_image`).
        input_size_px: side of the square network input; None keeps (H, W) (must suit the network's strides).
        restrict_to_body: keep the CAM inside the body / brain only (as ``wiml cam`` and ``wia-sim``).

    Returns:
        (H, W) float32 CAM in [0, 1].

    Raises:
        InputError: the slice's channel count is neither 1 nor the model's.
    """
    from wiml.cam import cam_for_image

    return cam_for_image(model, image, input_size_px, restrict_to_body)


#: Grad-CAM input side (px) when a checkpoint does not record the size it was trained at.
DEFAULT_CAM_INPUT_PX = 256


class AnnotationController:
    """State of one annotation session: the image, the shown slice, the annotation of every slice touched
    (:class:`SliceAnnotation`: CAM, masks, clicks, timing), and saving.

    Args:
        result_dir: where ``result/`` files go; None = ``result/`` beside the image's folder.
        device: torch device for the weak model (``cpu`` keeps the UI responsive on small machines).
        refinement: parameters of the click refinement (graph-cut lam/sigma, click radius, geodesic backend,
            ...); default :class:`wiml.interactive.session.RefinementConfig` (the ones ``wia-sim`` uses).
        cam_input_px: side of the square network input for Grad-CAM (the prepared-slice size); ``"auto"`` = the
            size the loaded checkpoint was trained at (its sidecar's ``run_config.image_size``; 256 when absent);
            None = the image's own size.
        session_factory: callable returning a fresh refinement session (tests inject one); default
            ``refinement.make_session``.
        clock: time source in seconds (tests inject a fake one).
        refine_in_process: run the refinement sessions in a helper process (:mod:`wiml.annotator.remote`), so that
            SimpleCRF holding Python's GIL never stalls the GUI thread; call :meth:`close` at the end.
    """

    def __init__(
        self,
        result_dir: str | Path | None = None,
        device: str = "cpu",
        refinement: RefinementConfig | None = None,
        cam_input_px: int | str | None = "auto",
        session_factory: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        refine_in_process: bool = False,
    ) -> None:
        self.result_dir = Path(result_dir) if result_dir is not None else None
        self.device = device
        self._cam_input_px_auto = cam_input_px == "auto"
        self.cam_input_px = DEFAULT_CAM_INPUT_PX if self._cam_input_px_auto else cam_input_px
        self.refinement = refinement or RefinementConfig()
        self._server = None
        if session_factory is None and refine_in_process:
            from wiml.annotator.remote import RefinementServer

            self._server = RefinementServer(self.refinement)
            session_factory = self._server.new_session
        self._session_factory = session_factory or self.refinement.make_session
        self._clock = clock
        self.model = None
        self.checkpoint_path: Path | None = None
        self.checkpoint_error: str | None = None
        self.image: AnnotationImage | None = None
        self.slice_index = 0
        self._slices: dict[int, SliceAnnotation] = {}
        self._zscored: np.ndarray | None = None
        self._image_id = 0

    def close(self) -> None:
        """Stop the refinement helper process, if there is one."""
        if self._server is not None:
            self._server.close()
            self._server = None

    # ------------------------------------------------------------------ checkpoint
    def load_checkpoint(self, path: str | Path) -> str:
        """Load the weak checkpoint used for Grad-CAM.

        Returns:
            a one-line description for the status bar.

        Raises:
            CheckpointError: missing, truncated or foreign file (the previous model, if any, is kept).
        """
        path = Path(path).expanduser()
        if not path.is_file():
            self.checkpoint_error = (
                f"weak checkpoint not found: {path} (train it with the README's main command, "
                "make demo, or choose one with File > Load Checkpoint)"
            )
            raise CheckpointError(
                "weak checkpoint not found (train one with the README's main command, "
                "or pick one with File > Load Checkpoint)",
                path,
            )
        from wiml.networks.checkpoint import load_model
        from wiml.utils import resolve_device

        device = resolve_device(self.device)
        try:
            model, sidecar = load_model(path, device)
        except CheckpointError as exc:
            self.checkpoint_error = str(exc)
            raise
        model.eval()
        self.model = model
        if self._cam_input_px_auto:
            trained = (sidecar.get("run_config") or {}).get("image_size")
            self.cam_input_px = int(trained) if trained else DEFAULT_CAM_INPUT_PX
        self.checkpoint_path = path
        self.checkpoint_error = None
        logger.info("weak checkpoint %s loaded on %s", path, device)
        return f"weak checkpoint loaded: {path.name}"

    @property
    def checkpoint_status(self) -> str:
        """One line: the loaded checkpoint, or why there is none."""
        if self.model is not None:
            return f"checkpoint: {self.checkpoint_path.name}"
        if self.checkpoint_error:
            return f"{self.checkpoint_error}. The annotator works without it: clicks only, no CAM."
        return NO_CHECKPOINT_MESSAGE

    def warm_up(self) -> str:
        """Run one refinement on a tiny image so that the first real click does not pay the libraries'
        start-up cost (FastGeodis / torch initialisation, about a second on a small CPU)."""
        session = self._session_factory()
        image = np.zeros((16, 16), np.float32)
        image[4:12, 4:12] = 1.0
        session.set_image(image)
        session.add_click(8, 8, True)
        return "ready"

    # ------------------------------------------------------------------ image and slice
    def open(self, path: str | Path) -> Snapshot:
        """Open a PNG/JPEG slice, a NIfTI volume or a DICOM series; show its most labelled (or middle) slice.

        Raises:
            InputError: unreadable or unsupported input (the previous image stays open).
        """
        image = open_image(path)
        self.image = image
        self._image_id += 1
        self._slices = {}
        self._zscored = None
        index = image.depth // 2
        if image.ground_truth is not None and image.depth > 1:
            areas = image.ground_truth.reshape(image.depth, -1).sum(axis=1)
            if areas.max() > 0:
                index = int(areas.argmax())
        self.slice_index = index
        self.current.show(self._clock())
        where = f"slice {index + 1}/{image.depth}, " if image.depth > 1 else ""
        gt = "ground truth found" if image.ground_truth is not None else "no ground truth"
        return self.snapshot(
            f"opened {image.path.name} ({where}{image.shape[0]} x {image.shape[1]} px, {gt})"
        )

    def set_slice(self, index: int) -> Snapshot:
        """Show slice ``index`` of a volume; each slice keeps its own clicks, undo history and timer.

        Raises:
            InputError: no image is open or the index is out of range.
        """
        image = self._require_image()
        index = int(index)
        if not 0 <= index < image.depth:
            raise InputError(f"slice index {index} out of range [0, {image.depth - 1}]", image.path)
        if index != self.slice_index:
            now = self._clock()
            self.current.hide(now)
            self.slice_index = index
            self.current.show(now)
        clicks = len(self.current.clicks)
        return self.snapshot(
            f"slice {index + 1}/{image.depth}" + (f" ({clicks} click(s) so far)" if clicks else "")
        )

    @property
    def current(self) -> SliceAnnotation:
        """The annotation of the shown slice (created on first use)."""
        return self._slices.setdefault(self.slice_index, SliceAnnotation())

    @property
    def dirty(self) -> bool:
        """Whether any slice of the open image changed since it was last saved."""
        return any(a.dirty for a in self._slices.values())

    @property
    def mask(self) -> np.ndarray | None:
        """(H, W) uint8 current mask of the shown slice, or None before Segment / the first click."""
        return self.current.mask if self.image is not None else None

    @property
    def clicks(self) -> list:
        """Clicks on the shown slice, in order."""
        return list(self.current.clicks) if self.image is not None else []

    def _require_image(self) -> AnnotationImage:
        if self.image is None:
            raise InputError("no image is open (File > Open Image)")
        return self.image

    @property
    def raw_slice(self) -> np.ndarray:
        """(H, W) float32 current slice in source units."""
        return self._require_image().volume[self.slice_index]

    @property
    def analysis_image(self) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the current slice through the image's default window, the refinement's
        input; independent of the display window so that results do not depend on the view."""
        image = self._require_image()
        return normalise(image.volume[self.slice_index], image.window)

    @property
    def network_image(self) -> np.ndarray:
        """(H, W) float32 current slice scaled the way ``wiml prepare`` scales the weak model's training data
        (:mod:`wiml.data.prepare`: CT HU window, MR z-score per volume, slice files / dtype maximum), or the
        (C, H, W) image of a prepared slice as stored."""
        image = self._require_image()
        raw = image.volume[self.slice_index]
        if image.prepared is not None:
            return image.prepared
        if image.normalization == "window":
            return normalize_ct(raw, PREPARE_WINDOW_HU)
        if image.normalization == "zscore":
            if self._zscored is None:
                self._zscored = normalize_zscore(image.volume)
            return self._zscored[self.slice_index]
        return (raw / np.float32(image.value_max)).astype(np.float32)

    @property
    def ground_truth(self) -> np.ndarray | None:
        """(H, W) uint8 ground truth of the current slice, or None."""
        if self.image is None or self.image.ground_truth is None:
            return None
        return self.image.ground_truth[self.slice_index]

    @property
    def name(self) -> str:
        """Result name of the current slice."""
        image = self._require_image()
        return slice_name(image.name, self.slice_index, image.is_volume)

    @property
    def elapsed_s(self) -> float:
        """Seconds the current slice has been shown (0 before an image is open)."""
        return self.current.elapsed(self._clock()) if self.image is not None else 0.0

    # ------------------------------------------------------------------ annotation
    def segment(self) -> Snapshot:
        """Compute the CAM (when a weak model is loaded) and the initial mask; drops the slice's clicks.

        Raises:
            InputError: no image is open.
        """
        self._require_image()
        cam = None
        if self.model is not None:
            cam = compute_cam(self.model, self.network_image, self.cam_input_px)
        session = self._session_factory()
        session.set_image(self.analysis_image, cam=cam)
        initial = np.asarray(session.initial_mask(), np.uint8)
        self.current.start(session, cam, initial, self.ground_truth)
        what = (
            "CAM initial mask" if cam is not None else "no checkpoint: empty initial mask, click to segment"
        )
        return self.snapshot(f"segmented ({what}, {int(initial.sum())} px)")

    def add_click(self, row: int, col: int, foreground: bool) -> Snapshot:
        """Add a click and re-run the refinement (Segment runs first when it has not yet on this slice).

        Args:
            row, col: pixel position in the slice.
            foreground: True for a foreground (left) click, False for background (right).

        Raises:
            InputError: no image is open or the click lies outside the image.
        """
        image = self._require_image()
        h, w = image.shape
        row, col = int(row), int(col)
        if not (0 <= row < h and 0 <= col < w):
            raise InputError(f"click ({row}, {col}) lies outside the {h} x {w} image")
        if self.current.session is None:
            self.segment()
        annotation = self.current
        t_s = annotation.elapsed(self._clock())
        mask = annotation.session.add_click(row, col, bool(foreground))
        annotation.clicked(Click(row, col, int(bool(foreground)), t_s), mask, self.ground_truth)
        kind = "foreground" if foreground else "background"
        return self.snapshot(f"{kind} click at ({row}, {col})")

    def undo(self) -> Snapshot:
        """Remove the last click and restore the mask before it (nothing to undo: unchanged)."""
        annotation = self.current
        if annotation.session is None or not annotation.clicks:
            return self.snapshot("nothing to undo")
        annotation.undone(annotation.session.undo())
        return self.snapshot(f"undid a click ({len(annotation.clicks)} left)")

    def clear(self) -> Snapshot:
        """Remove every click of the slice and go back to the initial mask (the timer keeps running)."""
        annotation = self.current
        if annotation.session is None:
            return self.snapshot("nothing to clear")
        annotation.cleared(annotation.session.reset())
        return self.snapshot("cleared the clicks (back to the initial mask)")

    def metrics(self) -> tuple[float | None, float | None]:
        """(Dice, IoU) of the current mask against the ground truth, or (None, None)."""
        gt, mask = self.ground_truth, self.mask
        if gt is None or mask is None:
            return None, None
        return float(dice_score(mask, gt)), float(iou_score(mask, gt))

    # ------------------------------------------------------------------ saving
    def resolved_result_dir(self) -> Path:
        """``--result-dir`` when given, else ``result/`` beside the image's folder."""
        return (
            self.result_dir if self.result_dir is not None else default_result_dir(self._require_image().path)
        )

    def recording(self, index: int | None = None) -> dict:
        """The interaction record of slice ``index`` (default: the shown one); docs/architecture.md."""
        image = self._require_image()
        index = self.slice_index if index is None else int(index)
        annotation = self._slices.get(index, SliceAnnotation())
        return {
            "image": str(image.path),
            "patient_id": image.patient_id or image.name,
            "slice_index": image.prepared_index if image.prepared_index is not None else index,
            "shape": list(image.shape),
            "ground_truth": str(image.ground_truth_path) if image.ground_truth_path else None,
            "checkpoint": str(self.checkpoint_path) if self.checkpoint_path else None,
            **annotation.record(self._clock()),
            "refinement": dataclasses.asdict(self.refinement),
        }

    def save(self) -> Snapshot:
        """Write CAM, initial mask, strong label and recording under ``result/``.

        A 2-D image gives PNGs. A NIfTI/DICOM volume gives ``strong_label/<image>.nii.gz`` with the source
        geometry, holding every slice annotated since it was opened, and the per-slice files of every slice
        changed since the last save. Existing files are kept as ``.v1``, ``.v2``, ...

        Returns:
            a snapshot whose ``saved`` lists the written files.

        Raises:
            InputError: nothing to save yet, or the result folder cannot be written.
        """
        image = self._require_image()
        if self.mask is None:
            raise InputError("nothing to save yet: press Segment or click on the image first")
        root = self.resolved_result_dir()
        # the shown slice always; other slices of a volume when they changed since the last save
        indices = sorted(
            {self.slice_index} | {i for i, a in self._slices.items() if a.dirty and a.mask is not None}
        )
        written: list[Path] = []
        try:
            for index in indices:
                annotation = self._slices[index]
                name = slice_name(image.name, index, image.is_volume)
                if annotation.cam is not None:
                    written.append(
                        write_png(
                            root / "CAM" / f"{name}.png", np.round(annotation.cam * 255.0).astype(np.uint8)
                        )
                    )
                if annotation.initial is not None:
                    written.append(
                        write_png(root / "initial_mask" / f"{name}.png", annotation.initial * np.uint8(255))
                    )
                if not image.is_volume:
                    written.append(
                        write_png(root / "strong_label" / f"{name}.png", annotation.mask * np.uint8(255))
                    )
                written.append(write_json(root / "recording" / f"{name}.json", self.recording(index)))
            if image.is_volume:
                volume = np.zeros(image.volume.shape, np.uint8)
                for index, annotation in self._slices.items():
                    if annotation.mask is not None:
                        volume[index] = annotation.mask
                written.append(
                    write_mask_volume(
                        root / "strong_label" / f"{image.name}.nii.gz",
                        volume,
                        image.reference,
                        image.source_geometry,
                    )
                )
        except OSError as exc:
            raise InputError(
                f"cannot write results ({exc.strerror or exc}); choose another folder with "
                "--result-dir or File > Result Folder",
                root,
            ) from exc
        for annotation in self._slices.values():
            annotation.dirty = False
        logger.info("saved %d file(s) under %s", len(written), root)
        snap = self.snapshot(f"saved {self.name} under {root}")
        return dataclasses.replace(snap, saved=tuple(written))

    # ------------------------------------------------------------------ view
    def snapshot(self, message: str = "") -> Snapshot:
        """Copy of what the widgets need to draw the current state."""
        if self.image is None:
            return Snapshot(message=message)
        dice, iou = self.metrics()
        gt = self.ground_truth
        annotation = self.current
        return Snapshot(
            image_id=self._image_id,
            name=self.name,
            image_path=self.image.path,
            slice_index=self.slice_index,
            depth=self.image.depth,
            raw=self.raw_slice.copy(),
            window=self.image.window,
            is_ct=self.image.is_ct,
            mask=None if annotation.mask is None else annotation.mask.copy(),
            initial=None if annotation.initial is None else annotation.initial.copy(),
            cam=None if annotation.cam is None else annotation.cam.copy(),
            ground_truth=None if gt is None else gt.copy(),
            clicks=tuple(annotation.clicks),
            dice=dice,
            iou=iou,
            elapsed_s=self.elapsed_s,
            message=message,
        )
