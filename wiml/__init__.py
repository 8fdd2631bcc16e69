"""WIML: weakly-interactive annotation (WIA) and mixed-supervised learning (MSL).

Implements and extends Nie et al., "Weakly-Interactive-Mixed Learning: Less Labelling Cost for Better
Medical Image Segmentation", IEEE JBHI 27(7):3270-3281, 2023.
"""

__version__ = "0.1.0"
