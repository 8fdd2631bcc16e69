"""The annotator's recovery file: every unsaved change autosaved, so a crash or a kill loses nothing (Qt-free).

``result/.recovery/<image>.npz`` holds, for every slice changed since the last save, its proposal mask, its
current mask, its clicks and its event list, plus the tags; it is rewritten (atomically) after each change and
removed by Save. Opening the image again finds it and the annotator offers to restore it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from wiml.errors import InputError
from wiml.interactive.session import Click
from wiml.utils import atomic_path

logger = logging.getLogger(__name__)

#: folder of the recovery files inside ``result/``.
RECOVERY_FOLDER = ".recovery"
#: layout version of the recovery file.
RECOVERY_VERSION = 1


class RecoveryFile:
    """One image's recovery file.

    Args:
        path: the ``.npz`` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def for_image(cls, result_dir: Path, image_name: str) -> RecoveryFile:
        """``<result_dir>/.recovery/<image_name>.npz``."""
        return cls(Path(result_dir) / RECOVERY_FOLDER / f"{image_name}.npz")

    def _meta(self) -> dict | None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                return json.loads(str(data["meta"]))
        except (OSError, KeyError, ValueError) as exc:
            logger.warning("unreadable recovery file %s ignored: %s", self.path, exc)
            return None

    def matches(self, image) -> bool:
        """Whether the file exists and was written for ``image`` (same path and volume shape)."""
        if not self.path.is_file():
            return False
        meta = self._meta()
        return (
            meta is not None
            and meta.get("image") == str(image.path)
            and list(meta.get("shape", [])) == list(image.volume.shape)
        )

    def write(self, image, slices: dict, tags: dict[int, int]) -> Path | None:
        """Write the unsaved slices (:class:`~wiml.annotator.annotation.SliceAnnotation` by index) and tags;
        with nothing unsaved, remove the file instead.

        Raises:
            OSError: the folder cannot be written (the caller logs it; annotation goes on).
        """
        slices = {i: a for i, a in slices.items() if a.mask is not None}
        if not slices and not tags:
            self.remove()
            return None
        arrays: dict[str, np.ndarray] = {}
        entries = []
        for index, a in sorted(slices.items()):
            arrays[f"mask_{index}"] = np.asarray(a.mask, np.uint8)
            arrays[f"initial_{index}"] = np.asarray(a.initial if a.initial is not None else a.mask, np.uint8)
            entries.append(
                {"index": int(index), "clicks": [c.to_dict() for c in a.clicks], "events": a.events}
            )
        meta = {
            "version": RECOVERY_VERSION,
            "image": str(image.path),
            "shape": list(image.volume.shape),
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
            "slices": entries,
            "tags": {str(k): int(v) for k, v in tags.items()},
        }
        arrays["meta"] = np.asarray(json.dumps(meta))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return self.path

    def read(self, image) -> tuple[dict[int, dict], dict[int, int]]:
        """Read the file for ``image``.

        Returns:
            ({slice index: {"mask", "initial" (H, W) uint8, "clicks" [Click], "events" [dict]}}, {index: tag}).

        Raises:
            InputError: unreadable, or written for another image.
        """
        if not self.matches(image):
            raise InputError("recovery file does not belong to the open image", self.path)
        with np.load(self.path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            slices = {}
            for entry in meta["slices"]:
                index = int(entry["index"])
                slices[index] = {
                    "mask": np.asarray(data[f"mask_{index}"], np.uint8),
                    "initial": np.asarray(data[f"initial_{index}"], np.uint8),
                    "clicks": [
                        Click(int(c["row"]), int(c["col"]), int(c["label"]), float(c["t_s"]))
                        for c in entry["clicks"]
                    ],
                    "events": list(entry["events"]),
                }
        tags = {int(k): int(v) for k, v in meta.get("tags", {}).items()}
        return slices, tags

    @property
    def written(self) -> str | None:
        """When the file was written (local time), or None."""
        meta = self._meta() if self.path.is_file() else None
        return None if meta is None else meta.get("written")

    def remove(self) -> None:
        """Delete the file (missing is fine)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
