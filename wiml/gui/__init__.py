"""The WIA annotator (``python WIA/main.py``): the only WIML package that imports Qt.

Layers, from the bottom up:

* :mod:`wiml.gui.loading` - open a PNG/JPEG slice, a NIfTI volume or a DICOM series for annotation,
  find its ground truth in a ``label/`` folder (Qt-free).
* :mod:`wiml.gui.controller` - :class:`AnnotationController`, the annotation state (image, slice, CAM,
  initial mask, clicks with times, Dice/IoU) and saving under ``result/`` (Qt-free, testable headless).
* :mod:`wiml.gui.results` - writers of ``result/{CAM,initial_mask,strong_label,recording}`` (Qt-free).
* :mod:`wiml.gui.worker` - runs controller operations on a worker ``QThread`` so the window never freezes.
* :mod:`wiml.gui.canvas`, :mod:`wiml.gui.window` - the widgets; :mod:`wiml.gui.app` - ``main(argv)``.

Only the last three import Qt, lazily, so ``import wiml.gui`` works without PyQt5.
"""
