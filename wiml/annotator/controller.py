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

from wiml.annotator.annotation import SliceAnnotation, SliceState
from wiml.annotator.loading import (
    PREPARE_WINDOW_HU,
    AnnotationImage,
    normalise,
    open_image,
    read_ground_truth,
)
from wiml.annotator.recovery import RecoveryFile
from wiml.data.prepare import normalize_ct, normalize_zscore
from wiml.data.wia_result import (
    Recording,
    default_result_dir,
    read_mask_volume,
    read_tags_csv,
    slice_name,
    write_mask_volume,
    write_png,
    write_recording,
    write_tags_csv,
)
from wiml.errors import CheckpointError, InputError
from wiml.evaluation.metrics import dice_score, iou_score
from wiml.interactive.proposals import box_prior, mask_to_prior, probability_prior
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
        slice_status: per slice, :data:`UNTOUCHED`, :data:`FINISHED` (a saved label), :data:`UNSAVED`
            (changed since the last save) or :data:`PROPOSED` (a proposal not yet worked on).
        tags: per slice, the image tag: 1 present, 0 absent, -1 not set.
        tag_probability: per slice, the weak model's tag probability (after Tags > Predict), or None.
        proposal: what the shown slice's mask started from (cam, none, propagated, saved, recovered).
        can_undo, can_redo: whether Undo / Redo have a step on the shown slice.
        dirty: whether any slice or tag has unsaved changes.
        recovery: an autosaved recovery file found when the image was opened (the window offers to restore
            it), else None.
        reference_path: where the ground truth (reference) came from, or None.
        warning: why the weak model's CAM may not suit this image (:meth:`AnnotationController.checkpoint_warning`).
        percentiles: {0.5, 1, 5, 95, 99, 99.5: value} of the image's values (window presets of MR / 8-bit).
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
    slice_status: tuple[int, ...] = ()
    tags: tuple[int, ...] = ()
    tag_probability: tuple[float, ...] | None = None
    proposal: str | None = None
    can_undo: bool = False
    can_redo: bool = False
    dirty: bool = False
    recovery: Path | None = None
    reference_path: Path | None = None
    warning: str | None = None
    percentiles: dict | None = None


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
#: the kind of image of each normalisation (``AnnotationImage.normalization`` and ``wiml prepare``'s).
IMAGE_KINDS = {"window": "CT (HU)", "zscore": "MR (z-scored)", "unit": "8-bit slice", "none": "8-bit slice"}
#: a CAM whose maximum stays below this counts as empty.
EMPTY_CAM = 0.05


def trained_on(sidecar: dict) -> dict:
    """What kind of images a weak checkpoint was trained on, from its sidecar's ``run_config.data_dir``
    (``prepare.json`` there): ``{"kind": IMAGE_KINDS value, "channels": [...]}``; {} when unknown."""
    import json

    data_dir = (sidecar.get("run_config") or {}).get("data_dir")
    if not data_dir:
        return {}
    try:
        meta = json.loads((Path(data_dir) / "prepare.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    config = meta.get("config") or {}
    normalize = str(config.get("normalize"))
    if (
        normalize == "auto"
    ):  # prepare's automatic choice: MR sets are z-scored, slice folders unit, CT windowed
        layout = str(meta.get("layout") or config.get("layout"))
        normalize = "zscore" if layout.startswith("brats") else "unit" if layout == "slices" else "window"
    return {"kind": IMAGE_KINDS.get(normalize), "channels": list(config.get("channels") or [])}


#: slice status codes of :attr:`Snapshot.slice_status`.
UNTOUCHED, FINISHED, UNSAVED, PROPOSED = 0, 1, 2, 3


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
        propagate: moving to an untouched slice next to one with a mask proposes a mask from that neighbour.
        autosave: write every change to a recovery file (:mod:`wiml.annotator.recovery`) until it is saved.
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
        propagate: bool = True,
        autosave: bool = True,
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
        self.propagate = bool(propagate)
        self.autosave = bool(autosave)
        self._tags_dirty = False
        self._tag_probability: np.ndarray | None = None
        self._recovery_found: Path | None = None
        self._range_start: int | None = None
        self._trained_on: dict = {}
        self._cam_note: str | None = None
        self._percentiles: dict | None = None
        self._updater = None  # wiml.experiments.bootstrap.BackgroundUpdater once proposals are improved
        self._improved = None  # the newest model an update finished, or None
        self._improvements = 0

    def close(self) -> None:
        """Stop the refinement helper process and a running "improve proposals" update, if any."""
        if self._updater is not None:
            self._updater.close()
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
        self._trained_on = trained_on(sidecar)
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
        """Open a PNG/JPEG slice, a NIfTI volume or a DICOM series and load the work saved on it before.

        The saved strong label (``result/strong_label/<image>.nii.gz`` or ``<image>.png``) and tags
        (``result/tags/<image>.csv``) are loaded, so work continues where it stopped; slices with a saved label
        are marked finished. A recovery file of unsaved work is reported in :attr:`Snapshot.recovery` (see
        :meth:`restore_recovery`). Shows the most labelled (reference) slice, or the middle one.

        Raises:
            InputError: unreadable or unsupported input (the previous image stays open).
        """
        image = open_image(path)
        self.image = image
        self._image_id += 1
        self._slices = {}
        self._zscored = None
        self._tags_dirty = False
        self._tag_probability = None
        self._range_start = None
        index = image.depth // 2
        if image.ground_truth is not None and image.depth > 1:
            areas = image.ground_truth.reshape(image.depth, -1).sum(axis=1)
            if areas.max() > 0:
                index = int(areas.argmax())
        self.slice_index = index
        sample = image.volume[:: max(1, image.depth // 16)]
        qs = (0.5, 1.0, 5.0, 95.0, 99.0, 99.5)
        self._percentiles = dict(zip(qs, (float(v) for v in np.percentile(sample, qs))))
        loaded = self._load_saved()
        self.current.show(self._clock())
        recovery = RecoveryFile.for_image(self.resolved_result_dir(), image.name)
        self._recovery_found = recovery.path if recovery.matches(image) else None
        where = f"slice {index} of 0-{image.depth - 1}, " if image.depth > 1 else ""
        gt = "reference found" if image.ground_truth is not None else "no reference"
        extra = f", {loaded} saved slice(s) loaded" if loaded else ""
        if self._recovery_found is not None:
            extra += ", unsaved work from an earlier session can be restored"
        return self.snapshot(
            f"opened {image.path.name} ({where}{image.shape[0]} x {image.shape[1]} px, {gt}{extra})"
        )

    def _load_saved(self) -> int:
        """Load the saved strong label and tags of the open image; returns the number of labelled slices."""
        image = self._require_image()
        root = self.resolved_result_dir()
        label_dir = root / "strong_label"
        masks: dict[int, np.ndarray] = {}
        try:
            if image.is_volume:
                path = label_dir / f"{image.name}.nii.gz"
                if path.is_file():
                    volume = read_mask_volume(path, image.reference)
                    finished = {
                        i
                        for i in range(image.depth)
                        if volume[i].any()
                        or (root / "recording" / f"{slice_name(image.name, i, True)}.json").is_file()
                    }
                    masks = {i: volume[i] for i in sorted(finished)}
            else:
                path = label_dir / f"{image.name}.png"
                if path.is_file():
                    mask = read_ground_truth(path, (1, *image.shape), volume=False)
                    if mask is not None:
                        masks = {0: mask[0]}
            tags_path = root / "tags" / f"{image.name}.csv"
            tags = read_tags_csv(tags_path) if tags_path.is_file() else {}
        except InputError as exc:
            logger.warning("saved work not loaded: %s", exc)
            return 0
        for index, mask in masks.items():
            annotation = self._slices.setdefault(index, SliceAnnotation())
            annotation.state = annotation.started(None, None, mask, self._gt(index), "saved")
            annotation.saved = True
        for index, tag in tags.items():
            if 0 <= index < image.depth:
                annotation = self._slices.setdefault(index, SliceAnnotation())
                annotation.tag, annotation.tag_source = int(tag), "saved"
        return len(masks)

    def set_slice(self, index: int) -> Snapshot:
        """Show slice ``index`` of a volume; each slice keeps its own clicks, history and timer.

        Moving to an untouched slice next to one with a mask proposes a mask propagated from it (when
        ``propagate`` is on); the proposal is undoable and counts as unsaved only once it is worked on.

        Raises:
            InputError: no image is open or the index is out of range.
        """
        image = self._require_image()
        index = int(index)
        if not 0 <= index < image.depth:
            raise InputError(f"slice index {index} out of range [0, {image.depth - 1}]", image.path)
        message = ""
        if index != self.slice_index:
            now = self._clock()
            self.current.hide(now)
            self.slice_index = index
            self.current.show(now)
            if self.propagate and self.current.mask is None:
                message = self._propagate()
        clicks = len(self.current.clicks)
        return self.snapshot(
            f"slice {index}"
            + (f" ({clicks} click(s) so far)" if clicks else "")
            + (f"; {message}" if message else "")
        )

    def _propagate(self) -> str:
        """Propose a mask for the shown (untouched) slice from a neighbour's mask; returns a status note."""
        for step in (-1, 1):
            neighbour = self._slices.get(self.slice_index + step)
            if neighbour is None or neighbour.mask is None or not neighbour.mask.any():
                continue
            if neighbour.proposal == "propagated" and not neighbour.clicks and not neighbour.saved:
                continue  # never chain unreviewed proposals
            cam = self._cam() if self.model is not None else None
            session = self._session_factory()
            prior = mask_to_prior(neighbour.mask, cam)  # the proposal engine (wiml.interactive.proposals)
            session.set_image(self.analysis_image, cam=cam, prior=prior, source="propagate")
            initial = np.asarray(session.initial_mask(), np.uint8)
            annotation = self.current
            annotation.apply(
                "propagate", annotation.started(session, cam, initial, self.ground_truth, "propagated")
            )
            annotation.dirty = False  # a proposal is not work until the user touches it
            annotation.log("propagate", self._clock(), from_slice=self.slice_index + step)
            return f"propagated from slice {self.slice_index + step}"
        return ""

    @property
    def current(self) -> SliceAnnotation:
        """The annotation of the shown slice (created on first use)."""
        return self._slices.setdefault(self.slice_index, SliceAnnotation())

    @property
    def dirty(self) -> bool:
        """Whether any slice (or tag) of the open image changed since it was last saved."""
        return self._tags_dirty or any(a.dirty for a in self._slices.values())

    @property
    def dirty_slices(self) -> list[int]:
        """Indices of the slices changed since the last save."""
        return sorted(i for i, a in self._slices.items() if a.dirty)

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

    def _network_image(self, index: int) -> np.ndarray:
        image = self._require_image()
        raw = image.volume[index]
        if image.prepared is not None:
            return image.prepared
        if image.normalization == "window":
            return normalize_ct(raw, PREPARE_WINDOW_HU)
        if image.normalization == "zscore":
            if self._zscored is None:
                self._zscored = normalize_zscore(image.volume)
            return self._zscored[index]
        return (raw / np.float32(image.value_max)).astype(np.float32)

    @property
    def network_image(self) -> np.ndarray:
        """(H, W) float32 current slice scaled the way ``wiml prepare`` scales the weak model's training data
        (:mod:`wiml.data.prepare`: CT HU window, MR z-score per volume, slice files / dtype maximum), or the
        (C, H, W) image of a prepared slice as stored."""
        return self._network_image(self.slice_index)

    def _gt(self, index: int) -> np.ndarray | None:
        if self.image is None or self.image.ground_truth is None:
            return None
        return self.image.ground_truth[index]

    @property
    def ground_truth(self) -> np.ndarray | None:
        """(H, W) uint8 ground truth (reference) of the current slice, or None."""
        return self._gt(self.slice_index)

    @property
    def name(self) -> str:
        """Result name of the current slice."""
        image = self._require_image()
        return slice_name(image.name, self.slice_index, image.is_volume)

    @property
    def elapsed_s(self) -> float:
        """Seconds the current slice has been shown (0 before an image is open)."""
        return self.current.elapsed(self._clock()) if self.image is not None else 0.0

    def load_reference(self, path: str | Path) -> Snapshot:
        """Use ``path`` as the reference (ground truth) of the open image: the live Dice/IoU compare with it.

        Args:
            path: a mask file or DICOM mask series of the image's size (label maps count > 0 as foreground).

        Raises:
            InputError: unreadable, or a size other than the image's.
        """
        image = self._require_image()
        path = Path(path).expanduser()
        if not path.exists():
            raise InputError("reference not found", path)
        gt = read_ground_truth(path, image.volume.shape, image.is_volume)
        if gt is None:
            raise InputError(f"reference does not have the image's size {image.volume.shape} (D, H, W)", path)
        image.ground_truth, image.ground_truth_path = gt, path
        return self.snapshot(f"reference loaded: {path.name}")

    # ------------------------------------------------------------------ annotation
    def _cam(self) -> np.ndarray:
        return compute_cam(self.model, self.network_image, self.cam_input_px)

    def _edited(self, message: str) -> Snapshot:
        """After a change of the annotation: autosave the recovery file, then the snapshot."""
        self._write_recovery()
        return self.snapshot(message)

    def segment(self) -> Snapshot:
        """Compute the CAM (when a weak model is loaded) and the initial mask; a new undoable start.

        Raises:
            InputError: no image is open.
        """
        self._require_image()
        cam = self._cam() if self.model is not None else None
        session = self._session_factory()
        improved = self._improved_model()
        if improved is not None:  # Improve Proposals trained a model on the labels so far: it proposes
            from wiml.networks.inference import predict_slices

            device = next(improved.parameters()).device
            prob = predict_slices(
                improved, self._net_input(self.slice_index)[None], device, 1, self.cam_input_px
            )
            prob = prob[0][0]
            session.set_image(self.analysis_image, cam=cam, prior=probability_prior(prob), source="bootstrap")
        else:
            session.set_image(self.analysis_image, cam=cam)
        initial = np.asarray(session.initial_mask(), np.uint8)
        self._cam_note = None
        if cam is not None and (float(cam.max()) < EMPTY_CAM or not initial.any()):
            self._cam_note = f"its CAM was empty on slice {self.slice_index} (max {float(cam.max()):.2f})"
        annotation = self.current
        proposal = "bootstrap" if improved is not None else "cam" if cam is not None else "none"
        annotation.apply("segment", annotation.started(session, cam, initial, self.ground_truth, proposal))
        annotation.log("segment", self._clock(), proposal=proposal)
        what = (
            f"proposal of the improved model (update {self._improvements})"
            if improved is not None
            else "CAM initial mask"
            if cam is not None
            else "no checkpoint: empty initial mask, click to segment"
        )
        return self._edited(f"segmented ({what}, {int(initial.sum())} px)")

    def propose_box(self, box: tuple[int, int, int, int]) -> Snapshot:
        """A proposal from a box around the target (drawn with the box tool): a new undoable start whose
        initial mask is the graph cut of a box prior (:func:`wiml.interactive.proposals.box_prior`, GrabCut-style; fused with the CAM when a weak model is
        loaded).

        Args:
            box: (row0, col0, row1, col1) px, corners in any order, inclusive.

        Raises:
            InputError: no image is open, or a box smaller than 3 x 3 px.
        """
        image = self._require_image()
        h, w = image.shape
        r0, r1 = sorted((int(box[0]), int(box[2])))
        c0, c1 = sorted((int(box[1]), int(box[3])))
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h - 1), min(c1, w - 1)
        if r1 - r0 < 2 or c1 - c0 < 2:
            raise InputError(f"box ({r0}, {c0}) - ({r1}, {c1}) is smaller than 3 x 3 px")
        cam = self._cam() if self.model is not None else None
        session = self._session_factory()
        prior = box_prior(
            self.analysis_image, (r0, c0, r1, c1), lam=self.refinement.lam, sigma=self.refinement.sigma
        )
        if cam is not None:  # fused with the CAM inside the box, as a propagated proposal is
            prior = np.where(prior > 0, 0.75 * prior + 0.25 * cam, prior).astype(np.float32)
        session.set_image(self.analysis_image, cam=cam, prior=prior, source="box")
        initial = np.asarray(session.initial_mask(), np.uint8)
        annotation = self.current
        annotation.apply("box", annotation.started(session, cam, initial, self.ground_truth, "box"))
        annotation.log("box", self._clock(), box=[r0, c0, r1, c1])
        return self._edited(f"box proposal ({int(initial.sum())} px)")

    def _net_input(self, index: int) -> np.ndarray:
        """(C, H, W) float32 network input of slice ``index`` (grey repeated to the model's channels)."""
        x = np.asarray(self._network_image(index), np.float32)
        x = x if x.ndim == 3 else x[None]
        channels = int(self.model.config.in_channels)
        return np.repeat(x[:1], channels, axis=0) if x.shape[0] != channels else x

    def _improved_model(self):
        """The model of the last finished Improve Proposals update, or None."""
        if self._updater is not None:
            model, version = self._updater.current()
            if version >= 1 and model is not self._improved:
                self._improved = model
                self._improvements += 1
        return self._improved

    def improve_proposals(self, config=None) -> Snapshot:
        """Improve the proposals: fine-tune the weak model in the background on the strong labels made so far
        and the tags of the open image (:class:`wiml.experiments.bootstrap.BackgroundUpdater`, the MSL loss);
        returns at once. When the update has finished, Segment proposes from the new model (proposal
        ``bootstrap``, :func:`wiml.interactive.proposals.probability_prior`); a failed update keeps the
        previous proposer.

        Args:
            config: :class:`wiml.experiments.bootstrap.BootstrapConfig` (default: its defaults, at most 60 s CPU).

        Raises:
            InputError: no image, no weak checkpoint, or no strong label yet.
        """
        import torch.nn.functional as F  # noqa: N812

        from wiml.experiments.bootstrap import BackgroundUpdater, BootstrapConfig

        self._require_image()
        if self.model is None:
            raise InputError(
                "no weak checkpoint loaded (File > Load Checkpoint) to improve the proposals from"
            )
        size = self.cam_input_px

        def at_size(x: np.ndarray, nearest: bool = False) -> np.ndarray:
            import torch

            if not size or x.shape[-2:] == (size, size):
                return x
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None]
            t = t[None] if t.ndim == 3 else t
            mode = "nearest" if nearest else "bilinear"
            kwargs = {} if nearest else {"align_corners": False}
            return F.interpolate(t, size=(size, size), mode=mode, **kwargs)[0].numpy()

        strong = [
            (
                at_size(self._net_input(i)),
                (at_size(a.mask[None].astype(np.float32), True)[0] > 0.5).astype(np.uint8),
            )
            for i, a in sorted(self._slices.items())
            if a.mask is not None and (a.saved or a.dirty)
        ]
        if not strong:
            raise InputError("no strong label yet: annotate a slice first, then Improve Proposals")
        tagged = [(at_size(self._net_input(i)), int(t)) for i, t in sorted(self.tags().items())]
        import copy

        # a private copy, made here on the worker: the update thread never touches a model Grad-CAM may be using
        base = copy.deepcopy(self._improved_model() or self.model)
        if self._updater is not None and self._updater.busy:
            return self.snapshot("an improvement is still running; Segment uses the newest finished one")
        self._updater = BackgroundUpdater(
            base, tagged, config or BootstrapConfig(wait=False), device=next(self.model.parameters()).device
        )
        self._updater.submit(strong)
        return self.snapshot(
            f"improving proposals in the background: {len(strong)} strong label(s), {len(tagged)} tag(s)"
        )

    def _resume_session(self, annotation: SliceAnnotation) -> None:
        """Give a slice whose mask came from a saved label or a recovery file a refinement session that
        starts from that mask (the mask as the graph cut's prior); the clicks then refine it."""
        session = self._session_factory()
        mask = annotation.mask
        cam = annotation.cam
        session.set_image(self.analysis_image, cam=cam, prior=mask_to_prior(mask, None), source="saved")
        initial = np.asarray(session.initial_mask(), np.uint8)
        state = annotation.started(
            session, cam, initial, self.ground_truth, annotation.proposal or "saved", annotation.state.painted
        )
        annotation.state = state  # the base of further clicks; the saved mask itself is in the history
        annotation.log("resume", self._clock(), proposal=state.proposal)

    def add_click(self, row: int, col: int, foreground: bool) -> Snapshot:
        """Add a click and re-run the refinement (Segment runs first when the slice has no mask yet).

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
        annotation = self.current
        if annotation.mask is None:
            self.segment()
        elif annotation.session is None:
            before = annotation.state
            self._resume_session(annotation)
            annotation.undo_stack.append(("resume", before, annotation.state))
        label = int(bool(foreground))
        t_s = annotation.log("click", self._clock(), row=row, col=col, label=label)
        self._sync_session(annotation.state)
        mask = annotation.session.add_click(row, col, bool(foreground))
        annotation.apply(
            "click", annotation.after_click(Click(row, col, label, t_s), mask, self.ground_truth)
        )
        kind = "foreground" if foreground else "background"
        return self._edited(f"{kind} click at ({row}, {col})")

    def _sync_session(self, state: SliceState) -> None:
        """Make the refinement session hold exactly the clicks of ``state`` (after an undo or redo), so the next
        click refines the mask shown: one undo, one re-added click, or a reset and replay."""
        session = state.session
        if session is None:
            return
        want = [(c.row, c.col, c.label) for c in state.clicks]
        have = [(c.row, c.col, c.label) for c in session.clicks]
        if have == want:
            return
        if have[:-1] == want:
            session.undo()
            return
        if have == want[:-1]:
            session.add_click(*want[-1][:2], bool(want[-1][2]))
            return
        session.reset()
        for r, c, label in want:
            session.add_click(r, c, bool(label))

    def undo(self) -> Snapshot:
        """Undo the last change of the slice (a click, Segment, Clear, a proposal); nothing to undo: unchanged."""
        annotation = self.current
        step = annotation.undo()
        if step is None:
            return self.snapshot("nothing to undo")
        action, state = step
        annotation.log("undo", self._clock(), undone=action)
        self._sync_session(state)
        if action == "resume":  # the saved mask itself: one more step back would be before it
            return self._edited("undid resuming the saved label")
        return self._edited(f"undid {action} ({len(annotation.clicks)} click(s) left)")

    def redo(self) -> Snapshot:
        """Redo the last undone change of the slice (nothing to redo: unchanged)."""
        annotation = self.current
        step = annotation.redo()
        if step is None:
            return self.snapshot("nothing to redo")
        action, state = step
        annotation.log("redo", self._clock(), redone=action)
        self._sync_session(state)
        return self._edited(f"redid {action} ({len(annotation.clicks)} click(s))")

    def clear(self) -> Snapshot:
        """Remove every click of the slice and go back to its proposal (undoable)."""
        annotation = self.current
        if annotation.mask is None or not annotation.clicks:
            return self.snapshot("nothing to clear")
        annotation.log("clear", self._clock(), clicks=len(annotation.clicks))
        annotation.apply("clear", annotation.after_clear())
        if annotation.session is not None:
            annotation.session.reset()
        return self._edited("cleared the clicks (back to the proposal; Undo brings them back)")

    def brush(self, points, radius_px: int, erase: bool = False) -> Snapshot:
        """Paint (or erase) disks of ``radius_px`` along a stroke: one undoable step, recorded as an event.

        Brush edits override the refinement until Clear or a new proposal: clicks after a stroke refine the
        rest of the mask and keep the stroke.

        Args:
            points: (N, 2) (row, col) pixels of the stroke, in order; consecutive points are joined.
            radius_px: brush radius in px (0 = single pixels).
            erase: remove instead of add.

        Raises:
            InputError: no image is open, an empty stroke, or a negative radius.
        """
        from skimage.draw import disk, line

        image = self._require_image()
        pts = np.asarray(points, dtype=int).reshape(-1, 2)
        if len(pts) == 0:
            raise InputError("an empty brush stroke")
        if radius_px < 0:
            raise InputError(f"brush radius must be >= 0 px, got {radius_px}")
        h, w = image.shape
        annotation = self.current
        path = [pts[0]]
        for a, b in zip(pts[:-1], pts[1:]):
            rr, cc = line(int(a[0]), int(a[1]), int(b[0]), int(b[1]))
            path.extend(zip(rr[1:], cc[1:]))
        stamp = np.zeros((h, w), bool)
        for r, c in path:
            if radius_px == 0:
                if 0 <= r < h and 0 <= c < w:
                    stamp[r, c] = True
            else:
                rr, cc = disk((r, c), radius_px + 0.5, shape=(h, w))
                stamp[rr, cc] = True
        action = "erase" if erase else "brush"
        annotation.log(
            action, self._clock(), points=len(pts), radius_px=int(radius_px), pixels=int(stamp.sum())
        )
        new = annotation.after_paint(stamp, erase, self.ground_truth)
        annotation.apply(action, new)
        return self._edited(f"{action}: {int(stamp.sum())} px (radius {radius_px} px)")

    def metrics(self) -> tuple[float | None, float | None]:
        """(Dice, IoU) of the current mask against the reference, or (None, None)."""
        gt, mask = self.ground_truth, self.mask
        if gt is None or mask is None:
            return None, None
        return float(dice_score(mask, gt)), float(iou_score(mask, gt))

    # ------------------------------------------------------------------ tags
    def set_tag(self, tag: int | None, index: int | None = None) -> Snapshot:
        """Set the image tag of a slice (default: the shown one): 1 present, 0 absent, None unset.

        Raises:
            InputError: no image is open or a tag other than 0, 1, None.
        """
        self._require_image()
        if tag not in (0, 1, None):
            raise InputError(f"a tag is 0 (absent) or 1 (present), got {tag!r}")
        index = self.slice_index if index is None else int(index)
        annotation = self._slices.setdefault(index, SliceAnnotation())
        annotation.tag, annotation.tag_source = tag, "gui"
        self._tags_dirty = True
        word = {1: "present", 0: "absent", None: "unset"}[tag]
        return self._edited(f"slice {index}: target {word}")

    def mark_range(self) -> Snapshot:
        """Two presses set the tags of a whole volume: the first marks the first slice of the target, the
        second (on another slice) the last; slices between them become present, all others absent.

        Raises:
            InputError: no image is open.
        """
        image = self._require_image()
        if self._range_start is None:
            self._range_start = self.slice_index
            return self.snapshot(
                f"first slice of the target: {self.slice_index + 1}; go to the last one and press E again"
            )
        lo, hi = sorted((self._range_start, self.slice_index))
        self._range_start = None
        for index in range(image.depth):
            annotation = self._slices.setdefault(index, SliceAnnotation())
            annotation.tag, annotation.tag_source = int(lo <= index <= hi), "range"
        self._tags_dirty = True
        return self._edited(f"target present on slices {lo + 1}-{hi + 1}, absent elsewhere")

    def predict_tags(self, batch_size: int = 8) -> Snapshot:
        """Tag probability of every slice from the weak model (shown on the slice strip).

        Raises:
            InputError: no image is open or no weak checkpoint is loaded.
        """
        image = self._require_image()
        if self.model is None:
            raise InputError("no weak checkpoint loaded (File > Load Checkpoint) to predict tags")
        import torch
        import torch.nn.functional as F

        from wiml.networks import tag_probability

        device = next(self.model.parameters()).device
        in_channels = int(self.model.config.in_channels)
        probs = np.zeros(image.depth, np.float32)
        size = self.cam_input_px
        for start in range(0, image.depth, batch_size):
            batch = []
            for index in range(start, min(start + batch_size, image.depth)):
                x = np.asarray(self._network_image(index), np.float32)
                x = x if x.ndim == 3 else x[None]
                batch.append(np.repeat(x[:1], in_channels, axis=0) if x.shape[0] != in_channels else x)
            x = torch.from_numpy(np.stack(batch)).to(device)
            if size:
                x = F.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False)
            with torch.no_grad():
                out = self.model(x)
            probs[start : start + len(batch)] = tag_probability(out.cls).detach().cpu().numpy()
        self._tag_probability = probs
        return self.snapshot(f"tag probabilities predicted for {image.depth} slice(s)")

    def tags(self) -> dict[int, int]:
        """{slice index: tag} of every slice with a tag set by hand, or else implied by a saved/unsaved mask."""
        out = {}
        for index, annotation in self._slices.items():
            if annotation.tag is not None:
                out[index] = int(annotation.tag)
            elif annotation.mask is not None and (annotation.saved or annotation.dirty):
                out[index] = int(annotation.mask.any())
        return out

    # ------------------------------------------------------------------ saving
    def resolved_result_dir(self) -> Path:
        """``--result-dir`` when given, else ``result/`` beside the image's folder."""
        return (
            self.result_dir if self.result_dir is not None else default_result_dir(self._require_image().path)
        )

    def recording(self, index: int | None = None) -> Recording:
        """The interaction record of slice ``index`` (default: the shown one), schema of
        :class:`wiml.data.wia_result.Recording`."""
        image = self._require_image()
        index = self.slice_index if index is None else int(index)
        annotation = self._slices.get(index, SliceAnnotation())
        return Recording(
            image=str(image.path),
            patient_id=image.patient_id or image.name,
            slice_index=image.prepared_index if image.prepared_index is not None else index,
            source="gui",
            shape=list(image.shape),
            ground_truth=str(image.ground_truth_path) if image.ground_truth_path else None,
            checkpoint=str(self.checkpoint_path) if self.checkpoint_path else None,
            refinement=dataclasses.asdict(self.refinement),
            **annotation.record(self._clock()),
        )

    def save(self, include_shown: bool = True) -> Snapshot:
        """Write every slice changed since the last save (and the shown slice), the tags, and the recordings.

        A 2-D image gives PNGs. A NIfTI/DICOM volume gives ``strong_label/<image>.nii.gz`` with the source
        geometry; saving merges into the label already there, so slices saved earlier (in this session or an
        earlier one) stay. Per slice: CAM, initial mask (proposal) and recording. Tags go to
        ``tags/<image>.csv``. Existing files are kept as ``.v1``, ``.v2``, ... The recovery file is removed.

        Args:
            include_shown: also save the shown slice when it is unchanged (Save accepts what is shown, e.g.
                a proposal); False saves the changed slices only (the question before closing).

        Returns:
            a snapshot whose ``saved`` lists the written files.

        Raises:
            InputError: nothing to save yet, or the result folder cannot be written.
        """
        image = self._require_image()
        indices = set(self.dirty_slices)
        if include_shown and self.mask is not None:
            indices.add(self.slice_index)
        indices = sorted(i for i in indices if self._slices[i].mask is not None)
        if not indices and not self._tags_dirty:
            if include_shown:
                raise InputError("nothing to save yet: press Segment or click on the image first")
            for annotation in self._slices.values():  # changes that left no mask (an undone proposal)
                annotation.dirty = False
            RecoveryFile.for_image(self.resolved_result_dir(), image.name).remove()
            return self.snapshot("nothing to save")
        root = self.resolved_result_dir()
        written: list[Path] = []
        try:
            for index in indices:
                annotation = self._slices[index]
                name = slice_name(image.name, index, image.is_volume)
                if annotation.cam is not None:
                    cam8 = np.round(annotation.cam * 255.0).astype(np.uint8)
                    written.append(write_png(root / "CAM" / f"{name}.png", cam8))
                if annotation.initial is not None:
                    written.append(
                        write_png(root / "initial_mask" / f"{name}.png", annotation.initial * np.uint8(255))
                    )
                if not image.is_volume:
                    written.append(
                        write_png(root / "strong_label" / f"{name}.png", annotation.mask * np.uint8(255))
                    )
                written.append(write_recording(root / "recording" / f"{name}.json", self.recording(index)))
            if image.is_volume and indices:
                volume = np.zeros(image.volume.shape, np.uint8)
                for index in indices:
                    volume[index] = self._slices[index].mask
                written.append(
                    write_mask_volume(
                        root / "strong_label" / f"{image.name}.nii.gz",
                        volume,
                        image.reference,
                        image.source_geometry,
                        slices=indices,
                    )
                )
            tags = self.tags()
            if image.is_volume and tags:
                sources = {i: self._slices[i].tag_source or "label" for i in tags}
                written.append(write_tags_csv(root / "tags" / f"{image.name}.csv", tags, sources))
        except OSError as exc:
            raise InputError(
                f"cannot write results ({exc.strerror or exc}); choose another folder with "
                "--result-dir or File > Result Folder",
                root,
            ) from exc
        for index in indices:
            self._slices[index].saved = True
        for annotation in self._slices.values():
            annotation.dirty = False
        self._tags_dirty = False
        RecoveryFile.for_image(root, image.name).remove()
        self._recovery_found = None
        logger.info("saved %d file(s) under %s", len(written), root)
        what = f"{len(indices)} slice(s)" if image.is_volume else self.name
        snap = self.snapshot(f"saved {what} under {root}")
        return dataclasses.replace(snap, saved=tuple(written))

    # ------------------------------------------------------------------ recovery
    def _write_recovery(self) -> None:
        """Autosave every unsaved slice (masks, clicks, events) and the tags to the recovery file."""
        if not self.autosave or self.image is None:
            return
        recovery = RecoveryFile.for_image(self.resolved_result_dir(), self.image.name)
        try:
            recovery.write(self.image, {i: self._slices[i] for i in self.dirty_slices}, self.tags())
        except OSError as exc:
            logger.warning("autosave to %s failed: %s", recovery.path, exc)

    def restore_recovery(self) -> Snapshot:
        """Restore the unsaved work autosaved in the recovery file found on open (masks, clicks, tags).

        Raises:
            InputError: no recovery file, or it does not belong to the open image.
        """
        image = self._require_image()
        if self._recovery_found is None:
            raise InputError("no recovery file for this image")
        slices, tags = RecoveryFile(self._recovery_found).read(image)
        for index, state in slices.items():
            annotation = self._slices.setdefault(index, SliceAnnotation())
            annotation.state = dataclasses.replace(
                annotation.started(None, None, state["initial"], self._gt(index), "recovered"),
                mask=state["mask"],
                clicks=tuple(state["clicks"]),
            )
            annotation.events = list(state["events"]) + [{"action": "restore", "t_s": 0.0}]
            annotation.dirty = True
        for index, tag in tags.items():
            annotation = self._slices.setdefault(index, SliceAnnotation())
            annotation.tag, annotation.tag_source = tag, "gui"
            self._tags_dirty = True
        self._recovery_found = None
        return self.snapshot(f"restored unsaved work on {len(slices)} slice(s); Save to keep it")

    def discard_recovery(self) -> Snapshot:
        """Delete the recovery file found on open (its work is not restored)."""
        if self._recovery_found is not None:
            RecoveryFile(self._recovery_found).remove()
            self._recovery_found = None
        return self.snapshot("recovery file discarded")

    def checkpoint_warning(self) -> str | None:
        """Why the weak model's CAM may not suit the open image, or None: the checkpoint's training data were
        another kind of image (CT / MR / 8-bit slices, from its sidecar's ``data_dir``), it takes more channels
        than the image has, or its CAM was empty on the last Segment."""
        if self.model is None or self.image is None:
            return None
        notes = []
        trained = self._trained_on.get("kind")
        here = IMAGE_KINDS.get(self.image.normalization)
        if trained and here and trained != here and self.image.normalization != "prepared":
            notes.append(f"the weak checkpoint was trained on {trained} images, this is {here}")
        channels = int(getattr(self.model.config, "in_channels", 1))
        have = self.image.prepared.shape[0] if self.image.prepared is not None else 1
        if channels > have:
            names = ", ".join(self._trained_on.get("channels") or []) or f"{channels} channels"
            notes.append(f"it takes {channels} channels ({names}) and this image has {have} (repeated)")
        if self._cam_note:
            notes.append(self._cam_note)
        if not notes:
            return None
        return "CAM warning: " + "; ".join(notes) + ". The CAM may be empty or misplaced; clicks still work."

    def discard_unsaved(self) -> Snapshot:
        """The user chose to drop the unsaved work of the open image: remove its recovery file."""
        if self.image is not None:
            RecoveryFile.for_image(self.resolved_result_dir(), self.image.name).remove()
        return self.snapshot("unsaved changes discarded")

    # ------------------------------------------------------------------ view
    def slice_status(self) -> tuple[int, ...]:
        """Per slice: :data:`UNTOUCHED`, :data:`FINISHED`, :data:`UNSAVED` or :data:`PROPOSED`."""
        image = self._require_image()
        status = [UNTOUCHED] * image.depth
        for index, a in self._slices.items():
            if a.dirty:
                status[index] = UNSAVED
            elif a.saved:
                status[index] = FINISHED
            elif a.mask is not None:
                status[index] = PROPOSED
        return tuple(status)

    def snapshot(self, message: str = "") -> Snapshot:
        """Copy of what the widgets need to draw the current state."""
        if self.image is None:
            return Snapshot(message=message)
        dice, iou = self.metrics()
        gt = self.ground_truth
        annotation = self.current
        tags = [-1] * self.image.depth
        for index, tag in self.tags().items():
            tags[index] = tag
        probs = self._tag_probability
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
            slice_status=self.slice_status(),
            tags=tuple(tags),
            tag_probability=None if probs is None else tuple(float(p) for p in probs),
            proposal=annotation.proposal,
            can_undo=bool(annotation.undo_stack),
            can_redo=bool(annotation.redo_stack),
            dirty=self.dirty,
            recovery=self._recovery_found,
            reference_path=self.image.ground_truth_path,
            warning=self.checkpoint_warning(),
            percentiles=self._percentiles,
        )
