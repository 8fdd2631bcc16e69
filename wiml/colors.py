"""The one overlay colour convention of WIML: every figure (``wiml cam``, ``wiml test``, the report) and the
annotator GUI draw with these colours (RGB, 0-255), stated in docs/architecture.md.

* reference (ground truth, expert mask): blue outline;
* mask (a prediction, a CAM initial mask, the annotator's current mask): green outline (the GUI also fills it);
* CAM: matplotlib ``jet`` heat map;
* clicks: foreground red, background yellow.
"""

from __future__ import annotations

#: the reference (ground truth) outline.
REFERENCE_RGB: tuple[int, int, int] = (40, 120, 255)
#: a mask made by the method: prediction, initial mask, the annotator's current mask.
MASK_RGB: tuple[int, int, int] = (40, 220, 60)
#: a foreground (left) click.
FG_CLICK_RGB: tuple[int, int, int] = (255, 40, 40)
#: a background (right) click.
BG_CLICK_RGB: tuple[int, int, int] = (255, 220, 0)
#: matplotlib colour map of CAMs.
CAM_COLORMAP = "jet"


def unit_rgb(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """An 0-255 RGB triple as floats in [0, 1] (matplotlib and float images)."""
    return (rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0)
