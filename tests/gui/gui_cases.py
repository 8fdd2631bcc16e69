"""Sizes and geometry of the synthetic test images built by tests/gui/conftest.py."""

PNG_SHAPE = (64, 80)  # non-square on purpose
VOLUME_SHAPE = (5, 48, 56)  # (z, y, x)
VOLUME_SPACING = (0.8, 0.7, 2.5)  # (x, y, z) mm
VOLUME_ORIGIN = (-20.0, 15.5, 100.0)
VOLUME_DIRECTION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
